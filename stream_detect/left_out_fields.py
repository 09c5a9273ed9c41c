"""The fields of a table that are neither features nor the label, and the numbers found in them.

When a table's features are inferred from its first data row, as the stream
does, a field that row did not make a feature must never hold a number in a
later row: the first row's empty or text cell would otherwise drop a numeric
column silently. :class:`LeftOutFields` lists those fields, in the order they
first appear (a table's ``ignored_columns``), and finds the first row where
one of them holds a number, in the CSV lines or the JSON events of a chunk
that :func:`~stream_detect.tables.iter_table` has decoded.

A number is a CSV cell that ``float`` parses as finite, or a JSON number.
Unnamed CSV columns are never features and never checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any, Final

from stream_detect.records.csv_rows import split_csv
from stream_detect.records.feature_values import NUMBER_TYPES, reads_as_finite_number
from stream_detect.records.field_paths import has_path, path_parts
from stream_detect.sinks.json_encoding import encode_json

__all__ = ["LeftOutFields"]

#: Every finite number has a digit; a cell without one need not be parsed.
_DIGIT: Final = re.compile(r"\d")
#: The ASCII bytes a number may be written with, whitespace and "_" included.
_NUMBER_BYTES: Final = b"0123456789._eE+- \t\r\x0b\x0c\x1c\x1d\x1e\x1f"


class LeftOutFields:
    """The fields that are neither features nor the label, and the numbers found in them.

    ``names`` lists them in the order they first appear. With ``check``
    (features inferred from the first data row), :meth:`scan_csv` and
    :meth:`scan_json` return the first row where one of them holds a number,
    as ``(line, reason)``, or None.

    >>> fields = LeftOutFields("label", check=True)
    >>> line, reason = fields.scan_csv(
    ...     ["host", "x", "label"], ["x"], [b"host,x,label\\n", b"web,1,0\\n", b"7,2,1\\n"],
    ...     1, [{"line": 2}, {"line": 3}],
    ... )
    >>> line, list(fields.names)
    (3, ['host'])
    >>> reason  # doctest: +ELLIPSIS
    "column 'host' holds a number (7) but is not a feature: ... has 'web' there; ..."
    """

    def __init__(self, label_field: str | None, *, check: bool) -> None:
        self.label_field = label_field
        self.check = check
        self.names: dict[str, None] = {}
        self._first_line: int | None = None
        self._first_row: dict[str, Any] = {}
        self._columns: list[tuple[int, str]] | None = None

    def _reason(self, kind: str, name: str, number: str, first: str) -> str:
        return (
            f"{kind} {name!r} holds a number ({number}) but is not a feature: the first data "
            f"row (line {self._first_line}), which decides the features, {first}; fix that row "
            "or choose the features (--features)"
        )

    def scan_csv(
        self,
        columns: list[str],
        features: list[str],
        lines: list[bytes],
        first_line: int,
        positions: Sequence[dict[str, Any]],
    ) -> tuple[int, str] | None:
        """Scan the good rows (at ``positions``) of a CSV chunk of ``lines`` from ``first_line``."""
        if self._columns is None:
            known = {*features, self.label_field}
            # Unnamed columns (an index column, a trailing comma) are never features.
            self._columns = [
                (i, name) for i, name in enumerate(columns) if name and name not in known
            ]
            self.names.update(dict.fromkeys(name for _, name in self._columns))
        if not self.check or not self._columns or not positions:
            return None
        if len(positions) == len(lines):
            rows = lines
        else:
            offsets = [line - first_line for line in map(itemgetter("line"), positions)]
            rows = list(map(lines.__getitem__, offsets))
        stripped = [row.rstrip(b"\r\n") for row in rows]
        quoted = b'"' in b"".join(stripped)
        if self._first_line is None:
            self._first_line = positions[0]["line"]
            first_cells = _split_row(stripped[0])
            self._first_row = {name: first_cells[i].decode("utf-8") for i, name in self._columns}
        found: list[tuple[int, str, str]] = []
        for i, name in self._columns:
            if quoted:
                # Quoted cells may hold commas: split those rows as CSV (rare, so slower).
                cells = [_split_row(row)[i] for row in stripped]
            else:
                cells = [row.split(b",", i + 1)[i] for row in stripped]
            row_index = _first_number(cells)
            if row_index is not None:
                found.append((row_index, name, cells[row_index].decode("utf-8").strip()))
        if not found:
            return None
        row_index, name, number = min(found)
        first = self._first_row[name]
        shown = "an empty cell" if not first.strip() else repr(first)
        return positions[row_index]["line"], self._reason(
            "column", name, number, f"has {shown} there"
        )

    def scan_json(
        self,
        features: list[str],
        events: Sequence[dict[str, Any]],
        positions: Sequence[dict[str, Any]],
    ) -> tuple[int, str] | None:
        """Scan the good events of a JSON-lines chunk."""
        if not events:
            return None
        if self._first_line is None:
            self._first_line = positions[0]["line"]
            self._first_row = events[0]
        known = {*features, self.label_field}
        # An object of the first row whose members are features (cpu.user) is not left out.
        outer = (path_parts(name)[0] for name in features if has_path(name))
        known.update(name for name in outer if type(self._first_row.get(name)) is dict)
        new = set().union(*events) - known - self.names.keys()
        for event in events:
            if not new:
                break
            for name in event:
                if name in new:
                    self.names[name] = None
                    new.discard(name)
        if not self.check:
            return None
        found: list[tuple[int, str]] = []
        for name in self.names:
            values = list(map(dict.get, events, repeat(name)))
            if NUMBER_TYPES.isdisjoint(map(type, values)):
                continue
            found.append((next(i for i, v in enumerate(values) if type(v) in NUMBER_TYPES), name))
        if not found:
            return None
        row_index, name = min(found)
        value = events[row_index][name]
        first = (
            f"has {encode_json(self._first_row[name]).decode()} there"
            if name in self._first_row
            else "lacks it"
        )
        return positions[row_index]["line"], self._reason("field", name, repr(value), first)


def _split_row(row: bytes) -> list[bytes]:
    """The cells of a CSV row the decoder has accepted (so valid UTF-8, one record)."""
    if b'"' not in row:
        return row.split(b",")
    return [cell.encode("utf-8") for cell in split_csv(row.decode("utf-8"))]


def _first_number(cells: list[bytes]) -> int | None:
    """Index of the first cell that is a finite number (as ``float`` parses it), or None.

    Most cells of a text column hold a letter, which no finite number does, so
    deleting the bytes a number can be written with (in bulk) leaves all but
    the few candidates non-empty; only those are parsed.

    >>> _first_number([b"web", b"", b" 1e3 "]), _first_number([b"web", b"db"])
    (2, None)
    """
    joined = b"\n".join(cells)
    if not joined.isascii():
        # Digits and spaces beyond ASCII parse too; check every cell the slow way.
        candidates: Iterator[int] = iter(range(len(cells)))
    else:
        rest = joined.translate(None, _NUMBER_BYTES)
        if rest and b"\n\n" not in rest and rest[:1] != b"\n" and rest[-1:] != b"\n":
            return None
        candidates = (index for index, part in enumerate(rest.split(b"\n")) if not part)
    for index in candidates:
        text = cells[index].decode("utf-8")
        if _DIGIT.search(text) and reads_as_finite_number(text):
            return index
    return None
