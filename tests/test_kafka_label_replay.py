"""Feedback labels of a partition killed between checkpoints are applied again (real broker)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from kafka_clients import REPO, RUN, TopicReader, kill_if_running, produce, stop
from monitoring import free_port, http_get, wait_for
from streams import assert_same_detector, detector_state

from stream_detect.kafka.broker import EmbeddedBroker
from stream_detect.kafka.partitioned import state_file_name
from stream_detect.state import load_checkpoint

TIMEOUT_S = 60.0
#: Client options for a group the embedded broker settles quickly, a killed member included.
QUICKER = "max_poll_interval_ms=1500&session_timeout_ms=2500&heartbeat_interval_ms=500"


def uri(bootstrap: str, topic: str, group: str) -> str:
    return f"kafka://{bootstrap}/{topic}?{QUICKER}&group={group}"


def member(
    bootstrap: str, topics: tuple[str, str, str], group: str, state: Path, http: str, log: Path
) -> subprocess.Popen[bytes]:
    """A group member checkpointing every 200 events, labels by Kafka, metrics on ``http``."""
    events, results, labels = topics
    return subprocess.Popen(
        [
            *RUN,
            "--source",
            uri(bootstrap, events, group),
            "--sink",
            f"kafka://{bootstrap}/{results}",
            "--labels",
            uri(bootstrap, labels, group),
            "--state-dir",
            str(state),
            "--checkpoint-every",
            "200",
            "--checkpoint-seconds",
            "0",
            "--retune-seconds",
            "0",
            "--batch-size",
            "50",
            "--emit",
            "all",
            "--id-field",
            "id",
            "--label-field",
            "label",
            "--http",
            http,
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        cwd=REPO,
    )


def joined(http: str) -> int:
    """The member's count of feedback labels joined to their event, from its metrics."""
    for line in http_get(f"http://{http}/metrics").decode().splitlines():
        if line.startswith("stream_detect_feedback_labels_total "):
            return int(float(line.split()[1]))
    return 0


def summary(log: Path) -> dict[str, Any]:
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    result: dict[str, Any] = json.loads(text.splitlines()[-1])["summary"]
    return result


def test_labels_applied_after_the_last_checkpoint_are_applied_again_after_a_kill(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    # A member checkpointed its partition, then joined feedback labels to events of
    # it and was killed. Its successor restored the checkpoint (without those labels)
    # and read the labels topic on from the committed offset, past them: the
    # partition's validation buffer and ε lost those labels for good.
    bootstrap = kafka_broker.bootstrap
    rng = np.random.default_rng(5)
    stream = [
        {"id": n, "a": a + (9.0 if n % 37 == 36 else 0.0), "b": b}
        for n, (a, b) in enumerate(rng.normal(size=(200, 2)).tolist())
    ]
    feedback = [
        {"id": n, "label": int(n % 37 == 36)} for n in range(200) if n % 6 == 0 or n % 37 == 36
    ]
    marker = {"id": 1, "label": 0}  # sent after the kill: read after the labels before it
    runs = {}
    for name in ("killed", "whole"):
        topics = (fresh_topic(kafka_broker), fresh_topic(kafka_broker), fresh_topic(kafka_broker))
        events, results, labels = topics
        state, log, http = tmp_path / name, tmp_path / f"{name}.log", f"127.0.0.1:{free_port()}"
        produce(bootstrap, events, stream)
        proc = member(bootstrap, topics, name, state, http, log)
        state_file = state / state_file_name((events, 0))
        try:
            TopicReader(bootstrap, results).until(lambda records: len(records) >= 200)
            wait_for(state_file.exists, "the checkpoint at 200 events", TIMEOUT_S)
            produce(bootstrap, labels, feedback)
            wait_for(lambda h=http: joined(h) == len(feedback), "the labels joined", TIMEOUT_S)
            if name == "killed":
                proc.kill()  # SIGKILL: the labels are in no checkpoint
                proc.wait(timeout=TIMEOUT_S)
                checkpoint = load_checkpoint(state_file)
                assert checkpoint is not None
                assert checkpoint.source["offsets"][0]["offset"] == 200
                log = tmp_path / "restarted.log"
                http = f"127.0.0.1:{free_port()}"
                proc = member(bootstrap, topics, name, state, http, log)
            produce(bootstrap, labels, [marker])
            least = 1 if name == "killed" else len(feedback) + 1
            wait_for(lambda h=http, n=least: joined(h) >= n, "the marker label joined", TIMEOUT_S)
            stop(proc, TIMEOUT_S)
        finally:
            kill_if_running(proc)
        runs[name] = (summary(log), detector_state(state_file))
    (restarted, restored), (whole, reference) = runs["killed"], runs["whole"]
    assert restarted["feedback_labels"] == whole["feedback_labels"] == len(feedback) + 1
    assert restarted["repeated_feedback"] == whole["repeated_feedback"] == 0
    assert_same_detector(restored, reference)
