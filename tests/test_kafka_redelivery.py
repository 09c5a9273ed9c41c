"""A partition read again below its committed offset (real broker): learned, not rewritten."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kafka_clients import (
    REPO,
    RUN,
    TopicReader,
    confluent_kafka,
    kafka_uri,
    kill_if_running,
    killable_uri,
    produce,
)
from streams import assert_same_detector, detector_state

from stream_detect.detections import Detections
from stream_detect.kafka.broker import EmbeddedBroker
from stream_detect.kafka.feed import state_file_name
from stream_detect.kafka.redelivery import DeliveredBefore
from stream_detect.records import Decoded
from stream_detect.results import ResultBatch
from stream_detect.sinks.base import EncodedAsJsonLines, Sink
from stream_detect.sinks.json_encoding import encode_json_line
from stream_detect.state import load_checkpoint
from stream_detect.summary import Summary

TIMEOUT_S = 120.0
#: Every event has a result (a duplicate cannot hide among the non-alerts), some events
#: carry a label (the validation buffer fills, ε is chosen on it), and nothing is timed:
#: a partition's learning then depends only on its events, in order, whatever batches
#: they came in.
SETTINGS = [
    "--emit",
    "all",
    "--id-field",
    "id",
    "--label-field",
    "label",
    "--batch-size",
    "50",
    "--retune-seconds",
    "0",
    "--checkpoint-seconds",
    "0",
]


def events(start: int, count: int) -> list[dict[str, Any]]:
    """Events numbered from ``start``: Gaussian, one in 37 far out, one in 7 labelled."""
    rng = np.random.default_rng(start)
    out: list[dict[str, Any]] = []
    for n, (a, b) in enumerate(rng.normal(size=(count, 2)).tolist(), start):
        far = n % 37 == 36
        event: dict[str, Any] = {"id": n, "a": a + (9.0 if far else 0.0), "b": b}
        if n % 7 == 0:
            event["label"] = int(far)
        out.append(event)
    return out


def command(source: str, sink: str, state: Path, checkpoint_every: int) -> list[str]:
    return [
        *RUN,
        "--source",
        source,
        "--sink",
        sink,
        "--state-dir",
        str(state),
        "--checkpoint-every",
        str(checkpoint_every),
        *SETTINGS,
    ]


def wait_for_commit(bootstrap: str, topic: str, group: str, offset: int) -> None:
    """Wait until ``group`` committed ``offset`` for partition 0 of ``topic`` (or fail)."""
    watcher = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while True:
            (committed,) = watcher.committed([confluent_kafka.TopicPartition(topic, 0)], 10)
            if committed.offset == offset:
                return
            assert time.monotonic() < deadline, f"{group} committed {committed.offset}"
            time.sleep(0.2)
    finally:
        watcher.close()


def whole_topic(reader: TopicReader, topic: str) -> list[dict[str, Any]]:
    """Every record of ``topic`` (partition 0) there is now, read to its end."""
    _, end = reader.consumer.get_watermark_offsets(
        confluent_kafka.TopicPartition(topic, 0), timeout=10
    )
    return reader.until(lambda records: len(records) >= end)


def run_to_end(args: list[str]) -> subprocess.Popen[bytes]:
    """Start a run that ends by itself (``until=end``), its stderr to a pipe."""
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)


def ended(proc: subprocess.Popen[bytes]) -> str:
    """The stderr of ``proc``, which must exit 0 without a traceback."""
    try:
        _, stderr = proc.communicate(timeout=TIMEOUT_S)
    finally:
        kill_if_running(proc)
    text = stderr.decode()
    assert proc.returncode == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    return text


@pytest.mark.parametrize("checkpoint_at", [0, 100])
def test_a_member_killed_between_checkpoints_does_not_write_committed_results_again(
    kafka_broker: EmbeddedBroker,
    fresh_topic: Callable[..., str],
    tmp_path: Path,
    checkpoint_at: int,
) -> None:
    # The partition's state is checkpointed every 100,000 events by default, its
    # offsets committed after every batch. A member killed in between was followed
    # by one that read the partition again from its checkpoint (or its beginning,
    # when there was none yet) to learn those events again, and wrote every result
    # of them a second time.
    bootstrap = kafka_broker.bootstrap
    topic, sink = fresh_topic(kafka_broker), fresh_topic(kafka_broker)
    stream = events(0, 450)
    state = tmp_path / "state"
    group = "redelivery"
    if checkpoint_at:
        # A run that ends cleanly: checkpointed and committed at the same offset.
        produce(bootstrap, topic, stream[:checkpoint_at])
        ended(
            run_to_end(
                command(
                    killable_uri(bootstrap, topic, group=group, until="end"),
                    kafka_uri(bootstrap, sink),
                    state,
                    10**5,
                )
            )
        )
    produce(bootstrap, topic, stream[checkpoint_at:400])
    log = tmp_path / "killed.log"
    killed = subprocess.Popen(
        command(
            killable_uri(bootstrap, topic, group=group), kafka_uri(bootstrap, sink), state, 10**5
        ),
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        cwd=REPO,
    )
    try:
        reader = TopicReader(bootstrap, sink)
        reader.until(lambda records: len(records) >= 400)
        wait_for_commit(bootstrap, topic, group, 400)
        killed.kill()  # SIGKILL: no checkpoint, no goodbye
        killed.wait(timeout=TIMEOUT_S)
    finally:
        kill_if_running(killed)
    state_file = state / state_file_name((topic, 0))
    if checkpoint_at:
        checkpoint = load_checkpoint(state_file)
        assert checkpoint is not None
        assert checkpoint.source["offsets"][0]["offset"] == checkpoint_at
    else:
        assert not state_file.exists(), log.read_text()[-3000:]
    produce(bootstrap, topic, stream[400:])

    restarted = run_to_end(
        command(
            killable_uri(bootstrap, topic, group=group, until="end"),
            kafka_uri(bootstrap, sink),
            state,
            10**5,
        )
    )
    (tmp_path / "whole").mkdir()
    whole = run_to_end(
        command(
            killable_uri(bootstrap, topic, group="whole", until="end"),
            kafka_uri(bootstrap, fresh_topic(kafka_broker)),
            tmp_path / "whole",
            10**5,
        )
    )
    text, whole_text = ended(restarted), ended(whole)

    # One result per offset: the committed ones were not written again.
    results = whole_topic(reader, sink)
    reader.close()
    offsets = Counter(r["position"]["offset"] for r in results)
    assert sorted(offsets) == list(range(450))
    assert [o for o, times in offsets.items() if times > 1] == []
    # Said once, and counted.
    (line,) = [line for line in text.splitlines() if "re-reading" in line]
    assert f"partition {topic}/0: re-reading offsets {checkpoint_at}..399 to rebuild its" in line
    summary = json.loads(text.splitlines()[-1])["summary"]
    assert summary["already_delivered"] == 400 - checkpoint_at
    assert summary["events"] == 450 - checkpoint_at
    # The events were learned again all the same: the state is an uninterrupted run's,
    # its validation buffer, counters and remembered ids included.
    theirs = tmp_path / "whole" / state_file_name((topic, 0))
    assert_same_detector(detector_state(state_file), detector_state(theirs))
    assert json.loads(whole_text.splitlines()[-1])["summary"]["already_delivered"] == 0


class Kept(Sink):
    """What a sink was given, as JSON lines (as a Kafka or file sink encodes a batch)."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write_batch(self, records: Sequence[Mapping[str, Any]]) -> None:
        if isinstance(records, EncodedAsJsonLines):
            self.lines += b"".join(records.json_lines()).splitlines(keepends=True)
        else:
            self.lines += [encode_json_line(record) for record in records]

    def flush(self) -> None:
        return


def test_a_batch_across_the_committed_offset_writes_the_results_from_it_on_unchanged() -> None:
    # The batch that crosses the committed offset: the results from it on are the
    # bytes the batch would have written, its dead letters from it on too, and a
    # dead letter of another topic (a feedback label's) is not the partition's.
    decoded = Decoded.empty(1)
    decoded.values = np.arange(6, dtype=np.float64).reshape(6, 1)
    decoded.records = [{"x": float(i)} for i in range(6)]
    decoded.positions = [{"topic": "t", "partition": 0, "offset": 10 + i} for i in range(6)]
    found = Detections.empty(6)
    found.alert[[1, 4, 5]] = True
    whole, cut = Kept(), Kept()
    summary = Summary()
    for emit in ("all", "alerts"):
        whole.write_batch(ResultBatch.of(decoded, found, emit=emit))
        DeliveredBefore(cut, ("t", 0), 14, summary).write_batch(
            ResultBatch.of(decoded, found, emit=emit)
        )
    assert cut.lines == [
        line for line in whole.lines if json.loads(line)["position"]["offset"] >= 14
    ]
    assert summary.already_delivered == 4 + 1
    dead = [
        {"position": {"topic": "t", "partition": 0, "offset": 13}, "reason": "r", "raw": ""},
        {"position": {"topic": "t", "partition": 1, "offset": 3}, "reason": "r", "raw": ""},
        {"position": {"topic": "labels", "partition": 0, "offset": 2}, "reason": "r", "raw": ""},
        {"position": {"topic": "t", "partition": 0, "offset": 14}, "reason": "r", "raw": ""},
    ]
    letters = Kept()
    DeliveredBefore(letters, ("t", 0), 14, summary).write_batch(dead)
    assert letters.lines == [encode_json_line(record) for record in dead[1:]]
    assert summary.already_delivered == 6
