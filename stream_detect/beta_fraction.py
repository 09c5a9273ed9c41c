"""The continued fraction of the regularised incomplete beta function I_x(a, b).

What this module promises: :func:`_log_incomplete_beta` gives log I_x(a, b)
where the fraction converges, x < (a+1)/(a+b+2), elementwise; the Student-t
tail (:mod:`stream_detect.tails`) uses it with one of a and b equal to 1/2,
for the values of t its power series (:mod:`stream_detect.t_series`) does
not take. Each element's value depends on its own arguments alone, not on
the rest of the batch.

The fraction is I_x(a, b) = x^a (1-x)^b / (a B(a, b)) · 1/(1 + d_1/(1 + d_2/(1 +
...))), d_(2m+1) = -(a+m)(a+b+m) x / ((a+2m)(a+2m+1)), d_(2m) = m(b-m) x /
((a+2m-1)(a+2m)). :func:`_beta_fraction` evaluates its even part (two of
its levels in each) bottom-up, from a fixed depth to the top, at two depths
at once, and takes the deeper value where the two agree; the few elements
that no pair of depths settles go to Lentz's algorithm
(:func:`_beta_fraction_by_lentz`). With nothing to test, no denominators
to guard and no elements to drop on the way, an even level costs two numpy
operations once its coefficients are formed (all levels in one set of
calls on few elements), against about thirty for a step of Lentz's: on the
tens of values a batch of rows usually sends here, a third of the time.
On thousands of values that need 15 to 20 levels each, forming the levels
is the cost either way, and bottom-up takes up to 1.5 times as many
instructions (the depths overshoot what each needs). Bottom-up is also
the more accurate (to about 3e-16 times the fraction's condition number,
against 1.3e-15).

I_x(1, 1/2) = 1 - √(1-x), so at x = 1/2 the fraction is 4√2 - 4:

>>> one = np.array([1.0])
>>> abs(float(_beta_fraction(one, one / 2, one / 2)[0]) - (4 * 2**0.5 - 4)) < 1e-15
True
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray

from stream_detect.gamma_tails import _MAX_ITERATIONS, _TOLERANCE, _guard

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Bottom-up evaluations, in order, each a (shallow, deep) pair of depths in levels of the
#: even part (two of the fraction's each): all elements at the first, those not yet settled
#: at the next. Spaced so that an element is carried about as deep as Lentz would go.
_DEPTHS = ((6, 8), (12, 14), (18, 20), (26, 28), (38, 40))
#: An element settles where its two values agree to this relative difference (two ulps).
_AGREEMENT = 2.0**-51
#: Up to this many elements, levels are formed all at once as (levels, elements) arrays
#: (numpy calls are the cost); beyond, a level at a time (numpy's loops over one axis are).
_BROADCAST_MAX = 256
#: Elements are taken this many at a time: their (levels, elements) arrays stay in cache.
_CHUNK = 4096
#: Lentz's algorithm forms its coefficients for this many steps at a time.
_FRACTION_BLOCK = 8
#: ... on at most this many elements (beyond, one step at a time).
_FRACTION_BLOCK_ROWS = 256


def _beta_fraction_guarded(a: Array, b: Array, x: Array) -> Array:
    """The continued fraction of I_x(a, b) (modified Lentz); converges for x < (a+1)/(a+b+2).

    The reference form, guarding every denominator against zero; it is only
    run for the elements where :func:`_beta_fraction_by_lentz` met a zero denominator.
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
    """The continued fraction of I_x(a, b): bottom-up where that settles, else by Lentz.

    Each pair of :data:`_DEPTHS` in turn is tried on the elements not yet
    settled (:func:`_bottom_up`); what none settles goes to
    :func:`_beta_fraction_by_lentz`. The levels formed for one pair are kept
    for the next. Whether and where an element settles depends on its own
    arguments alone, so its value does too.

    >>> a, b, x = np.array([1.0, 40.0]), np.array([0.5, 0.5]), np.array([0.5, 0.9])
    >>> bool(np.allclose(_beta_fraction(a, b, x), _beta_fraction_by_lentz(a, b, x), rtol=1e-15))
    True
    """
    if x.size <= _CHUNK:
        return _beta_fraction_of_chunk(a, b, x)
    out = np.empty(x.shape)
    for start in range(0, x.size, _CHUNK):
        chunk = slice(start, start + _CHUNK)
        out[chunk] = _beta_fraction_of_chunk(a[chunk], b[chunk], x[chunk])
    return out


def _beta_fraction_of_chunk(a: Array, b: Array, x: Array) -> Array:
    """:func:`_beta_fraction` of flat arrays, all at once."""
    shallow, deep = _DEPTHS[0]
    beta, product = np.empty((deep + 1, x.size)), np.empty((deep + 1, x.size))
    following = _levels(a, b, x, 0, beta, product, None)
    out, settled = _bottom_up(beta, product, shallow, deep)
    if settled.all():
        return out
    left = np.flatnonzero(~settled)
    for shallow, deep in _DEPTHS[1:]:
        # The levels formed so far, for the elements still unsettled, and new ones below them.
        kept = np.flatnonzero(~settled)
        a, b, x, following = a[kept], b[kept], x[kept], following[kept]
        formed = beta.shape[0]
        beta_kept, product_kept = np.empty((deep + 1, kept.size)), np.empty((deep + 1, kept.size))
        np.take(beta, kept, axis=1, out=beta_kept[:formed])
        np.take(product, kept, axis=1, out=product_kept[:formed])
        beta, product = beta_kept, product_kept
        following = _levels(a, b, x, formed, beta[formed:], product[formed:], following)
        values, settled = _bottom_up(beta, product, shallow, deep)
        out[left[settled]] = values[settled]
        if settled.all():
            return out
        left = left[~settled]
    kept = np.flatnonzero(~settled)
    out[left] = _beta_fraction_by_lentz(a[kept], b[kept], x[kept])
    return out


def _levels(
    a: Array, b: Array, x: Array, first: int, beta: Array, product: Array, previous: Array | None
) -> Array:
    """Levels ``first`` on of the even part into the rows of ``beta`` and ``product``.

    Level j has β_j = 1 + d_(2j) + d_(2j+1) and product_j = -d_(2j+1) d_(2j+2),
    so that T_j = β_j + product_j / T_(j+1). ``previous`` is the d_(2j) of
    level ``first`` (d_0 = 0: None when ``first`` is 0); the d_(2j+2) of the
    last level is returned, for the levels after it. An element's values
    are formed from its own arguments and j alone, operation for operation
    the same on both paths.
    """
    if x.size > _BROADCAST_MAX:
        return _levels_one_at_a_time(a, b, x, first, beta, product, previous)
    j, j_next = _level_columns(first, beta.shape[0])
    # |d_(2j+1)| = (a+j)(a+b+j) x / ((a+2j)(a+2j+1)).
    shifted = a + j
    odd = shifted + b
    odd *= shifted
    twice = np.add(shifted, j, out=shifted)
    next_twice = twice + 1.0
    twice *= next_twice
    odd /= twice
    odd *= x
    # d_(2j+2) = (j+1)(b-j-1) x / ((a+2j+1)(a+2j+2)).
    following = b - j_next
    following *= j_next
    following *= x
    next_twice *= np.add(next_twice, 1.0, out=twice)
    following /= next_twice
    np.subtract(1.0, odd, out=beta)
    if previous is not None:
        beta[0] += previous
    beta[1:] += following[:-1]
    np.multiply(odd, following, out=product)
    last: Array = following[-1]
    return last


def _levels_one_at_a_time(
    a: Array, b: Array, x: Array, first: int, beta: Array, product: Array, previous: Array | None
) -> Array:
    """:func:`_levels`, a level at a time: on many elements, with j a scalar, numpy's fast loops."""
    following = np.zeros(x.shape) if previous is None else previous
    shifted, odd, twice, next_twice = (np.empty(x.shape) for _ in range(4))
    for row in range(beta.shape[0]):
        j = float(first + row)
        np.add(a, j, out=shifted)
        np.add(shifted, b, out=odd)
        odd *= shifted
        np.add(shifted, j, out=twice)
        np.add(twice, 1.0, out=next_twice)
        twice *= next_twice
        odd /= twice
        odd *= x
        np.subtract(1.0, odd, out=beta[row])
        if row or previous is not None:
            beta[row] += following
        following = np.subtract(b, j + 1.0)
        following *= j + 1.0
        following *= x
        next_twice *= np.add(next_twice, 1.0, out=twice)
        following /= next_twice
        np.multiply(odd, following, out=product[row])
    return following


@functools.cache
def _level_columns(first: int, count: int) -> tuple[Array, Array]:
    """The levels j = first .. first + count - 1 and j + 1, as read-only columns."""
    j = np.arange(first, first + count, dtype=np.float64)[:, None]
    j_next = j + 1.0
    j.flags.writeable = j_next.flags.writeable = False
    return j, j_next


def _bottom_up(beta: Array, product: Array, shallow: int, deep: int) -> tuple[Array, BoolArray]:
    """The even part evaluated from level ``deep`` up and from ``shallow`` up; where they agree.

    The even part of 1/(1 + d_1/(1 + d_2/(1 + ...))) is 1/T_0, T_j = β_j +
    product_j / T_(j+1) (see :func:`_levels`): each of its levels carries two
    of the fraction's. Cut at T_deep = β_deep, it is the fraction cut after
    d_(2 deep + 1). The same pass gives the value cut at ``shallow``
    alongside; an element is settled where the two agree to
    :data:`_AGREEMENT` (a NaN or an infinity never agrees), and its value is
    then the deeper one. Denominators are not guarded: a zero one, not met
    inside the region of convergence in practice, leaves the element
    unsettled, for Lentz's guarded form to take.
    """
    levels = np.empty((2, beta.shape[1]))
    deeper, shallower = levels
    np.copyto(deeper, beta[deep])
    for j in range(deep - 1, shallow - 1, -1):
        np.divide(product[j], deeper, out=deeper)
        deeper += beta[j]
    np.copyto(shallower, beta[shallow])
    # Both rows in one call on few elements; on many, each row alone runs numpy's fast loops.
    rows = [levels] if beta.shape[1] <= _BROADCAST_MAX else [deeper, shallower]
    for j in range(shallow - 1, -1, -1):
        for values in rows:
            np.divide(product[j], values, out=values)
            values += beta[j]
    shallower -= deeper
    settled: BoolArray = np.abs(shallower, out=shallower) <= _AGREEMENT * np.abs(deeper)
    out: Array = np.divide(1.0, deeper, out=deeper)
    return out, settled


def _beta_fraction_by_lentz(a: Array, b: Array, x: Array) -> Array:
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


def _log_incomplete_beta(
    a: Array, b: Array, x: Array, log_x: Array, log_1mx: Array, log_beta: Array
) -> Array:
    """log I_x(a, b), one of a and b being 1/2, where its continued fraction converges directly."""
    out: Array = np.log(_beta_fraction(a, b, x))
    out -= np.log(a)
    out += a * log_x
    out += b * log_1mx
    out -= log_beta
    return out
