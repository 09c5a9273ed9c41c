"""SIGHUP: the config file re-read, what may change applied, the rest refused in one line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from stream_detect.pipeline import Pipeline
from stream_detect.reload import apply_reload
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.testing import ListSink, ListSource

REPO = Path(__file__).resolve().parents[1]


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
