"""The lines of a table file, read as ``run`` reads a stream's: bounded, without line breaks.

:class:`TableLines` reads a file in large blocks and gives its lines a chunk
at a time, stopping before one longer than the record limit, so a file
without line breaks is refused rather than held in memory;
:func:`without_line_break` strips a line as a stream's source does;
:func:`refuse_json_array` says what to do with a ``.json`` file holding one
array instead of JSON lines.
"""

from __future__ import annotations

import io
from typing import BinaryIO, Final

from stream_detect.errors import InputError
from stream_detect.records.size_limits import oversize_text

__all__ = ["BLOCK_BYTES", "TableLines", "refuse_json_array", "without_line_break"]

#: Bytes asked of the file at a time. One call per block, split in C, costs far
#: less than a call per line; what is held at once stays about a block plus a line.
BLOCK_BYTES: Final = 1 << 20


class TableLines:
    """The lines of a binary file, each with its line break (``\\n``), read in blocks.

    :meth:`read` gives them ``count`` at a time and stops before a line longer
    than ``limit`` + 3 bytes, saying why it is refused: read whole, a file
    without line breaks (``/dev/zero``, a disk image, a binary file that is no
    table) would be held in memory before its length could be refused. No
    more than about ``block_bytes`` + ``limit`` bytes of the file are held or
    read ahead at once, and nothing is read after a refused line. A line a
    little over ``limit`` is given whole, and the decoder gives its length, as
    ``run`` does. The last line may lack its line break.

    >>> lines = TableLines(io.BytesIO(b"1,2\\n3,4\\n5,6"), 10)
    >>> lines.read(2), lines.read(2), lines.read(2)
    (([b'1,2\\n', b'3,4\\n'], None), ([b'5,6'], None), ([], None))
    >>> TableLines(io.BytesIO(b"1,2\\n" + b"0" * 50), 10).read(5)
    ([b'1,2\\n'], 'line of at least 13 bytes exceeds the limit of 10 bytes')
    """

    def __init__(self, handle: BinaryIO, limit: int, block_bytes: int = BLOCK_BYTES) -> None:
        if block_bytes < 1:
            raise ValueError(f"block_bytes must be >= 1, got {block_bytes}")
        self._handle = handle
        self._limit = limit
        # A line break of two bytes (\r\n) and one byte more tell a full line from a cut one.
        self._most = limit + 3
        self._block_bytes = block_bytes
        # Whole lines read and not yet given, from index _next on.
        self._lines: list[bytes] = []
        self._next = 0
        # The start of a line whose end is not read yet, in pieces: joined once, when it ends.
        self._tail: list[bytes] = []
        self._tail_bytes = 0
        # Why the line after those in _lines is refused; None: none is (yet).
        self._refusal: str | None = None
        self._done = False

    def read(self, count: int) -> tuple[list[bytes], str | None]:
        """Up to ``count`` lines, and why the line after them is refused (None: it is not).

        The reason comes with fewer than ``count`` lines (maybe none), as a
        line-by-line reader would meet the refused line before the ``count``-th;
        with ``count`` lines, it comes with the next call. No lines and no
        reason: the file has ended.

        >>> lines = TableLines(io.BytesIO(b"1,2\\r\\n" + b"0" * 13 + b"\\n"), 10)
        >>> lines.read(1), lines.read(1)
        (([b'1,2\\r\\n'], None), ([], 'line of at least 13 bytes exceeds the limit of 10 bytes'))
        >>> TableLines(io.BytesIO(b"0" * 12 + b"\\n"), 10).read(1)
        ([b'000000000000\\n'], None)
        """
        if self._next:
            # Lines given are let go now, not when the list is next emptied.
            del self._lines[: self._next]
            self._next = 0
        while len(self._lines) < count and not self._done:
            self._read_block()
        if len(self._lines) <= count:
            # All of them: the list itself, not a copy of it.
            given, self._lines = self._lines, []
        else:
            given = self._lines[:count]
            self._next = count
        if len(given) < count:
            return given, self._refusal
        return given, None

    def _read_block(self) -> None:
        """Read one block: its whole lines join :attr:`_lines`, a line cut short the tail."""
        block = self._handle.read(self._block_bytes)
        if not block:
            self._done = True
            if self._tail:
                last = b"".join(self._tail)
                self._tail, self._tail_bytes = [], 0
                if len(last) >= self._most:
                    self._refuse()
                else:
                    self._lines.append(last)
            return
        if self._tail and b"\n" not in block:
            # Still the same line: kept in pieces, so a long line is not joined block by block.
            self._tail.append(block)
            self._tail_bytes += len(block)
            if self._tail_bytes >= self._most:
                self._refuse()
            return
        # No line of this block is longer: most often under the limit, and then not measured.
        longest = self._tail_bytes + len(block)
        # BytesIO shares the block's bytes and splits at "\n" alone, keeping it, in C.
        rest = io.BytesIO(block)
        lines = []
        if self._tail:
            # The line begun in the blocks before ends in this one: joined alone, not the block.
            self._tail.append(rest.readline())
            lines.append(b"".join(self._tail))
            self._tail, self._tail_bytes = [], 0
        lines += rest.readlines()
        del rest, block
        if not lines[-1].endswith(b"\n"):
            cut = lines.pop()
            self._tail, self._tail_bytes = [cut], len(cut)
        if longest > self._most and lines and max(map(len, lines)) > self._most:
            over = next(i for i, line in enumerate(lines) if len(line) > self._most)
            del lines[over:]
            self._lines += lines
            self._refuse()
            return
        self._lines += lines
        if self._tail_bytes >= self._most:
            self._refuse()

    def _refuse(self) -> None:
        """Refuse the line after those read: nothing more is read or given."""
        self._refusal = oversize_text(self._most, self._limit, at_least=True)
        self._tail, self._tail_bytes = [], 0
        self._done = True


def without_line_break(line: bytes) -> bytes:
    """The line without its ``\\n`` or ``\\r\\n``, as a stream's source gives it.

    >>> without_line_break(b"1,2\\r\\n"), without_line_break(b"1,2")
    (b'1,2', b'1,2')
    """
    if line.endswith(b"\n"):
        line = line[:-1]
    return line[:-1] if line.endswith(b"\r") else line


def refuse_json_array(lines: list[bytes], source: str, first_number: int = 1) -> bool:
    """A ``.json`` file holding one array is a common mix-up; say what to do.

    ``lines`` are the file's from line ``first_number`` on. Returns True once
    the first non-blank line is found (and is no array), False while only
    blank lines have been seen: the next lines are then asked about too.

    >>> refuse_json_array([b"\\n"], "t.json"), refuse_json_array([b'{"x": 1}\\n'], "t.json")
    (False, True)
    """
    for number, line in enumerate(lines, start=first_number):
        stripped = line.strip()
        if stripped:
            if stripped.startswith(b"["):
                raise InputError(
                    "the file holds a JSON array; expected JSON lines, one object per line "
                    "(convert with: jq -c '.[]')",
                    source=source,
                    line=number,
                )
            return True
    return False
