"""The original fields of a batch's events, each built from its line only when read.

A run that writes only its alerts reads the fields of about one event in a
hundred. :class:`LazyRecords` keeps what each good event was read from (its
JSON line, or its CSV row) and builds the event's dict the first time it is
read (then keeps it), so it gives exactly the dicts the record-by-record path
would have built, without building the other ninety-nine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from stream_detect.made_when_read import MadeWhenRead
from stream_detect.records.wide_integers import load_exact

__all__ = ["LazyRecords"]


class LazyRecords(MadeWhenRead[dict[str, Any]]):
    """A read-only sequence of the dicts ``parse`` makes of ``payloads``, each made when first read.

    By default every payload is a JSON line that ``orjson.loads`` turns into a
    dict, with integers wider than 64 bits kept exact
    (:func:`~stream_detect.records.wide_integers.load_exact`; the decoder
    hands over only lines it has checked); any other ``parse`` must turn each
    payload into a dict. Reading a record twice
    gives the same dict; it compares equal to any sequence of equal dicts.

    >>> records = LazyRecords([b'{"x": 1}', b'{"x": 2, "host": "a"}'])
    >>> len(records), records.parsed
    (2, 0)
    >>> records[1], records.parsed
    ({'x': 2, 'host': 'a'}, 1)
    >>> records[1] is records[-1]
    True
    >>> records == [{"x": 1}, {"x": 2, "host": "a"}], records.take([1]) == [records[1]]
    (True, True)
    """

    __slots__ = ("_parse", "_parsed", "_payloads")
    item_name = "record"

    def __init__(
        self,
        payloads: Sequence[Any],
        parsed: dict[int, dict[str, Any]] | None = None,
        parse: Callable[[Any], dict[str, Any]] = load_exact,
    ):
        self._payloads = payloads
        self._parsed: dict[int, dict[str, Any]] = {} if parsed is None else parsed
        self._parse = parse

    @property
    def parsed(self) -> int:
        """How many records have been parsed so far."""
        return len(self._parsed)

    def __len__(self) -> int:
        return len(self._payloads)

    def __repr__(self) -> str:
        return f"LazyRecords({len(self)} records, {self.parsed} parsed)"

    def take(self, rows: Sequence[int]) -> LazyRecords:
        """The records of ``rows``, in that order, still parsed only when read.

        Records already parsed come along, so a dict read before is the same
        dict after.
        """
        parsed = self._parsed
        return LazyRecords(
            [self._payloads[i] for i in rows],
            {j: parsed[i] for j, i in enumerate(rows) if i in parsed},
            self._parse,
        )

    def _item(self, index: int) -> dict[str, Any]:
        record = self._parsed.get(index)
        if record is None:
            record = self._parsed[index] = self._parse(self._payloads[index])
        return record
