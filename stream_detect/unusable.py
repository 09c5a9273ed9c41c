"""Noticing a stream whose records cannot be used at all.

A stream whose every record is a dead letter (a ``--features`` list naming a
field the events never carry, a CSV read as JSON) would otherwise run to its
end in silence and report zero events. :class:`UnusableStreamWatch` counts
dead letters since the last scored event and, once there are
:data:`WARN_AFTER` of them in a row, says so once, with the most common reason.
At the end, :func:`refuse_if_nothing_usable` turns such a stream into an
error (:class:`~stream_detect.errors.NothingUsable`, exit status 3), the same
for every command that reads one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from stream_detect.errors import NothingUsable

if TYPE_CHECKING:
    from stream_detect.summary import Summary

__all__ = ["WARN_AFTER", "UnusableStreamWatch", "refuse_if_nothing_usable"]

#: Consecutive dead letters after which a stream is reported as unusable.
WARN_AFTER = 500
#: Distinct reasons counted at most (a reason may quote each bad record).
_MAX_REASONS = 100


class UnusableStreamWatch:
    """Count consecutive dead letters and warn once when nothing has been usable.

    ``warn`` receives one line of text. Batches are the unit of "consecutive":
    a batch with any scored event ends a run of dead letters, and its own
    dead letters do not start one, since they lay among events that were
    scored (a stream where one event in seven lacks a feature has hundreds
    of dead letters in a batch of thousands, none of them in a row).

    >>> lines = []
    >>> watch = UnusableStreamWatch(lines.append, after=3)
    >>> watch.observe(0, ["missing feature 'x'", "missing feature 'x'"])
    >>> watch.observe(0, ["missing feature 'x'", "invalid JSON"])
    >>> print(lines[0])
    the last 4 records were all dead letters and no event has been scored yet; the most \
common reason: missing feature 'x' (3 times)
    >>> watch.most_common_reason
    "missing feature 'x'"
    >>> mixed = UnusableStreamWatch(lines.append, after=3)
    >>> mixed.observe(10, ["missing feature 'x'"] * 5)
    >>> len(lines), mixed.most_common_reason
    (1, "missing feature 'x'")
    """

    def __init__(self, warn: Callable[[str], None], *, after: int = WARN_AFTER) -> None:
        self.warn = warn
        self.after = after
        self.scored = 0
        self.in_a_row = 0
        self.reasons: Counter[str] = Counter()
        self._warned = False

    @property
    def most_common_reason(self) -> str | None:
        """The reason given most often in the current run of dead letters, if any."""
        common = self.reasons.most_common(1)
        return common[0][0] if common else None

    def observe(self, scored: int, reasons: Sequence[str]) -> None:
        """Record one batch: ``scored`` events were scored, ``reasons`` are its dead letters'."""
        if scored:
            self.scored += scored
            self.in_a_row = 0
            self.reasons.clear()
            self._warned = False
        for reason in reasons:
            if reason in self.reasons or len(self.reasons) < _MAX_REASONS:
                self.reasons[reason] += 1
        if not scored:
            self.in_a_row += len(reasons)
        if self.in_a_row >= self.after and not self._warned:
            self._warned = True
            reason, count = self.reasons.most_common(1)[0]
            when = "no event has been scored yet" if not self.scored else "none was scored"
            self.warn(
                f"the last {self.in_a_row} records were all dead letters and {when}; "
                f"the most common reason: {reason} ({count} times)"
            )


def refuse_if_nothing_usable(summary: Summary) -> None:
    """Raise :class:`NothingUsable` if records were read and none was scored.

    A stream that held no record at all (an empty file) is not refused.

    >>> from stream_detect.summary import Summary
    >>> refuse_if_nothing_usable(Summary(events=0, bad_records=0))
    >>> refuse_if_nothing_usable(Summary(events=0, bad_records=2, bad_reason="invalid JSON"))
    Traceback (most recent call last):
    ...
    stream_detect.errors.NothingUsable: no event was usable: all 2 records were dead letters \
(most common reason: invalid JSON)
    """
    if summary.events == 0 and summary.bad_records > 0:
        raise NothingUsable(summary.bad_records, summary.bad_reason)
