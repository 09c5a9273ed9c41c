"""A Kafka run's --state-dir against a real broker: whose it is, and losing it mid-run."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from kafka_clients import REPO, RUN, TopicReader, kafka_uri, kill_if_running, produce

from stream_detect.kafka.broker import EmbeddedBroker

TIMEOUT_S = 120.0


def events(start: int, count: int) -> list[dict[str, float]]:
    return [{"id": i, "x": float(i % 13)} for i in range(start, start + count)]


def test_a_state_dir_of_another_group_is_refused_not_resumed(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    # Two groups read the same topic, each for its own purpose, and were given one
    # state directory: the second resumed at the first one's offset, and wrote no
    # result for anything before it, without a word.
    bootstrap = kafka_broker.bootstrap
    topic = fresh_topic(kafka_broker)
    produce(bootstrap, topic, events(0, 100))

    def run(group: str) -> subprocess.CompletedProcess[bytes]:
        source = kafka_uri(bootstrap, topic, group=group, until="end")
        return subprocess.run(
            [*RUN, "--source", source, "--sink", "file:/dev/null", "--state-dir", str(tmp_path)],
            capture_output=True,
            cwd=REPO,
            timeout=TIMEOUT_S,
        )

    first = run("state-dir-owner")
    assert first.returncode == 0, first.stderr[-3000:]
    refused = run("state-dir-other")
    stderr = refused.stderr.decode()
    assert refused.returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr
    (line,) = [line for line in stderr.splitlines() if "error" in line]
    assert f"{topic}-0.json" in line and "'state-dir-owner'" in line, line
    assert "'state-dir-other'" in line and "--state-dir" in line, line
    # The group that wrote the state resumes it as before.
    produce(bootstrap, topic, events(100, 10))
    again = run("state-dir-owner")
    assert again.returncode == 0, again.stderr[-3000:]
    assert '"offset":100' in again.stderr.decode().splitlines()[-1]


def test_a_state_dir_lost_mid_run_ends_the_run_with_one_line(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    # The checkpoint that could not be written was tried again when closing the
    # consumer handed the partition back, and that second failure, wrapped by the
    # client, ended the run with a traceback and exit 1.
    bootstrap = kafka_broker.bootstrap
    topic, sink = fresh_topic(kafka_broker), fresh_topic(kafka_broker)
    produce(bootstrap, topic, events(0, 100))
    state = tmp_path / "state"
    log = tmp_path / "detector.log"
    proc = subprocess.Popen(
        [
            *RUN,
            "--source",
            kafka_uri(bootstrap, topic, group="state-dir-lost"),
            "--sink",
            kafka_uri(bootstrap, sink),
            "--emit",
            "all",
            "--state-dir",
            str(state),
            "--checkpoint-every",
            "50",
            "--batch-size",
            "50",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        cwd=REPO,
    )
    try:
        reader = TopicReader(bootstrap, sink)
        reader.until(lambda records: len(records) >= 100)
        # Root may write where permissions say no: a file where the directory was does not.
        shutil.rmtree(state)
        state.write_text("not a directory\n")
        produce(bootstrap, topic, events(100, 100))
        assert proc.wait(timeout=TIMEOUT_S) == 2, log.read_text()[-3000:]
        # What was produced before the run ended is there (and uncommitted: read again).
        reader.until(lambda records: {r["id"] for r in records} >= set(range(100)))
        reader.close()
    finally:
        kill_if_running(proc)
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    (line,) = [line for line in text.splitlines() if "error" in line]
    assert f"{topic}-0.json" in line and "cannot be written" in line, line
