"""How every sink writes a record: one JSON line, encoded by orjson.

:func:`encode_json_line` is the one encoding of an output record, so a file,
stdout and a Kafka topic (there without the newline) hold the same bytes for
the same record, and the in-memory testing sink refuses what they would.
numpy scalars and arrays become JSON numbers and lists, NaN and infinities
``null``, and bytes text (invalid UTF-8 as ``\\xNN`` escapes,
:func:`json_default`). Integers wider than orjson's 64 bits, which an event
may carry in its own fields (:mod:`stream_detect.records.wide_integers`), are
written digit for digit (:func:`encode_json`). A batch that encodes itself
(:class:`~stream_detect.sinks.base.EncodedAsJsonLines`) promises the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["encode_json", "encode_json_line", "json_default"]

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
#: The integers orjson writes itself.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def json_default(value: Any) -> Any:
    """What orjson writes for a value it cannot encode itself: bytes as text.

    Dead letters carry the raw line, which may not be valid UTF-8: invalid
    bytes become ``\\xNN`` escapes, which keep it readable.

    >>> json_default(b"caf\\xc3\\xa9 \\xff")
    'café \\\\xff'

    Raises
    ------
    TypeError
        Any other type (orjson then raises ``JSONEncodeError``).
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    raise TypeError(f"type {type(value).__name__} is not JSON serializable")


def encode_json_line(record: Mapping[str, Any]) -> bytes:
    """Encode one record as a JSON line (with its ``"\\n"``), as every stream sink does.

    NaN and infinities become ``null`` (JSON has no such numbers).

    >>> import numpy as np
    >>> encode_json_line({"x": np.float64(1.5), "v": np.array([1, 2]), "raw": b"ok"})
    b'{"x":1.5,"v":[1,2],"raw":"ok"}\\n'

    Raises
    ------
    TypeError
        A value has a type JSON cannot represent (``orjson.JSONEncodeError``).
    """
    if not isinstance(record, dict):
        record = dict(record)
    return encode_json(record, _JSON_OPTIONS)


def encode_json(value: Any, option: int = 0) -> bytes:
    """``orjson.dumps(value, default=json_default, option=option)``, wide integers included.

    orjson writes integers in ``[-2**63, 2**64 - 1]`` only; a wider one, at
    any depth of dicts, lists and tuples, is written digit for digit instead
    of refused.

    >>> encode_json({"id": 123456789012345678901234567890, "n": [-2**64 - 1]})
    b'{"id":123456789012345678901234567890,"n":[-18446744073709551617]}'

    Raises
    ------
    TypeError
        A value has a type JSON cannot represent (``orjson.JSONEncodeError``).
    """
    try:
        return orjson.dumps(value, default=json_default, option=option)
    except orjson.JSONEncodeError:
        # Rare: look for wide integers only once orjson has refused something.
        written = _wide_integers_written(value)
        if written is value:
            raise
        return orjson.dumps(written, default=json_default, option=option)


def _wide_integers_written(value: Any) -> Any:
    """``value`` with each integer orjson cannot write made a fragment of its digits.

    The same object comes back when there is none, so a caller can tell.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if _INT_MIN <= value <= _INT_MAX:
            return value
        try:
            return orjson.Fragment(int.__repr__(value))
        except ValueError:
            return value  # beyond Python's digit limit for str(): left for orjson to refuse
    if isinstance(value, dict):
        items = {key: _wide_integers_written(item) for key, item in value.items()}
        changed = any(items[key] is not item for key, item in value.items())
        return items if changed else value
    if isinstance(value, (list, tuple)):
        elements = [_wide_integers_written(item) for item in value]
        changed = any(new is not old for new, old in zip(elements, value, strict=True))
        return elements if changed else value
    return value
