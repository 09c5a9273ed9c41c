"""Line sources over real pipes, processes and files; URI parsing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect.errors import ConfigError, InputError
from stream_detect.sources import (
    DEFAULT_MAX_LINE_BYTES,
    FileSource,
    LineSource,
    RawBatch,
    Source,
    StdinSource,
    open_source,
    parse_uri,
)
from stream_detect.uris import file_uri

Record = tuple[bytes, dict[str, Any]]


def reference_records(data: bytes, max_line_bytes: int) -> list[Record]:
    """The records a line source must produce from ``data``, one obvious line at a time."""
    records: list[Record] = []
    offset, line = 0, 1
    while offset < len(data):
        end = data.find(b"\n", offset)
        raw, next_offset = (data[offset:], len(data)) if end < 0 else (data[offset:end], end + 1)
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        position: dict[str, Any] = {"line": line, "offset": offset}
        if len(raw) > max_line_bytes:
            position.update(truncated=True, length=len(raw))
            raw = raw[:max_line_bytes]
        records.append((raw, position))
        offset, line = next_offset, line + 1
    return records


def read_all(source: Source, max_records: int = 1000) -> list[Record]:
    records: list[Record] = []
    while not source.exhausted:
        batch = source.read_batch(max_records, linger_s=0.05, timeout_s=1.0)
        records.extend(zip(batch.payloads, batch.positions, strict=True))
    return records


def pipe_source(data: bytes, **kwargs: Any) -> LineSource:
    """A source over a pipe that already holds ``data`` and whose writer is closed."""
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    return LineSource(read_end, uri="pipe", name="<pipe>", close_fd=True, **kwargs)


def python_producer(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)


@pytest.fixture
def write_file(tmp_path: Path) -> Iterator[Any]:
    def write(data: bytes, name: str = "events.jsonl") -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    yield write


# -- latency and batching over real pipes -----------------------------------------------

SLOW_PRODUCER = """
import os, time
for i in range(5):
    time.sleep(0.3)
    os.write(1, f'{{"i": {i}, "sent": {time.monotonic()!r}}}\\n'.encode())
"""


def test_slow_producer_each_line_comes_out_within_linger() -> None:
    import orjson

    producer = python_producer(SLOW_PRODUCER)
    assert producer.stdout is not None
    source = LineSource(producer.stdout.fileno(), uri="pipe", name="producer")
    latencies = []
    received = []
    while not source.exhausted:
        batch = source.read_batch(max_records=1024, linger_s=0.1, timeout_s=0.5)
        now = time.monotonic()  # CLOCK_MONOTONIC is system-wide on Linux: comparable
        for payload in batch.payloads:
            event = orjson.loads(payload)
            received.append(event["i"])
            latencies.append(now - event["sent"])
    producer.wait(timeout=5)
    assert received == [0, 1, 2, 3, 4]
    assert max(latencies) < 0.25, latencies


def test_fast_producer_fills_batches_to_max_records() -> None:
    producer = python_producer(
        "import os\nos.write(1, b''.join(b'%d\\n' % i for i in range(20000)))"
    )
    assert producer.stdout is not None
    source = LineSource(producer.stdout.fileno(), uri="pipe", name="producer")
    sizes = []
    payloads: list[bytes] = []
    while not source.exhausted:
        batch = source.read_batch(max_records=500, linger_s=0.5, timeout_s=2.0)
        sizes.append(len(batch))
        payloads.extend(batch.payloads)
    producer.wait(timeout=5)
    assert payloads == [b"%d" % i for i in range(20000)]
    # The end of the pipe shows only when read, so the last call may come back empty.
    assert sizes in ([500] * 40, [500] * 40 + [0])


def test_idle_pipe_returns_empty_batch_within_timeout() -> None:
    producer = python_producer("import time\ntime.sleep(3)")
    assert producer.stdout is not None
    source = LineSource(producer.stdout.fileno(), uri="pipe", name="producer")
    try:
        started = time.monotonic()
        batch = source.read_batch(max_records=10, linger_s=0.1, timeout_s=0.2)
        elapsed = time.monotonic() - started
        assert len(batch) == 0 and not source.exhausted
        assert 0.15 < elapsed < 0.5
        started = time.monotonic()
        source.read_batch(max_records=10, linger_s=0.1, timeout_s=0.0)
        assert time.monotonic() - started < 0.1
    finally:
        producer.kill()
        producer.wait()


def test_signal_handler_does_not_extend_the_timeout() -> None:
    """PEP 475 resumes the wait after a handler returns, within the same deadline."""
    producer = python_producer("import time\ntime.sleep(3)")
    assert producer.stdout is not None
    source = LineSource(producer.stdout.fileno(), uri="pipe", name="producer")
    stop = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: stop.append(signum))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        started = time.monotonic()
        batch = source.read_batch(max_records=10, linger_s=0.1, timeout_s=0.3)
        elapsed = time.monotonic() - started
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        producer.kill()
        producer.wait()
    assert stop == [signal.SIGALRM]
    assert len(batch) == 0 and elapsed < 0.6


def test_end_of_pipe_exhausts_after_the_last_batch() -> None:
    producer = python_producer("import os\nos.write(1, b'a\\nb\\nlast')")
    assert producer.stdout is not None
    source = LineSource(producer.stdout.fileno(), uri="pipe", name="producer")
    assert read_all(source) == [
        (b"a", {"line": 1, "offset": 0}),
        (b"b", {"line": 2, "offset": 2}),
        (b"last", {"line": 3, "offset": 4}),
    ]
    assert source.exhausted
    assert source.resume_token() == {"line": 4, "offset": 8}
    assert len(source.read_batch(10, linger_s=0.1, timeout_s=0.1)) == 0
    producer.wait(timeout=5)


# -- line splitting, positions, truncation ---------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n",
        b"a",
        b"a\n",
        b"a\r\nbb\r\n\r\nccc",
        b"\n\nx\n\n",
        b"no newline at the end\r",
        b"r\rin the middle\n",
    ],
)
def test_records_and_positions_match_the_file(write_file: Any, data: bytes) -> None:
    source = FileSource(write_file(data))
    assert read_all(source) == reference_records(data, 1 << 20)
    assert source.resume_token()["offset"] == len(data)


def test_crlf_lines_are_stripped(write_file: Any) -> None:
    source = FileSource(write_file(b'{"x": 1}\r\n{"x": 2}\r\n'))
    batch = source.read_batch(10, linger_s=0.1, timeout_s=1.0)
    assert batch.payloads == [b'{"x": 1}', b'{"x": 2}']
    assert batch.positions == [{"line": 1, "offset": 0}, {"line": 2, "offset": 10}]


@settings(max_examples=300, deadline=None)
@given(
    data=st.text(alphabet="ab\r\n", max_size=200).map(str.encode),
    max_line_bytes=st.integers(1, 6),
    read_size=st.integers(1, 9),
    max_records=st.integers(1, 5),
)
def test_any_content_any_chunking_matches_the_reference(
    data: bytes, max_line_bytes: int, read_size: int, max_records: int
) -> None:
    source = pipe_source(data, max_line_bytes=max_line_bytes, read_size=read_size)
    expected = reference_records(data, max_line_bytes)
    got: list[Record] = []
    while not source.exhausted:
        batch = source.read_batch(max_records, linger_s=1.0, timeout_s=1.0)
        assert len(batch) == max_records or source.exhausted
        got.extend(zip(batch.payloads, batch.positions, strict=True))
        # The token names the next record, or the end of the data.
        following = expected[len(got)][1] if len(got) < len(expected) else None
        token = source.resume_token()
        if following is None:
            assert token == {"line": len(expected) + 1, "offset": len(data)}
        else:
            assert token == {"line": following["line"], "offset": following["offset"]}
    source.close()
    assert got == expected


def test_enormous_line_is_truncated_with_bounded_memory(write_file: Any) -> None:
    max_line_bytes = 64 * 1024
    enormous = b"x" * (10 * 1024 * 1024)
    data = b"first\n" + enormous + b"\r\nnext\n"
    path = write_file(data)
    tracemalloc.start()
    try:
        source = FileSource(path, max_line_bytes=max_line_bytes)
        records = read_all(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del data
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes for a 10 MiB line"
    assert [payload[:5] for payload, _ in records] == [b"first", b"xxxxx", b"next"]
    payload, position = records[1]
    assert len(payload) == max_line_bytes
    assert position == {"line": 2, "offset": 6, "truncated": True, "length": len(enormous)}
    assert records[2] == (b"next", {"line": 3, "offset": 6 + len(enormous) + 2})


def test_enormous_line_through_a_pipe_from_a_process() -> None:
    producer = python_producer(
        "import os\n"
        "os.write(1, b'a\\n')\n"
        "for _ in range(160):\n"
        "    os.write(1, b'y' * 65536)\n"
        "os.write(1, b'\\nb\\n')\n"
    )
    assert producer.stdout is not None
    source = LineSource(producer.stdout.fileno(), uri="pipe", name="producer", max_line_bytes=1000)
    records = read_all(source)
    producer.wait(timeout=10)
    length = 160 * 65536
    assert records == [
        (b"a", {"line": 1, "offset": 0}),
        (b"y" * 1000, {"line": 2, "offset": 2, "truncated": True, "length": length}),
        (b"b", {"line": 3, "offset": 2 + length + 1}),
    ]


def test_unterminated_enormous_last_line(write_file: Any) -> None:
    source = FileSource(write_file(b"a\n" + b"z" * 100), max_line_bytes=10, read_size=7)
    assert read_all(source) == [
        (b"a", {"line": 1, "offset": 0}),
        (b"z" * 10, {"line": 2, "offset": 2, "truncated": True, "length": 100}),
    ]
    assert source.resume_token() == {"line": 3, "offset": 102}


def test_line_of_exactly_max_bytes_is_whole(write_file: Any) -> None:
    source = FileSource(write_file(b"abcd\r\nabcde\n"), max_line_bytes=4, read_size=1)
    assert read_all(source) == [
        (b"abcd", {"line": 1, "offset": 0}),
        (b"abcd", {"line": 2, "offset": 6, "truncated": True, "length": 5}),
    ]


# -- resume ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    data=st.text(alphabet="ab\r\n", max_size=120).map(str.encode),
    split=st.integers(0, 60),
    max_line_bytes=st.integers(1, 5),
    read_size=st.integers(1, 8),
)
def test_resume_at_a_token_yields_exactly_the_remaining_lines(
    data: bytes, split: int, max_line_bytes: int, read_size: int
) -> None:
    expected = reference_records(data, max_line_bytes)
    split = min(split, len(expected))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "events.jsonl"
        path.write_bytes(data)
        before: list[Record] = []
        first = FileSource(path, max_line_bytes=max_line_bytes, read_size=read_size)
        while len(before) < split:
            batch = first.read_batch(split - len(before), linger_s=1.0, timeout_s=1.0)
            before.extend(zip(batch.payloads, batch.positions, strict=True))
        token = first.resume_token()
        first.close()
        second = FileSource(path, max_line_bytes=max_line_bytes, read_size=read_size)
        second.seek(token)
        after = read_all(second)
        second.close()
    assert before + after == expected


def test_seek_then_follow_continues_numbering(write_file: Any) -> None:
    path = write_file(b"a\nb\nc\n")
    source = FileSource(path, follow=True)
    source.seek({"line": 3, "offset": 4})
    batch = source.read_batch(10, linger_s=0.05, timeout_s=0.5)
    assert batch.payloads == [b"c"] and batch.positions == [{"line": 3, "offset": 4}]
    source.close()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ({"line": 9, "offset": 100}, "has only 6 bytes"),
        ({"line": 2, "offset": 1}, "not the start of a line"),
        ({"line": 0, "offset": 0}, "not a line position"),
        ({"line": 2, "offset": 0}, "not a line position"),
        ({"line": True, "offset": 2}, "not a line position"),
        ({"offset": 2}, "not a line position"),
    ],
)
def test_bad_resume_token_names_the_file(write_file: Any, token: Any, message: str) -> None:
    path = write_file(b"a\nb\nc\n")
    source = FileSource(path)
    with pytest.raises(InputError, match=message) as caught:
        source.seek(token)
    assert caught.value.source == str(path)
    assert str(path) in str(caught.value)


def test_token_at_the_end_of_an_unterminated_file_is_accepted(write_file: Any) -> None:
    source = FileSource(write_file(b"a\nbc"))
    source.seek({"line": 3, "offset": 4})
    assert read_all(source) == [] and source.exhausted


def test_stdin_can_only_resume_at_the_start() -> None:
    source = StdinSource()
    source.seek({"line": 1, "offset": 0})
    with pytest.raises(InputError, match="stdin cannot resume"):
        source.seek({"line": 3, "offset": 10})
    source.close()


# -- follow mode -----------------------------------------------------------------------


def test_follow_picks_up_appended_lines(write_file: Any) -> None:
    path = write_file(b"one\ntwo\n")
    source = FileSource(path, follow=True, poll_interval_s=0.02)
    assert source.read_batch(10, linger_s=0.05, timeout_s=0.5).payloads == [b"one", b"two"]
    started = time.monotonic()
    assert len(source.read_batch(10, linger_s=0.05, timeout_s=0.2)) == 0
    assert time.monotonic() - started < 0.5
    assert not source.exhausted
    with path.open("ab") as appender:
        appender.write(b"three\nfou")  # a writer half-way through a line
    batch = source.read_batch(10, linger_s=0.05, timeout_s=0.5)
    assert batch.payloads == [b"three"]
    assert len(source.read_batch(10, linger_s=0.05, timeout_s=0.1)) == 0
    with path.open("ab") as appender:
        appender.write(b"r\r\n")
    batch = source.read_batch(10, linger_s=0.05, timeout_s=0.5)
    assert batch.payloads == [b"four"]
    assert batch.positions == [{"line": 4, "offset": 14}]
    assert source.resume_token() == {"line": 5, "offset": 20}
    assert not source.exhausted
    source.close()


def test_follow_sees_a_slowly_growing_file_promptly(write_file: Any) -> None:
    path = write_file(b"")
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "with open(sys.argv[1], 'ab', buffering=0) as f:\n"
            "    for i in range(4):\n"
            "        time.sleep(0.2)\n"
            "        f.write(b'%r\\n' % time.monotonic())\n",
            str(path),
        ]
    )
    source = FileSource(path, follow=True, poll_interval_s=0.02)
    latencies: list[float] = []
    deadline = time.monotonic() + 5
    while len(latencies) < 4 and time.monotonic() < deadline:
        batch = source.read_batch(10, linger_s=0.05, timeout_s=0.2)
        now = time.monotonic()
        latencies.extend(now - float(payload) for payload in batch.payloads)
    writer.wait(timeout=5)
    assert len(latencies) == 4
    assert max(latencies) < 0.25, latencies


def test_follow_reports_a_truncated_file(write_file: Any) -> None:
    path = write_file(b"one\ntwo\n")
    source = FileSource(path, follow=True, poll_interval_s=0.02)
    source.read_batch(10, linger_s=0.05, timeout_s=0.5)
    path.write_bytes(b"")
    with pytest.raises(InputError, match="shrank"):
        source.read_batch(10, linger_s=0.05, timeout_s=0.5)


def test_not_followed_file_stops_at_the_end(write_file: Any) -> None:
    path = write_file(b"one\n")
    source = FileSource(path)
    assert read_all(source) == [(b"one", {"line": 1, "offset": 0})]
    with path.open("ab") as appender:
        appender.write(b"late\n")
    assert source.exhausted
    assert len(source.read_batch(10, linger_s=0.05, timeout_s=0.1)) == 0


# -- opening by URI --------------------------------------------------------------------


def test_open_source_forms(write_file: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_file(b"a\n", name="data.csv")
    monkeypatch.chdir(path.parent)
    assert isinstance(open_source("-"), StdinSource)
    assert isinstance(open_source("stdin"), StdinSource)
    for uri in ("file:data.csv", "file://data.csv", f"file:{path}", f"file://{path}"):
        source = open_source(uri)
        assert isinstance(source, FileSource)
        assert source.uri == uri and source.format_hint == "csv" and not source.follow
        assert read_all(source) == [(b"a", {"line": 1, "offset": 0})]
        source.close()
    for uri in ("file:data.csv?follow=true", "file:data.csv?follow", "file:data.csv?follow=1"):
        source = open_source(uri)
        assert isinstance(source, FileSource) and source.follow
        source.close()
    source = open_source("file:data.csv?follow=false", max_line_bytes=7)
    assert isinstance(source, FileSource)
    assert not source.follow and source.max_line_bytes == 7
    source.close()


@pytest.mark.parametrize(
    ("name", "hint"),
    [("a.csv", "csv"), ("a.jsonl", "json"), ("a.ndjson", "json"), ("a.JSON", "json"), ("a", None)],
)
def test_format_hint(write_file: Any, name: str, hint: str | None) -> None:
    source = open_source(f"file:{write_file(b'', name=name)}")
    assert isinstance(source, LineSource) and source.format_hint == hint
    source.close()
    stdin = open_source("-")
    assert isinstance(stdin, LineSource) and stdin.format_hint is None


@pytest.mark.parametrize(
    ("uri", "fragments"),
    [
        (
            "prometheus://host:9100/metrics?every=often",
            ["every=DURATION with a duration of at least 0.05 s"],
        ),
        ("prometheus://host:9100/metrics?match=(", ["match=REGEX with a valid regex"]),
        ("promql://host:9090", ["promql://HOST:PORT?query=EXPR"]),
        # Taken as written, these scraped another port (99999 is 34463 to the socket),
        # failed at every scrape ("name or service not known"), or (key=) left every
        # series out, as if none had the label.
        ("prometheus://host:99999/metrics", ["a port from 1 to 65535 (not 'host:99999')"]),
        ("prometheus://host:0x10/metrics", ["a port from 1 to 65535"]),
        ("prometheus://u:pw@host:9100/metrics", ["without credentials before the host"]),
        ("promql://host:65536?query=up", ["a port from 1 to 65535 (not 'host:65536')"]),
        ("alertmanager-silences://host:-1", ["a port from 1 to 65535"]),
        ("prometheus://host:9100/metrics?key=", ["key=LABEL with a label name"]),
        ("promql://host:9090?query=up&key=a-b", ["key=LABEL with a label name"]),
        ("prometheus://host:9100/metrics?key=timestamp", ["not timestamp"]),
        ("kafka://broker:9092/", ["kafka://HOST:PORT[,HOST:PORT]/TOPIC"]),
        ("kafka://broker:99999/t", ["a port from 1 to 65535 (not 'broker:99999')"]),
        ("http://example.com/x", ["one of: '-' (stdin), 'file:PATH[?follow=true]'"]),
        ("events.jsonl", ["to read a file, write file:PATH"]),
        ("file:x.jsonl?folow=true", ["unknown: 'folow'", "follow"]),
        ("file:x.jsonl?follow=maybe", ["follow=true or follow=false"]),
        ("file:x.jsonl?follow=1&follow=0", ["'follow' at most once"]),
        ("file:x.jsonl?=1", ["name=value"]),
        ("file:", ["non-empty path"]),
        ("-?follow=true", ["file:PATH"]),
    ],
)
def test_bad_uris_are_config_errors(uri: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        open_source(uri, config_key="labels")
    assert caught.value.key == "labels" and caught.value.value == uri
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_a_source_of_labels_only_is_refused_as_the_event_source() -> None:
    # Silences polled as --source made every label a dead letter (no features), or
    # waited on an unreachable Alertmanager, and the run ended 0 having scored nothing.
    uri = "alertmanager-silences://127.0.0.1:9093"
    with pytest.raises(ConfigError) as caught:
        open_source(uri)
    assert caught.value.key == "source" and caught.value.value == uri
    message = str(caught.value)
    assert "gives feedback labels, not events: name it with --labels" in message, message
    assert "'kafka://" in message and "'alertmanager-silences://HOST:PORT[/PREFIX]'" not in message
    labels = open_source(uri, config_key="labels")
    labels.close()


def test_missing_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(InputError, match="no such file") as caught:
        open_source(f"file:{missing}")
    assert caught.value.source == str(missing)
    with pytest.raises(InputError, match="is a directory"):
        open_source(f"file:{tmp_path}")


def test_parse_uri_parts() -> None:
    parsed = parse_uri("kafka://broker:9092/events?group=g&from=%2Fx", config_key="source")
    assert (parsed.scheme, parsed.target) == ("kafka", "broker:9092/events")
    assert dict(parsed.params) == {"group": "g", "from": "/x"}
    assert parse_uri("FILE:/a/b").scheme == "file"


def test_a_file_path_holding_a_question_mark_is_written_with_percent_3f(tmp_path: Path) -> None:
    path = tmp_path / "what?%41.jsonl"
    path.write_bytes(b'{"x": 1}\n')
    # `?` starts the query, so the path writes it %3F; `%` before two hex digits is %25.
    uri = f"file:{tmp_path}/what%3F%2541.jsonl?follow=false"
    parsed = parse_uri(uri)
    assert (parsed.target, dict(parsed.params)) == (str(path), {"follow": "false"})
    assert parse_uri(file_uri(str(path))).target == str(path)
    source = open_source(uri)
    assert source.read_batch(10, linger_s=0.0, timeout_s=1.0).payloads == [b'{"x": 1}']
    source.close()
    # Elsewhere than in a file: path, an escape is left as written (a Kafka topic, a URL).
    assert parse_uri("kafka://b:9092/a%3Fb").target == "b:9092/a%3Fb"


def test_read_after_close_and_bad_arguments(write_file: Any) -> None:
    source = FileSource(write_file(b"a\n"))
    with pytest.raises(ConfigError, match="max_records"):
        source.read_batch(0, linger_s=0.1, timeout_s=0.1)
    source.close()
    source.close()
    with pytest.raises(InputError, match="closed"):
        source.read_batch(1, linger_s=0.1, timeout_s=0.1)


def test_read_batch_returns_a_raw_batch(write_file: Any) -> None:
    batch = FileSource(write_file(b"a\n")).read_batch(1, linger_s=0.0, timeout_s=0.0)
    assert isinstance(batch, RawBatch) and batch.payloads == [b"a"]


# -- bounded buffer --------------------------------------------------------------------


def test_returned_records_are_not_kept_over_a_long_stream(write_file: Any) -> None:
    # Lines of 10 bytes read 4000 bytes at a time give exactly 400 records per read;
    # full batches of 997 (prime; a file never makes read_batch linger) then never end
    # where a read ended, so the buffer is never empty after a batch and only dropping
    # returned records keeps it small.
    count, lines_per_read, max_records = 100_000, 400, 997
    data = b"".join(b"%09d\n" % i for i in range(count))
    expected = reference_records(data, DEFAULT_MAX_LINE_BYTES)
    source = FileSource(write_file(data), read_size=10 * lines_per_read)
    records: list[Record] = []
    largest_held = 0
    while not source.exhausted:
        batch = source.read_batch(max_records, linger_s=1.0, timeout_s=1.0)
        assert len(batch) == max_records or source.exhausted
        records.extend(zip(batch.payloads, batch.positions, strict=True))
        # Internal lists: what the source holds, returned or not.
        largest_held = max(largest_held, len(source._payloads), len(source._offsets))
        following = expected[len(records)][1] if len(records) < count else None
        assert source.resume_token() == (following or {"line": count + 1, "offset": len(data)})
    assert records == expected
    assert largest_held <= 2 * (max_records + lines_per_read)


# -- take_buffered ---------------------------------------------------------------------


def test_take_buffered_drains_parsed_lines_without_waiting() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"a\nbb\nc\nd\npartial")  # the writer stays open: no end
    source = LineSource(read_end, uri="pipe", name="<pipe>", close_fd=True)
    try:
        assert source.read_batch(2, linger_s=0.0, timeout_s=1.0).payloads == [b"a", b"bb"]
        started = time.monotonic()
        first = source.take_buffered(1)
        assert (first.payloads, first.positions) == ([b"c"], [{"line": 3, "offset": 5}])
        assert source.resume_token() == {"line": 4, "offset": 7}
        rest = source.take_buffered(10)
        assert (rest.payloads, rest.positions) == ([b"d"], [{"line": 4, "offset": 7}])
        assert source.resume_token() == {"line": 5, "offset": 9}
        # The unterminated line is not a record yet, and the open pipe is not waited on.
        assert len(source.take_buffered(10)) == 0
        assert time.monotonic() - started < 0.5
        assert not source.exhausted
        # Nothing was lost: the line completes later and comes out of read_batch.
        os.write(write_end, b"\n")
        os.close(write_end)
        last = source.read_batch(10, linger_s=0.0, timeout_s=1.0)
        assert (last.payloads, last.positions) == ([b"partial"], [{"line": 5, "offset": 9}])
    finally:
        source.close()


def test_take_buffered_never_reads(write_file: Any) -> None:
    source = FileSource(write_file(b"a\nb\n"))
    assert len(source.take_buffered(10)) == 0
    assert source.resume_token() == {"line": 1, "offset": 0}
    assert read_all(source) == [(b"a", {"line": 1, "offset": 0}), (b"b", {"line": 2, "offset": 2})]
    assert len(source.take_buffered(10)) == 0
    with pytest.raises(ConfigError, match="max_records"):
        source.take_buffered(0)
    source.close()
    with pytest.raises(InputError, match="closed"):
        source.take_buffered(1)


@settings(max_examples=200, deadline=None)
@given(
    data=st.text(alphabet="ab\r\n", max_size=200).map(str.encode),
    read_size=st.integers(1, 9),
    steps=st.lists(st.tuples(st.booleans(), st.integers(1, 5)), min_size=1, max_size=20),
)
def test_read_batch_and_take_buffered_interleaved_match_the_reference(
    data: bytes, read_size: int, steps: list[tuple[bool, int]]
) -> None:
    source = pipe_source(data, max_line_bytes=4, read_size=read_size)
    expected = reference_records(data, 4)
    got: list[Record] = []
    steps = [*steps, (False, 1)]  # take_buffered alone never reads, so never reaches the end
    step = 0
    while not source.exhausted:
        drain, max_records = steps[step % len(steps)]
        step += 1
        if drain:
            batch = source.take_buffered(max_records)
        else:
            batch = source.read_batch(max_records, linger_s=1.0, timeout_s=1.0)
        assert len(batch) <= max_records
        got.extend(zip(batch.payloads, batch.positions, strict=True))
        if len(got) < len(expected):
            following = expected[len(got)][1]
            assert source.resume_token() == {
                "line": following["line"],
                "offset": following["offset"],
            }
        else:
            assert source.resume_token() == {"line": len(expected) + 1, "offset": len(data)}
    source.close()
    assert got == expected


class MinimalSource(Source):
    """Implements only the abstract methods, to see the base class's defaults."""

    @property
    def exhausted(self) -> bool:
        return True

    def read_batch(self, max_records: int, linger_s: float, timeout_s: float) -> RawBatch:
        return RawBatch()

    def resume_token(self) -> dict[str, Any]:
        return {}


def test_base_source_defaults() -> None:
    source = MinimalSource()
    assert source.resumable is False and source.format_hint is None
    batch = source.take_buffered(10)
    assert isinstance(batch, RawBatch) and len(batch) == 0


def test_resumable_says_whether_seek_can_continue(write_file: Any) -> None:
    regular = FileSource(write_file(b"a\nb\n"))
    assert regular.resumable is True
    regular.seek({"line": 2, "offset": 2})
    regular.close()
    device = FileSource(os.devnull)
    assert device.resumable is False
    with pytest.raises(InputError, match="not a regular file"):
        device.seek({"line": 2, "offset": 2})
    device.close()
    stdin = StdinSource()
    assert stdin.resumable is False
    stdin.close()
    assert pipe_source(b"").resumable is False


# -- closed stdin ----------------------------------------------------------------------

CLOSED_STDIN_READER = """
import os, sys
from stream_detect.errors import InputError
from stream_detect.sources import open_source
try:
    os.fstat(0)
except OSError:
    pass
else:
    sys.exit("stdin should be closed")
try:
    open_source("-")
except InputError as error:
    print(f"{error.source}|{error}")
"""


def test_closed_stdin_is_an_input_error() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CLOSED_STDIN_READER],
        capture_output=True,
        timeout=30,
        check=False,
        # Like `stream-detect run <&-`: descriptor 0 not open at all (DEVNULL would be open).
        preexec_fn=lambda: os.close(0),
    )
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert "Traceback" not in stderr
    source, message = result.stdout.decode().strip().split("|")
    assert source == "<stdin>"
    assert message.startswith("<stdin>: stdin is closed")
    assert "file:PATH" in message
