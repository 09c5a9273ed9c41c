"""A stop request (SIGTERM, SIGHUP without a config) while the output is slow or stalled.

Each test starts ``python -m stream_detect run`` as a real process. Waits are
bounded only to keep a hang from blocking the suite: a run that ignored the
stop request while its reader stalled would never end by itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streams import assert_same_state, model_state

from stream_detect.assembly import run_stream
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.state import load_checkpoint
from stream_detect.testing import ListSink, ListSource

REPO = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "stream_detect", "run"]
#: Far above what a stop needs; only a run that waits for its reader reaches it.
HANG_S = 60.0
EVENTS = 4_000
FLAGS = ["--emit", "all", "--log-epsilon", "-14", "--retune-seconds", "0"]


def write_events(path: Path, count: int = EVENTS) -> list[dict[str, Any]]:
    rng = np.random.default_rng(11)
    events = [{"a": a, "b": b} for a, b in rng.normal(size=(count, 2)).tolist()]
    path.write_bytes(b"".join(json.dumps(e).encode() + b"\n" for e in events))
    return events


def pipe_queued(fd: int) -> int:
    """Bytes waiting in a pipe, read from its reading end without taking them."""
    queued = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, queued)
    return int.from_bytes(queued, sys.byteorder)


def wait_until_stalled(proc: subprocess.Popen[bytes]) -> None:
    """Wait until the run has filled its stdout pipe and can write no more."""
    assert proc.stdout is not None
    capacity = fcntl.fcntl(proc.stdout.fileno(), fcntl.F_GETPIPE_SZ)
    deadline = time.monotonic() + HANG_S
    before = -1
    # Full enough and no longer growing (a pipe's pages are not all filled to the byte).
    while (queued := pipe_queued(proc.stdout.fileno())) < capacity // 2 or queued != before:
        assert proc.poll() is None, "the run ended before its output stalled"
        assert time.monotonic() < deadline, "the output never filled"
        before = queued
        time.sleep(0.2)


def complete_lines(data: bytes) -> list[dict[str, Any]]:
    """The complete JSON lines of ``data``; a cut-off last line is not delivered."""
    lines = data.split(b"\n")[:-1]
    return [json.loads(line) for line in lines if line.strip()]


def summary_of(stderr: bytes) -> dict[str, Any]:
    lines = [line for line in stderr.splitlines() if line.startswith(b'{"summary"')]
    assert lines, stderr[-2000:]
    found: dict[str, Any] = json.loads(lines[-1])["summary"]
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_ends_the_run_while_nobody_reads_its_output(
    started: list[subprocess.Popen[bytes]], tmp_path: Path, signum: int
) -> None:
    source, checkpoint = tmp_path / "big.jsonl", tmp_path / "ck.json"
    events = write_events(source)
    command = [
        *RUN,
        "--source",
        f"file:{source}",
        "--checkpoint",
        str(checkpoint),
        "--batch-size",
        "50",
        "--checkpoint-every",
        "100",
        *FLAGS,
    ]
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as errors:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, cwd=REPO)
    started.append(proc)
    wait_until_stalled(proc)
    proc.send_signal(signum)
    # The old behaviour waited here for a reader that never comes.
    status = proc.wait(timeout=HANG_S)
    assert proc.stdout is not None
    delivered = complete_lines(proc.stdout.read())
    summary = summary_of(stderr.read_bytes())
    assert status == 0 and summary["stopped_by"] == "signal, output stalled"
    assert b"Traceback" not in stderr.read_bytes()

    # Never checkpointed past what was delivered: every line before the resume point came out.
    saved = load_checkpoint(checkpoint)
    assert saved is not None, "checkpoints of the batches delivered before the stall"
    resume_line = saved.source["line"]
    assert resume_line > 1
    delivered_lines = {r["position"]["line"] for r in delivered}
    assert set(range(1, resume_line)) <= delivered_lines

    # A restart with a reader re-delivers the rest; together nothing is missing.
    done = subprocess.run(command, capture_output=True, cwd=REPO, timeout=HANG_S)
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = complete_lines(done.stdout)
    assert resumed[0]["position"]["line"] == resume_line
    lines = delivered_lines | {r["position"]["line"] for r in resumed}
    assert lines == set(range(1, EVENTS + 1))
    # Exactly-once learning across the interrupted write.
    whole = tmp_path / "whole.json"
    run_stream(
        RunSettings(checkpoint=str(whole)),
        DetectorSettings(log_epsilon=-14.0, retune_seconds=0.0),
        source=ListSource(events),
        sink=ListSink(),
        dead_letter=ListSink(),
    )
    assert_same_state(model_state(checkpoint), model_state(whole))


def test_sighup_without_a_config_does_not_end_the_run(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    source = tmp_path / "events.jsonl"
    write_events(source, 300)
    command = [*RUN, "--source", f"file:{source}?follow=true", *FLAGS]
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as errors:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, cwd=REPO)
    started.append(proc)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert json.loads(first)["position"]["line"] == 1
    proc.send_signal(signal.SIGHUP)
    with source.open("ab") as more:
        more.write(b'{"a": 0.5, "b": -0.5}\n')
    # Still running after the SIGHUP: the appended line is scored.
    lines = [proc.stdout.readline() for _ in range(300)]
    assert json.loads(lines[-1])["position"]["line"] == 301
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=HANG_S) == 0
    summary = summary_of(stderr.read_bytes())
    assert summary["events"] == 301 and summary["stopped_by"] == "signal"


def test_a_stop_ends_the_run_while_nobody_reads_a_sink_a_reload_opened(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    source, out = tmp_path / "events.jsonl", tmp_path / "out.jsonl"
    config, checkpoint = tmp_path / "run.toml", tmp_path / "ck.json"
    events = write_events(source, 100)
    config.write_text(f'sink = "file:{out}"\n')
    command = [
        *RUN,
        "--source",
        f"file:{source}?follow=true",
        "--config",
        str(config),
        "--checkpoint",
        str(checkpoint),
        "--batch-size",
        "50",
        "--checkpoint-every",
        "100",
        *FLAGS,
    ]
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as errors:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, cwd=REPO)
    started.append(proc)
    deadline = time.monotonic() + HANG_S
    while not out.exists() or out.read_bytes().count(b"\n") < len(events):
        assert proc.poll() is None and time.monotonic() < deadline, stderr.read_bytes()[-2000:]
        time.sleep(0.05)
    # The results now go to stdout, which nobody reads; min_samples makes the reload say so.
    config.write_text('sink = "-"\nmin_samples = 7\n')
    proc.send_signal(signal.SIGHUP)
    while b"config reload" not in stderr.read_bytes():
        assert proc.poll() is None and time.monotonic() < deadline, stderr.read_bytes()[-2000:]
        time.sleep(0.05)
    write_events(tmp_path / "more.jsonl")
    with source.open("ab") as appended:
        appended.write((tmp_path / "more.jsonl").read_bytes())
    wait_until_stalled(proc)
    proc.send_signal(signal.SIGTERM)
    # The old code waited here: the sink the reload opened never heard of the stop request.
    status = proc.wait(timeout=HANG_S)
    assert proc.stdout is not None
    delivered = complete_lines(out.read_bytes()) + complete_lines(proc.stdout.read())
    summary = summary_of(stderr.read_bytes())
    assert status == 0 and summary["stopped_by"] == "signal, output stalled"
    assert b"Traceback" not in stderr.read_bytes()
    saved = load_checkpoint(checkpoint)
    assert saved is not None
    delivered_lines = {r["position"]["line"] for r in delivered}
    assert set(range(1, saved.source["line"])) <= delivered_lines


def blocked_writing_to_a_pipe(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the run's main thread waits in a write to a full pipe."""
    return "pipe_write" in Path(f"/proc/{proc.pid}/wchan").read_text()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_once_the_run_has_finished_leaves_its_status(
    started: list[subprocess.Popen[bytes]], tmp_path: Path, signum: int
) -> None:
    # stderr is a named pipe that the test fills itself once the run is going: the
    # summary, the run's next line there after the stop, then waits in its write.
    # The run has finished; the process has not exited.
    errors = tmp_path / "stderr"
    os.mkfifo(errors)
    reader = os.open(errors, os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(errors, os.O_WRONLY)
    out = tmp_path / "out.jsonl"
    with out.open("wb") as results:
        proc = subprocess.Popen(
            [*RUN, "--emit", "all"],
            stdin=subprocess.PIPE,
            stdout=results,
            stderr=writer,
            cwd=REPO,
        )
    os.close(writer)
    started.append(proc)
    assert proc.stdin is not None
    proc.stdin.write(b'{"x": 1.0}\n{"x": 2.0}\n')
    proc.stdin.flush()
    deadline = time.monotonic() + HANG_S
    while out.read_bytes().count(b"\n") < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "no results"
        time.sleep(0.05)
    with contextlib.suppress(BlockingIOError):
        while os.read(reader, 65536):
            pass
    filler, filled = os.open(errors, os.O_WRONLY | os.O_NONBLOCK), 0
    for size in (4096, 1):
        with contextlib.suppress(BlockingIOError):
            while True:
                filled += os.write(filler, b"." * size)
    os.close(filler)
    proc.send_signal(signum)
    while not blocked_writing_to_a_pipe(proc):
        assert proc.poll() is None and time.monotonic() < deadline, "never wrote its summary"
        time.sleep(0.05)
    # The old code had given SIGTERM its default action back here (killed, -15) and
    # SIGINT its KeyboardInterrupt (status 130), with the summary cut off.
    proc.send_signal(signum)
    os.set_blocking(reader, True)
    said = b""
    while chunk := os.read(reader, 65536):
        said += chunk
    os.close(reader)
    said = said[filled:]
    assert proc.wait(timeout=HANG_S) == 0, said[-2000:]
    summary = summary_of(said)
    assert summary["events"] == 2 and summary["stopped_by"] == "signal"
