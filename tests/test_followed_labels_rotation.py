"""A followed feedback labels file (``--labels file:PATH?follow=true``) rotated.

Rotated under a running ``stream-detect run``, it is read as a followed
events file is: the old file to its end, then the new one from its start, one
line on stderr, and a checkpoint at once that names the new file. Rotated
while the run was stopped, the checkpoint's identity of the labels file tells
the new file from the old one. Each test runs ``python -m stream_detect run``
as a real process; waits are bounded only to keep a hang from blocking the suite.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from stream_detect.state import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "stream_detect", "run"]
#: Far above what reading a few lines needs: only keeps a hang from blocking the suite.
HANG_S = 60.0


def events(first: int, stop: int) -> bytes:
    """Events with ids ``e{first}`` to ``e{stop - 1}``, each line as long as the others."""
    rng = np.random.default_rng(first)
    return b"".join(
        json.dumps({"id": f"e{i}", "a": round(float(value), 6)}).encode() + b"\n"
        for i, value in zip(range(first, stop), rng.normal(size=stop - first), strict=True)
    )


def labels(first: int, stop: int) -> bytes:
    """Feedback labels for events ``e{first}`` to ``e{stop - 1}`` (one in five an anomaly)."""
    return b"".join(b'{"id": "e%d", "label": %d}\n' % (i, i % 5 == 0) for i in range(first, stop))


def command(source: str, label_uri: str, out: Path, checkpoint: Path, *extra: str) -> list[str]:
    return [
        *RUN,
        "--source",
        source,
        "--labels",
        label_uri,
        "--id-field",
        "id",
        "--sink",
        f"file:{out}",
        "--checkpoint",
        str(checkpoint),
        "--emit",
        "all",
        "--batch-size",
        "7",
        *extra,
    ]


def wait_until(proc: subprocess.Popen[bytes], done: Any, what: str) -> None:
    """Wait until ``done()`` is true while ``proc`` runs."""
    deadline = time.monotonic() + HANG_S
    while not done():
        assert proc.poll() is None, "the run ended"
        assert time.monotonic() < deadline, f"{what} did not come"
        time.sleep(0.05)


def results_in(out: Path, count: int) -> Any:
    return lambda: out.exists() and out.read_bytes().count(b"\n") >= count


def summary_of(done: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(done.stderr.splitlines()[-1])["summary"]
    return summary


def validation_ids(checkpoint: Path) -> list[str]:
    """The ids of the labelled events in the checkpoint's validation buffer, sorted."""
    saved = load_checkpoint(checkpoint)
    assert saved is not None
    return sorted(saved.detector["validation"]["ids"])


def test_a_rotated_labels_file_is_read_to_its_end_then_the_new_one_and_checkpointed_at_once(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    log, feedback = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    out, checkpoint = tmp_path / "out.jsonl", tmp_path / "ck.json"
    log.write_bytes(events(10, 70))
    feedback.write_bytes(labels(10, 30))
    # No checkpoint by events or time: only the ones a rotation asks for.
    followed = command(
        f"file:{log}?follow=true",
        f"file:{feedback}?follow=true",
        out,
        checkpoint,
        "--checkpoint-every",
        "0",
        "--checkpoint-seconds",
        "0",
    )
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as errors:
        proc = subprocess.Popen(followed, stderr=errors, cwd=REPO)
    started.append(proc)
    wait_until(proc, results_in(out, 60), "the first 60 results")
    # Rotated by rename while its writer still appends to the old file, then made anew.
    feedback.rename(tmp_path / "labels.jsonl.1")
    with (tmp_path / "labels.jsonl.1").open("ab") as old:
        old.write(labels(30, 35))
    feedback.write_bytes(labels(35, 45))
    wait_until(proc, lambda: b"was rotated" in stderr.read_bytes(), "the rotation line")
    # Events after the rotation: their results come in a later turn than the checkpoint.
    with log.open("ab") as more:
        more.write(events(70, 80))
    wait_until(proc, results_in(out, 70), "the last 10 results")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=HANG_S) == -signal.SIGKILL

    said = stderr.read_text()
    rotations = [line for line in said.splitlines() if "was rotated" in line]
    assert rotations == [
        f"stream-detect: {feedback}: the followed file was rotated (renamed or removed, and "
        f"made anew) after its 25 lines ({len(labels(10, 35))} bytes) were read; reading the "
        "new file from its start, whose positions count from line 1 again"
    ]
    # The old code wrote no checkpoint at a labels rotation (none at all here).
    saved = load_checkpoint(checkpoint)
    assert saved is not None and saved.labels is not None
    new = os.stat(feedback)
    assert {key: saved.labels[key] for key in ("line", "offset", "device", "inode")} == {
        "line": 1,
        "offset": 0,
        "device": new.st_dev,
        "inode": new.st_ino,
    }
    assert validation_ids(checkpoint) == [f"e{i}" for i in range(10, 35)]

    # A restart reads the new labels file from the checkpoint's position: all of it.
    once = command(f"file:{log}", f"file:{feedback}", out, checkpoint)
    done = subprocess.run(once, capture_output=True, cwd=REPO, timeout=HANG_S)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = summary_of(done)
    assert (summary["feedback_labels"], summary["unmatched_feedback"]) == (10, 0)
    assert validation_ids(checkpoint) == [f"e{i}" for i in range(10, 45)]


def test_a_labels_file_rotated_while_stopped_is_told_from_the_old_one(tmp_path: Path) -> None:
    log, feedback = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    out, checkpoint = tmp_path / "out.jsonl", tmp_path / "ck.json"
    log.write_bytes(events(10, 50))
    feedback.write_bytes(labels(10, 20))
    once = command(f"file:{log}", f"file:{feedback}", out, checkpoint)
    first = subprocess.run(once, capture_output=True, cwd=REPO, timeout=HANG_S)
    assert first.returncode == 0, first.stderr[-2000:]
    assert summary_of(first)["feedback_labels"] == 10
    # Rotated while stopped; every line is as long as the others, so the old file's
    # position falls at the start of a line of the new one, which the old code resumed
    # at, skipping the new file's first ten labels without a word.
    feedback.rename(tmp_path / "labels.jsonl.1")
    feedback.write_bytes(labels(20, 40))

    # Not followed, the new file is refused, with the way to read it.
    done = subprocess.run(once, capture_output=True, cwd=REPO, timeout=HANG_S)
    assert done.returncode == 2 and b"Traceback" not in done.stderr
    (error,) = [line for line in done.stderr.decode().splitlines() if "error" in line]
    assert f"{feedback}: cannot resume: it is another file" in error
    assert "follow it (?follow=true)" in error

    # Followed, it is read from its start, and said once.
    followed = command(f"file:{log}", f"file:{feedback}?follow=true", out, checkpoint)
    done = subprocess.run(followed, capture_output=True, cwd=REPO, timeout=HANG_S)
    assert done.returncode == 0, done.stderr[-2000:]
    said = [line for line in done.stderr.decode().splitlines() if "replaced while" in line]
    assert said == [
        f"stream-detect: warning: {feedback}: the followed file was replaced while the run was "
        "stopped (rotated: another file than the one the checkpoint was written for, after "
        f"its 10 lines ({len(labels(10, 20))} bytes)); whatever that old file held past them "
        "was not read; reading the file now at the path from its start, keeping the model"
    ]
    assert summary_of(done)["feedback_labels"] == 20
    assert validation_ids(checkpoint) == [f"e{i}" for i in range(10, 40)]
