"""The Numenta Anomaly Benchmark scorer (NAB v1.1), as pure numpy functions.

NAB scores a detector by anomaly *windows*, not by rows. Per file:

- the first ``min(floor(0.15 * rows), 750)`` rows are probationary: nothing
  there counts, neither detections nor the windows' rows;
- a window that has at least one detection scores the sigmoid-scaled position
  of its *earliest* detection, ``tp_weight`` at its left edge falling towards 0
  at its right edge; a window with none scores ``-fn_weight``;
- *every* detection outside the windows costs ``fp_weight`` times a sigmoid of
  its distance past the preceding window (``-fp_weight`` when no window
  precedes it, almost nothing just after a window's right edge).

A row is a detection when its anomaly score is ``>= threshold``
(:func:`score_file`). How NAB picks that threshold for a whole corpus and
normalises the corpus total lives in :mod:`stream_detect.nab_corpus`.

This follows ``nab/sweeper.py`` of numenta/NAB (``calcSweepScore``) row for
row, including its handling of repeated timestamps; ``tests/test_nab_scoring.py``
checks it against NAB's published windowedGaussian totals. The I/O (reading
NAB's CSV and JSON files) lives in ``bench/nab.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "MAX_TP",
    "PROBATION_PERCENT",
    "CostMatrix",
    "FileLayout",
    "FileScore",
    "file_layout",
    "probationary_length",
    "scaled_sigmoid",
    "score_file",
]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

#: Share of each file NAB ignores at its start (``--probationaryPercent``).
PROBATION_PERCENT = 0.15
#: The probationary period never exceeds this many rows' worth of the share (NAB: 0.15 * 5000).
_PROBATION_CAP_ROWS = 5000


def scaled_sigmoid(position: Array) -> Array:
    """NAB's ``2 * sigmoid(-5 * position) - 1``, and -1 beyond position 3.

    Position -1 is a window's left edge, 0 just past its right edge; positive
    positions are false positives after a window, in window widths.

    >>> scaled_sigmoid(np.array([-1.0, -0.5, 0.0, 1.0, 3.5])).round(5).tolist()
    [0.98661, 0.84828, 0.0, -0.98661, -1.0]
    """
    position = np.asarray(position, dtype=np.float64)
    # 2 * sigmoid(y) - 1 == tanh(y / 2), without overflow for large |y|.
    # (+ 0.0 turns the -0.0 at position 0 into 0.0.)
    inside: Array = np.tanh(-2.5 * position) + 0.0
    return np.where(position > 3.0, -1.0, inside)


#: Unweighted score of a detection at a window's left edge; NAB divides by it
#: so that the earliest possible detection is worth exactly ``tp_weight``.
MAX_TP = float(scaled_sigmoid(np.array([-1.0]))[0])


def probationary_length(rows: int, percent: float = PROBATION_PERCENT) -> int:
    """Rows at the start of a file that NAB does not score.

    >>> probationary_length(4032), probationary_length(22695)
    (604, 750)
    """
    # NAB compares the row index with min(floor(p * n), p * 5000), a float.
    return math.ceil(min(math.floor(percent * rows), percent * _PROBATION_CAP_ROWS))


@dataclass(frozen=True)
class CostMatrix:
    """Weights of one NAB profile (``config/profiles.json``); NAB ignores ``tnWeight``.

    >>> CostMatrix.from_profile({"CostMatrix": {"tpWeight": 1.0, "fpWeight": 0.11,
    ...                                         "fnWeight": 1.0, "tnWeight": 1.0}})
    CostMatrix(tp_weight=1.0, fp_weight=0.11, fn_weight=1.0)
    """

    tp_weight: float
    fp_weight: float
    fn_weight: float

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any]) -> CostMatrix:
        """The weights of a profile entry ``{"CostMatrix": {"tpWeight": ..., ...}}``."""
        costs = profile["CostMatrix"]
        return cls(float(costs["tpWeight"]), float(costs["fpWeight"]), float(costs["fnWeight"]))


@dataclass(frozen=True)
class FileLayout:
    """Where each row of one file stands with respect to its anomaly windows.

    It depends on the timestamps and the windows only, so one layout serves
    every detector and profile.

    Attributes
    ----------
    window
        Index of the row's window in the file's window list, -1 outside all windows.
    unweighted
        NAB's unweighted value of a detection on this row: the scaled sigmoid of
        its position in its window, or past the preceding window (-1 before any).
    scorable
        False in the probationary period.
    """

    window: IntArray
    unweighted: Array
    scorable: BoolArray

    @property
    def rows(self) -> int:
        """Number of rows in the file."""
        return int(self.window.size)

    @property
    def scored_windows(self) -> IntArray:
        """Indices of the windows with at least one scorable row (the others never count)."""
        inside = self.window[self.scorable]
        scored: IntArray = np.unique(inside[inside >= 0])
        return scored

    def sweep_scores(self, cost: CostMatrix) -> Array:
        """NAB's weighted value of a detection on each row under ``cost``."""
        weighted: Array = np.where(
            self.window >= 0,
            self.unweighted * cost.tp_weight / MAX_TP,
            self.unweighted * cost.fp_weight,
        )
        return weighted


def _first_at_or_after(timestamps: NDArray[Any], value: Any, start: int) -> int | None:
    hits = np.flatnonzero(timestamps[start:] == value)
    return None if hits.size == 0 else start + int(hits[0])


def file_layout(
    timestamps: NDArray[Any],
    windows: Sequence[tuple[Any, Any]],
    probation_percent: float = PROBATION_PERCENT,
) -> FileLayout:
    """The layout of one file: window membership, unweighted values, probation.

    ``timestamps`` are the file's rows in file order and ``windows`` its
    ``(start, end)`` pairs, both inclusive, in time order; each limit must be
    one of the timestamps (NAB's labels are). As in NAB, a window is entered at
    the first row equal to its start after the previous window was left, and
    left at the first row equal to its end; its width and right edge come from
    the *first* occurrences of its limits (this matters only for files with
    repeated timestamps, such as the daylight-saving hour of
    ``machine_temperature_system_failure.csv``).

    Raises
    ------
    ValueError
        If a window limit is not among the timestamps, or windows overlap or
        are out of order.

    Examples
    --------
    Ten rows, one window on rows 4..5, no probation:

    >>> layout = file_layout(np.arange(10), [(4, 5)], probation_percent=0.0)
    >>> layout.window.tolist()
    [-1, -1, -1, -1, 0, 0, -1, -1, -1, -1]
    >>> layout.unweighted.round(4).tolist()
    [-1.0, -1.0, -1.0, -1.0, 0.9866, 0.8483, -0.9866, -0.9999, -1.0, -1.0]
    """
    timestamps = np.asarray(timestamps)
    rows = timestamps.size
    window = np.full(rows, -1, dtype=np.intp)
    # Before the first window a false positive is worth the full penalty.
    unweighted = np.full(rows, -1.0)
    index = np.arange(rows)
    cursor = 0
    previous: tuple[int, float] | None = None  # right edge and width of the last window left
    for k, (start, end) in enumerate(windows):
        entry = _first_at_or_after(timestamps, start, cursor)
        first_start = _first_at_or_after(timestamps, start, 0)
        first_end = _first_at_or_after(timestamps, end, 0)
        if entry is None or first_start is None or first_end is None:
            raise ValueError(
                f"window {k} ({start}, {end}) has a limit that is not a timestamp of the file "
                "after the previous window; windows must be in time order, not overlapping"
            )
        exit_row = _first_at_or_after(timestamps, end, entry)
        last = rows - 1 if exit_row is None else exit_row
        width = float(first_end - first_start + 1)
        _fill_false_positives(unweighted, index, cursor, entry, previous)
        inside = slice(entry, last + 1)
        window[inside] = k
        unweighted[inside] = scaled_sigmoid(-(first_end - index[inside] + 1) / width)
        previous = (first_end, width)
        cursor = last + 1
    _fill_false_positives(unweighted, index, cursor, rows, previous)
    scorable = index >= probationary_length(rows, probation_percent)
    return FileLayout(window, unweighted, scorable)


def _fill_false_positives(
    unweighted: Array,
    index: IntArray,
    begin: int,
    end: int,
    previous: tuple[int, float] | None,
) -> None:
    """Values of the rows ``[begin, end)`` between windows, relative to the preceding one."""
    if previous is None or begin >= end:
        return
    right, width = previous
    with np.errstate(divide="ignore"):
        # A one-row window makes NAB divide by zero; an infinite distance is its -1 limit.
        position = np.abs(right - index[begin:end]) / (width - 1.0)
    unweighted[begin:end] = scaled_sigmoid(position)


@dataclass(frozen=True)
class FileScore:
    """NAB's raw score of one file at one threshold, with its row counts (scorable rows only)."""

    score: float
    tp: int
    tn: int
    fp: int
    fn: int

    def __add__(self, other: FileScore) -> FileScore:
        return FileScore(
            self.score + other.score,
            self.tp + other.tp,
            self.tn + other.tn,
            self.fp + other.fp,
            self.fn + other.fn,
        )


def score_file(
    anomaly_score: Array, layout: FileLayout, cost: CostMatrix, threshold: float
) -> FileScore:
    """NAB's raw score of one file when rows with ``anomaly_score >= threshold`` are detections.

    Examples
    --------
    One window on rows 4..5; a detection at its left edge is worth
    ``tp_weight``, a false positive before any window ``-fp_weight``:

    >>> layout = file_layout(np.arange(10), [(4, 5)], probation_percent=0.0)
    >>> cost = CostMatrix(1.0, 0.11, 1.0)
    >>> scores = np.zeros(10)
    >>> scores[[1, 4, 5]] = 1.0
    >>> score_file(scores, layout, cost, 0.5)
    FileScore(score=0.89, tp=2, tn=7, fp=1, fn=0)
    >>> score_file(np.zeros(10), layout, cost, 0.5).score
    -1.0
    """
    scorable = layout.scorable
    detected = (np.asarray(anomaly_score) >= threshold) & scorable
    inside = layout.window >= 0
    sweep = layout.sweep_scores(cost)
    false_positives = detected & ~inside
    score = float(np.sum(sweep[false_positives]))
    for k in layout.scored_windows.tolist():
        hits = detected & (layout.window == k)
        score += float(sweep[hits].max()) if hits.any() else -cost.fn_weight
    tp = int(np.count_nonzero(detected & inside))
    fp = int(np.count_nonzero(false_positives))
    fn = int(np.count_nonzero(scorable & inside)) - tp
    tn = int(np.count_nonzero(scorable & ~inside)) - fp
    return FileScore(score, tp, tn, fp, fn)
