"""Dead letters and feedback labels over Kafka topics, against a real broker."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from kafka_clients import REPO, RUN, TopicReader, kafka_uri, kill_if_running, produce, stop
from monitoring import free_port, http_get, wait_for

from stream_detect.kafka.broker import EmbeddedBroker

TIMEOUT_S = 120.0


def test_dead_letters_and_feedback_labels_travel_by_kafka(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    events, results, dead, labels = (fresh_topic(kafka_broker) for _ in range(4))
    stream: list[object] = [{"id": i, "x": float(i % 11)} for i in range(400)]
    stream[100] = b'{"id": 100, "x": '  # cut short
    stream[200] = {"id": 200, "x": "high"}  # not a number
    produce(bootstrap, events, stream)
    log = tmp_path / "detector.log"
    http = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [
            *RUN,
            "--source",
            kafka_uri(bootstrap, events, group="side"),
            "--sink",
            kafka_uri(bootstrap, results),
            "--dead-letter",
            kafka_uri(bootstrap, dead),
            "--labels",
            kafka_uri(bootstrap, labels, group="side"),
            "--emit",
            "all",
            "--id-field",
            "id",
            "--http",
            http,
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        cwd=REPO,
    )
    try:
        TopicReader(bootstrap, results).until(lambda records: len(records) >= 398)
        feedback = [{"id": i, "label": int(i % 50 == 0)} for i in range(0, 400, 10)]
        feedback = [f for f in feedback if f["id"] not in (100, 200)]
        # A label delivered again changes nothing; another label for an event corrects it.
        again, corrected = feedback[1], {**feedback[2], "label": 1 - feedback[2]["label"]}
        sent = [*feedback, again, corrected, {"id": 99_999, "label": 1}, b"not json"]
        produce(bootstrap, labels, sent)
        reader = TopicReader(bootstrap, dead)
        reader.until(lambda records: len(records) >= 3)
        # Labels that come before their events are held until the events arrive.
        early = [{"id": i, "label": 0} for i in range(400, 405)]
        produce(bootstrap, labels, early)
        wait_for(
            lambda: b"stream_detect_feedback_held 6.0" in http_get(f"http://{http}/metrics"),
            "the early labels held",
            TIMEOUT_S,
        )
        produce(bootstrap, events, [{"id": i, "x": 3.0} for i in range(400, 405)])
        TopicReader(bootstrap, results).until(lambda records: len(records) >= 403)
        stop(proc, TIMEOUT_S)
        # A label whose event never came goes to the dead letters when the run ends.
        letters = reader.until(lambda records: len(records) >= 4)
    finally:
        kill_if_running(proc)
    text = log.read_text()
    assert "Traceback" not in text
    summary = json.loads(text.splitlines()[-1])["summary"]
    assert summary["feedback_labels"] == len(feedback) + len(early) + 2
    assert (summary["repeated_feedback"], summary["corrected_feedback"]) == (1, 1)
    # One validation row per labelled event, with its latest label.
    positives = sum(f["label"] for f in feedback) + 1
    assert summary["validation_positive"] == positives
    assert summary["validation_negative"] == len(feedback) + len(early) - positives
    assert summary["unmatched_feedback"] == 1 and summary["bad_feedback"] == 1
    bad_events = [letter for letter in letters if letter["position"].get("topic") == events]
    assert [letter["position"] for letter in bad_events] == [
        {"topic": events, "partition": 0, "offset": 100},
        {"topic": events, "partition": 0, "offset": 200},
    ]
    assert all(letter["reason"] for letter in letters)
    bad_labels = [letter for letter in letters if letter["position"].get("topic") == labels]
    # The record that is no label leaves at once, the unmatched label when the run ends.
    assert [letter["position"]["offset"] for letter in bad_labels] == [
        len(sent) - 1,
        len(sent) - 2,
    ]
    assert "no event with id '99999'" in bad_labels[1]["reason"]


def test_tombstones_are_dead_letters_with_their_position_not_blank_lines(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    """A record with a null value, on the events or the labels topic, is a counted dead letter."""
    bootstrap = kafka_broker.bootstrap
    events, results, dead, labels = (fresh_topic(kafka_broker) for _ in range(4))
    stream: list[object] = [{"id": i, "x": float(i % 7)} for i in range(300)]
    # The first record a tombstone too: it must not be what decides the format.
    for offset in (0, 150, 299):
        stream[offset] = None
    produce(bootstrap, events, stream)
    log = tmp_path / "detector.log"
    proc = subprocess.Popen(
        [
            *RUN,
            "--source",
            kafka_uri(bootstrap, events, group="tombstones"),
            "--sink",
            kafka_uri(bootstrap, results),
            "--dead-letter",
            kafka_uri(bootstrap, dead),
            "--labels",
            kafka_uri(bootstrap, labels, group="tombstones"),
            "--id-field",
            "id",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        cwd=REPO,
    )
    reader = TopicReader(bootstrap, dead)
    try:
        reader.until(lambda records: len(records) >= 3)
        produce(bootstrap, labels, [{"id": 5, "label": 0}, None])
        letters = reader.until(lambda records: len(records) >= 4)
        stop(proc, TIMEOUT_S)
    finally:
        reader.close()
        kill_if_running(proc)
    text = log.read_text()
    assert "Traceback" not in text
    summary = json.loads(text.splitlines()[-1])["summary"]
    assert summary["events"] == 297 and summary["blank_lines"] == 0
    assert summary["bad_feedback"] == 1 and summary["feedback_labels"] == 1
    # The labels topic's tombstone is feedback, as a single-stream run counts it.
    assert summary["bad_records"] == 3
    assert letters == [
        {
            "position": {"topic": events, "partition": 0, "offset": offset, "tombstone": True},
            "reason": "null value (Kafka tombstone)",
            "raw": "",
        }
        for offset in (0, 150, 299)
    ] + [
        {
            "position": {"topic": labels, "partition": 0, "offset": 1, "tombstone": True},
            "reason": "null value (Kafka tombstone)",
            "raw": "",
        }
    ]


def test_a_member_with_no_events_that_dead_letters_labels_exits_0(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    """An idle member (no events to read) did nothing wrong: its labels are feedback, not events."""
    bootstrap = kafka_broker.bootstrap
    events, dead, labels = (fresh_topic(kafka_broker) for _ in range(3))
    produce(bootstrap, labels, [{"id": 5, "label": 1}, b"not json"])
    log = tmp_path / "detector.log"
    http = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [
            *RUN,
            "--source",
            kafka_uri(bootstrap, events, group="idle"),
            "--dead-letter",
            kafka_uri(bootstrap, dead),
            "--labels",
            kafka_uri(bootstrap, labels, group="idle"),
            "--id-field",
            "id",
            "--label-field",
            "label",
            "--state-dir",
            str(tmp_path / "state"),
            "--http",
            http,
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        cwd=REPO,
    )
    reader = TopicReader(bootstrap, dead)
    try:
        reader.until(lambda records: len(records) >= 1)
        wait_for(
            lambda: b"stream_detect_feedback_held 1.0" in http_get(f"http://{http}/metrics"),
            "the label held",
            TIMEOUT_S,
        )
        stop(proc, TIMEOUT_S)
        letters = reader.until(lambda records: len(records) >= 2)
    finally:
        reader.close()
        kill_if_running(proc)
    text = log.read_text()
    assert "Traceback" not in text and "run: error" not in text, text[-3000:]
    summary = json.loads(text.splitlines()[-1])["summary"]
    assert (summary["events"], summary["bad_records"], summary["bad_reason"]) == (0, 0, None)
    assert (summary["bad_feedback"], summary["unmatched_feedback"]) == (1, 1)
    assert summary["stopped_by"] == "signal"
    assert [letter["position"]["offset"] for letter in letters] == [1, 0]


def test_a_kafka_run_of_dead_letters_alone_names_their_most_common_reason(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    """Exit 3, as a single-stream run: the reason comes from the partitions' dead letters."""
    bootstrap = kafka_broker.bootstrap
    events = fresh_topic(kafka_broker)
    produce(bootstrap, events, [{"x": "high"}, {"x": "low"}, {"y": 1.0}])
    done = subprocess.run(
        [
            *RUN,
            "--source",
            kafka_uri(bootstrap, events, group="unusable", until="end"),
            "--features",
            "x",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        capture_output=True,
        cwd=REPO,
        timeout=TIMEOUT_S,
        check=False,
    )
    stderr = done.stderr.decode()
    assert done.returncode == 3, stderr[-3000:]
    summary_line, error = stderr.splitlines()[-2:]
    summary = json.loads(summary_line)["summary"]
    assert (summary["events"], summary["bad_records"]) == (0, 3)
    reason = summary["bad_reason"]
    assert reason is not None and "'x'" in reason
    assert error == (
        "stream-detect run: error: no event was usable: all 3 records were dead letters "
        f"(most common reason: {reason})"
    )
