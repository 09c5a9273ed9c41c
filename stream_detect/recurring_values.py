"""Noticing a feature whose ordinary values a Gaussian calls anomalies.

A feature that takes a few values, one of them rare (a count that is 0 and
now and then 5, a flag coded 0.5 and 1.5), is not Gaussian: its rare value
lies many standard deviations from the mean (a 5 among 0s at a rate of 0.2%
is 17σ out, even with the integer features' variance floor of 1/12,
:mod:`stream_detect.quantisation`, which keeps a single step within 3.5σ),
so the model puts it past any threshold, and every event that holds it
alerts, at the rate the value occurs. No tail
probability can be right there; what can be seen is the contradiction: a
value the model says a normal event reaches less often than ε has come back
again and again. :class:`RecurringValuesWatch` counts the values of features
that have taken at most :data:`MAX_DISTINCT` distinct values and, every
:data:`CHECK_EVERY` events, says once per feature when a value that came
back on :data:`MIN_RUNS` separate occasions lies beyond the threshold under
the Gaussian of all the values seen. A feature with more distinct values is not followed further (a
continuous one stops at its first batch): the model can be right about it,
and a value that a correct Gaussian puts past ε = 10⁻⁶ recurs in a thousand
events about once in two million streams.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
from numpy.typing import NDArray

from stream_detect.gamma_tails import normal_log_tail
from stream_detect.quantisation import UNIT_STEP_VARIANCE, whole

__all__ = ["CHECK_EVERY", "MAX_DISTINCT", "MIN_RUNS", "RecurringValuesWatch"]

#: Distinct values past which a feature is not followed (it may well be Gaussian).
MAX_DISTINCT: Final = 16
#: Events between two checks of the followed features.
CHECK_EVERY: Final = 1000
#: A value that came back this many separate times (runs of it, each after
#: another value) is one the stream holds: an incident's value (a count stuck
#: at 40, the same spike twice) comes in one run or a few.
MIN_RUNS: Final = 10


class RecurringValuesWatch:
    """Warn once per feature whose recurring value lies past ``log_epsilon`` under its Gaussian.

    ``warn`` receives one line of text; ``log_epsilon`` is the log tail
    probability events are judged by.

    >>> lines = []
    >>> watch = RecurringValuesWatch(["err", "cpu"], -13.8, lines.append, every=1000)
    >>> rng = np.random.default_rng(0)
    >>> err = np.where(np.arange(2000) % 200 == 0, 5.0, 0.0)  # a 5 every 200 events
    >>> watch.observe(np.column_stack([err, rng.normal(size=2000)]))
    >>> print(lines[0])
    feature 'err' has taken 2 distinct values in 2000 events, and 5, seen 10 times in 10 separate \
runs, lies 14.1 standard deviations from their mean: a Gaussian model calls each such value \
an anomaly (under 1e-06 of normal events, far fewer than it holds), so events holding it may \
alert as often as it occurs; if that value is normal, leave the feature out with --features
    >>> len(lines)
    1
    """

    def __init__(
        self,
        features: Sequence[str],
        log_epsilon: float,
        warn: Callable[[str], None],
        *,
        every: int = CHECK_EVERY,
    ) -> None:
        self.features = list(features)
        self.log_epsilon = log_epsilon
        self.warn = warn
        self.every = every
        self.seen = 0
        self._next_check = every
        #: Value counts of the features still followed, by column.
        self._counts: dict[int, Counter[float]] = {j: Counter() for j in range(len(features))}
        #: Runs of each value (occasions it came back after another value), by column.
        self._runs: dict[int, Counter[float]] = {j: Counter() for j in range(len(features))}
        self._last: NDArray[np.float64] | None = None

    @property
    def done(self) -> bool:
        """Whether no feature is followed any more (warned about, or too many values)."""
        return not self._counts

    def observe(self, values: NDArray[np.float64]) -> None:
        """Take a batch's scored feature rows, (B, d)."""
        if self.done or len(values) == 0:
            return
        # A row starts a run when its value differs from the row before (across batches).
        before = values[:-1] if self._last is None else np.vstack([self._last, values[:-1]])
        starts = np.ones(values.shape, dtype=bool)
        starts[len(values) - len(before) :] = values[len(values) - len(before) :] != before
        self._last = values[-1:].copy()
        for column in list(self._counts):
            distinct, counts = np.unique(values[:, column], return_counts=True)
            held = self._counts[column]
            held.update(dict(zip(distinct.tolist(), counts.tolist(), strict=True)))
            if len(held) > MAX_DISTINCT:
                del self._counts[column], self._runs[column]
                continue
            begun, runs = np.unique(values[starts[:, column], column], return_counts=True)
            self._runs[column].update(dict(zip(begun.tolist(), runs.tolist(), strict=True)))
        self.seen += len(values)
        if self.seen >= self._next_check:
            self._next_check = (self.seen // self.every + 1) * self.every
            for column in list(self._counts):
                line = self._contradiction(column)
                if line is not None:
                    del self._counts[column], self._runs[column]
                    self.warn(line)

    def _contradiction(self, column: int) -> str | None:
        """The warning for ``column`` if a recurring value lies past ε; None otherwise."""
        held = self._counts[column]
        values = np.array(list(held), dtype=np.float64)
        weights = np.array(list(held.values()), dtype=np.float64)
        total = weights.sum()
        mean = float(np.dot(values, weights) / total)
        spread = math.sqrt(float(np.dot(np.square(values - mean), weights) / total))
        if not spread > 0.0:
            return None
        if np.all(whole(values)):
            # The models floor an integer feature's variance at a unit step's rounding.
            spread = max(spread, math.sqrt(UNIT_STEP_VARIANCE))
        runs = self._runs[column]
        recurring = np.array([runs[value] >= MIN_RUNS for value in held])
        z = np.abs(values - mean) / spread
        far = recurring & (normal_log_tail(z) < self.log_epsilon)
        if not far.any():
            return None
        worst = int(np.argmax(np.where(far, z, -np.inf)))
        shown = f"{values[worst]:g}"
        return (
            f"feature {self.features[column]!r} has taken {len(held)} distinct values in "
            f"{int(total)} events, and {shown}, seen {int(weights[worst])} times in "
            f"{runs[values[worst]]} separate runs, lies "
            f"{z[worst]:.1f} standard deviations from their mean: a Gaussian model calls each "
            f"such value an anomaly (under {math.exp(self.log_epsilon):.0e} of normal events, "
            "far fewer than it holds), so events holding it may alert as often as it occurs; "
            "if that value is normal, leave the feature out with --features"
        )
