"""The sidecar's HTTP endpoint: ``/metrics``, ``/healthz`` and ``/readyz``.

* ``/metrics`` is the run's own registry in Prometheus's text format.
* ``/healthz`` answers 200 while the loop turns: its last turn was at most
  ``stale_after_s`` seconds ago (a source waiting for input still turns, at
  least once a second); 503 otherwise, e.g. when a sink blocks the loop.
* ``/readyz`` answers 200 once the source delivered events and a model is
  past its warm-up, 503 before.

HEAD gets the status and headers a GET would.

Up to :data:`LISTEN_BACKLOG` connections wait to be accepted, so a burst of
scrapers is queued, not refused. A connection is closed :data:`REQUEST_TIMEOUT_S`
after it was accepted, whatever it does (silent, or trickling a byte at a
time), and at most :data:`MAX_CONNECTIONS` are served at once (more are closed
as they are accepted), so no client can hold threads and sockets for the rest
of the run. A client that goes away mid-answer is nothing to tell; any
other failure of a request is one line on stderr, once per reason.

The server runs in daemon threads; :meth:`MetricsServer.close` stops it.

>>> import urllib.request
>>> from prometheus_client import CollectorRegistry
>>> server = MetricsServer("127.0.0.1:0", CollectorRegistry(), Health())
>>> with urllib.request.urlopen(f"http://{server.address}/healthz") as reply:
...     reply.status, reply.read()
(200, b'ok\\n')
>>> server.close()
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from stream_detect.errors import ConfigError
from stream_detect.health import Health
from stream_detect.stderr_lines import write_stderr

__all__ = [
    "LISTEN_BACKLOG",
    "MAX_CONNECTIONS",
    "REQUEST_TIMEOUT_S",
    "Health",
    "MetricsServer",
    "QuietHandler",
    "parse_listen_address",
]

#: Connections the kernel queues before they are accepted. Python's default of
#: 5 makes a burst of scrapers (several Prometheus replicas, a probe, a
#: dashboard at once) see connections refused or stalled while the loop that
#: accepts them is busy.
LISTEN_BACKLOG = 128

#: Seconds a connection may last from its accept to its close (the request
#: read, the reply written). Each connection has a thread; without a limit, a
#: client that connects and never sends a request (one that died, a port
#: scanner, a balancer's half-open probe), or one that trickles a byte at a
#: time, would hold a thread and a socket for the rest of the run. A scraper
#: sends its request at once and reads the reply as it comes (one request per
#: connection: HTTP/1.0), so 30 s never cuts a real one short.
REQUEST_TIMEOUT_S = 30.0

#: Connections served at once; one accepted beyond them is closed at once.
#: Each holds a thread for at most :data:`REQUEST_TIMEOUT_S`, so this bounds
#: the threads a flood of connections can make, well above any real set of
#: scrapers and probes (a burst of 100 is tested).
MAX_CONNECTIONS = 256

#: Distinct reasons of failed requests said on stderr at most.
_MAX_REASONS_SAID = 20


def parse_listen_address(text: str, *, config_key: str = "http") -> tuple[str, int]:
    """``HOST:PORT`` as a host and a port (``[::1]:9464`` for IPv6).

    >>> parse_listen_address("127.0.0.1:9464")
    ('127.0.0.1', 9464)
    >>> parse_listen_address("[::1]:9464")
    ('::1', 9464)
    >>> parse_listen_address("9464")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key http: got '9464', expected HOST:PORT, \
e.g. 127.0.0.1:9464 (0.0.0.0:9464 to listen on every interface)
    """
    host, colon, port = text.rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(
            config_key,
            text,
            "HOST:PORT, e.g. 127.0.0.1:9464 (0.0.0.0:9464 to listen on every interface)",
        )
    return host, int(port)


class MetricsServer:
    """Serves the three endpoints on ``listen`` (``HOST:PORT``; port 0 picks a free one).

    ``request_timeout_s`` is how long a connection may last before it is
    closed (:data:`REQUEST_TIMEOUT_S`).

    Raises
    ------
    ConfigError
        The address is malformed or cannot be bound (in use, not local).
    """

    def __init__(
        self,
        listen: str,
        registry: CollectorRegistry,
        health: Health,
        *,
        stale_after_s: float = 5.0,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        host, port = parse_listen_address(listen)
        handler = _handler_for(registry, health, stale_after_s)
        handler.timeout = request_timeout_s
        # An IPv6 literal needs an IPv6 socket; a name or an IPv4 address keeps IPv4.
        server_class = _ScrapeServer6 if ":" in host else _ScrapeServer
        try:
            self._server = server_class((host, port), handler)
        except OSError as exc:
            expected = f"an address this host can listen on ({exc})"
            raise ConfigError("http", listen, expected) from None
        self._server.lifetime_s = request_timeout_s
        bound_host, bound_port = self._server.server_address[:2]
        bound = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
        shown = f"[{bound}]" if ":" in bound else bound
        #: ``HOST:PORT`` actually bound (the port is known even when 0 was asked).
        self.address = self._server.shown_address = f"{shown}:{bound_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _ScrapeServer(ThreadingHTTPServer):
    """A thread per connection, at most :data:`MAX_CONNECTIONS` at once, each for a bounded time.

    Daemon threads, and a listen backlog of :data:`LISTEN_BACKLOG`.
    """

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        #: Seconds from a connection's accept to its forced close.
        self.lifetime_s = REQUEST_TIMEOUT_S
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        #: ``HOST:PORT`` as the lines about it say it.
        self.shown_address = ""
        self._said: set[str] = set()
        self._said_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()  # no thread started: it will not release the slot
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Say nothing of a client that went away; one line, once, of anything else.

        socketserver's own prints a traceback to stderr, where the dead letters
        go: one per scraper that gave up mid-answer (a timeout, a reset), a
        probe that closes as soon as it connects.
        """
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # reset, broken pipe, shut at its deadline
            return
        reason = f"{type(error).__name__}: {error}"
        with self._said_lock:
            if reason in self._said or len(self._said) >= _MAX_REASONS_SAID:
                return
            self._said.add(reason)
        write_stderr(
            f"stream-detect: --http {self.shown_address}: "
            f"a request failed ({' '.join(reason.split())}); the endpoint goes on "
            "(said once per reason)\n"
        )

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        # Shutting the socket down ends the handler's pending read or write at once.
        deadline = threading.Timer(self.lifetime_s, _shut, (request,))
        deadline.daemon = True
        deadline.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            deadline.cancel()
            self._slots.release()


class _ScrapeServer6(_ScrapeServer):
    """The same on an IPv6 address (``[::1]:9464``)."""

    address_family = socket.AF_INET6


def _shut(connection: socket.socket) -> None:
    """End every read and write on ``connection`` (closed already: nothing to do)."""
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that answers with one call and logs nothing.

    stderr carries dead letters and the summary; request logs would mix in.
    """

    def reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        """Send ``body`` whole, with its length, under ``status`` (only the headers to a HEAD)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _handler_for(
    registry: CollectorRegistry, health: Health, stale_after_s: float
) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            path = self.path.partition("?")[0]
            if path == "/metrics":
                self.reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                alive = health.alive(stale_after_s)
                self.reply(200 if alive else 503, b"ok\n" if alive else b"loop stalled\n")
            elif path == "/readyz":
                ready = health.ready
                self.reply(200 if ready else 503, b"ready\n" if ready else b"warming up\n")
            else:
                self.reply(404, b"try /metrics, /healthz or /readyz\n")

        # A probe that asks with HEAD (some load balancers do) gets the status a GET would.
        do_HEAD = do_GET

    return Handler
