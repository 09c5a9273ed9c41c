"""Kafka tombstones: records with a null value, refused with their position, never taken as blank.

A Kafka record whose value is null (a *tombstone*; on a compacted topic it
deletes its key) holds no event. Taken as an empty line it would be skipped
and merely counted as blank, and nobody would learn that the topic carries
such records. Instead the Kafka source marks the record's position
``"tombstone": true`` (its payload is empty) and the decoder sets it aside
before anything else (:func:`set_aside_tombstones`) as a bad record with the
reason :data:`TOMBSTONE_REASON`: it goes to the dead letters, counted, with
its topic, partition and offset, in arrival order among the batch's other
bad records (:func:`in_arrival_order`).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any, Final

from stream_detect.records.batch import BadRecord
from stream_detect.sources.line_positions import LinePositions

__all__ = ["TOMBSTONE_REASON", "in_arrival_order", "is_tombstone", "set_aside_tombstones"]

#: The reason a tombstone's dead letter gives.
TOMBSTONE_REASON: Final = "null value (Kafka tombstone)"


def is_tombstone(position: dict[str, Any]) -> bool:
    """True if the source marked the record at ``position`` as having a null value.

    >>> is_tombstone({"topic": "t", "partition": 0, "offset": 4, "tombstone": True})
    True
    >>> is_tombstone({"line": 1, "offset": 0})
    False
    """
    return bool(position.get("tombstone"))


def set_aside_tombstones(
    payloads: list[bytes], positions: Sequence[dict[str, Any]]
) -> tuple[list[bytes], Sequence[dict[str, Any]], list[BadRecord]]:
    """The batch without its tombstones, and the tombstones as bad records, in order.

    A batch without any comes back as it was (the same lists).

    >>> positions = [{"offset": 0}, {"offset": 1, "tombstone": True}, {"offset": 2}]
    >>> kept, kept_positions, bad = set_aside_tombstones([b"{}", b"", b"{}"], positions)
    >>> kept, [p["offset"] for p in kept_positions]
    ([b'{}', b'{}'], [0, 2])
    >>> [(record.position["offset"], record.reason) for record in bad]
    [(1, 'null value (Kafka tombstone)')]
    """
    # Line sources never mark one, and their positions are made only when read.
    if isinstance(positions, LinePositions) or not any(
        map(dict.get, positions, repeat("tombstone"))
    ):
        return payloads, positions, []
    kept: list[bytes] = []
    kept_positions: list[dict[str, Any]] = []
    bad: list[BadRecord] = []
    for payload, position in zip(payloads, positions, strict=True):
        if is_tombstone(position):
            bad.append(BadRecord(position, TOMBSTONE_REASON, payload))
        else:
            kept.append(payload)
            kept_positions.append(position)
    return kept, kept_positions, bad


def in_arrival_order(bad: list[BadRecord], positions: Sequence[dict[str, Any]]) -> list[BadRecord]:
    """``bad`` sorted as their positions (the same objects) arrived in ``positions``.

    A bad record whose position is not among them (a line held over from the
    batch before) arrived earlier, so it comes first.

    >>> positions = [{"offset": 0}, {"offset": 1}, {"offset": 2}]
    >>> bad = [BadRecord(positions[2], "x", b""), BadRecord(positions[0], "y", b"")]
    >>> [record.position["offset"] for record in in_arrival_order(bad, positions)]
    [0, 2]
    """
    arrival = {id(position): n for n, position in enumerate(positions)}
    return sorted(bad, key=lambda record: arrival.get(id(record.position), -1))
