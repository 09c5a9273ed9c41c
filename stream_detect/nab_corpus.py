"""NAB's score of a whole corpus: one threshold per profile, normalised (NAB v1.1).

A file's raw score at a threshold is :func:`stream_detect.nab.score_file`. NAB
picks one threshold per profile for the whole corpus, the one with the highest
total raw score over all thresholds the scores take (:func:`sweep_thresholds`),
and reports ``100 * (raw - null) / (perfect - null)`` (:func:`normalised_score`),
where *null* is a detector that never fires (:func:`null_score`) and *perfect*
one that fires once, at the start of each window (:func:`perfect_score`).

This follows ``nab/sweeper.py`` of numenta/NAB (``calcScoreByThreshold``);
``tests/test_nab_scoring.py`` checks the sweep against scoring every threshold
one by one.

>>> from stream_detect.nab import file_layout
>>> layout = file_layout(np.arange(10), [(4, 5)], probation_percent=0.0)
>>> cost = CostMatrix(1.0, 0.11, 1.0)
>>> null_score([layout], cost), perfect_score([layout], cost)
(-1.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from stream_detect.nab import CostMatrix, FileLayout

__all__ = [
    "ThresholdSweep",
    "normalised_score",
    "null_score",
    "perfect_score",
    "sweep_thresholds",
]

Array = NDArray[np.float64]


def null_score(layouts: Sequence[FileLayout], cost: CostMatrix) -> float:
    """Raw score of a detector that never fires: ``-fn_weight`` per scored window."""
    return -cost.fn_weight * sum(layout.scored_windows.size for layout in layouts)


def perfect_score(layouts: Sequence[FileLayout], cost: CostMatrix) -> float:
    """Raw score of a detector that fires once, on the first scorable row of each window."""
    total = 0.0
    for layout in layouts:
        sweep = layout.sweep_scores(cost)
        for k in layout.scored_windows.tolist():
            total += float(sweep[layout.scorable & (layout.window == k)].max())
    return total


def normalised_score(raw: float, null: float, perfect: float) -> float:
    """NAB's reported score: 0 for the null detector, 100 for the perfect one.

    >>> round(normalised_score(-24.0131054891, -116.0, 116.0), 4)
    39.6495
    """
    return 100.0 * (raw - null) / (perfect - null)


@dataclass(frozen=True)
class ThresholdSweep:
    """Corpus raw score at every threshold the anomaly scores take.

    ``thresholds`` decrease; the first is ``+inf`` (nothing detected, the null
    score) and each other is a distinct anomaly score ``t``, with ``scores``
    the total raw score when every row scoring ``>= t`` is a detection.
    """

    thresholds: Array
    scores: Array

    def best(self) -> tuple[float, float]:
        """``(threshold, raw score)`` of the best threshold; ties go to the highest threshold.

        NAB's optimizer sorts thresholds by score with a stable sort from the
        highest threshold down, so it breaks ties the same way.
        """
        i = int(np.argmax(self.scores))
        return float(self.thresholds[i]), float(self.scores[i])


def sweep_thresholds(
    anomaly_scores: Sequence[Array], layouts: Sequence[FileLayout], cost: CostMatrix
) -> ThresholdSweep:
    """Raw corpus score at every threshold at once (NAB's ``calcScoreByThreshold``).

    One sort of all scorable rows by decreasing anomaly score; lowering the
    threshold past a row adds its false-positive value, or raises its window's
    best detection so far. The total at a threshold is read after the last row
    of each run of equal scores. Any strictly increasing transform of the
    scores gives the same scores per threshold, so a detector may sweep a
    score that does not saturate in floating point.

    Examples
    --------
    >>> from stream_detect.nab import file_layout
    >>> layout = file_layout(np.arange(10), [(4, 5)], probation_percent=0.0)
    >>> scores = np.array([0, 0.9, 0, 0, 0.5, 0.8, 0, 0, 0.2, 0])
    >>> sweep = sweep_thresholds([scores], [layout], CostMatrix(1.0, 0.11, 1.0))
    >>> sweep.thresholds.tolist()
    [inf, 0.9, 0.8, 0.5, 0.2, 0.0]
    >>> sweep.scores.round(4).tolist()
    [-1.0, -1.11, 0.7498, 0.89, 0.78, 0.1215]
    >>> threshold, raw = sweep.best()
    >>> threshold, round(raw, 4)
    (0.5, 0.89)
    """
    if len(anomaly_scores) != len(layouts):
        raise ValueError(f"{len(anomaly_scores)} score arrays for {len(layouts)} layouts")
    values, sweeps, windows = [], [], []
    window_offset = 0
    for scores, layout in zip(anomaly_scores, layouts, strict=True):
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (layout.rows,):
            raise ValueError(f"{scores.size} anomaly scores for a file of {layout.rows} rows")
        keep = layout.scorable
        values.append(scores[keep])
        sweeps.append(layout.sweep_scores(cost)[keep])
        # Window ids are made unique across files, as NAB names them "file|start".
        local = layout.window[keep]
        windows.append(np.where(local >= 0, local + window_offset, -1))
        window_offset += int(layout.window.max(initial=-1)) + 1
    value = np.concatenate(values)
    sweep = np.concatenate(sweeps)
    window = np.concatenate(windows)
    order = np.argsort(-value, kind="stable")
    value, sweep, window = value[order], sweep[order], window[order]

    gain = np.where(window < 0, sweep, 0.0)
    inside = np.flatnonzero(window >= 0)
    # Group each window's rows, keeping their order of decreasing anomaly score.
    grouped = inside[np.argsort(window[inside], kind="stable")]
    ids, starts = np.unique(window[grouped], return_index=True)
    for rows in np.split(grouped, starts[1:]):
        best_so_far = np.maximum.accumulate(sweep[rows])
        # A window starts at -fn_weight; each row adds what it raises the window's best by.
        gain[rows] = np.diff(best_so_far, prepend=-cost.fn_weight)
    null = -cost.fn_weight * ids.size
    total = null + np.cumsum(gain)
    last_of_run = np.flatnonzero(np.append(value[1:] != value[:-1], True))
    return ThresholdSweep(
        thresholds=np.concatenate([[np.inf], value[last_of_run]]),
        scores=np.concatenate([[null], total[last_of_run]]),
    )
