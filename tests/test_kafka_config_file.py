"""configs/kafka-alerts.toml, run for real against a broker, on fresh topics."""

from __future__ import annotations

import json
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

from kafka_clients import QUICK, REPO, RUN, produce, read_topic

from stream_detect.kafka.broker import EmbeddedBroker
from stream_detect.synthetic import generate_events

CONFIG = REPO / "configs" / "kafka-alerts.toml"


def test_the_kafka_config_runs_against_a_broker(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    settings = tomllib.loads(CONFIG.read_text())
    written = "127.0.0.1:9092"
    assert settings["source"] == f"kafka://{written}/events?group=detector"
    bootstrap = kafka_broker.bootstrap
    events, alerts, dead = (fresh_topic(kafka_broker) for _ in range(3))
    stream = generate_events(1500, 3).events
    for event in stream:
        event["event_id"] = f"3-{event.pop('id')}"
    produce(bootstrap, events, stream)

    def moved(uri: str, topic: str) -> str:
        """The config's URI on the test's broker and topic, the rest as written."""
        old_topic = uri.partition(written + "/")[2].partition("?")[0]
        return uri.replace(f"{written}/{old_topic}", f"{bootstrap}/{topic}")

    (tmp_path / "state").mkdir()
    done = subprocess.run(
        [
            *RUN,
            "--config",
            str(CONFIG),
            "--source",
            moved(settings["source"], events) + f"&until=end&{QUICK}",
            "--sink",
            moved(settings["sink"], alerts),
            "--dead-letter",
            moved(settings["dead_letter"], dead),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stderr.splitlines()[-1])["summary"]
    assert summary["events"] == len(stream) and summary["bad_records"] == 0
    assert summary["alerts"] > 0
    assert [path.name for path in (tmp_path / "state").iterdir()] == [f"{events}-0.json"]
    produced = read_topic(bootstrap, alerts, summary["alerts"])
    assert all(record["alert"] and record["position"]["topic"] == events for record in produced)
