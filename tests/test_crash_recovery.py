"""SIGKILL at random points of a file stream, restarting each time from the checkpoint.

After the last restart runs to the end: the model state equals that of one
uninterrupted run (each event learned exactly once), and every result of the
uninterrupted run is in the output file (duplicates allowed, gaps not), every
line of it whole. The short version runs in the default suite; the long one
(25 kills) is marked ``soak``: ``pytest -m soak``.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from streams import assert_same_state, model_state

from stream_detect.assembly import run_stream
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.testing import ListSink, ListSource

REPO = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "stream_detect", "run"]
HANG_S = 120.0
FLAGS = ["--emit", "all", "--log-epsilon", "-9", "--retune-seconds", "0", "--batch-size", "7"]


def crash_and_recover(tmp_path: Path, kills: int, events: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(events, 3)) * [1.0, 50.0, 0.1]
    rows[rng.choice(events, size=events // 100, replace=False), 0] += 8.0
    data = [dict(zip("abc", row, strict=True)) for row in rows.tolist()]
    source, out, checkpoint = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "ck.json"
    source.write_text("".join(json.dumps(event) + "\n" for event in data))
    # The killed runs follow the file, so none ends by itself before its kill; the last
    # run reads to the end and stops there.
    last_command = [
        *RUN,
        "--source",
        f"file:{source}",
        "--sink",
        f"file:{out}",
        "--checkpoint",
        str(checkpoint),
        "--checkpoint-every",
        "50",
        *FLAGS,
    ]
    killed_command = [*last_command]
    killed_command[killed_command.index(f"file:{source}")] = f"file:{source}?follow=true"
    pause = random.Random(seed)
    for _ in range(kills):
        proc = subprocess.Popen(killed_command, stderr=subprocess.DEVNULL, cwd=REPO)
        # Anywhere: during start-up, restore, scoring, writing or a checkpoint.
        time.sleep(pause.uniform(0.0, 1.5))
        assert proc.poll() is None, "a followed file does not end"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=HANG_S) == -signal.SIGKILL
    last = subprocess.run(last_command, capture_output=True, cwd=REPO, timeout=HANG_S)
    assert last.returncode == 0, last.stderr[-2000:]

    straight_sink = ListSink()
    whole = tmp_path / "whole.json"
    run_stream(
        RunSettings(checkpoint=str(whole), emit="all"),
        DetectorSettings(log_epsilon=-9.0, retune_seconds=0.0),
        source=ListSource(data),
        sink=straight_sink,
        dead_letter=ListSink(),
    )
    assert_same_state(model_state(checkpoint), model_state(whole))

    results = [json.loads(line) for line in out.read_bytes().splitlines()]  # all whole
    by_line: dict[int, dict[str, object]] = {}
    for result in results:
        line = result["position"]["line"]
        # A duplicate is the same result again: learned once, so scored the same.
        if line in by_line:
            assert by_line[line]["alert"] == result["alert"]
        by_line[line] = result
    assert sorted(by_line) == list(range(1, events + 1))
    for expected in straight_sink.records:
        mine = by_line[expected["position"]["line"]]
        assert mine["alert"] == expected["alert"] and mine["n"] == expected["n"]
        if expected["log_p"] is None:
            assert mine["log_p"] is None
        else:
            assert mine["log_p"] == pytest.approx(expected["log_p"], rel=1e-9)


def test_five_kills_then_restart_lose_nothing_and_learn_once(tmp_path: Path) -> None:
    crash_and_recover(tmp_path, kills=5, events=4000, seed=1)


@pytest.mark.soak
def test_twenty_five_kills_then_restart_lose_nothing_and_learn_once(tmp_path: Path) -> None:
    crash_and_recover(tmp_path, kills=25, events=40_000, seed=2)
