"""The HTTP endpoint: /metrics, /healthz, /readyz, and Prometheus scraping it for real."""

from __future__ import annotations

import threading
import urllib.error
from pathlib import Path

import numpy as np
import orjson
import pytest
from monitoring import free_port, http_get, prometheus_value, running_prometheus, wait_for
from prometheus_client.parser import text_string_to_metric_families

from stream_detect.assembly import run_stream
from stream_detect.cli import main
from stream_detect.errors import ConfigError
from stream_detect.pipeline import Pipeline, Summary
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sidecar import Sidecar
from stream_detect.sources import FileSource
from stream_detect.testing import ListSink, ListSource


def keyed_events(n_keys: int, per_key: int, seed: int = 0) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    events: list[dict[str, object]] = []
    for i in range(per_key):
        for k in range(n_keys):
            events.append({"id": f"{k}-{i}", "host": f"h{k}", "x": float(rng.normal(10.0, 1.0))})
    return events


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_health_and_readiness_follow_the_run() -> None:
    events = keyed_events(n_keys=5, per_key=80)
    events.append({"id": "odd", "host": "h3", "x": 60.0})
    run = RunSettings(http="127.0.0.1:0", metrics_top_keys=2)
    detector = DetectorSettings(key_field="host", id_field="id", log_epsilon=-12.0, min_samples=30)
    sidecar = Sidecar(run, detector)
    assert sidecar.server is not None
    base = f"http://{sidecar.server.address}"
    with pytest.raises(urllib.error.HTTPError) as not_ready:
        http_get(base + "/readyz")
    assert not_ready.value.code == 503
    pipeline = Pipeline(
        run,
        detector,
        source=ListSource(events, batch_size=64),
        sink=ListSink(),
        dead_letter=ListSink(),
    )
    sidecar.attach(pipeline)
    try:
        summary = pipeline.run()
        sidecar.refresh(pipeline)
        assert http_get(base + "/readyz") == b"ready\n"
        assert http_get(base + "/healthz") == b"ok\n"
        found = samples(http_get(base + "/metrics").decode())
    finally:
        sidecar.close()
    assert found[("stream_detect_events_total", ())] == summary.events == len(events)
    assert found[("stream_detect_alerts_total", ())] == summary.alerts >= 1
    assert found[("stream_detect_models_active", ())] == 5
    assert found[("stream_detect_learned_events", ())] == sum(
        state.learned
        for state in pipeline.detector.models.values()  # type: ignore[union-attr]
    )
    assert found[("stream_detect_log_epsilon", ())] == -12.0
    assert found[("stream_detect_scoring_seconds_count", ())] >= 1
    per_key = {labels for name, labels in found if name == "stream_detect_key_last_score"}
    # Bounded to the top 2 keys, the one with an alert first.
    assert len(per_key) == 2 and (("key", "h3"),) in per_key
    assert (("key", "h3"),) in {
        labels for name, labels in found if name == "stream_detect_key_last_alert_timestamp_seconds"
    }


def metrics_after_feedback(
    events: list[dict[str, object]], feedback: list[object]
) -> tuple[dict[tuple[str, tuple[tuple[str, str], ...]], float], Summary]:
    """/metrics's samples and the summary of a sidecar run of ``events`` and ``feedback``."""
    run = RunSettings(http="127.0.0.1:0")
    detector = DetectorSettings(id_field="id", min_samples=10)
    sidecar = Sidecar(run, detector)
    assert sidecar.server is not None
    pipeline = Pipeline(
        run,
        detector,
        source=ListSource(events, batch_size=64),
        sink=ListSink(),
        dead_letter=ListSink(),
        labels=ListSource(feedback),
    )
    sidecar.attach(pipeline)
    try:
        summary = pipeline.run()
        sidecar.refresh(pipeline)
        found = samples(http_get(f"http://{sidecar.server.address}/metrics").decode())
    finally:
        sidecar.close()
    return found, summary


def test_labels_that_correct_or_repeat_an_events_label_are_counted_on_metrics() -> None:
    events = keyed_events(n_keys=1, per_key=50)
    feedback = [
        {"id": "0-3", "label": 1},
        {"id": "0-3", "label": 1},  # delivered again
        {"id": "0-4", "label": 0},
        {"id": "0-4", "label": 1},  # corrected
    ]
    found, summary = metrics_after_feedback(events, feedback)
    assert found[("stream_detect_feedback_labels_total", ())] == summary.feedback_labels == 4
    assert found[("stream_detect_repeated_feedback_total", ())] == summary.repeated_feedback == 1
    assert found[("stream_detect_corrected_feedback_total", ())] == summary.corrected_feedback == 1


def test_feedback_labels_sent_to_the_dead_letters_are_counted_on_metrics() -> None:
    # The summary counted them (bad_feedback, unmatched_feedback) but /metrics had
    # no series for them, and bad_records_total leaves them out.
    events = keyed_events(n_keys=1, per_key=50)
    feedback: list[object] = [
        {"id": "0-3", "label": 1},
        {"id": "0-4"},  # no label: malformed
        b"not json",
        {"id": "never-seen", "label": 1},
    ]
    found, summary = metrics_after_feedback(events, feedback)
    assert found[("stream_detect_bad_feedback_total", ())] == summary.bad_feedback == 2
    assert found[("stream_detect_unmatched_feedback_total", ())] == summary.unmatched_feedback == 1
    assert found[("stream_detect_bad_records_total", ())] == summary.bad_records == 0


def test_source_lag_is_the_bytes_a_file_still_holds(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps({"x": float(i % 5)}) + b"\n" for i in range(100)))
    run = RunSettings(http="127.0.0.1:0")
    pipeline = Pipeline(
        run,
        DetectorSettings(min_samples=10),
        source=FileSource(events),
        sink=ListSink(),
        dead_letter=ListSink(),
    )
    sidecar = Sidecar(run, DetectorSettings())
    sidecar.attach(pipeline)
    try:
        pipeline.run()
        sidecar.refresh(pipeline)
        assert sidecar.server is not None
        base = f"http://{sidecar.server.address}/metrics"
        assert samples(http_get(base).decode())[("stream_detect_source_lag", ())] == 0.0
        with events.open("ab") as more:
            more.write(b'{"x": 1.0}\n')
        sidecar.refresh(pipeline)
        assert samples(http_get(base).decode())[("stream_detect_source_lag", ())] == 11.0
    finally:
        sidecar.close()


def test_http_address_that_cannot_be_used_is_one_config_error() -> None:
    with pytest.raises(ConfigError, match="config key http"):
        Sidecar(RunSettings(http="localhost"), DetectorSettings())


def test_a_bad_http_address_names_the_flag_or_the_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both were "config key http", without the flag or the file, unlike every other setting.
    events = tmp_path / "events.jsonl"
    events.write_bytes(b'{"x": 1.0}\n')
    config = tmp_path / "run.toml"
    config.write_text('http = "localhost"\n')
    run = ["run", "--source", f"file:{events}"]
    assert main([*run, "--http", "localhost"]) == 2
    assert "error: option --http: got 'localhost'" in capsys.readouterr().err
    assert main([*run, "--config", str(config)]) == 2
    assert f"error: config key http in {config}: got 'localhost'" in capsys.readouterr().err


def test_prometheus_scrapes_the_detector_and_counts_match(tmp_path: Path) -> None:
    port = free_port()
    rng = np.random.default_rng(1)
    values = rng.normal(5.0, 1.0, 600)
    values[[300, 450, 520]] = 40.0
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps({"x": float(v)}) + b"\n" for v in values))
    run = RunSettings(
        source=f"file:{events}?follow=true",
        sink=f"file:{tmp_path / 'alerts.jsonl'}",
        dead_letter=f"file:{tmp_path / 'dead.jsonl'}",
        http=f"127.0.0.1:{port}",
    )
    stop = threading.Event()
    result: list[Summary] = []
    runner = threading.Thread(
        target=lambda: result.append(
            run_stream(run, DetectorSettings(log_epsilon=-20.0, min_samples=50), stop=stop)
        )
    )
    with running_prometheus(tmp_path / "prometheus", [f"127.0.0.1:{port}"]) as prometheus:
        runner.start()
        try:
            wait_for(
                lambda: prometheus_value(prometheus, "stream_detect_events_total") == 600,
                "Prometheus to scrape 600 events",
            )
            alerts = prometheus_value(prometheus, "stream_detect_alerts_total")
        finally:
            stop.set()
            runner.join()
    (summary,) = result
    assert summary.events == 600
    assert alerts == summary.alerts == 3
