"""Choosing log ε: confusion counts, F1-optimal thresholds, and the validation buffer.

An event is flagged when ``log_p < log_epsilon`` (lower log p(x) is more
anomalous). On labelled validation scores the threshold is chosen to maximise

    F1 = 2·prec·rec / (prec + rec),   prec = tp / (tp + fp),   rec = tp / (tp + fn),

three ways:

* :func:`best_log_threshold` -- the exact optimum over every cut point, from one
  sort and cumulative counts, O(n log n);
* :func:`grid_log_threshold` -- the 1000-step grid of the classic exercise, in
  log space;
* :func:`select_threshold` -- the classic exercise itself, in probability
  space, kept to reproduce published numbers.

:func:`threshold_curves` gives precision, recall and F1 at every cut point
(the curves :func:`best_log_threshold` maximises, and the ones
:mod:`stream_detect.plots` draws).

Precision, recall and F1 are 0.0, never NaN, when their denominators vanish.
Label arrays may be bool or integer (0/1) and shaped ``(m,)`` or ``(m, 1)``.

:class:`ValidationBuffer` keeps the labelled raw feature vectors that the
threshold is re-chosen on: bounded, with one FIFO per class so that rare
positives are never evicted by the flood of negatives.

Nothing here does I/O; arrays in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.errors import ModelError

__all__ = [
    "ConfusionCounts",
    "ThresholdChoice",
    "ThresholdCurves",
    "ValidationBuffer",
    "best_log_threshold",
    "confusion_counts",
    "exp_or_inf",
    "grid_log_threshold",
    "quantile_log_threshold",
    "select_log_threshold",
    "select_threshold",
    "threshold_curves",
]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]

#: Distance in nats (a factor e in density) between log ε and the finite end of
#: an optimal interval whose other end is infinite.
_ONE_SIDED_MARGIN = 1.0

#: Above this log ε, exp() overflows a float64.
_LOG_FLOAT_MAX = math.log(np.finfo(np.float64).max)


# --------------------------------------------------------------------------- counts


@dataclass(frozen=True)
class ConfusionCounts:
    """Counts of a binary decision against labels; positive = anomalous = flagged.

    >>> c = ConfusionCounts(tp=3, fp=1, fn=3, tn=93)
    >>> c.precision, c.recall, round(c.f1, 6), c.n_flagged
    (0.75, 0.5, 0.6, 4)
    >>> ConfusionCounts(tp=0, fp=0, fn=2, tn=5).f1
    0.0
    """

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        """tp / (tp + fp); 0.0 when nothing is flagged."""
        flagged = self.tp + self.fp
        return self.tp / flagged if flagged else 0.0

    @property
    def recall(self) -> float:
        """tp / (tp + fn); 0.0 when there is no positive label."""
        positives = self.tp + self.fn
        return self.tp / positives if positives else 0.0

    @property
    def f1(self) -> float:
        """2·prec·rec / (prec + rec), computed as 2tp / (2tp + fp + fn); 0.0 when tp = 0.

        The integer form is the same number, rounded once, so equal F1 values
        compare equal (which the tie rules of the threshold search rely on).
        """
        if self.tp == 0:
            return 0.0
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn)

    @property
    def n_flagged(self) -> int:
        """Number of flagged events, tp + fp."""
        return self.tp + self.fp

    def to_dict(self) -> dict[str, int | float]:
        """JSON-able dict of the counts and the three metrics.

        >>> ConfusionCounts(1, 0, 1, 2).to_dict()["recall"]
        0.5
        """
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "n_flagged": self.n_flagged,
        }


def confusion_counts(y_true: ArrayLike, flagged: ArrayLike) -> ConfusionCounts:
    """Count tp, fp, fn, tn of ``flagged`` against the 0/1 labels ``y_true``.

    Parameters
    ----------
    y_true
        Labels, 1 = anomalous; bool or integer, shape ``(m,)`` or ``(m, 1)``.
    flagged
        The decisions, True = flagged; same length.

    >>> confusion_counts([1, 0, 1, 0], [True, True, False, False])
    ConfusionCounts(tp=1, fp=1, fn=1, tn=1)
    """
    labels = _as_labels(y_true, "y_true")
    decisions = _as_flags(flagged, len(labels))
    tp = int(np.count_nonzero(labels & decisions))
    fp = int(np.count_nonzero(~labels & decisions))
    fn = int(np.count_nonzero(labels & ~decisions))
    return ConfusionCounts(tp=tp, fp=fp, fn=fn, tn=len(labels) - tp - fp - fn)


# --------------------------------------------------------------------------- threshold search


@dataclass(frozen=True)
class ThresholdChoice:
    """A chosen log ε and what it achieves on the scores it was chosen on.

    >>> choice = ThresholdChoice(log_epsilon=-2.5, f1=0.8, precision=1.0, recall=2 / 3,
    ...                          n_flagged=2)
    >>> round(choice.epsilon, 6)
    0.082085
    """

    log_epsilon: float
    f1: float
    precision: float
    recall: float
    n_flagged: int

    @property
    def epsilon(self) -> float:
        """ε = exp(log ε) in probability space, for display; it may underflow to 0.0."""
        return exp_or_inf(self.log_epsilon)


@dataclass(frozen=True)
class ThresholdCurves:
    """Counts and metrics of the rule "flag when log p <= cut" at every distinct cut.

    ``log_epsilon[k]`` is the k-th distinct log p value, in increasing order;
    ``tp[k]``, ``fp[k]``, ``n_flagged[k]``, ``precision[k]``, ``recall[k]``
    and ``f1[k]`` hold for every log ε in the half-open interval
    ``(log_epsilon[k], log_epsilon[k + 1]]``, i.e. when the events flagged
    (``log_p < log ε``) are those with ``log_p <= log_epsilon[k]``. Below the
    smallest value nothing is flagged and all metrics are 0. Undefined
    precision (nothing flagged) and recall (no anomalies) are 0, not NaN.
    ``n_positive`` is the number of anomalies.
    """

    log_epsilon: Array
    tp: IntArray
    fp: IntArray
    n_flagged: IntArray
    precision: Array
    recall: Array
    f1: Array
    n_positive: int


def threshold_curves(y: ArrayLike, log_p: ArrayLike) -> ThresholdCurves:
    """Exact counts, precision, recall and F1 at every cut point, from one sort.

    Every distinct set of flagged events is "the k lowest scores" for some k,
    so one stable sort and the cumulative count of anomalies give tp and fp at
    every cut at once: O(n log n). Tied scores are flagged together, so a cut
    inside a run of ties is not a cut. ``y`` holds 0/1 (or bool) labels,
    1 anomalous; ``log_p`` the scores (lower is more anomalous), which may be
    ±inf but not NaN. No scores at all give empty curves.

    >>> c = threshold_curves([1, 0, 1, 0], [-9.0, -5.0, -7.0, -1.0])
    >>> c.log_epsilon.tolist(), c.tp.tolist(), c.recall.tolist(), c.f1.round(3).tolist()
    ([-9.0, -7.0, -5.0, -1.0], [1, 2, 2, 2], [0.5, 1.0, 1.0, 1.0], [0.667, 1.0, 0.8, 0.667])
    """
    labels = _as_labels(y, "y")
    scores = _column(log_p, "log_p").astype(np.float64, copy=False)
    if labels.shape != scores.shape:
        raise ValueError(f"y has {labels.size} values but log_p has {scores.size}")
    if np.isnan(scores).any():
        raise ValueError("log_p contains NaN; every event needs a score")
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    tp = np.cumsum(labels[order], dtype=np.int64)
    flagged = np.arange(1, scores.size + 1, dtype=np.int64)
    # Tied scores are flagged together: keep the last row of each run of equal values.
    last_of_run = np.append(sorted_scores[1:] != sorted_scores[:-1], True)[: scores.size]
    tp, flagged, cuts = tp[last_of_run], flagged[last_of_run], sorted_scores[last_of_run]
    n_positive = int(tp[-1]) if tp.size else 0
    precision = tp / flagged
    recall = tp / n_positive if n_positive else np.zeros(tp.shape)
    # 2tp + fp + fn = k + P, so F1 = 2tp / (k + P), one exact rational per cut.
    f1 = 2.0 * tp / (flagged + n_positive)
    return ThresholdCurves(
        log_epsilon=cuts,
        tp=tp,
        fp=flagged - tp,
        n_flagged=flagged,
        precision=precision,
        recall=recall.astype(np.float64),
        f1=f1,
        n_positive=n_positive,
    )


def best_log_threshold(y: ArrayLike, log_p: ArrayLike) -> ThresholdChoice:
    """The log ε that maximises F1 on ``(y, log_p)``, exactly, under the rule ``log_p < log ε``.

    The F1 of every cut comes from :func:`threshold_curves` (one sort and
    cumulative counts): O(n log n) in all.

    Which log ε is returned
        A cut flagging the k lowest scores is reached by any log ε in the
        interval ``(s_k, s_{k+1}]`` between the last flagged score and the first
        unflagged one. Cuts inside a run of tied scores cannot be reached and
        are skipped. Among cuts of equal F1 the one flagging the **fewest**
        events wins. The returned log ε is the **midpoint** of its interval in
        log space (a geometric mean in probability space), the point farthest
        from both scores. When an end of the interval is infinite -- nothing
        flagged, everything flagged, or infinite scores -- log ε is one nat
        (a factor e in density) beyond the finite end, 0.0 when both are
        infinite, and -inf when the lowest score is -inf and nothing is
        flagged (no finite log ε flags nothing then).

    With no positive label, F1 is 0 everywhere and the choice flags nothing;
    callers that need a meaningful ε must check that both classes are present.
    F1 ties are decided exactly for fewer than about 3·10⁷ scores.

    Parameters
    ----------
    y
        Labels, 1 = anomalous; bool or integer, shape ``(m,)`` or ``(m, 1)``.
    log_p
        Scores, same length; may hold ±inf, not NaN.

    Examples
    --------
    >>> choice = best_log_threshold([1, 0, 1, 0, 0], [-9.0, -7.0, -5.0, -3.0, -1.0])
    >>> choice.log_epsilon, choice.f1, choice.n_flagged
    (-4.0, 0.8, 3)
    >>> best_log_threshold([1, 1], [-2.0, -2.0]).log_epsilon
    -1.0
    """
    labels, scores = _labels_and_scores(y, log_p)
    n = len(scores)
    curves = threshold_curves(labels, scores)
    n_positive = curves.n_positive
    # Candidate 0 flags nothing; candidate j + 1 flags the events up to cut j.
    f1 = np.concatenate(([0.0], curves.f1))
    # Flagging everything needs a log ε above the largest score, impossible at +inf.
    if curves.log_epsilon[-1] == np.inf:
        f1[-1] = -1.0
    best = int(np.argmax(f1))  # first maximum = fewest flagged

    cuts = curves.log_epsilon
    if best == 0:
        lower, upper, tp, k = -math.inf, float(cuts[0]), 0, 0
    else:
        lower = float(cuts[best - 1])
        upper = float(cuts[best]) if best < len(cuts) else math.inf
        tp, k = int(curves.tp[best - 1]), int(curves.n_flagged[best - 1])
    counts = ConfusionCounts(tp=tp, fp=k - tp, fn=n_positive - tp, tn=n - k - n_positive + tp)
    return _choice(_interval_point(lower, upper, nothing_flagged=best == 0), counts)


def grid_log_threshold(y: ArrayLike, log_p: ArrayLike, steps: int = 1000) -> ThresholdChoice:
    """The classic exercise grid, in log space: best F1 over ``steps`` evenly spaced log ε.

    Candidates are ``np.arange(lo, hi, (hi - lo) / steps)`` with ``lo``, ``hi`` the
    smallest and largest finite score, tried in increasing order; a candidate
    replaces the best so far only when its F1 (computed as 2·prec·rec/(prec+rec),
    as in the exercise) is strictly greater. Where the exercise would return
    ε = 0 because no candidate has F1 > 0, this returns the first candidate,
    ``lo``. All finite scores equal (or a step that underflows to 0), or none
    finite: the single candidate ``lo`` (0.0 when no score is finite).
    Prefer :func:`best_log_threshold`, which is never worse.

    >>> choice = grid_log_threshold([1, 0, 1, 0, 0], [-9.0, -7.0, -5.0, -3.0, -1.0], steps=4)
    >>> choice.log_epsilon, choice.f1
    (-3.0, 0.8)
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    labels, scores = _labels_and_scores(y, log_p)
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
    return _choice(log_epsilon, confusion_counts(labels, scores < log_epsilon))


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
    (:func:`select_log_threshold`).

    >>> epsilon, f1 = select_threshold([0, 1, 0, 1], [0.5, 0.01, 0.4, 0.02])
    >>> round(epsilon, 5), f1
    (0.02029, 1.0)
    """
    labels = _as_labels(y_val, "y_val")
    p = _as_scores(p_val, len(labels), "p_val")
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


def select_log_threshold(
    y: ArrayLike, log_p: ArrayLike, method: Literal["exact", "grid"] = "exact"
) -> tuple[float, float]:
    """``(log_epsilon, f1)`` by :func:`best_log_threshold` (``"exact"``) or the grid.

    >>> select_log_threshold([1, 0, 0], [-8.0, -2.0, -1.0])
    (-5.0, 1.0)
    >>> select_log_threshold([1, 0, 0], [-8.0, -2.0, -1.0], method="grid")
    (-7.993, 1.0)
    """
    if method == "exact":
        choice = best_log_threshold(y, log_p)
    elif method == "grid":
        choice = grid_log_threshold(y, log_p)
    else:
        raise ValueError(f"method must be 'exact' or 'grid', got {method!r}")
    return choice.log_epsilon, choice.f1


def quantile_log_threshold(log_p: ArrayLike, contamination: float) -> float:
    """A log ε that flags the lowest ``contamination`` fraction of ``log_p``, without labels.

    The fallback when labels of either class are too few. It flags the
    ``k = floor(contamination · n)`` lowest scores, or fewer when ties straddle
    that cut (never more), and lies at the midpoint between the last flagged
    and first unflagged score, as in :func:`best_log_threshold`.

    >>> quantile_log_threshold([-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0, -9.0, -10.0], 0.2)
    -8.5
    """
    if not 0.0 < contamination < 1.0:
        raise ValueError(f"contamination must lie strictly between 0 and 1, got {contamination}")
    scores = np.sort(_as_scores(log_p, None, "log_p"))
    n = len(scores)
    if n == 0:
        raise ValueError("log_p is empty: no scores to take a quantile of")
    # The epsilon guards against 0.29 * 100 == 28.999999999999996.
    k = min(math.floor(contamination * n + 1e-9), n - 1)
    while k > 0 and not scores[k - 1] < scores[k]:
        k -= 1
    lower = float(scores[k - 1]) if k > 0 else -math.inf
    return _interval_point(lower, float(scores[k]), nothing_flagged=k == 0)


def exp_or_inf(log_value: float) -> float:
    """exp(log_value) without an overflow error: +inf above the float range.

    >>> exp_or_inf(0.0), exp_or_inf(1e6), exp_or_inf(-1e6)
    (1.0, inf, 0.0)
    """
    if math.isnan(log_value):
        return math.nan
    return math.exp(log_value) if log_value < _LOG_FLOAT_MAX else math.inf


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


def _interval_point(lower: float, upper: float, *, nothing_flagged: bool) -> float:
    """A log ε in ``(lower, upper]``: the midpoint, or one nat inside a half-infinite interval."""
    if nothing_flagged and upper == -math.inf:
        return -math.inf
    if math.isinf(lower) and math.isinf(upper):
        return 0.0
    if math.isinf(lower):
        point = upper - _ONE_SIDED_MARGIN
        return point if point < upper else float(np.nextafter(upper, -math.inf))
    if math.isinf(upper):
        point = lower + _ONE_SIDED_MARGIN
        return point if point > lower else float(np.nextafter(lower, math.inf))
    # Halving first cannot overflow; rounding can land on an end for adjacent floats.
    point = lower / 2 + upper / 2
    return point if lower < point <= upper else upper


def _choice(log_epsilon: float, counts: ConfusionCounts) -> ThresholdChoice:
    return ThresholdChoice(
        log_epsilon=log_epsilon,
        f1=counts.f1,
        precision=counts.precision,
        recall=counts.recall,
        n_flagged=counts.n_flagged,
    )


# --------------------------------------------------------------------------- validation of inputs


def _column(values: ArrayLike, name: str) -> NDArray[Any]:
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must have shape (m,) or (m, 1), got {array.shape}")
    return array


def _as_labels(y: ArrayLike, name: str = "y") -> BoolArray:
    """0/1 labels of any numeric or bool dtype, as a bool vector."""
    array = _column(y, name)
    if array.dtype == np.bool_:
        flags: BoolArray = array.astype(np.bool_, copy=False)
        return flags
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{name} must hold 0/1 labels, got dtype {array.dtype}")
    positive: BoolArray = array == 1
    if not np.all(positive | (array == 0)):
        bad = array[~(positive | (array == 0))][0].item()
        raise ValueError(f"{name} must hold only 0 and 1 labels, found {bad!r}")
    return positive


def _as_flags(flagged: ArrayLike, n: int) -> BoolArray:
    array = _column(flagged, "flagged")
    if len(array) != n:
        raise ValueError(f"flagged has {len(array)} entries but y_true has {n}")
    return array.astype(bool, copy=False)


def _as_scores(values: ArrayLike, n: int | None, name: str) -> Array:
    array = _column(values, name).astype(np.float64, copy=False)
    if n is not None and len(array) != n:
        raise ValueError(f"{name} has {len(array)} entries but the labels have {n}")
    if np.any(np.isnan(array)):
        raise ValueError(f"{name} holds NaN; scores must be numbers (±inf is allowed)")
    return array


def _labels_and_scores(y: ArrayLike, log_p: ArrayLike) -> tuple[BoolArray, Array]:
    labels = _as_labels(y)
    scores = _as_scores(log_p, len(labels), "log_p")
    if len(labels) == 0:
        raise ValueError("no scores: cannot choose a threshold on an empty validation set")
    return labels, scores


# --------------------------------------------------------------------------- validation buffer


class _ClassRing:
    """A FIFO of at most ``capacity`` rows of one class, in a preallocated ring."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rows: Array | None = None
        self.seq = np.zeros(capacity, dtype=np.int64)
        self.keys: NDArray[np.object_] = np.full(capacity, None, dtype=object)
        self.start = 0
        self.count = 0

    def push(self, rows: Array, seq: IntArray, keys: NDArray[np.object_]) -> None:
        if len(rows) > self.capacity:
            # Older rows of the batch would be overwritten by its newer ones anyway.
            rows, seq, keys = rows[-self.capacity :], seq[-self.capacity :], keys[-self.capacity :]
        if self.rows is None:
            self.rows = np.zeros((self.capacity, rows.shape[1]))
        m = len(rows)
        slots = (self.start + self.count + np.arange(m)) % self.capacity
        self.rows[slots] = rows
        self.seq[slots] = seq
        self.keys[slots] = keys
        overflow = max(self.count + m - self.capacity, 0)
        self.start = (self.start + overflow) % self.capacity
        self.count = min(self.count + m, self.capacity)

    def ordered(self) -> IntArray:
        """Slots from oldest to newest."""
        return (self.start + np.arange(self.count)) % self.capacity


class ValidationBuffer:
    """Bounded, class-stratified store of labelled raw feature vectors.

    The threshold is re-chosen by re-scoring these vectors under the current
    model, so the buffer keeps the vectors themselves (float64 rows), not
    their scores. Each class has its own FIFO of ``capacity_per_class`` rows:
    a flood of negatives evicts only older negatives, never the rare
    positives. Each row may carry a string key (an event id, an entity).

    Parameters
    ----------
    capacity_per_class
        Most rows kept per class (>= 1).
    n_features
        Width of the rows; taken from the first :meth:`add` when omitted.

    Examples
    --------
    >>> buffer = ValidationBuffer(capacity_per_class=2)
    >>> _ = buffer.add(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 1, 0, 0]))
    >>> buffer.n_negative, buffer.n_positive
    (2, 1)
    >>> X, y, keys = buffer.arrays()
    >>> X[:, 0].tolist(), y.tolist(), keys
    ([1.0, 2.0, 3.0], [1, 0, 0], [None, None, None])
    """

    def __init__(self, capacity_per_class: int = 1000, n_features: int | None = None) -> None:
        if isinstance(capacity_per_class, bool) or not isinstance(capacity_per_class, int):
            raise ValueError(f"capacity_per_class must be an integer, got {capacity_per_class!r}")
        if capacity_per_class < 1:
            raise ValueError(f"capacity_per_class must be at least 1, got {capacity_per_class}")
        if n_features is not None and n_features < 1:
            raise ValueError(f"n_features must be at least 1, got {n_features}")
        self._capacity = capacity_per_class
        self._n_features = n_features
        self._rings = (_ClassRing(capacity_per_class), _ClassRing(capacity_per_class))
        self._n_seen = 0

    @property
    def capacity_per_class(self) -> int:
        """Most rows kept per class."""
        return self._capacity

    @property
    def n_features(self) -> int | None:
        """Width of the stored rows, None before the first row."""
        return self._n_features

    @property
    def n_negative(self) -> int:
        """Rows labelled 0 held now."""
        return self._rings[0].count

    @property
    def n_positive(self) -> int:
        """Rows labelled 1 held now."""
        return self._rings[1].count

    @property
    def n_seen(self) -> int:
        """Rows ever added, including those evicted since."""
        return self._n_seen

    def __len__(self) -> int:
        return self.n_negative + self.n_positive

    def add(
        self, X: ArrayLike, y: ArrayLike, keys: Sequence[str | None] | None = None
    ) -> ValidationBuffer:
        """Add rows ``X`` (m, d) with labels ``y`` (m,) or (m, 1) and optional keys; return self.

        Raises ValueError, naming the problem, for a wrong shape, a label other
        than 0/1, a non-finite value, or keys that are not strings.
        """
        rows = np.asarray(X, dtype=np.float64)
        if rows.ndim != 2:
            raise ValueError(f"X must be a 2-D array of rows (m, d), got shape {rows.shape}")
        m, d = rows.shape
        labels = _as_labels(y, "y")
        if len(labels) != m:
            raise ValueError(f"X has {m} rows but y has {len(labels)} labels")
        expected = self._n_features
        if expected is not None and d != expected:
            raise ValueError(f"X rows have {d} features but the buffer holds rows of {expected}")
        if d == 0:
            raise ValueError("X rows have no features")
        if not np.all(np.isfinite(rows)):
            raise ValueError("X holds NaN or infinite values; the buffer keeps finite vectors")
        key_array: NDArray[np.object_] = np.full(m, None, dtype=object)
        if keys is not None:
            if len(keys) != m:
                raise ValueError(f"X has {m} rows but {len(keys)} keys were given")
            for key in keys:
                if key is not None and not isinstance(key, str):
                    raise ValueError(f"keys must be strings or None, got {key!r}")
            key_array[:] = keys
        if m == 0:
            return self
        self._n_features = d
        seq = self._n_seen + np.arange(m, dtype=np.int64)
        for label, ring in enumerate(self._rings):
            mask = labels == bool(label)
            if np.any(mask):
                ring.push(rows[mask], seq[mask], key_array[mask])
        self._n_seen += m
        return self

    def arrays(self) -> tuple[Array, NDArray[np.int8], list[str | None]]:
        """``(X, y, keys)`` of every row held, oldest first (so in insertion order within class).

        ``X`` is a fresh (m, d) float64 array, ``y`` int8 0/1, ``keys`` a list.
        """
        parts_X: list[Array] = []
        parts_y: list[NDArray[np.int8]] = []
        parts_seq: list[IntArray] = []
        parts_keys: list[NDArray[np.object_]] = []
        for label, ring in enumerate(self._rings):
            if ring.rows is None or ring.count == 0:
                continue
            slots = ring.ordered()
            parts_X.append(ring.rows[slots])
            parts_y.append(np.full(len(slots), label, dtype=np.int8))
            parts_seq.append(ring.seq[slots])
            parts_keys.append(ring.keys[slots])
        if not parts_X:
            return np.zeros((0, self._n_features or 0)), np.zeros(0, dtype=np.int8), []
        order = np.argsort(np.concatenate(parts_seq), kind="stable")
        keys: list[str | None] = np.concatenate(parts_keys)[order].tolist()
        return np.concatenate(parts_X)[order], np.concatenate(parts_y)[order], keys

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state for a checkpoint; :meth:`from_dict` restores it exactly.

        >>> buffer = ValidationBuffer(4).add(np.array([[0.5, 1.0]]), [1], keys=["e1"])
        >>> restored = ValidationBuffer.from_dict(buffer.to_dict())
        >>> restored.arrays()[0].tolist(), restored.arrays()[2], restored.n_seen
        ([[0.5, 1.0]], ['e1'], 1)
        """
        X, y, keys = self.arrays()
        return {
            "capacity_per_class": self._capacity,
            "n_features": self._n_features,
            "n_seen": self._n_seen,
            "rows": X.tolist(),
            "labels": y.tolist(),
            "keys": keys,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationBuffer:
        """Rebuild a buffer from :meth:`to_dict`; ModelError names what is wrong with ``data``."""
        try:
            buffer = cls(data["capacity_per_class"], data["n_features"])
            rows, labels, keys, n_seen = data["rows"], data["labels"], data["keys"], data["n_seen"]
            if len(rows):
                buffer.add(np.asarray(rows, dtype=np.float64), np.asarray(labels), keys)
            if len(buffer) != len(rows):
                raise ValueError(
                    f"its {len(rows)} rows hold more of one class than "
                    f"capacity_per_class = {buffer.capacity_per_class}"
                )
            if isinstance(n_seen, bool) or not isinstance(n_seen, int) or n_seen < len(rows):
                raise ValueError(f"n_seen must be an integer >= {len(rows)}, got {n_seen!r}")
        except KeyError as exc:
            raise ModelError(f"validation buffer state lacks the key {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise ModelError(f"validation buffer state is invalid: {exc}") from exc
        buffer._n_seen = n_seen
        return buffer

    def resized(self, capacity_per_class: int) -> ValidationBuffer:
        """A buffer of another capacity holding the newest rows of each class; ``n_seen`` is kept.

        >>> buffer = ValidationBuffer(3).add(np.array([[1.0], [2.0], [3.0]]), [0, 0, 0])
        >>> smaller = buffer.resized(2)
        >>> smaller.arrays()[0].ravel().tolist(), smaller.n_seen
        ([2.0, 3.0], 3)
        """
        resized = ValidationBuffer(capacity_per_class, self._n_features)
        if len(self):
            resized.add(*self.arrays())
        resized._n_seen = self._n_seen
        return resized
