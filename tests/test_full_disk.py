"""A file sink on a full disk, then a restart: no output line is ever merged or cut."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from stream_detect.sinks import FileSink

REPO = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "stream_detect", "run"]
EVENTS = 450


def test_a_partial_last_line_is_removed_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b'{"n":1}\n{"n":2}\n{"n":3,"log_p":-1')  # a write cut short
    sink = FileSink(path)
    sink.write_batch([{"n": 3, "log_p": -1.5}])
    sink.close()
    assert path.read_bytes() == b'{"n":1}\n{"n":2}\n{"n":3,"log_p":-1.5}\n'


def test_a_file_of_complete_lines_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b'{"n":1}\n' * 70_000)  # longer than one backwards read
    FileSink(path).close()
    assert path.read_bytes() == b'{"n":1}\n' * 70_000


@contextlib.contextmanager
def small_tmpfs(folder: Path) -> Iterator[Path]:
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_full_disk_then_restart_leaves_only_whole_lines(tmp_path: Path) -> None:
    source, checkpoint = tmp_path / "events.jsonl", tmp_path / "ck.json"
    rng = np.random.default_rng(4)
    rows = rng.normal(size=(EVENTS, 2)).tolist()
    source.write_text("".join(json.dumps({"a": a, "b": b}) + "\n" for a, b in rows))
    with small_tmpfs(tmp_path / "disk") as disk:
        out = disk / "results.jsonl"
        command = [
            *RUN,
            "--source",
            f"file:{source}",
            "--sink",
            f"file:{out}",
            "--emit",
            "all",
            "--batch-size",
            "1",
            "--checkpoint-every",
            "1",
            "--checkpoint",
            str(checkpoint),
        ]
        full = subprocess.run(command, capture_output=True, cwd=REPO, timeout=120)
        assert full.returncode == 2 and b"No space left on device" in full.stderr
        assert not out.read_bytes().endswith(b"\n"), "the disk filled in mid-line"
        subprocess.run(["mount", "-o", "remount,size=4m", str(disk)], check=True)
        again = subprocess.run(command, capture_output=True, cwd=REPO, timeout=120)
        assert again.returncode == 0, again.stderr[-2000:]
        data = out.read_bytes()
    results = [json.loads(line) for line in data.splitlines()]  # every line parses
    assert data.endswith(b"\n")
    assert {r["position"]["line"] for r in results} == set(range(1, EVENTS + 1))
