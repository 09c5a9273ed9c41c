"""The sink interface: batches of output records, flushed before positions are committed.

Lifecycle a caller may rely on: :meth:`Sink.write_batch` any number of times,
:meth:`Sink.flush` after each batch whose input positions are about to be
committed or checkpointed, :meth:`Sink.close` once at the end (it flushes).
A record is a JSON-able mapping; each sink chooses its encoding. A batch may
also offer its records already encoded as JSON lines (:class:`EncodedAsJsonLines`,
as the pipeline's :class:`~stream_detect.results.ResultBatch` does), which a
sink writing JSON lines uses instead of encoding record by record.

After ``flush`` returns, everything written before it has been handed to the
destination (the OS for streams and files, the broker for Kafka), so a crash
of this process after that loses none of it. A crash of the machine (power
loss, kernel panic) may still lose what the OS had not yet written to disk;
a file sink survives that only with fsync (``file:PATH?fsync=true``).

A destination that refuses the data raises
:class:`~stream_detect.errors.OutputError` from ``write_batch``, ``flush`` or
``close``; a reader that went away (a broken pipe) raises
:class:`BrokenPipeError`. Either way the records were not delivered: the
caller must not commit their positions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["EncodedAsJsonLines", "Sink"]


@runtime_checkable
class EncodedAsJsonLines(Protocol):
    """A batch of records that can give its own JSON lines."""

    def json_lines(self) -> list[bytes]:
        """The records as JSON lines, in pieces of whole lines.

        Joined, the pieces are byte for byte what encoding each record with
        :func:`~stream_detect.sinks.json_encoding.encode_json_line` gives.
        """
        ...


class StopFlag(Protocol):
    """What a sink watches to give up a stalled write (a :class:`threading.Event`)."""

    def is_set(self) -> bool:
        """True once a stop was requested."""
        ...


class Sink(ABC):
    """Where output records go."""

    #: The URI the sink was opened with, as the user wrote it.
    uri: str = ""

    @abstractmethod
    def write_batch(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Queue ``records`` for the destination, in order."""

    @abstractmethod
    def flush(self) -> None:
        """Hand everything written so far to the destination; see the module docstring."""

    def close(self) -> None:
        """Flush and release; called once, last."""
        self.flush()

    def interrupt_on(self, stop: StopFlag | None) -> None:
        """Give up a write that waits for the destination once ``stop`` is set.

        A sink that can block on a slow reader (a pipe) then raises
        :class:`~stream_detect.errors.WriteInterrupted` instead of waiting;
        the default does nothing (the destination never stalls for long).
        """
        return
