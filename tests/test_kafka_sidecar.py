"""The sidecar of a Kafka run, against a real broker: metrics over partitions, lag, reloads."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from kafka_clients import REPO, RUN, TopicReader, kafka_uri, kill_if_running, produce, stop
from monitoring import free_port, http_get, wait_for

from stream_detect.kafka.broker import EmbeddedBroker

TIMEOUT_S = 120.0


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value of every sample in a /metrics text."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def scrape(port: int) -> dict[str, float]:
    return samples(http_get(f"http://127.0.0.1:{port}/metrics").decode())


def partition_values(metrics: dict[str, float], name: str, topic: str) -> dict[int, float]:
    pattern = re.compile(rf'stream_detect_{name}\{{partition="{topic}/(\d+)"\}}')
    return {
        int(match.group(1)): value
        for series, value in metrics.items()
        if (match := pattern.fullmatch(series))
    }


def test_a_kafka_run_serves_metrics_per_partition_and_reloads_every_partition(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    events = fresh_topic(kafka_broker, 2)
    results = fresh_topic(kafka_broker)
    keys = [f"host-{i % 8}" for i in range(600)]
    produce(bootstrap, events, [{"x": float(i % 11)} for i in range(600)], keys=keys)
    config = tmp_path / "run.toml"
    config.write_text("log_epsilon = -1000.0\nmin_samples = 20\n")
    port = free_port()
    log = tmp_path / "detector.log"
    proc = subprocess.Popen(
        [
            *RUN,
            "--config",
            str(config),
            "--source",
            kafka_uri(bootstrap, events, group="observed"),
            "--sink",
            kafka_uri(bootstrap, results),
            "--http",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        cwd=REPO,
    )
    try:

        def all_read() -> dict[str, float] | None:
            metrics = scrape(port)
            lags = partition_values(metrics, "partition_source_lag", events)
            if metrics.get("stream_detect_events_total") == 600 and lags == {0: 0.0, 1: 0.0}:
                return metrics
            return None

        metrics = wait_for(all_read, "the 600 events on /metrics", TIMEOUT_S)
        by_partition = partition_values(metrics, "partition_events_total", events)
        assert set(by_partition) == {0, 1} and sum(by_partition.values()) == 600
        assert all(count > 0 for count in by_partition.values())
        assert metrics["stream_detect_alerts_total"] == 0
        assert metrics["stream_detect_source_lag"] == 0
        assert metrics['stream_detect_kafka_broker_reachable{client="source"}'] == 1
        assert metrics['stream_detect_server_reachable{client="source",kind="kafka"}'] == 1
        assert 'stream_detect_server_failed_attempts_total{client="sink",kind="kafka"}' in metrics
        # The sink has written nothing yet (no alert): it has tried nothing to say about.
        assert 'stream_detect_server_reachable{client="sink",kind="kafka"}' not in metrics
        assert metrics["stream_detect_models_active"] == 2
        assert metrics["stream_detect_learned_events"] == 600
        assert partition_values(metrics, "partition_log_epsilon", events) == {
            0: -1000.0,
            1: -1000.0,
        }
        assert http_get(f"http://127.0.0.1:{port}/readyz") == b"ready\n"
        assert http_get(f"http://127.0.0.1:{port}/healthz") == b"ok\n"

        # A reload reaches every partition's detector: each now alerts on everything.
        config.write_text("log_epsilon = 50.0\nmin_samples = 20\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(
            lambda: (
                set(partition_values(scrape(port), "partition_log_epsilon", events).values())
                == {50.0}
            ),
            "the reloaded log epsilon in every partition",
            TIMEOUT_S,
        )
        produce(bootstrap, events, [{"x": float(i % 11)} for i in range(200)], keys=keys[:200])
        TopicReader(bootstrap, results).until(lambda records: len(records) >= 200)

        def settled() -> dict[str, float] | None:
            # The counters are refreshed every turn, the per-partition series when due.
            metrics = scrape(port)
            alerts = partition_values(metrics, "partition_alerts_total", events)
            if metrics.get("stream_detect_events_total") == 800 and sum(alerts.values()) == 200:
                return metrics
            return None

        metrics = wait_for(settled, "the 200 events after the reload", TIMEOUT_S)
        assert metrics["stream_detect_alerts_total"] == 200
        assert metrics['stream_detect_server_reachable{client="sink",kind="kafka"}'] == 1
        alerts = partition_values(metrics, "partition_alerts_total", events)
        assert all(count > 0 for count in alerts.values())
        stop(proc, TIMEOUT_S)
    finally:
        kill_if_running(proc)
    text = log.read_text()
    assert "Traceback" not in text and "config reload" not in text
    summary = json.loads(text.splitlines()[-1])["summary"]
    assert summary["events"] == 800 and summary["alerts"] == 200
    # The features are announced once, not once per partition.
    assert sum(line.startswith('{"features"') for line in text.splitlines()) == 1
