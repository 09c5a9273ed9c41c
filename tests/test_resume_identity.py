"""A checkpoint resumes only the file it was written for."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "stream_detect", "run"]


def lines(name: str, count: int) -> bytes:
    # Every line has the same length, so a replaced file lines up with the saved offset.
    return b"".join(b'{"%s": %d.5}\n' % (name.encode(), i % 10) for i in range(count))


def run(source: Path, checkpoint: Path, follow: str = "") -> subprocess.CompletedProcess[bytes]:
    """``run`` over ``source`` (``follow="?follow=true"`` follows it), checkpointed."""
    command = [*RUN, "--source", f"file:{source}{follow}", "--checkpoint", str(checkpoint)]
    return subprocess.run(command, capture_output=True, cwd=REPO, timeout=60)


def test_a_replaced_file_that_lines_up_is_refused(tmp_path: Path) -> None:
    source, checkpoint = tmp_path / "events.jsonl", tmp_path / "ck.json"
    source.write_bytes(lines("x", 200))
    assert run(source, checkpoint).returncode == 0
    replaced = tmp_path / "new.jsonl"
    replaced.write_bytes(lines("y", 400))
    replaced.replace(source)
    done = run(source, checkpoint)
    assert done.returncode == 2
    (error,) = [line for line in done.stderr.splitlines() if b"error" in line]
    assert b"first bytes differ" in error and b"Traceback" not in done.stderr
    # Not followed, a new file at the path is not taken for a rotation, but the way is said.
    assert b"follow it (?follow=true) to read it from its start keeping the model" in error


def test_a_rewritten_file_in_place_is_refused(tmp_path: Path) -> None:
    source, checkpoint = tmp_path / "events.jsonl", tmp_path / "ck.json"
    source.write_bytes(lines("x", 200))
    assert run(source, checkpoint).returncode == 0
    source.write_bytes(lines("y", 400))  # same inode, other content
    done = run(source, checkpoint)
    assert done.returncode == 2 and b"first bytes differ" in done.stderr


def test_a_copy_of_the_file_is_refused(tmp_path: Path) -> None:
    source, checkpoint = tmp_path / "events.jsonl", tmp_path / "ck.json"
    source.write_bytes(lines("x", 200))
    assert run(source, checkpoint).returncode == 0
    copy = tmp_path / "copy.jsonl"
    shutil.copyfile(source, copy)
    copy.replace(source)
    done = run(source, checkpoint)
    assert done.returncode == 2 and b"another device or inode" in done.stderr


def test_the_same_file_grown_resumes(tmp_path: Path) -> None:
    source, checkpoint = tmp_path / "events.jsonl", tmp_path / "ck.json"
    source.write_bytes(lines("x", 200))
    assert run(source, checkpoint).returncode == 0
    with source.open("ab") as more:
        more.write(lines("x", 50))
    done = run(source, checkpoint)
    assert done.returncode == 0, done.stderr
    summary = orjson.loads(done.stderr.splitlines()[-1])["summary"]
    assert summary["events"] == 50 and summary["resumed_from"]["line"] == 201


def test_a_followed_file_changed_in_place_or_copied_while_stopped_is_refused(
    tmp_path: Path,
) -> None:
    # Only another file with other first bytes is a rotation: the same inode rewritten
    # (truncated, or edited) or a copy could hold the events already learned.
    source, checkpoint = tmp_path / "events.jsonl", tmp_path / "ck.json"
    source.write_bytes(lines("x", 200))
    assert run(source, checkpoint).returncode == 0
    source.write_bytes(lines("y", 100))  # truncated and written anew, same inode
    done = run(source, checkpoint, "?follow=true")
    assert done.returncode == 2 and b"was it replaced or truncated" in done.stderr
    source.write_bytes(lines("x", 200))
    copy = tmp_path / "copy.jsonl"
    shutil.copyfile(source, copy)
    copy.replace(source)
    done = run(source, checkpoint, "?follow=true")
    assert done.returncode == 2 and b"another device or inode" in done.stderr
    assert b"Traceback" not in done.stderr
