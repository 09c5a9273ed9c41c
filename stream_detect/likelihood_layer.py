"""The anomaly likelihood as the detector's alert rule, per key: |z| per feature, then its tail.

With ``likelihood = true`` every feature of a key gets its own Welford
Gaussian (no forgetting) that scores the event's |z| against the events
before it and then learns the event, clipped to μ ± k·σ (``likelihood_clip``)
when it lies further out, so one wild value cannot blind it while a lasting
change is still learned. While a feature has been constant its variance is
floored by its resolution (the smallest change seen so far: step²/12), so the
first change of a flat metric is surprising, not impossible. The |z| of each
feature feed :class:`~stream_detect.likelihood.AnomalyLikelihood` (the tail of
their recent mean, smallest tail wins, the onset rule and a refractory period).

Everything runs event by event in arrival order, so any batch split gives the
same floats; the state is bounded per key (the likelihood's window) and
JSON-able.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.likelihood import AnomalyLikelihood, LikelihoodResult

__all__ = ["FeatureDeviations", "KeyedLikelihood"]

Array = NDArray[np.float64]


@dataclass
class FeatureDeviations:
    """|z| of each feature against a Welford Gaussian of the rows before, learning clipped.

    >>> deviations = FeatureDeviations(1, clip=6.0)
    >>> z = deviations.update(np.array([[0.0], [2.0], [1.0], [1.0], [100.0]]))
    >>> z[:, 0].round(3).tolist()
    [0.0, 3.464, 0.0, 0.0, 140.007]
    """

    n_features: int
    clip: float = 6.0
    #: What a value past ``clip`` σ teaches: ``clip`` (learned at ±clip σ), ``exclude``, ``learn``.
    flagged: str = "clip"

    def __post_init__(self) -> None:
        d = self.n_features
        #: Values learned per feature (an excluded value is not).
        self.counts = [0] * d
        self.mean = [0.0] * d
        self.m2 = [0.0] * d
        self.step = [math.inf] * d
        self.previous = [math.nan] * d

    def update(self, X: Array) -> Array:
        """|z| per row and feature (0 before a value was learned); then each row is learned."""
        out = np.zeros(X.shape)
        for row, values in enumerate(X.tolist()):
            for j, x in enumerate(values):
                count = self.counts[j]
                if count and x != self.previous[j]:
                    self.step[j] = min(self.step[j], abs(x - self.previous[j]))
                self.previous[j] = x
                if count:
                    step = self.step[j]
                    floor = step * step / 12.0 if math.isfinite(step) else 0.0
                    std = math.sqrt(max(self.m2[j] / count, floor, 1e-300))
                    z = (x - self.mean[j]) / std
                    out[row, j] = abs(z)
                    if abs(z) > self.clip:
                        if self.flagged == "exclude":
                            continue
                        if self.flagged == "clip":
                            x = self.mean[j] + math.copysign(self.clip * std, z)
                delta = x - self.mean[j]
                self.counts[j] = count + 1
                self.mean[j] += delta / (count + 1)
                self.m2[j] += delta * (x - self.mean[j])
        return out

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON-able values (an infinite step as None)."""
        return {
            "n_features": self.n_features,
            "clip": self.clip,
            "flagged": self.flagged,
            "counts": self.counts,
            "mean": self.mean,
            "m2": self.m2,
            "step": [None if math.isinf(s) else s for s in self.step],
            "previous": [None if math.isnan(p) else p for p in self.previous],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> FeatureDeviations:
        """The deviations :meth:`to_dict` described."""
        deviations = cls(int(state["n_features"]), float(state["clip"]), str(state["flagged"]))
        deviations.counts = [int(v) for v in state["counts"]]
        deviations.mean = [float(v) for v in state["mean"]]
        deviations.m2 = [float(v) for v in state["m2"]]
        deviations.step = [math.inf if s is None else float(s) for s in state["step"]]
        deviations.previous = [math.nan if p is None else float(p) for p in state["previous"]]
        return deviations


class KeyedLikelihood:
    """One :class:`FeatureDeviations` and one :class:`AnomalyLikelihood` per key, bounded in keys.

    Examples
    --------
    >>> layer = KeyedLikelihood(1, {"reestimate_every": 50}, clip=6.0, max_keys=10)
    >>> X = np.random.default_rng(1).normal(size=(400, 1))
    >>> X[300] = 30.0
    >>> np.flatnonzero(layer.update(X, ["a"] * 400).alert).tolist()
    [300]
    """

    def __init__(
        self,
        n_features: int,
        parameters: dict[str, Any],
        *,
        clip: float,
        max_keys: int,
        flagged: str = "clip",
    ) -> None:
        self.n_features = n_features
        self.parameters = dict(parameters)
        self.clip = clip
        self.flagged = flagged
        self.max_keys = max_keys
        self._keys: OrderedDict[str, tuple[FeatureDeviations, AnomalyLikelihood]] = OrderedDict()

    def _state(self, key: str) -> tuple[FeatureDeviations, AnomalyLikelihood]:
        if key not in self._keys:
            self._keys[key] = (
                FeatureDeviations(self.n_features, self.clip, self.flagged),
                AnomalyLikelihood(self.n_features, **self.parameters),
            )
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        self._keys.move_to_end(key)
        return self._keys[key]

    def update(self, X: Array, keys: list[str]) -> LikelihoodResult:
        """The likelihood of each row under its key's state, rows of a key in order."""
        rows = X.shape[0]
        log_p = np.zeros(rows)
        feature_log_p = np.zeros((rows, self.n_features))
        alert = np.zeros(rows, dtype=bool)
        order: dict[str, list[int]] = {}
        for row, key in enumerate(keys):
            order.setdefault(key, []).append(row)
        for key, members in order.items():
            index = np.array(members, dtype=np.intp)
            deviations, layer = self._state(key)
            result = layer.update(deviations.update(X[index]), X[index])
            log_p[index] = result.log_p
            feature_log_p[index] = result.feature_log_p
            alert[index] = result.alert
        return LikelihoodResult(log_p, feature_log_p, alert)

    def to_dict(self) -> dict[str, Any]:
        """Every key's state, least recently seen first."""
        return {
            key: {"deviations": deviations.to_dict(), "likelihood": layer.to_dict()}
            for key, (deviations, layer) in self._keys.items()
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load what :meth:`to_dict` wrote."""
        self._keys.clear()
        for key, entry in state.items():
            self._keys[key] = (
                FeatureDeviations.from_dict(entry["deviations"]),
                AnomalyLikelihood.from_dict(entry["likelihood"]),
            )
