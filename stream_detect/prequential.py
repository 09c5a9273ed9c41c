"""The exact prequential batch: running moments just before each row, from prefix sums.

:func:`prefix_statistics` answers the question the detector asks of a
micro-batch, *what were the statistics just before each row*, given which
rows are learned, for :class:`~stream_detect.stats.RunningMoments` and
:class:`~stream_detect.stats.RunningCovariance` alike. It takes prefix sums
(no Python loop per event) and equals the one-event-at-a-time Welford loop
to about 1e-12 relative: the sums are taken around a reference point close
to the data, and a chunk in which they would cancel more than
:data:`MAX_CANCELLATION` of their digits is halved and retried, so exactness
holds whatever the offset and scale of the data. With a half-life, each
chunk spans at most :data:`MAX_HALF_LIVES_PER_CHUNK` half-lives, which keeps
the decay weights inside the float range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.real_arrays import real_rows

if TYPE_CHECKING:
    from stream_detect.stats import _Moments

__all__ = [
    "MAX_CANCELLATION",
    "MAX_HALF_LIVES_PER_CHUNK",
    "Prefix",
    "chunk_limit",
    "exclusive_cumsum",
    "prefix_chunk",
    "prefix_statistics",
]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Prefix sums that cancel more than this share of their digits are recomputed
#: on a smaller chunk around a closer reference point.
MAX_CANCELLATION = 1e6
#: Bounds the dynamic range of the decay weights inside one chunk, in half-lives.
MAX_HALF_LIVES_PER_CHUNK = 256.0
#: Bounds the memory of the full-covariance prefix sums (elements of B * d * d).
_MAX_OUTER_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Prefix:
    """Statistics just before each row of a batch.

    ``n[i]``, ``mean[i]`` and ``second[i]`` describe the model that scores row
    ``i``: everything learned before the batch plus the learned rows before
    ``i``. ``second`` is ``m2`` (shape ``(B, d)``) or the co-moment matrix
    (shape ``(B, d, d)``); divide by ``n`` for the population (co)variance.
    """

    n: Array
    mean: Array
    second: Array

    @property
    def spread(self) -> Array:
        """Population variance ``(B, d)`` or covariance ``(B, d, d)``; zero where ``n`` is 0."""
        n = self.n.reshape((-1,) + (1,) * (self.second.ndim - 1))
        if n.all():
            every: Array = self.second / n
            return every
        safe = np.where(n > 0, n, 1.0)
        out: Array = np.where(n > 0, self.second / safe, 0.0)
        return out


def exclusive_cumsum(values: NDArray[Any]) -> NDArray[Any]:
    """Cumulative sums along axis 0 of everything strictly before each row.

    >>> exclusive_cumsum(np.array([1, 0, 1, 1])).tolist()
    [0, 1, 1, 2]
    """
    out = np.empty_like(values)
    if len(values):
        out[0] = 0
        np.cumsum(values[:-1], axis=0, out=out[1:])
    return out


def _tiny(center: Array) -> float:
    """Scale below which a raw second moment is rounding noise of values near ``center``."""
    return float(1e-20 * (1.0 + np.max(np.square(center))))


def prefix_statistics(moments: _Moments, X: Array, learn: BoolArray | None = None) -> Prefix:
    """Statistics just before each row of ``X``, learning the rows where ``learn`` is true.

    What :meth:`~stream_detect.stats.RunningMoments.prequential` promises;
    ``moments`` does not change. Chunks whose sums would cancel too many
    digits are halved and retried around a closer reference point.

    >>> from stream_detect.stats import RunningMoments
    >>> s = RunningMoments(1).learn(np.array([[0.0], [2.0]]))
    >>> p = prefix_statistics(s, np.array([[4.0], [100.0], [6.0]]), np.array([True, False, True]))
    >>> p.n.tolist(), p.mean[:, 0].tolist()
    ([2.0, 3.0, 3.0], [1.0, 2.0, 2.0])
    """
    X = real_rows(X, "X", moments.d)
    rows = X.shape[0]
    mask = np.ones(rows, dtype=bool) if learn is None else np.asarray(learn, dtype=bool)
    if mask.shape != (rows,):
        raise ValueError(f"learn mask has shape {mask.shape}, expected ({rows},)")
    n_out = np.empty(rows)
    mean_out = np.empty((rows, moments.d))
    second_out = np.empty((rows, *moments.second.shape))
    state = moments
    limit = chunk_limit(moments)
    start, size = 0, limit
    while start < rows:
        stop = min(rows, start + size)
        result = prefix_chunk(state, X[start:stop], mask[start:stop])
        if result is None:
            # Too many digits would cancel: retry a shorter chunk, whose end
            # moves the reference point closer to the data that follows.
            size = max(1, (stop - start) // 2)
            continue
        n_out[start:stop], mean_out[start:stop], second_out[start:stop] = result
        if stop < rows:
            # Later chunks start from this one's end; the caller's state stays as it was.
            state = state.copy() if state is moments else state
            state.learn(X[start:stop][mask[start:stop]])
        start, size = stop, min(limit, 2 * size)
    return Prefix(n_out, mean_out, second_out)


def chunk_limit(moments: _Moments) -> int:
    """Rows per chunk that keep decay weights and outer products in bounds."""
    limit = 1 << 30
    if moments.decay < 1.0 and moments.half_life is not None:
        limit = max(1, int(MAX_HALF_LIVES_PER_CHUNK * moments.half_life))
    per_row = int(np.prod(moments.second.shape))
    if per_row > moments.d:
        limit = min(limit, max(1, _MAX_OUTER_ELEMENTS // per_row))
    return limit


def prefix_chunk(
    moments: _Moments, X: Array, learn: BoolArray
) -> tuple[Array, Array, Array] | None:
    """Prefix statistics (n, mean, second) of one chunk, or None if the sums would lose digits.

    The sums are taken around the model's mean (or the chunk's first learned
    row); None when a second moment would cancel more than
    :data:`MAX_CANCELLATION` of its digits (the data far from that point
    and close to each other: the caller halves the chunk and moves the point).

    >>> from stream_detect.stats import RunningMoments
    >>> s = RunningMoments(1).learn(np.array([[0.0], [2.0]]))
    >>> n, mean, m2 = prefix_chunk(s, np.array([[4.0], [6.0]]), np.array([True, True]))
    >>> n.tolist(), mean[:, 0].tolist(), m2[:, 0].tolist()
    ([2.0, 3.0], [1.0, 2.0], [2.0, 8.0])
    """
    rows = X.shape[0]
    if moments.n > 0:
        center = moments.mean
    else:
        learned = np.flatnonzero(learn)
        center = X[learned[0]] if learned.size else np.zeros(moments.d)
    y = X - center
    w = learn.astype(np.float64)
    # learned_before[i]: learned rows before row i; each learned row decays
    # everything before it once, so weights are powers of the decay.
    learned_before = exclusive_cumsum(w)
    prior_scale: Array | None = None
    if moments.decay == 1.0:
        row_weight = w
    else:
        # Row k's weight seen from row i is decay**(L_i - L_k - 1): factor
        # out decay**L_i and keep decay**-(L_k + 1) per row.
        log_decay = math.log(moments.decay)
        row_weight = w * np.exp(-log_decay * (learned_before + 1.0))
        prior_scale = np.exp(log_decay * learned_before)
    every_row_learns = prior_scale is None and bool(learn.all())
    # Weights of 1 and a shift of 0 (centred on the mean) change nothing: skipped.
    weighted_y = y if every_row_learns else row_weight[:, None] * y
    cum_w = np.arange(rows, dtype=np.float64) if every_row_learns else exclusive_cumsum(row_weight)
    cum_y = exclusive_cumsum(weighted_y)
    cum_yy = moments._prefix_outer(weighted_y, y)
    expand = (slice(None),) + (None,) * (cum_yy.ndim - 1)
    n = moments.n + cum_w
    if moments.n > 0:
        sum_y, sum_yy = cum_y, moments.second + cum_yy
    else:
        shift = moments.mean - center
        sum_y = moments.n * shift + cum_y
        sum_yy = moments.second + moments._outer(shift, shift) * moments.n + cum_yy
    if prior_scale is not None:  # None without a half-life: a scale of 1 changes nothing
        n *= prior_scale
        sum_y *= prior_scale[:, None]
        sum_yy *= prior_scale[expand]
    every_row_has_data = bool(n.all())
    safe_n = n if every_row_has_data else np.where(n > 0, n, 1.0)
    mean_y = sum_y / safe_n[:, None]
    second = sum_yy - moments._outer(sum_y, mean_y)
    diag_second = second if second.ndim == 2 else np.diagonal(second, axis1=1, axis2=2)
    diag_raw = sum_yy if sum_yy.ndim == 2 else np.diagonal(sum_yy, axis1=1, axis2=2)
    # A plan that teaches values near the float's square root as they are (a
    # guess the next pass replaces) can put m2 past 1e302: infinite here, as it should.
    with np.errstate(over="ignore"):
        lost_digits = (diag_raw > _tiny(center)) & (
            diag_raw > MAX_CANCELLATION * np.maximum(diag_second, 0.0)
        )
    if rows > 1 and np.any(lost_digits):
        return None
    second = _clip_second(second)
    mean = center + mean_y
    if not every_row_has_data:
        mean = np.where((n > 0)[:, None], mean, 0.0)
    return n, mean, second


def _clip_second(second: Array) -> Array:
    """Zero out negative rounding residue on the variance diagonal."""
    if second.ndim == 2:
        out: Array = np.maximum(second, 0.0)
        return out
    idx = np.arange(second.shape[-1])
    second[:, idx, idx] = np.maximum(second[:, idx, idx], 0.0)
    return second
