"""What the detector found for each event of a batch, aligned with the batch's rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["Detections"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass
class Detections:
    """Per-event results of one batch, aligned with its rows.

    ``score`` is what was compared with ``log_epsilon``: the log tail
    probability ``log_tail`` unless a ``log_epsilon`` was given; with one, log
    p(x) with one Gaussian model and the scale-free log-density with a model
    per key; a model's own score (lower is more anomalous) for a model that
    has no density, whose ``log_p`` and ``log_tail`` are then NaN. ``n`` is the number of events the
    model had learned when it scored the event. ``contributions`` maps a row
    that raised an alert to its top features, largest contribution to the
    squared distance first.

    >>> Detections.empty(2).alert.tolist()
    [False, False]
    """

    log_p: Array
    score: Array
    distance_sq: Array
    log_tail: Array
    log_epsilon: Array
    alert: BoolArray
    warmup: BoolArray
    n: NDArray[np.int64]
    contributions: dict[int, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def empty(cls, rows: int) -> Detections:
        """Results for ``rows`` events, to be filled in."""
        nan = np.full(rows, np.nan)
        return cls(
            log_p=nan.copy(),
            score=nan.copy(),
            distance_sq=nan.copy(),
            log_tail=nan.copy(),
            log_epsilon=nan.copy(),
            alert=np.zeros(rows, dtype=bool),
            warmup=np.zeros(rows, dtype=bool),
            n=np.zeros(rows, dtype=np.int64),
        )
