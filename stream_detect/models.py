"""Density models behind one small interface: score before learning, then learn.

A :class:`Model` answers, for a block of rows, the score each row gets from
the model of everything learned before it (:meth:`Model.prequential`), and
learns rows when told to (:meth:`Model.learn`). The detector decides which rows
are learned; the model only does the arithmetic.

* :class:`GaussianModel` — the diagonal or full-covariance Gaussian on running
  moments; scores a whole block exactly with prefix sums.
* :class:`RiverModel` — a ``river.anomaly`` detector, one event at a time;
  it has no density: its ``log_p`` is NaN and its own score is the negated
  anomaly score, so lower is still more anomalous.

Which model names exist and what each kind supports (a checkpoint, a Gaussian
score that is comparable across keys, learning clipped to the alert boundary)
is declared once, in :data:`MODEL_KINDS`; ask :func:`model_kind` or
:func:`supports` rather than testing a name's spelling.
"""

from __future__ import annotations

import importlib
import re
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
from stream_detect.errors import ConfigError, DependencyError, ModelError
from stream_detect.precision import RunningPrecision
from stream_detect.stats import RunningCovariance, RunningMoments

__all__ = [
    "MODEL_KINDS",
    "MODEL_PATTERN",
    "Capability",
    "GaussianModel",
    "Model",
    "ModelKind",
    "RiverModel",
    "ScoreBlock",
    "build_model",
    "model_kind",
    "model_kinds",
    "supports",
]

#: From this many features on, the full model scores a block one row at a time
#: with a running inverse (d² per event) instead of a factorisation per row (d³).
SEQUENTIAL_FULL_FEATURES = 64

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class ScoreBlock:
    """Scores of a block of rows, each under the model it was scored against.

    ``log_p`` is log p(x) (NaN while the model has learned nothing, and for
    models without a density); ``distance_sq`` the squared Mahalanobis
    distance (NaN for models without one); ``mean`` and ``spread`` the floored
    parameters per row (None for models without them), kept so contributions
    and clipping need no rescoring; ``model_score`` the own score of a model
    without a density (lower is more anomalous), None for a Gaussian.
    A full model scored with a running inverse keeps ``contributions`` instead
    of a ``(B, d, d)`` stack of covariances, and its ``spread`` is None.
    """

    log_p: Array
    distance_sq: Array
    mean: Array | None = None
    spread: Array | None = None
    contributions: Array | None = None
    model_score: Array | None = None

    @property
    def scale_free(self) -> Array:
        """log p of the standardised event, ``-0.5 (D**2 + d log 2 pi)``: comparable across keys.

        A model without a Gaussian distance gives its own score, already free of scale.
        """
        if self.mean is None:
            return self.model_score if self.model_score is not None else self.log_p
        return scale_free_log_pdf(self.distance_sq, self.mean.shape[-1])

    def decision(self, keyed: bool) -> Array:
        """The scores alerts are decided on; lower is more anomalous.

        A model's own score when it has no density; else the scale-free
        score with a model per key (one ε means the same deviation for every
        key) and log p(x), the classic rule, with a single model.

        >>> block = ScoreBlock(np.array([-3.0]), np.array([1.0]), np.zeros((1, 1)))
        >>> block.decision(False).tolist(), block.decision(True).round(4).tolist()
        ([-3.0], [-1.4189])
        """
        if self.model_score is not None:
            return self.model_score
        return self.scale_free if keyed else self.log_p


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
        scored = gaussian_score(X, mean, spread, self.variance_floor, self.relative_floor)
        shared_mean = np.broadcast_to(mean, X.shape)
        return ScoreBlock(
            scored.log_p, scored.distance_sq, shared_mean, scored.spread, scored.contributions
        )

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

    The anomaly score is not a log density: ``log_p`` is NaN and the block's
    ``model_score`` is the negated anomaly score, so that lower still means
    more anomalous and one thresholding rule serves every model.
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
        own = np.array([-float(self.detector.score_one(self._row(x))) for x in X])
        missing = np.full(X.shape[0], np.nan)
        return ScoreBlock(missing, missing.copy(), model_score=own)

    def learn(self, X: Array) -> None:
        for x in X:
            self.detector.learn_one(self._row(x))

    def contributions(self, X: Array, block: ScoreBlock, rows: NDArray[np.intp]) -> Array | None:
        return None


Capability = Literal["checkpointable", "gaussian_score", "clipped_learning"]


@dataclass(frozen=True)
class ModelKind:
    """A kind of model and what it supports.

    ``spelling`` is how the ``model`` setting names it (``river:NAME`` for a
    family); ``checkpointable`` says its state can be saved as data;
    ``gaussian_score`` that it gives log p(x) and a Mahalanobis distance
    (so a scale-free score and contributions); ``clipped_learning`` that a
    flagged event can be learned clipped to the alert boundary (it needs a mean).
    """

    spelling: str
    pattern: str
    description: str
    checkpointable: bool
    gaussian_score: bool
    clipped_learning: bool

    def matches(self, model: str) -> bool:
        """True if ``model`` names this kind."""
        return re.fullmatch(self.pattern, model) is not None

    def supports(self, capability: Capability) -> bool:
        """True if this kind has ``capability``."""
        return bool(getattr(self, capability))


#: Every model kind, in the order they are listed to users.
MODEL_KINDS: tuple[ModelKind, ...] = (
    ModelKind("diagonal", "diagonal", "per-feature Gaussians", True, True, True),
    ModelKind("full", "full", "the multivariate Gaussian", True, True, True),
    ModelKind(
        "river:NAME",
        r"river:[A-Za-z_][A-Za-z0-9_]*",
        "a river.anomaly detector, for comparison",
        False,
        False,
        False,
    ),
)

#: A regular expression every valid ``model`` setting matches.
MODEL_PATTERN = "^(" + "|".join(kind.pattern for kind in MODEL_KINDS) + ")$"


def model_kinds() -> tuple[ModelKind, ...]:
    """Every model kind.

    >>> [kind.spelling for kind in model_kinds()]
    ['diagonal', 'full', 'river:NAME']
    """
    return MODEL_KINDS


def model_kind(model: str) -> ModelKind:
    """The kind ``model`` names; :class:`ConfigError` listing the choices if none.

    >>> model_kind("river:LODA").checkpointable
    False
    """
    for kind in MODEL_KINDS:
        if kind.matches(model):
            return kind
    choices = ", ".join(kind.spelling for kind in MODEL_KINDS[:-1])
    raise ConfigError("model", model, f"{choices} or {MODEL_KINDS[-1].spelling}")


def supports(model: str, capability: Capability) -> bool:
    """True if the model ``model`` names has ``capability``; False for an unknown name.

    >>> supports("full", "clipped_learning"), supports("river:LODA", "checkpointable")
    (True, False)
    """
    try:
        return model_kind(model).supports(capability)
    except ConfigError:
        return False


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
    if model_kind(kind).gaussian_score:
        return GaussianModel(
            len(features), full=kind == "full", half_life=half_life, variance_floor=variance_floor
        )
    return RiverModel(kind.removeprefix("river:"), features, params, river_scaler)
