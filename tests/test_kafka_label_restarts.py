"""Feedback labels of a partition whose checkpoint holds no labels position survive a kill.

A member reads the labels topic whole and commits its position after each
read; a partition's checkpoint keeps the labels position it had read to. Two
kinds of partition had no such position: one checkpointed before its member's
labels reader first connected, and one that was never checkpointed at all. A
member killed after joining labels to their events lost those labels there:
its successor took the labels from the committed offset, past them. Each test
kills a member with SIGKILL, restarts it and checks that every label was
applied exactly once (the summary's counters, the validation buffer and the
labels position saved).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kafka_clients import kill_if_running, produce, stop
from label_members import (
    TIMEOUT_S,
    committed,
    counter,
    joined,
    member,
    summary,
    until_restored,
)
from monitoring import free_port, wait_for
from streams import detector_state

from stream_detect.kafka.address import parse_kafka_uri
from stream_detect.kafka.broker import EmbeddedBroker
from stream_detect.kafka.feed import state_file_name
from stream_detect.kafka.labels_reader import LabelsReader
from stream_detect.kafka.partitioned import PartitionedRun
from stream_detect.kafka.source import KafkaSource
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sources import parse_uri
from stream_detect.state import load_checkpoint, save_checkpoint
from stream_detect.testing import ListSink


def labelled_events() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """200 events (every 37th an anomaly) and the feedback labels of 38 of them."""
    rng = np.random.default_rng(11)
    stream = [
        {"id": n, "a": a + (9.0 if n % 37 == 36 else 0.0), "b": b}
        for n, (a, b) in enumerate(rng.normal(size=(200, 2)).tolist())
    ]
    feedback = [
        {"id": n, "label": int(n % 37 == 36)} for n in range(200) if n % 6 == 0 or n % 37 == 36
    ]
    return stream, feedback


def no_labels_position(path: Path) -> bool:
    """True if the checkpoint at ``path`` names no labels partition: it had read no label."""
    checkpoint = load_checkpoint(path)
    assert checkpoint is not None
    return not (checkpoint.labels or {}).get("offsets")


def validation_ids(state: dict[str, Any]) -> list[Any]:
    """The event ids of the validation buffer rows in a detector state."""
    found: list[Any] = []
    if isinstance(state, dict):
        if "capacity_per_class" in state and "ids" in state:
            return list(state["ids"])
        for value in state.values():
            found += validation_ids(value)
    elif isinstance(state, list):
        for value in state:
            found += validation_ids(value)
    return found


@pytest.mark.parametrize("checkpointed", ["before the labels reader connected", "never"])
def test_labels_of_a_partition_without_a_labels_position_are_applied_once_after_a_kill(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path, checkpointed: str
) -> None:
    # Before: a partition checkpointed while the labels topic did not exist yet (its
    # reader could not connect) saved no labels position, and one never checkpointed
    # had none at all. The killed member had joined the labels and committed the
    # labels topic past them; its successor restored the partition without a labels
    # position and took the labels from that commit: none was applied again (for the
    # one never checkpointed, not even to its events, read again from its start). The
    # labels are read as a group of their own, whose commits the broker takes.
    bootstrap = kafka_broker.bootstrap
    stream, feedback = labelled_events()
    never = checkpointed == "never"
    events, results = fresh_topic(kafka_broker), fresh_topic(kafka_broker)
    labels = f"t{uuid.uuid4().hex[:12]}"
    if never:
        kafka_broker.create_topic(labels)
    topics = (events, results, labels)
    state, log, http = tmp_path / "state", tmp_path / "killed.log", f"127.0.0.1:{free_port()}"
    state_file = state / state_file_name((events, 0))
    every = 1000 if never else 200
    produce(bootstrap, events, stream)
    proc = member(bootstrap, topics, "g", state, http, log, "g-labels", every)
    try:
        wait_for(lambda: counter(http, "events") == 200, "the events scored", TIMEOUT_S)
        if not never:
            wait_for(state_file.exists, "the checkpoint at 200 events", TIMEOUT_S)
            assert no_labels_position(state_file)
            kafka_broker.create_topic(labels)
        produce(bootstrap, labels, feedback)
        wait_for(lambda: joined(http) == len(feedback), "the labels joined", TIMEOUT_S)
        wait_for(
            lambda: committed(bootstrap, labels, "g-labels") == len(feedback),
            "the labels committed",
            TIMEOUT_S,
        )
        proc.kill()  # SIGKILL: the labels joined are in no checkpoint
        proc.wait(timeout=TIMEOUT_S)
        if never:
            assert not state_file.exists()
        else:
            assert no_labels_position(state_file)
            # Saved with no labels position at all, as an earlier version wrote it (and
            # still does for a partition read from=latest): the restore must not care.
            checkpoint = load_checkpoint(state_file)
            assert checkpoint is not None
            save_checkpoint(state_file, dataclasses.replace(checkpoint, labels=None))
        log, http = tmp_path / "restarted.log", f"127.0.0.1:{free_port()}"
        proc = member(bootstrap, topics, "g", state, http, log, "g-labels", every)
        until_restored(log, 0 if never else 1)
        # The one never checkpointed joins them as its events come again, from its start.
        wait_for(lambda: joined(http) == len(feedback), "the labels joined again", TIMEOUT_S)
        stop(proc, TIMEOUT_S)
    finally:
        kill_if_running(proc)
    restarted = summary(log)
    assert restarted["feedback_labels"] == len(feedback)
    assert restarted["repeated_feedback"] == 0
    assert restarted["unmatched_feedback"] == 0
    assert sorted(validation_ids(detector_state(state_file))) == sorted(
        str(label["id"]) for label in feedback
    )
    # Saved as having read them all, so a restart reads none again. Before, the reader
    # (connected at the labels' commit before the partition came) was back where it had
    # been once it had read them again, and the partition's position was left as none.
    checkpoint = load_checkpoint(state_file)
    assert checkpoint is not None and checkpoint.labels is not None
    assert checkpoint.labels["offsets"] == [
        {"topic": labels, "partition": 0, "offset": len(feedback)}
    ]


def test_a_partition_reading_the_labels_again_saves_the_position_it_reached(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    # The labels reader had connected and read the labels topic before the group
    # assigned a partition that reads it again from its start (it has no checkpoint);
    # read again, the reader was back where the partitions' positions had last been
    # brought up to, so the new partition's was not: its next checkpoint would have
    # said it had read no label, and the next restore would apply them all again.
    # And a record that is not feedback was counted and sent to the dead letters at
    # each reading.
    bootstrap = kafka_broker.bootstrap
    events, labels = fresh_topic(kafka_broker), fresh_topic(kafka_broker)
    produce(bootstrap, labels, [{"id": 0, "label": 0}, b"not feedback", {"id": 1, "label": 0}])
    source = KafkaSource(parse_kafka_uri(parse_uri(f"kafka://{bootstrap}/{events}?group=g")))
    reader = LabelsReader(parse_kafka_uri(parse_uri(f"kafka://{bootstrap}/{labels}?group=l")))
    dead_letters = ListSink()
    run = PartitionedRun(
        RunSettings(state_dir=str(tmp_path)),
        DetectorSettings(id_field="id", label_field="label"),
        source=source,
        sink=ListSink(),
        dead_letter=dead_letters,
        labels=reader,
    )
    try:

        def read_to_end() -> bool:
            run.feedback.apply_waiting(reader)
            return reader.next_offsets() == {(labels, 0): 3}

        wait_for(read_to_end, "the labels read", TIMEOUT_S)
        assert source.on_assigned is not None
        source.on_assigned([(events, 0)])  # as the group's assignment calls it
        pipeline = run.pipelines[(events, 0)]
        assert pipeline.checkpoints.labels_position == {"offsets": []}
        wait_for(read_to_end, "the labels read again", TIMEOUT_S)
        assert pipeline.checkpoints.labels_position == {
            "offsets": [{"topic": labels, "partition": 0, "offset": 3}]
        }
        assert len(run.held_feedback.drain()) == 2  # held once each, for events to come
        # What is not feedback is a dead letter once, though read twice.
        assert [letter["position"]["offset"] for letter in dead_letters.records] == [1]
        assert run.summary.bad_feedback == 1
    finally:
        reader.close()
        source.close()


def test_labels_read_under_the_events_group_are_committed_under_a_group_of_their_own(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    # The labels reader is assigned every partition, it does not join: a broker takes
    # its commits for a group only while that group has no members. Named the events'
    # group (as both are by default), every labels commit was refused, silently, and
    # each start read the labels from where from= says. They now go to GROUP-labels.
    bootstrap = kafka_broker.bootstrap
    stream, feedback = labelled_events()
    topics = (fresh_topic(kafka_broker), fresh_topic(kafka_broker), fresh_topic(kafka_broker))
    http = f"127.0.0.1:{free_port()}"
    produce(bootstrap, topics[0], stream)
    produce(bootstrap, topics[2], feedback)
    proc = member(bootstrap, topics, "g", tmp_path / "state", http, tmp_path / "member.log")
    try:
        wait_for(lambda: joined(http) == len(feedback), "the labels joined", TIMEOUT_S)
        wait_for(
            lambda: committed(bootstrap, topics[2], "g-labels") == len(feedback),
            "the labels committed under g-labels",
            TIMEOUT_S,
        )
        stop(proc, TIMEOUT_S)
    finally:
        kill_if_running(proc)
    # Read before the group assigned the partition, held, then read again for it (it
    # learns its events from their start): applied once, not once more as a repeat.
    said = summary(tmp_path / "member.log")
    assert (said["feedback_labels"], said["repeated_feedback"]) == (len(feedback), 0)
