"""Group members reading feedback labels from Kafka, for the tests that kill and restart them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from kafka_clients import REPO, RUN, confluent_kafka, killable_uri
from monitoring import http_get, wait_for

TIMEOUT_S = 60.0


def member(
    bootstrap: str,
    topics: tuple[str, str, str],
    group: str,
    state: Path,
    http: str,
    log: Path,
    labels_group: str | None = None,
    checkpoint_every: int = 200,
) -> subprocess.Popen[bytes]:
    """A group member checkpointing every ``checkpoint_every`` events, labels by Kafka.

    Its metrics are served on ``http``. The labels are read (and their offsets
    committed) as ``labels_group``, ``group`` if None.
    """
    events, results, labels = topics
    return subprocess.Popen(
        [
            *RUN,
            "--source",
            killable_uri(bootstrap, events, group=group),
            "--sink",
            f"kafka://{bootstrap}/{results}",
            "--labels",
            killable_uri(bootstrap, labels, group=labels_group or group),
            "--state-dir",
            str(state),
            "--checkpoint-every",
            str(checkpoint_every),
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


def counter(http: str, name: str) -> int:
    """The member's counter ``stream_detect_NAME_total``, from its metrics (0 before it shows)."""
    for line in http_get(f"http://{http}/metrics").decode().splitlines():
        if line.startswith(f"stream_detect_{name}_total "):
            return int(float(line.split()[1]))
    return 0


def joined(http: str) -> int:
    """The member's count of feedback labels joined to their event, from its metrics."""
    return counter(http, "feedback_labels")


def until_restored(log: Path, partitions: int) -> None:
    """Wait until the member logging to ``log`` has restored its partitions' checkpoints.

    Only then is the next label produced: the member's labels reader, connected
    meanwhile, has read nothing new by the time of the restore.
    """
    said = f"({partitions} restored from checkpoints)"
    wait_for(lambda: said in log.read_text(), "the checkpoints restored", TIMEOUT_S)


def summary(log: Path) -> dict[str, Any]:
    """The summary the member logging to ``log`` printed last, once it found no traceback."""
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    result: dict[str, Any] = json.loads(text.splitlines()[-1])["summary"]
    return result


def committed(bootstrap: str, topic: str, group: str) -> int:
    """The offset ``group`` has committed for partition 0 of ``topic`` (negative: none)."""
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        (tp,) = consumer.committed([confluent_kafka.TopicPartition(topic, 0)], timeout=30)
    finally:
        consumer.close()
    return int(tp.offset)
