"""Which numeric fields become the features when none are named: those most events carry.

Taking the numeric fields of the first event alone leaves a field out of the
model for the whole run when that one event happened to lack it (a metric
missing from one scrape, an empty first CSV cell): the field is never
watched, and its anomalies never alert, while the stream looks healthy.
Reading the first batch instead, the features are the largest set of numeric
fields that more than half of its events carry together (hold a value in,
of whatever kind: a wrong one makes a bad record, not a missing field), so at most a
minority of them lacks one (those are dead letters, as any event missing a
feature is), and a rare field (one event type in a hundred) is not forced on
the events that never carry it. A stream whose events all carry the same
fields gets exactly the first event's fields, in their order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

__all__ = ["carried_by_most"]


def carried_by_most(field_lists: Sequence[Sequence[str]]) -> list[str]:
    """The largest set of fields that more than half of ``field_lists`` hold together, greedily.

    ``field_lists`` holds each event's numeric fields (events without any are
    left out by the caller). Fields are tried from the most often carried
    (ties: the first seen first), each kept while the events holding every
    field kept so far stay a strict majority; the result is in order of first
    appearance. Empty for no events.

    >>> carried_by_most([["a", "b"], ["a", "b", "c"], ["a", "b", "c"]])
    ['a', 'b', 'c']
    >>> carried_by_most([["x", "y"], ["x", "y", "retry_after"], ["x", "y"]])
    ['x', 'y']
    >>> carried_by_most([["x", "y"], ["x", "z"], ["x", "y"], ["x", "z"]])
    ['x']
    >>> carried_by_most([["cpu", "mem"]])
    ['cpu', 'mem']
    """
    if not field_lists:
        return []
    first_seen: dict[str, int] = {}
    for fields in field_lists:
        for name in fields:
            first_seen.setdefault(name, len(first_seen))
    counts = Counter(name for fields in field_lists for name in set(fields))
    held = [set(fields) for fields in field_lists]
    carrying = list(range(len(held)))
    chosen: set[str] = set()
    for name in sorted(first_seen, key=lambda field: (-counts[field], first_seen[field])):
        still = [event for event in carrying if name in held[event]]
        # Strictly more than half of all events: two event types that share
        # nothing but alternate must not both be imposed on every event.
        if 2 * len(still) > len(held):
            chosen.add(name)
            carrying = still
    return sorted(chosen, key=first_seen.__getitem__)
