"""log Q(a, x), the regularised upper incomplete gamma function, and the tails resting on it.

What this module promises: :func:`log_upper_gamma` gives log Q(a, x) for every
a > 0 and x >= 0, numpy-vectorised, exact to about 1e-13 relative however small
Q is (a tail of 1e-300 or of exp(-1e6) keeps its precision in log space);
:func:`chi2_log_sf` (the tail of a squared Mahalanobis distance) and
:func:`normal_log_tail` are Q at the right arguments. A batch gives exactly
what its elements one at a time would give.

Q is evaluated by its power series when ``x < a + 1`` (where the series
converges quickly and Q = 1 - P loses nothing) and by its continued fraction
(modified Lentz) otherwise, whose result is already the upper tail. For a
whole a up to 40 (χ² with an even number of degrees of freedom, as Fisher's
method always has) Q is the finite sum e^-x Σ_(i<a) x^i / i! instead. The
loops iterate only the elements not yet converged, each stopping at its own
term. The Lentz constants here (:data:`_TOLERANCE`, :data:`_TINY`,
:data:`_MAX_ITERATIONS`, :func:`_guard`) also serve the incomplete beta's
fraction in :mod:`stream_detect.beta_fraction`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["chi2_log_sf", "log_upper_gamma", "normal_log_tail"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IndexArray = NDArray[np.intp]

#: Relative change below which a series or continued fraction has converged.
_TOLERANCE = 1e-16
#: Guards Lentz's algorithm against division by zero.
_TINY = 1e-300
#: Iterations are O(sqrt(a)); this covers a up to ~1e6 (d up to two million).
_MAX_ITERATIONS = 20_000
#: Series are tested for convergence every this many terms.
_CHECK_EVERY = 4
#: Up to this shape the closed form of Q beats the continued fraction.
_CLOSED_FORM_MAX = 40
#: Beyond this many times 1 + a, log Q(a, x) is its leading term to rounding: Q(a, x) =
#: x^(a-1) e^-x / Γ(a) · (1 + (a-1)/x + ...), and the log of the bracket, under
#: (a-1)/x, is below 1e-16 of |log Q| >= x. The fraction's steps there move h by
#: less than an ulp of its terms, so it would never meet its tolerance.
_LEADING_TERM_FROM = 1e8

_log_gamma = np.frompyfunc(math.lgamma, 1, 1)


def _lgamma(a: Array) -> Array:
    # Only the distinct shapes need math.lgamma: a batch usually has one d.
    if a.size and a.min() == a.max():
        return np.full(a.shape, math.lgamma(float(a.flat[0])))
    unique, inverse = np.unique(a, return_inverse=True)
    values = np.asarray(_log_gamma(unique), dtype=np.float64)
    out: Array = values[inverse].reshape(a.shape)
    return out


def _log_prefactor(a: Array, x: Array) -> Array:
    """log(x^a e^-x / Γ(a)), the factor both expansions share."""
    out: Array = a * np.log(x) - x - _lgamma(a)
    return out


def _settle(
    done: BoolArray, running: BoolArray, where: IndexArray, values: Array, out: Array
) -> tuple[BoolArray, int]:
    """Record the running elements that are ``done`` into ``out``; the still running, and how many.

    Recorded elements may keep being iterated (their later values are never
    recorded), so the caller cuts its arrays down only once half have finished:
    cutting them every time an element finishes costs more than it saves.
    """
    finished = running & done
    if finished.any():
        out[where[finished]] = values[finished]
        running = running & ~finished
    return running, int(np.count_nonzero(running))


def _log_lower_by_series(a: Array, x: Array) -> Array:
    """log P(a, x) from its power series; converges fast for x < a + 1.

    Only the elements still converging are iterated, each until its terms fall
    below the tolerance, tested every few terms at the same terms for every
    element: an element's value does not depend on the rest of the batch.
    """
    total = 1.0 / a
    term = total.copy()
    sums = np.empty(x.shape)
    # One d per batch makes every denominator a scalar: the same values, fewer passes.
    shared = a.min() == a.max()
    shape: Array | float = float(a.flat[0]) if shared else a
    where, x_now = np.arange(x.size), x
    running: BoolArray = np.ones(x.shape, dtype=bool)
    for n in range(1, _MAX_ITERATIONS, _CHECK_EVERY):
        for k in range(n, n + _CHECK_EVERY):
            term = term * x_now / (shape + k)
            total = total + term
        running, left = _settle(term <= total * _TOLERANCE, running, where, total, sums)
        if left == 0:
            break
        if 2 * left < running.size:
            where = where[running]
            x_now, term, total = x_now[running], term[running], total[running]
            running = np.ones(left, dtype=bool)
            if not shared:
                shape = a[where]
    out: Array = _log_prefactor(a, x) + np.log(sums)
    return out


def _log_upper_by_fraction(a: Array, x: Array) -> Array:
    """log Q(a, x) from its continued fraction (modified Lentz); for x >= a + 1.

    Run first without guarding the denominators against zero, which costs a
    third of each step; an element where one was zero ends as NaN, infinite
    or not positive, and only those are run again with the guards.
    """
    with np.errstate(all="ignore"):
        products = _gamma_fraction(a, x, guarded=False)
    failed = ~(np.isfinite(products) & (products > 0.0))
    if failed.any():
        products[failed] = _gamma_fraction(a[failed], x[failed], guarded=True)
    out: Array = _log_prefactor(a, x) + np.log(products)
    return out


def _gamma_fraction(a: Array, x: Array, guarded: bool) -> Array:
    """The continued fraction of Q(a, x) e^x x^-a Γ(a), each element to its own convergence."""
    b = x + 1.0 - a
    c = np.full_like(x, 1.0 / _TINY)
    d = 1.0 / b
    h = d.copy()
    products = np.empty(x.shape)
    where, a_now = np.arange(x.size), a
    running: BoolArray = np.ones(x.shape, dtype=bool)
    for i in range(1, _MAX_ITERATIONS):
        an = -i * (i - a_now)
        b = b + 2.0
        d = an * d + b
        c = b + an / c
        if guarded:
            d, c = _guard(d), _guard(c)
        d = 1.0 / d
        delta = d * c
        h = h * delta
        # A NaN delta (a zero denominator) counts as done; the caller redoes it guarded.
        done = ~(np.abs(delta - 1.0) > _TOLERANCE)
        running, left = _settle(done, running, where, h, products)
        if left == 0:
            break
        if 2 * left < running.size:
            where = where[running]
            a_now, b, c, d, h = (v[running] for v in (a_now, b, c, d, h))
            running = np.ones(left, dtype=bool)
    else:
        # Out of steps: what is left keeps its last value rather than none.
        products[where[running]] = h[running]
    return products


def _guard(values: Array) -> Array:
    out: Array = np.where(np.abs(values) < _TINY, _TINY, values)
    return out


def _log_upper_closed_form(k: int, x: Array) -> Array:
    """log Q(k, x) for a whole number k, as log(e^-x Σ_{i<k} x^i / i!); for x >= k - 1.

    The sum is taken from its largest term down, x^(k-1)/(k-1)! (1 + (k-1)/x (1 +
    (k-2)/x (1 + ...))), so every term is positive and at most 1: exact to a few
    ulps in k operations, with nothing to converge.
    """
    inverse = 1.0 / x
    total = np.ones_like(x)
    for m in range(1, k):
        total = 1.0 + (m * inverse) * total
    out: Array = (k - 1) * np.log(x) - x - math.lgamma(k) + np.log(total)
    return out


def _log_upper_where_fraction(a: Array, x: Array) -> Array:
    """log Q(a, x) for x >= a + 1: the closed form for whole a up to 40, else the fraction."""
    out = np.empty(x.shape)
    whole = (a == np.round(a)) & (a <= _CLOSED_FORM_MAX)
    if whole.any():
        shapes = a[whole]
        # A batch usually has one d; then there is nothing to sort.
        distinct = [shapes[0]] if shapes.min() == shapes.max() else np.unique(shapes)
        for k in distinct:
            chosen = whole & (a == k)
            out[chosen] = _log_upper_closed_form(int(k), x[chosen])
    if not whole.all():
        out[~whole] = _log_upper_by_fraction(a[~whole], x[~whole])
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
    # So far out the leading term is exact, and the fraction would not settle.
    leading = ~infinite & (x_arr > _LEADING_TERM_FROM * (1.0 + a_arr))
    fraction = ~infinite & ~leading & (x_arr >= a_arr + 1.0)
    if leading.any():
        a_far, x_far = a_arr[leading], x_arr[leading]
        out[leading] = (a_far - 1.0) * np.log(x_far) - x_far - _lgamma(a_far)
    if series.any():
        log_lower = _log_lower_by_series(a_arr[series], x_arr[series])
        # P < 1 - 1e-3 here, so log1p(-P) keeps Q's relative precision.
        out[series] = np.log1p(-np.exp(log_lower))
    if fraction.any():
        out[fraction] = _log_upper_where_fraction(a_arr[fraction], x_arr[fraction])
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
