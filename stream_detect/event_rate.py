"""How many events a day a stream carries, measured from the events' own timestamps.

:class:`EventRate` keeps the number of events that carried a timestamp and
the times of the first and of the latest of them, in arrival order; the
rate is the number of intervals over that span. Only those two timestamps
are parsed per batch, so measuring costs next to nothing, and what it
measures up to an event does not depend on how the stream was batched. It is
what turns a duration (an alert budget per day, an acceptance time in
seconds) into a number of events on any stream, 1 Hz sensors or 5-minute
metrics alike.

>>> rate = EventRate()
>>> rate.observe(["2014-04-01 00:00:00", "2014-04-01 00:05:00", "2014-04-01 00:10:00"])
>>> rate.per_day()
288.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from stream_detect.errors import InputError
from stream_detect.timestamps import wall_clock_seconds

__all__ = ["SECONDS_PER_DAY", "EventRate"]

SECONDS_PER_DAY = 86_400.0
#: Epoch numbers at least this large are taken for milli-, micro- or nanoseconds.
_LARGEST_EPOCH_SECONDS = 1e11


class EventRate:
    """Events a day, from the span of the timestamps seen (None until two differ)."""

    def __init__(self) -> None:
        #: Events with a timestamp, and the times of the first and the latest of them.
        self.timed_events = 0
        self.first_second = math.inf
        self.last_second = -math.inf

    def observe(self, timestamps: Sequence[Any]) -> None:
        """Count a batch of events by their timestamps as written (None or unreadable: skipped)."""
        present = [stamp for stamp in timestamps if stamp is not None and stamp != ""]
        if not present:
            return
        self.timed_events += len(present)
        if not math.isfinite(self.first_second):
            self.first_second = _first_readable(present)
        latest = _first_readable(present[::-1])
        if math.isfinite(latest):
            self.last_second = latest

    def per_day(self) -> float | None:
        """Events a day so far; None until the latest time is past the first."""
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


def _epoch_seconds(stamp: Any) -> Any:
    """An epoch number in milli-, micro- or nanoseconds as seconds; anything else as it is.

    Kafka's message time is in milliseconds; no event of this era is 1e11
    seconds (3,000 years) past 1970.

    >>> _epoch_seconds(1700000000123), _epoch_seconds("1700000000"), _epoch_seconds("2014-04-01")
    (1700000000.123, 1700000000.0, '2014-04-01')
    """
    try:
        value = float(stamp)
    except (TypeError, ValueError):
        return stamp
    for scale in (1.0, 1e3, 1e6, 1e9):
        if abs(value / scale) < _LARGEST_EPOCH_SECONDS:
            return value / scale
    return value


def _first_readable(stamps: Sequence[Any]) -> float:
    """Seconds of the first timestamp that reads (inf if none does)."""
    for stamp in stamps:
        try:
            return float(wall_clock_seconds([_epoch_seconds(stamp)])[0])
        except (InputError, ValueError, OverflowError, OSError):
            continue
    return math.inf
