"""An alert budget: the log ε on the log tail that gives about N alerts a day on normal events.

:class:`AlertBudget` watches the scores alerts are decided on (log tail
probabilities) and keeps those of the most recent events that did **not**
alert (at most ``window`` of them, warm-up rows left out). An incident's
alerts never enter it, so they cannot move the threshold they are judged by;
they are not counted as normal events either.

The target rate per event is ``q = alerts_per_day / events_per_day``. The
events' rate is the ``events_per_day`` given, else it is measured from the
events' timestamps (events seen over the span of their timestamps, in days).
Without either, there is no rate and :meth:`AlertBudget.log_epsilon` says so
(None): the threshold in force stays.

The estimate. Each kept score lies above the threshold that judged it,
and the threshold moves as the budget re-tunes it. Above the threshold in
force, ``ε₀``, the scores judged by it or by a lower one were free to fall
anywhere; those judged by a higher one were not (they are left out, a score
kept under a lower threshold that now lies below ``ε₀`` counts as an event
below it). Of the ``N`` scores so judged, let ``x`` be the k-th smallest tail
above ``ε₀``, ``k = max(20, ceil(q N))``: ``k / (N (x - ε₀))`` is the
density of normal events' tails just above it. Extrapolated to the whole tail (a tail calibrated
up to a constant factor, which is what a Gaussian model's tail is on real
series: too light or too heavy by some factor), a threshold ε raises
``q`` alerts per event at ``ε = q N (x - ε₀) / k``. With ``q N >= 20`` this
is the empirical quantile of the normal events measured from the threshold
up; below that it extrapolates from the 20th smallest. On a tail that is
exactly calibrated it returns ``ε = q`` from any ``ε₀ < x``, so repeating it
neither creeps up nor down.

Examples
--------
Pure noise whose tail is uniform: the budget of one alert a day at 1,000
events a day is ε = 0.001, wherever it starts from.

>>> budget = AlertBudget(alerts_per_day=1.0, events_per_day=1000.0, window=50_000)
>>> tails = np.random.default_rng(0).uniform(size=50_000)
>>> current = np.log(1e-6)
>>> budget.observe(np.log(tails), tails < 1e-6, np.zeros(50_000, bool))
>>> round(float(np.exp(budget.log_epsilon(current))), 4)
0.001
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.event_rate import EventRate

__all__ = ["BUDGET_WINDOW", "AlertBudget"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Non-alerting scores kept for the estimate.
BUDGET_WINDOW = 100_000
#: The fewest normal tails the estimate is read from (below that it extrapolates).
_MIN_ORDER = 20
#: The tail's shape is read between the k-th and the (_SPAN k)-th smallest kept tail.
_SPAN = 4
#: Exponents of the tail's power law the estimate may find (1: a calibrated tail).
_MIN_EXPONENT, _MAX_EXPONENT = 0.05, 4.0


class AlertBudget:
    """The threshold that spends ``alerts_per_day`` alerts a day on normal events.

    Parameters
    ----------
    alerts_per_day
        The target alert rate.
    events_per_day
        The event rate; None: ``measured``'s.
    measured
        The stream's measured event rate (:class:`~stream_detect.event_rate.EventRate`).
    window
        Most recent non-alerting scores kept.
    """

    def __init__(
        self,
        alerts_per_day: float,
        events_per_day: float | None = None,
        *,
        measured: EventRate | None = None,
        window: int = BUDGET_WINDOW,
    ) -> None:
        self.alerts_per_day = alerts_per_day
        self.events_per_day = events_per_day
        self.window = window
        self._scores = np.empty(0)
        # The threshold in force when each kept score was scored (-inf: none).
        self._floors = np.empty(0)
        #: The measured event rate, used when ``events_per_day`` is not given.
        self.measured = measured

    @property
    def kept(self) -> int:
        """Non-alerting scores held."""
        return int(self._scores.size)

    def observe(
        self, scores: Array, alert: BoolArray, warmup: BoolArray, thresholds: Array | None = None
    ) -> None:
        """Take a batch's decision scores; keep those of rows that neither alerted nor warmed up.

        ``thresholds`` holds the log ε each row was judged by (NaN: none);
        None: the one in force when the budget is next asked.
        """
        normal = ~alert & ~warmup & np.isfinite(scores)
        if normal.any():
            if thresholds is None:
                floors = np.full(scores.shape, np.nan)  # unknown, see log_epsilon
            else:
                floors = np.where(np.isnan(thresholds), -np.inf, thresholds)
            kept = np.concatenate([self._scores, np.asarray(scores, dtype=np.float64)[normal]])
            under = np.concatenate([self._floors, floors[normal]])
            self._scores, self._floors = kept[-self.window :], under[-self.window :]

    def rate_per_day(self) -> float | None:
        """Events a day: the one given, else the measured one (None: unknown yet)."""
        if self.events_per_day is not None:
            return self.events_per_day
        return None if self.measured is None else self.measured.per_day()

    def log_epsilon(self, current: float) -> float | None:
        """The log ε that spends the budget, given the log ε in force; None if not known yet.

        None while the event rate is unknown or fewer than 80 non-alerting
        scores lie above ``current``, the log ε in force, from times it or a
        lower one was in force (see the module docstring for the estimate).
        """
        rate = self.rate_per_day()
        if rate is None:
            return None
        target = min(1.0, self.alerts_per_day / rate)
        floor = current if math.isfinite(current) else -math.inf
        floors = self._floors
        if np.isnan(floors).any():  # judged by the threshold in force, as far as is known
            floors = np.where(np.isnan(floors), floor, floors)
        # Scores judged by a higher threshold could not fall just above this one.
        judged = floors <= floor
        held = int(np.count_nonzero(judged))
        free = self._scores[judged & (self._scores >= floor)]
        order = max(_MIN_ORDER, math.ceil(target * held))
        if free.size < _SPAN * order:
            return None
        ranked = np.partition(free, (order - 1, _SPAN * order - 1))
        log_near, log_far = float(ranked[order - 1]), float(ranked[_SPAN * order - 1])
        exponent = _tail_exponent(log_near, log_far, floor)
        # Normal events' tails below p: c p^a; the kept ones lie above the threshold in force.
        log_c = math.log(order / held) - _log_excess(log_near, floor, exponent)
        return min(0.0, (math.log(target) - log_c) / exponent)

    def to_dict(self) -> dict[str, Any]:
        """The state, JSON-able (no threshold, -inf, as null; so is an unknown one)."""
        floors = [None if math.isinf(f) else f for f in self._floors.tolist()]
        return {"scores": self._scores.tolist(), "floors": floors}

    def restore(self, data: dict[str, Any]) -> None:
        """Load what :meth:`to_dict` wrote (this budget's ``window`` holds).

        A state saved before thresholds were kept beside the scores reads as
        scores judged by the threshold in force, as it was then estimated.
        """
        self._scores = np.asarray(data["scores"], dtype=np.float64)[-self.window :]
        floors = data.get("floors")
        if floors is None:
            self._floors = np.full(self._scores.size, np.nan)
        else:
            under = [-math.inf if f is None else f for f in floors]
            self._floors = np.array(under, dtype=np.float64)[-self.window :]


def _log_excess(log_x: float, log_floor: float, exponent: float) -> float:
    """log(x^a - floor^a), 0 <= floor < x, without losing digits."""
    if log_floor >= log_x:
        return exponent * log_x
    return exponent * log_x + math.log1p(-math.exp(exponent * (log_floor - log_x)))


def _tail_exponent(log_near: float, log_far: float, log_floor: float) -> float:
    """The a of F(p) = c p^a that puts ``_SPAN`` times the mass above ``floor`` at far as at near.

    F(far) - F(floor) = _SPAN (F(near) - F(floor)) is solved by bisection over
    [_MIN_EXPONENT, _MAX_EXPONENT]; a calibrated tail gives a = 1.
    """
    if not log_far > log_near:
        return 1.0
    low, high = _MIN_EXPONENT, _MAX_EXPONENT
    target = math.log(_SPAN)
    for _ in range(60):
        middle = 0.5 * (low + high)
        ratio = _log_excess(log_far, log_floor, middle) - _log_excess(log_near, log_floor, middle)
        # The ratio grows with a: too small an a leaves too little mass between near and far.
        if ratio < target:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)
