"""The functions of the classic anomaly-detection exercise, computed the safe way.

``estimate_gaussian`` and ``multivariate_gaussian`` keep the names, arguments
and results of the Coursera exercise 8 (Andrew Ng), so its published numbers
can be reproduced, but the density is computed in log space by
:mod:`stream_detect.density` and only exponentiated at the end. The log-space
functions are the ones to build on: a product of many small densities
underflows to 0 long before its logarithm is in any danger.

Variances are floored as everywhere else
(:func:`stream_detect.density.gaussian_log_pdf`). A covariance matrix is used
exactly as given, so results agree with SciPy's, and only a singular one gets
the ridge of :func:`stream_detect.density.floor_covariance`: a constant feature
gives a finite density instead of a division by zero.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.density import (
    DEFAULT_RELATIVE_FLOOR,
    DEFAULT_VARIANCE_FLOOR,
    floor_covariance,
    full_log_pdf,
    gaussian_log_pdf,
)
from stream_detect.real_arrays import real_array, real_rows

__all__ = [
    "estimate_gaussian",
    "log_multivariate_gaussian",
    "multivariate_gaussian",
]

Array = NDArray[np.float64]


def estimate_gaussian(X: ArrayLike) -> tuple[Array, Array]:
    """Mean and population variance (divided by m, not m - 1) of each column of ``X``.

    Parameters
    ----------
    X
        Data, shape ``(m, d)`` with m >= 1.

    Returns
    -------
    mu, var
        Two arrays of shape ``(d,)``.

    Examples
    --------
    >>> mu, var = estimate_gaussian([[1.0, 10.0], [3.0, 10.0]])
    >>> mu.tolist(), var.tolist()
    ([2.0, 10.0], [1.0, 0.0])
    """
    data = _as_rows(X, "X")
    if len(data) == 0:
        raise ValueError("X has no rows: the mean and variance of nothing are undefined")
    mu: Array = data.mean(axis=0)
    var: Array = np.square(data - mu).mean(axis=0)
    return mu, var


def log_multivariate_gaussian(
    X: ArrayLike,
    mu: ArrayLike,
    var: ArrayLike,
    variance_floor: float = DEFAULT_VARIANCE_FLOOR,
    relative_floor: float = DEFAULT_RELATIVE_FLOOR,
) -> Array:
    """log p(x) of each row of ``X`` under N(mu, var); never underflows.

    ``var`` of shape ``(d,)`` holds the variances of independent features (the
    diagonal of the covariance); a ``(d, d)`` ``var`` is a full covariance matrix.
    ``mu`` and ``var`` must be finite, and variances >= 0 (ValueError naming
    the entry); a row of ``X`` holding NaN gets NaN, and one holding ±inf
    about -9e307 (its squared distance saturates at the largest double).

    >>> log_multivariate_gaussian([[0.0, 0.0]], [0.0, 0.0], [1.0, 1.0]).round(6).tolist()
    [-1.837877]
    >>> cov = [[1.0, 0.0], [0.0, 1.0]]
    >>> log_multivariate_gaussian([[0.0, 0.0]], [0.0, 0.0], cov).round(6).tolist()
    [-1.837877]
    """
    data = real_rows(X, "X")
    mean = real_array(mu, "mu")
    spread = real_array(var, "var")
    _refuse_non_finite(mean, "mu")
    _refuse_non_finite(spread, "var")
    d = data.shape[1]
    if mean.shape != (d,):
        raise ValueError(f"mu must have shape ({d},) to match X, got {mean.shape}")
    if spread.shape == (d,):
        if (spread < 0).any():
            j = int(np.flatnonzero(spread < 0)[0])
            raise ValueError(f"var[{j}] = {float(spread[j])!r}: variances must be >= 0")
        return gaussian_log_pdf(data, mean, spread, variance_floor, relative_floor)
    if spread.shape == (d, d):
        if not np.allclose(spread, spread.T, rtol=1e-10, atol=0.0):
            raise ValueError("the covariance matrix var is not symmetric")
        try:
            return full_log_pdf(data, mean, spread)
        except np.linalg.LinAlgError:
            pass  # singular (a constant feature, collinear features): add the ridge below
        ridged = floor_covariance(spread, mean, variance_floor, relative_floor)
        try:
            return full_log_pdf(data, mean, ridged)
        except np.linalg.LinAlgError as exc:
            raise ValueError("the covariance matrix var is not positive semi-definite") from exc
    raise ValueError(f"var must have shape ({d},) or ({d}, {d}) to match X, got {spread.shape}")


def multivariate_gaussian(
    X: ArrayLike,
    mu: ArrayLike,
    var: ArrayLike,
    variance_floor: float = DEFAULT_VARIANCE_FLOOR,
    relative_floor: float = DEFAULT_RELATIVE_FLOOR,
) -> Array:
    """p(x) of each row of ``X`` under N(mu, var), as ``multivariateGaussian`` of the exercise.

    Computed as ``exp`` of :func:`log_multivariate_gaussian`; ``var`` is a
    vector of variances (diagonal model) or a full covariance matrix.
    Very unlikely rows underflow to 0.0 -- take decisions on the log instead.

    >>> multivariate_gaussian([[0.0], [1.0]], [0.0], [1.0]).round(6).tolist()
    [0.398942, 0.241971]
    """
    p: Array = np.exp(log_multivariate_gaussian(X, mu, var, variance_floor, relative_floor))
    return p


def _as_rows(X: ArrayLike, name: str) -> Array:
    """Rows of real numbers, each finite: a NaN would make every mean and density NaN."""
    data = real_rows(X, name)
    _refuse_non_finite(data, name)
    return data


def _refuse_non_finite(values: Array, name: str) -> None:
    finite = np.isfinite(values)
    if not finite.all():
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        place = f"{name}[{', '.join(map(str, where))}]" if where else name
        raise ValueError(f"{place} = {float(values[where])!r}: {name} must hold finite numbers")
