"""The source interface: batches of raw records, each with its position.

Lifecycle a caller may rely on:

1. A source is built (usually by :func:`stream_detect.sources.open_source`).
2. :meth:`Source.seek` may be called once, before the first read, with a token
   that an earlier :meth:`Source.resume_token` returned (restart from a checkpoint).
   Only a source whose :attr:`Source.resumable` is true can continue after a
   saved position; the others refuse any token but the start.
3. :meth:`Source.read_batch` is called repeatedly. It returns records in order,
   each exactly once, and never blocks longer than its ``timeout_s``.
4. To stop early (a SIGTERM), the caller may stop calling ``read_batch`` and
   call :meth:`Source.take_buffered` until it returns an empty batch: it hands
   out the records the source already read but has not returned, without
   reading or waiting, so nothing taken from a pipe is lost. Its records
   continue the same order and positions as ``read_batch``'s.
5. The records of a batch that were refused (by the decoder, or by a
   transform that cannot take a value) go through
   :meth:`Source.told_bad` before they become dead letters, so a source may
   say what only it knows about them (why a feature is missing, the record
   as it came before the source added fields).
6. After the records of a batch have been scored and their results flushed,
   the caller may :meth:`Source.commit` the token taken after that batch
   (at-least-once delivery for sources that keep offsets, such as Kafka).
7. :meth:`Source.close` is called once; nothing is called after it.

``exhausted`` turns true when no record will ever come again (end of a file
that is not followed, a closed pipe); the batch that reached the end is still
returned first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stream_detect.records.batch import BadRecord

__all__ = ["RawBatch", "Source"]


@dataclass
class RawBatch:
    """Raw records in arrival order, with one position per record.

    ``positions[i]`` is a small JSON-able dict saying where ``payloads[i]``
    came from: ``{"line": 12, "offset": 345}`` for a line source (1-based
    line number, byte offset of the line's start), ``{"topic": ..., "partition":
    ..., "offset": ...}`` for Kafka.

    >>> batch = RawBatch([b'{"x": 1}'], [{"line": 1, "offset": 0}])
    >>> len(batch)
    1
    """

    payloads: list[bytes] = field(default_factory=list)
    positions: Sequence[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.payloads)


class Source(ABC):
    """Where raw records come from. See the module docstring for the lifecycle."""

    #: The URI the source was opened with, as the user wrote it.
    uri: str = ""
    #: What messages call the input (a file's path, ``<stdin>``); empty: its :attr:`uri`.
    name: str = ""
    #: True when :meth:`seek` can continue after a saved position (a regular
    #: file), False when the stream cannot be rewound (stdin, a pipe).
    resumable: bool = False
    #: The record format the source suggests (``"csv"``, ``"json"``), e.g. from a
    #: file name; None when it cannot tell.
    format_hint: str | None = None
    #: Fields the source adds to every event itself (the time of a scrape): never
    #: taken as features unless named in ``--features``, since a clock only rises.
    source_fields: tuple[str, ...] = ()
    #: Times the source moved on to a new file (a followed file rotated): a checkpoint is
    #: due at once then, so no restart needs the file it left.
    rotations: int = 0

    @abstractmethod
    def read_batch(self, max_records: int, linger_s: float, timeout_s: float) -> RawBatch:
        """Return the next records, at most ``max_records`` of them.

        Waits up to ``timeout_s`` for a first record (an empty batch means none
        came). Once one has arrived, waits at most ``linger_s`` more for others
        to fill the batch, so a slow producer's events are not held back while
        a fast producer's fill whole batches.
        """

    def take_buffered(self, max_records: int) -> RawBatch:
        """Return at most ``max_records`` records already read but not yet returned.

        Never reads and never waits: an empty batch means the source holds
        nothing more (what is still in the pipe or file stays there, and a
        line not yet complete is not a record). The records follow those of
        the last ``read_batch`` in order, with their positions, and
        :meth:`resume_token` moves past them. Called to drain a source on
        shutdown; the default, for a source that reads nothing ahead, returns
        an empty batch.
        """
        return RawBatch()

    @property
    @abstractmethod
    def exhausted(self) -> bool:
        """True once no record will ever come again."""

    @abstractmethod
    def resume_token(self) -> dict[str, Any]:
        """A JSON-able token for the position just after the last record returned."""

    def identity(self) -> dict[str, Any]:
        """What tells this input from another, kept beside a resume token (may be empty).

        A checkpoint stores the token merged with this; :meth:`seek` of a source
        that has one refuses a token taken in another input.
        """
        return {}

    def seek(self, token: dict[str, Any]) -> None:
        """Continue after the position ``token`` describes; call before the first read.

        The default refuses: a source that cannot resume says so (and has
        :attr:`resumable` false).
        """
        from stream_detect.errors import InputError

        raise InputError(f"source {self.uri!r} cannot resume from a saved position")

    def commit(self, token: dict[str, Any]) -> None:  # noqa: B027 - optional hook, default no-op
        """Record that everything up to ``token`` has been fully processed."""

    def told_bad(self, bad: list[BadRecord]) -> list[BadRecord]:
        """``bad``, records of the last batch refused, as the dead letters should show them.

        Called only when a batch has bad records, so it costs a run of good
        records nothing. By default they are shown as the decoder saw them.
        """
        return bad

    def close(self) -> None:  # noqa: B027 - optional hook, default no-op
        """Release what the source holds; called once, last."""
