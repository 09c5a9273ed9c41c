"""Fixtures shared by the test modules."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stream_detect.kafka.broker import EmbeddedBroker

#: The public reference data sets (the exercise's ex8 data, ODDS, NAB v1.1) are
#: not part of the repository: $STREAM_DETECT_REFERENCE_DATA names their folder,
#: else ``shared/data`` beside the repository is used.
SHARED_DATA = Path(
    os.environ.get("STREAM_DETECT_REFERENCE_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data"
)


@pytest.fixture
def shared_data() -> Path:
    """The reference data folder, or skip the test when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"reference data not found at {SHARED_DATA}: set STREAM_DETECT_REFERENCE_DATA "
            "or put shared/data beside the repository"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[EmbeddedBroker]:
    """A Tansu broker on a free loopback port for the whole session, stopped by its pid."""
    with _embedded_broker() as broker:
        yield broker


@pytest.fixture
def own_kafka_broker() -> Iterator[EmbeddedBroker]:
    """A broker for one test alone (one that stops or restarts it)."""
    with _embedded_broker() as broker:
        yield broker


@contextlib.contextmanager
def _embedded_broker() -> Iterator[EmbeddedBroker]:
    from stream_detect.errors import DependencyError

    try:
        broker = EmbeddedBroker()
    except DependencyError as exc:
        pytest.skip(f"no Kafka broker to test against: {exc}")
    with broker:
        yield broker


@pytest.fixture
def fresh_topic(request: pytest.FixtureRequest) -> Callable[..., str]:
    """Make a new, uniquely named topic on the broker the test uses: ``fresh_topic(broker, n)``."""

    def make(broker: EmbeddedBroker, partitions: int = 1) -> str:
        name = f"t{uuid.uuid4().hex[:12]}"
        broker.create_topic(name, partitions)
        return name

    return make


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """A list to put the child processes a test starts in: each is killed if still running."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60.0)
        if proc.stdout is not None:
            proc.stdout.close()
