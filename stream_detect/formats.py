"""Record formats, and the one map from a file name's extension to its format.

Sources use it for a format hint, the table loader to pick its decoder.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["FORMATS", "format_for_path"]

#: Input formats a decoder accepts: ``auto`` lets the first line that parses decide.
FORMATS: Final = ("json", "csv", "auto")

_FORMAT_BY_EXTENSION: Final = {".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json"}


def format_for_path(path: str | os.PathLike[str]) -> str | None:
    """Return the record format a file name names: ``"csv"``, ``"json"`` or None.

    The extension decides, in any case; other names (``.txt``, none) give None.

    >>> format_for_path("events.jsonl"), format_for_path("train.CSV"), format_for_path("log.txt")
    ('json', 'csv', None)
    """
    extension = os.path.splitext(os.fspath(path))[1].lower()
    return _FORMAT_BY_EXTENSION.get(extension)
