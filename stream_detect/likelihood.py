"""Anomaly likelihood: how unusual a feature's recent scores are, as a tail probability.

A raw anomaly score (|z| of a feature, say) means different things on
different streams: on a noisy metric 4σ happens every day, on a quiet one
never. Numenta's anomaly likelihood (Ahmad et al., 2017) calibrates it per
feature against the feature's own recent history:

1. ``a`` = the mean of the last ``averaging`` raw scores (the current one
   included);
2. a Gaussian of ``a`` over the last ``window`` rows, re-estimated every
   ``reestimate_every`` rows from the rows *before* the current one, leaving
   out the first ``learning_period`` rows of the stream (a detector's first
   scores are wild and would widen the Gaussian for a whole window) and kept
   at the uninformative mean 0.5, σ 1000 while fewer than
   ``reestimate_every`` rows are available; with its
   mean at least ``min_mean`` and its variance at least ``min_variance``; a
   feature whose *values* barely moved over the window (variance below
   ``flat_variance``) gets the uninformative mean 0.5, σ 1000 instead;
3. the feature's tail ``p = Q(|a - μ| / σ)``, the one-sided upper normal
   tail (a value of ``a`` below μ is reflected above it, as Numenta does).

The features are then combined, the smallest tail winning with a Bonferroni
factor: ``p = min(1, d · min_j p_j)``. Two consecutive combined ``p`` at or
below ``onset_p`` turn the second into ``onset_replacement`` (so a long
excursion alerts at its onset, not on every row), and an alert (``p <=
alert_p``) suppresses further alerts for ``refractory`` rows.

Everything is computed in log space. A batch gives exactly the result of
feeding its rows one at a time (for any split), and the state is bounded by
``window`` rows per feature and survives :meth:`AnomalyLikelihood.to_dict` /
:meth:`AnomalyLikelihood.from_dict` (JSON-able) exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.errors import ConfigError
from stream_detect.tails import normal_log_tail

__all__ = ["AnomalyLikelihood", "LikelihoodResult", "refractory_alerts"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: The Gaussian given to a feature whose values were flat over the window.
FLAT_MEAN = 0.5
FLAT_STD = 1000.0
#: Raw scores are capped here: large enough to be certain, small enough that
#: squares of averages stay finite.
_SCORE_CAP = 1e100


@dataclass(frozen=True)
class LikelihoodResult:
    """What one batch of ``B`` rows yields.

    ``log_p`` (B,) is the combined log tail after the onset rule, the score an
    alert compares; ``feature_log_p`` (B, d) the per-feature log tails (which
    feature drove an alert); ``alert`` (B,) the rows with ``log_p <= log
    alert_p`` that no earlier alert's refractory period suppressed.
    """

    log_p: Array
    feature_log_p: Array
    alert: BoolArray


def refractory_alerts(
    log_p: Array, log_threshold: float, refractory: int, rows_since_alert: int
) -> tuple[BoolArray, int]:
    """Rows with ``log_p <= log_threshold`` not within ``refractory`` rows after an alert.

    ``rows_since_alert`` counts the rows between the previous batch's last
    alert and this batch (a large number if there was none). Returns the
    alerts and the count to pass with the next batch.

    >>> alerts, since = refractory_alerts(np.array([-9.0, -9.0, 0.0, -9.0]), -5.0, 2, 10)
    >>> alerts.tolist(), since
    ([True, False, False, True], 0)
    """
    alert = np.zeros(log_p.size, dtype=bool)
    last = -rows_since_alert - 1
    # Candidates are rare, so walking them one by one is cheap.
    for row in np.flatnonzero(log_p <= log_threshold):
        if row - last > refractory:
            alert[row] = True
            last = int(row)
    return alert, log_p.size - 1 - last


class AnomalyLikelihood:
    """Numenta's anomaly likelihood per feature, combined over ``n_features``.

    Parameters
    ----------
    n_features : int
        Columns of the raw scores passed to :meth:`update`.
    window : int
        Rows of averaged scores the Gaussian is estimated from (8640: a month
        of 5-minute rows).
    averaging : int
        Raw scores averaged into ``a``.
    reestimate_every : int
        Rows between re-estimations of the Gaussian.
    refractory : int
        Rows after an alert in which no other alert is raised.
    alert_p : float
        Combined tail at or below which a row alerts.
    learning_period : int
        Rows at the start of the stream never used to estimate the Gaussian
        (Numenta uses 288; on NAB, with |z| scores counted from the first
        row, 288 scores about 2.5 points lower than 0: ``bench/nab_unlabelled.py``).
    min_mean, min_variance, flat_variance : float
        Lower bounds of the Gaussian's mean and variance, and the value
        variance below which a feature counts as flat.
    onset_p, onset_replacement : float
        The onset rule's two levels.

    Examples
    --------
    >>> layer = AnomalyLikelihood(1, reestimate_every=50, learning_period=0)
    >>> rng = np.random.default_rng(0)
    >>> scores = np.abs(rng.normal(size=(300, 1)))
    >>> scores[250] = 40.0
    >>> result = layer.update(scores, rng.normal(size=(300, 1)))
    >>> np.flatnonzero(result.alert).tolist()
    [250]
    """

    def __init__(
        self,
        n_features: int,
        window: int = 8640,
        averaging: int = 10,
        reestimate_every: int = 100,
        refractory: int = 30,
        alert_p: float = 1e-5,
        learning_period: int = 0,
        min_mean: float = 0.03,
        min_variance: float = 3e-4,
        flat_variance: float = 1.5e-5,
        onset_p: float = 1e-5,
        onset_replacement: float = 1e-3,
    ) -> None:
        for key, count in (
            ("n_features", n_features),
            ("window", window),
            ("averaging", averaging),
            ("reestimate_every", reestimate_every),
        ):
            if not (isinstance(count, int) and count >= 1):
                raise ConfigError(key, count, "an integer >= 1")
        for key, count in (("refractory", refractory), ("learning_period", learning_period)):
            if not (isinstance(count, int) and count >= 0):
                raise ConfigError(key, count, "an integer >= 0")
        for key, prob in (("alert_p", alert_p), ("onset_p", onset_p)):
            if not 0.0 < prob < 1.0:
                raise ConfigError(key, prob, "a probability strictly between 0 and 1")
        self.n_features = n_features
        self.window = window
        self.averaging = averaging
        self.reestimate_every = reestimate_every
        self.refractory = refractory
        self.alert_p = alert_p
        self.learning_period = learning_period
        self.min_mean = min_mean
        self.min_variance = min_variance
        self.flat_variance = flat_variance
        self.onset_p = onset_p
        self.onset_replacement = onset_replacement
        self.rows = 0
        self._recent_raw = np.zeros((0, n_features))
        self._averaged = np.zeros((0, n_features))
        self._values = np.zeros((0, n_features))
        self._mean = np.full(n_features, FLAT_MEAN)
        self._std = np.full(n_features, FLAT_STD)
        self._previous_log_p = 0.0
        self._rows_since_alert = refractory + 1

    # ------------------------------------------------------------ per batch

    def _averages(self, scores: Array) -> Array:
        """``a`` per row: the running mean of the last ``averaging`` raw scores."""
        history = np.concatenate([self._recent_raw, scores])
        offset = self._recent_raw.shape[0]
        rows = np.arange(scores.shape[0]) + offset
        total = np.zeros_like(scores)
        count = np.zeros(scores.shape[0])
        # Newest first, a fixed order, so any batch split adds the same floats.
        for lag in range(self.averaging):
            source = rows - lag
            present = source >= 0
            total = total + np.where(present[:, None], history[np.maximum(source, 0)], 0.0)
            count = count + present
        averages: Array = total / count[:, None]
        return averages

    def _estimate(self, averaged: Array, values: Array) -> tuple[Array, Array]:
        """The Gaussian of the averaged scores over one window (rows oldest first)."""
        if averaged.shape[0] < self.reestimate_every:
            return np.full(self.n_features, FLAT_MEAN), np.full(self.n_features, FLAT_STD)
        mean = np.mean(averaged, axis=0)
        variance = np.mean(np.square(averaged - mean), axis=0)
        value_variance = np.mean(np.square(values - np.mean(values, axis=0)), axis=0)
        flat = value_variance < self.flat_variance
        mean = np.where(flat, FLAT_MEAN, np.maximum(mean, self.min_mean))
        std = np.where(flat, FLAT_STD, np.sqrt(np.maximum(variance, self.min_variance)))
        return mean, std

    def update(self, scores: Array, values: Array) -> LikelihoodResult:
        """Score a batch of raw scores ``(B, d)`` with their feature values ``(B, d)``.

        Row ``i`` depends only on rows up to ``i`` (of this and earlier
        batches); the state then covers the whole batch.
        """
        scores = np.asarray(scores, dtype=np.float64)
        values = np.asarray(values, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[1] != self.n_features or values.shape != scores.shape:
            raise ValueError(
                f"scores and values must both be (B, {self.n_features}); "
                f"got {scores.shape} and {values.shape}"
            )
        if np.isnan(scores).any():
            raise ValueError("raw scores must not be NaN")
        # An infinite score would turn the window's Gaussian into NaN for a whole window.
        scores = np.minimum(scores, _SCORE_CAP)
        batch = scores.shape[0]
        averaged = self._averages(scores)
        all_averaged = np.concatenate([self._averaged, averaged])
        all_values = np.concatenate([self._values, values])
        offset = self._averaged.shape[0]

        means = np.empty((batch, self.n_features))
        stds = np.empty((batch, self.n_features))
        mean, std = self._mean, self._std
        first_start = -self.rows % self.reestimate_every
        starts = list(range(first_start, batch, self.reestimate_every))
        bounds = [*starts, batch]
        if not starts or starts[0] != 0:
            means[: bounds[0]], stds[: bounds[0]] = mean, std
        for start, stop in zip(starts, bounds[1:], strict=False):
            end = offset + start
            # Row index in all_averaged of the stream's row `learning_period`.
            learned = self.learning_period - (self.rows - offset)
            first = max(0, end - self.window, learned)
            first = min(first, end)
            mean, std = self._estimate(all_averaged[first:end], all_values[first:end])
            means[start:stop], stds[start:stop] = mean, std

        feature_log_p = normal_log_tail((averaged - means) / stds, two_sided=False)
        raw_log_p = np.minimum(0.0, math.log(self.n_features) + feature_log_p.min(axis=1))
        previous = np.concatenate([[self._previous_log_p], raw_log_p[:-1]])
        log_onset = math.log(self.onset_p)
        repeated = (raw_log_p <= log_onset) & (previous <= log_onset)
        log_p = np.where(repeated, math.log(self.onset_replacement), raw_log_p)
        alert, self._rows_since_alert = refractory_alerts(
            log_p, math.log(self.alert_p), self.refractory, self._rows_since_alert
        )

        self.rows += batch
        self._mean, self._std = mean, std
        if batch:
            self._previous_log_p = float(raw_log_p[-1])
        keep = self.averaging - 1
        raw_history = np.concatenate([self._recent_raw, scores])
        self._recent_raw = (
            raw_history[max(0, raw_history.shape[0] - keep) :] if keep else raw_history[:0]
        )
        self._averaged = all_averaged[-self.window :]
        self._values = all_values[-self.window :]
        return LikelihoodResult(log_p, feature_log_p, alert)

    # ----------------------------------------------------------- checkpoint

    _PARAMETERS = (
        "n_features",
        "window",
        "averaging",
        "reestimate_every",
        "refractory",
        "alert_p",
        "learning_period",
        "min_mean",
        "min_variance",
        "flat_variance",
        "onset_p",
        "onset_replacement",
    )

    def to_dict(self) -> dict[str, Any]:
        """Parameters and state as plain JSON-able values (floats round-trip exactly)."""
        return {
            "parameters": {name: getattr(self, name) for name in self._PARAMETERS},
            "rows": self.rows,
            "recent_raw": self._recent_raw.tolist(),
            "averaged": self._averaged.tolist(),
            "values": self._values.tolist(),
            "mean": self._mean.tolist(),
            "std": self._std.tolist(),
            "previous_log_p": self._previous_log_p,
            "rows_since_alert": self._rows_since_alert,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> AnomalyLikelihood:
        """The layer :meth:`to_dict` described, ready to continue the stream."""
        layer = cls(**state["parameters"])
        d = layer.n_features
        layer.rows = int(state["rows"])
        layer._recent_raw = np.array(state["recent_raw"], dtype=np.float64).reshape(-1, d)
        layer._averaged = np.array(state["averaged"], dtype=np.float64).reshape(-1, d)
        layer._values = np.array(state["values"], dtype=np.float64).reshape(-1, d)
        layer._mean = np.array(state["mean"], dtype=np.float64)
        layer._std = np.array(state["std"], dtype=np.float64)
        layer._previous_log_p = float(state["previous_log_p"])
        layer._rows_since_alert = int(state["rows_since_alert"])
        return layer
