"""A named pipe as ``--source file:PATH``: a stop request is honoured before any writer comes.

Opening a named pipe for reading waits for a writer; done in a blocking
``open()``, a run could not see SIGTERM until someone wrote. These tests use
real named pipes and, for the command line, real ``stream-detect run``
processes. Waits are bounded only to keep a hang from blocking the suite.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from stream_detect.sources.files import FileSource

REPO = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "stream_detect", "run"]
#: Far above what any step needs; only a run that waits for a writer reaches it.
HANG_S = 20.0

pytestmark = pytest.mark.skipif(
    not hasattr(os, "mkfifo") or not Path("/proc/self/status").exists(),
    reason="needs named pipes and /proc (Linux)",
)


def catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler installed for ``signum`` (/proc's SigCgt mask)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def holds_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open."""
    folder = Path(f"/proc/{pid}/fd")
    for entry in folder.iterdir():
        try:
            if os.readlink(entry) == str(path):
                return True
        except OSError:
            continue
    return False


def wait_until(condition: Any, timeout_s: float = HANG_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def open_writer(fifo: Path) -> int:
    """The writing end of ``fifo``, once a reader has it open (ENXIO until then)."""
    deadline = time.monotonic() + HANG_S
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
            continue
        os.set_blocking(fd, True)
        return fd


def summary_of(stderr: bytes) -> dict[str, Any]:
    lines = [line for line in stderr.splitlines() if line.startswith(b'{"summary"')]
    assert lines, f"no summary on stderr: {stderr[-2000:]!r}"
    summary: dict[str, Any] = json.loads(lines[-1])["summary"]
    return summary


def events(count: int) -> bytes:
    return b"".join(json.dumps({"a": i % 7 + 0.5, "seq": i}).encode() + b"\n" for i in range(count))


# -- the source itself ----------------------------------------------------------------------------


def test_a_fifo_opens_at_once_and_reads_nothing_until_a_writer_comes(tmp_path: Path) -> None:
    fifo = tmp_path / "events.jsonl"
    os.mkfifo(fifo)
    opened: list[FileSource] = []
    # In a thread, so that a blocking open() fails the test instead of hanging it.
    opener = threading.Thread(target=lambda: opened.append(FileSource(fifo)), daemon=True)
    opener.start()
    opener.join(HANG_S)
    if opener.is_alive():
        os.close(os.open(fifo, os.O_WRONLY))  # let the blocked open() return
        opener.join(HANG_S)
        pytest.fail("opening a named pipe waited for a writer")
    source = opened[0]
    try:
        assert not source.resumable
        # No writer yet: an empty batch after the timeout, and not the end of the stream.
        for _ in range(3):
            batch = source.read_batch(10, linger_s=0.0, timeout_s=0.05)
            assert len(batch) == 0 and not source.exhausted
        writer = open_writer(fifo)
        # A writer that has connected and written nothing yet is not the end either.
        assert len(source.read_batch(10, linger_s=0.0, timeout_s=0.05)) == 0
        assert not source.exhausted
        os.write(writer, b'{"x": 1}\n{"x": 2}\n')
        os.close(writer)
        payloads: list[bytes] = []
        deadline = time.monotonic() + HANG_S
        while not source.exhausted and time.monotonic() < deadline:
            payloads.extend(source.read_batch(10, linger_s=0.0, timeout_s=0.1).payloads)
        # The writer closing its end is the end of the stream, as with a blocking open.
        assert payloads == [b'{"x": 1}', b'{"x": 2}'] and source.exhausted
    finally:
        source.close()


# -- the command line -----------------------------------------------------------------------------


def run_on_a_fifo(
    tmp_path: Path, started: list[subprocess.Popen[bytes]], stdout: int, *flags: str
) -> tuple[Path, Path, subprocess.Popen[bytes]]:
    """A new named pipe, and a run reading it (stderr to a file): the pipe, that file, the run."""
    fifo = tmp_path / "events.jsonl"
    os.mkfifo(fifo)
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as errors:
        proc = subprocess.Popen(
            [*RUN, "--source", f"file:{fifo}", "--features", "a", *flags],
            cwd=REPO,
            stdout=stdout,
            stderr=errors,
        )
    started.append(proc)
    return fifo, stderr, proc


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_a_run_whose_fifo_has_no_writer(
    tmp_path: Path, started: list[subprocess.Popen[bytes]], signum: int
) -> None:
    fifo, stderr, proc = run_on_a_fifo(tmp_path, started, subprocess.DEVNULL)
    # Before its handler is in place a signal would kill it outright: wait for the handler.
    assert wait_until(lambda: proc.poll() is not None or catches(proc.pid, signum))
    assert proc.poll() is None, stderr.read_bytes()[-2000:]
    # Let it reach the pipe (it never does if it waits in open(); the signal then shows it).
    wait_until(lambda: holds_open(proc.pid, fifo), timeout_s=5.0)
    proc.send_signal(signum)
    try:
        status = proc.wait(timeout=HANG_S)
    except subprocess.TimeoutExpired:
        pytest.fail("the run did not stop on a signal while its named pipe had no writer")
    output = stderr.read_bytes()
    assert status == 0, output[-2000:]
    assert b"Traceback" not in output
    summary = summary_of(output)
    assert summary["stopped_by"] == "signal"
    assert summary["events"] == 0 and summary["bad_records"] == 0


def test_a_fifo_with_a_writer_is_read_to_its_end(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    fifo, stderr, proc = run_on_a_fifo(tmp_path, started, subprocess.PIPE, "--emit", "all")
    writer = open_writer(fifo)
    # Two writes with a pause between them: the run reads on until the writer closes.
    os.write(writer, events(300)[: 300 * 10])
    time.sleep(0.3)
    os.write(writer, events(300)[300 * 10 :])
    os.close(writer)
    assert proc.stdout is not None
    out = proc.stdout.read()
    status = proc.wait(timeout=HANG_S)
    output = stderr.read_bytes()
    assert status == 0, output[-2000:]
    results = [json.loads(line) for line in out.splitlines()]
    assert [result["seq"] for result in results] == list(range(300))
    summary = summary_of(output)
    assert summary["events"] == 300 and summary["stopped_by"] == "end of input"
