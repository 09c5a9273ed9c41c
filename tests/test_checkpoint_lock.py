"""One running stream per checkpoint: a second run on it is refused, a dead one's lock is not."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stream_detect.cli import main

RUN = [sys.executable, "-m", "stream_detect", "run"]
TIMEOUT_S = 90.0
EVENTS = b"".join(b'{"x": %d, "y": %d}\n' % (i % 7, i % 3) for i in range(200))


def running(checkpoint: Path) -> subprocess.Popen[bytes]:
    """A run on stdin with ``checkpoint``, once it has read events (so it holds its checkpoint)."""
    process = subprocess.Popen(
        [*RUN, "--checkpoint", str(checkpoint), "--sink", "file:/dev/null", "--batch-size", "1"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stderr is not None
    process.stdin.write(EVENTS)
    process.stdin.flush()
    # The features line comes after the first event is decoded, long after the lock is taken.
    assert process.stderr.readline().startswith(b'{"features"')
    return process


def finished(process: subprocess.Popen[bytes]) -> bytes:
    """Close the run's input and wait for its end; the rest of its stderr."""
    assert process.stdin is not None and process.stderr is not None
    process.stdin.close()
    stderr = process.stderr.read()
    process.wait(timeout=TIMEOUT_S)
    return stderr


def test_a_second_run_on_a_checkpoint_in_use_is_refused_before_opening_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both runs wrote their own state over the other's: a restart resumed whichever wrote last.
    checkpoint = tmp_path / "state.json"
    first = running(checkpoint)
    source, sink = tmp_path / "events.jsonl", tmp_path / "second.jsonl"
    second = ["run", "--source", f"file:{source}", "--sink", f"file:{sink}"]
    try:
        source.write_bytes(EVENTS)
        capsys.readouterr()
        status = main([*second, "--checkpoint", str(checkpoint)])
        errors = capsys.readouterr().err.strip().splitlines()
        assert status == 2
        assert len(errors) == 1 and "no other running stream-detect uses" in errors[0], errors
        assert not sink.exists(), "a refused run opens nothing"
    finally:
        stderr = finished(first)
    assert first.returncode == 0, stderr[-2000:]
    saved = json.loads(checkpoint.read_text())
    assert saved["detector"]["counters"]["events"] == 200, "the first run's state is whole"
    # Its run over, the checkpoint is free again.
    assert main([*second, "--checkpoint", str(checkpoint), "--no-summary"]) == 0


def test_the_lock_of_a_killed_run_does_not_block_its_restart(tmp_path: Path) -> None:
    checkpoint = tmp_path / "state.json"
    first = running(checkpoint)
    first.kill()  # SIGKILL: nothing of its own is cleaned up, the lock file stays
    first.communicate(timeout=TIMEOUT_S)
    assert (tmp_path / ".state.json.lock").exists()
    second = running(checkpoint)
    stderr = finished(second)
    assert second.returncode == 0, stderr[-2000:]


def test_a_run_removes_what_runs_killed_mid_write_left_beside_its_checkpoint(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "ck.json"
    # What a kill during a checkpoint write leaves (write_atomically's temporary file),
    # twice, and one of another checkpoint in the same folder.
    left = [tmp_path / ".ck.json.x1y2z3_4.tmp", tmp_path / ".ck.json.0abcdefg.tmp"]
    other = tmp_path / ".ck.json.bak.x1y2z3_4.tmp"
    for path in (*left, other):
        path.write_bytes(b'{"half": ')
    process = running(checkpoint)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=TIMEOUT_S) == -signal.SIGKILL
    # The old code left them, one more with every such kill.
    assert not any(path.exists() for path in left)
    assert other.exists()
    # The kill left the lock file, and nothing else the next run minds.
    assert finished(running(checkpoint)).count(b'{"summary"') == 1
    assert json.loads(checkpoint.read_bytes())


def test_two_links_to_one_checkpoint_are_one_checkpoint(tmp_path: Path) -> None:
    # Checkpoints are written through a link to the file it leads to; each link had a lock
    # of its own, so two runs wrote one file, each cleaning the other's temporary files.
    from stream_detect.checkpoint_lock import hold_checkpoint
    from stream_detect.errors import ConfigError

    real = tmp_path / "disk" / "state.json"
    real.parent.mkdir()
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.symlink_to(real)
    second.symlink_to(real)
    held = hold_checkpoint(str(first))
    try:
        with pytest.raises(ConfigError, match=r"another run holds .*state\.json\.lock"):
            hold_checkpoint(str(second))
    finally:
        held.close()
