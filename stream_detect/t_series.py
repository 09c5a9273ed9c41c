"""The Student-t tail for small t: 1 minus the power series of the incomplete beta.

What this module promises: where t² <= min(12, ν/3) (:data:`_SERIES_MAX_T2`),
:func:`_log_t_tail_by_series` gives log P(|T| >= |t|), T ~ t(ν), to about
1e-13 relative, from the power series of I_y(1/2, ν/2), y = t²/(ν+t²), which
there converges in a few dozen positive terms and leaves a tail above 5e-4
(so forming 1 - I loses little). Each element's number of terms is read
beforehand from a table of bounds on its own (ν, t)
(:func:`_series_length_table`), and its sum taken backwards with nothing to
test, so an element's value does not depend on the rest of its batch.
:mod:`stream_detect.tails` chooses which elements come here.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
IndexArray = NDArray[np.intp]

#: The power series of the t tail runs where t² is at most this (and y = t²/(ν+t²) <= 1/4):
#: there it converges within ~50 terms and the tail is above 5e-4, so 1 - I keeps 13 digits.
_SERIES_MAX_T2 = 12.0
#: The t series' term counts are tabulated on cells of 1/16 in excess = y (ν/2 - 1),
#: from -1/4 (it is at least -y) to 6.75 (it stays below 6.1), by 1/64 in √y <= 1/2.
_EXCESS_STEPS = 16
_EXCESS_FROM = -0.25
_ROOT_Y_STEPS = 64
_SERIES_TABLE_SHAPE = (112, 34)
#: More than any cell of that table needs (at most about 60).
_MAX_SERIES_TERMS = 100

_LOG_2 = math.log(2.0)


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
    t: Array,
    t2: Array,
    nu: Array,
    log_beta: Array,
    out: Array | None = None,
    left_out: IndexArray | None = None,
) -> Array:
    """log P(|T| >= |t|) = log(1 - I_y(1/2, ν/2)), y = t²/(ν+t²) <= 1/4, by the series of I_y.

    I_y(1/2, b) = 2 √y (1-y)^b / B(1/2, b) · Σ c_n, c_0 = 1, c_(n+1) = c_n y (b + 1/2 + n)
    / (3/2 + n) = c_n (y + y (b - 1) / (3/2 + n)): positive terms whose ratio falls
    towards y, so each element needs a few terms past its largest one (at most
    about 60); see :func:`_t_series_sums`. ``nu`` and ``log_beta`` broadcast
    against ``t`` and ``t2``; the result goes to ``out`` if given. ``left_out``
    are the flat indices of elements the caller overwrites (sent with t² = 0
    whatever their t): their I is taken as 0, so that an infinite or large t
    there raises no floating-point warning, with no error state to set.
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
    if left_out is not None:
        complement.reshape(-1)[left_out] = 0.0
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
