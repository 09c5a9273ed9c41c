"""Kafka tombstones (records with a null value) are bad records with their position, never blank.

The broker end to end is in ``test_kafka_side_streams.py``; these feed the
decoder batches as the Kafka source makes them.
"""

from __future__ import annotations

from typing import Any

import pytest

from stream_detect.records import Decoded, RecordDecoder
from stream_detect.records.tombstones import TOMBSTONE_REASON
from stream_detect.sources.base import RawBatch

#: A tombstone in a batch (the Kafka source gives it an empty payload).
NULL = None


def kafka_batch(values: list[bytes | None], first_offset: int = 0) -> RawBatch:
    """Records of partition 0 of topic ``t`` as the Kafka source hands them over."""
    payloads: list[bytes] = []
    positions: list[dict[str, Any]] = []
    for n, value in enumerate(values):
        position: dict[str, Any] = {"topic": "t", "partition": 0, "offset": first_offset + n}
        if value is None:
            position["tombstone"] = True
        payloads.append(b"" if value is None else value)
        positions.append(position)
    return RawBatch(payloads, positions)


def dead_letters(decoded: Decoded) -> list[tuple[int, str]]:
    return [(bad.position["offset"], bad.reason) for bad in decoded.bad]


def assert_accounted(decoded: Decoded, batch: RawBatch) -> None:
    total = len(decoded) + len(decoded.bad) + decoded.n_blank + decoded.n_header
    assert total == len(batch)


def test_a_tombstone_is_a_dead_letter_in_arrival_order_and_no_blank_line() -> None:
    batch = kafka_batch(
        [NULL, b'{"x": 1, "y": 2}', b'{"x": "high", "y": 2}', NULL, b"", b'{"x": 3, "y": 4}', NULL]
    )
    decoder = RecordDecoder("auto")
    decoded = decoder.decode(batch)
    assert_accounted(decoded, batch)
    assert decoder.format == "json" and decoder.features == ["x", "y"]
    assert decoded.values.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert [p["offset"] for p in decoded.positions] == [1, 5]
    # An empty value is still a blank line: only a null value is a tombstone.
    assert decoded.n_blank == 1
    assert [offset for offset, _ in dead_letters(decoded)] == [0, 2, 3, 6]
    assert [reason for offset, reason in dead_letters(decoded) if offset != 2] == [
        "null value (Kafka tombstone)"
    ] * 3
    entry = decoded.bad[0].to_dict()
    assert entry == {
        "position": {"topic": "t", "partition": 0, "offset": 0, "tombstone": True},
        "reason": TOMBSTONE_REASON,
        "raw": "",
    }


def test_tombstones_alone_decide_nothing_and_the_next_batch_decodes_as_usual() -> None:
    decoder = RecordDecoder("auto")
    only = kafka_batch([NULL, NULL])
    decoded = decoder.decode(only)
    assert_accounted(decoded, only)
    assert decoder.format == "auto" and decoded.n_blank == 0
    assert dead_letters(decoded) == [(0, TOMBSTONE_REASON), (1, TOMBSTONE_REASON)]
    later = decoder.decode(kafka_batch([b"x,y", b"1,2"], first_offset=2))
    assert decoder.format == "csv" and later.n_header == 1 and later.bad == []
    assert later.values.tolist() == [[1.0, 2.0]]


def test_a_tombstone_before_a_csv_header_leaves_the_header_a_header() -> None:
    decoder = RecordDecoder("auto")
    batch = kafka_batch([NULL, b"x,y", NULL, b"1,2", b"3,oops"])
    decoded = decoder.decode(batch)
    assert_accounted(decoded, batch)
    assert decoder.format == "csv" and decoded.n_header == 1
    assert decoded.values.tolist() == [[1.0, 2.0]]
    assert [offset for offset, _ in dead_letters(decoded)] == [0, 2, 4]


def test_a_held_first_line_stays_ahead_of_the_next_batchs_tombstones() -> None:
    decoder = RecordDecoder("auto")
    assert len(decoder.decode(kafka_batch([b"garbage"]))) == 0
    batch = kafka_batch([NULL, b'{"x": 1}'], first_offset=1)
    decoded = decoder.decode(batch)
    assert decoder.format == "json" and decoded.values.tolist() == [[1.0]]
    assert [offset for offset, _ in dead_letters(decoded)] == [0, 1]
    assert decoded.bad[1].reason == TOMBSTONE_REASON


@pytest.mark.parametrize("lazy_records", [False, True])
def test_the_other_records_decode_as_they_would_without_the_tombstones(
    lazy_records: bool,
) -> None:
    values = [f'{{"x": {i}, "y": {i % 3}}}'.encode() for i in range(200)]
    with_tombstones: list[bytes | None] = list(values)
    for offset in (0, 57, 199):
        with_tombstones.insert(offset, NULL)
    plain = RecordDecoder("auto", lazy_records=lazy_records).decode(kafka_batch(list(values)))
    decoded = RecordDecoder("auto", lazy_records=lazy_records).decode(kafka_batch(with_tombstones))
    assert decoded.values.tolist() == plain.values.tolist()
    assert [dict(record) for record in decoded.records] == [
        dict(record) for record in plain.records
    ]
    assert [offset for offset, _ in dead_letters(decoded)] == [0, 57, 199]
