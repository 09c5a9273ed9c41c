"""Confusion counts of decisions against labels, and the checks on label and score arrays.

:class:`ConfusionCounts` holds tp, fp, fn and tn of a binary decision
(positive = anomalous = flagged) with precision, recall and F1, which are 0.0,
never NaN, when their denominators vanish (so thresholds compare; a report
shows them as None: :meth:`ConfusionCounts.to_report`); :func:`confusion_counts`
counts them from arrays.

The ``as_*`` functions turn array-likes into the vectors the threshold maths
works on, raising ValueError that names the array and the problem: label
arrays may be bool or integer (0/1), and any of them shaped ``(m,)`` or
``(m, 1)``.

Nothing here does I/O; arrays in, numbers out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ConfusionCounts",
    "as_column",
    "as_flags",
    "as_labels",
    "as_scores",
    "confusion_counts",
]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


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

    def to_report(self) -> dict[str, int | float | None]:
        """As :meth:`to_dict`, but a metric whose denominator is 0 is None (n/a), not 0.0.

        Precision is None when nothing is flagged, recall when there is no
        positive label, F1 when neither (2tp + fp + fn = 0), as ``replay``
        reports them: a report should not show an undefined ratio as 0.

        >>> report = ConfusionCounts(tp=0, fp=0, fn=2, tn=5).to_report()
        >>> report["precision"], report["recall"], report["f1"]
        (None, 0.0, 0.0)
        >>> report = ConfusionCounts(tp=0, fp=0, fn=0, tn=5).to_report()
        >>> report["precision"], report["recall"], report["f1"]
        (None, None, None)
        """
        report: dict[str, int | float | None] = dict(self.to_dict())
        if self.tp + self.fp == 0:
            report["precision"] = None
        if self.tp + self.fn == 0:
            report["recall"] = None
        if self.tp + self.fp + self.fn == 0:
            report["f1"] = None
        return report


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
    labels = as_labels(y_true, "y_true")
    decisions = as_flags(flagged, len(labels))
    tp = int(np.count_nonzero(labels & decisions))
    fp = int(np.count_nonzero(~labels & decisions))
    fn = int(np.count_nonzero(labels & ~decisions))
    return ConfusionCounts(tp=tp, fp=fp, fn=fn, tn=len(labels) - tp - fp - fn)


# --------------------------------------------------------------------------- checks on inputs


def as_column(values: ArrayLike, name: str) -> NDArray[Any]:
    """``values`` as a 1-D array; a ``(m, 1)`` column is flattened, any other shape refused.

    >>> as_column([[1], [2]], "y").tolist()
    [1, 2]
    """
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must have shape (m,) or (m, 1), got {array.shape}")
    return array


def as_labels(y: ArrayLike, name: str = "y") -> BoolArray:
    """0/1 labels of any numeric or bool dtype, as a bool vector.

    >>> as_labels([0, 1, 1]).tolist()
    [False, True, True]
    """
    array = as_column(y, name)
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


def as_flags(flagged: ArrayLike, n: int) -> BoolArray:
    """Decisions (True = flagged) as a bool vector of exactly ``n`` entries.

    They follow the rule of labels (bool, or 0 and 1): the text "False" or
    a NaN is not a decision, though either is true to Python.

    >>> as_flags(["False", "True"], 2)
    Traceback (most recent call last):
    ...
    ValueError: flagged must hold 0/1 labels, got dtype <U5
    """
    array = as_column(flagged, "flagged")
    if len(array) != n:
        raise ValueError(f"flagged has {len(array)} entries but y_true has {n}")
    return as_labels(array, "flagged")


def as_scores(values: ArrayLike, n: int | None, name: str) -> Array:
    """Scores as a float64 vector of ``n`` entries (any length when None); NaN is refused."""
    array = as_column(values, name).astype(np.float64, copy=False)
    if n is not None and len(array) != n:
        raise ValueError(f"{name} has {len(array)} entries but the labels have {n}")
    if np.any(np.isnan(array)):
        raise ValueError(f"{name} holds NaN; scores must be numbers (±inf is allowed)")
    return array
