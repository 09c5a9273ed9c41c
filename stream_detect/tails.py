"""Calibrated tail probabilities, in log space, numpy-vectorised, without SciPy.

A threshold that means the same on every stream compares a *tail probability*,
not a density: the chance that a normal event is at least this far out. This
module computes the logarithm of such tails so that they never underflow:

- :func:`log_upper_gamma` -- log Q(a, x), the regularised upper incomplete
  gamma function, the one primitive everything else rests on;
- :func:`chi2_log_sf` -- log P(χ²_d ≥ r²), the tail of a squared Mahalanobis
  distance of a d-variate Gaussian (d = 1 to thousands, r² up to ~1e300);
- :func:`normal_log_tail` -- log P(|Z| ≥ |z|) (two-sided) or log P(Z ≥ |z|)
  (one-sided) of a standard normal, which is log Q(1/2, z²/2) (minus log 2).

Q(a, x) is evaluated by its power series when ``x < a + 1`` (where the
series converges quickly and Q = 1 - P loses nothing) and by its continued
fraction otherwise, whose result is already the upper tail, so a tail of
1e-300 or of exp(-1e6) keeps its full relative precision in log space. Both
run as fixed-length numpy loops over the whole batch, stopping when every
element has converged.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["chi2_log_sf", "log_upper_gamma", "normal_log_tail"]

Array = NDArray[np.float64]

#: Relative change below which a series or continued fraction has converged.
_TOLERANCE = 1e-16
#: Guards Lentz's algorithm against division by zero.
_TINY = 1e-300
#: Iterations are O(sqrt(a)); this covers a up to ~1e6 (d up to two million).
_MAX_ITERATIONS = 20_000

_log_gamma = np.frompyfunc(math.lgamma, 1, 1)


def _lgamma(a: Array) -> Array:
    # Only the distinct shapes need math.lgamma: a batch usually has one d.
    unique, inverse = np.unique(a, return_inverse=True)
    values = np.asarray(_log_gamma(unique), dtype=np.float64)
    out: Array = values[inverse].reshape(a.shape)
    return out


def _log_prefactor(a: Array, x: Array) -> Array:
    """log(x^a e^-x / Γ(a)), the factor both expansions share."""
    out: Array = a * np.log(x) - x - _lgamma(a)
    return out


def _log_lower_by_series(a: Array, x: Array) -> Array:
    """log P(a, x) from its power series; converges fast for x < a + 1."""
    term = np.ones_like(x) / a
    total = term.copy()
    denominator = a.copy()
    active = np.ones(x.shape, dtype=bool)
    for _ in range(_MAX_ITERATIONS):
        denominator = denominator + 1.0
        term = np.where(active, term * x / denominator, 0.0)
        total = total + term
        active = term > total * _TOLERANCE
        if not active.any():
            break
    out: Array = _log_prefactor(a, x) + np.log(total)
    return out


def _log_upper_by_fraction(a: Array, x: Array) -> Array:
    """log Q(a, x) from its continued fraction (modified Lentz); for x >= a + 1."""
    b = x + 1.0 - a
    c = np.full_like(x, 1.0 / _TINY)
    d = 1.0 / b
    h = d.copy()
    active = np.ones(x.shape, dtype=bool)
    for i in range(1, _MAX_ITERATIONS):
        an = -i * (i - a)
        b = b + 2.0
        d = an * d + b
        d = np.where(np.abs(d) < _TINY, _TINY, d)
        c = b + an / c
        c = np.where(np.abs(c) < _TINY, _TINY, c)
        d = 1.0 / d
        delta = np.where(active, d * c, 1.0)
        h = h * delta
        active = np.abs(delta - 1.0) > _TOLERANCE
        if not active.any():
            break
    out: Array = _log_prefactor(a, x) + np.log(h)
    return out


def log_upper_gamma(a: ArrayLike, x: ArrayLike) -> Array:
    """log Q(a, x) = log(Γ(a, x) / Γ(a)) elementwise, for a > 0 and x >= 0.

    Broadcasts ``a`` against ``x``. Exact to about 1e-13 relative (of the log)
    however small the tail; ``x = inf`` gives ``-inf``, ``x = 0`` gives 0.

    >>> log_upper_gamma(1.0, [0.0, 1.0, 1000.0]).round(12).tolist()  # Q(1, x) = exp(-x)
    [0.0, -1.0, -1000.0]
    """
    a_arr, x_arr = np.broadcast_arrays(
        np.asarray(a, dtype=np.float64), np.asarray(x, dtype=np.float64)
    )
    if np.any(~(a_arr > 0.0)) or np.any(~(x_arr >= 0.0)):
        raise ValueError("log_upper_gamma needs a > 0 and x >= 0 (no NaN)")
    out = np.zeros(x_arr.shape)
    infinite = np.isinf(x_arr)
    out[infinite] = -np.inf
    series = (x_arr > 0.0) & (x_arr < a_arr + 1.0)
    fraction = ~infinite & (x_arr >= a_arr + 1.0)
    if series.any():
        log_lower = _log_lower_by_series(a_arr[series], x_arr[series])
        # P < 1 - 1e-3 here, so log1p(-P) keeps Q's relative precision.
        out[series] = np.log1p(-np.exp(log_lower))
    if fraction.any():
        out[fraction] = _log_upper_by_fraction(a_arr[fraction], x_arr[fraction])
    return out


def chi2_log_sf(distance_sq: ArrayLike, d: ArrayLike) -> Array:
    """log P(χ²_d ≥ r²): how rarely a d-variate Gaussian event lies this far out.

    ``distance_sq`` is the squared Mahalanobis distance r²; the result is the
    same for every stream and scale, so one threshold on it means the same
    false alert rate everywhere (e.g. log 1e-6 ≈ -13.8: one false alert per
    million normal events).

    >>> chi2_log_sf([0.0, 3.841458820694124], 1).round(12).tolist()
    [0.0, -2.995732273554]
    >>> float(chi2_log_sf(1e4, 1000).round(3))  # SciPy's chi2.logsf says -inf here
    -3354.931
    """
    r2 = np.asarray(distance_sq, dtype=np.float64)
    half_d = 0.5 * np.asarray(d, dtype=np.float64)
    return log_upper_gamma(half_d, 0.5 * r2)


def normal_log_tail(z: ArrayLike, two_sided: bool = True) -> Array:
    """log P(|Z| ≥ |z|) (or log P(Z ≥ |z|) with ``two_sided=False``), Z ~ N(0, 1).

    The sign of ``z`` does not matter: the one-sided form is the upper tail of
    ``|z|``, as Numenta's anomaly likelihood uses it. Stays finite for any
    finite z (log tail ≈ -z²/2 for large z).

    >>> np.exp(normal_log_tail([0.0, 1.959963984540054, -3.0])).round(9).tolist()
    [1.0, 0.05, 0.002699796]
    >>> float(normal_log_tail(40.0, two_sided=False).round(6))
    -804.608442
    """
    z_arr = np.asarray(z, dtype=np.float64)
    out = log_upper_gamma(0.5, 0.5 * np.square(z_arr))
    if not two_sided:
        out = out - math.log(2.0)
    return out
