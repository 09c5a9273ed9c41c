"""A record format: what JSON lines and CSV rows each do, and which one a stream is in.

:class:`RecordFormat` is the one interface both decoding paths read records
through (:class:`~stream_detect.records.json_lines.JsonLines` and
:class:`~stream_detect.records.csv_rows.CsvRows` are the two formats), so
each path is written once for both. Every ``all_*`` method reads a whole
batch and returns None at the first doubt; the methods for one record raise
:class:`~stream_detect.records.reject.Reject` saying what is wrong.

:class:`StreamStart` keeps what a stream's first non-blank line decides:
its format, for a stream read with ``"auto"`` (:func:`sniff_format`; a
first line that cannot decide alone waits for the next batch), and a byte
order mark dropped from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Protocol, TypeVar

import orjson

from stream_detect.records.batch import FloatMatrix

__all__ = ["BOM", "Record", "RecordFormat", "StreamStart", "sniff_format"]

#: The UTF-8 byte order mark some editors write at the start of a file; never part of a record.
BOM: Final = b"\xef\xbb\xbf"

#: A parsed record: a JSON object, or a CSV row's cells.
Record = TypeVar("Record")


class RecordFormat(Protocol[Record]):
    """What a record format does: :class:`JsonLines` and :class:`CsvRows` are the two."""

    name: str

    def bind(self, features: list[str]) -> None: ...
    def parse(self, payload: bytes) -> Record: ...
    def numeric_fields(self, record: Record) -> list[str]: ...
    def filled_fields(self, record: Record) -> list[str]: ...
    def numbers(self, record: Record) -> Sequence[int | float]: ...
    def label(self, record: Record) -> int: ...
    def key(self, record: Record, name: str) -> str: ...
    def ident(self, record: Record, name: str) -> str | None: ...
    def timestamp(self, record: Record, name: str) -> Any: ...
    def to_dicts(
        self,
        records: list[Record],
        values: FloatMatrix,
        payloads: Sequence[bytes],
        *,
        lazy: bool = False,
    ) -> Sequence[dict[str, Any]]: ...
    def parse_all(self, payloads: list[bytes]) -> list[Record] | None: ...
    def all_numbers(self, records: list[Record]) -> list[int | float] | None: ...
    def all_labels(self, records: list[Record]) -> list[int] | None: ...
    def all_keys(self, records: list[Record], name: str) -> list[str] | None: ...
    def all_idents(self, records: list[Record], name: str) -> list[str | None] | None: ...


def sniff_format(payloads: list[bytes], first: int) -> str | None:
    """The format of a stream whose first non-blank line is ``payloads[first]``; None: undecided.

    >>> sniff_format([b"[1, 2]"], 0), sniff_format([b"x,y", b"1,2"], 0)
    ('json', 'csv')
    >>> sniff_format([b"oops", b'{"x": 1}'], 0), sniff_format([b"oops", b""], 0) is None
    ('json', True)
    """
    line = payloads[first].strip()
    if line.startswith(b"{"):
        return "json"
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    else:
        # No CSV header is valid JSON; a JSON stream's bad first line may well be.
        return "json"
    following = next((p.strip() for p in payloads[first + 1 :] if p.strip()), None)
    if following is None:
        return None
    return "json" if following.startswith(b"{") else "csv"


class StreamStart:
    """The format a stream's first non-blank line decides, and that line without its BOM.

    ``format`` is ``"json"``, ``"csv"`` or ``"auto"`` until :meth:`read_first`
    decides it.

    >>> start = StreamStart("auto")
    >>> start.read_first([b"oops"], [{"line": 1}], 0) is None, start.format
    (True, 'auto')
    >>> payloads, positions = start.with_held([b'{"x": 1}'], [{"line": 2}])
    >>> start.read_first(payloads, positions, 0), start.format
    ([b'oops', b'{"x": 1}'], 'json')
    """

    def __init__(self, format: str) -> None:
        self.format = format
        # Only the stream's very first line may carry a BOM.
        self._at_start = True
        self._held: tuple[bytes, dict[str, Any]] | None = None

    @property
    def holding(self) -> bool:
        """True while a first line waits for the next batch to decide the format."""
        return self._held is not None

    def known(self, format: str) -> None:
        """Take ``format`` as decided, the first line as read (a resumed stream's)."""
        self.format = format
        self._at_start = False

    def with_held(
        self, payloads: list[bytes], positions: Sequence[dict[str, Any]]
    ) -> tuple[list[bytes], Sequence[dict[str, Any]]]:
        """The batch, after the first line held back from the batch before, if any."""
        if self._held is None:
            return payloads, positions
        held, self._held = self._held, None
        return [held[0], *payloads], [held[1], *positions]

    def release(self) -> tuple[bytes, dict[str, Any]] | None:
        """At the end of the stream, the first line still held and its position; None: none.

        Nothing follows it, so by the rule of ``auto`` it is a CSV header: a
        line that is not JSON is one unless a JSON object comes after it.

        >>> start = StreamStart("auto")
        >>> start.read_first([b"x,y"], [{"line": 1}], 0) is None
        True
        >>> start.release(), start.format, start.release()
        ((b'x,y', {'line': 1}), 'csv', None)
        """
        if self._held is None:
            return None
        held, self._held = self._held, None
        self.format = "csv"
        return held

    def read_first(
        self, payloads: list[bytes], positions: Sequence[dict[str, Any]], first: int
    ) -> list[bytes] | None:
        """The payloads with ``payloads[first]`` read as the first line; None: it is held.

        A held line comes back in front of the next batch (:meth:`with_held`),
        where the line after it decides the format.
        """
        if self._at_start and payloads[first].startswith(BOM):
            payloads = list(payloads)
            payloads[first] = payloads[first][len(BOM) :]
        self._at_start = False
        if self.format == "auto":
            decided = sniff_format(payloads, first)
            if decided is None:
                self._held = (payloads[first], positions[first])
                return None
            self.format = decided
        return payloads
