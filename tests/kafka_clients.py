"""confluent-kafka as the independent client of the Kafka tests: it produces and reads topics."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

confluent_kafka = pytest.importorskip(
    "confluent_kafka", reason="confluent-kafka is the tests' independent Kafka client (dev extra)"
)

REPO = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "stream_detect", "run"]
#: Client options that make a group join the embedded broker quickly (see its module docstring).
QUICK = "max_poll_interval_ms=3000&session_timeout_ms=6000&heartbeat_interval_ms=1000"
#: Client options for a group the embedded broker settles quickly, a killed member included.
QUICKER = "max_poll_interval_ms=1500&session_timeout_ms=2500&heartbeat_interval_ms=500"


def produce(
    bootstrap: str,
    topic: str,
    events: list[Any],
    *,
    keys: list[str] | None = None,
    options: dict[str, Any] | None = None,
    partition: int | None = None,
) -> None:
    """Produce ``events`` (JSON-encoded unless bytes) in order, acknowledged before returning.

    An event that is None is produced with a null value: a tombstone.
    ``options`` are more librdkafka producer settings (``message.max.bytes``);
    ``partition`` the one partition to produce to (else the producer's partitioner picks).
    """
    where = {} if partition is None else {"partition": partition}
    config = {"bootstrap.servers": bootstrap, "linger.ms": 5, **(options or {})}
    producer = confluent_kafka.Producer(config)
    for i, event in enumerate(events):
        value = event if event is None or isinstance(event, bytes) else json.dumps(event).encode()
        key = None if keys is None else keys[i].encode()
        producer.produce(topic, value=value, key=key, **where)
        if i % 1000 == 999:
            producer.poll(0)
    assert producer.flush(30) == 0


def read_topic(
    bootstrap: str, topic: str, count: int, *, timeout_s: float = 60.0, partitions: int = 1
) -> list[dict[str, Any]]:
    """At least ``count`` JSON records of ``topic`` from its start (every partition), or fail."""
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False}
    )
    consumer.assign(
        [
            confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
            for p in range(partitions)
        ]
    )
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < count and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                if message.error() is None:
                    out.append(json.loads(message.value()))
    finally:
        consumer.close()
    assert len(out) >= count, f"only {len(out)} of {count} records came from {topic}"
    return out


def stop(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Ask the detector ``proc`` to stop (SIGTERM) and check that it exits 0 in time."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=timeout_s) == 0


def kill_if_running(proc: subprocess.Popen[bytes]) -> None:
    """Kill ``proc`` if a failed test left it running, and reap it."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def kafka_uri(bootstrap: str, topic: str, **params: str) -> str:
    """``kafka://BOOTSTRAP/TOPIC?...`` with the quick group options."""
    query = "&".join([QUICK, *(f"{name}={value}" for name, value in params.items())])
    return f"kafka://{bootstrap}/{topic}?{query}"


def killable_uri(bootstrap: str, topic: str, **params: str) -> str:
    """A source URI whose group forgets a killed member soon (its session ends in 2.5 s)."""
    query = "&".join([QUICKER, *(f"{name}={value}" for name, value in params.items())])
    return f"kafka://{bootstrap}/{topic}?{query}"


class TopicReader:
    """A reader of every partition of a topic from its start, kept open between reads."""

    def __init__(self, bootstrap: str, topic: str, partitions: int = 1) -> None:
        self.consumer = confluent_kafka.Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False}
        )
        self.consumer.assign(
            [
                confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
                for p in range(partitions)
            ]
        )
        self.records: list[dict[str, Any]] = []

    def until(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 60.0
    ) -> list[dict[str, Any]]:
        """Read on until ``done(records so far)`` is true; fail the test after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not done(self.records):
            assert time.monotonic() < deadline, f"only {len(self.records)} records came"
            for message in self.consumer.consume(num_messages=10_000, timeout=0.5):
                if message.error() is None:
                    self.records.append(json.loads(message.value()))
        return self.records

    def close(self) -> None:
        self.consumer.close()
