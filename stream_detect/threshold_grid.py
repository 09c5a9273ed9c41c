"""The classic exercise's threshold search: best F1 over a 1000-step grid of candidates.

The Coursera exercise 8 (Andrew Ng) chooses ε by trying 1000 evenly spaced
candidates between the smallest and largest density and keeping the first of
the best F1 = 2·prec·rec / (prec + rec). Two versions live here:

* :func:`select_threshold` -- the exercise itself, in probability space, kept
  to reproduce published numbers;
* :func:`grid_log_threshold` -- the same grid in log space, where densities
  of many features no longer underflow.

Both are kept for comparison: the exact sweep of
:func:`stream_detect.threshold.best_log_threshold` is never worse.

Nothing here does I/O; arrays in, numbers out.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.confusion import as_labels, as_scores, confusion_counts
from stream_detect.threshold_choice import ThresholdChoice, choice_from_counts, labels_and_scores

__all__ = [
    "MAX_GRID_STEPS",
    "grid_log_threshold",
    "select_threshold",
]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: The most steps :func:`grid_log_threshold` takes. Its work holds several arrays of
#: one value per step (about 64 bytes a step, so 64 MB here); a finer grid than this
#: finds nothing :func:`~stream_detect.threshold.best_log_threshold`, the exact
#: optimum over every cut, does not find better and in far less memory.
MAX_GRID_STEPS = 1_000_000


def grid_log_threshold(y: ArrayLike, log_p: ArrayLike, steps: int = 1000) -> ThresholdChoice:
    """The classic exercise grid, in log space: best F1 over ``steps`` evenly spaced log ε.

    Candidates are ``np.arange(lo, hi, (hi - lo) / steps)`` with ``lo``, ``hi`` the
    smallest and largest finite score, tried in increasing order; a candidate
    replaces the best so far only when its F1 (computed as 2·prec·rec/(prec+rec),
    as in the exercise) is strictly greater. Where the exercise would return
    ε = 0 because no candidate has F1 > 0, this returns the first candidate,
    ``lo``. All finite scores equal (or a step that underflows to 0), or none
    finite: the single candidate ``lo`` (0.0 when no score is finite).
    Prefer :func:`~stream_detect.threshold.best_log_threshold`, which is never worse.
    ``steps`` is an integer from 1 to :data:`MAX_GRID_STEPS`; another number is a
    :class:`ValueError` saying so (a :class:`TypeError` for what is no integer).

    >>> choice = grid_log_threshold([1, 0, 1, 0, 0], [-9.0, -7.0, -5.0, -3.0, -1.0], steps=4)
    >>> choice.log_epsilon, choice.f1
    (-3.0, 0.8)
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"steps must be an integer number of grid steps, got {steps!r}")
    if not 1 <= steps <= MAX_GRID_STEPS:
        raise ValueError(
            f"steps must be between 1 and {MAX_GRID_STEPS:,}, got {steps:,}; for the best "
            "threshold over every cut, use best_log_threshold"
        )
    labels, scores = labels_and_scores(y, log_p)
    finite = scores[np.isfinite(scores)]
    candidates: Array
    if finite.size == 0:
        candidates = np.zeros(1)
    else:
        lo, hi = float(finite.min()), float(finite.max())
        step = (hi - lo) / steps
        if not math.isfinite(step):
            # The spread itself overflows float64; weighting the ends keeps the grid finite.
            fraction = np.arange(steps) / steps
            candidates = lo * (1.0 - fraction) + hi * fraction
        else:
            candidates = np.arange(lo, hi, step) if step > 0 else np.array([lo])
    best = int(np.argmax(_classic_f1(labels, scores, candidates)))
    log_epsilon = float(candidates[best])
    return choice_from_counts(log_epsilon, confusion_counts(labels, scores < log_epsilon))


def select_threshold(y_val: ArrayLike, p_val: ArrayLike) -> tuple[float, float]:
    """The classic exercise: best ε and its F1, on a 1000-step grid in probability space.

    Reproduces ``selectThreshold`` of the Coursera exercise 8 exactly:
    candidates ``np.arange(min(p), max(p), step)`` with
    ``step = (max(p) - min(p)) / 1000``, predict anomaly when ``p < ε``, and a
    candidate is kept only if its F1 = 2·prec·rec/(prec+rec) is strictly greater
    than the best so far, starting from ε = 0, F1 = 0. So ``(0.0, 0.0)`` comes
    back when no candidate reaches F1 > 0, or when all densities are equal (or
    so close that the step underflows to 0, where the exercise would fail).

    Densities of many features underflow to 0; decisions belong in log space
    (:func:`~stream_detect.threshold.select_log_threshold`).

    >>> epsilon, f1 = select_threshold([0, 1, 0, 1], [0.5, 0.01, 0.4, 0.02])
    >>> round(epsilon, 5), f1
    (0.02029, 1.0)
    """
    labels = as_labels(y_val, "y_val")
    p = as_scores(p_val, len(labels), "p_val")
    if p.size == 0:
        raise ValueError("p_val is empty: no densities to choose ε among")
    if not np.all(np.isfinite(p)):
        raise ValueError("p_val must hold finite densities")
    lo, hi = float(p.min()), float(p.max())
    step = (hi - lo) / 1000
    if not step > 0:
        # All densities equal, or so close that the step underflows: no grid to search.
        return 0.0, 0.0
    candidates = np.arange(lo, hi, step)
    f1 = _classic_f1(labels, p, candidates)
    best = int(np.argmax(f1))
    if not f1[best] > 0.0:
        return 0.0, 0.0
    return float(candidates[best]), float(f1[best])


def _classic_f1(labels: BoolArray, scores: Array, candidates: Array) -> Array:
    """F1 of ``scores < c`` for every candidate c, with the exercise's formula and rounding."""
    order = np.argsort(scores, kind="stable")
    cum_tp = np.concatenate(([0], np.cumsum(labels[order], dtype=np.int64)))
    n_flagged = np.searchsorted(scores[order], candidates, side="left")
    tp = cum_tp[n_flagged]
    n_positive = int(cum_tp[-1])
    has_tp = tp > 0
    precision = np.zeros(len(candidates))
    recall = np.zeros(len(candidates))
    np.divide(tp, n_flagged, out=precision, where=has_tp)
    np.divide(tp, n_positive, out=recall, where=has_tp)
    f1 = np.zeros(len(candidates))
    np.divide(2 * precision * recall, precision + recall, out=f1, where=has_tp)
    return f1
