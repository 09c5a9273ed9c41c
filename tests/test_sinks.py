"""JSON-lines sinks: files, stdout and stderr through real processes, broken pipes, URIs."""

from __future__ import annotations

import errno
import math
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import orjson
import pytest

from stream_detect.errors import ConfigError, OutputError, StreamDetectError, WriteInterrupted
from stream_detect.sinks import (
    FileSink,
    JsonLinesSink,
    StderrSink,
    StdoutSink,
    encode_json_line,
    open_sink,
)

RUN = [sys.executable, "-m", "stream_detect", "run"]


def lines_of(path: Path) -> list[Any]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, timeout=30, check=False
    )


# -- files -----------------------------------------------------------------------------


def test_file_sink_appends_and_flush_hands_data_to_the_os(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b'{"old":true}\n')
    sink = open_sink(f"file:{path}")
    assert isinstance(sink, FileSink)
    sink.write_batch([{"i": 1}, {"i": 2}])
    assert path.read_bytes() == b'{"old":true}\n'  # buffered until flush
    sink.flush()
    assert lines_of(path) == [{"old": True}, {"i": 1}, {"i": 2}]
    sink.write_batch([{"i": 3}])
    sink.close()  # close flushes
    sink.close()
    again = FileSink(path)
    again.write_batch([{"i": 4}])
    again.close()
    assert lines_of(path) == [{"old": True}, {"i": 1}, {"i": 2}, {"i": 3}, {"i": 4}]
    with pytest.raises(ValueError, match="closed"):
        again.write_batch([{"i": 5}])


def test_large_batches_are_written_before_flush(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    sink = FileSink(path, buffer_bytes=100)
    sink.write_batch([{"i": i} for i in range(50)])
    assert len(lines_of(path)) == 50
    sink.close()


def test_values_json_cannot_hold(tmp_path: Path) -> None:
    record = {
        "f32": np.float32(0.5),
        "i64": np.int64(7),
        "flag": np.bool_(True),
        "vector": np.arange(3.0),
        "nan": math.nan,
        "inf": np.float64(np.inf),
        "raw": b'{"x": \xff}',
    }
    assert orjson.loads(encode_json_line(record)) == {
        "f32": 0.5,
        "i64": 7,
        "flag": True,
        "vector": [0.0, 1.0, 2.0],
        "nan": None,
        "inf": None,
        "raw": '{"x": \\xff}',
    }
    assert encode_json_line(MappingProxyType({"a": 1})) == b'{"a":1}\n'
    path = tmp_path / "out.jsonl"
    sink = FileSink(path)
    with pytest.raises(TypeError):
        sink.write_batch([{"ok": 1}, {"bad": object()}])
    sink.write_batch([{"ok": 2}])
    sink.close()
    assert lines_of(path) == [{"ok": 2}]  # the failed batch was not half-queued


def test_fsync_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    plain = open_sink(f"file:{tmp_path / 'a.jsonl'}")
    durable = open_sink(f"file:{tmp_path / 'b.jsonl'}?fsync=true")
    assert isinstance(durable, FileSink) and durable.fsync
    for sink in (plain, durable):
        sink.write_batch([{"x": 1}])
        sink.flush()
        sink.close()
    assert len(synced) == 1  # the durable sink's flush; its close had nothing new to sync


def test_fsync_only_after_something_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    sink = FileSink(tmp_path / "alerts.jsonl", fsync=True, buffer_bytes=1 << 20)
    sink.flush()  # nothing written yet
    assert synced == []
    sink.write_batch([])
    sink.flush()  # an empty batch writes nothing
    assert synced == []
    sink.write_batch([{"x": 1}])
    sink.flush()
    assert len(synced) == 1
    sink.flush()
    sink.flush()
    assert len(synced) == 1
    sink.buffer_bytes = 1  # the next batch is written by write_batch itself
    sink.write_batch([{"x": 2}])
    assert len(synced) == 1
    sink.flush()  # nothing was buffered, but bytes were written since the last fsync
    assert len(synced) == 2
    sink.close()
    assert len(synced) == 2
    assert lines_of(tmp_path / "alerts.jsonl") == [{"x": 1}, {"x": 2}]


# -- output errors ---------------------------------------------------------------------

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")


@needs_dev_full
def test_full_device_is_an_output_error_naming_it() -> None:
    sink = open_sink("file:/dev/full")
    sink.write_batch([{"x": 1}])
    with pytest.raises(OutputError) as caught:
        sink.flush()
    error = caught.value
    assert isinstance(error, StreamDetectError) and not isinstance(error, OSError)
    assert str(error) == "cannot write to /dev/full: No space left on device"
    assert (error.destination, error.action, error.errno) == ("/dev/full", "write to", errno.ENOSPC)
    assert isinstance(error.__cause__, OSError)
    # The sink stays failed: later calls say so again instead of losing records quietly.
    with pytest.raises(OutputError, match="No space left on device"):
        sink.write_batch([{"x": 2}])
    with pytest.raises(OutputError, match="No space left on device"):
        sink.flush()
    sink.close()  # already reported: releases quietly
    sink.close()


@needs_dev_full
def test_full_device_seen_by_write_batch_or_close() -> None:
    eager = FileSink("/dev/full", buffer_bytes=1)
    with pytest.raises(OutputError, match=r"^cannot write to /dev/full: "):
        eager.write_batch([{"x": 1}])
    eager.close()
    lazy = FileSink("/dev/full")
    lazy.write_batch([{"x": 1}])
    with pytest.raises(OutputError, match=r"^cannot write to /dev/full: "):
        lazy.close()
    lazy.close()


@needs_dev_full
def test_output_error_names_a_stream_sink_by_its_name() -> None:
    fd = os.open("/dev/full", os.O_WRONLY)
    sink = JsonLinesSink(fd, uri="-", name="stdout", close_fd=True)
    sink.write_batch([{"x": 1}])
    with pytest.raises(OutputError, match=r"^cannot write to stdout: No space left on device$"):
        sink.flush()
    sink.close()


def test_failed_fsync_is_an_output_error() -> None:
    read_end, write_end = os.pipe()
    # A pipe cannot be fsynced (EINVAL), which stands in for a disk that fails it.
    sink = JsonLinesSink(write_end, uri="pipe", name="pipe", close_fd=True, fsync=True)
    try:
        sink.write_batch([{"x": 1}])
        with pytest.raises(OutputError) as caught:
            sink.flush()
        assert caught.value.action == "fsync"
        assert str(caught.value) == f"cannot fsync pipe: {os.strerror(errno.EINVAL)}"
        sink.close()
    finally:
        os.close(read_end)


def test_broken_pipe_is_not_an_output_error() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    sink = JsonLinesSink(write_end, uri="pipe", name="pipe", close_fd=True)
    sink.write_batch([{"x": 1}])
    with pytest.raises(OSError) as caught:
        sink.flush()
    assert type(caught.value) is BrokenPipeError
    sink.close()


def test_missing_directory_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    with pytest.raises(ConfigError) as caught:
        open_sink(f"file:{missing / 'alerts.jsonl'}", config_key="dead_letter")
    assert caught.value.key == "dead_letter"
    assert str(missing) in str(caught.value) and "does not exist" in str(caught.value)
    assert not missing.exists()
    with pytest.raises(ConfigError, match="is a directory"):
        open_sink(f"file:{tmp_path}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write a read-only file")
def test_unwritable_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "ro.jsonl"
    path.write_bytes(b"")
    path.chmod(0o444)
    with pytest.raises(ConfigError, match="Permission denied"):
        open_sink(f"file:{path}")


# -- standard streams through real processes -------------------------------------------

WRITER = """
import sys
from stream_detect.sinks import open_sink
sink = open_sink(sys.argv[1])
for start in range(0, 1000, 100):
    sink.write_batch([{"i": i, "half": i / 2} for i in range(start, start + 100)])
    sink.flush()
sink.close()
"""

CONSUMER = """
import sys, orjson
rows = [orjson.loads(line) for line in sys.stdin.buffer]
assert [row["i"] for row in rows] == list(range(1000)), rows[:3]
print(len(rows), sum(row["half"] for row in rows))
"""


def test_stdout_sink_feeds_a_consumer_process() -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert writer.stdout is not None
    consumer = subprocess.run(
        [sys.executable, "-c", CONSUMER],
        stdin=writer.stdout,
        capture_output=True,
        timeout=30,
        check=False,
    )
    writer.stdout.close()
    assert writer.wait(timeout=30) == 0
    assert consumer.returncode == 0, consumer.stderr.decode()
    assert consumer.stdout.split() == [b"1000", b"249750.0"]


def test_stderr_sink_writes_json_lines() -> None:
    result = run_python(WRITER, "stderr")
    assert result.returncode == 0
    assert result.stdout == b""
    rows = [orjson.loads(line) for line in result.stderr.splitlines()]
    assert [row["i"] for row in rows] == list(range(1000))


BROKEN_PIPE_WRITER = """
import sys
from stream_detect.sinks import open_sink
sink = open_sink("-")
written = 0
try:
    while True:
        sink.write_batch([{"i": written, "pad": "x" * 100}])
        sink.flush()
        written += 1
except BrokenPipeError:
    pass
assert sink.broken
for again in (lambda: sink.write_batch([{"i": -1}]), sink.flush):
    try:
        again()
    except BrokenPipeError:
        pass
    else:
        raise AssertionError("a broken sink must keep saying so")
sink.close()  # already reported: releases quietly
sys.stderr.write(f"stopped cleanly after {written} batches\\n")
"""


def test_broken_pipe_is_an_exception_not_a_traceback() -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", BROKEN_PIPE_WRITER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert writer.stdout is not None and writer.stderr is not None
    first = writer.stdout.readline()
    assert orjson.loads(first)["i"] == 0
    writer.stdout.close()  # the consumer goes away, like `| head -1`
    stderr = writer.stderr.read().decode()
    assert writer.wait(timeout=30) == 0, stderr
    assert "stopped cleanly" in stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr


def test_broken_pipe_in_process() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    sink = JsonLinesSink(write_end, uri="pipe", name="pipe", close_fd=True)
    sink.write_batch([{"x": 1}])
    with pytest.raises(BrokenPipeError):
        sink.flush()
    assert sink.broken
    with pytest.raises(BrokenPipeError):
        sink.write_batch([{"x": 2}])
    sink.close()


def test_broken_pipe_first_seen_in_close_is_raised() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    sink = JsonLinesSink(write_end, uri="pipe", name="pipe", close_fd=True)
    sink.write_batch([{"x": 1}])
    with pytest.raises(BrokenPipeError):
        sink.close()
    sink.close()


# -- named pipes -----------------------------------------------------------------------


def test_a_named_pipe_whose_reader_goes_away_ends_the_run(tmp_path: Path) -> None:
    # The sink opened the pipe for reading too, so it was a reader itself: the pipe
    # never broke, and once it was full the run waited for ever.
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(b'{"x": %d}\n' % (i % 7) for i in range(5000)))
    fifo = tmp_path / "results"
    os.mkfifo(fifo)
    with subprocess.Popen(["head", "-c", "100", str(fifo)], stdout=subprocess.DEVNULL) as reader:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "stream_detect",
                "run",
                "--source",
                f"file:{events}",
                "--sink",
                f"file:{fifo}",
                "--emit",
                "all",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert reader.wait(timeout=30) == 0
    stderr = run.stderr.decode()
    assert run.returncode == 0 and "Traceback" not in stderr, stderr[-2000:]
    assert orjson.loads(stderr.splitlines()[-1])["summary"]["stopped_by"] == "output closed"


def test_results_for_a_named_pipe_nobody_opened_are_not_delivered_silently(
    tmp_path: Path,
) -> None:
    # They went into the pipe's buffer, freed unread when the run closed it.
    fifo = tmp_path / "results"
    os.mkfifo(fifo)
    sink = FileSink(fifo)
    stop = threading.Event()
    sink.interrupt_on(stop)
    sink.write_batch([{"x": 1}])
    stop.set()  # a stop request while waiting for a reader
    with pytest.raises(WriteInterrupted):
        sink.close()


def test_a_named_pipe_is_written_once_its_reader_comes(tmp_path: Path) -> None:
    fifo = tmp_path / "results"
    os.mkfifo(fifo)
    sink = FileSink(fifo)
    sink.write_batch([{"x": i} for i in range(3)])
    with subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE) as reader:
        sink.close()
        out, _ = reader.communicate(timeout=30)
    assert [orjson.loads(line) for line in out.splitlines()] == [{"x": 0}, {"x": 1}, {"x": 2}]


# -- opening by URI --------------------------------------------------------------------


def test_open_sink_forms() -> None:
    assert isinstance(open_sink("-"), StdoutSink)
    assert isinstance(open_sink("stdout"), StdoutSink)
    assert isinstance(open_sink("stderr"), StderrSink)
    assert open_sink("stderr").uri == "stderr"


@pytest.mark.parametrize(
    ("uri", "fragments"),
    [
        # Every request adds /api/v2/... itself: the path is only a route prefix.
        (
            "alertmanager://host:9093/api",
            ["only what comes before /api", "alertmanager://host:9093"],
        ),
        ("alertmanager://host:9093/am/api/v2/", ["before /api", ": alertmanager://host:9093/am"]),
        # Taken as written, these posted to another port (99999 is 34463 to the
        # socket), or failed at every attempt.
        ("alertmanager://host:99999", ["a port from 1 to 65535 (not 'host:99999')"]),
        ("alertmanager://host:", ["a port from 1 to 65535 (not 'host:')"]),
        ("alertmanager://admin:secret@host:9093", ["without credentials before the host"]),
        (
            "alertmanager://host:9093?resend=soon",
            ["resend=DURATION with a duration of at least 0.01 s"],
        ),
        ("kafka://broker:9092/a,b", ["exactly one topic"]),
        ("alerts.jsonl", ["to write a file, write file:PATH"]),
        ("smtp://mail", ["one of: '-' (stdout), 'stderr', 'file:PATH[?fsync=true]'"]),
        ("file:a.jsonl?mode=w", ["unknown: 'mode'"]),
        ("file:a.jsonl?fsync=sometimes", ["fsync=true or fsync=false"]),
        ("stderr?x=1", ["one of:"]),
        ("file:", ["non-empty path"]),
    ],
)
def test_bad_sink_uris_are_config_errors(uri: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        open_sink(uri)
    assert caught.value.key == "sink" and caught.value.value == uri
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_dead_letters_to_an_alerts_only_sink_are_refused_with_one_line(tmp_path: Path) -> None:
    # Alertmanager's sink keeps alerting records only: dead letters sent there were
    # dropped without a word, and the run ended 0 as if they had been delivered.
    events = tmp_path / "events.jsonl"
    events.write_bytes(b'{"x": 1}\nnot json\n{"x": 2}\n')
    run = subprocess.run(
        [*RUN, "--source", f"file:{events}", "--dead-letter", "alertmanager://127.0.0.1:9093"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    (line,) = run.stderr.decode().splitlines()
    assert run.returncode == 2 and line.startswith("stream-detect run: error: option --dead-letter")
    assert "takes alerts only" in line and "'stderr'" in line, line
    assert run.stdout == b""


@pytest.mark.parametrize("uri", ["stderr", "file:/dev/stderr"])
def test_a_sink_on_stderr_s_file_waits_for_the_stderr_lock(uri: str) -> None:
    # Other threads write their lines to stderr holding the lock; a dead-letter sink
    # on /dev/stderr opened a descriptor of its own and wrote regardless, so a line
    # could land inside its batch.
    from stream_detect.stderr_lines import STDERR_LOCK

    sink = open_sink(uri, config_key="dead_letter")
    done = threading.Event()

    def write() -> None:
        sink.write_batch([{"reason": "x"}])
        sink.flush()
        done.set()

    writer = threading.Thread(target=write)
    with STDERR_LOCK:
        writer.start()
        assert not done.wait(1.0)  # held up by the lock, not written meanwhile
    writer.join(10)
    assert done.is_set()
    # The lock's holder may be stuck on the same stalled pipe: a stop ends the wait.
    stop = threading.Event()
    sink.interrupt_on(stop)
    failed: list[BaseException] = []

    def write_and_fail() -> None:
        try:
            sink.write_batch([{"reason": "y"}])
            sink.flush()
        except WriteInterrupted as error:
            failed.append(error)

    writer = threading.Thread(target=write_and_fail)
    with STDERR_LOCK:
        writer.start()
        stop.set()
        writer.join(10)
    assert [type(error) for error in failed] == [WriteInterrupted]
