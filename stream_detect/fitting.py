"""Fitting a Gaussian model on a batch of events: mean and variance (or covariance).

:func:`fit_model` transforms the rows, checks every value comes out finite,
and learns the statistics with :mod:`stream_detect.stats`, so a model fitted
here equals one learned event by event. The threshold is chosen afterwards
(:meth:`~stream_detect.fitted_model.FittedModel.with_threshold`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.density import DEFAULT_RELATIVE_FLOOR, DEFAULT_VARIANCE_FLOOR
from stream_detect.errors import InputError
from stream_detect.feature_transforms import FeatureTransforms
from stream_detect.feature_units import FeatureUnits
from stream_detect.fitted_model import FittedModel, ModelKind
from stream_detect.model_file_rules import feature_names
from stream_detect.quantisation import varied_integers
from stream_detect.row_transforms import Lines, transform_rows
from stream_detect.stats import RunningCovariance, RunningMoments

__all__ = ["fit_model"]

Array = NDArray[np.float64]


def fit_model(
    X: ArrayLike,
    features: Sequence[str],
    *,
    kind: ModelKind = "diagonal",
    transforms: FeatureTransforms | None = None,
    variance_floor: float = DEFAULT_VARIANCE_FLOOR,
    relative_floor: float = DEFAULT_RELATIVE_FLOOR,
    source: str | None = None,
    lines: Lines | None = None,
) -> FittedModel:
    """Fit mean and population variance (or covariance) of the transformed rows of ``X``.

    The statistics come from :mod:`stream_detect.stats`, so a model fitted
    here equals one learned event by event. A feature whose transformed
    values are all integers, two different ones or more, has its variance
    floored at 1/12 when the model scores (``integer_floor``, the streaming
    detector's rule of :mod:`stream_detect.quantisation` over the whole batch).
    A feature whose first non-zero transformed value is below 2^-10 is fitted
    multiplied by a power of two, as a stream scales it
    (:mod:`stream_detect.feature_units`; ``unit_exponents``).
    No threshold is set; see
    :meth:`~stream_detect.fitted_model.FittedModel.with_threshold`. ``source`` and ``lines``
    only serve error messages (see :func:`~stream_detect.row_transforms.transform_rows`).

    >>> model = fit_model(np.array([[1.0, 2.0], [3.0, 6.0]]), ["a", "b"], kind="full")
    >>> model.cov.tolist()
    [[1.0, 2.0], [2.0, 4.0]]
    >>> model.integer_floor.tolist()  # integers, two values each: floored at 1/12
    [True, True]
    >>> tiny = fit_model(np.array([[3e-300], [5e-300]]), ["x"])
    >>> tiny.unit_exponents.tolist(), tiny.mean.tolist()  # 3e-300 * 2**995 is about 1.0
    ([995], [1.3393857589828342])
    """
    if kind not in ("diagonal", "full"):
        raise ValueError(f"kind must be 'diagonal' or 'full', got {kind!r}")
    names = feature_names(list(features), error=ValueError)
    transforms = transforms if transforms is not None else FeatureTransforms()
    values = transform_rows(X, names, transforms, source=source, lines=lines)
    if len(values) == 0:
        raise InputError("no events to fit the model on", source=source)
    # The streaming detector's rule: a feature whose first non-zero value (in file order)
    # is tiny is fitted in units where it has size one, so the floors do not hide it.
    units = FeatureUnits(len(names))
    values, _ = units.apply(values)
    cov: Array | None = None
    # Overflow is checked for below, with a message that says what to do about it.
    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "diagonal":
            moments = RunningMoments.empty(len(names)).learn(values)
            n, mean, var = float(moments.n), moments.mean.copy(), moments.var.copy()
        else:
            covariance = RunningCovariance.empty(len(names)).learn(values)
            # Symmetric to the last bit, so the file does not depend on summation order.
            cov = (covariance.cov + covariance.cov.T) / 2
            n, mean, var = float(covariance.n), covariance.mean.copy(), np.diagonal(cov).copy()
    too_large = ~(np.isfinite(mean) & np.isfinite(var))
    if np.any(too_large):
        name = names[int(np.argmax(too_large))]
        raise InputError(
            f"the variance of feature {name!r} overflows float64; rescale the feature "
            "(change its units) or transform it",
            source=source,
        )
    return FittedModel(
        kind,
        names,
        n,
        mean,
        var,
        cov,
        transforms=transforms,
        variance_floor=variance_floor,
        relative_floor=relative_floor,
        integer_floor=varied_integers(values),
        unit_exponents=units.exponents if units.exponents.any() else None,
    )
