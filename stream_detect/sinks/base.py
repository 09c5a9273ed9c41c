"""The sink interface: batches of output records, flushed before positions are committed.

Lifecycle a caller may rely on: :meth:`Sink.write_batch` any number of times,
:meth:`Sink.flush` after each batch whose input positions are about to be
committed or checkpointed, :meth:`Sink.close` once at the end (it flushes).
A record is a JSON-able mapping; each sink chooses its encoding.

After ``flush`` returns, everything written before it has been handed to the
destination (the OS for streams and files, the broker for Kafka), so a crash
after that loses none of it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Sink"]


class Sink(ABC):
    """Where output records go."""

    #: The URI the sink was opened with, as the user wrote it.
    uri: str = ""

    @abstractmethod
    def write_batch(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Queue ``records`` for the destination, in order."""

    @abstractmethod
    def flush(self) -> None:
        """Hand everything written so far to the destination."""

    def close(self) -> None:
        """Flush and release; called once, last."""
        self.flush()
