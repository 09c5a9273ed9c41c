"""The in-memory ListSource / ListSink shipped for tests."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_detect.assembly import run_stream
from stream_detect.errors import InputError, OutputError
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sinks import Sink
from stream_detect.sources import FileSource, RawBatch, Source
from stream_detect.testing import ListSink, ListSource


def read_all(source: Source, max_records: int = 100) -> list[tuple[bytes, dict[str, Any]]]:
    records: list[tuple[bytes, dict[str, Any]]] = []
    while not source.exhausted:
        batch = source.read_batch(max_records, linger_s=0.0, timeout_s=0.0)
        records.extend(zip(batch.payloads, batch.positions, strict=True))
    return records


def test_records_are_encoded_and_batched() -> None:
    source = ListSource([b"raw", "text é", {"x": 1.5, "n": np.int64(2)}], batch_size=2)
    assert isinstance(source, Source)
    first = source.read_batch(10, linger_s=0.1, timeout_s=1.0)
    assert first.payloads == [b"raw", "text é".encode()]
    assert not source.exhausted
    second = source.read_batch(10, linger_s=0.1, timeout_s=1.0)
    assert second.payloads == [b'{"x":1.5,"n":2}']
    assert source.exhausted
    assert len(source.read_batch(10, linger_s=0.1, timeout_s=1.0)) == 0
    assert ListSource([b"a", b"b", b"c"]).read_batch(2, 0.0, 0.0).payloads == [b"a", b"b"]


def test_positions_are_those_of_the_same_lines_in_a_file(tmp_path: Path) -> None:
    records: list[bytes | str | dict[str, Any]] = [
        b'{"x": 1}',
        b"",
        "caf\u00e9",
        {"y": [1, 2]},
        b"last",
    ]
    source = ListSource(records)
    path = tmp_path / "same.jsonl"
    path.write_bytes(b"".join(payload + b"\n" for payload in source.payloads))
    from_file = FileSource(path)
    assert read_all(source, 2) == read_all(from_file, 3)
    assert source.resume_token() == from_file.resume_token()


@given(
    records=st.lists(st.binary(max_size=8).filter(lambda b: b"\n" not in b), max_size=30),
    split=st.integers(0, 30),
    batch_size=st.integers(1, 7),
)
def test_resume_yields_exactly_the_rest(records: list[bytes], split: int, batch_size: int) -> None:
    split = min(split, len(records))
    first = ListSource(records, batch_size=batch_size)
    before: list[bytes] = []
    while len(before) < split:
        before.extend(first.read_batch(split - len(before), 0.0, 0.0).payloads)
    token = first.resume_token()
    second = ListSource(records, batch_size=batch_size)
    second.seek(token)
    after = [payload for payload, _ in read_all(second)]
    assert before + after == records


def test_lifecycle_is_checked() -> None:
    source = ListSource([b"a", b"b"])
    with pytest.raises(InputError, match="not the position of a record"):
        source.seek({"line": 2, "offset": 7})
    with pytest.raises(InputError):
        source.seek({"line": 9, "offset": 0})
    source.seek({"line": 3, "offset": 4})  # the end is a valid place to resume
    assert source.exhausted
    source = ListSource([b"a", b"b"])
    source.read_batch(1, 0.0, 0.0)
    with pytest.raises(RuntimeError, match="before the first read_batch"):
        source.seek({"line": 1, "offset": 0})
    source.commit(source.resume_token())
    assert source.commits == [{"line": 2, "offset": 2}]
    source.close()
    with pytest.raises(RuntimeError, match="after close"):
        source.read_batch(1, 0.0, 0.0)
    with pytest.raises(ValueError):
        ListSource([], batch_size=0)


def test_list_sink_keeps_written_and_flushed_apart() -> None:
    sink = ListSink()
    assert isinstance(sink, Sink)
    original = {"alert": True, "log_p": np.float64(-40.0)}
    sink.write_batch([original])
    original["alert"] = False  # the sink kept its own copy
    sink.write_batch([{"alert": False}])
    assert sink.records == [{"alert": True, "log_p": -40.0}, {"alert": False}]
    assert sink.flushed_records == [] and sink.flush_count == 0
    sink.flush()
    sink.write_batch([{"late": 1}])
    assert sink.n_flushed == 2 and len(sink.records) == 3
    sink.close()
    assert sink.n_flushed == 3 and sink.closed and sink.flush_count == 2
    sink.close()
    with pytest.raises(RuntimeError, match="after close"):
        sink.write_batch([{"x": 1}])


def test_list_sink_imitates_failures() -> None:
    sink = ListSink()
    with pytest.raises(TypeError):
        sink.write_batch([{"bad": object()}])
    assert sink.records == []
    ListSink(check_json=False).write_batch([{"bad": object()}])
    broken = ListSink(broken_pipe_after=3)
    broken.write_batch([{"i": 0}, {"i": 1}])
    with pytest.raises(BrokenPipeError):
        broken.write_batch([{"i": 2}, {"i": 3}])
    assert len(broken.records) == 2


def test_list_source_holds_nothing_read_ahead_and_can_resume() -> None:
    source = ListSource([b"a", b"b", b"c"], format_hint="json")
    assert source.resumable is True and source.format_hint == "json"
    assert len(source.take_buffered(10)) == 0  # before any read
    assert source.read_batch(1, 0.0, 0.0).payloads == [b"a"]
    drained = source.take_buffered(10)
    assert isinstance(drained, RawBatch) and len(drained) == 0
    # Draining changes nothing: the records not returned are still there for a restart.
    assert source.resume_token() == {"line": 2, "offset": 2}
    assert not source.exhausted
    with pytest.raises(ValueError):
        source.take_buffered(0)
    source.close()
    with pytest.raises(RuntimeError, match="after close"):
        source.take_buffered(1)


def test_list_sink_imitates_an_output_error() -> None:
    sink = ListSink(output_error_after=2)
    sink.write_batch([{"x": 1}, {"x": 2}])
    with pytest.raises(OutputError, match=r"^cannot write to ListSink: No space left") as caught:
        sink.write_batch([{"x": 3}])
    assert caught.value.errno == errno.ENOSPC
    assert sink.records == [{"x": 1}, {"x": 2}]  # the failed batch was not kept


def test_a_record_that_is_not_an_object_is_a_dead_letter_of_the_run() -> None:
    # A number, a list or None used to fail in ListSource itself: "'int' object is not iterable".
    events: list[object] = [{"x": float(i % 5)} for i in range(30)]
    events[10:10] = [5, [1, 2], None]
    sink, dead = ListSink(), ListSink()
    summary = run_stream(
        RunSettings(), DetectorSettings(), source=ListSource(events), sink=sink, dead_letter=dead
    )
    assert summary.events == 30 and summary.bad_records == 3
    assert [record["position"]["line"] for record in dead.records] == [11, 12, 13]
    assert "expected a JSON object" in dead.records[0]["reason"]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({1: 2.0}, r"ListSource record 1: field name 1 \(int\) is not a string"),
        ({"x": object()}, "ListSource record 1 cannot be written as JSON"),
    ],
)
def test_a_record_json_cannot_write_is_named(record: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        ListSource([{"x": 1.0}, record])


def test_run_stream_names_settings_given_in_the_wrong_order() -> None:
    with pytest.raises(TypeError, match="got DetectorSettings and RunSettings"):
        run_stream(
            DetectorSettings(),  # type: ignore[arg-type]
            RunSettings(),  # type: ignore[arg-type]
            source=ListSource([]),
            sink=ListSink(),
            dead_letter=ListSink(),
        )
