"""A followed file rotated under a running ``stream-detect run`` (``file:PATH?follow=true``).

Each test starts ``python -m stream_detect run`` as a real process and stops it
with a real SIGTERM. Waits are bounded only to keep a hang from blocking the
suite.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from streams import assert_same_state, model_state

from stream_detect.assembly import run_stream
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.testing import ListSink, ListSource

REPO = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "stream_detect", "run"]
#: Far above what reading a few lines needs: only keeps a hang from blocking the suite.
HANG_S = 60.0
FLAGS = ["--emit", "all", "--log-epsilon", "-9", "--retune-seconds", "0", "--batch-size", "7"]


def lines_of(events: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(event).encode() + b"\n" for event in events)


def follow_command(log: Path, out: Path, checkpoint: Path, *extra: str) -> list[str]:
    """``run`` following ``log``, its results to ``out``, checkpointed to ``checkpoint``."""
    source, sink = f"file:{log}?follow=true", f"file:{out}"
    return [
        *RUN,
        "--source",
        source,
        "--sink",
        sink,
        "--checkpoint",
        str(checkpoint),
        *extra,
        *FLAGS,
    ]


def assert_learned_as_one_run(checkpoint: Path, events: list[dict[str, Any]], whole: Path) -> None:
    """The model in ``checkpoint`` is the one a straight run over ``events`` learns."""
    run_stream(
        RunSettings(checkpoint=str(whole)),
        DetectorSettings(log_epsilon=-9.0, retune_seconds=0.0),
        source=ListSource(events),
        sink=ListSink(),
        dead_letter=ListSink(),
    )
    assert_same_state(model_state(checkpoint), model_state(whole))


def wait_for_results(proc: subprocess.Popen[bytes], out: Path, count: int) -> None:
    """Wait until ``out`` holds ``count`` results."""
    deadline = time.monotonic() + HANG_S
    while not out.exists() or out.read_bytes().count(b"\n") < count:
        assert proc.poll() is None, "the run ended"
        assert time.monotonic() < deadline, f"fewer than {count} results came"
        time.sleep(0.05)


def test_a_rotated_file_is_followed_into_its_new_file_and_nothing_is_lost(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    events = [dict(zip("ab", row, strict=True)) for row in rng.normal(size=(400, 2)).tolist()]
    log, out, checkpoint = tmp_path / "app.jsonl", tmp_path / "out.jsonl", tmp_path / "ck.json"
    log.write_bytes(lines_of(events[:100]))
    command = follow_command(log, out, checkpoint)
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as errors:
        proc = subprocess.Popen(command, stderr=errors, cwd=REPO)
    started.append(proc)
    wait_for_results(proc, out, 100)
    # Rotated by rename while its writer still appends to the old file (the last
    # line unterminated), then made anew.
    log.rename(tmp_path / "app.jsonl.1")
    with (tmp_path / "app.jsonl.1").open("ab") as old:
        old.write(lines_of(events[100:150]) + lines_of(events[150:151]).rstrip(b"\n"))
    log.write_bytes(lines_of(events[151:250]))
    wait_for_results(proc, out, 250)
    # Removed, then made anew.
    log.unlink()
    log.write_bytes(lines_of(events[250:300]))
    wait_for_results(proc, out, 300)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=HANG_S) == 0
    said = stderr.read_text().splitlines()
    assert "Traceback" not in stderr.read_text()
    rotations = [line for line in said if "the followed file was rotated" in line]
    assert rotations == [
        f"stream-detect: {log}: the followed file was rotated (renamed or removed, and made "
        "anew) after its 151 lines (" + str(len(lines_of(events[:151])) - 1) + " bytes) were "
        "read; reading the new file from its start, whose positions count from line 1 again",
        f"stream-detect: {log}: the followed file was rotated (renamed or removed, and made "
        f"anew) after its 99 lines ({len(lines_of(events[151:250]))} bytes) were read; reading "
        "the new file from its start, whose positions count from line 1 again",
    ]

    # A restart resumes in the file now at the path.
    with log.open("ab") as more:
        more.write(lines_of(events[300:]))
    command[command.index(f"file:{log}?follow=true")] = f"file:{log}"
    last = subprocess.run(command, capture_output=True, cwd=REPO, timeout=HANG_S)
    assert last.returncode == 0, last.stderr[-2000:]

    results = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert [(r["a"], r["b"]) for r in results] == [(e["a"], e["b"]) for e in events]
    assert_learned_as_one_run(checkpoint, events, tmp_path / "whole.json")


def test_a_kill_after_a_rotation_restarts_in_the_new_file_having_learned_the_old_once(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    rng = np.random.default_rng(6)
    events = [dict(zip("ab", row, strict=True)) for row in rng.normal(size=(80, 2)).tolist()]
    log, out, checkpoint = tmp_path / "app.jsonl", tmp_path / "out.jsonl", tmp_path / "ck.json"
    log.write_bytes(lines_of(events[:50]))
    # No checkpoint by events or time: only the one a rotation asks for.
    command = follow_command(
        log, out, checkpoint, "--checkpoint-every", "0", "--checkpoint-seconds", "0"
    )
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL, cwd=REPO)
    started.append(proc)
    wait_for_results(proc, out, 50)
    log.rename(tmp_path / "app.jsonl.1")
    log.write_bytes(lines_of(events[50:]))
    wait_for_results(proc, out, 80)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=HANG_S) == -signal.SIGKILL

    # The old code had no checkpoint of the old file's events, or one naming the old file.
    command[command.index(f"file:{log}?follow=true")] = f"file:{log}"
    last = subprocess.run(command, capture_output=True, cwd=REPO, timeout=HANG_S)
    assert last.returncode == 0, last.stderr[-2000:]
    results = [json.loads(line) for line in out.read_bytes().splitlines()]
    # At least once: the new file's results may come twice, never none.
    assert {(r["a"], r["b"]) for r in results} == {(e["a"], e["b"]) for e in events}
    assert_learned_as_one_run(checkpoint, events, tmp_path / "whole.json")


def test_a_file_rotated_while_stopped_is_read_from_its_start_keeping_the_model(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    rng = np.random.default_rng(7)
    rows = rng.normal(size=(160, 2)).tolist()
    events = [dict(zip("ab", row, strict=True)) for row in rows[:150]]
    unread = [dict(zip("ab", row, strict=True)) for row in rows[150:]]
    log, out, checkpoint = tmp_path / "app.jsonl", tmp_path / "out.jsonl", tmp_path / "ck.json"
    log.write_bytes(lines_of(events[:100]))
    command = follow_command(log, out, checkpoint)
    once = [f"file:{log}" if part == f"file:{log}?follow=true" else part for part in command]
    first = subprocess.run(once, capture_output=True, cwd=REPO, timeout=HANG_S)
    assert first.returncode == 0, first.stderr[-2000:]
    # Rotated while the run was stopped: the old file grew after the checkpoint, and
    # that rest is never read, since nothing says where the old file went.
    old = tmp_path / "app.jsonl.1"
    log.rename(old)
    with old.open("ab") as writer:
        writer.write(lines_of(unread))
    log.write_bytes(lines_of(events[100:]))

    stderr = tmp_path / "stderr"
    with stderr.open("wb") as errors:
        proc = subprocess.Popen(command, stderr=errors, cwd=REPO)
    started.append(proc)
    wait_for_results(proc, out, 150)
    proc.send_signal(signal.SIGTERM)
    # The old code refused the checkpoint: exit 2, the model lost unless started anew.
    assert proc.wait(timeout=HANG_S) == 0, stderr.read_text()[-2000:]
    said = stderr.read_text().splitlines()
    assert [line for line in said if "replaced while" in line] == [
        f"stream-detect: warning: {log}: the followed file was replaced while the run was "
        "stopped (rotated: another file than the one the checkpoint was written for, after "
        f"its 100 lines ({len(lines_of(events[:100]))} bytes)); whatever that old file held "
        "past them was not read; reading the file now at the path from its start, keeping "
        "the model"
    ]
    assert json.loads(said[-1])["summary"]["resumed_from"] == {"model_only": True}
    results = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert [(r["a"], r["b"]) for r in results] == [(e["a"], e["b"]) for e in events]
    assert_learned_as_one_run(checkpoint, events, tmp_path / "whole.json")
