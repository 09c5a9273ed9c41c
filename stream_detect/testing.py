"""In-memory sources and sinks, for the package's tests and for users' own.

:class:`ListSource` hands out a list of records in batches, with the positions
a file of the same lines would give them, and resumes from its own tokens, so
checkpoint tests need no files. :class:`ListSink` keeps what was written and
what was flushed apart, so a test can tell delivered results from ones a
crash would lose. Both check the lifecycle of :mod:`stream_detect.sources.base`
and :mod:`stream_detect.sinks.base` strictly and raise :class:`RuntimeError`
when a caller breaks it (reading after close, writing after close, seeking
after the first read).

>>> source = ListSource([{"x": 1.0}, {"x": 2.0}, "not json"], batch_size=2)
>>> sink = ListSink()
>>> while not source.exhausted:
...     batch = source.read_batch(max_records=100, linger_s=0.0, timeout_s=0.0)
...     sink.write_batch([{"raw": payload, "position": position}
...                       for payload, position in zip(batch.payloads, batch.positions)])
...     sink.flush()
...     source.commit(source.resume_token())
>>> [record["position"]["line"] for record in sink.records], sink.flush_count
([1, 2, 3], 2)
>>> source.commits
[{'line': 3, 'offset': 20}, {'line': 4, 'offset': 29}]
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from stream_detect.errors import InputError, OutputError
from stream_detect.sinks.base import Sink
from stream_detect.sinks.json_encoding import encode_json, encode_json_line
from stream_detect.sources.base import RawBatch, Source

__all__ = ["ListSink", "ListSource"]


class ListSource(Source):
    """A source over records held in memory; it can resume from its own tokens.

    Parameters
    ----------
    records
        ``bytes`` are taken as they are, ``str`` is UTF-8 encoded, and a mapping
        is JSON-encoded (orjson, compact; numpy scalars as their numbers). Any
        other JSON value (a number, a list, None) is written as its JSON text,
        a line a run sends to the dead letters, as it would from a file. A
        record JSON cannot write (a field name that is not a string, a
        ``Decimal``) raises TypeError naming the record.
    batch_size
        Most records one ``read_batch`` returns, whatever ``max_records`` asks;
        None for no limit of its own.
    format_hint
        Exposed as :attr:`format_hint`, like a line source's.
    uri
        Kept in :attr:`uri`.

    Positions are exactly those a :class:`~stream_detect.sources.FileSource`
    gives the same records written one per line: ``{"line": i + 1, "offset":
    byte offset of record i}`` (each record counted with a one-byte newline).
    ``read_batch`` never waits: records are there, or the source is exhausted.
    Nothing is read ahead, so :meth:`take_buffered` always returns an empty
    batch: records not yet returned stay in the list, where a restart from
    :meth:`resume_token` finds them. The source is :attr:`resumable`.
    Every token passed to :meth:`commit` is appended to :attr:`commits`.

    >>> source = ListSource([b"a", b"bb", b"ccc"])
    >>> source.read_batch(2, linger_s=0.1, timeout_s=1.0).positions
    [{'line': 1, 'offset': 0}, {'line': 2, 'offset': 2}]
    >>> token = source.resume_token(); token
    {'line': 3, 'offset': 5}
    >>> restarted = ListSource([b"a", b"bb", b"ccc"])
    >>> restarted.seek(token)
    >>> restarted.read_batch(10, linger_s=0.1, timeout_s=1.0).payloads
    [b'ccc']
    """

    resumable = True

    def __init__(
        self,
        records: Iterable[object],
        *,
        batch_size: int | None = None,
        format_hint: str | None = None,
        uri: str = "list:",
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be None or >= 1, got {batch_size}")
        self.uri = uri
        self.batch_size = batch_size
        self.format_hint = format_hint
        self.payloads = [_as_bytes(record, index) for index, record in enumerate(records)]
        self.offsets: list[int] = []
        offset = 0
        for payload in self.payloads:
            self.offsets.append(offset)
            offset += len(payload) + 1
        self._end_offset = offset
        self._next = 0
        self._started = False
        self.commits: list[dict[str, Any]] = []
        self.closed = False

    @property
    def exhausted(self) -> bool:
        """True once every record has been returned."""
        return self._next >= len(self.payloads)

    def read_batch(self, max_records: int, linger_s: float, timeout_s: float) -> RawBatch:
        """Return the next records at once: at most ``max_records`` (and ``batch_size``)."""
        if self.closed:
            raise RuntimeError("read_batch called after close")
        if max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {max_records}")
        self._started = True
        count = max_records if self.batch_size is None else min(max_records, self.batch_size)
        start = self._next
        end = min(start + count, len(self.payloads))
        self._next = end
        return RawBatch(
            self.payloads[start:end],
            [{"line": index + 1, "offset": self.offsets[index]} for index in range(start, end)],
        )

    def take_buffered(self, max_records: int) -> RawBatch:
        """Return an empty batch: a list source holds nothing read but not returned.

        Raises
        ------
        RuntimeError
            Called after ``close``.
        """
        if self.closed:
            raise RuntimeError("take_buffered called after close")
        if max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {max_records}")
        return RawBatch()

    def resume_token(self) -> dict[str, Any]:
        """``{"line": N, "offset": O}`` of the next record (or of the end)."""
        return self._token(self._next)

    def seek(self, token: dict[str, Any]) -> None:
        """Continue at the record ``token`` points to; only before the first read.

        Raises
        ------
        InputError
            The token is not the position of one of the records, nor of the end.
        RuntimeError
            Called after ``read_batch`` or ``close``.
        """
        if self._started or self.closed:
            raise RuntimeError("seek must come before the first read_batch and before close")
        line = token.get("line")
        index = line - 1 if type(line) is int else -1
        if not 0 <= index <= len(self.payloads) or self._token(index) != token:
            raise InputError(
                f"resume token {token!r} is not the position of a record of this source "
                f"({len(self.payloads)} records)",
                source=self.uri,
            )
        self._next = index

    def commit(self, token: dict[str, Any]) -> None:
        """Remember ``token`` in :attr:`commits`."""
        if self.closed:
            raise RuntimeError("commit called after close")
        self.commits.append(dict(token))

    def close(self) -> None:
        """Mark the source closed; anything but another close then raises RuntimeError."""
        self.closed = True

    def _token(self, index: int) -> dict[str, Any]:
        offset = self.offsets[index] if index < len(self.payloads) else self._end_offset
        return {"line": index + 1, "offset": offset}


class ListSink(Sink):
    """A sink that keeps records in memory.

    Parameters
    ----------
    check_json
        Encode every record as the stream sinks do, so a value they could not
        write fails here too (TypeError), in the test that produced it.
    broken_pipe_after
        Raise :class:`BrokenPipeError` from ``write_batch`` once more than this
        many records have been written, like a stdout whose reader went away.
    output_error_after
        Raise :class:`~stream_detect.errors.OutputError` (no space left) from
        ``write_batch`` once more than this many records have been written,
        like a file sink on a full disk.

    :attr:`records` holds every record written (shallow copies as dicts, in
    order), :attr:`n_flushed` how many of them the last ``flush`` covered,
    :attr:`flush_count` the number of flushes.

    >>> sink = ListSink()
    >>> sink.write_batch([{"alert": True}])
    >>> sink.n_flushed, sink.flushed_records
    (0, [])
    >>> sink.flush()
    >>> sink.flushed_records, sink.flush_count
    ([{'alert': True}], 1)
    """

    def __init__(
        self,
        *,
        check_json: bool = True,
        broken_pipe_after: int | None = None,
        output_error_after: int | None = None,
    ) -> None:
        self.uri = "list:"
        self.check_json = check_json
        self.broken_pipe_after = broken_pipe_after
        self.output_error_after = output_error_after
        self.records: list[dict[str, Any]] = []
        self.n_flushed = 0
        self.flush_count = 0
        self.closed = False

    @property
    def flushed_records(self) -> list[dict[str, Any]]:
        """The records written before the last flush: what a crash now would not lose."""
        return self.records[: self.n_flushed]

    def write_batch(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Keep ``records``; see the class docstring for the failures it can imitate."""
        if self.closed:
            raise RuntimeError("write_batch called after close")
        if self.check_json:
            for record in records:
                encode_json_line(record)
        if (
            self.broken_pipe_after is not None
            and len(self.records) + len(records) > self.broken_pipe_after
        ):
            raise BrokenPipeError("ListSink: the reader went away (broken_pipe_after)")
        if (
            self.output_error_after is not None
            and len(self.records) + len(records) > self.output_error_after
        ):
            raise OutputError(
                "ListSink", "No space left on device (output_error_after)", errno=errno.ENOSPC
            )
        self.records.extend(dict(record) for record in records)

    def flush(self) -> None:
        """Count the flush and mark every record so far as delivered."""
        if self.closed:
            raise RuntimeError("flush called after close")
        self.flush_count += 1
        self.n_flushed = len(self.records)

    def close(self) -> None:
        """Flush and mark the sink closed; a second close does nothing."""
        if not self.closed:
            self.flush()
            self.closed = True


def _as_bytes(record: object, index: int) -> bytes:
    """The line a record stands for; TypeError naming the record for one JSON cannot write."""
    if isinstance(record, bytes):
        return record
    if isinstance(record, str):
        return record.encode("utf-8")
    if isinstance(record, Mapping):
        for name in record:
            if not isinstance(name, str):
                raise TypeError(
                    f"ListSource record {index}: field name {name!r} "
                    f"({type(name).__name__}) is not a string, as a JSON object's must be"
                )
        record = dict(record)
    try:
        # Any other JSON value (a number, a list, null) is a line a run dead-letters.
        return encode_json(record, orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as exc:
        raise TypeError(f"ListSource record {index} cannot be written as JSON: {exc}") from None
