"""The bulk JSON encoding of a batch's results equals encoding each record, byte for byte."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect.detections import Detections
from stream_detect.records import Decoded
from stream_detect.results import PIECE_EVENTS, RESULT_FIELDS, ResultBatch
from stream_detect.sinks import encode_json_line

any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
field_names = st.text(min_size=1, max_size=8) | st.sampled_from(RESULT_FIELDS)
field_values = (
    any_float
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=10)
    | st.none()
    | st.booleans()
    | st.lists(st.integers(0, 9), max_size=3)
    # Texts that hold the cut between two records' JSON.
    | st.sampled_from(["},{", "a},{b"])
    | st.lists(st.dictionaries(st.sampled_from("ab"), st.integers(0, 9)), max_size=3)
)


def make_batch(
    records: list[dict[str, Any]],
    numbers: list[list[float]],
    alert: list[bool],
    keys: list[str] | None,
) -> tuple[Decoded, Detections]:
    rows = len(records)
    decoded = Decoded.empty(1, keys=keys is not None)
    decoded.values = np.zeros((rows, 1))
    decoded.records = records
    decoded.positions = [{"line": i + 1, "offset": 17 * i} for i in range(rows)]
    decoded.keys = keys
    found = Detections.empty(rows)
    columns = np.array(numbers, dtype=np.float64).reshape(rows, 5)
    found.log_p, found.score, found.distance_sq, found.log_tail, found.log_epsilon = (
        np.ascontiguousarray(columns[:, k]) for k in range(5)
    )
    found.alert = np.array(alert, dtype=bool)
    found.warmup = ~found.alert
    found.n = np.arange(rows, dtype=np.int64) * 1_000_003
    for i in np.flatnonzero(found.alert).tolist():
        if i % 3:
            found.contributions[i] = {"f0": float(numbers[i][0]), "f,1": 0.5}
    return decoded, found


def one_by_one(results: ResultBatch) -> bytes:
    return b"".join(encode_json_line(record) for record in results)


@st.composite
def batches(draw: st.DrawFn, clashing: bool) -> tuple[Decoded, Detections]:
    rows = draw(st.integers(1, 2 * PIECE_EVENTS + 5))
    names = (
        field_names
        if clashing
        else st.text(min_size=1, max_size=8).filter(lambda name: name not in RESULT_FIELDS)
    )
    records = draw(
        st.lists(
            st.dictionaries(names, field_values, min_size=1, max_size=4),
            min_size=rows,
            max_size=rows,
        )
    )
    numbers = draw(
        st.lists(st.lists(any_float, min_size=5, max_size=5), min_size=rows, max_size=rows)
    )
    alert = draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
    keys = draw(st.none() | st.lists(st.text(max_size=6), min_size=rows, max_size=rows))
    return make_batch(records, numbers, alert, keys)


@settings(max_examples=60, deadline=None)
@given(batches(clashing=False), st.sampled_from(["all", "alerts"]))
def test_bulk_lines_equal_record_by_record(batch: tuple[Decoded, Detections], emit: str) -> None:
    decoded, found = batch
    results = ResultBatch.of(decoded, found, emit=emit)
    pieces = results.json_lines()
    assert b"".join(pieces) == one_by_one(results)
    assert all(piece.count(b"\n") <= PIECE_EVENTS for piece in pieces)
    assert all(piece.endswith(b"\n") for piece in pieces)


@settings(max_examples=40, deadline=None)
@given(batches(clashing=True), st.sampled_from(["all", "alerts"]))
def test_fields_named_like_results_are_encoded_as_each_record(
    batch: tuple[Decoded, Detections], emit: str
) -> None:
    decoded, found = batch
    results = ResultBatch.of(decoded, found, emit=emit)
    assert b"".join(results.json_lines()) == one_by_one(results)


def test_an_event_field_named_like_a_result_keeps_its_place_and_takes_the_result() -> None:
    decoded, found = make_batch(
        [{"n": 5, "x": 1.0}, {}], [[1.0] * 5, [2.0] * 5], [False, True], ["a", "b"]
    )
    lines = b"".join(ResultBatch.of(decoded, found, emit="all").json_lines()).splitlines()
    first = orjson.loads(lines[0])
    assert list(first)[:2] == ["n", "x"]
    assert first["n"] == 0
    assert next(iter(orjson.loads(lines[1]))) == "log_p"


def test_the_records_are_the_event_fields_then_the_results_in_order() -> None:
    decoded, found = make_batch(
        [{"x": 1.5, "host": "h"}], [[-1.0, -2.0, 3.0, float("nan"), -40.0]], [True], ["h"]
    )
    found.contributions[0] = {"x": 3.0}
    (record,) = ResultBatch.of(decoded, found, emit="alerts")
    assert list(record) == ["x", "host", *RESULT_FIELDS]
    assert record["log_tail"] is None
    assert record["contributions"] == {"x": 3.0}


def test_nothing_to_write_gives_no_pieces() -> None:
    decoded, found = make_batch([{"x": 1}], [[0.0] * 5], [False], None)
    results = ResultBatch.of(decoded, found, emit="alerts")
    assert len(results) == 0
    assert results.json_lines() == []
    assert list(results) == []


def test_positions_whose_text_holds_the_split_mark_are_encoded_one_by_one() -> None:
    decoded, found = make_batch([{"x": 1}, {"x": 2}], [[0.0] * 5, [1.0] * 5], [False, True], None)
    decoded.positions = [{"topic": "a},{b", "offset": 1}, {}]
    results = ResultBatch.of(decoded, found, emit="all")
    assert b"".join(results.json_lines()) == one_by_one(results)


@pytest.mark.parametrize(
    "records",
    [
        [{"x": "},{"}, {"x": 2}],
        [{"x": [{"a": 1}, {"b": 2}]}, {"x": 2}, {"x": 3}],
        [{"x": 1}, {"x": {"y": {}}}],
    ],
)
def test_records_whose_text_holds_the_cut_between_records_are_written_as_each(
    records: list[dict[str, Any]],
) -> None:
    rows = len(records)
    decoded, found = make_batch(records, [[0.5] * 5] * rows, [True] * rows, None)
    results = ResultBatch.of(decoded, found, emit="all")
    assert b"".join(results.json_lines()) == one_by_one(results)


def test_a_field_json_cannot_hold_as_such_is_encoded_as_each_record() -> None:
    decoded, found = make_batch(
        [{"x": np.float32(1.5)}, {"x": b"raw"}], [[0.0] * 5] * 2, [False] * 2, None
    )
    results = ResultBatch.of(decoded, found, emit="all")
    lines = b"".join(results.json_lines())
    assert lines == one_by_one(results)
    assert b'"x":1.5' in lines and b'"x":"raw"' in lines
