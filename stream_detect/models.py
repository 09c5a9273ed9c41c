"""Density models behind one small interface: score before learning, then learn.

A :class:`Model` answers, for a block of rows, the score each row gets from
the model of everything learned before it (:meth:`Model.prequential`), and
learns rows when told to (:meth:`Model.learn`). The detector decides which rows
are learned; the model only does the arithmetic.

* :class:`GaussianModel` — the diagonal or full-covariance Gaussian on running
  moments; scores a whole block exactly with prefix sums.
* :class:`RiverModel` — any ``river.anomaly`` detector, one event at a time;
  its score is the negated anomaly score, so lower is still more anomalous.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.density import (
    DEFAULT_RELATIVE_FLOOR,
    DEFAULT_VARIANCE_FLOOR,
    diagonal_contributions,
    floor_covariance,
    floor_variance,
    full_contributions,
    full_distance,
    log_pdf_from_distance,
    scale_free_log_pdf,
)
from stream_detect.errors import ConfigError, DependencyError, ModelError
from stream_detect.precision import RunningPrecision
from stream_detect.stats import RunningCovariance, RunningMoments

__all__ = ["GaussianModel", "Model", "RiverModel", "ScoreBlock", "build_model"]

#: From this many features on, the full model scores a block one row at a time
#: with a running inverse (d² per event) instead of a factorisation per row (d³).
SEQUENTIAL_FULL_FEATURES = 64

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class ScoreBlock:
    """Scores of a block of rows, each under the model it was scored against.

    ``log_p`` is log p(x) (NaN while the model has learned nothing);
    ``distance_sq`` the squared Mahalanobis distance (NaN for models without
    one); ``mean`` and ``spread`` the floored parameters per row (None for
    models without them), kept so contributions and clipping need no rescoring.
    A full model scored with a running inverse keeps ``contributions`` instead
    of a ``(B, d, d)`` stack of covariances, and its ``spread`` is None.
    """

    log_p: Array
    distance_sq: Array
    mean: Array | None = None
    spread: Array | None = None
    contributions: Array | None = None

    @property
    def scale_free(self) -> Array:
        """log p of the standardised event, ``-0.5 (D**2 + d log 2 pi)``: comparable across keys."""
        if self.mean is None:
            # No Gaussian distance (a river model): its own score is already free of scale.
            return self.log_p
        return scale_free_log_pdf(self.distance_sq, self.mean.shape[-1])


class Model(ABC):
    """Scores rows against what it has learned; learns the rows it is given."""

    #: True if :meth:`prequential` scores many rows exactly in one call;
    #: False if the caller must pass one row at a time.
    exact_blocks: bool = True

    @abstractmethod
    def prequential(self, X: Array, learn: BoolArray) -> ScoreBlock:
        """Score each row against the model of everything before it; learn nothing."""

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
        sequential: bool | None = None,
    ) -> None:
        self.full = full
        self.stats: RunningMoments | RunningCovariance = (
            RunningCovariance(d, half_life) if full else RunningMoments(d, half_life)
        )
        self.variance_floor = variance_floor
        self.relative_floor = relative_floor
        if sequential is None:
            sequential = d >= SEQUENTIAL_FULL_FEATURES
        #: The full model's running inverse (built when first needed), if it scores row by row.
        self.sequential = full and sequential
        self._precision: RunningPrecision | None = None
        self._precision_of: object = None

    @property
    def n(self) -> float:
        """Weight of what has been learned (the event count when nothing is forgotten)."""
        return self.stats.n

    def prequential(self, X: Array, learn: BoolArray) -> ScoreBlock:
        if self.sequential:
            scored = self._running_precision().prequential(X, learn)
            return ScoreBlock(
                scored.log_p, scored.distance_sq, scored.mean, None, scored.contributions
            )
        prefix = self.stats.prequential(X, learn)
        block = self._score_with(X, prefix.mean, prefix.spread)
        empty = prefix.n <= 0
        if np.any(empty):
            block.log_p[empty] = np.nan
            block.distance_sq[empty] = np.nan
        return block

    def score(self, X: Array) -> ScoreBlock:
        spread = self.stats.cov if isinstance(self.stats, RunningCovariance) else self.stats.var
        block = self._score_with(X, self.stats.mean, spread)
        if self.stats.n <= 0:
            block.log_p[:] = np.nan
            block.distance_sq[:] = np.nan
        return block

    def _score_with(self, X: Array, mean: Array, spread: Array) -> ScoreBlock:
        d = X.shape[-1]
        shared_mean = np.broadcast_to(mean, X.shape)
        if self.full:
            cov = floor_covariance(spread, mean, self.variance_floor, self.relative_floor)
            distance_sq, log_det = full_distance(X, mean, cov)
            log_p = log_pdf_from_distance(distance_sq, log_det, d)
            return ScoreBlock(log_p, distance_sq, shared_mean, cov)
        var = floor_variance(spread, mean, self.variance_floor, self.relative_floor)
        contrib = diagonal_contributions(X, mean, var)
        distance_sq = np.sum(contrib, axis=-1)
        log_p = log_pdf_from_distance(distance_sq, np.sum(np.log(var), axis=-1), d)
        return ScoreBlock(log_p, distance_sq, shared_mean, var, contrib)

    def _running_precision(self) -> RunningPrecision:
        if self._precision is None or self._precision_of is not self.stats:
            # Built from (and then kept in step with) this very stats object.
            assert isinstance(self.stats, RunningCovariance)
            self._precision_of = self.stats
            self._precision = RunningPrecision.from_moments(
                self.stats, self.variance_floor, self.relative_floor
            )
        return self._precision

    def learn(self, X: Array) -> None:
        if X.shape[0]:
            self.stats.learn(X)
            if self._precision is not None and self._precision_of is self.stats:
                self._precision.learn(X)

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


class RiverModel(Model):
    """A ``river.anomaly`` detector, scored and learned one event at a time.

    Its ``log_p`` is the negated anomaly score, so that lower still means more
    anomalous and one thresholding rule serves every model.
    """

    exact_blocks = False

    def __init__(
        self,
        name: str,
        features: tuple[str, ...],
        params: dict[str, Any] | None = None,
        scaler: str = "minmax",
    ) -> None:
        try:
            anomaly = importlib.import_module("river.anomaly")
            preprocessing = importlib.import_module("river.preprocessing")
        except ImportError as exc:  # pragma: no cover - river is a core dependency
            raise DependencyError("river", "river") from exc
        factory = getattr(anomaly, name, None)
        if factory is None or not isinstance(factory, type):
            known = sorted(n for n in dir(anomaly) if n[:1].isupper())
            raise ConfigError("model", f"river:{name}", f"one of river:{', river:'.join(known)}")
        try:
            detector = factory(**(params or {}))
        except (TypeError, ValueError) as exc:
            expected = f"parameters river.anomaly.{name} takes ({exc})"
            raise ConfigError("model_params", params, expected) from exc
        if scaler == "minmax":
            detector = preprocessing.MinMaxScaler() | detector
        elif scaler == "standard":
            detector = preprocessing.StandardScaler() | detector
        self.detector = detector
        self.features = features

    def _row(self, x: Array) -> dict[str, float]:
        return dict(zip(self.features, x.tolist(), strict=True))

    def prequential(self, X: Array, learn: BoolArray) -> ScoreBlock:
        if X.shape[0] != 1:
            raise ValueError("a river model scores one row at a time")
        return self.score(X)

    def score(self, X: Array) -> ScoreBlock:
        log_p = np.array([-float(self.detector.score_one(self._row(x))) for x in X])
        return ScoreBlock(log_p, np.full(X.shape[0], np.nan))

    def learn(self, X: Array) -> None:
        for x in X:
            self.detector.learn_one(self._row(x))

    def contributions(self, X: Array, block: ScoreBlock, rows: NDArray[np.intp]) -> Array | None:
        return None


def build_model(
    kind: str,
    features: tuple[str, ...],
    *,
    half_life: float | None = None,
    variance_floor: float = DEFAULT_VARIANCE_FLOOR,
    params: dict[str, Any] | None = None,
    river_scaler: str = "minmax",
) -> Model:
    """Build an empty model from its name: ``diagonal``, ``full`` or ``river:NAME``.

    >>> type(build_model("full", ("a", "b"))).__name__
    'GaussianModel'
    """
    if kind in ("diagonal", "full"):
        return GaussianModel(
            len(features), full=kind == "full", half_life=half_life, variance_floor=variance_floor
        )
    if kind.startswith("river:"):
        return RiverModel(kind.removeprefix("river:"), features, params, river_scaler)
    raise ConfigError("model", kind, "diagonal, full or river:NAME")
