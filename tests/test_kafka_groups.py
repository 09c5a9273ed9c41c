"""Scale-out and take-over against a real broker: two detectors in one group on four partitions."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kafka_clients import REPO, RUN, TopicReader, kafka_uri, produce
from streams import assert_same_detector, detector_state

from stream_detect.kafka.broker import EmbeddedBroker
from stream_detect.kafka.feed import state_file_name

TIMEOUT_S = 120.0
PARTITIONS = 4
HOSTS = [f"host-{i}" for i in range(16)]
#: Fixed thresholds and no timed re-tunes: a partition's learning then depends only on
#: its events, in order, whichever process read them in whatever batches.
SETTINGS = [
    "--emit",
    "all",
    "--id-field",
    "id",
    "--batch-size",
    "64",
    "--retune-seconds",
    "0",
    "--checkpoint-every",
    "40",
    "--checkpoint-seconds",
    "0",
]


def events(start: int, count: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Events numbered from ``start``, with the host each is keyed by on the topic."""
    rng = np.random.default_rng(start)
    X = rng.normal(size=(count, 2))
    stream = [{"id": start + i, "a": float(a), "b": float(b)} for i, (a, b) in enumerate(X)]
    return stream, [HOSTS[(start + i) % len(HOSTS)] for i in range(count)]


class Detectors:
    """``stream-detect run`` processes started by a test; any still running are killed."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[subprocess.Popen[bytes]] = []

    def start(
        self, source: str, sink: str, state_dir: Path, *extra: str
    ) -> subprocess.Popen[bytes]:
        log = (self.tmp_path / f"detector-{len(self.started)}.log").open("wb")
        proc = subprocess.Popen(
            [
                *RUN,
                "--source",
                source,
                "--sink",
                sink,
                "--state-dir",
                str(state_dir),
                *SETTINGS,
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=REPO,
        )
        self.started.append(proc)
        return proc

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        index = self.started.index(proc)
        return (self.tmp_path / f"detector-{index}.log").read_text()

    def owned(self, proc: subprocess.Popen[bytes]) -> set[int]:
        """The partitions ``proc`` said it was assigned last."""
        lines = [line for line in self.log(proc).splitlines() if "partitions assigned" in line]
        if not lines:
            return set()
        names = lines[-1].split("partitions assigned: ")[1].split(" (")[0].split()
        return {int(name.rsplit("/", 1)[1]) for name in names if name != "none"}

    def wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait for ``condition`` (about the processes' logs), failing the test after a while."""
        deadline = time.monotonic() + TIMEOUT_S
        while not condition():
            assert time.monotonic() < deadline, "the group never settled"
            time.sleep(0.2)

    def stop(self, proc: subprocess.Popen[bytes]) -> str:
        """SIGTERM ``proc``, wait for a clean exit, return its stderr."""
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT_S) == 0, self.log(proc)[-3000:]
        text = self.log(proc)
        assert "Traceback" not in text
        return text


@pytest.fixture
def detectors(tmp_path: Path) -> Iterator[Detectors]:
    started = Detectors(tmp_path)
    try:
        yield started
    finally:
        for proc in started.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=TIMEOUT_S)


def covers(ids: set[int]) -> Callable[[list[dict[str, Any]]], bool]:
    """A reader's stop test: every id in ``ids`` has a result."""
    return lambda records: ids <= {r["id"] for r in records}


def uninterrupted_states(
    broker: EmbeddedBroker, topic: str, sink: str, state_dir: Path
) -> dict[int, dict[str, Any]]:
    done = subprocess.run(
        [
            *RUN,
            "--source",
            kafka_uri(broker.bootstrap, topic, group="whole", until="end"),
            "--sink",
            kafka_uri(broker.bootstrap, sink),
            "--state-dir",
            str(state_dir),
            *SETTINGS,
        ],
        capture_output=True,
        cwd=REPO,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {p: detector_state(state_dir / state_file_name((topic, p))) for p in range(PARTITIONS)}


def test_two_members_split_the_partitions_and_a_killed_ones_are_taken_over(
    kafka_broker: EmbeddedBroker,
    fresh_topic: Callable[..., str],
    detectors: Detectors,
    tmp_path: Path,
) -> None:
    bootstrap = kafka_broker.bootstrap
    topic = fresh_topic(kafka_broker, PARTITIONS)
    sink = fresh_topic(kafka_broker)
    first, first_hosts = events(0, 1200)
    produce(bootstrap, topic, first, keys=first_hosts)
    shared = tmp_path / "shared-state"
    shared.mkdir()
    source = kafka_uri(bootstrap, topic, group="pair")
    one = detectors.start(source, kafka_uri(bootstrap, sink), shared)
    two = detectors.start(source, kafka_uri(bootstrap, sink), shared)
    reader = TopicReader(bootstrap, sink)
    reader.until(covers({e["id"] for e in first}))
    # The group splits the partitions: each member's last assignment holds two of them.
    detectors.wait_until(lambda: len(detectors.owned(one)) == len(detectors.owned(two)) == 2)
    assert detectors.owned(one) | detectors.owned(two) == set(range(PARTITIONS))
    # Both members own partitions: the first results of each came through the group.
    taken_over_partitions = detectors.owned(one)
    one.kill()  # SIGKILL: no checkpoint, no commit, no goodbye to the group
    one.wait(timeout=TIMEOUT_S)
    second, second_hosts = events(1200, 1200)
    produce(bootstrap, topic, second, keys=second_hosts)
    results = reader.until(covers({e["id"] for e in first + second}))
    reader.close()
    stderr = detectors.stop(two)
    assert {r["id"] for r in results} == set(range(2400)), "an event has no result"
    partitions = {r["position"]["partition"] for r in results}
    assert partitions == set(range(PARTITIONS))
    # The survivor took the dead member's partitions over, from their checkpoints.
    assert detectors.owned(two) == set(range(PARTITIONS))
    # (Rebalances are eager: the partitions it kept were also checkpointed and restored.)
    assigned = [line for line in stderr.splitlines() if "partitions assigned" in line]
    assert "(4 restored from checkpoints)" in assigned[-1]
    # Its summary resumed from the dead member's checkpoints; its own, restored after the
    # rebalance, are not where it started.
    summary = json.loads(stderr.splitlines()[-1])["summary"]
    resumed = summary["resumed_from"]
    assert {entry["partition"] for entry in resumed["offsets"]} == taken_over_partitions
    # It counted its own restores too, as if they had come from elsewhere.
    assert summary["partitions_restored"] == len(taken_over_partitions)

    (tmp_path / "whole-state").mkdir()
    whole = uninterrupted_states(
        kafka_broker, topic, fresh_topic(kafka_broker), tmp_path / "whole-state"
    )
    for partition in range(PARTITIONS):
        # The models, and the rest too: validation buffer, ε, counters, remembered ids.
        taken_over = detector_state(shared / state_file_name((topic, partition)))
        assert_same_detector(taken_over, whole[partition])
