"""A Gaussian model fitted on a batch of events, with its threshold log ε, and its dict form.

:class:`FittedModel` holds the statistics (in the units of the transformed
features), the transforms, the variance floors and, once chosen, log ε and
what it achieved on validation data. It scores rows in the original units
(:meth:`FittedModel.log_p`) and flags them. Its dict form is the content of
a model file (:mod:`stream_detect.modelfile`), laid out and checked on the
way in by :mod:`stream_detect.model_dict`. Rows are transformed by
:func:`~stream_detect.row_transforms.transform_rows`, which names the first
value that does not come out finite.

A fitted model and a streaming one are the same Gaussian: both score through
:func:`~stream_detect.density.gaussian_score`, and
:meth:`FittedModel.streaming_model` turns a fitted model into the
:class:`~stream_detect.gaussian_model.GaussianModel` that ``stream-detect run
--initial-model`` starts from and keeps learning.

Integer features get the streaming detector's floor in the batch sense: a
feature whose transformed training values are all integers, two different
ones or more, has its variance floored at 1/12 (:mod:`stream_detect.quantisation`)
wherever the model scores; ``integer_floor`` names them. A model read from a
file written before that rule has none (``integer_floor`` is None) and scores
as it did.

Tiny features are held in the units the streaming detector gives them
(:mod:`stream_detect.feature_units`): a feature whose first non-zero
transformed value is below 2^-10 is multiplied by the power of two that
brings that value into [1, 2) (``unit_exponents``), so the variance floor does
not hide its spread; :meth:`FittedModel.log_p` stays the density in the
events' own units (the Jacobian added). A model without such a feature, or
read from a file written before the rule, has ``unit_exponents`` None and
scores as it did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.density import (
    DEFAULT_RELATIVE_FLOOR,
    DEFAULT_VARIANCE_FLOOR,
    Floor,
    GaussianScore,
    gaussian_score,
)
from stream_detect.errors import ModelError
from stream_detect.feature_transforms import FeatureTransforms
from stream_detect.feature_units import FeatureUnits
from stream_detect.gaussian_model import GaussianModel
from stream_detect.model_dict import THRESHOLD_METHODS, model_dict, model_fields
from stream_detect.quantisation import unit_step_floors
from stream_detect.row_transforms import Lines, row_error, transform_rows
from stream_detect.threshold_choice import exp_or_inf

__all__ = ["FittedModel", "ModelKind"]

Array = NDArray[np.float64]
ModelKind = Literal["diagonal", "full"]


@dataclass(frozen=True, eq=False)
class FittedModel:
    """A Gaussian density of "normal" events and, once chosen, its threshold log ε.

    ``mean``, ``var`` and ``cov`` are in the units of the transformed features,
    each multiplied by ``2**k`` for its ``k`` in ``unit_exponents`` (None: all
    0); :meth:`log_p` takes rows in the original units, applies the transforms
    and the powers of two first, and gives the density in the events' units.
    ``var`` is the diagonal of ``cov`` for a full model. The floors are applied
    when scoring, never stored into the statistics: ``variance_floor``,
    raised to 1/12 for the features ``integer_floor`` marks (integers that
    varied in training; None for a model from a file written before the rule).

    Build one with :func:`~stream_detect.fitting.fit_model`; read one with
    :func:`~stream_detect.modelfile.load_model`.

    >>> from stream_detect.fitting import fit_model
    >>> model = fit_model(np.array([[1.0], [3.0]]), ["x"])
    >>> model.n, model.mean.tolist(), model.var.tolist()
    (2.0, [2.0], [1.0])
    >>> model.log_p(np.array([[2.0]])).round(6).tolist()
    [-0.918939]
    """

    kind: ModelKind
    features: tuple[str, ...]
    n: float
    mean: Array
    var: Array
    cov: Array | None = None
    transforms: FeatureTransforms = field(default_factory=FeatureTransforms)
    variance_floor: float = DEFAULT_VARIANCE_FLOOR
    relative_floor: float = DEFAULT_RELATIVE_FLOOR
    integer_floor: NDArray[np.bool_] | None = None
    unit_exponents: NDArray[np.int64] | None = None
    log_epsilon: float | None = None
    threshold_method: str | None = None
    validation: dict[str, Any] | None = None

    @property
    def d(self) -> int:
        """Number of features."""
        return len(self.features)

    @property
    def spread(self) -> Array:
        """The variances (diagonal model) or the covariance matrix (full model)."""
        return self.var if self.cov is None else self.cov

    @property
    def variance_floors(self) -> Floor:
        """The variance floor of each feature (one number when no feature is floored as an integer).

        >>> from stream_detect.fitting import fit_model
        >>> model = fit_model(np.array([[0.0, 0.5], [0.0, 1.5], [1.0, 2.5]]), ["flag", "x"])
        >>> model.integer_floor.tolist(), model.variance_floors.round(4).tolist()
        ([True, False], [0.0833, 0.0])
        """
        if self.integer_floor is None or not self.integer_floor.any():
            return self.variance_floor
        return unit_step_floors(self.integer_floor, self.variance_floor)[0]

    @property
    def units(self) -> FeatureUnits:
        """The powers of two of the features, for a stream that starts from this model.

        A feature is decided if it has a power of two, or was not 0 in every
        event the model was fitted on (its mean or variance is not 0); one that
        was 0 throughout is decided at its first non-zero value in the stream,
        as in a stream without a model: zeros are the same in any unit.

        >>> from stream_detect.fitting import fit_model
        >>> model = fit_model(np.array([[3e-6, 0.0, 5.0], [4e-6, 0.0, 6.0]]), ["a", "b", "c"])
        >>> model.units.exponents.tolist(), model.units.decided.tolist()
        ([19, 0, 0], [True, False, True])
        """
        exponents = self.unit_exponents
        if exponents is None:
            exponents = np.zeros(self.d, dtype=np.int64)
        seen = (self.mean != 0.0) | (self.var != 0.0)
        return FeatureUnits.chosen(exponents, (exponents != 0) | seen)

    @property
    def log_jacobian(self) -> float:
        """What is added to the log density of rows in the model's units to give the events'."""
        return 0.0 if self.unit_exponents is None else self.units.log_jacobian()

    def score(self, values: Array) -> GaussianScore:
        """The Gaussian score of rows in the model's units (transformed, then multiplied by
        the powers of two), with the floors applied; log p in those units (see :meth:`log_p`)."""
        return gaussian_score(
            values, self.mean, self.spread, self.variance_floors, self.relative_floor
        )

    def streaming_model(self, half_life: float | None = None) -> GaussianModel:
        """The streaming model that has learned what this one was fitted on, to learn on from.

        It counts as having learned ``n`` events, scores every event exactly as
        :meth:`log_p` does (on transformed rows, the integer features' floors
        included), and keeps learning. In a stream the floors then follow the
        stream's values (:meth:`~stream_detect.quantisation.IntegerFeatures.continue_from`).

        >>> from stream_detect.fitting import fit_model
        >>> model = fit_model(np.array([[1.0], [3.0]]), ["x"])
        >>> stream = model.streaming_model()
        >>> stream.n, bool(stream.score(np.array([[2.0]])).log_p[0] == model.log_p([[2.0]])[0])
        (2.0, True)
        """
        model = GaussianModel.from_moments(
            self.n,
            self.mean,
            self.spread,
            half_life=half_life,
            variance_floor=self.variance_floors,
            relative_floor=self.relative_floor,
        )
        if self.integer_floor is not None and self.integer_floor.any():
            model.scale_floor = unit_step_floors(self.integer_floor, self.variance_floor)[1]
        return model

    @property
    def epsilon(self) -> float | None:
        """ε = exp(log ε), for display (may underflow to 0.0); None without a threshold."""
        return None if self.log_epsilon is None else exp_or_inf(self.log_epsilon)

    def with_threshold(
        self,
        log_epsilon: float,
        method: str,
        validation: Mapping[str, Any] | None = None,
    ) -> FittedModel:
        """A copy of this model with a threshold and what it achieved on validation data."""
        if method not in THRESHOLD_METHODS:
            raise ValueError(
                f"method must be one of {', '.join(THRESHOLD_METHODS)}, got {method!r}"
            )
        return dataclasses.replace(
            self,
            log_epsilon=float(log_epsilon),
            threshold_method=method,
            validation=None if validation is None else dict(validation),
        )

    def transform(
        self, X: ArrayLike, *, source: str | None = None, lines: Lines | None = None
    ) -> Array:
        """Rows of ``X`` (original units, columns in ``features`` order) after the transforms.

        :class:`InputError` names ``source`` and the first value that is not
        finite after its transform, by its line (see :func:`transform_rows`).
        """
        return transform_rows(X, self.features, self.transforms, source=source, lines=lines)

    def log_p(
        self, X: ArrayLike, *, source: str | None = None, lines: Lines | None = None
    ) -> Array:
        """log p(x) of each row of ``X`` (original units), with the variance floors applied.

        The density is that of the events' own units whatever ``unit_exponents``
        says (the Jacobian of the powers of two is added).

        The density is :func:`~stream_detect.density.gaussian_score`, the
        one the streaming models use. Lower is more anomalous; an event whose
        squared distance passes float64 scores as if at the largest double
        (log p about -9e307: finite, and below any threshold). Raises :class:`InputError` as
        :meth:`transform`, and for a row whose log p is not a number at all
        (named as :func:`transform_rows` names a row).
        """
        values = self.transform(X, source=source, lines=lines)
        if self.unit_exponents is not None:
            values = self.units.scale(values)
        # Values near the float range (not bounded here as in streams) may overflow on the
        # way; the distance saturates, and nothing of it is worth a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            log_p = self.score(values).log_p
        if np.any(np.isnan(log_p)):
            row = int(np.argmax(np.isnan(log_p)))
            reason = "log p(x) is not a number: the event is too far out for float64"
            raise row_error(row, reason, source, lines)
        if self.unit_exponents is not None:
            # The density of the scaled rows times 2**sum(k): the density in the events' units.
            log_p += self.log_jacobian
        return log_p

    def flag(self, log_p: ArrayLike) -> NDArray[np.bool_]:
        """Decisions ``log_p < log ε``; ModelError when the model has no threshold."""
        if self.log_epsilon is None:
            raise ModelError(
                "the model has no threshold (log_epsilon is null): fit it with labelled "
                "validation data (--val) to choose one"
            )
        flagged: NDArray[np.bool_] = np.asarray(log_p, dtype=np.float64) < self.log_epsilon
        return flagged

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able file content (its layout is in :mod:`stream_detect.modelfile`).

        See :func:`~stream_detect.model_dict.model_dict`.
        """
        return model_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> FittedModel:
        """Check and rebuild a model from :meth:`to_dict` output; ModelError names the problem.

        >>> from stream_detect.fitting import fit_model
        >>> model = fit_model(np.array([[1.0, 5.0], [3.0, 7.0]]), ["a", "b"], kind="full")
        >>> FittedModel.from_dict(model.to_dict()).cov.tolist()
        [[1.0, 1.0], [1.0, 1.0]]
        >>> from stream_detect.model_dict import FORMAT
        >>> FittedModel.from_dict({"format": FORMAT, "version": 99})
        Traceback (most recent call last):
        ...
        stream_detect.errors.ModelError: it is version 99 of the model format; this \
stream_detect reads version 1
        """
        return cls(**model_fields(data))
