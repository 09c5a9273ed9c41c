"""The records a line source has parsed but not yet returned, and how they are parsed.

:class:`LineBuffer` turns chunks of bytes into line records (see
:mod:`stream_detect.sources.lines` for what a record and its position are)
and hands them out in batches, keeping only the records not yet returned.
Reading the bytes is left to the class that mixes it in
(:class:`~stream_detect.sources.lines.LineSource`).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from stream_detect.sources.base import RawBatch
from stream_detect.sources.line_positions import LinePositions

__all__ = ["LineBuffer"]

_CR = 13


class _LongLine:
    """The line being skipped because it outgrew ``max_line_bytes``."""

    __slots__ = ("ends_with_cr", "head", "length")

    def __init__(self, head: bytes, length: int, ends_with_cr: bool) -> None:
        self.head = head
        #: bytes seen so far, excluding the newline
        self.length = length
        self.ends_with_cr = ends_with_cr


class LineBuffer:
    """Parsed line records waiting to be returned, with the parse cursor.

    A mix-in: the class using it sets :attr:`max_line_bytes`, calls
    :meth:`_reset` before the first chunk, :meth:`_ingest` with each chunk
    read, :meth:`_finish` at the end of the stream and :meth:`_take` to
    return a batch.
    """

    #: Longest line kept whole; longer lines are truncated to this many bytes.
    max_line_bytes: int

    def _reset(self, line: int, offset: int) -> None:
        """Forget everything buffered; the descriptor is at ``offset``, which starts ``line``."""
        # Records parsed but not yet returned: lists plus a start index, so taking
        # a batch is two slices, not a pop per record. Records are consecutive
        # lines, so a position is the line number of the first plus an offset per
        # record (and a note for a truncated line), made into a dict only if read.
        self._payloads: list[bytes] = []
        self._offsets: list[int] = []
        self._first_line = line
        self._notes: dict[int, dict[str, Any]] = {}
        self._start = 0
        # (records parsed in total after a read, monotonic time of that read): the
        # oldest unreturned record's arrival time drives the linger deadline.
        self._arrivals: deque[tuple[int, float]] = deque()
        self._parsed_total = 0
        self._returned_total = 0
        # Parse cursor: where the next unparsed line starts.
        self._line = line
        self._offset = offset
        self._pending = bytearray()
        self._long: _LongLine | None = None
        self._read_offset = offset
        self._at_end = False
        self._eof = False
        self._resume = (line, offset)

    def _ingest(self, chunk: bytes) -> None:
        """Parse a chunk: complete lines become records, the tail waits for more."""
        if self._long is not None:
            newline = chunk.find(b"\n")
            if newline < 0:
                self._long.length += len(chunk)
                self._long.ends_with_cr = chunk[-1] == _CR
                return
            self._long.length += newline
            if newline > 0:
                self._long.ends_with_cr = chunk[newline - 1] == _CR
            self._emit_long(terminator=1)
            chunk = chunk[newline + 1 :]
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if lines:
            may_have_cr = b"\r" in chunk
            if self._pending:
                may_have_cr = may_have_cr or b"\r" in self._pending
                lines[0] = bytes(self._pending) + lines[0]
                self._pending = bytearray()
            self._emit_lines(lines, may_have_cr)
        self._pending += tail
        # +1: a line of exactly max_line_bytes may still be followed by its "\r".
        if len(self._pending) > self.max_line_bytes + 1:
            self._long = _LongLine(
                bytes(self._pending[: self.max_line_bytes]),
                len(self._pending),
                self._pending[-1] == _CR,
            )
            self._pending = bytearray()

    def _emit_lines(self, lines: list[bytes], may_have_cr: bool = True) -> None:
        """Append complete lines (each followed by a newline in the input) as records.

        ``may_have_cr=False`` promises that no line contains ``"\\r"``.
        """
        line_no = self._line
        offset = self._offset
        limit = self.max_line_bytes
        count = len(lines)
        lengths = None if may_have_cr else np.fromiter(map(len, lines), np.int64, count)
        if lengths is not None and int(lengths.max()) <= limit:
            # The common case, without a Python loop per line: line i starts after the
            # i previous lines and their i newlines.
            self._payloads.extend(lines)
            ends = np.cumsum(lengths + 1)
            ends += offset
            self._offsets.append(offset)
            self._offsets.extend(ends[:-1].tolist())
            self._offset = int(ends[-1])
            self._parsed_total += count
            self._line = line_no + count
            return
        payloads = self._payloads
        offsets = self._offsets
        for raw in lines:
            size = len(raw)
            offsets.append(offset)
            offset += size + 1
            if raw.endswith(b"\r"):
                raw = raw[:-1]
                size -= 1
            if size > limit:
                self._notes[line_no] = {"truncated": True, "length": size}
                raw = raw[:limit]
            payloads.append(raw)
            line_no += 1
        self._parsed_total += count
        self._line = line_no
        self._offset = offset

    def _emit_long(self, terminator: int) -> None:
        """Turn the skipped long line into a truncated record; ``terminator``: 1 or 0 bytes."""
        assert self._long is not None
        long_line = self._long
        self._long = None
        self._payloads.append(long_line.head)
        self._offsets.append(self._offset)
        self._notes[self._line] = {
            "truncated": True,
            "length": long_line.length - long_line.ends_with_cr,
        }
        self._parsed_total += 1
        self._line += 1
        self._offset += long_line.length + terminator

    def _finish(self) -> None:
        """The stream ended: the unterminated last line, if any, is a record too."""
        self._eof = True
        if self._long is not None:
            self._emit_long(terminator=0)
        elif self._pending:
            self._emit_lines([bytes(self._pending)])
            self._pending = bytearray()
            # _emit_lines stepped over a newline that this last line does not have.
            self._offset -= 1

    def _take(self, max_records: int) -> RawBatch:
        start = self._start
        end = min(start + max_records, len(self._payloads))
        if end == start:
            return RawBatch()
        notes: dict[int, dict[str, Any]] = {}
        if self._notes:
            # The batch takes its lines' notes along; the buffer forgets them.
            after = self._first_line + end
            taken = [line for line in self._notes if line < after]
            notes = {line: self._notes.pop(line) for line in taken}
        positions = LinePositions(self._first_line + start, self._offsets[start:end], notes)
        batch = RawBatch(self._payloads[start:end], positions)
        self._returned_total += end - start
        if end == len(self._payloads):
            self._payloads = []
            self._offsets = []
            self._first_line = self._line
            self._start = 0
            self._resume = (self._line, self._offset)
        else:
            self._resume = (self._first_line + end, self._offsets[end])
            if 2 * end >= len(self._payloads):
                # Drop the returned prefix once it is at least half the lists, or they
                # would grow with the whole stream. The records moved are never more
                # than those dropped, so this costs O(1) per record on average.
                del self._payloads[:end]
                del self._offsets[:end]
                self._first_line += end
                self._start = 0
            else:
                self._start = end
        while self._arrivals and self._arrivals[0][0] <= self._returned_total:
            self._arrivals.popleft()
        return batch
