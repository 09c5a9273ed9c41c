"""The output records of one batch: each written event's fields plus what the detector found.

A :class:`ResultBatch` is what the pipeline hands its sink. It reads as a
sequence of dicts, one per written event, so any sink can use it; those dicts
are built only when asked for. A sink that writes JSON lines asks instead for
:meth:`ResultBatch.json_lines`, which encodes the batch column by column (one
orjson call per result column, one per event for its own fields) without a
dict per event, byte for byte what encoding each record would give.

A record holds the event's own fields in their order, then ``log_p``,
``score``, ``mahalanobis_sq``, ``log_tail``, ``log_epsilon``, ``alert``,
``warmup``, ``n``, ``key`` and ``position``, and on an alert
``contributions``. NaN and infinities are ``None`` (JSON's ``null``). An
event field with the name of a result field is overwritten in its place.

>>> import numpy as np
>>> from stream_detect.detections import Detections
>>> from stream_detect.records import Decoded
>>> decoded = Decoded.empty(1)
>>> decoded.values = np.array([[1.0], [40.0]])
>>> decoded.records = [{"x": 1}, {"x": 40}]
>>> decoded.positions = [{"line": 1}, {"line": 2}]
>>> found = Detections.empty(2)
>>> found.alert[1] = True
>>> found.contributions[1] = {"x": 1.0}
>>> results = ResultBatch.of(decoded, found, emit="alerts")
>>> len(results), results[0]["x"], results[0]["alert"], results[0]["position"]
(1, 40, True, {'line': 2})
>>> b"".join(results.json_lines())[:60]
b'{"x":40,"log_p":null,"score":null,"mahalanobis_sq":null,"log'
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator, Sequence
from typing import Any, Final, overload

import numpy as np
import orjson
from numpy.typing import NDArray

from stream_detect.detections import Detections
from stream_detect.records.batch import Decoded
from stream_detect.sinks.json_encoding import encode_json_line
from stream_detect.sources.line_positions import LinePositions

__all__ = ["PIECE_EVENTS", "RESULT_FIELDS", "ResultBatch"]

#: The fields a result adds to its event, in order (``contributions`` on alerts only).
RESULT_FIELDS: Final = (
    "log_p",
    "score",
    "mahalanobis_sq",
    "log_tail",
    "log_epsilon",
    "alert",
    "warmup",
    "n",
    "key",
    "position",
    "contributions",
)
#: Events per piece of :meth:`ResultBatch.json_lines`: a few tens of kilobytes,
#: small enough that the allocator reuses their memory from batch to batch
#: instead of handing it back to the system and faulting it in again.
PIECE_EVENTS: Final = 64

_NAMES = frozenset(RESULT_FIELDS)
_OPTIONS: Final = orjson.OPT_SERIALIZE_NUMPY
#: Each result field between two values, ready to join: ``,"log_p":`` ... A key's
#: opening quote and the position's opening brace are part of their separators.
_SEPARATORS: Final = [
    *(f',"{name}":'.encode() for name in RESULT_FIELDS[:-3]),
    b',"key":',
    b',"position":{',
]
_SEPARATORS_QUOTED_KEY: Final = [*_SEPARATORS[:-2], b',"key":"', b',"position":{']
#: The position's closing brace, then the event's (after contributions on an alert).
_CONTRIBUTIONS: Final = b'},"contributions":'
_END: Final = b"}}\n"
#: Per event: its fields without the closing brace, then a separator and a value per result field.
_PARTS: Final = 2 + 2 * len(_SEPARATORS)
_BETWEEN_OBJECTS: Final = b"},{"
_CUT: Final = b"\x00"
_CUT_BEFORE_OBJECT: Final = _CUT + b"{"
_without_first_byte = operator.itemgetter(slice(1, None))


def _floats(values: NDArray[Any]) -> list[float | None]:
    """Python floats with NaN and infinities as None (JSON has no such numbers)."""
    return [v if math.isfinite(v) else None for v in values.tolist()]


def _inner_texts(positions: Sequence[dict[str, Any]]) -> list[bytes]:
    """Each position's JSON text without its braces, from one encoding of them all.

    A source's own positions may write themselves from their numbers
    (:meth:`LinePositions.json_texts`); others are cut from one encoding
    (:func:`_each_encoded`).
    """
    if isinstance(positions, LinePositions):
        texts = positions.json_texts()
        if texts is not None:
            return texts
    return _each_encoded(positions, opening_brace=False, option=_OPTIONS)


def _each_encoded(
    objects: Sequence[dict[str, Any]], *, opening_brace: bool, option: int = 0
) -> list[bytes]:
    """Each object's JSON text without its closing brace (and its opening one unless asked).

    ``option`` is orjson's; without it, a value outside JSON's own types raises.

    One encoding of them all, ``[{...},{...}]``, holds ``},{`` between two
    objects: cut there, it gives one piece per object, unless a value holds
    that text too (a string, a list of objects); then each object is encoded
    on its own. orjson writes no raw NUL byte (it escapes control
    characters), so NUL marks the cuts. Raises orjson's TypeError for a value
    JSON cannot represent.

    >>> _each_encoded([{"a": 1}, {}, {"b": [{"c": 2}, {"d": 3}]}], opening_brace=True)
    [b'{"a":1', b'{', b'{"b":[{"c":2},{"d":3}]']
    >>> _each_encoded([{"a": "},{"}, {}], opening_brace=False)
    [b'"a":"},{"', b'']
    """
    listed = objects if type(objects) is list else list(objects)
    start, cut = (1, _CUT_BEFORE_OBJECT) if opening_brace else (2, _CUT)
    text = orjson.dumps(listed, option=option)[start:-2]
    pieces = text.replace(_BETWEEN_OBJECTS, cut).split(_CUT)
    if len(pieces) == len(listed):
        return pieces
    trim = slice(start - 1, -1)
    return [orjson.dumps(item, option=option)[trim] for item in listed]


def _column(values: NDArray[Any]) -> list[bytes]:
    """Each value's JSON text, from one encoding of the whole column.

    Numbers never contain a comma, so splitting the JSON array's text gives
    each value as orjson writes a lone Python number (NaN and infinities as
    ``null``).

    >>> _column(np.array([0.5, -1e-7, np.nan])), _column(np.full(3, -13.8))
    ([b'0.5', b'-1e-7', b'null'], [b'-13.8', b'-13.8', b'-13.8'])
    >>> _column(np.array([0.0, -0.0]))
    [b'0.0', b'-0.0']
    """
    if values.size > 1 and values.dtype == np.float64:
        # A column of one value (the threshold, over a batch with no re-tune) is
        # encoded once. Compared bit for bit: -0.0 == 0.0 but is written apart.
        bits = values.view(np.uint64)
        if np.all(bits == bits[0]):
            return orjson.dumps(values[:1], option=_OPTIONS)[1:-1].split(b",") * values.size
    return orjson.dumps(np.ascontiguousarray(values), option=_OPTIONS)[1:-1].split(b",")


class ResultBatch(Sequence[dict[str, Any]]):
    """The records written for one batch; see the module docstring.

    Parameters
    ----------
    decoded
        The batch's good events.
    found
        What the detector found for them, row for row.
    rows
        The rows of ``decoded`` that are written, in order.
    """

    def __init__(self, decoded: Decoded, found: Detections, rows: NDArray[np.intp]) -> None:
        self.decoded = decoded
        self.found = found
        self.rows = rows
        self._records: list[dict[str, Any]] | None = None

    @classmethod
    def of(cls, decoded: Decoded, found: Detections, *, emit: str) -> ResultBatch:
        """The alerts of the batch (``emit="alerts"``) or every event of it (``"all"``)."""
        rows = np.arange(len(decoded)) if emit == "all" else np.flatnonzero(found.alert)
        return cls(decoded, found, rows)

    def __len__(self) -> int:
        return int(self.rows.size)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        return self.records()[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records())

    def records(self) -> list[dict[str, Any]]:
        """The records as dicts (made on the first call, then kept)."""
        if self._records is None:
            self._records = self._build_records()
        return self._records

    def _build_records(self) -> list[dict[str, Any]]:
        rows = self.rows
        if not rows.size:
            return []
        decoded, found = self.decoded, self.found
        # Only the rows written are converted: with alerts only, about 1 in 100.
        log_p = _floats(found.log_p[rows])
        score = _floats(found.score[rows])
        distance = _floats(found.distance_sq[rows])
        log_tail = _floats(found.log_tail[rows])
        log_epsilon = _floats(found.log_epsilon[rows])
        alert = found.alert[rows].tolist()
        warmup = found.warmup[rows].tolist()
        n = found.n[rows].tolist()
        keys = decoded.keys
        out = []
        for j, i in enumerate(rows.tolist()):
            record = dict(decoded.records[i])
            record.update(
                log_p=log_p[j],
                score=score[j],
                mahalanobis_sq=distance[j],
                log_tail=log_tail[j],
                log_epsilon=log_epsilon[j],
                alert=alert[j],
                warmup=warmup[j],
                n=n[j],
                key=None if keys is None else keys[i],
                position=decoded.positions[i],
            )
            if alert[j]:
                record["contributions"] = found.contributions.get(i, {})
            out.append(record)
        return out

    def json_lines(self) -> list[bytes]:
        """The records as JSON lines, in pieces of whole lines (joined, they are the output).

        Byte for byte ``encode_json_line`` of each record in turn (see
        :mod:`stream_detect.sinks.json_encoding`). Pieces of at most
        :data:`PIECE_EVENTS` lines keep every allocation small.

        Raises
        ------
        TypeError
            An event field holds a value JSON cannot represent.
        """
        rows = self.rows
        if not rows.size:
            return []
        decoded, found = self.decoded, self.found
        everything = rows.size == len(decoded)
        picked = decoded.records if everything else [decoded.records[i] for i in rows.tolist()]
        if not _NAMES.isdisjoint(set().union(*picked)):
            # An event with a field named like a result field: its result fields
            # are not simply appended, so encode record by record.
            return self._json_lines_one_by_one()
        try:
            # Decoded events hold JSON's own types only, which need no options;
            # anything else is left to the record-by-record path. Each JSON text is
            # cut as soon as it is made (the cut is a small copy, and orjson's own
            # buffer is freed at once), so the allocator keeps reusing the same few
            # blocks instead of growing the heap by a batch and trimming it.
            heads = _each_encoded(picked, opening_brace=True)
        except TypeError:
            return self._json_lines_one_by_one()
        if b"{" in heads:
            return self._json_lines_one_by_one()  # an event without fields: no comma after it
        count = len(heads)
        whole = slice(None) if everything else rows
        keys = decoded.keys
        positions = decoded.positions
        if not everything:
            positions = [positions[i] for i in rows.tolist()]
            keys = None if keys is None else [keys[i] for i in rows.tolist()]
        columns = [
            _column(found.log_p[whole]),
            _column(found.score[whole]),
            _column(found.distance_sq[whole]),
            _column(found.log_tail[whole]),
            _column(found.log_epsilon[whole]),
            _column(found.alert[whole]),
            _column(found.warmup[whole]),
            _column(found.n[whole]),
            [b"null"] * count
            if keys is None
            else list(map(_without_first_byte, map(orjson.dumps, keys))),
            _inner_texts(positions),
        ]
        separators = _SEPARATORS if keys is None else _SEPARATORS_QUOTED_KEY
        # One flat list, event after event: head, then separator and value per
        # field, then the end. Filled a whole column at a time by slice assignment.
        parts: list[bytes] = [b""] * (count * _PARTS)
        parts[0::_PARTS] = heads
        for field, (separator, values) in enumerate(zip(separators, columns, strict=True)):
            parts[1 + 2 * field :: _PARTS] = [separator] * count
            parts[2 + 2 * field :: _PARTS] = values
        parts[_PARTS - 1 :: _PARTS] = [_END] * count
        contributions = found.contributions
        for j in np.flatnonzero(found.alert[whole]).tolist():
            row = j if everything else int(rows[j])
            parts[(j + 1) * _PARTS - 1] = (
                _CONTRIBUTIONS + orjson.dumps(contributions.get(row, {}), option=_OPTIONS) + b"}\n"
            )
        step = PIECE_EVENTS * _PARTS
        return [b"".join(parts[start : start + step]) for start in range(0, len(parts), step)]

    def _json_lines_one_by_one(self) -> list[bytes]:
        records = self.records()
        return [
            b"".join(map(encode_json_line, records[start : start + PIECE_EVENTS]))
            for start in range(0, len(records), PIECE_EVENTS)
        ]
