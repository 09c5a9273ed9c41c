"""Small files read whole (a config, a windows table, a model), each no further than its limit.

A config file, NAB's windows table and a model file are read into memory at
once to be parsed. Named by mistake, a device that never ends (``/dev/zero``),
a disk image or a log would fill memory before any parser could refuse it; so
each is read no further than its limit and one byte, and a longer one is
refused with one line naming the file and the limit. The limits are far
above what such a file holds: a config of a few hundred lines is some KiB,
NAB's windows for all its 58 series 30 KiB, and a full model of 2,000
features about 100 MiB.
"""

from __future__ import annotations

import os
from typing import BinaryIO, Final

from stream_detect.errors import InputError

__all__ = [
    "CONFIG_FILE_LIMIT",
    "MODEL_FILE_LIMIT",
    "WINDOWS_FILE_LIMIT",
    "FileTooLarge",
    "read_at_most",
    "read_small_file",
    "shown_size",
]

#: The most bytes a ``--config`` TOML file is read to.
CONFIG_FILE_LIMIT: Final = 1 << 20
#: The most bytes replay's ``--windows`` JSON file is read to.
WINDOWS_FILE_LIMIT: Final = 64 << 20
#: The most bytes a model file (``fit --out``, ``evaluate``'s, ``--initial-model``) is read to.
MODEL_FILE_LIMIT: Final = 256 << 20


class FileTooLarge(InputError):
    """A file holds more than the limit for its kind; ``source``, ``limit`` and ``kind`` say so.

    >>> print(FileTooLarge("/dev/zero", CONFIG_FILE_LIMIT, "config file"))
    /dev/zero: holds more than 1 MiB, the limit for a config file
    """

    def __init__(self, source: str, limit: int, kind: str) -> None:
        self.limit = limit
        self.kind = kind
        super().__init__(
            f"holds more than {shown_size(limit)}, the limit for a {kind}", source=source
        )


def read_at_most(stream: BinaryIO, limit: int, source: str, kind: str, start: bytes = b"") -> bytes:
    """``start`` (bytes read from ``stream`` already) and the rest of ``stream``, if at most
    ``limit`` bytes in all; :class:`FileTooLarge` if more, with no more than that read.

    >>> import io
    >>> read_at_most(io.BytesIO(b"cd"), 4, "f", "model file", start=b"ab")
    b'abcd'
    >>> read_at_most(io.BytesIO(b"cde"), 4, "f", "model file", start=b"ab")
    Traceback (most recent call last):
    ...
    stream_detect.small_files.FileTooLarge: f: holds more than 4 bytes, the limit for a model file
    """
    rest = stream.read(max(limit - len(start), 0) + 1)
    if len(start) + len(rest) > limit:
        raise FileTooLarge(source, limit, kind)
    return start + rest


def read_small_file(path: str | os.PathLike[str], limit: int, kind: str) -> bytes:
    """The bytes of the file at ``path``, if at most ``limit``; :class:`FileTooLarge` if more.

    :class:`OSError` as opening and reading raise it.

    >>> read_small_file("/dev/zero", 1024, "windows file")
    Traceback (most recent call last):
    ...
    stream_detect.small_files.FileTooLarge: /dev/zero: holds more than 1 KiB, the limit for a \
windows file
    """
    with open(path, "rb") as stream:
        return read_at_most(stream, limit, os.fspath(path), kind)


def shown_size(size: float) -> str:
    """``size`` bytes for people, in the largest binary unit it reaches: a whole number
    when that unit divides it (a limit is shown exactly), else to a tenth (an estimate).

    >>> shown_size(64 << 20), shown_size(65536), shown_size(1000)
    ('64 MiB', '64 KiB', '1000 bytes')
    >>> shown_size(3.2e9), shown_size(1536), shown_size(5 << 40)
    ('3.0 GiB', '1.5 KiB', '5 TiB')
    """
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            if size % (1 << shift) == 0:
                return f"{int(size) >> shift} {unit}"
            return f"{size / (1 << shift):.1f} {unit}"
    return f"{size:.0f} bytes"
