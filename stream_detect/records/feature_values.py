"""The feature rule: a feature is a finite number, read from a JSON value or a CSV cell.

A JSON feature must be a JSON number, never a quoted one (:func:`json_number`);
a CSV feature is a cell that ``float`` reads, plain ASCII and finite
(:func:`cell_number`). The bulk paths gather a batch's feature values with
:func:`picked_flat` and read CSV cells with :func:`cell_numbers`, which give
the same numbers as the one-value rules or give up. The table loader asks
:func:`reads_as_finite_number` of cells that are not features. A refused
feature raises :class:`~stream_detect.records.reject.Reject`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any, Final

import orjson

from stream_detect.records.field_paths import MISSING, blocked_at, find, member_to_name
from stream_detect.records.hidden_characters import hidden_character_note
from stream_detect.records.reject import Reject, json_kind, json_text

__all__ = [
    "NUMBER_TYPES",
    "cell_number",
    "cell_numbers",
    "json_number",
    "missing_feature_reason",
    "object_feature_reason",
    "parses_as_float",
    "picked_flat",
    "reads_as_finite_number",
]

#: What a JSON number decodes to (bool is a type of its own).
NUMBER_TYPES: Final = frozenset({int, float})


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


def missing_feature_reason(name: str, event: dict[str, Any] | None = None) -> str:
    """Why a record without feature ``name`` is refused (``event``: the JSON event, if one).

    >>> missing_feature_reason("y")
    "missing feature 'y'"
    >>> missing_feature_reason("cpu.user", {"cpu": 5})
    "missing feature 'cpu.user' ('cpu' is a number, not an object)"
    """
    blocked = None if event is None else blocked_at(event, name)
    if blocked is None:
        return f"missing feature {name!r}"
    path, value = blocked
    return f"missing feature {name!r} ({path!r} is {json_kind(value)}, not an object)"


def object_feature_reason(name: str, members: dict[str, Any]) -> str:
    """Why a JSON feature that holds an object is refused: name one of its members instead.

    >>> object_feature_reason("cpu", {"host": "a", "user": 9.5, "sys": 4.9})
    "feature 'cpu' is an object; name one of its members, such as cpu.user"
    >>> object_feature_reason("cpu", {})
    "feature 'cpu' is an empty object, not a number"
    """
    member = member_to_name(name, members, NUMBER_TYPES)
    if member is not None:
        return f"feature {name!r} is an object; name one of its members, such as {member}"
    if not members:
        return f"feature {name!r} is an empty object, not a number"
    return f"feature {name!r} is an object without a number in it, not a number"


def json_number(event: dict[str, Any], name: str) -> int | float:
    """Feature ``name`` of a JSON event: a finite JSON number, never a quoted one.

    >>> json_number({"x": 2}, "x")
    2
    >>> json_number({"x": "2"}, "x")
    Traceback (most recent call last):
    ...
    stream_detect.records.reject.Reject: feature 'x' is the string "2"; numbers must not be quoted
    """
    try:
        value = event[name]
    except KeyError:
        value = find(event, name)
        if value is MISSING:
            raise Reject(missing_feature_reason(name, event)) from None
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
                f"feature {name!r} is the string {json_text(value)}; numbers must not be quoted"
            )
        raise Reject(f"feature {name!r} is the string {json_text(value)}, not a number")
    if kind is bool:
        raise Reject(f"feature {name!r} is a boolean ({json_text(value)}), not a number")
    if kind is dict:
        raise Reject(object_feature_reason(name, value))
    raise Reject(f"feature {name!r} is {json_kind(value)}, not a number")


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
    stream_detect.records.reject.Reject: feature 'x' is '1_000', not a number
    >>> cell_number("nan", "x")
    Traceback (most recent call last):
    ...
    stream_detect.records.reject.Reject: feature 'x' is 'nan', not a finite number
    """
    if not cell.strip():
        raise Reject(f"feature {name!r} is empty")
    try:
        value = _plain_float(cell)
    except ValueError:
        reason = f"feature {name!r} is {cell[:60]!r}, not a number"
        hidden = hidden_character_note(cell, "cell")
        raise Reject(reason if hidden is None else f"{reason} ({hidden})") from None
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
