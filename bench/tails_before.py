"""The tail probabilities before the backwards continued fraction: the bench's reference.

A frozen copy of ``stream_detect/tails.py`` as it was before the incomplete
beta's continued fraction was evaluated bottom-up (Lentz's algorithm only).

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
1e-300 or of exp(-1e6) keeps its full relative precision in log space. Two
exact shortcuts come first: for a whole a up to 40 (χ² with an even number
of degrees of freedom, as Fisher's method always has) Q is the finite sum
e^-x Σ_(i<a) x^i / i!, and for t² <= min(12, ν/3) the t tail is 1 minus the
power series of I_y(1/2, ν/2), y = t²/(ν+t²), which there converges in a few
dozen positive terms. The loops iterate only the elements not yet converged,
each stopping at its own term, so a batch gives exactly what its elements
one at a time would give; the t series goes further: each element's number
of terms is read beforehand from a table of bounds on its own (ν, t), and
its sum taken backwards with nothing to test. log B(ν/2, 1/2) comes from its
asymptotic series (after the recurrence for small ν), once per distinct ν of
a broadcast axis. The t tails of a batch are computed in blocks of rows, in
place where possible: at a few thousand rows a fresh array costs more in page
faults than a pass over it.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["chi2_log_sf", "log_upper_gamma", "normal_log_tail", "student_t_log_tail"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IndexArray = NDArray[np.intp]

#: Relative change below which a series or continued fraction has converged.
_TOLERANCE = 1e-16
#: Guards Lentz's algorithm against division by zero.
_TINY = 1e-300
#: Iterations are O(sqrt(a)); this covers a up to ~1e6 (d up to two million).
_MAX_ITERATIONS = 20_000

#: The power series of the t tail runs where t² is at most this (and y = t²/(ν+t²) <= 1/4):
#: there it converges within ~50 terms and the tail is above 5e-4, so 1 - I keeps 13 digits.
_SERIES_MAX_T2 = 12.0
#: Series are tested for convergence every this many terms.
_CHECK_EVERY = 4
#: The t series' term counts are tabulated on cells of 1/16 in excess = y (ν/2 - 1),
#: from -1/4 (it is at least -y) to 6.75 (it stays below 6.1), by 1/64 in √y <= 1/2.
_EXCESS_STEPS = 16
_EXCESS_FROM = -0.25
_ROOT_Y_STEPS = 64
_SERIES_TABLE_SHAPE = (112, 34)
#: More than any cell of that table needs (at most about 60).
_MAX_SERIES_TERMS = 100
#: Below one element in this many outside the series, all go through it and the rest are redone.
_MOSTLY_SERIES = 8
#: The t tails of a batch are computed in blocks of about this many elements:
#: their arrays stay in the memory the allocator keeps between blocks and calls.
_BLOCK_ELEMENTS = 8192
#: log B(a, 1/2) is taken from its asymptotic series from this a up (the first
#: term left out, 0.36 a^-17, is then below 4e-18).
_ASYMPTOTIC_FROM = 10.0
#: (2^(1-n) - 2) B_n / (n (n-1)) for n = 16, 14, ..., 2: log Γ(a+½)/Γ(a) - ½ log a in powers of 1/a.
_LOG_RATIO_SERIES = (
    929569 / 15728640,
    -5461 / 425984,
    691 / 180224,
    -31 / 18432,
    17 / 14336,
    -1 / 640,
    1 / 192,
    -1 / 8,
)
#: The beta continued fraction forms its coefficients for this many steps at a time.
_FRACTION_BLOCK = 8
#: ... on at most this many elements (beyond, one step at a time).
_FRACTION_BLOCK_ROWS = 256
#: Up to this shape the closed form of Q beats the continued fraction.
_CLOSED_FORM_MAX = 40

_log_gamma = np.frompyfunc(math.lgamma, 1, 1)
_LOG_SQRT_PI = 0.5 * math.log(math.pi)
_LOG_2 = math.log(2.0)


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
    return products


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
    fraction = ~infinite & (x_arr >= a_arr + 1.0)
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


def _guard(values: Array) -> Array:
    out: Array = np.where(np.abs(values) < _TINY, _TINY, values)
    return out


def _beta_fraction_guarded(a: Array, b: Array, x: Array) -> Array:
    """The continued fraction of I_x(a, b) (modified Lentz); converges for x < (a+1)/(a+b+2).

    The reference form, guarding every denominator against zero; it is only
    run for the elements where :func:`_beta_fraction` met a zero denominator.
    """
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


def _beta_fraction(a: Array, b: Array, x: Array) -> Array:
    """:func:`_beta_fraction_guarded`, iterating only the elements not yet converged.

    Each element stops at its own convergence, so its value does not depend on
    the rest of the batch. Denominators are not guarded: where one was zero the
    result is not a finite positive number, and that element is recomputed by
    the guarded form (inside the fraction's region of convergence this does
    not happen in practice, and guarding every step would double the cost).
    The coefficients are formed for a block of steps at once, as (steps,
    elements) arrays, and the arrays are cut down to the running elements between
    blocks: on the few rows that usually come here, numpy calls are the cost.
    """
    out = np.empty(x.shape)
    with np.errstate(all="ignore"):
        c = np.ones_like(x)
        d = 1.0 / _guard(1.0 - (a + b) * x / (a + 1.0))
        h = d.copy()
        where, a_now, b_now, x_now = np.arange(x.size), a, b, x
        running: BoolArray = np.ones(x.shape, dtype=bool)
        recorded, scratch = np.empty(x.shape), np.empty(x.shape)
        still = np.empty(x.shape, dtype=bool)
        # Many rows cost per element, not per call: then a block would form unused coefficients.
        block = _FRACTION_BLOCK if x.size <= _FRACTION_BLOCK_ROWS else 1
        for first in range(1, _MAX_ITERATIONS, block):
            m = np.arange(first, first + block, dtype=np.float64)[:, None]
            twice = a_now + 2.0 * m
            evens = (m * x_now) * (b_now - m) / ((twice - 1.0) * twice)
            odds = x_now * (a_now + m) * ((a_now + b_now) + m)
            odds /= twice * (twice + 1.0)
            for step in range(block):
                even, odd = evens[step], odds[step]
                # In place, operation for operation: d = 1 / (1 + even d), c = 1 + even / c,
                # h *= d c; then d = 1 / (1 - odd d), c = 1 - odd / c, h *= delta = d c.
                np.multiply(even, d, out=d)
                d += 1.0
                np.divide(1.0, d, out=d)
                np.divide(even, c, out=c)
                c += 1.0
                h *= np.multiply(d, c, out=scratch)
                np.multiply(odd, d, out=d)
                np.subtract(1.0, d, out=d)
                np.divide(1.0, d, out=d)
                np.divide(odd, c, out=c)
                np.subtract(1.0, c, out=c)
                delta = np.multiply(d, c, out=scratch)
                h *= delta
                np.copyto(recorded, h, where=running)
                # A NaN delta (a zero denominator) ends the element too; it is redone below.
                delta -= 1.0
                running &= np.greater(np.abs(delta, out=delta), _TOLERANCE, out=still)
                left = int(np.count_nonzero(running))
                if left == 0 or 2 * left < running.size:
                    finished = np.flatnonzero(~running)
                    out[where[finished]] = recorded[finished]
                    if left == 0:
                        break
                    kept = np.flatnonzero(running)
                    where, still = where[kept], still[kept]
                    a_now, b_now, x_now, c, d, h, recorded, scratch = (
                        v[kept] for v in (a_now, b_now, x_now, c, d, h, recorded, scratch)
                    )
                    evens, odds = evens[:, kept], odds[:, kept]
                    running = np.ones(left, dtype=bool)
            else:
                continue
            break
    failed = ~(np.isfinite(out) & (out > 0.0))
    if failed.any():
        out[failed] = _beta_fraction_guarded(a[failed], b[failed], x[failed])
    return out


def _log_beta_with_half(a: Array) -> Array:
    """log B(a, 1/2) = log √π - log(Γ(a + 1/2) / Γ(a)), to a few ulps for every a > 0.

    The ratio's log is ½ log a plus its asymptotic series (the Bernoulli terms
    (2^(1-n) - 2) B_n / (n (n-1) a^(n-1))), which past a = 10 is below 4e-18
    after the a^-15 term; smaller a are first shifted up by the recurrence
    Γ(a + 3/2) / Γ(a + 1) = (a + 1/2) / a · Γ(a + 1/2) / Γ(a). No log-gamma of
    a large number is ever formed, so nothing cancels.
    """
    shape, a = a.shape, a.reshape(-1)
    shift = np.maximum(np.ceil(_ASYMPTOTIC_FROM - a), 0.0)
    big = a + shift
    inverse = 1.0 / big
    square = inverse * inverse
    # Highest power first: Horner in 1/a², the coefficients of a^-15 down to a^-1.
    series = np.zeros(a.shape)
    for coefficient in _LOG_RATIO_SERIES:
        series = coefficient + square * series
    log_ratio = 0.5 * np.log(big) + inverse * series
    low = shift > 0.0
    if low.any():
        start, steps = a[low], shift[low]
        for step in range(int(steps.max())):
            # log Γ(s + 1/2)/Γ(s) = log Γ(s + 3/2)/Γ(s + 1) - log1p(1/(2s)).
            log_ratio[low] -= np.where(step < steps, np.log1p(0.5 / (start + step)), 0.0)
    out: Array = (_LOG_SQRT_PI - log_ratio).reshape(shape)
    return out


@functools.cache
def _series_length_table() -> NDArray[np.uint8]:
    """Terms the t series needs on each cell of (excess, √y), flattened row by row.

    The terms c_n = Π_(k<n) r_k, r_k = y + excess / (3/2 + k) >= 0, grow with
    excess and with y, so a cell's upper corner bounds every c_n in it and its
    lower corner (its ratios clipped at 0) bounds the sum S from below. The
    ratios move monotonically towards y, so after c_N the rest is at most
    c_N ρ / (1 - ρ), ρ = max(r_N, y), at the upper corner; the count is the first
    N where that is at most 2^-53 of the lower corner's sum: below half an ulp
    of S anywhere in the cell.
    """
    rows, columns = _SERIES_TABLE_SHAPE
    excess_low = np.arange(rows)[:, None] / _EXCESS_STEPS + _EXCESS_FROM
    root_low = np.arange(columns)[None, :] / _ROOT_Y_STEPS
    excess_high, y_high, y_low = (
        excess_low + 1.0 / _EXCESS_STEPS,
        np.square(root_low + 1.0 / _ROOT_Y_STEPS),
        np.square(root_low),
    )
    low_term, low_sum = np.ones(_SERIES_TABLE_SHAPE), np.ones(_SERIES_TABLE_SHAPE)
    for k in range(_MAX_SERIES_TERMS):
        low_term *= np.maximum(y_low + excess_low / (1.5 + k), 0.0)
        low_sum += low_term
    term, lengths = np.ones(_SERIES_TABLE_SHAPE), np.zeros(_SERIES_TABLE_SHAPE, dtype=np.uint8)
    for n in range(1, _MAX_SERIES_TERMS):
        term *= y_high + excess_high / (0.5 + n)
        later = np.maximum(y_high + excess_high / (1.5 + n), y_high)
        with np.errstate(divide="ignore"):
            fits = (
                (lengths == 0)
                & (later < 1.0)
                & (term * later / (1.0 - later) <= 2.0**-53 * low_sum)
            )
        lengths[fits] = n
    if not lengths.all():
        raise AssertionError("the t series table needs more terms")  # pragma: no cover
    out: NDArray[np.uint8] = lengths.ravel()
    return out


def _t_series_sums(t2: Array, nu: Array) -> Array:
    """Σ c_n, c_0 = 1, c_(n+1) = c_n (y + excess / (3/2 + n)), y = t²/(ν+t²), excess = y (ν/2 - 1).

    Flat, one sum per element of ``t2`` (``nu`` broadcasts against it). Each is
    taken to its own number of terms, from :func:`_series_length_table` by its
    own (excess, y) alone, so no element's value depends on the rest of the
    batch; backwards, 1 + r_0 (1 + r_1 (... (1 + r_(N-1)))), with nothing to
    test. Sorted by count, the elements still summing at term k are a suffix:
    each step works in place on views. Four arrays serve every step: on a
    batch of rows a fresh array costs more in page faults than a pass over it.
    """
    y = np.add(nu, t2)
    np.divide(t2, y, out=y)
    excess = np.multiply(y, 0.5 * nu - 1.0).reshape(-1)
    y = y.reshape(-1)
    if not y.size:
        return y
    # Each element's flat cell in the table: floor((excess + 1/4) 16) 34 + floor(64 √y).
    cell = np.subtract(excess, _EXCESS_FROM)
    cell *= _EXCESS_STEPS
    np.floor(cell, out=cell)
    cell *= _SERIES_TABLE_SHAPE[1]
    spare = np.sqrt(y)
    spare *= _ROOT_Y_STEPS
    np.floor(spare, out=spare)
    cell += spare
    index = spare.view(np.intp)
    np.copyto(index, cell, casting="unsafe")
    # Outside the table (clipped) only where the element is not in the series and not used.
    lengths = _series_length_table().take(index, mode="clip")
    # A radix sort (the counts are bytes): linear time, and stable, so deterministic too.
    order = np.argsort(lengths, kind="stable")
    lengths = lengths[order]
    y_sorted, excess_sorted = np.take(y, order, out=cell), np.take(excess, order, out=spare)
    sums, ratio = y, excess
    sums.fill(1.0)
    starts = np.searchsorted(lengths, np.arange(int(lengths[-1])), side="right").tolist()
    for k in range(len(starts) - 1, -1, -1):
        first = starts[k]
        ratio_now, sums_now = ratio[first:], sums[first:]
        np.multiply(excess_sorted[first:], 1.0 / (1.5 + k), out=ratio_now)
        ratio_now += y_sorted[first:]
        sums_now *= ratio_now
        sums_now += 1.0
    ratio[order] = sums
    return ratio


def _log_t_tail_by_series(
    t: Array, t2: Array, nu: Array, log_beta: Array, out: Array | None = None
) -> Array:
    """log P(|T| >= |t|) = log(1 - I_y(1/2, ν/2)), y = t²/(ν+t²) <= 1/4, by the series of I_y.

    I_y(1/2, b) = 2 √y (1-y)^b / B(1/2, b) · Σ c_n, c_0 = 1, c_(n+1) = c_n y (b + 1/2 + n)
    / (3/2 + n) = c_n (y + y (b - 1) / (3/2 + n)): positive terms whose ratio falls
    towards y, so each element needs a few terms past its largest one (at most
    about 60); see :func:`_t_series_sums`. ``nu`` and ``log_beta`` broadcast
    against ``t`` and ``t2``; the result goes to ``out`` if given.
    """
    sums = _t_series_sums(t2, nu).reshape(t2.shape)
    # 2 √y (1-y)^(ν/2) / B: the power from its log, formed without cancellation,
    # and √y as |t| / √(ν+t²) (t² may underflow where t does not).
    complement = np.divide(t2, nu)
    np.log1p(complement, out=complement)
    complement *= -0.5 * nu
    complement += _LOG_2
    complement -= log_beta
    np.exp(complement, out=complement)
    complement *= t
    np.abs(complement, out=complement)
    complement *= sums
    root = np.add(nu, t2, out=sums)
    complement /= np.sqrt(root, out=root)
    # The tail is above 5e-4 here (t² <= 12), so forming 1 - I costs at most about
    # 2000 ulps of the tail: near 1e-13 relative in its log.
    return _log_one_minus(complement, out=root if out is None else out)


def _log_one_minus(c: Array, out: Array) -> Array:
    """log(1 - c) into ``out``, for 0 <= c < 1, to an ulp or two, at half the cost of log1p(-c).

    With u = 1 - c rounded, its rounding error e = (1 - u) - c is exact, and
    log(1 - c) = log(u) + log(1 + e/u) = log(u) + e/u: |e/u| <= 2^-53, so the
    term dropped is below an ulp of the result, and for c < 2^-54 the result is -c.
    """
    u = np.subtract(1.0, c, out=out)
    error = np.subtract(1.0, u)
    error -= c
    error /= u
    np.log(u, out=u)
    u += error
    return u


def _log_t_tail_by_fraction(t: Array, t2: Array, nu: Array, log_beta: Array) -> Array:
    """log P(|T| >= t) = log I_x(ν/2, 1/2), x = ν/(ν+t²), from the continued fraction.

    The fraction is run on I_x(ν/2, 1/2) where it converges (large t) and on
    its complement I_(1-x)(1/2, ν/2) otherwise.
    """
    a, b = 0.5 * nu, np.full(nu.shape, 0.5)
    # x = ν/(ν+t²) and 1 - x = t²/(ν+t²), each formed without cancellation.
    x, one_minus_x = nu / (nu + t2), t2 / (nu + t2)
    log_x = -np.log1p(t2 / nu)
    # t² may underflow where t does not.
    log_1mx = 2.0 * np.log(t) - np.log(nu + t2)
    direct = x < (a + 1.0) / (a + b + 2.0)
    if direct.all():
        # Usually so (large t): then nothing needs gathering.
        return _log_incomplete_beta(a, b, x, log_x, log_1mx, log_beta)
    out = np.empty(x.shape)
    if direct.any():
        out[direct] = _log_incomplete_beta(
            a[direct], b[direct], x[direct], log_x[direct], log_1mx[direct], log_beta[direct]
        )
    if not direct.all():
        flip = ~direct
        complement = _log_incomplete_beta(
            b[flip], a[flip], one_minus_x[flip], log_1mx[flip], log_x[flip], log_beta[flip]
        )
        out[flip] = np.log1p(-np.exp(complement))
    return out


def _without_repeats(values: Array) -> Array:
    """``values`` with every axis along which it repeats cut to length 1; it broadcasts back.

    A broadcast (zero-stride) axis is cut outright; the last axis also when
    every row holds one value, as a per-row ν indexed out of a broadcast has.
    """
    out: Array = values[tuple(slice(0, 1) if step == 0 else slice(None) for step in values.strides)]
    if out.ndim and out.shape[-1] > 1 and bool(np.all(out == out[..., :1])):
        out = out[..., :1]
    return out


def _log_incomplete_beta(
    a: Array, b: Array, x: Array, log_x: Array, log_1mx: Array, log_beta: Array
) -> Array:
    """log I_x(a, b), one of a and b being 1/2, where its continued fraction converges directly."""
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
    t_arr, nu_arr = np.broadcast_arrays(
        np.asarray(t, dtype=np.float64), np.asarray(dof, dtype=np.float64)
    )
    shape = t_arr.shape
    # At least one axis, so that every step can work in place. |t| is taken
    # where it is used: a copy of the batch costs more than those passes.
    values: Array = t_arr.reshape(shape or (1,))
    # ν is usually one per row: checked, and its log-gammas taken, once per value.
    nu = _without_repeats(nu_arr.reshape(values.shape))
    if np.any(~(nu > 0.0)) or np.isnan(values).any():
        raise ValueError("student_t_log_tail needs dof > 0 and t not NaN")
    log_beta = _log_beta_with_half(0.5 * nu)
    out = np.empty(values.shape)
    rows, per_row = values.shape[0], values.size // max(values.shape[0], 1)
    step = max(1, _BLOCK_ELEMENTS // max(per_row, 1))
    left: list[IndexArray] = [np.zeros(0, dtype=np.intp)]
    for start in range(0, rows, step):
        block = slice(start, start + step)
        nu_block, log_beta_block = (v if v.shape[0] == 1 else v[block] for v in (nu, log_beta))
        rest = _log_t_tail_of_block(values[block], nu_block, log_beta_block, out[block])
        left.append(rest + start * per_row)
    # The continued fraction costs per call on the few elements that need it: one call for all.
    chosen = np.concatenate(left)
    if chosen.size:
        t_rest = np.abs(values.reshape(-1)[chosen])
        where = np.unravel_index(chosen, values.shape)
        nu_rest, log_beta_rest = (np.broadcast_to(v, values.shape)[where] for v in (nu, log_beta))
        out.reshape(-1)[chosen] = _log_t_tail_by_fraction(
            t_rest, np.square(t_rest), nu_rest, log_beta_rest
        )
    if not two_sided:
        out -= _LOG_2
    return out.reshape(shape)


def _log_t_tail_of_block(t: Array, nu: Array, log_beta: Array, out: Array) -> IndexArray:
    """log P(|T| >= |t|) into ``out`` (contiguous), but for the elements the series cannot take.

    ``nu`` and ``log_beta`` broadcast against ``t``. Zero and infinite t are
    done here; the flat indices of the elements left for the continued
    fraction are returned. Every element's value is the same whichever way
    its block goes through the series.
    """
    t2 = np.square(t)
    series = t2 <= np.minimum(_SERIES_MAX_T2, nu / 3.0)
    series &= t != 0.0
    rest = np.flatnonzero(~series)
    if _MOSTLY_SERIES * rest.size <= series.size:
        # The whole block through the series (no arrays to gather); the few
        # others go as t² = 0, the shortest, and are overwritten below.
        t2.reshape(-1)[rest] = 0.0
        with np.errstate(all="ignore"):
            _log_t_tail_by_series(t, t2, nu, log_beta, out=out)
    elif rest.size < series.size:
        nu_all, log_beta_all = (np.broadcast_to(v, t2.shape) for v in (nu, log_beta))
        out[series] = _log_t_tail_by_series(
            t[series], t2[series], nu_all[series], log_beta_all[series]
        )
    if not rest.size:
        return rest
    t_rest = np.abs(t.reshape(-1)[rest])
    out.reshape(-1)[rest] = np.where(np.isinf(t_rest), -np.inf, 0.0)
    fraction: IndexArray = rest[np.isfinite(t_rest) & (t_rest > 0.0)]
    return fraction
