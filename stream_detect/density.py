"""Gaussian log-densities, the variance floor, and per-feature contributions.

Everything here is pure: arrays in, arrays out, no state. Parameters may be
shared by all rows (``mean`` of shape ``(d,)``) or given per row (``(B, d)``),
which is how the prequential path scores each event under its own model.

Scores point one way throughout the package: **lower log p(x) is more
anomalous**.
"""

from __future__ import annotations

import math
import sys
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DEFAULT_RELATIVE_FLOOR",
    "DEFAULT_VARIANCE_FLOOR",
    "LARGEST_DISTANCE_SQ",
    "LOG_2PI",
    "SMALLEST_VARIANCE_FLOOR",
    "Floor",
    "GaussianScore",
    "diagonal_contributions",
    "diagonal_distance",
    "diagonal_log_pdf",
    "floor_covariance",
    "floor_variance",
    "full_contributions",
    "full_distance",
    "full_log_pdf",
    "gaussian_log_pdf",
    "gaussian_score",
    "log_pdf_from_distance",
    "scale_free_log_pdf",
]

Array = NDArray[np.float64]
#: A variance floor: one for every feature, or one per feature (broadcast like ``mean``).
Floor = float | Array

LOG_2PI = math.log(2.0 * math.pi)

#: Absolute lower bound on a variance (or on the ridge added to a covariance).
DEFAULT_VARIANCE_FLOOR = 1e-12
#: The smallest absolute floor a stream accepts: the smallest normal double.
#: With 0 a feature that has been 0 so far keeps variance 0, where log p(x) is
#: no number (0/0 and log 0) and a covariance of zeros has no Cholesky factor;
#: a subnormal floor would be held with less than full precision.
SMALLEST_VARIANCE_FLOOR = sys.float_info.min
#: Where a squared distance saturates: the largest double. A tiny floored variance
#: and a far value (up to 1e150 is admitted) square past the float range; such an
#: event scores as if it were this far, a finite number that still alerts.
LARGEST_DISTANCE_SQ = sys.float_info.max
#: Lower bound relative to the feature's squared magnitude (a standard deviation
#: of at least 1e-10 of the mean): well below any spread float64 can resolve
#: around that mean, so real variances are used as they are, yet a constant
#: feature of size 1e6 still gets a floor that means something.
DEFAULT_RELATIVE_FLOOR = 1e-20
#: Ridge of a covariance relative to its average variance, which keeps the
#: Cholesky factor of a singular (or nearly singular) covariance well conditioned.
TRACE_RIDGE = 1e-12


def floor_variance(
    var: Array,
    mean: Array,
    variance_floor: Floor = DEFAULT_VARIANCE_FLOOR,
    relative_floor: float = DEFAULT_RELATIVE_FLOOR,
) -> Array:
    """Return ``var`` raised to at least ``variance_floor + relative_floor * mean**2``.

    The floor keeps log p(x) finite for a constant feature: an event equal to
    the constant scores high, one that leaves it scores very low, and nothing
    divides by zero.

    >>> floor_variance(np.array([0.0, 2.0]), np.array([1e6, 0.0])).tolist()
    [1.0001e-08, 2.0]
    """
    floor = variance_floor + relative_floor * np.square(mean)
    return np.maximum(var, floor)


def floor_covariance(
    cov: Array,
    mean: Array,
    variance_floor: Floor = DEFAULT_VARIANCE_FLOOR,
    relative_floor: float = DEFAULT_RELATIVE_FLOOR,
) -> Array:
    """Return ``cov`` plus a ridge on the diagonal that makes it positive definite.

    The ridge is ``variance_floor + relative_floor * mean**2 + TRACE_RIDGE *
    trace/d`` per feature, so a singular covariance (a constant feature, two
    identical features, fewer events than features) still has a Cholesky
    factor; the part relative to the average variance (1e-12 of it) changes a
    real covariance by no more than rounding would.
    Works on one ``(d, d)`` matrix or a stack ``(B, d, d)``.

    >>> floor_covariance(np.ones((2, 2)), np.zeros(2), 1e-3, 0.0).tolist()
    [[1.001, 1.0], [1.0, 1.001]]
    """
    d = cov.shape[-1]
    diag = np.diagonal(cov, axis1=-2, axis2=-1)
    mean_trace = diag.sum(axis=-1, keepdims=True) / d
    ridge = variance_floor + relative_floor * np.square(mean) + TRACE_RIDGE * mean_trace
    out = np.array(cov, dtype=np.float64, copy=True)
    idx = np.arange(d)
    out[..., idx, idx] += ridge
    return out


def diagonal_log_pdf(X: Array, mean: Array, var: Array) -> Array:
    """log p(x) of each row of ``X`` under independent Gaussians.

    ``var`` must already be floored (see :func:`floor_variance`).
    Equals ``sum_j log N(x_j; mean_j, var_j)``, computed in log space so it
    never underflows.

    >>> X = np.array([[0.0, 0.0], [1.0, 2.0]])
    >>> diagonal_log_pdf(X, np.zeros(2), np.ones(2)).round(6).tolist()
    [-1.837877, -4.337877]
    """
    distance_sq = diagonal_distance(X, mean, var)
    return log_pdf_from_distance(distance_sq, np.sum(np.log(var), axis=-1), X.shape[-1])


class GaussianScore(NamedTuple):
    """What :func:`gaussian_score` finds for each row.

    ``spread`` is the floored variances (diagonal) or covariance (full) that
    were used; ``contributions`` the per-feature terms of ``distance_sq`` for
    a diagonal model (None for a full one, whose terms need a solve; see
    :func:`full_contributions`).
    """

    log_p: Array
    distance_sq: Array
    spread: Array
    contributions: Array | None


def gaussian_score(
    X: Array,
    mean: Array,
    spread: Array,
    variance_floor: Floor = DEFAULT_VARIANCE_FLOOR,
    relative_floor: float = DEFAULT_RELATIVE_FLOOR,
) -> GaussianScore:
    """Score each row of ``X`` under a Gaussian whose variances are floored first.

    The one Gaussian log-density of the package: the streaming models and a
    model fitted on a batch both score through it. ``spread`` holds the
    variances of independent features when it has the shape of ``mean``
    (``(d,)``, or ``(B, d)`` per row): they are raised to
    :func:`floor_variance`. One more dimension (``(d, d)`` or ``(B, d, d)``)
    makes it a covariance matrix, which gets the ridge of
    :func:`floor_covariance`. The statistics are never changed in place.

    >>> s = gaussian_score(np.array([[1.0, 2.0]]), np.zeros(2), np.ones(2))
    >>> s.log_p.round(6).tolist(), s.distance_sq.tolist(), s.contributions.tolist()
    ([-4.337877], [5.0], [[1.0, 4.0]])
    """
    d = X.shape[-1]
    if spread.ndim == mean.ndim:
        var = floor_variance(spread, mean, variance_floor, relative_floor)
        contributions, distance_sq = _contributions_and_distance(X, mean, var)
        log_p = log_pdf_from_distance(distance_sq, np.sum(np.log(var), axis=-1), d)
        return GaussianScore(log_p, distance_sq, var, contributions)
    if spread.ndim == mean.ndim + 1:
        cov = floor_covariance(spread, mean, variance_floor, relative_floor)
        distance_sq, log_det = full_distance(X, mean, cov)
        return GaussianScore(log_pdf_from_distance(distance_sq, log_det, d), distance_sq, cov, None)
    raise ValueError(
        f"spread must have the shape of mean {mean.shape} (variances) or one more dimension "
        f"(a covariance matrix), got {spread.shape}"
    )


def gaussian_log_pdf(
    X: Array,
    mean: Array,
    spread: Array,
    variance_floor: Floor = DEFAULT_VARIANCE_FLOOR,
    relative_floor: float = DEFAULT_RELATIVE_FLOOR,
) -> Array:
    """log p(x) of each row of ``X``: the ``log_p`` of :func:`gaussian_score`.

    >>> X = np.array([[1.0, 2.0]])
    >>> gaussian_log_pdf(X, np.zeros(2), np.ones(2)).round(6).tolist()
    [-4.337877]
    >>> gaussian_log_pdf(X, np.zeros(2), np.eye(2), 0.0, 0.0).round(6).tolist()
    [-4.337877]
    >>> gaussian_log_pdf(np.array([[5.0]]), np.array([5.0]), np.array([0.0]), 1e-2, 0.0).round(3)
    array([1.383])
    """
    return gaussian_score(X, mean, spread, variance_floor, relative_floor).log_p


def diagonal_contributions(X: Array, mean: Array, var: Array) -> Array:
    """Per-feature share of the squared standardised distance, ``(x_j - mean_j)**2 / var_j``.

    The row sums (``np.sum(..., axis=-1)``) are the squared Mahalanobis
    distance of the diagonal model; a large entry names a feature that made the event unlikely.

    A term past the float range saturates at :data:`LARGEST_DISTANCE_SQ`, and
    so does their sum.

    >>> diagonal_contributions(np.array([[3.0, 1.0]]), np.zeros(2), np.ones(2)).tolist()
    [[9.0, 1.0]]
    >>> diagonal_contributions(np.array([[1e150]]), np.zeros(1), np.array([1e-12])).tolist()
    [[1.7976931348623157e+308]]
    """
    out, _ = _contributions_and_distance(X, mean, var)
    return out


def diagonal_distance(X: Array, mean: Array, var: Array) -> Array:
    """The diagonal model's squared Mahalanobis distance of each row, ``Σ (x_j - mean_j)² / var_j``.

    Past the float range it saturates at :data:`LARGEST_DISTANCE_SQ`.

    >>> diagonal_distance(np.array([[3.0, 1.0]]), np.zeros(2), np.ones(2)).tolist()
    [10.0]
    >>> diagonal_distance(np.array([[1e150]]), np.zeros(1), np.array([1e-12])).tolist()
    [1.7976931348623157e+308]
    """
    _, distance_sq = _contributions_and_distance(X, mean, var)
    return distance_sq


def full_distance(X: Array, mean: Array, cov: Array) -> tuple[Array, Array]:
    """Squared Mahalanobis distance and log-determinant of ``cov`` for each row.

    ``cov`` is one ``(d, d)`` matrix or one per row ``(B, d, d)``, positive
    definite (see :func:`floor_covariance`); one Cholesky factor serves both.
    A distance past the float range saturates at :data:`LARGEST_DISTANCE_SQ`.

    >>> d2, log_det = full_distance(np.array([[1.0, 2.0]]), np.zeros(2), np.eye(2) * 2)
    >>> d2.tolist(), log_det.round(6).tolist()
    ([2.5], [1.386294])
    """
    chol = np.linalg.cholesky(cov)
    # Finite X and a positive definite cov: an infinity or NaN (inf - inf in the
    # substitution) here can only come from an overflow, a distance past the range.
    with np.errstate(over="ignore", invalid="ignore"):
        dev = X - mean
        if chol.ndim == 2:
            white = np.linalg.solve(chol, dev.T).T
        else:
            white = lower_triangular_solve(chol, dev)
        distance_sq: Array = np.fmin(np.sum(np.square(white), axis=-1), LARGEST_DISTANCE_SQ)
    if chol.ndim == 2:
        log_det = np.full(X.shape[0], 2.0 * np.sum(np.log(np.diagonal(chol))))
    else:
        log_det = 2.0 * np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    return distance_sq, log_det


def lower_triangular_solve(chol: NDArray[np.floating[Any]], b: Array) -> Array:
    """Row ``i`` of the result solves ``chol[i] w = b[i]``, ``chol`` ``(B, d, d)`` lower triangular.

    Forward substitution, one feature at a time over every row at once:
    numpy's batched ``solve`` would factorise each triangle again (LU, d³)
    where substitution costs d². Each row's result depends on its own
    triangle only.

    >>> chol = np.array([[[2.0, 0.0], [1.0, 1.0]]])
    >>> lower_triangular_solve(chol, np.array([[2.0, 3.0]])).tolist()
    [[1.0, 2.0]]
    """
    out = np.empty(b.shape)
    for j in range(b.shape[-1]):
        known = np.einsum("bk,bk->b", chol[:, j, :j], out[:, :j]) if j else 0.0
        out[:, j] = (b[:, j] - known) / chol[:, j, j]
    return out


def _contributions_and_distance(X: Array, mean: Array, var: Array) -> tuple[Array, Array]:
    """The diagonal model's terms of D² and their row sums, saturating at the largest double."""
    with np.errstate(over="ignore"):
        contributions: Array = np.square(X - mean) / var
        distance_sq: Array = np.sum(contributions, axis=-1)
    # The terms are >= 0, so one past the range makes its sum infinite: one check per row.
    if not np.all(distance_sq <= LARGEST_DISTANCE_SQ):
        np.minimum(contributions, LARGEST_DISTANCE_SQ, out=contributions)
        np.minimum(distance_sq, LARGEST_DISTANCE_SQ, out=distance_sq)
    return contributions, distance_sq


def log_pdf_from_distance(distance_sq: Array, log_det: Array, d: int) -> Array:
    """Gaussian log-density from the squared distance and log det of the covariance.

    >>> log_pdf_from_distance(np.array([0.0]), np.array([0.0]), 1).round(6).tolist()
    [-0.918939]
    """
    result: Array = -0.5 * (distance_sq + log_det + d * LOG_2PI)
    return result


def full_log_pdf(X: Array, mean: Array, cov: Array) -> Array:
    """log p(x) of each row of ``X`` under a multivariate Gaussian.

    ``cov`` is one ``(d, d)`` matrix or one per row ``(B, d, d)`` and must be
    positive definite (see :func:`floor_covariance`).

    >>> cov = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> full_log_pdf(np.array([[1.0, 2.0]]), np.zeros(2), cov).round(6).tolist()
    [-4.337877]
    """
    distance_sq, log_det = full_distance(X, mean, cov)
    return log_pdf_from_distance(distance_sq, log_det, X.shape[-1])


def full_contributions(X: Array, mean: Array, cov: Array) -> Array:
    """Per-feature terms ``dev_j * (cov^-1 dev)_j`` of the squared Mahalanobis distance.

    They sum to the squared distance; a term can be negative when a feature
    moved the way its correlated partner predicts. A term past the float range
    saturates at ``±LARGEST_DISTANCE_SQ``, and one left undefined by such an
    overflow (0 times infinity) counts 0.

    >>> cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    >>> c = full_contributions(np.array([[1.0, -1.0]]), np.zeros(2), cov)
    >>> c.round(3).tolist()
    [[10.0, 10.0]]
    >>> full_contributions(np.array([[1e150, 0.0]]), np.zeros(2), np.eye(2) * 1e-12).tolist()
    [[1.7976931348623157e+308, 0.0]]
    """
    with np.errstate(over="ignore", invalid="ignore"):
        dev = X - mean
        if cov.ndim == 2:
            solved = np.linalg.solve(cov, dev.T).T
        else:
            solved = np.linalg.solve(cov, dev[..., None])[..., 0]
        out: Array = dev * solved
    return np.nan_to_num(
        out, copy=False, nan=0.0, posinf=LARGEST_DISTANCE_SQ, neginf=-LARGEST_DISTANCE_SQ
    )


def scale_free_log_pdf(distance_sq: Array, d: int) -> Array:
    """log-density of the standardised event: ``-0.5 * (D**2 + d * log(2*pi))``.

    It drops the ``-0.5 * log det(2*pi*cov)`` term of log p(x), which differs
    between models, so one threshold means the same deviation for a quiet key
    and a noisy one.

    >>> round(float(scale_free_log_pdf(np.array([0.0]), 1)[0]), 6)
    -0.918939
    """
    return log_pdf_from_distance(distance_sq, np.zeros_like(distance_sq), d)
