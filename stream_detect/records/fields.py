"""The field rules: how a number, a label, a key and an id are read, and why one is refused.

One rule per field and per way it is written: a JSON value (:func:`json_number`,
:func:`json_label`, :func:`json_key`, :func:`json_id`) or a CSV cell
(:func:`cell_number`, :func:`cell_label`, :func:`cell_key`). Both decoders, their
bulk and their record-by-record paths, and the table loader read fields only
through these, so what a label is, or why a number is refused, is said once.

Labels, in every command: 1 (or true) is an anomaly, 0 (or false) normal;
null, an absent field or an empty cell means the event is unlabelled, which
any event may be. The bulk lookup tables (:data:`JSON_LABELS`,
:data:`CELL_LABELS`) accept only what the exact rules accept.

A refused field raises :class:`Reject`; the decoders turn it into a bad record.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from itertools import chain, repeat
from typing import Any, Final

import orjson

from stream_detect.sources.line_positions import LinePositions

__all__ = [
    "CELL_LABELS",
    "JSON_LABELS",
    "NUMBER_TYPES",
    "Reject",
    "any_oversize",
    "any_too_long",
    "cell_key",
    "cell_label",
    "cell_number",
    "cell_numbers",
    "json_id",
    "json_key",
    "json_kind",
    "json_label",
    "json_number",
    "optional_texts",
    "oversize_reason",
    "parses_as_float",
    "picked_flat",
    "reads_as_finite_number",
    "texts",
    "too_long_reason",
]

#: What a JSON number decodes to (bool is a type of its own).
NUMBER_TYPES: Final = frozenset({int, float})
_SCALAR_TYPES: Final = frozenset({str, int, float, bool})
#: A JSON label value to its label. Hash-equal keys make True/1/1.0 and
#: False/0/0.0 all hit; anything else is a KeyError (or TypeError when unhashable).
JSON_LABELS: Final[dict[Any, int]] = {None: -1, 0: 0, 1: 1}
#: A CSV label cell, exactly as written, to its label: the common spellings,
#: for the bulk path; :func:`cell_label` accepts the rest of what the rule allows.
CELL_LABELS: Final[dict[str, int]] = {
    "": -1,
    "0": 0,
    "1": 1,
    "0.0": 0,
    "1.0": 1,
    "false": 0,
    "true": 1,
    "False": 0,
    "True": 1,
    "FALSE": 0,
    "TRUE": 1,
}
_LABEL_RULE: Final = "expected 0, 1, true or false"


class Reject(Exception):
    """One record is bad; ``reason`` says why. The decoders turn it into a bad record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- the record as a whole ---------------------------------------------------------------


def too_long_reason(role: str, value: str | None, limit: int) -> str | None:
    """Why a key or id value is too long to be remembered (over ``limit`` UTF-8 bytes), or None.

    Keys and ids are held in memory (one model per key, a lookup of recent
    ids), so their length bounds that memory in bytes.

    >>> too_long_reason("key", "host-1", 4)
    "key 'host' ... is 6 bytes, longer than max_key_bytes = 4"
    >>> too_long_reason("id", "e1", 4) is None
    True
    """
    # Fast path: no string of at most limit / 4 characters exceeds limit bytes in UTF-8.
    if value is None or len(value) <= limit // 4:
        return None
    size = len(value.encode("utf-8", "surrogatepass"))
    if size <= limit:
        return None
    return f"{role} {value[:limit]!r} ... is {size} bytes, longer than max_key_bytes = {limit}"


def any_too_long(values: Sequence[str | None], limit: int) -> bool:
    """True if one of ``values`` is over ``limit`` UTF-8 bytes (see :func:`too_long_reason`).

    >>> any_too_long(["a", None, "é" * 20], 40), any_too_long(["a", None, "é" * 30], 40)
    (False, True)
    """
    quick = limit // 4
    # Without a Python step per value in the usual case: no value is even that long.
    present = list(filter(None, values))
    if not present or max(map(len, present)) <= quick:
        return False
    return any(too_long_reason("", value, limit) is not None for value in present)


def oversize_reason(payload: bytes, position: dict[str, Any], limit: int) -> str | None:
    """The reason a record is too long (or was cut by its source), or None.

    >>> oversize_reason(b"abc", {"line": 1}, 2)
    'line of 3 bytes exceeds the limit of 2 bytes'
    """
    if position.get("truncated"):
        length = position.get("length", len(payload))
        return f"line of {length} bytes exceeds the limit of {position.get('limit', limit)} bytes"
    if len(payload) > limit:
        return f"line of {len(payload)} bytes exceeds the limit of {limit} bytes"
    return None


def any_oversize(payloads: list[bytes], positions: Sequence[dict[str, Any]], limit: int) -> bool:
    """Whether :func:`oversize_reason` would refuse any record of a non-empty batch."""
    if max(map(len, payloads)) > limit:
        return True
    if isinstance(positions, LinePositions):
        return positions.truncated  # without making a dict per line
    return any(map(dict.get, positions, repeat("truncated")))


# -- JSON values -------------------------------------------------------------------------


def picked_flat(rows: Iterable[Any], keys: Sequence[Any]) -> list[Any]:
    """Each row's values at ``keys``, row after row, in one flat list.

    One C-level ``itemgetter`` call per row, no Python step per value; a row
    without one of the keys raises what indexing it raises (``KeyError``,
    ``IndexError``).

    >>> picked_flat([{"a": 1, "b": 2}, {"a": 3, "b": 4}], ["b", "a"])
    [2, 1, 4, 3]
    >>> picked_flat([["x", "y"], ["z", "w"]], [1])
    ['y', 'w']
    """
    if not keys:
        return []
    if len(keys) == 1:
        return list(map(operator.itemgetter(keys[0]), rows))
    return list(chain.from_iterable(map(operator.itemgetter(*keys), rows)))


def json_kind(value: Any) -> str:
    """Name a JSON value's kind for a message.

    >>> json_kind([1]), json_kind(None), json_kind(True), json_kind(2.5)
    ('an array', 'null', 'a boolean', 'a number')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a number"


def _json_text(value: Any, limit: int = 60) -> str:
    """A value as JSON text, cut to ``limit`` characters for a message."""
    text = orjson.dumps(value).decode("utf-8")
    return text if len(text) <= limit else f"{text[:limit]}..."


def json_number(event: dict[str, Any], name: str) -> int | float:
    """Feature ``name`` of a JSON event: a finite JSON number, never a quoted one.

    >>> json_number({"x": 2}, "x")
    2
    >>> json_number({"x": "2"}, "x")
    Traceback (most recent call last):
    ...
    stream_detect.records.fields.Reject: feature 'x' is the string "2"; numbers must not be quoted
    """
    try:
        value = event[name]
    except KeyError:
        raise Reject(f"missing feature {name!r}") from None
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise Reject(f"feature {name!r} is {value!r}, not a finite number")
        return float(value)
    if kind is int:
        return int(value)
    if kind is str:
        if parses_as_float(value):
            raise Reject(
                f"feature {name!r} is the string {_json_text(value)}; numbers must not be quoted"
            )
        raise Reject(f"feature {name!r} is the string {_json_text(value)}, not a number")
    if kind is bool:
        raise Reject(f"feature {name!r} is a boolean ({_json_text(value)}), not a number")
    raise Reject(f"feature {name!r} is {json_kind(value)}, not a number")


def json_label(event: dict[str, Any], name: str | None) -> int:
    """The label of a JSON event (-1 unlabelled); -1 when there is no label field.

    >>> json_label({"label": True}, "label"), json_label({}, "label"), json_label({}, None)
    (1, -1, -1)
    """
    if name is None:
        return -1
    value = event.get(name)
    try:
        return JSON_LABELS[value]
    except (KeyError, TypeError):
        raise Reject(
            f"label {name!r} is {_json_text(value)}; {_LABEL_RULE} (null or absent for unlabelled)"
        ) from None


def _scalar_text(value: str | int | float | bool) -> str:
    """Text of a key or id: strings as they are, numbers and booleans as JSON writes them."""
    return value if type(value) is str else orjson.dumps(value).decode("utf-8")


def json_key(event: dict[str, Any], name: str) -> str:
    """The key of a JSON event as text; every event needs one.

    >>> json_key({"host": 7}, "host")
    '7'
    """
    value = event.get(name)
    if value is None:
        state = "null" if name in event else "missing"
        raise Reject(f"key field {name!r} is {state}; every event needs a key")
    if type(value) not in _SCALAR_TYPES:
        raise Reject(f"key field {name!r} is {json_kind(value)}; expected a string or a number")
    return _scalar_text(value)


def json_id(event: dict[str, Any], name: str) -> str | None:
    """The id of a JSON event as text, None when it has none.

    >>> json_id({"id": 3}, "id"), json_id({}, "id")
    ('3', None)
    """
    value = event.get(name)
    if value is None:
        return None
    if type(value) not in _SCALAR_TYPES:
        raise Reject(f"id field {name!r} is {json_kind(value)}; expected a string or a number")
    return _scalar_text(value)


def texts(values: list[Any]) -> list[str] | None:
    """Keys as text in bulk, as :func:`json_key` reads them, or None at the first doubt."""
    kinds = set(map(type, values))
    if kinds <= {str}:
        return values
    if kinds <= _SCALAR_TYPES:
        return list(map(_scalar_text, values))
    return None


def optional_texts(values: list[Any]) -> list[str | None] | None:
    """Ids as text in bulk, as :func:`json_id` reads them, or None at the first doubt."""
    kinds = set(map(type, values))
    if kinds <= {str, type(None)}:
        return values
    if kinds <= _SCALAR_TYPES | {type(None)}:
        return [None if value is None else _scalar_text(value) for value in values]
    return None


# -- CSV cells ---------------------------------------------------------------------------


def _plain_float(text: str) -> float:
    """``float(text)`` for plain ASCII number text; ValueError otherwise.

    Python's ``float`` also reads digit separators (``1_000``) and non-ASCII
    digits (``１２``), which no CSV producer means as numbers (``1_000`` is as
    likely a product code): those are refused.
    """
    if "_" in text or not text.isascii():
        raise ValueError(text)
    return float(text)


def parses_as_float(text: str) -> bool:
    """Whether ``text`` is a plain ASCII float (``nan`` and ``inf`` included; no ``1_000``).

    >>> parses_as_float(" 1e3"), parses_as_float("nan"), parses_as_float("1_000")
    (True, True, False)
    """
    try:
        _plain_float(text)
    except ValueError:
        return False
    return True


def cell_number(cell: str, name: str) -> float:
    """Feature ``name`` from a CSV cell: what ``float`` reads, finite, plain ASCII.

    Digit separators and non-ASCII digits are refused (see :func:`parses_as_float`).

    >>> cell_number(" 2.5", "x")
    2.5
    >>> cell_number("1_000", "x")
    Traceback (most recent call last):
    ...
    stream_detect.records.fields.Reject: feature 'x' is '1_000', not a number
    >>> cell_number("nan", "x")
    Traceback (most recent call last):
    ...
    stream_detect.records.fields.Reject: feature 'x' is 'nan', not a finite number
    """
    if not cell.strip():
        raise Reject(f"feature {name!r} is empty")
    try:
        value = _plain_float(cell)
    except ValueError:
        raise Reject(f"feature {name!r} is {cell[:60]!r}, not a number") from None
    if not math.isfinite(value):
        raise Reject(f"feature {name!r} is {cell.strip()!r}, not a finite number")
    return value


def reads_as_finite_number(cell: str) -> bool:
    """Whether :func:`cell_number` accepts ``cell``.

    >>> reads_as_finite_number(" 1e3"), reads_as_finite_number("inf"), reads_as_finite_number("")
    (True, False, False)
    """
    try:
        cell_number(cell, "")
    except Reject:
        return False
    return True


def cell_numbers(cells: Sequence[str]) -> list[int | float] | None:
    """CSV cells as numbers in bulk, as :func:`cell_number` reads them, or None at a doubt.

    orjson parses a whole batch of plain decimal cells at once, about three
    times faster than ``float`` cell by cell; cells JSON does not accept
    (``.5``, ``1.``, ``+1``, ``nan``) take the ``float`` route. Both round
    correctly, so both give the same float64 for the same text. Non-finite
    numbers come back as they are; the caller checks finiteness in bulk.

    >>> cell_numbers(["1", ".5", "2e3"]), cell_numbers(["1", "x"])
    ([1.0, 0.5, 2000.0], None)
    """
    try:
        numbers: list[Any] = orjson.loads("[" + ",".join(cells) + "]")
    except orjson.JSONDecodeError:
        numbers = []
    # A cell such as "[1" or "true" can parse as JSON without being a number.
    if len(numbers) == len(cells) and set(map(type, numbers)) <= NUMBER_TYPES:
        return numbers
    try:
        return list(map(_plain_float, cells))
    except ValueError:
        return None


def cell_label(cell: str, name: str) -> int:
    """The label in a CSV cell (-1 for an empty cell): 0/1, true/false in any case, 0.0/1.0.

    >>> cell_label(" TRUE ", "label"), cell_label("", "label"), cell_label("1e0", "label")
    (1, -1, 1)
    """
    text = cell.strip()
    label = CELL_LABELS.get(text.lower())
    if label is not None:
        return label
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if number in (0.0, 1.0):
        return int(number)
    raise Reject(f"label {name!r} is {cell[:60]!r}; {_LABEL_RULE} (empty for unlabelled)")


def cell_key(cell: str, name: str) -> str:
    """The key in a CSV cell; every event needs one.

    >>> cell_key("a", "host")
    'a'
    """
    if not cell:
        raise Reject(f"key field {name!r} is empty")
    return cell
