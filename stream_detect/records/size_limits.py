"""Size limits: a record longer than a line may be, a key or id longer than ``max_key_bytes``.

:func:`oversize_reason` says why a record is too long (or was cut short by its
source) and :func:`too_long_reason` why a key or id is too long to be
remembered; :func:`any_oversize` and :func:`any_too_long` answer the same for
a whole batch at once, for the bulk path, without a Python step per record in
the usual case where nothing is too long.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any

from stream_detect.sources.line_positions import LinePositions

__all__ = ["any_oversize", "any_too_long", "oversize_reason", "oversize_text", "too_long_reason"]


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
        return oversize_text(position.get("length", len(payload)), position.get("limit", limit))
    if len(payload) > limit:
        return oversize_text(len(payload), limit)
    return None


def oversize_text(length: int, limit: int, *, at_least: bool = False) -> str:
    """What a line of ``length`` bytes over the ``limit`` is refused with, wherever it is read.

    ``at_least`` when the line was read no further than ``length`` bytes (its
    end not seen), as a table's reader stops.

    >>> oversize_text(13, 10, at_least=True)
    'line of at least 13 bytes exceeds the limit of 10 bytes'
    """
    shown = f"at least {length}" if at_least else f"{length}"
    return f"line of {shown} bytes exceeds the limit of {limit} bytes"


def any_oversize(longest: int, positions: Sequence[dict[str, Any]], limit: int) -> bool:
    """Whether :func:`oversize_reason` would refuse any record of a non-empty batch.

    ``longest`` is the length of the batch's longest payload.
    """
    if longest > limit:
        return True
    if isinstance(positions, LinePositions):
        return positions.truncated  # without making a dict per line
    return any(map(dict.get, positions, repeat("truncated")))
