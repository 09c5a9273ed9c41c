"""The continued fraction of the regularised incomplete beta function I_x(a, b).

What this module promises: :func:`_log_incomplete_beta` gives log I_x(a, b)
where the fraction converges, x < (a+1)/(a+b+2), elementwise; the Student-t
tail (:mod:`stream_detect.tails`) uses it with one of a and b equal to 1/2,
for the values of t its power series (:mod:`stream_detect.t_series`) does
not take. Each element's value depends on its own arguments alone, not on
the rest of the batch.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from stream_detect.gamma_tails import _MAX_ITERATIONS, _TOLERANCE, _guard

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: The beta continued fraction forms its coefficients for this many steps at a time.
_FRACTION_BLOCK = 8
#: ... on at most this many elements (beyond, one step at a time).
_FRACTION_BLOCK_ROWS = 256


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


def _log_incomplete_beta(
    a: Array, b: Array, x: Array, log_x: Array, log_1mx: Array, log_beta: Array
) -> Array:
    """log I_x(a, b), one of a and b being 1/2, where its continued fraction converges directly."""
    out: Array = a * log_x + b * log_1mx - log_beta + np.log(_beta_fraction(a, b, x)) - np.log(a)
    return out
