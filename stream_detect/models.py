"""Density models behind one small interface: score before learning, then learn.

A :class:`Model` answers, for a block of rows, the score each row gets from
the model of everything learned before it (:meth:`Model.prequential`), and
learns rows when told to (:meth:`Model.learn`). The detector decides which rows
are learned; the model only does the arithmetic.

* :class:`GaussianModel` — the diagonal or full-covariance Gaussian on running
  moments; scores a whole block exactly with prefix sums.
* :class:`~stream_detect.river_model.RiverModel` (its own module) — a
  ``river.anomaly`` detector, one event at a time; it has no density: its
  ``log_p`` is NaN and its own score is the negated anomaly score, so lower
  is still more anomalous.

Which model names exist and what each kind supports (a checkpoint, a Gaussian
score that is comparable across keys, learning clipped to the alert boundary)
is declared once, in :data:`~stream_detect.model_kinds.MODEL_KINDS` (its own
module; the names are importable from here too); ask :func:`model_kind` or
:func:`supports` rather than testing a name's spelling.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from stream_detect.density import (
    DEFAULT_RELATIVE_FLOOR,
    DEFAULT_VARIANCE_FLOOR,
    full_contributions,
    gaussian_score,
    scale_free_log_pdf,
)
from stream_detect.errors import ConfigError, ModelError
from stream_detect.model_kinds import (
    MODEL_KINDS,
    MODEL_PATTERN,
    Capability,
    ModelKind,
    model_kind,
    model_kinds,
    supports,
)
from stream_detect.precision import score_full_prequential
from stream_detect.prior import DeferredTails, NormalInverseGammaPrior
from stream_detect.stats import Prefix, RunningCovariance, RunningMoments
from stream_detect.tails import chi2_log_sf

__all__ = [
    "MODEL_KINDS",
    "MODEL_PATTERN",
    "Capability",
    "GaussianModel",
    "Model",
    "ModelKind",
    "ScoreBlock",
    "ScoreRule",
    "build_model",
    "model_kind",
    "model_kinds",
    "supports",
]

#: From this many features on, the full model scores a block with low-rank
#: updates of one factorisation per run of rows (d² per event) instead of a
#: factorisation per row (d³); measured by ``bench/full_covariance.py``.
LOW_RANK_FULL_FEATURES = 16

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
#: Which score alerts compare: the calibrated log tail, log p(x) (the classic
#: rule of one model) or the scale-free log density (the classic rule per key).
ScoreRule = Literal["tail", "log_p", "scale_free"]
#: Per-feature direction codes: +1 only high values count, -1 only low, 0 both.
DIRECTION_CODES = {"both": 0, "high": 1, "low": -1}


@dataclass(frozen=True)
class ScoreBlock:
    """Scores of a block of rows, each under the model it was scored against.

    ``log_p`` is log p(x) (NaN while the model has learned nothing, and for
    models without a density); ``distance_sq`` the squared Mahalanobis
    distance (NaN for models without one); ``mean`` and ``spread`` the floored
    parameters per row (None for models without them), kept so contributions
    and clipping need no rescoring; ``model_score`` the own score of a model
    without a density (lower is more anomalous), None for a Gaussian;
    ``log_tail`` the log probability that a normal event lies at least this
    far out (a χ² tail of ``distance_sq``, or the prior's Student-t tails
    combined by Fisher's method), NaN for models without one.
    A full model scored by low-rank updates keeps ``contributions`` instead
    of a ``(B, d, d)`` stack of covariances, and its ``spread`` is None.
    """

    log_p: Array
    distance_sq: Array
    mean: Array | None = None
    spread: Array | None = None
    contributions: Array | None = None
    model_score: Array | None = None
    log_tail: Array | None = None
    #: The statistics each row was scored against, when the model scores from running moments.
    before: Prefix | None = None
    #: The prior's tails, computed for the rows asked for, in place of ``log_tail``.
    deferred: DeferredTails | None = None

    @property
    def scale_free(self) -> Array:
        """log p of the standardised event, ``-0.5 (D**2 + d log 2 pi)``: comparable across keys.

        A model without a Gaussian distance gives its own score, already free of scale.
        """
        if self.mean is None:
            return self.model_score if self.model_score is not None else self.log_p
        return scale_free_log_pdf(self.distance_sq, self.mean.shape[-1])

    @property
    def tail(self) -> Array:
        """The log tail probability; NaN for every row of a model without one."""
        return self.tail_at(np.arange(self.log_p.shape[0]))

    def tail_at(self, rows: NDArray[np.intp]) -> Array:
        """The log tail probability of ``rows`` alone (NaN for a model without one)."""
        if self.deferred is not None:
            return self.deferred.at(rows)
        if self.log_tail is None:
            return np.full(rows.shape, np.nan)
        out: Array = self.log_tail[rows]
        return out

    def decision(self, rule: ScoreRule) -> Array:
        """The scores alerts are decided on under ``rule``; lower is more anomalous.

        A model's own score when it has no density, whatever the rule; else
        the log tail (``"tail"``: the same false alert rate on every stream
        and key), log p(x) (``"log_p"``, the classic rule of one model) or
        the scale-free log density (``"scale_free"``, the classic rule with a
        model per key).

        >>> block = ScoreBlock(np.array([-3.0]), np.array([1.0]), np.zeros((1, 1)),
        ...                    log_tail=np.array([-1.2]))
        >>> [block.decision(r).round(4).tolist() for r in ("log_p", "scale_free", "tail")]
        [[-3.0], [-1.4189], [-1.2]]
        """
        if self.model_score is not None:
            return self.model_score
        if rule == "tail":
            return self.tail
        return self.scale_free if rule == "scale_free" else self.log_p


class Model(ABC):
    """Scores rows against what it has learned; learns the rows it is given."""

    #: True if :meth:`prequential` scores many rows exactly in one call;
    #: False if the caller must pass one row at a time.
    exact_blocks: bool = True

    @property
    def taught_blocks(self) -> bool:
        """True if :meth:`prequential_taught` is available (rows may teach other vectors)."""
        return False

    @abstractmethod
    def prequential(self, X: Array, learn: BoolArray) -> ScoreBlock:
        """Score each row against the model of everything before it; learn nothing."""

    def prequential_taught(
        self, X: Array, taught: Array, learn: BoolArray, slots: NDArray[np.intp]
    ) -> ScoreBlock:
        """Score row ``i`` of ``X`` against the model just before ``taught[slots[i]]``.

        The model is taken to learn, in order, the rows of ``taught`` where
        ``learn`` is true (a row may teach a clipped copy of itself, nothing,
        or be followed by other rows); nothing is learned for real. Only a
        model whose :attr:`taught_blocks` is True implements it.
        """
        raise NotImplementedError(f"{type(self).__name__} scores only its own rows")

    @abstractmethod
    def score(self, X: Array) -> ScoreBlock:
        """Score every row against the current model."""

    @abstractmethod
    def learn(self, X: Array) -> None:
        """Learn the rows of ``X`` in order."""

    @abstractmethod
    def contributions(self, X: Array, block: ScoreBlock, rows: NDArray[np.intp]) -> Array | None:
        """Per-feature contributions to ``distance_sq`` for ``rows`` of a block (None if none)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot of the learned state."""
        raise ModelError(f"{type(self).__name__} cannot be saved without pickle")

    def restore(self, data: dict[str, Any]) -> None:
        """Load a state written by :meth:`to_dict`; :class:`ModelError` if it does not fit."""
        raise ModelError(f"{type(self).__name__} cannot be restored from a checkpoint")


class GaussianModel(Model):
    """Diagonal or full-covariance Gaussian density on running moments.

    >>> m = GaussianModel(2, full=False)
    >>> m.learn(np.array([[0.0, 0.0], [2.0, 2.0]]))
    >>> m.score(np.array([[1.0, 1.0]])).distance_sq.tolist()
    [0.0]
    """

    def __init__(
        self,
        d: int,
        *,
        full: bool,
        half_life: float | None = None,
        variance_floor: float = DEFAULT_VARIANCE_FLOOR,
        relative_floor: float = DEFAULT_RELATIVE_FLOOR,
        low_rank: bool | None = None,
        prior: NormalInverseGammaPrior | None = None,
        direction: NDArray[np.int8] | None = None,
    ) -> None:
        self.full = full
        self.stats: RunningMoments | RunningCovariance = (
            RunningCovariance(d, half_life) if full else RunningMoments(d, half_life)
        )
        self.variance_floor = variance_floor
        self.relative_floor = relative_floor
        # The Student-t tails are per feature: a full covariance keeps the χ² tail.
        self.prior = None if full else prior
        self.direction = direction if direction is not None and np.any(direction) else None
        if low_rank is None:
            low_rank = d >= LOW_RANK_FULL_FEATURES
        #: True if the full model scores blocks by low-rank updates (precision.py)
        #: rather than by a factorisation of every row's covariance.
        self.low_rank = full and low_rank

    @classmethod
    def from_moments(
        cls,
        n: float,
        mean: Array,
        spread: Array,
        *,
        half_life: float | None = None,
        variance_floor: float = DEFAULT_VARIANCE_FLOOR,
        relative_floor: float = DEFAULT_RELATIVE_FLOOR,
    ) -> GaussianModel:
        """A model that has learned ``n`` events of this mean and population variance.

        A ``(d, d)`` ``spread`` (a population covariance) makes a full-covariance
        model. It learns on from there.

        >>> m = GaussianModel.from_moments(2.0, np.array([1.0]), np.array([1.0]))
        >>> m.learn(np.array([[1.0]])); m.n, m.stats.var.round(6).tolist()
        (3.0, [0.666667])
        """
        model = cls(
            mean.shape[0],
            full=spread.ndim == 2,
            half_life=half_life,
            variance_floor=variance_floor,
            relative_floor=relative_floor,
        )
        model.stats.n = float(n)
        model.stats.mean = np.array(mean, dtype=np.float64)
        model.stats.second = np.asarray(spread, dtype=np.float64) * float(n)
        return model

    @property
    def n(self) -> float:
        """Weight of what has been learned (the event count when nothing is forgotten)."""
        return self.stats.n

    def prequential(self, X: Array, learn: BoolArray) -> ScoreBlock:
        if self.low_rank:
            return self._score_low_rank(X, learn)
        before = self.stats.prequential(X, learn)
        return self._score_with(X, before, before.mean, before.spread)

    @property
    def taught_blocks(self) -> bool:
        return True

    def prequential_taught(
        self, X: Array, taught: Array, learn: BoolArray, slots: NDArray[np.intp]
    ) -> ScoreBlock:
        if self.low_rank:
            return self._score_low_rank_taught(X, taught, learn, slots)
        every = self.stats.prequential(taught, learn)
        if taught.shape[0] == X.shape[0]:
            before = every
        else:
            before = Prefix(every.n[slots], every.mean[slots], every.second[slots])
        return self._score_with(X, before, before.mean, before.spread)

    def score_against(self, X: Array, before: Prefix) -> ScoreBlock:
        """Score row ``i`` of ``X`` against the statistics ``before`` it (one row of ``before``)."""
        return self._score_with(X, before, before.mean, before.spread)

    def clone_empty(self) -> GaussianModel:
        """A model with this one's settings (floors, prior, directions) that has learned nothing."""
        return GaussianModel(
            self.stats.d,
            full=self.full,
            half_life=self.stats.half_life,
            variance_floor=self.variance_floor,
            relative_floor=self.relative_floor,
            low_rank=self.low_rank,
            prior=self.prior,
            direction=self.direction,
        )

    def score(self, X: Array) -> ScoreBlock:
        stats = self.stats
        rows = X.shape[0]
        # The tails need the statistics per row; the density is cheaper on the shared ones.
        before = Prefix(
            np.full(rows, stats.n),
            np.broadcast_to(stats.mean, (rows, *stats.mean.shape)),
            np.broadcast_to(stats.second, (rows, *stats.second.shape)),
        )
        spread = stats.cov if isinstance(stats, RunningCovariance) else stats.var
        return self._score_with(X, before, stats.mean, spread)

    def watched(self, X: Array, mean: Array) -> Array:
        """``X`` with each value on a feature's ignored side of the mean moved to the mean.

        With ``direction`` +1 (only high values matter) a value below the
        mean scores as the mean itself, with -1 a value above it: a deviation
        the user does not care about adds nothing to the distance, log p, the
        tail or the contributions. Without directions ``X`` is returned as is.

        >>> m = GaussianModel(2, full=False, direction=np.array([1, 0], dtype=np.int8))
        >>> m.watched(np.array([[-3.0, -3.0], [3.0, 3.0]]), np.zeros(2)).tolist()
        [[0.0, -3.0], [3.0, 3.0]]
        """
        if self.direction is None:
            return X
        below = mean > X
        ignored = ((self.direction > 0) & below) | ((self.direction < 0) & ~below)
        out: Array = np.where(ignored, np.broadcast_to(mean, X.shape), X)
        return out

    def _score_with(self, X: Array, before: Prefix, mean: Array, spread: Array) -> ScoreBlock:
        """Score rows against ``before`` each one (NaN where nothing was learned).

        ``mean`` and ``spread`` are those of ``before``, per row or shared by all rows.
        """
        X = self.watched(X, mean)
        scored = gaussian_score(X, mean, spread, self.variance_floor, self.relative_floor)
        empty = before.n <= 0
        scored.log_p[empty] = np.nan
        scored.distance_sq[empty] = np.nan
        log_tail = deferred = None
        if self.prior is not None:
            deferred = self.prior.deferred_tails(X, before)
        else:
            log_tail = np.full(X.shape[0], np.nan)
            known = ~empty & np.isfinite(scored.distance_sq)
            log_tail[known] = chi2_log_sf(scored.distance_sq[known], X.shape[1])
        return ScoreBlock(
            scored.log_p,
            scored.distance_sq,
            np.broadcast_to(mean, X.shape),
            scored.spread,
            scored.contributions,
            log_tail=log_tail,
            before=before,
            deferred=deferred,
        )

    def _score_low_rank(
        self, X: Array, learn: BoolArray, targets: Array | None = None
    ) -> ScoreBlock:
        """Prequential scores of the full model in O(d²) per row (see ``precision.py``).

        Row ``i`` learns ``X[i]`` (if ``learn[i]``) and is scored as ``targets[i]``
        (default ``X[i]``).
        """
        assert isinstance(self.stats, RunningCovariance)
        scored = score_full_prequential(
            self.stats,
            X,
            learn,
            variance_floor=self.variance_floor,
            relative_floor=self.relative_floor,
            direction=self.direction,
            targets=targets,
        )
        log_tail = np.full(X.shape[0], np.nan)
        known = np.isfinite(scored.distance_sq)
        log_tail[known] = chi2_log_sf(scored.distance_sq[known], X.shape[1])
        return ScoreBlock(
            scored.log_p,
            scored.distance_sq,
            scored.mean,
            None,
            scored.contributions,
            log_tail=log_tail,
        )

    def _score_low_rank_taught(
        self, X: Array, taught: Array, learn: BoolArray, slots: NDArray[np.intp]
    ) -> ScoreBlock:
        """:meth:`prequential_taught` on the low-rank path: ``X`` scored in its ``slots``."""
        if taught.shape[0] == X.shape[0]:
            return self._score_low_rank(taught, learn, targets=X)
        # The vectors a deviation accepted inserts are scored too (rare), then dropped.
        targets = taught.copy()
        targets[slots] = X
        every = self._score_low_rank(taught, learn, targets=targets)
        assert (
            every.mean is not None
            and every.contributions is not None
            and every.log_tail is not None
        )
        return ScoreBlock(
            every.log_p[slots],
            every.distance_sq[slots],
            every.mean[slots],
            None,
            every.contributions[slots],
            log_tail=every.log_tail[slots],
        )

    def learn(self, X: Array) -> None:
        if X.shape[0]:
            self.stats.learn(X)

    def contributions(self, X: Array, block: ScoreBlock, rows: NDArray[np.intp]) -> Array | None:
        if block.contributions is not None:
            return block.contributions[rows]
        assert block.mean is not None and block.spread is not None
        cov = block.spread if block.spread.ndim == 2 else block.spread[rows]
        return full_contributions(X[rows], block.mean[rows], cov)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "gaussian", "stats": self.stats.to_dict()}

    def restore(self, data: dict[str, Any]) -> None:
        """Load a state written by :meth:`to_dict`; :class:`ModelError` if it does not fit."""
        cls = RunningCovariance if self.full else RunningMoments
        stats = cls.from_dict(data.get("stats", {}))
        if stats.d != self.stats.d:
            raise ModelError(f"saved model has {stats.d} features, this one {self.stats.d}")
        stats.half_life, stats.decay = self.stats.half_life, self.stats.decay
        self.stats = stats


def build_model(
    kind: str,
    features: tuple[str, ...],
    *,
    half_life: float | None = None,
    variance_floor: float = DEFAULT_VARIANCE_FLOOR,
    params: dict[str, Any] | None = None,
    river_scaler: str = "minmax",
    prior: NormalInverseGammaPrior | None = None,
    direction: dict[str, str] | None = None,
) -> Model:
    """Build an empty model from its name: ``diagonal``, ``full`` or ``river:NAME``.

    ``prior`` gives a diagonal model Student-t tails; ``direction`` maps a
    feature to ``high``, ``low`` or ``both`` (the default) for a Gaussian model.

    >>> type(build_model("full", ("a", "b"))).__name__
    'GaussianModel'
    """
    if model_kind(kind).gaussian_score:
        return GaussianModel(
            len(features),
            full=kind == "full",
            half_life=half_life,
            variance_floor=variance_floor,
            prior=prior,
            direction=direction_codes(features, direction),
        )
    # Imported here: the river model's module imports this one for its interface.
    from stream_detect.river_model import RiverModel

    return RiverModel(kind.removeprefix("river:"), features, params, river_scaler)


def direction_codes(
    features: tuple[str, ...], direction: dict[str, str] | None
) -> NDArray[np.int8] | None:
    """Per-feature codes of a ``[direction]`` table (+1 high, -1 low, 0 both); None if empty.

    >>> direction_codes(("a", "b"), {"b": "low"}).tolist()
    [0, -1]
    """
    if not direction:
        return None
    for name, word in direction.items():
        if name not in features:
            raise ConfigError(f"direction.{name}", word, f"a feature among {list(features)}")
        if word not in DIRECTION_CODES:
            raise ConfigError(f"direction.{name}", word, "high, low or both")
    return np.array([DIRECTION_CODES[direction.get(f, "both")] for f in features], dtype=np.int8)
