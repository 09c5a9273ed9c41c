"""SIGHUP: the config file re-read, what may change applied, the rest refused in one line."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from stream_detect.pipeline import Pipeline
from stream_detect.reload import apply_reload
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.testing import ListSink, ListSource

REPO = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "stream_detect", "run"]
#: Far above what a reload or a stop needs: only keeps a hang from blocking the suite.
HANG_S = 60.0


def wait_until(proc: subprocess.Popen[bytes], done: Callable[[], bool], what: str) -> None:
    """Wait until ``done()`` while ``proc`` runs (bounded by HANG_S only to catch a hang)."""
    deadline = time.monotonic() + HANG_S
    while not done():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def lines_in(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_apply_reload_changes_thresholds_and_sink_and_names_the_rest(tmp_path: Path) -> None:
    old_sink = ListSink()
    pipeline = Pipeline(
        RunSettings(),
        DetectorSettings(log_epsilon=-30.0, min_samples=5),
        source=ListSource([{"x": float(i % 3)} for i in range(20)]),
        sink=old_sink,
        dead_letter=ListSink(),
    )
    pipeline.run()
    new_sink = tmp_path / "alerts.jsonl"
    refused = apply_reload(
        pipeline,
        RunSettings(sink=f"file:{new_sink}", batch_size=7),
        DetectorSettings(log_epsilon=-4.0, min_samples=9, model="full"),
    )
    assert refused == ["batch_size", "min_samples", "model"]
    assert pipeline.detector is not None and pipeline.detector.log_epsilon == -4.0
    assert pipeline.detector_settings.log_epsilon == -4.0
    assert pipeline.detector_settings.min_samples == 5
    assert pipeline.run_settings.batch_size == RunSettings().batch_size
    assert old_sink.closed and pipeline.sink.uri == f"file:{new_sink}"
    pipeline.sink.close()


def send(proc: subprocess.Popen[bytes], x: float) -> dict[str, object]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"x": x}).encode() + b"\n")
    proc.stdin.flush()
    result: dict[str, object] = json.loads(proc.stdout.readline())
    return result


def test_sighup_applies_a_new_log_epsilon_without_a_restart(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text('emit = "all"\nlog_epsilon = -1000.0\nmin_samples = 20\nbatch_size = 1\n')
    stderr = tmp_path / "stderr.txt"
    with stderr.open("wb") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stream_detect", "run", "--config", str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            cwd=REPO,
        )
    try:
        for i in range(60):
            assert send(proc, 1.0 + 0.1 * (i % 5))["log_epsilon"] == -1000.0
        assert send(proc, 5.0)["alert"] is False  # far out, but log ε is very low
        config.write_text('emit = "all"\nlog_epsilon = -8.0\nmin_samples = 20\nbatch_size = 1\n')
        proc.send_signal(signal.SIGHUP)
        # The reload happens between two turns of the loop: at the latest after the next event.
        for _ in range(100):
            if send(proc, 1.2)["log_epsilon"] == -8.0:
                break
        else:
            raise AssertionError("the new log_epsilon never took effect")
        anomaly = send(proc, 5.0)
        assert anomaly["alert"] is True and anomaly["log_epsilon"] == -8.0
        # A change that cannot be applied while running is refused; the run goes on.
        config.write_text('emit = "all"\nlog_epsilon = -8.0\nmin_samples = 99\nbatch_size = 1\n')
        proc.send_signal(signal.SIGHUP)
        for _ in range(100):
            send(proc, 1.1)
            if b"config reload" in stderr.read_bytes():
                break
        assert send(proc, 5.0)["alert"] is True
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    lines = stderr.read_text().splitlines()
    refusals = [line for line in lines if "config reload" in line]
    assert refusals == [
        "stream-detect: config reload: min_samples cannot change while running "
        "(kept as they were; restart to change them)"
    ]
    assert json.loads(lines[-1])["summary"]["events"] >= 64


def follow_with_config(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> tuple[Path, Path, Path, Path, subprocess.Popen[bytes]]:
    """A run following a file, its sink set by a config, once its first 100 results are out."""
    source, out, config = tmp_path / "events.jsonl", tmp_path / "out.jsonl", tmp_path / "run.toml"
    source.write_bytes(b"".join(b'{"x": %d}\n' % (i % 5) for i in range(100)))
    config.write_text(f'emit = "all"\nsink = "file:{out}"\n')
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as errors:
        proc = subprocess.Popen(
            [*RUN, "--source", f"file:{source}?follow=true", "--config", str(config)],
            stderr=errors,
            cwd=REPO,
        )
    started.append(proc)
    wait_until(proc, lambda: lines_in(out) == 100, "the first results")
    return source, out, config, stderr, proc


def test_a_reload_cannot_point_the_sink_at_the_file_being_read(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    source, out, config, stderr, proc = follow_with_config(tmp_path, started)
    # min_samples makes the reload say something whether or not the sink is taken.
    config.write_text(f'emit = "all"\nsink = "file:{source}"\nmin_samples = 7\n')
    proc.send_signal(signal.SIGHUP)
    wait_until(proc, lambda: b"config reload" in stderr.read_bytes(), "the reload")
    with source.open("ab") as more:
        more.write(b'{"x": 2}\n')
    # The old code appended the result to the file it follows, then read it back, forever.
    wait_until(proc, lambda: lines_in(out) == 101 or lines_in(source) > 101, "the next result")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=HANG_S) == 0
    assert lines_in(source) == 101 and lines_in(out) == 101
    said = stderr.read_text().splitlines()
    assert said[1] == (
        f"stream-detect: config reload refused: config key sink: got 'file:{source}', expected "
        f"a file other than the one source reads ('file:{source}?follow=true'): writing there "
        "would change or destroy what is read"
    )
    assert json.loads(said[-1])["summary"]["events"] == 101


def test_a_reload_cannot_point_the_sink_at_the_config_file(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    source, out, config, stderr, proc = follow_with_config(tmp_path, started)
    written = f'emit = "all"\nsink = "file:{config}"\n'
    config.write_text(written)
    proc.send_signal(signal.SIGHUP)
    # "reload applied" on the old code, "config reload refused" now.
    wait_until(proc, lambda: b"reload" in stderr.read_bytes(), "the reload")
    with source.open("ab") as more:
        more.write(b'{"x": 2}\n')
    # The old code appended this result to the config, which no later reload could read.
    wait_until(proc, lambda: lines_in(out) == 101 or config.read_text() != written, "the result")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=HANG_S) == 0
    assert config.read_text() == written and lines_in(out) == 101
    said = stderr.read_text().splitlines()
    assert said[1] == (
        f"stream-detect: config reload refused: config key sink in {config}: got "
        f"'file:{config}', expected a file other than the one --config reads ({str(config)!r}): "
        "writing there would change or destroy what is read"
    )


def test_a_reload_says_what_it_changed_so_a_half_written_config_is_seen(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    source, out, config = tmp_path / "events.jsonl", tmp_path / "out.jsonl", tmp_path / "run.toml"
    source.write_bytes(b"".join(b'{"x": %d}\n' % (i % 5) for i in range(100)))
    written = f'emit = "all"\nsink = "file:{out}"\nmin_samples = 7\n'
    config.write_text(written)
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as errors:
        proc = subprocess.Popen(
            [*RUN, "--source", f"file:{source}?follow=true", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=errors,
            cwd=REPO,
        )
    started.append(proc)
    wait_until(proc, lambda: lines_in(out) == 100, "the first results")
    # Read while an editor had emptied it: every setting back to its default.
    config.write_text("")
    proc.send_signal(signal.SIGHUP)
    wait_until(proc, lambda: b"config reload:" in stderr.read_bytes(), "the reload")
    config.write_text(written)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=HANG_S) == 0
    said = stderr.read_text().splitlines()
    # The old code said only what it refused: results going to stdout, alerts only, unseen.
    assert said[1:3] == [
        f"stream-detect: reload applied: sink 'file:{out}' -> '-', emit 'all' -> 'alerts'",
        "stream-detect: config reload: min_samples cannot change while running "
        "(kept as they were; restart to change them)",
    ]


def test_a_sighup_before_the_run_is_ready_does_not_end_it(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    # A named pipe as the config holds the run where it reads its settings, before its
    # SIGHUP handler is in place, until the test writes the config.
    config = tmp_path / "run.toml"
    os.mkfifo(config)
    proc = subprocess.Popen(
        [*RUN, "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    started.append(proc)
    deadline = time.monotonic() + HANG_S
    while True:
        try:
            # Succeeds once the run has the pipe open to read its config.
            writer = os.open(config, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as error:
            assert error.errno == errno.ENXIO
            assert proc.poll() is None and time.monotonic() < deadline, "the config is never read"
            time.sleep(0.02)
    proc.send_signal(signal.SIGHUP)
    with os.fdopen(writer, "wb") as stream:
        stream.write(b'emit = "all"\n')
    # The old code ended here, killed by the SIGHUP's default action.
    stdout, stderr = proc.communicate(b'{"x": 1.0}\n{"x": 2.0}\n', timeout=HANG_S)
    assert proc.returncode == 0, stderr[-2000:]
    assert len(stdout.splitlines()) == 2
    assert json.loads(stderr.splitlines()[-1])["summary"]["events"] == 2
