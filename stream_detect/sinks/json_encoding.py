"""How every sink writes a record: one JSON line, encoded by orjson.

:func:`encode_json_line` is the one encoding of an output record, so a file,
stdout and a Kafka topic (there without the newline) hold the same bytes for
the same record, and the in-memory testing sink refuses what they would.
numpy scalars and arrays become JSON numbers and lists, NaN and infinities
``null``, and bytes text (invalid UTF-8 as ``\\xNN`` escapes,
:func:`json_default`). A batch that encodes itself
(:class:`~stream_detect.sinks.base.EncodedAsJsonLines`) promises the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["encode_json_line", "json_default"]

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE


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
    return orjson.dumps(record, default=json_default, option=_JSON_OPTIONS)
