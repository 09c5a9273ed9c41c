"""The Gaussian model: a diagonal or full-covariance Gaussian density on running moments.

:class:`GaussianModel` implements the :class:`~stream_detect.model_interface.Model`
interface exactly over a block: each row is scored against the moments of
the rows learned before it, from prefix sums
(:meth:`~stream_detect.stats.RunningMoments.prequential`), never by a loop
per event. From :data:`LOW_RANK_FULL_FEATURES` features on, the full model
scores a block by low-rank updates of one factorisation
(:mod:`~stream_detect.precision`) instead. Its tails: the prior's Student-t
tails for a diagonal model with a prior, else the χ² tail of the squared
Mahalanobis distance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.density import (
    DEFAULT_RELATIVE_FLOOR,
    DEFAULT_VARIANCE_FLOOR,
    Floor,
    full_contributions,
    gaussian_score,
)
from stream_detect.errors import ModelError
from stream_detect.gamma_tails import chi2_log_sf
from stream_detect.model_interface import Array, BoolArray, Model, ScoreBlock
from stream_detect.prequential import Prefix
from stream_detect.prior import NormalInverseGammaPrior
from stream_detect.stats import RunningCovariance, RunningMoments

__all__ = ["LOW_RANK_FULL_FEATURES", "GaussianModel"]

#: From this many features on, the full model scores a block with low-rank
#: updates of one factorisation per run of rows (d² per event) instead of a
#: factorisation per row (d³); measured by ``bench/full_covariance.py``.
LOW_RANK_FULL_FEATURES = 16


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
        variance_floor: Floor = DEFAULT_VARIANCE_FLOOR,
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
        #: The least Student-t scale per feature (None: none), as the integer
        #: features' rounding asks (:mod:`stream_detect.quantisation`).
        self.scale_floor: Array | None = None
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
        variance_floor: Floor = DEFAULT_VARIANCE_FLOOR,
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
        model = GaussianModel(
            self.stats.d,
            full=self.full,
            half_life=self.stats.half_life,
            variance_floor=self.variance_floor,
            relative_floor=self.relative_floor,
            low_rank=self.low_rank,
            prior=self.prior,
            direction=self.direction,
        )
        model.scale_floor = self.scale_floor
        return model

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
            deferred = self.prior.deferred_tails(X, before, self.scale_floor)
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
        # Imported here: only the full model needs it, and a diagonal run starts faster.
        from stream_detect.precision import score_full_prequential

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
