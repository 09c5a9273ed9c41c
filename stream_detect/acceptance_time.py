"""How many events a persistent deviation takes to be accepted, when that is a duration.

``accept_after`` counts a key's events (see :mod:`stream_detect.teaching`).
With timestamps (``timestamp_field``) and ``accept_after_seconds`` the
acceptance time is a duration of event time instead: 600 s is 600 events of
a 1 Hz stream and 2 events of 5-minute metrics. :class:`AcceptanceTime` is the
one home of that rule: it converts the duration to events of one key at the
stream's measured :class:`~stream_detect.event_rate.EventRate`, and says at
which event counts the conversion is re-read (10, 100, 1000, then every
1000: exact counts, so the result does not depend on batching). What an
accepted deviation then does to its model is :mod:`stream_detect.acceptance`'s.

It does no scoring and no I/O; the caller counts the events and the keys held.

Examples
--------
>>> from stream_detect.event_rate import EventRate
>>> rate = EventRate()
>>> acceptance = AcceptanceTime(
...     DetectorSettings(timestamp_field="t", accept_after_seconds=60.0), rate
... )
>>> rate.observe([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
>>> acceptance.rows_until_due(0, 25), acceptance.due(10)
(10, True)
>>> acceptance.reread(10, keys=10)
>>> acceptance.accept_after, acceptance.due(10), acceptance.next_rate_at
(60, False, 100)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stream_detect.settings import DetectorSettings

if TYPE_CHECKING:
    from stream_detect.event_rate import EventRate

__all__ = ["AcceptanceTime"]

#: Far enough that a re-read that is off never comes due.
_NEVER = 1 << 62
#: Event counts at which the acceptance time is re-read from the event rate: 10, 100,
#: 1000, then every 1000 (exact counts, so the result does not depend on batching).
_FIRST_RATE_AT, _RATE_EVERY = 10, 1000


class AcceptanceTime:
    """``accept_after`` in force, in events, re-read from ``rate`` when the settings say so.

    Parameters
    ----------
    settings
        The detector settings; reads ``accept_after`` and ``accept_after_seconds``.
    rate
        The stream's measured event rate; None (no timestamps) keeps
        ``accept_after`` as given, and so does ``accept_after_seconds`` 0 or
        ``accept_after`` 0 (never accept).
    """

    def __init__(self, settings: DetectorSettings, rate: EventRate | None) -> None:
        self.rate = rate
        self.seconds = settings.accept_after_seconds
        #: Events a persistent deviation of a key takes to be accepted, now.
        self.accept_after = settings.accept_after
        self.timed = bool(rate is not None and settings.accept_after and self.seconds)
        #: The event count at which the acceptance time is next re-read.
        self.next_rate_at = _FIRST_RATE_AT if self.timed else _NEVER

    def rows_until_due(self, events: int, rows: int) -> int:
        """How many of the next ``rows`` rows, after ``events`` so far, end at a re-read.

        Returns at least 1 and at most ``rows`` (at least 1 even if ``rows`` is 0).
        """
        return min(rows, max(1, self.next_rate_at - events))

    def due(self, events: int) -> bool:
        """True when, after ``events`` events, the acceptance time is to be re-read."""
        return events >= self.next_rate_at

    def reread(self, events: int, keys: int = 1) -> None:
        """Re-read ``accept_after_seconds`` as events of one key, ``events`` events in.

        A deviation is counted in its own key's events, so with ``keys``
        models held the rate of one key is the stream's divided by ``keys``:
        ten hosts at 1 Hz make a 10 Hz stream, and 600 s is still 600 events
        of a host. ``accept_after`` stays as it was until the rate is known.
        """
        self.next_rate_at = 10 * events if events < _RATE_EVERY else events + _RATE_EVERY
        assert self.rate is not None
        per_day = self.rate.per_day()
        if per_day is not None:
            from stream_detect.event_rate import SECONDS_PER_DAY

            per_second = per_day / SECONDS_PER_DAY / max(1, keys)
            self.accept_after = max(1, round(self.seconds * per_second))

    # ----------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """The state, JSON-able, in the detector checkpoint's layout (beside the rate)."""
        return {"accept_after": self.accept_after, "next_rate_at": self.next_rate_at}

    def restore(self, data: dict[str, Any]) -> None:
        """Load what :meth:`to_dict` wrote."""
        self.accept_after = int(data["accept_after"])
        self.next_rate_at = int(data["next_rate_at"])
