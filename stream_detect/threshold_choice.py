"""What a chosen threshold is: a log ε and the F1, precision and recall it achieves.

Every way of choosing log ε on labelled scores -- the exact sweep of
:mod:`stream_detect.threshold` and the classic grid of
:mod:`stream_detect.threshold_grid` -- returns a :class:`ThresholdChoice`,
built by :func:`choice_from_counts` from the confusion counts of the cut, and
checks its inputs with :func:`labels_and_scores`. :func:`exp_or_inf` turns a
log ε into ε for display without an overflow error.

Nothing here does I/O; arrays in, numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.confusion import ConfusionCounts, as_labels, as_scores

__all__ = [
    "ThresholdChoice",
    "choice_from_counts",
    "exp_or_inf",
    "labels_and_scores",
]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Above this log ε, exp() overflows a float64.
_LOG_FLOAT_MAX = math.log(np.finfo(np.float64).max)


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


def exp_or_inf(log_value: float) -> float:
    """exp(log_value) without an overflow error: +inf above the float range.

    >>> exp_or_inf(0.0), exp_or_inf(1e6), exp_or_inf(-1e6)
    (1.0, inf, 0.0)
    """
    if math.isnan(log_value):
        return math.nan
    return math.exp(log_value) if log_value < _LOG_FLOAT_MAX else math.inf


def choice_from_counts(log_epsilon: float, counts: ConfusionCounts) -> ThresholdChoice:
    """The choice of ``log_epsilon``, whose cut has the confusion counts ``counts``.

    >>> choice_from_counts(-4.0, ConfusionCounts(tp=2, fp=1, fn=0, tn=2))
    ThresholdChoice(log_epsilon=-4.0, f1=0.8, precision=0.6666666666666666, recall=1.0, n_flagged=3)
    """
    return ThresholdChoice(
        log_epsilon=log_epsilon,
        f1=counts.f1,
        precision=counts.precision,
        recall=counts.recall,
        n_flagged=counts.n_flagged,
    )


def labels_and_scores(y: ArrayLike, log_p: ArrayLike) -> tuple[BoolArray, Array]:
    """Labels and scores as vectors of one length; ValueError when there are none.

    >>> labels, scores = labels_and_scores([1, 0], [[-3.0], [-1.0]])
    >>> labels.tolist(), scores.tolist()
    ([True, False], [-3.0, -1.0])
    """
    labels = as_labels(y)
    scores = as_scores(log_p, len(labels), "log_p")
    if len(labels) == 0:
        raise ValueError("no scores: cannot choose a threshold on an empty validation set")
    return labels, scores
