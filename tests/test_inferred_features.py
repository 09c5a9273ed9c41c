"""The features chosen when none are named: the same as event by event, however the batch reads.

``most_carried`` reads a batch in one parse and works each record shape out
once; ``carried_by_most`` counts events of one shape together. Both are
checked against the plain event-by-event definition on generated batches:
fields present or not, numbers, text, null, booleans, blank or refused lines.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Sequence

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect.records.csv_rows import CsvRows
from stream_detect.records.inferred_features import (
    carried_by_most,
    most_carried,
    without_rising,
)
from stream_detect.records.json_lines import JsonLines
from stream_detect.records.reject import Reject
from stream_detect.records.roles import FieldRoles


def reference_carried_by_most(field_lists: Sequence[Sequence[str]]) -> list[str]:
    """The rule event by event: each event's fields, the majority counted over events."""
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
        if 2 * len(still) > len(held):
            chosen.add(name)
            carrying = still
    return sorted(chosen, key=first_seen.__getitem__)


def reference_most_carried(reader: JsonLines | CsvRows, payloads: list[bytes]) -> list[str] | None:
    """Every line parsed on its own, every record's fields worked out on their own."""
    first: list[str] | None = None
    numeric: set[str] = set()
    filled: list[list[str]] = []
    for payload in payloads:
        if not payload.strip():
            continue
        try:
            record = reader.parse(payload)
        except Reject:
            continue
        fields = reader.numeric_fields(record)
        if fields and first is None:
            first = fields
        numeric.update(fields)
        filled.append(reader.filled_fields(record))
    lists = [kept for kept in ([f for f in x if f in numeric] for x in filled) if kept]
    chosen = reference_carried_by_most(lists)
    return chosen if chosen and chosen != first else None


NAMES = st.sampled_from(["cpu", "mem", "io", "label", "host", " ", "retry"])
VALUES = st.one_of(
    st.integers(-5, 5),
    st.floats(-10, 10),
    st.none(),
    st.booleans(),
    st.sampled_from(["x", "7"]),
    st.integers(10**20, 10**21),  # wider than 64 bits: read exactly
)
EVENT = st.dictionaries(NAMES, VALUES, max_size=6)


def _encoded(event: dict[str, object]) -> bytes:
    return json.dumps(event).encode()


LINE = st.one_of(
    EVENT.map(_encoded),
    EVENT.map(_encoded),
    st.sampled_from([b"", b"   ", b"not json", b"[1, 2]", b'"text"', b"{"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(NAMES, max_size=5, unique=True), max_size=40))
def test_counting_shapes_together_chooses_as_event_by_event(lists: list[list[str]]) -> None:
    assert carried_by_most(lists) == reference_carried_by_most(lists)


@settings(max_examples=300, deadline=None)
@given(st.lists(LINE, min_size=1, max_size=40))
def test_json_lines_choose_as_event_by_event(payloads: list[bytes]) -> None:
    reader = JsonLines(FieldRoles(label_field="label", key_field="host"))
    positions = [{"line": i + 1} for i in range(len(payloads))]
    expected = reference_most_carried(reader, payloads)
    assert most_carried(reader, payloads, positions, 1 << 20) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["1", "2.5", "", "x", "-3"]), min_size=3, max_size=3)))
def test_csv_rows_choose_as_event_by_event(rows: list[list[str]]) -> None:
    reader = CsvRows(FieldRoles(), b"a,b,c", {"line": 1}, None, 1 << 20)
    payloads = [",".join(row).encode() for row in rows] + [b"1,2"]  # one row refused
    positions = [{"line": i + 2} for i in range(len(payloads))]
    expected = reference_most_carried(reader, payloads)
    assert most_carried(reader, payloads, positions, 1 << 20) == expected


def test_a_batch_of_one_shape_keeps_the_first_events_fields() -> None:
    reader = JsonLines(FieldRoles())
    payloads = [orjson.dumps({"b": i, "a": 0.5, "note": "x"}) for i in range(4096)]
    assert most_carried(reader, payloads, [{}] * len(payloads), 1 << 20) is None


def test_a_rare_field_is_not_imposed_and_a_common_one_is_kept() -> None:
    reader = JsonLines(FieldRoles())
    events = [{"cpu": 1, "mem": 2}] * 60 + [{"cpu": 1, "mem": 2, "retry": 3}] * 3
    events = [{"cpu": 1}, *events]  # the first event lacks mem
    payloads = [orjson.dumps(event) for event in events]
    assert most_carried(reader, payloads, [{}] * len(payloads), 1 << 20) == ["cpu", "mem"]


def test_values_near_the_float_limit_are_compared_without_a_warning() -> None:
    # The rows were subtracted: 1e308 - -1e308 overflowed, and a run printed numpy's
    # "RuntimeWarning: overflow encountered in subtract" on stderr.
    values = np.array([[1e308, 1.0], [-1e308, 2.0], [1e308, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert without_rising(["a", "b"], values) == (["a"], ["b"])
