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

Inferred features also leave out a field that only rises over the first batch
(a counter, an epoch timestamp): it would make every later event an anomaly
(:func:`without_rising`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any, Final

import numpy as np

from stream_detect.records.batch import FloatMatrix
from stream_detect.records.field_paths import shape as event_shape
from stream_detect.records.record_format import RecordFormat
from stream_detect.records.reject import Reject
from stream_detect.records.size_limits import oversize_reason

__all__ = ["MIN_ROWS_FOR_RISING", "carried_by_most", "most_carried", "without_rising"]

#: Inferred features are checked for "only rises" (a counter, a clock) over the
#: first batch when it has at least this many good rows.
MIN_ROWS_FOR_RISING: Final = 8


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
    # Events of one shape count together: a batch holds a few shapes, not thousands.
    # Their first appearances visit the names in the order all the events would.
    shapes = Counter(map(tuple, field_lists))
    first_seen: dict[str, int] = {}
    for fields in shapes:
        for name in fields:
            first_seen.setdefault(name, len(first_seen))
    held = [(set(fields), weight) for fields, weight in shapes.items()]
    counts: Counter[str] = Counter()
    for names, weight in held:
        for name in names:
            counts[name] += weight
    events = len(field_lists)
    carrying = held
    chosen: set[str] = set()
    for name in sorted(first_seen, key=lambda field: (-counts[field], first_seen[field])):
        still = [(names, weight) for names, weight in carrying if name in names]
        # Strictly more than half of all events: two event types that share
        # nothing but alternate must not both be imposed on every event.
        if 2 * sum(weight for _, weight in still) > events:
            chosen.add(name)
            carrying = still
    return sorted(chosen, key=first_seen.__getitem__)


def most_carried(
    reader: RecordFormat[Any],
    payloads: Sequence[bytes],
    positions: Sequence[dict[str, Any]],
    max_record_bytes: int,
) -> list[str] | None:
    """The features a batch's events carry most (:func:`carried_by_most`); None: no change.

    The candidates are the fields that hold a number in some record; a
    record carries a field that holds any value there (a value of the
    wrong kind makes a bad record, not a field the stream lacks). Records
    the paths would refuse (too long, not parsed) say nothing of the
    fields. When the choice is the numeric fields of the first record
    that has any (a stream whose events all carry the same ones), it is
    None: the paths take them from that record, as they would alone.
    """
    first: list[str] | None = None
    numeric: set[str] = set()
    filled: list[list[str]] = []
    # Which fields of a JSON object are numbers, or hold a value, follows from its
    # names and the types of its values, nested objects' too: once per such shape.
    by_shape: dict[Hashable, tuple[list[str], list[str]]] = {}
    kept = [
        payload
        for payload, position in zip(payloads, positions, strict=True)
        if payload.strip() and not oversize_reason(payload, position, max_record_bytes)
    ]
    # All at once (as the bulk path reads them) unless a line is refused: then one by one.
    records = reader.parse_all(kept) if kept else []
    if records is None:
        records = []
        for payload in kept:
            try:
                records.append(reader.parse(payload))
            except Reject:
                continue
    for record in records:
        if type(record) is dict:
            shape = event_shape(record)
            known = by_shape.get(shape)
            if known is None:
                known = by_shape[shape] = (
                    reader.numeric_fields(record),
                    reader.filled_fields(record),
                )
            fields, carried = known
        else:
            fields, carried = reader.numeric_fields(record), reader.filled_fields(record)
        if fields and first is None:
            first = fields
        numeric.update(fields)
        filled.append(carried)
    # Few distinct lists (one per shape): each narrowed once.
    narrowed: dict[tuple[str, ...], list[str]] = {}
    field_lists = []
    for names in map(tuple, filled):
        held = narrowed.get(names)
        if held is None:
            held = narrowed[names] = [name for name in names if name in numeric]
        if held:
            field_lists.append(held)
    chosen = carried_by_most(field_lists)
    return chosen if chosen and chosen != first else None


def without_rising(features: list[str], values: FloatMatrix) -> tuple[list[str], list[str]]:
    """``features`` split into those kept and those that only rise down the rows of ``values``.

    A feature only rises when each row's value is strictly above the one
    before. When none does, or every one does (nothing would be left), all
    are kept and none left out. The caller asks only of a batch with at
    least :data:`MIN_ROWS_FOR_RISING` rows.

    >>> without_rising(["n", "cpu"], np.array([[1.0, 0.5], [2.0, 0.25], [3.0, 0.5]]))
    (['cpu'], ['n'])
    >>> without_rising(["n"], np.array([[1.0], [2.0]]))
    (['n'], [])
    """
    # Compared, not subtracted: a difference of values near the float limit overflows,
    # and numpy would say so on stderr.
    rising = np.all(values[1:] > values[:-1], axis=0).tolist()
    if not any(rising) or all(rising):
        return features, []
    kept = [name for name, up in zip(features, rising, strict=True) if not up]
    left_out = [name for name, up in zip(features, rising, strict=True) if up]
    return kept, left_out
