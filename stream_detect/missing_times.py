"""Noticing a ``--timestamp-field`` that no event carries.

Event times drive the alert budget's events a day, a duration given to
``--accept-after-seconds`` and the seasonal features; until a first time is
read, each falls back to what it does without one. A field named wrong
(``ts`` for ``timestamp``, a CSV column renamed) would leave them there for
the whole run without a word, so :class:`MissingTimesWatch` says so once,
after :data:`WARN_AFTER` scored events without a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

__all__ = ["WARN_AFTER", "MissingTimesWatch"]

#: Scored events without a time after which the field is reported missing.
WARN_AFTER: Final = 100


class MissingTimesWatch:
    """Warn once if ``field`` held no time in the first :data:`WARN_AFTER` events scored.

    ``warn`` receives one line of text. A time is any value but null or empty
    text; whether it reads as a time is for its users to say.

    >>> lines = []
    >>> watch = MissingTimesWatch("ts", lines.append, after=3)
    >>> watch.observe([None, None])
    >>> watch.observe([None, ""])
    >>> print(lines[0])
    no event of the first 4 had a value in the timestamp field 'ts': events a day, \
--accept-after-seconds and seasonal features wait for one (is the field named right?)
    >>> seen = MissingTimesWatch("ts", lines.append, after=3)
    >>> seen.observe(["2026-01-01T00:00:00Z", None, None, None])
    >>> len(lines)
    1
    """

    def __init__(self, field: str, warn: Callable[[str], None], *, after: int = WARN_AFTER) -> None:
        self.field = field
        self.warn = warn
        self.after = after
        self.without = 0
        self._done = False

    def observe(self, timestamps: Sequence[Any]) -> None:
        """Take the times of a batch's scored events, row for row (None: none given)."""
        if self._done:
            return
        if any(stamp is not None and stamp != "" for stamp in timestamps):
            self._done = True
            return
        self.without += len(timestamps)
        if self.without >= self.after:
            self._done = True
            self.warn(
                f"no event of the first {self.without} had a value in the timestamp field "
                f"{self.field!r}: events a day, --accept-after-seconds and seasonal features "
                "wait for one (is the field named right?)"
            )
