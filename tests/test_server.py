"""The HTTP endpoint's listening socket: a burst of scrapers is queued, not refused; IPv6."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from stream_detect.server import LISTEN_BACKLOG, MAX_CONNECTIONS, Health, MetricsServer

#: Connections opened at once: far more than Python's default backlog of 5.
BURST = 100


def test_the_backlog_holds_a_burst_of_connections_while_none_is_accepted() -> None:
    assert LISTEN_BACKLOG >= BURST
    server = MetricsServer("127.0.0.1:0", CollectorRegistry(), Health())
    port = int(server.address.rpartition(":")[2])
    # Stop accepting (the socket still listens): every connection must wait in the backlog.
    # Beyond it the kernel drops the handshake, and the connect below would time out.
    server._server.shutdown()
    opened: list[socket.socket] = []
    try:
        for _ in range(BURST):
            opened.append(socket.create_connection(("127.0.0.1", port), timeout=10.0))
    finally:
        for connection in opened:
            connection.close()
        server.close()
    assert len(opened) == BURST


def test_a_burst_of_concurrent_scrapes_is_answered() -> None:
    server = MetricsServer("127.0.0.1:0", CollectorRegistry(), Health())
    start = threading.Barrier(BURST)
    statuses: list[int] = []

    def scrape() -> None:
        start.wait()
        with urllib.request.urlopen(f"http://{server.address}/metrics", timeout=30) as reply:
            statuses.append(reply.status)

    threads = [threading.Thread(target=scrape) for _ in range(BURST)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.close()
    assert statuses == [200] * BURST


def test_an_ipv6_address_is_served() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("this host has no IPv6 loopback")
    server = MetricsServer("[::1]:0", CollectorRegistry(), Health())
    try:
        assert server.address.startswith("[::1]:")
        with urllib.request.urlopen(f"http://{server.address}/healthz", timeout=30) as reply:
            assert reply.status == 200
    finally:
        server.close()


def test_head_gets_the_status_and_headers_of_a_get() -> None:
    health = Health()
    server = MetricsServer("127.0.0.1:0", CollectorRegistry(), health)
    try:
        for path, status in [("/healthz", 200), ("/readyz", 503), ("/nowhere", 404)]:
            request = urllib.request.Request(f"http://{server.address}{path}", method="HEAD")
            try:
                with urllib.request.urlopen(request, timeout=30) as reply:
                    got, length, body = reply.status, reply.headers["Content-Length"], reply.read()
            except urllib.error.HTTPError as error:
                got, length, body = error.code, error.headers["Content-Length"], error.read()
            assert (got, body) == (status, b""), path
            assert int(length) > 0, path
    finally:
        server.close()


def test_a_connection_that_sends_no_request_is_closed_while_scrapes_go_on() -> None:
    server = MetricsServer("127.0.0.1:0", CollectorRegistry(), Health(), request_timeout_s=0.5)
    port = int(server.address.rpartition(":")[2])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30.0) as silent:
            # Its handler thread waits for a request line that never comes ...
            with urllib.request.urlopen(f"http://{server.address}/metrics", timeout=30) as reply:
                assert reply.status == 200
            # ... until the idle timeout closes the connection (well before the 30 s bound).
            assert silent.recv(1) == b""
        with urllib.request.urlopen(f"http://{server.address}/metrics", timeout=30) as reply:
            assert reply.status == 200
    finally:
        server.close()


def test_a_connection_that_trickles_its_request_is_closed_at_its_deadline() -> None:
    server = MetricsServer("127.0.0.1:0", CollectorRegistry(), Health(), request_timeout_s=1.0)
    port = int(server.address.rpartition(":")[2])
    request = b"GET /metrics HTTP/1.0\r\n" + b"X-Slow: " + b"a" * 400
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30.0) as slow:
            started = time.monotonic()
            closed = False
            # A byte every 50 ms: each read is well within the limit, the whole is not.
            for byte in request:
                try:
                    slow.sendall(bytes([byte]))
                except OSError:
                    closed = True
                    break
                time.sleep(0.05)
            if not closed:
                slow.settimeout(10.0)
                closed = slow.recv(1) == b""
            assert closed
            assert time.monotonic() - started < 10.0
    finally:
        server.close()


def test_connections_beyond_the_limit_are_closed_and_scrapes_go_on_after() -> None:
    server = MetricsServer("127.0.0.1:0", CollectorRegistry(), Health(), request_timeout_s=30.0)
    port = int(server.address.rpartition(":")[2])
    held: list[socket.socket] = []
    refused = False
    try:
        for _ in range(MAX_CONNECTIONS):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=30.0))
        # Once every held connection has its thread, one more is closed as it is accepted
        # (until then it may still wait in the backlog or take a slot: try again).
        deadline = time.monotonic() + 20.0
        while not refused and time.monotonic() < deadline:
            with socket.create_connection(("127.0.0.1", port), timeout=30.0) as extra:
                extra.settimeout(0.5)
                with contextlib.suppress(TimeoutError):
                    refused = extra.recv(1) == b""
    finally:
        for connection in held:
            connection.close()
    try:
        assert refused
        with urllib.request.urlopen(f"http://{server.address}/healthz", timeout=30) as reply:
            assert reply.status == 200
    finally:
        server.close()


def test_clients_that_reset_their_connection_leave_no_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # socketserver printed a 20-line traceback to stderr, where the dead letters go, for
    # each scraper that gave up (a reset) before its answer was written.
    server = MetricsServer("127.0.0.1:0", CollectorRegistry(), Health())
    port = int(server.address.rpartition(":")[2])
    try:
        for _ in range(50):
            with socket.create_connection(("127.0.0.1", port), timeout=30.0) as gone:
                # Closed with a reset (linger 0) as soon as the request is sent.
                gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                gone.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        with urllib.request.urlopen(f"http://{server.address}/metrics", timeout=30) as reply:
            assert reply.status == 200
    finally:
        server.close()
    assert capsys.readouterr().err == ""


def test_a_request_that_fails_otherwise_is_one_line_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Broken(Collector):
        def collect(self) -> Iterator[Metric]:
            raise RuntimeError("a collector broke\nmid-way")

    registry = CollectorRegistry()
    registry.register(Broken())
    server = MetricsServer("127.0.0.1:0", registry, Health())
    try:
        for _ in range(3):
            with pytest.raises((urllib.error.URLError, OSError)):
                urllib.request.urlopen(f"http://{server.address}/metrics", timeout=30)
        with urllib.request.urlopen(f"http://{server.address}/healthz", timeout=30) as reply:
            assert reply.status == 200
    finally:
        server.close()
    (said,) = capsys.readouterr().err.splitlines()
    assert said == (
        f"stream-detect: --http {server.address}: a request failed (RuntimeError: a collector "
        "broke mid-way); the endpoint goes on (said once per reason)"
    )
