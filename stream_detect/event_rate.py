"""How many events a day a stream carries, measured from the events' own timestamps.

:class:`EventRate` keeps the number of events that carried a readable
timestamp and the earliest and latest of those times; the rate is the
number of intervals over the span. It is what turns a duration (an alert
budget per day, an acceptance time in seconds) into a number of events on
any stream, 1 Hz sensors or 5-minute metrics alike.

>>> rate = EventRate()
>>> rate.observe(["2014-04-01 00:00:00", "2014-04-01 00:05:00", "2014-04-01 00:10:00"])
>>> rate.per_day()
288.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from stream_detect.errors import InputError
from stream_detect.timestamps import wall_clock_seconds

__all__ = ["SECONDS_PER_DAY", "EventRate"]

SECONDS_PER_DAY = 86_400.0


class EventRate:
    """Events a day, from the span of the timestamps seen (None until two differ)."""

    def __init__(self) -> None:
        #: Events with a readable timestamp, and the earliest and latest of them (seconds).
        self.timed_events = 0
        self.first_second = math.inf
        self.last_second = -math.inf

    def observe(self, timestamps: Sequence[Any]) -> None:
        """Count a batch of events by their timestamps as written (None, unreadable: skipped)."""
        present = [stamp for stamp in timestamps if stamp is not None and stamp != ""]
        if not present:
            return
        try:
            seconds = wall_clock_seconds(present)
        except InputError:
            seconds = np.array([s for s in map(_seconds_or_nan, present) if math.isfinite(s)])
        if seconds.size == 0:
            return
        self.timed_events += int(seconds.size)
        # Earliest and latest, so events slightly out of order do not shorten the span.
        self.first_second = min(self.first_second, float(seconds.min()))
        self.last_second = max(self.last_second, float(seconds.max()))

    def per_day(self) -> float | None:
        """Events a day so far; None while fewer than two distinct times were seen."""
        span = self.last_second - self.first_second
        if self.timed_events < 2 or not (math.isfinite(span) and span > 0.0):
            return None
        # n timestamps span n - 1 intervals.
        return (self.timed_events - 1) / (span / SECONDS_PER_DAY)

    def to_dict(self) -> dict[str, Any]:
        """The state, JSON-able."""
        return {
            "timed_events": self.timed_events,
            "first_second": None if math.isinf(self.first_second) else self.first_second,
            "last_second": None if math.isinf(self.last_second) else self.last_second,
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load what :meth:`to_dict` wrote."""
        self.timed_events = int(data["timed_events"])
        first, last = data["first_second"], data["last_second"]
        self.first_second = math.inf if first is None else float(first)
        self.last_second = -math.inf if last is None else float(last)


def _seconds_or_nan(stamp: Any) -> float:
    try:
        return float(wall_clock_seconds([stamp])[0])
    except InputError:
        return math.nan
