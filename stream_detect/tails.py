"""Calibrated tail probabilities, in log space, numpy-vectorised, without SciPy.

A threshold that means the same on every stream compares a *tail probability*,
not a density: the chance that a normal event is at least this far out. This
module is the front of four that compute the logarithm of such tails so that
they never underflow; every public name is importable from here:

- :func:`log_upper_gamma` -- log Q(a, x), the regularised upper incomplete
  gamma function (:mod:`stream_detect.gamma_tails`, with its power series,
  continued fraction and closed form);
- :func:`chi2_log_sf` -- log P(χ²_d ≥ r²), the tail of a squared Mahalanobis
  distance of a d-variate Gaussian (d = 1 to thousands, r² up to ~1e300);
- :func:`normal_log_tail` -- log P(|Z| ≥ |z|) (two-sided) or log P(Z ≥ |z|)
  (one-sided) of a standard normal, which is log Q(1/2, z²/2) (minus log 2);
- :func:`student_t_log_tail` (here) -- the same for Student's t with ν degrees
  of freedom (the predictive of a Gaussian whose mean and variance are
  uncertain), log I_x(ν/2, 1/2) at x = ν / (ν + t²), the regularised
  incomplete beta.

The t tail takes one of two routes per element. Where t² <= min(12, ν/3) it
is 1 minus the power series of I_y(1/2, ν/2), y = t²/(ν+t²), which there
converges in a few dozen positive terms (:mod:`stream_detect.t_series`: each
element's number of terms read beforehand from a table of bounds, its sum
taken backwards with nothing to test). Elsewhere the continued fraction of
the incomplete beta (:mod:`stream_detect.beta_fraction`), on the side where
it converges, gives the upper tail itself, so a tail of 1e-300 keeps its
full relative precision in log space. log B(ν/2, 1/2) comes from its
asymptotic series (after the recurrence for small ν), once per distinct ν of
a broadcast axis. The t tails of a batch are computed in blocks of rows, in
place where possible: at a few thousand rows a fresh array costs more in
page faults than a pass over it. A batch gives exactly what its elements one
at a time would give.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.beta_fraction import _log_incomplete_beta
from stream_detect.gamma_tails import chi2_log_sf, log_upper_gamma, normal_log_tail
from stream_detect.t_series import _SERIES_MAX_T2, _log_t_tail_by_series

__all__ = ["chi2_log_sf", "log_upper_gamma", "normal_log_tail", "student_t_log_tail"]

Array = NDArray[np.float64]
IndexArray = NDArray[np.intp]

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

_LOG_SQRT_PI = 0.5 * math.log(math.pi)
_LOG_2 = math.log(2.0)


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


def _log_t_tail_by_fraction(t: Array, t2: Array, nu: Array, log_beta: Array) -> Array:
    """log P(|T| >= t) = log I_x(ν/2, 1/2), x = ν/(ν+t²), from the continued fraction.

    The fraction is run on I_x(ν/2, 1/2) where it converges (large t) and on
    its complement I_(1-x)(1/2, ν/2) otherwise, both in one call: on the few
    elements that come here, numpy calls are the cost.
    """
    total = nu + t2
    # log x and log(1 - x), each formed without cancellation (t² may underflow where t does not).
    log_x = np.divide(t2, nu)
    np.log1p(log_x, out=log_x)
    np.negative(log_x, out=log_x)
    log_1mx = np.log(t)
    log_1mx *= 2.0
    log_1mx -= np.log(total)
    a = 0.5 * nu
    x = nu / total
    direct = x < (a + 1.0) / (a + 2.5)
    if direct.all():
        # Usually so (large t): then nothing needs choosing.
        return _log_incomplete_beta(a, np.full(a.shape, 0.5), x, log_x, log_1mx, log_beta)
    out = _log_incomplete_beta(
        np.where(direct, a, 0.5),
        np.where(direct, 0.5, a),
        np.where(direct, x, t2 / total),
        np.where(direct, log_x, log_1mx),
        np.where(direct, log_1mx, log_x),
        log_beta,
    )
    flip = ~direct
    out[flip] = np.log1p(-np.exp(out[flip]))
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
        _log_t_tail_by_series(t, t2, nu, log_beta, out=out, left_out=rest)
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
