"""Prefix statistics of many keys' rows in one pass: segmented scans.

:func:`segmented_prefix` answers, for a batch sorted by key, what
:meth:`~stream_detect.stats.RunningMoments.prequential` answers for one key:
the count, mean and m2 just before each row, and after the last row of each
key; :func:`segmented_comoments` the count, mean and co-moment matrix before
each row of full-covariance models, bit for bit as the one-key scan. Each key
starts from its own statistics and its prefix sums restart at its first row.
The sums of one key never mix with another's (a shared running sum would
lose a quiet key's digits to a loud one's): keys are padded into one array
per power-of-two length and summed along the rows.
A key whose sums would cancel too many digits is reported, for the caller to
score on its own with the chunked scan of :mod:`stream_detect.prequential`
(whose bounds on cancellation and on half-lives per scan it shares).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from stream_detect.prequential import MAX_CANCELLATION, MAX_HALF_LIVES_PER_CHUNK, Prefix

__all__ = ["Segments", "segmented_comoments", "segmented_prefix"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]


@dataclass(frozen=True)
class Segments:
    """Per row of a key-sorted batch (``n``, ``mean``, ``second``) and per key after its rows.

    ``n_after``, ``mean_after`` and ``second_after`` are each key's statistics
    after its last row; ``unsure`` marks keys whose sums cancelled too many
    digits (their rows must be scored again on their own).
    """

    n: Array
    mean: Array
    second: Array
    n_after: Array
    mean_after: Array
    second_after: Array
    unsure: BoolArray


def segmented_prefix(
    X: Array,
    learn: BoolArray,
    starts: IntArray,
    n0: Array,
    mean0: Array,
    second0: Array,
    decay: float = 1.0,
    half_life: float | None = None,
) -> Segments:
    """Statistics before each row of ``X`` (sorted by key; key ``g`` starts at ``starts[g]``).

    Key ``g`` starts from ``n0[g]``, ``mean0[g]`` and ``second0[g]`` (m2) and
    learns its rows where ``learn`` is true, forgetting by ``decay`` per
    learned row, exactly as :class:`~stream_detect.stats.RunningMoments` would.

    >>> X = np.array([[1.0], [3.0], [10.0]])
    >>> s = segmented_prefix(X, np.ones(3, bool), np.array([0, 2]),
    ...                      np.zeros(2), np.zeros((2, 1)), np.zeros((2, 1)))
    >>> s.mean[:, 0].tolist(), s.mean_after[:, 0].tolist(), s.second_after[:, 0].tolist()
    ([0.0, 1.0, 0.0], [2.0, 10.0], [2.0, 0.0])
    """
    rows, d = X.shape
    keys = starts.size
    lengths = np.diff(np.append(starts, rows))
    out = Segments(
        np.empty(rows),
        np.empty((rows, d)),
        np.empty((rows, d)),
        np.empty(keys),
        np.empty((keys, d)),
        np.empty((keys, d)),
        np.zeros(keys, bool),
    )
    # One more place per key holds the statistics after its last row.
    widths = 1 << np.ceil(np.log2(lengths + 1)).astype(np.int64)
    for width in np.unique(widths).tolist():
        members = np.flatnonzero(widths == width)
        _scan_bucket(X, learn, starts, lengths, n0, mean0, second0, decay, members, width, out)
    if half_life is not None and decay < 1.0:
        out.unsure[lengths > MAX_HALF_LIVES_PER_CHUNK * half_life] = True
    return out


def _scan_bucket(
    X: Array,
    learn: BoolArray,
    starts: IntArray,
    lengths: IntArray,
    n0: Array,
    mean0: Array,
    second0: Array,
    decay: float,
    members: IntArray,
    width: int,
    out: Segments,
) -> None:
    """Scan the keys ``members``, each padded to ``width`` rows, into ``out``."""
    d = X.shape[1]
    offsets = np.arange(width)
    inside = offsets[None, :] < lengths[members, None]
    index = np.where(inside, starts[members, None] + offsets[None, :], 0)
    weight = np.where(inside, learn[index], False).astype(np.float64)
    values = X[index]
    start_n = n0[members]
    first_learned = np.argmax(weight > 0, axis=1)
    any_learned: BoolArray = np.any(weight > 0, axis=1)
    center = np.where(
        (start_n > 0)[:, None],
        mean0[members],
        np.where(any_learned[:, None], values[np.arange(members.size), first_learned], 0.0),
    )
    y = np.where(inside[..., None], values - center[:, None, :], 0.0)
    learned_before = _exclusive(weight)
    shift = mean0[members] - center
    prior_second = second0[members] + shift * shift * start_n[:, None]
    row_weight = weight
    if decay != 1.0:
        log_decay = math.log(decay)
        row_weight = weight * np.exp(-log_decay * (learned_before + 1.0))
    weighted_y = row_weight[..., None] * y
    n = start_n[:, None] + _exclusive(row_weight)
    sum_y = (start_n[:, None] * shift)[:, None, :] + _exclusive(weighted_y)
    sum_yy = prior_second[:, None, :] + _exclusive(weighted_y * y)
    if decay != 1.0:  # without a half-life every scale is 1 and changes nothing
        prior_scale = np.exp(log_decay * learned_before)
        n *= prior_scale
        sum_y *= prior_scale[..., None]
        sum_yy *= prior_scale[..., None]
    safe_n = np.where(n > 0, n, 1.0)
    mean_y = sum_y / safe_n[..., None]
    second = sum_yy - sum_y * mean_y
    tiny = 1e-20 * (1.0 + np.max(np.square(center), axis=1))
    lost = (sum_yy > tiny[:, None, None]) & (sum_yy > MAX_CANCELLATION * np.maximum(second, 0.0))
    # A key whose first row alone is scored keeps the one-key scan's rule: never unsure.
    out.unsure[members] = np.any(lost & (offsets[None, :, None] > 0), axis=(1, 2)) & (
        lengths[members] > 1
    )
    second = np.maximum(second, 0.0)
    mean = np.where((n > 0)[..., None], center[:, None, :] + mean_y, 0.0)
    rows = index[inside]
    out.n[rows] = n[inside]
    out.mean[rows] = mean[inside]
    out.second[rows] = second[inside]
    last = lengths[members]
    picked = np.arange(members.size)
    out.n_after[members] = n[picked, last]
    out.mean_after[members] = mean[picked, last].reshape(-1, d)
    out.second_after[members] = second[picked, last].reshape(-1, d)


def _exclusive(values: Array) -> Array:
    """Sums along axis 1 of everything strictly before each place."""
    out = np.zeros_like(values)
    np.cumsum(values[:, :-1], axis=1, out=out[:, 1:])
    return out


def segmented_comoments(
    X: Array, learn: BoolArray, starts: IntArray, n0: Array, mean0: Array, second0: Array
) -> tuple[Prefix, BoolArray]:
    """Count, mean and co-moments before each row of ``X`` (sorted by key), and the unsure keys.

    Key ``g``'s rows start at ``starts[g]``; it starts from ``n0[g]``,
    ``mean0[g]`` and ``second0[g]`` (a co-moment matrix, no half-life) and
    learns its rows where ``learn`` is true. Each key's rows get, bit for bit,
    what :func:`~stream_detect.prequential.prefix_statistics` gives them as one
    chunk: the same reference point, the same sums in the same order. A key
    whose sums cancel too many digits there is marked ``unsure`` (the one-key
    scan would cut it into shorter chunks): its rows must be scored on their own.

    >>> X = np.array([[1.0, 2.0], [3.0, 0.0], [10.0, 10.0]])
    >>> p, unsure = segmented_comoments(X, np.ones(3, bool), np.array([0, 2]),
    ...                                 np.zeros(2), np.zeros((2, 2)), np.zeros((2, 2, 2)))
    >>> p.n.tolist(), p.mean[1].tolist(), p.second[1].tolist(), unsure.tolist()
    ([0.0, 1.0, 0.0], [1.0, 2.0], [[0.0, 0.0], [0.0, 0.0]], [False, False])
    """
    rows, d = X.shape
    lengths = np.diff(np.append(starts, rows))
    key = np.repeat(np.arange(starts.size), lengths)
    # The one-key scan sums about the model's mean, or its first learned row if it has none.
    learned = np.flatnonzero(learn)
    keys_learning, first = np.unique(key[learned], return_index=True)
    first_row = np.zeros((starts.size, d))
    first_row[keys_learning] = X[learned[first]]
    center = np.where((n0 > 0)[:, None], mean0, first_row)
    cum_w, cum_y, cum_yy = np.empty(rows), np.empty((rows, d)), np.empty((rows, d, d))
    widths = 1 << np.ceil(np.log2(lengths)).astype(np.int64)
    for width in np.unique(widths).tolist():
        members = np.flatnonzero(widths == width)
        _scan_comoments(X, learn, center, starts, lengths, members, width, cum_w, cum_y, cum_yy)
    has = (n0 > 0)[key]
    start_n, shift = n0[key], (mean0 - center)[key]
    # The one-key scan adds what was learned before in one of two ways: so does this.
    sum_y = np.where(has[:, None], cum_y, start_n[:, None] * shift + cum_y)
    moved = second0[key] + (shift[:, :, None] * shift[:, None, :]) * start_n[:, None, None]
    sum_yy = np.where(has[:, None, None], second0[key] + cum_yy, moved + cum_yy)
    n = start_n + cum_w
    mean_y = sum_y / np.where(n > 0, n, 1.0)[:, None]
    second = sum_yy - sum_y[:, :, None] * mean_y[:, None, :]
    diagonal = np.arange(d)
    raw, centred = sum_yy[:, diagonal, diagonal], second[:, diagonal, diagonal]
    tiny = 1e-20 * (1.0 + np.max(np.square(center), axis=1))
    with np.errstate(over="ignore"):
        lost = (raw > tiny[key, None]) & (raw > MAX_CANCELLATION * np.maximum(centred, 0.0))
    unsure = (np.bincount(key, np.any(lost, axis=1).astype(np.float64), starts.size) > 0) & (
        lengths > 1
    )
    second[:, diagonal, diagonal] = np.maximum(centred, 0.0)
    mean = np.where((n > 0)[:, None], center[key] + mean_y, 0.0)
    return Prefix(n, mean, second), unsure


def _scan_comoments(
    X: Array,
    learn: BoolArray,
    center: Array,
    starts: IntArray,
    lengths: IntArray,
    members: IntArray,
    width: int,
    cum_w: Array,
    cum_y: Array,
    cum_yy: Array,
) -> None:
    """The sums before each row of the keys ``members``, padded to ``width`` rows, into ``cum_*``.

    The products and running sums of :meth:`RunningCovariance._prefix_outer`,
    along each key's rows: the lower triangle's, read into both halves.
    """
    d = X.shape[1]
    inside = np.arange(width)[None, :] < lengths[members, None]
    at = (starts[members, None] + np.arange(width)[None, :])[inside]
    weight = np.zeros(inside.shape)
    weight[inside] = learn[at]
    y = np.zeros((*inside.shape, d))
    y[inside] = X[at] - center[np.repeat(members, lengths[members])]
    weighted = weight[..., None] * y
    lower, upper = np.tril_indices(d)
    pair = np.empty((d, d), dtype=np.intp)
    pair[lower, upper] = pair[upper, lower] = np.arange(lower.size)
    running = _exclusive(weighted[..., lower] * y[..., upper])[inside]
    cum_w[at] = _exclusive(weight)[inside]
    cum_y[at] = _exclusive(weighted)[inside]
    cum_yy[at] = np.take(running, pair.reshape(-1), axis=1).reshape(-1, d, d)
