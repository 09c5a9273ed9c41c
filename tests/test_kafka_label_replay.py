"""Feedback labels of a partition killed between checkpoints are applied again (real broker)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from kafka_clients import TopicReader, kill_if_running, produce, stop
from label_members import TIMEOUT_S, committed, joined, member, summary, until_restored
from monitoring import free_port, wait_for
from streams import assert_same_detector, detector_state

from stream_detect.kafka.address import parse_kafka_uri
from stream_detect.kafka.broker import EmbeddedBroker
from stream_detect.kafka.feed import state_file_name
from stream_detect.kafka.labels_reader import LabelsReader
from stream_detect.sources import parse_uri
from stream_detect.state import load_checkpoint


@pytest.mark.parametrize("labels_group", ["events'", "its own"])
def test_labels_applied_after_the_last_checkpoint_are_applied_again_after_a_kill(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path, labels_group: str
) -> None:
    # A member checkpointed its partition, then joined feedback labels to events of
    # it and was killed. Its successor restored the checkpoint (without those labels)
    # and read the labels topic on from the committed offset, past them: the
    # partition's validation buffer and ε lost those labels for good.
    # The checkpoint was written while the labels topic was empty: it named no labels
    # partition, so nothing was rewound, and the reader (connected after the restore)
    # started at the labels' committed offset. With the labels read as a group of their
    # own, which the broker takes the commits of, that offset is past the labels joined
    # after the checkpoint: the successor's restore must not depend on it. (Its labels
    # reader connected during the group join, had read nothing by the restore, and did
    # not yet say where it was.)
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
        own = f"{name}-labels" if labels_group == "its own" else None
        proc = member(bootstrap, topics, name, state, http, log, own)
        state_file = state / state_file_name((events, 0))
        try:
            TopicReader(bootstrap, results).until(lambda records: len(records) >= 200)
            wait_for(state_file.exists, "the checkpoint at 200 events", TIMEOUT_S)
            produce(bootstrap, labels, feedback)
            wait_for(lambda h=http: joined(h) == len(feedback), "the labels joined", TIMEOUT_S)
            if name == "killed":
                if own is not None:
                    # The commit runs ahead of the checkpoint: the restore must not heed it.
                    wait_for(
                        lambda t=labels, g=own: committed(bootstrap, t, g) == len(feedback),
                        "the labels committed",
                        TIMEOUT_S,
                    )
                proc.kill()  # SIGKILL: the labels are in no checkpoint
                proc.wait(timeout=TIMEOUT_S)
                checkpoint = load_checkpoint(state_file)
                assert checkpoint is not None
                assert checkpoint.source["offsets"][0]["offset"] == 200
                log = tmp_path / "restarted.log"
                http = f"127.0.0.1:{free_port()}"
                proc = member(bootstrap, topics, name, state, http, log, own)
                until_restored(log, 1)
            produce(bootstrap, labels, [marker])
            # Every label is joined again after the restore, then the marker: waiting for
            # fewer could stop the member before it had read them all.
            wait_for(
                lambda h=http: joined(h) >= len(feedback) + 1, "the marker label joined", TIMEOUT_S
            )
            stop(proc, TIMEOUT_S)
        finally:
            kill_if_running(proc)
        runs[name] = (summary(log), detector_state(state_file))
    (restarted, restored), (whole, reference) = runs["killed"], runs["whole"]
    assert restarted["feedback_labels"] == whole["feedback_labels"] == len(feedback) + 1
    assert restarted["repeated_feedback"] == whole["repeated_feedback"] == 0
    assert_same_detector(restored, reference)


def test_a_label_read_again_goes_only_to_the_partition_that_had_not_read_it(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    # Two events partitions of one member joined the same labels; partition 1 then
    # checkpointed past them, partition 0 did not, and the member was killed. Its
    # successor restores both: the labels topic is read again from partition 0's
    # position, and each label is offered only to partition 0, which lacks them. A
    # label of partition 1's events, which it had applied, is neither applied again
    # nor held (it would end as an unmatched dead letter); partition 0 applies its own
    # again. Before, partition 0's checkpoint (written while the labels topic was
    # empty) named no labels partition and nothing was read again; with that closed,
    # partition 1's labels, offered to partition 0 alone on a member that had read
    # nothing yet, were held.
    bootstrap = kafka_broker.bootstrap
    rng = np.random.default_rng(7)
    streams = {
        number: [
            {"id": 1000 * number + n, "a": a + (9.0 if n % 37 == 36 else 0.0), "b": b}
            for n, (a, b) in enumerate(rng.normal(size=(200, 2)).tolist())
        ]
        for number in (0, 1)
    }
    more = [
        {"id": 1500 + n, "a": a, "b": b}
        for n, (a, b) in enumerate(rng.normal(size=(200, 2)).tolist())
    ]
    feedback = [
        {"id": event["id"], "label": int(event["id"] % 37 == 36)}
        for number in (0, 1)
        for event in streams[number]
        if event["id"] % 6 == 0 or event["id"] % 37 == 36
    ]
    ours = sum(label["id"] < 1000 for label in feedback)
    marker = {"id": 1, "label": 0}  # sent after the kill: read after the labels before it
    runs = {}
    for name in ("killed", "whole"):
        events = fresh_topic(kafka_broker, 2)
        topics = (events, fresh_topic(kafka_broker), fresh_topic(kafka_broker))
        labels = topics[2]
        state, log, http = tmp_path / name, tmp_path / f"{name}.log", f"127.0.0.1:{free_port()}"
        for number in (0, 1):
            produce(bootstrap, events, streams[number], partition=number)
        proc = member(bootstrap, topics, name, state, http, log, f"{name}-labels")
        files = [state / state_file_name((events, number)) for number in (0, 1)]

        def saved_at(number: int, offset: int, files: list[Path] = files) -> bool:
            checkpoint = load_checkpoint(files[number]) if files[number].exists() else None
            return checkpoint is not None and checkpoint.source["offsets"][0]["offset"] == offset

        try:
            wait_for(lambda: saved_at(0, 200) and saved_at(1, 200), "the checkpoints", TIMEOUT_S)
            produce(bootstrap, labels, feedback)
            wait_for(lambda h=http: joined(h) == len(feedback), "the labels joined", TIMEOUT_S)
            produce(bootstrap, events, more, partition=1)  # partition 1 checkpoints again
            wait_for(lambda: saved_at(1, 400), "partition 1's checkpoint at 400", TIMEOUT_S)
            if name == "killed":
                proc.kill()  # SIGKILL: partition 0's labels are in no checkpoint
                proc.wait(timeout=TIMEOUT_S)
                assert saved_at(0, 200)
                log = tmp_path / "restarted.log"
                http = f"127.0.0.1:{free_port()}"
                proc = member(bootstrap, topics, name, state, http, log, f"{name}-labels")
                until_restored(log, 2)
            produce(bootstrap, labels, [marker])
            least = ours + 1 if name == "killed" else len(feedback) + 1
            wait_for(lambda h=http, n=least: joined(h) >= n, "the marker label joined", TIMEOUT_S)
            stop(proc, TIMEOUT_S)
        finally:
            kill_if_running(proc)
        runs[name] = (summary(log), [detector_state(path) for path in files])
    (restarted, restored), (whole, reference) = runs["killed"], runs["whole"]
    assert whole["feedback_labels"] == len(feedback) + 1
    assert restarted["feedback_labels"] == ours + 1  # partition 0's again, and the marker
    assert restarted["repeated_feedback"] == whole["repeated_feedback"] == 0
    assert restarted["unmatched_feedback"] == whole["unmatched_feedback"] == 0
    for number in (0, 1):
        assert_same_detector(restored[number], reference[number], f"partition {number}")


def test_a_rewind_before_the_labels_reader_connects_reads_what_it_does_not_name_from_0(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str]
) -> None:
    # A partition restored before the labels reader connected, from a checkpoint that
    # named no labels partition (or not this one), rewound nothing: the reader started
    # at the group's committed offset, past labels the partition had never read.
    bootstrap = kafka_broker.bootstrap
    topic = fresh_topic(kafka_broker, 2)
    for number in (0, 1):
        produce(bootstrap, topic, [{"id": n, "label": 0} for n in range(3)], partition=number)
    address = parse_kafka_uri(parse_uri(f"kafka://{bootstrap}/{topic}?group=g"))

    def read(reader: LabelsReader, count: int) -> list[tuple[int, int]]:
        """The (partition, offset) of what ``reader`` reads until both partitions' ends."""
        read: list[tuple[int, int]] = []
        wait_for(
            lambda: read.extend(read_batch(reader)) or len(read) >= count,
            f"{count} labels read",
            TIMEOUT_S,
        )
        return sorted(read)

    def read_batch(reader: LabelsReader) -> list[tuple[int, int]]:
        positions = reader.read_batch(100, 0.0, 0.5).positions
        return [(where["partition"], where["offset"]) for where in positions]

    first = LabelsReader(address)
    assert read(first, 6) == [(p, o) for p in (0, 1) for o in range(3)]
    first.commit(first.resume_token())
    first.close()
    idle, extra = LabelsReader(address), []
    wait_for(lambda: extra.extend(read_batch(idle)) or idle.next_offsets(), "a connect", TIMEOUT_S)
    # From the commit; the offsets known though no label was read.
    assert extra == []
    assert idle.next_offsets() == {(topic, 0): 3, (topic, 1): 3}
    idle.close()
    rewound = LabelsReader(address)
    rewound.rewind({(topic, 0): 2})
    rewound.rewind({(topic, 0): 1, (topic, 1): 2})  # never forward: partition 1 stays at 0
    assert read(rewound, 5) == [(0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    rewound.close()
