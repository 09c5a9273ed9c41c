"""A source that asks a server for new records every so often.

Scraping an exporter and polling Alertmanager's silences share one schedule:
a poll is due every ``every_s`` seconds; a read waits for the next poll only
as long as the caller allows, and hands out what the last poll brought in
batches of the size asked for. Subclasses say what one poll fetches.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections import deque
from typing import Any

from stream_detect.sources.base import RawBatch, Source

__all__ = ["PolledSource"]


class PolledSource(Source):
    """Polls every ``every_s`` seconds; :meth:`poll` queues what it found.

    Never exhausted: a server can always be asked again. A poll that fails
    queues nothing; the subclass records why (its ``last_error``).
    """

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._next_at = 0.0
        self._buffer: deque[tuple[bytes, dict[str, Any]]] = deque()

    @abstractmethod
    def poll(self) -> None:
        """Ask the server once; append each new record and its position to ``_buffer``."""

    @property
    def exhausted(self) -> bool:
        """Never: the server can always be asked again."""
        return False

    def read_batch(self, max_records: int, linger_s: float, timeout_s: float) -> RawBatch:
        """Poll when due (waiting at most ``timeout_s`` for that); return what it brought."""
        if not self._buffer:
            wait = self._next_at - time.monotonic()
            if wait > timeout_s:
                time.sleep(max(timeout_s, 0.0))
                return RawBatch()
            if wait > 0:
                time.sleep(wait)
            self._next_at = time.monotonic() + self.every_s
            self.poll()
        return self.take_buffered(max_records)

    def take_buffered(self, max_records: int) -> RawBatch:
        """Records of the last poll not yet returned, at most ``max_records``."""
        payloads: list[bytes] = []
        positions: list[dict[str, Any]] = []
        while self._buffer and len(payloads) < max_records:
            payload, position = self._buffer.popleft()
            payloads.append(payload)
            positions.append(position)
        return RawBatch(payloads, positions)
