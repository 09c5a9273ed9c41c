"""A source that asks a server for new records every so often.

Scraping an exporter and polling Alertmanager's silences share one schedule:
a poll is due every ``every_s`` seconds and runs in a thread of its own; a
read waits for the next poll, and for the poll to finish, only as long as
the caller allows, and hands out what the last poll brought in batches of
the size asked for. Subclasses say what one poll fetches; :func:`http_body`
is how a poll reads a server's answer, bounded in time and size, so a
server that answers slowly, endlessly or not at all costs one failed poll,
never the run, and never holds up the loop that reads (its ``/healthz``,
a stop request).

A failed poll is counted and makes the source not :attr:`~PolledSource.connected`
(``/readyz`` says not ready) until one works again. The operator is told on
stderr once when polls start failing (the URI, the reason, and that nothing
comes in until a poll works) and once when they work again, never once per
poll (:class:`~stream_detect.reachability.Reachability`).
"""

from __future__ import annotations

import io
import threading
import time
from abc import abstractmethod
from collections import deque
from typing import Any

from stream_detect.http_exchange import read_within
from stream_detect.http_failure import failure_reason
from stream_detect.reachability import Reachability
from stream_detect.sources.base import RawBatch, Source
from stream_detect.stderr_lines import write_stderr

__all__ = ["MAX_BODY_BYTES", "PolledSource", "http_body"]

#: The largest answer a poll reads (an exporter's page, a query's result, the silences).
MAX_BODY_BYTES = 64 << 20


def http_body(url: str, timeout_s: float, max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """The body of a GET of ``url``, the whole exchange within about ``timeout_s``.

    A body the server gzip-compressed comes decompressed. A server that
    fails, is too slow (with its headers or its body), sends more than
    ``max_bytes`` (decompressed too) or breaks off its answer, or answers in
    another encoding, raises OSError or ValueError, the errors of a failed
    poll; the thread that polls is never held longer than that
    (:func:`~stream_detect.http_exchange.read_within`).

    >>> http_body("http://127.0.0.1:9/metrics", 0.5)
    Traceback (most recent call last):
    ...
    urllib.error.URLError: <urlopen error [Errno 111] Connection refused>
    """
    return read_within(url, timeout_s, max_bytes, decode=True)


class PolledSource(Source):
    """Polls every ``every_s`` seconds; :meth:`poll` queues what it found.

    Never exhausted: a server can always be asked again. A poll that fails
    (:meth:`poll` raises OSError or ValueError) queues nothing; it is
    counted in :attr:`poll_errors`, its reason kept in :attr:`last_error`,
    and said on stderr if the poll before it worked (:attr:`link`).

    Parameters
    ----------
    every_s
        Seconds from one poll to the next.
    uri
        What the stderr lines name (the URI as the user wrote it).
    what, yields
        What one poll is (``scrape``, ``query``) and what it brings
        (``events``), for those lines.
    """

    def __init__(self, every_s: float, *, uri: str, what: str, yields: str) -> None:
        self.every_s = every_s
        self.uri = uri
        self._next_at = 0.0
        self._buffer: deque[tuple[bytes, dict[str, Any]]] = deque()
        self.link = Reachability(uri, lost=f"{what} failed", back=f"{what} works again")
        self._then = f"no {yields} until one works; trying again every {every_s:g} s"
        #: False until a poll works, and after a failed one until one works again.
        self.connected = False
        self.poll_errors = 0
        #: Why the last poll failed; None once one works.
        self.last_error: str | None = None
        #: The poll on its way, if any; only it touches ``_buffer`` meanwhile.
        self._polling: threading.Thread | None = None
        self._crash: BaseException | None = None
        self._poll_lines = io.StringIO()

    @abstractmethod
    def poll(self) -> None:
        """Ask the server once; append each new record and its position to ``_buffer``.

        Raises OSError or ValueError when the server cannot be asked, fails,
        or answers something unreadable.
        """

    def poll_reported(self) -> None:
        """Poll once, keeping count of failures and saying when polls start or stop failing."""
        try:
            self.poll()
        except (OSError, ValueError) as exc:
            self.connected = False
            self.poll_errors += 1
            self.last_error = failure_reason(exc)
            self.link.failed(self.last_error, self._then)
            return
        failed, self.connected, self.last_error = self.link.failures, True, None
        self.link.ok(note=f"after {failed} failed" if failed else "")

    @property
    def exhausted(self) -> bool:
        """Never: the server can always be asked again."""
        return False

    def read_batch(self, max_records: int, linger_s: float, timeout_s: float) -> RawBatch:
        """Poll when due; return what it brought, waiting at most ``timeout_s`` in all.

        The poll runs in a thread of its own: one that is slow (an exporter
        answering within its allowed time, a silences API that hangs) is
        waited for across several reads, each returning an empty batch when
        its time is up, so the loop keeps turning (``/healthz``) and a stop
        request is seen within a read's timeout, as for any source.
        """
        deadline = time.monotonic() + max(timeout_s, 0.0)
        if not self._buffer and self._polling is None:
            wait = self._next_at - time.monotonic()
            if wait > timeout_s:
                time.sleep(max(timeout_s, 0.0))
                return RawBatch()
            if wait > 0:
                time.sleep(wait)
            self._next_at = time.monotonic() + self.every_s
            self._polling = threading.Thread(
                target=self._poll_in_thread, name=f"poll {self.uri}", daemon=True
            )
            self._polling.start()
        if not self._settled(max(deadline - time.monotonic(), 0.0)):
            return RawBatch()
        return self.take_buffered(max_records)

    def _settled(self, wait_s: float) -> bool:
        """True once no poll is on its way, waiting up to ``wait_s`` for the one that is.

        A poll that has ended says what it has to say now, and a fault in it
        (not a failed poll) is raised here, as if it had polled in this thread.
        """
        if self._polling is None:
            return True
        self._polling.join(wait_s)
        if self._polling.is_alive():
            return False
        self._polling = None
        self._tell(self._poll_lines.getvalue())
        crash, self._crash = self._crash, None
        if crash is not None:
            raise crash
        return True

    def _poll_in_thread(self) -> None:
        # What the poll has to say is written by the loop's thread once it is done,
        # as before: from this thread, a line could land inside a large write of dead
        # letters to the same stderr pipe (a write past PIPE_BUF is not atomic).
        self._poll_lines = io.StringIO()
        stream, self.link.stream = self.link.stream, self._poll_lines
        try:
            self.poll_reported()
        except BaseException as exc:  # a fault, not a failed poll: raised in the loop's thread
            self._crash = exc
        finally:
            self.link.stream = stream

    def _tell(self, lines: str) -> None:
        if lines:
            write_stderr(lines, self.link.stream)

    def take_buffered(self, max_records: int) -> RawBatch:
        """Records of the last poll not yet returned, at most ``max_records``.

        Never waits: nothing while a poll is on its way (its records come
        whole, or, to a stop that does not wait for it, not at all); those of
        one that has just ended, even if no read has seen it end.
        """
        payloads: list[bytes] = []
        positions: list[dict[str, Any]] = []
        if not self._settled(0.0):
            return RawBatch(payloads, positions)
        while self._buffer and len(payloads) < max_records:
            payload, position = self._buffer.popleft()
            payloads.append(payload)
            positions.append(position)
        return RawBatch(payloads, positions)
