"""Keys and ids as text, from a JSON value or a CSV cell.

A key picks the event's model, so every event needs one; an id is optional.
A JSON string is taken as it is, a number or a boolean as JSON writes it
(an integer digit for digit, however wide: two ids of 30 digits that differ
in the last one are two ids), an array or an object is refused
(:func:`json_key`, :func:`json_id`); a CSV cell is its own text
(:func:`cell_key`). :func:`texts` and :func:`optional_texts` read a batch's
keys and ids in bulk, the same way. How long a key or id may
be: :mod:`~stream_detect.records.size_limits`.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from stream_detect.records.field_paths import MISSING, find, get, member_to_name
from stream_detect.records.reject import Reject, json_kind

__all__ = ["as_text", "cell_key", "json_id", "json_key", "optional_texts", "texts"]

_SCALAR_TYPES: Final = frozenset({str, int, float, bool})


def as_text(value: Any) -> str:
    """Text of a key or id: strings as they are, other JSON values as JSON writes them.

    Integers are written digit for digit at any width (orjson refuses those
    beyond 64 bits).

    >>> as_text("a"), as_text(7), as_text(2**70), as_text(1e22), as_text(True), as_text([1])
    ('a', '7', '1180591620717411303424', '1e22', 'true', '[1]')
    """
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return str(value)
    return orjson.dumps(value).decode("utf-8")


def json_key(event: dict[str, Any], name: str) -> str:
    """The key of a JSON event as text; every event needs one.

    >>> json_key({"host": 7}, "host"), json_key({"host": {"name": "a"}}, "host.name")
    ('7', 'a')
    """
    value = find(event, name)
    if value is None or value is MISSING:
        state = "null" if value is None else "missing"
        raise Reject(f"key field {name!r} is {state}; every event needs a key")
    if type(value) not in _SCALAR_TYPES:
        raise Reject(_not_scalar("key", name, value))
    return as_text(value)


def json_id(event: dict[str, Any], name: str) -> str | None:
    """The id of a JSON event as text, None when it has none.

    >>> json_id({"id": 3}, "id"), json_id({}, "id"), json_id({"meta": {"id": "e1"}}, "meta.id")
    ('3', None, 'e1')
    """
    value = get(event, name)
    if value is None:
        return None
    if type(value) not in _SCALAR_TYPES:
        raise Reject(_not_scalar("id", name, value))
    return as_text(value)


def _not_scalar(role: str, name: str, value: Any) -> str:
    """Why a key or id that is no string or number is refused; for an object, a member to name.

    >>> _not_scalar("key", "host", {"dc": ["x"], "name": "a"})
    "key field 'host' is an object; name one of its members, such as host.name"
    >>> _not_scalar("id", "id", [1])
    "id field 'id' is an array; expected a string or a number"
    """
    member = member_to_name(name, value, _SCALAR_TYPES) if type(value) is dict else None
    if member is not None:
        return f"{role} field {name!r} is an object; name one of its members, such as {member}"
    return f"{role} field {name!r} is {json_kind(value)}; expected a string or a number"


def texts(values: list[Any]) -> list[str] | None:
    """Keys as text in bulk, as :func:`json_key` reads them, or None at the first doubt."""
    kinds = set(map(type, values))
    if kinds <= {str}:
        return values
    if kinds <= _SCALAR_TYPES:
        return list(map(as_text, values))
    return None


def optional_texts(values: list[Any]) -> list[str | None] | None:
    """Ids as text in bulk, as :func:`json_id` reads them, or None at the first doubt."""
    kinds = set(map(type, values))
    if kinds <= {str, type(None)}:
        return values
    if kinds <= _SCALAR_TYPES | {type(None)}:
        return [None if value is None else as_text(value) for value in values]
    return None


def cell_key(cell: str, name: str) -> str:
    """The key in a CSV cell; every event needs one.

    >>> cell_key("a", "host")
    'a'
    """
    if not cell:
        raise Reject(f"key field {name!r} is empty")
    return cell
