"""Prefix statistics of many keys' rows in one pass: the diagonal model's segmented scan.

:func:`segmented_prefix` answers, for a batch sorted by key, what
:meth:`~stream_detect.stats.RunningMoments.prequential` answers for one key:
the count, mean and m2 just before each row, and after the last row of each
key. Each key starts from its own statistics and its prefix sums restart at
its first row. The sums of one key never mix with another's (a shared
running sum would lose a quiet key's digits to a loud one's): keys are
padded into one array per power-of-two length and summed along the rows.
A key whose sums would cancel too many digits is reported, for the caller to
score on its own with the chunked scan of :mod:`stream_detect.prequential`
(whose bounds on cancellation and on half-lives per scan it shares).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from stream_detect.prequential import MAX_CANCELLATION, MAX_HALF_LIVES_PER_CHUNK

__all__ = ["Segments", "segmented_prefix"]

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
