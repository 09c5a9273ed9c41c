"""The demo's detection step through Kafka: events to a topic, results from a topic.

:func:`detect_through_kafka` does what the in-memory demo does with a list,
through a broker: it produces the events to a fresh topic, runs the
partitioned pipeline from that topic to a results topic (the same
:func:`~stream_detect.kafka.partitioned.run_partitioned` as ``stream-detect
run --source kafka://...``), and reads the results back. With no bootstrap
server it starts an embedded broker (:class:`EmbeddedBroker`) on a free
loopback port and stops it at the end, however the run ends.

The topics have one partition, so one detector sees every event in order and
the report is the same as the in-memory demo's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import kafka
import orjson
from kafka import errors as kafka_errors

from stream_detect.errors import ConfigError, StreamDetectError
from stream_detect.kafka.broker import QUICK_GROUP_OPTIONS, EmbeddedBroker
from stream_detect.kafka.partitioned import run_partitioned
from stream_detect.kafka.status import error_reason
from stream_detect.pipeline import Summary
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sinks.json_encoding import encode_json_line

__all__ = ["detect_through_kafka"]

#: Longest a TCP connection to each broker given may take in the check that one listens.
_DIAL_S = 2.0

#: Longest the results may take to come back once the run has ended.
_READ_BACK_S = 60.0

#: Longest the first contact with the broker may take: a demo should not sit silent
#: for the client's default 30 s before saying that nothing answers.
_FIRST_CONTACT_MS = 10_000


def detect_through_kafka(
    events: list[dict[str, Any]],
    run: RunSettings,
    detector: DetectorSettings,
    *,
    bootstrap: str | None = None,
) -> tuple[list[dict[str, Any]], Summary]:
    """Score ``events`` through a broker; return the results read back and the run's summary.

    ``bootstrap`` is ``HOST:PORT[,HOST:PORT]`` of a running broker, or None
    for an embedded one. ``run`` supplies everything but the source and sink.
    A ``bootstrap`` where no broker answers is a :class:`ConfigError` naming
    ``--kafka``.
    """
    with _broker(bootstrap) as address:
        name = f"stream-detect-demo-{uuid.uuid4().hex[:8]}"
        events_topic, results_topic = f"{name}-events", f"{name}-results"
        try:
            if bootstrap:
                _check_something_listens(bootstrap)
            _create_topics(address, [events_topic, results_topic])
        except kafka_errors.KafkaError as error:
            # The first contact with the broker: one that never answers is the user's address.
            reason = error_reason(error)
            if bootstrap:
                raise ConfigError(
                    "--kafka", bootstrap, f"the HOST:PORT of a Kafka broker that answers ({reason})"
                ) from None
            raise StreamDetectError(
                f"the embedded Kafka broker did not answer ({reason})"
            ) from None
        _produce(address, events_topic, events)
        quick = "&".join(f"{key}={value}" for key, value in QUICK_GROUP_OPTIONS.items())
        settings = dataclasses.replace(
            run,
            source=f"kafka://{address}/{events_topic}?group={name}&until=end&{quick}",
            sink=f"kafka://{address}/{results_topic}",
        )
        summary = run_partitioned(settings, detector)
        records = _read_back(address, results_topic, summary.events)
    return records, summary


@contextlib.contextmanager
def _broker(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap


def _check_something_listens(bootstrap: str) -> None:
    """Raise ConfigError at once if every broker of ``bootstrap`` refuses a connection.

    The client would retry a refused address for its whole first-contact
    wait; a refusal is an answer (nothing listens there), so it is said now.
    Any other outcome, a connection or a dial that times out, is left to the
    client.

    >>> with socket.socket() as taken:  # a port bound but not listening refuses
    ...     taken.bind(("127.0.0.1", 0))
    ...     try:
    ...         _check_something_listens(f"127.0.0.1:{taken.getsockname()[1]}")
    ...     except ConfigError as error:
    ...         print(error.expected)
    the HOST:PORT of a Kafka broker that answers (connection refused: nothing listens there)
    """
    for broker in bootstrap.split(","):
        host, _, port = broker.strip().rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=_DIAL_S).close()
        except ConnectionRefusedError:
            continue
        except OSError:
            return
        return
    raise ConfigError(
        "--kafka",
        bootstrap,
        "the HOST:PORT of a Kafka broker that answers (connection refused: nothing listens there)",
    )


def _create_topics(address: str, names: list[str]) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(
        bootstrap_servers=address.split(","), bootstrap_timeout_ms=_FIRST_CONTACT_MS
    )
    try:
        admin.create_topics([NewTopic(name, 1, 1) for name in names])
    finally:
        admin.close()


def _produce(address: str, topic: str, events: list[dict[str, Any]]) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=address.split(","), linger_ms=20)
    try:
        for event in events:
            producer.send(topic, value=encode_json_line(event)[:-1])
        producer.flush()
    finally:
        producer.close()


def _read_back(address: str, topic: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` records of ``topic`` (partition 0), decoded."""
    consumer = kafka.KafkaConsumer(bootstrap_servers=address.split(","), enable_auto_commit=False)
    records: list[dict[str, Any]] = []
    try:
        consumer.assign([kafka.TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        deadline = time.monotonic() + _READ_BACK_S
        while len(records) < count:
            if time.monotonic() > deadline:
                raise StreamDetectError(
                    f"only {len(records)} of {count} results came back from topic {topic}"
                )
            for batch in consumer.poll(timeout_ms=500, max_records=10_000).values():
                records.extend(orjson.loads(message.value) for message in batch)
    finally:
        consumer.close(autocommit=False)
    return records
