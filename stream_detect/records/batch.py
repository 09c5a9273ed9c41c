"""What decoding a batch gives: the good events as arrays (:class:`Decoded`) and the bad ones.

Results are plain dicts; they may hold numpy scalars, so encode them with
``orjson.dumps(result, option=JSON_OPTIONS)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import orjson
from numpy.typing import NDArray

__all__ = ["JSON_OPTIONS", "RAW_TEXT_LIMIT", "BadRecord", "Decoded", "FloatMatrix", "LabelArray"]

#: A dead-letter entry shows at most this many characters of the raw record.
RAW_TEXT_LIMIT: Final = 1000
#: orjson options for encoding results: numpy scalars and arrays become JSON
#: numbers and lists (NaN and infinities become null, as orjson always does).
JSON_OPTIONS: Final = orjson.OPT_SERIALIZE_NUMPY

FloatMatrix = NDArray[np.float64]
LabelArray = NDArray[np.int8]


@dataclass(frozen=True)
class BadRecord:
    """A record that could not be used, with where it came from and why.

    >>> bad = BadRecord({"line": 3}, "invalid JSON at character 6: unexpected end", b'{"x": ')
    >>> bad.to_dict()
    {'position': {'line': 3},
     'reason': 'invalid JSON at character 6: unexpected end',
     'raw': '{"x": '}
    """

    position: dict[str, Any]
    reason: str
    payload: bytes

    def to_dict(self) -> dict[str, Any]:
        """Return the dead-letter entry: position, reason and the raw text.

        The raw text is the payload decoded as UTF-8 with invalid bytes shown
        as ``\\xNN`` escapes, cut to :data:`RAW_TEXT_LIMIT` characters with a
        note giving the record's full length in bytes.

        >>> entry = BadRecord({"line": 1}, "too long", b"a" * 1500).to_dict()
        >>> entry["raw"][-40:]
        'aaaa... [cut: the record has 1500 bytes]'
        >>> BadRecord({"line": 2}, "invalid UTF-8 at byte 1", b"x\\xff").to_dict()["raw"]
        'x\\\\xff'
        """
        # Four bytes per character at most, so this keeps at least RAW_TEXT_LIMIT characters.
        text = self.payload[: 4 * RAW_TEXT_LIMIT].decode("utf-8", "backslashreplace")
        text = text.rstrip("\r\n")
        length = len(self.payload)
        truncated_by_source = bool(self.position.get("truncated"))
        if truncated_by_source:
            length = int(self.position.get("length", length))
        if len(text) > RAW_TEXT_LIMIT or truncated_by_source:
            text = f"{text[:RAW_TEXT_LIMIT]}... [cut: the record has {length} bytes]"
        return {"position": self.position, "reason": self.reason, "raw": text}


@dataclass(eq=False)
class Decoded:
    """The good events of a batch as arrays, plus the bad records.

    Row ``i`` of ``values`` belongs to ``records[i]``, ``positions[i]``,
    ``labels[i]`` and, when configured, ``keys[i]``, ``ids[i]`` and
    ``timestamps[i]``.

    Attributes
    ----------
    values
        ``(n_good, d)`` float64, C-contiguous, every value finite.
    records
        The original fields of each good event, for output. For CSV, the
        feature cells hold the parsed floats and the other cells their text.
        Empty when the decoder was built with ``keep_records=False``. A
        read-only sequence: a list, or with ``lazy_records=True`` a
        :class:`~stream_detect.records.lazy_records.LazyRecords` that parses
        each event's line when it is first read.
    positions
        The source position of each good event.
    labels
        int8: 1 anomaly, 0 normal, -1 no label.
    keys
        The key of each event as text (numbers as their JSON text), or None
        when the decoder has no ``key_field``.
    ids
        The id of each event as text, None where absent; None when the
        decoder has no ``id_field``.
    timestamps
        The timestamp field's value as written (None where absent); None when
        the decoder has no ``timestamp_field``.
    bad
        The bad records, in arrival order.
    n_blank
        Blank lines skipped in this batch.
    n_header
        CSV header lines read in this batch (0 or 1).

    >>> Decoded.empty(2, keys=True).values.shape, Decoded.empty(2).keys
    ((0, 2), None)
    """

    values: FloatMatrix
    records: Sequence[dict[str, Any]]
    positions: Sequence[dict[str, Any]]
    labels: LabelArray
    keys: list[str] | None
    ids: list[str | None] | None
    timestamps: list[Any] | None
    bad: list[BadRecord] = field(default_factory=list)
    n_blank: int = 0
    n_header: int = 0

    def __len__(self) -> int:
        """Number of good events."""
        return int(self.values.shape[0])

    @classmethod
    def empty(
        cls,
        d: int,
        *,
        keys: bool = False,
        ids: bool = False,
        timestamps: bool = False,
        n_blank: int = 0,
    ) -> Decoded:
        """No good events of ``d`` features; the flags say which optional lists exist."""
        return cls(
            values=np.empty((0, d), dtype=np.float64),
            records=[],
            positions=[],
            labels=np.empty(0, dtype=np.int8),
            keys=[] if keys else None,
            ids=[] if ids else None,
            timestamps=[] if timestamps else None,
            n_blank=n_blank,
        )
