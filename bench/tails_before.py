"""The tail probabilities before the active-set and closed-form rewrite: the bench's reference.

A threshold that means the same on every stream compares a *tail probability*,
not a density: the chance that a normal event is at least this far out. This
module computes the logarithm of such tails so that they never underflow:

- :func:`log_upper_gamma` -- log Q(a, x), the regularised upper incomplete
  gamma function, the one primitive everything else rests on;
- :func:`chi2_log_sf` -- log P(χ²_d ≥ r²), the tail of a squared Mahalanobis
  distance of a d-variate Gaussian (d = 1 to thousands, r² up to ~1e300);
- :func:`normal_log_tail` -- log P(|Z| ≥ |z|) (two-sided) or log P(Z ≥ |z|)
  (one-sided) of a standard normal, which is log Q(1/2, z²/2) (minus log 2);
- :func:`student_t_log_tail` -- the same for Student's t with ν degrees of
  freedom (the predictive of a Gaussian whose mean and variance are uncertain),
  log I_x(ν/2, 1/2) at x = ν / (ν + t²), the regularised incomplete beta.

Q(a, x) is evaluated by its power series when ``x < a + 1`` (where the
series converges quickly and Q = 1 - P loses nothing) and by its continued
fraction otherwise (the incomplete beta likewise: its continued fraction on
the side where it converges), whose result is already the upper tail, so a tail of
1e-300 or of exp(-1e6) keeps its full relative precision in log space. Both
run as fixed-length numpy loops over the whole batch, stopping when every
element has converged.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["chi2_log_sf", "log_upper_gamma", "normal_log_tail", "student_t_log_tail"]

Array = NDArray[np.float64]

#: Relative change below which a series or continued fraction has converged.
_TOLERANCE = 1e-16
#: Guards Lentz's algorithm against division by zero.
_TINY = 1e-300
#: Iterations are O(sqrt(a)); this covers a up to ~1e6 (d up to two million).
_MAX_ITERATIONS = 20_000

_log_gamma = np.frompyfunc(math.lgamma, 1, 1)
_LOG_SQRT_PI = 0.5 * math.log(math.pi)


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


def _guard(values: Array) -> Array:
    out: Array = np.where(np.abs(values) < _TINY, _TINY, values)
    return out


def _beta_fraction(a: Array, b: Array, x: Array) -> Array:
    """The continued fraction of I_x(a, b) (modified Lentz); converges for x < (a+1)/(a+b+2)."""
    c = np.ones_like(x)
    d = 1.0 / _guard(1.0 - (a + b) * x / (a + 1.0))
    h = d.copy()
    active = np.ones(x.shape, dtype=bool)
    for m in range(1, _MAX_ITERATIONS):
        even = m * (b - m) * x / ((a - 1.0 + 2 * m) * (a + 2 * m))
        d = 1.0 / _guard(1.0 + even * d)
        c = _guard(1.0 + even / c)
        h = h * np.where(active, d * c, 1.0)
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1.0 + 2 * m))
        d = 1.0 / _guard(1.0 + odd * d)
        c = _guard(1.0 + odd / c)
        delta = np.where(active, d * c, 1.0)
        h = h * delta
        active = np.abs(delta - 1.0) > _TOLERANCE
        if not active.any():
            break
    return h


def _log_beta_with_half(a: Array) -> Array:
    """log B(a, 1/2), without the cancellation of three large log-gammas when a is large."""
    exact = _lgamma(a) + _LOG_SQRT_PI - _lgamma(a + 0.5)
    # log Γ(a + 1/2) / Γ(a) = log √a + log(1 - 1/(8a) + 1/(128a²) + 5/(1024a³) - 21/(32768a⁴)).
    big = np.maximum(a, 1.0)
    inverse = 1.0 / big
    series = inverse * (-1 / 8 + inverse * (1 / 128 + inverse * (5 / 1024 - inverse * 21 / 32768)))
    asymptotic = _LOG_SQRT_PI - 0.5 * np.log(big) - np.log1p(series)
    out: Array = np.where(a > 1e3, asymptotic, exact)
    return out


def _log_incomplete_beta(a: Array, b: Array, x: Array, log_x: Array, log_1mx: Array) -> Array:
    """log I_x(a, b), one of a and b being 1/2, where its continued fraction converges directly."""
    log_beta = _log_beta_with_half(np.where(b == 0.5, a, b))
    out: Array = a * log_x + b * log_1mx - log_beta + np.log(_beta_fraction(a, b, x)) - np.log(a)
    return out


def student_t_log_tail(t: ArrayLike, dof: ArrayLike, two_sided: bool = True) -> Array:
    """log P(|T| ≥ |t|) (or log P(T ≥ |t|) with ``two_sided=False``), T ~ Student's t(ν).

    Broadcasts ``t`` against ``dof`` (ν > 0, any real). Exact to about 1e-10
    relative for ν up to 1e6 (beyond, rounding of ν-sized terms costs about
    ν · 1e-16 relative). As ν grows it tends
    to :func:`normal_log_tail`; for small ν the tail is heavy (log tail ≈ -ν
    log|t|), which is what keeps a model fitted to a handful of events from
    calling the next one impossible.

    >>> np.exp(student_t_log_tail([0.0, 2.0, 12.706204736174698], 1.0)).round(9).tolist()
    [1.0, 0.295167235, 0.05]
    >>> float(student_t_log_tail(1e6, 3.0, two_sided=False).round(6))
    -41.348808
    """
    t_arr, nu = np.broadcast_arrays(
        np.abs(np.asarray(t, dtype=np.float64)), np.asarray(dof, dtype=np.float64)
    )
    if np.any(~(nu > 0.0)) or np.any(np.isnan(t_arr)):
        raise ValueError("student_t_log_tail needs dof > 0 and t not NaN")
    out = np.zeros(t_arr.shape)
    out[np.isinf(t_arr)] = -np.inf
    finite = np.isfinite(t_arr) & (t_arr > 0.0)
    a, b = 0.5 * nu[finite], np.full(int(finite.sum()), 0.5)
    t2 = np.square(t_arr[finite])
    # x = ν/(ν+t²) and 1 - x = t²/(ν+t²), each formed without cancellation.
    x, one_minus_x = nu[finite] / (nu[finite] + t2), t2 / (nu[finite] + t2)
    log_x = -np.log1p(t2 / nu[finite])
    # t² may underflow where t does not.
    log_1mx = 2.0 * np.log(t_arr[finite]) - np.log(nu[finite] + t2)
    direct = x < (a + 1.0) / (a + b + 2.0)
    tail = np.empty(x.shape)
    if direct.any():
        tail[direct] = _log_incomplete_beta(
            a[direct], b[direct], x[direct], log_x[direct], log_1mx[direct]
        )
    if (~direct).any():
        flip = ~direct
        complement = _log_incomplete_beta(
            b[flip], a[flip], one_minus_x[flip], log_1mx[flip], log_x[flip]
        )
        tail[flip] = np.log1p(-np.exp(complement))
    out[finite] = tail
    if not two_sided:
        out = out - math.log(2.0)
    return out
