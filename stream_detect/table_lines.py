"""The lines of a table file, read as ``run`` reads a stream's: bounded, without line breaks.

:func:`read_lines` reads a chunk of lines and stops before one longer than
the record limit, so a file without line breaks is refused rather than held
in memory; :func:`without_line_break` strips a line as a stream's source does;
:func:`refuse_json_array` says what to do with a ``.json`` file holding one
array instead of JSON lines.
"""

from __future__ import annotations

import functools
from itertools import islice
from typing import BinaryIO

from stream_detect.errors import InputError
from stream_detect.records.size_limits import oversize_text

__all__ = ["read_lines", "refuse_json_array", "without_line_break"]


def read_lines(handle: BinaryIO, count: int, limit: int) -> tuple[list[bytes], str | None]:
    """Up to ``count`` lines, none read further than ``limit`` + 3 bytes.

    Stops before a line longer than that and returns why it is refused: read
    whole, a file without line breaks (``/dev/zero``, a disk image, a binary
    file that is no table) would be held in memory before its length could be
    refused. A line a little over ``limit`` is read whole, and the decoder
    gives its length, as ``run`` does.

    >>> import io
    >>> read_lines(io.BytesIO(b"1,2\\n3,4\\n"), 5, 10)
    ([b'1,2\\n', b'3,4\\n'], None)
    >>> read_lines(io.BytesIO(b"1,2\\n" + b"0" * 50), 5, 10)
    ([b'1,2\\n'], 'line of at least 13 bytes exceeds the limit of 10 bytes')
    """
    # A line break of two bytes (\r\n) and one byte more tell a full line from a cut one.
    most = limit + 3
    lines: list[bytes] = []
    for line in islice(iter(functools.partial(handle.readline, most), b""), count):
        if len(line) == most and not line.endswith(b"\n"):
            return lines, oversize_text(most, limit, at_least=True)
        lines.append(line)
    return lines, None


def without_line_break(line: bytes) -> bytes:
    """The line without its ``\\n`` or ``\\r\\n``, as a stream's source gives it.

    >>> without_line_break(b"1,2\\r\\n"), without_line_break(b"1,2")
    (b'1,2', b'1,2')
    """
    if line.endswith(b"\n"):
        line = line[:-1]
    return line[:-1] if line.endswith(b"\r") else line


def refuse_json_array(lines: list[bytes], source: str) -> None:
    """A ``.json`` file holding one array is a common mix-up; say what to do."""
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped:
            if stripped.startswith(b"["):
                raise InputError(
                    "the file holds a JSON array; expected JSON lines, one object per line "
                    "(convert with: jq -c '.[]')",
                    source=source,
                    line=number,
                )
            return
