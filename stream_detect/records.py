"""Decode raw records (JSON lines or CSV) into arrays, and encode results.

A :class:`RecordDecoder` turns the :class:`~stream_detect.sources.base.RawBatch`
a source hands out into a :class:`Decoded` batch: a float64 matrix of the good
events' features plus what the detector and the output need (labels, keys,
ids, timestamps, the original fields, the positions). Bad records never raise
and are never dropped: each one comes back in :attr:`Decoded.bad` with its
position and a sentence saying what is wrong with which field.

Speed comes from doing the per-batch work in bulk: one ``orjson.loads`` per
line, one list of all feature values, one ``np.array`` and one ``np.isfinite``
per batch. Only when that bulk path meets a problem does the decoder go over
the batch record by record to find which records are bad and why; the
record-by-record path is the authority and the bulk path only ever accepts
what it accepts.

Every payload of a batch is accounted for exactly once::

    len(batch) == len(decoded) + len(decoded.bad) + decoded.n_blank + decoded.n_header

Results are plain dicts; they may hold numpy scalars, so encode them with
``orjson.dumps(result, option=JSON_OPTIONS)``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Final

import numpy as np
import orjson
from numpy.typing import NDArray

from stream_detect.errors import ConfigError, InputError
from stream_detect.sources.base import RawBatch

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "FORMATS",
    "JSON_OPTIONS",
    "RAW_TEXT_LIMIT",
    "BadRecord",
    "Decoded",
    "RecordDecoder",
    "encode_result",
]

#: Input formats a :class:`RecordDecoder` accepts.
FORMATS: Final = ("json", "csv", "auto")
#: Records longer than this many bytes are bad records by default.
DEFAULT_MAX_RECORD_BYTES: Final = 1 << 20
#: A dead-letter entry shows at most this many characters of the raw record.
RAW_TEXT_LIMIT: Final = 1000
#: orjson options for encoding results: numpy scalars and arrays become JSON
#: numbers and lists (NaN and infinities become null, as orjson always does).
JSON_OPTIONS: Final = orjson.OPT_SERIALIZE_NUMPY

_NUMBER_TYPES: Final = frozenset({int, float})
_SCALAR_TYPES: Final = frozenset({str, int, float, bool})
# Hash-equal keys make True/1/1.0 and False/0/0.0 all hit; anything else is a
# KeyError (or TypeError when unhashable), which sends the batch down the slow path.
_JSON_LABELS: Final[dict[Any, int]] = {None: -1, 0: 0, 1: 1}
_CSV_LABELS: Final[dict[str, int]] = {
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
_BOM: Final = b"\xef\xbb\xbf"

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
        Empty when the decoder was built with ``keep_records=False``.
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

    >>> batch = RawBatch([b'{"x": 1}', b""], [{"line": 1}, {"line": 2}])
    >>> decoded = RecordDecoder("json").decode(batch)
    >>> len(decoded), decoded.values.tolist(), decoded.n_blank
    (1, [[1.0]], 1)
    """

    values: FloatMatrix
    records: list[dict[str, Any]]
    positions: list[dict[str, Any]]
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


class _Reject(Exception):
    """One record is bad; ``reason`` says why. Never leaves this module."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RecordDecoder:
    """Decode batches of raw JSON-line or CSV records into :class:`Decoded` batches.

    Parameters
    ----------
    format
        ``"json"`` (one JSON object per line), ``"csv"`` (a header line, then
        rows) or ``"auto"``: the first non-blank line decides, ``{`` meaning
        JSON and anything else a CSV header.
    features
        The feature fields, in order. None: the numeric fields of the first
        event that has any (JSON numbers; for CSV, cells that parse as
        numbers), leaving out the label, key, id and timestamp fields and
        CSV columns without a name. Fixed from then on.
    label_field
        Field holding the label: 0/1/true/false (CSV also ``0.0``/``1.0``);
        null, absent or an empty cell means unlabelled. None: no labels.
    key_field
        Field naming the entity (host, sensor) each event belongs to; an
        event without one is a bad record.
    id_field
        Field holding an event id (for feedback labels); optional per event.
    timestamp_field
        Field holding the event time, passed through as written.
    max_record_bytes
        Longer records are bad records ("line of N bytes exceeds ...").
    keep_records
        False leaves :attr:`Decoded.records` empty, which saves building a
        dict per CSV row when only the arrays are wanted.
    source
        What the records come from (a source URI or path), named in the
        errors about the CSV header; None leaves it out.

    Notes
    -----
    Bad records never raise; they come back in :attr:`Decoded.bad`. What does
    raise :class:`~stream_detect.errors.InputError` is a CSV header the stream
    cannot be read with (not UTF-8, a duplicate column, a configured feature
    or key column missing), since every row after it would be bad too.
    A quoted CSV field cannot span lines: each line is one record.

    Examples
    --------
    >>> decoder = RecordDecoder("auto", key_field="host")
    >>> batch = RawBatch(
    ...     [b'{"host": "a", "cpu": 0.5, "mem": 2, "label": 1}',
    ...      b'{"host": "b", "cpu": "high", "mem": 3}',
    ...      b'{"host": "b", "cpu": 0.25, "mem": 4}'],
    ...     [{"line": 1}, {"line": 2}, {"line": 3}],
    ... )
    >>> decoded = decoder.decode(batch)
    >>> decoder.features
    ['cpu', 'mem']
    >>> decoded.values.tolist(), decoded.labels.tolist(), decoded.keys
    ([[0.5, 2.0], [0.25, 4.0]], [1, -1], ['a', 'b'])
    >>> decoded.bad[0].position, decoded.bad[0].reason
    ({'line': 2}, 'feature \\'cpu\\' is the string "high", not a number')
    """

    def __init__(
        self,
        format: str = "auto",
        features: Sequence[str] | None = None,
        *,
        label_field: str | None = "label",
        key_field: str | None = None,
        id_field: str | None = None,
        timestamp_field: str | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        keep_records: bool = True,
        source: str | None = None,
    ) -> None:
        if format not in FORMATS:
            raise ConfigError("format", format, "one of 'json', 'csv', 'auto'")
        if isinstance(max_record_bytes, bool) or not isinstance(max_record_bytes, int):
            raise ConfigError("max_record_bytes", max_record_bytes, "an integer >= 1")
        if max_record_bytes < 1:
            raise ConfigError("max_record_bytes", max_record_bytes, "an integer >= 1")
        self.label_field = label_field
        self.key_field = key_field
        self.id_field = id_field
        self.timestamp_field = timestamp_field
        self.max_record_bytes = max_record_bytes
        self.keep_records = keep_records
        self.source = source
        #: Blank lines skipped so far, over all batches.
        self.skipped_blank = 0
        self._format = format
        self._reserved = frozenset(
            name for name in (label_field, key_field, id_field, timestamp_field) if name is not None
        )
        self._features: list[str] | None = None
        if features is not None:
            self._features = self._checked_features(features)
        self._first_line_pending = True
        self._columns: list[str] | None = None
        self._feature_columns: list[int] = []
        self._label_column: int | None = None
        self._key_column: int | None = None
        self._id_column: int | None = None
        self._timestamp_column: int | None = None

    def _checked_features(self, features: Sequence[str]) -> list[str]:
        names = list(features)
        if isinstance(features, str) or not names:
            raise ConfigError("features", features, "a non-empty list of field names")
        if len(set(names)) != len(names):
            raise ConfigError("features", names, "field names without duplicates")
        clash = sorted(self._reserved.intersection(names))
        if clash:
            raise ConfigError(
                "features", names, f"no label, key, id or timestamp field among them ({clash[0]!r})"
            )
        return names

    @property
    def features(self) -> list[str] | None:
        """The feature names, or None until the first event with numbers fixes them."""
        return None if self._features is None else list(self._features)

    @property
    def format(self) -> str:
        """``"json"`` or ``"csv"``; ``"auto"`` until the first non-blank line decides."""
        return self._format

    @property
    def columns(self) -> list[str] | None:
        """The CSV header's column names, or None before the header (or for JSON)."""
        return None if self._columns is None else list(self._columns)

    def decode(self, batch: RawBatch) -> Decoded:
        """Decode one batch; see the class docstring for what is a bad record.

        >>> decoder = RecordDecoder("csv")
        >>> decoded = decoder.decode(RawBatch(
        ...     [b"x,y,label", b"1,2,0", b"3,oops,1", b"", b"5,6,"],
        ...     [{"line": n} for n in range(1, 6)]))
        >>> decoded.values.tolist(), decoded.labels.tolist()
        ([[1.0, 2.0], [5.0, 6.0]], [0, -1])
        >>> [(bad.position["line"], bad.reason) for bad in decoded.bad]
        [(3, "feature 'y' is 'oops', not a number")]
        >>> decoded.n_header, decoded.n_blank
        (1, 1)
        """
        payloads = batch.payloads
        positions = batch.positions
        if len(payloads) != len(positions):
            raise ValueError(
                f"a batch needs one position per payload, got {len(payloads)} payloads "
                f"and {len(positions)} positions"
            )
        if self._first_line_pending:
            first = next((i for i, payload in enumerate(payloads) if payload.strip()), None)
            if first is None:
                decoded = self._empty(n_blank=len(payloads))
                self.skipped_blank += decoded.n_blank
                return decoded
            self._first_line_pending = False
            if payloads[first].startswith(_BOM):
                payloads = list(payloads)
                payloads[first] = payloads[first][len(_BOM) :]
            if self._format == "auto":
                self._format = "json" if payloads[first].lstrip().startswith(b"{") else "csv"
        if self._format == "json":
            # "is None", not "or": an empty Decoded is falsy.
            bulk = self._json_bulk(payloads, positions)
            decoded = self._json_each(payloads, positions) if bulk is None else bulk
        else:
            decoded = self._decode_csv(payloads, positions)
        self.skipped_blank += decoded.n_blank
        return decoded

    # -- shared ---------------------------------------------------------------------------

    def _empty(self, n_blank: int = 0) -> Decoded:
        d = 0 if self._features is None else len(self._features)
        return Decoded(
            values=np.empty((0, d), dtype=np.float64),
            records=[],
            positions=[],
            labels=np.empty(0, dtype=np.int8),
            keys=None if self.key_field is None else [],
            ids=None if self.id_field is None else [],
            timestamps=None if self.timestamp_field is None else [],
            n_blank=n_blank,
        )

    def _oversize(self, payload: bytes, position: dict[str, Any]) -> str | None:
        """The reason a record is too long, or None."""
        if position.get("truncated"):
            length = position.get("length", len(payload))
            limit = position.get("limit", self.max_record_bytes)
            return f"line of {length} bytes exceeds the limit of {limit} bytes"
        if len(payload) > self.max_record_bytes:
            limit = self.max_record_bytes
            return f"line of {len(payload)} bytes exceeds the limit of {limit} bytes"
        return None

    def _any_oversize(self, payloads: list[bytes], positions: list[dict[str, Any]]) -> bool:
        return max(map(len, payloads)) > self.max_record_bytes or any(
            map(dict.get, positions, repeat("truncated"))
        )

    # -- JSON -----------------------------------------------------------------------------

    def _json_bulk(self, payloads: list[bytes], positions: list[dict[str, Any]]) -> Decoded | None:
        """Decode a batch in which nothing is wrong, or return None at the first doubt."""
        if not payloads or self._any_oversize(payloads, positions):
            return None
        try:
            events: list[Any] = list(map(orjson.loads, payloads))
        except orjson.JSONDecodeError:
            return None
        if set(map(type, events)) != {dict}:
            return None
        if self._features is None:
            inferred = self._json_numeric_fields(events[0])
            if not inferred:
                return None
            self._features = inferred
        features = self._features
        assert features is not None
        try:
            flat = [event[name] for event in events for name in features]
        except KeyError:
            return None
        if not set(map(type, flat)) <= _NUMBER_TYPES:
            return None
        try:
            values = np.array(flat, dtype=np.float64).reshape(len(events), len(features))
        except OverflowError:
            return None
        if not np.isfinite(values).all():
            return None
        if self.label_field is None:
            labels = np.full(len(events), -1, dtype=np.int8)
        else:
            try:
                label_list = [_JSON_LABELS[event.get(self.label_field)] for event in events]
            except (KeyError, TypeError):
                return None
            labels = np.array(label_list, dtype=np.int8)
        keys: list[str] | None = None
        if self.key_field is not None:
            try:
                raw_keys = [event[self.key_field] for event in events]
            except KeyError:
                return None
            keys = _bulk_text(raw_keys)
            if keys is None:
                return None
        ids: list[str | None] | None = None
        if self.id_field is not None:
            raw_ids = [event.get(self.id_field) for event in events]
            ids = _bulk_optional_text(raw_ids)
            if ids is None:
                return None
        timestamps = None
        if self.timestamp_field is not None:
            timestamps = [event.get(self.timestamp_field) for event in events]
        return Decoded(
            values=values,
            records=events if self.keep_records else [],
            positions=list(positions),
            labels=labels,
            keys=keys,
            ids=ids,
            timestamps=timestamps,
        )

    def _json_each(self, payloads: list[bytes], positions: list[dict[str, Any]]) -> Decoded:
        """Decode record by record, sorting out exactly which records are bad and why."""
        rows: list[list[Any]] = []
        events: list[dict[str, Any]] = []
        good_positions: list[dict[str, Any]] = []
        labels: list[int] = []
        keys: list[str] = []
        ids: list[str | None] = []
        timestamps: list[Any] = []
        bad: list[BadRecord] = []
        n_blank = 0
        for payload, position in zip(payloads, positions, strict=True):
            reason = self._oversize(payload, position)
            if reason is not None:
                bad.append(BadRecord(position, reason, payload))
                continue
            if not payload.strip():
                n_blank += 1
                continue
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError as error:
                bad.append(BadRecord(position, _json_error_reason(payload, error), payload))
                continue
            if type(event) is not dict:
                reason = f"expected a JSON object, got {_json_kind(event)}"
                bad.append(BadRecord(position, reason, payload))
                continue
            if self._features is None:
                inferred = self._json_numeric_fields(event)
                if not inferred:
                    reason = (
                        "no numeric field to take the features from (features are inferred "
                        "from the first event that has numeric fields)"
                    )
                    bad.append(BadRecord(position, reason, payload))
                    continue
                self._features = inferred
            features = self._features
            assert features is not None
            try:
                row = [_json_number(event, name) for name in features]
                label = _json_label(event, self.label_field)
                key = None if self.key_field is None else _json_key(event, self.key_field)
                ident = None if self.id_field is None else _json_id(event, self.id_field)
            except _Reject as reject:
                bad.append(BadRecord(position, reject.reason, payload))
                continue
            rows.append(row)
            events.append(event)
            good_positions.append(position)
            labels.append(label)
            if key is not None:
                keys.append(key)
            ids.append(ident)
            if self.timestamp_field is not None:
                timestamps.append(event.get(self.timestamp_field))
        d = 0 if self._features is None else len(self._features)
        return Decoded(
            values=np.array(rows, dtype=np.float64).reshape(len(rows), d),
            records=events if self.keep_records else [],
            positions=good_positions,
            labels=np.array(labels, dtype=np.int8),
            keys=None if self.key_field is None else keys,
            ids=None if self.id_field is None else ids,
            timestamps=None if self.timestamp_field is None else timestamps,
            bad=bad,
            n_blank=n_blank,
        )

    def _json_numeric_fields(self, event: dict[str, Any]) -> list[str]:
        return [
            name
            for name, value in event.items()
            if type(value) in _NUMBER_TYPES and name not in self._reserved
        ]

    # -- CSV ------------------------------------------------------------------------------

    def _decode_csv(self, payloads: list[bytes], positions: list[dict[str, Any]]) -> Decoded:
        n_blank = 0
        n_header = 0
        if self._columns is None:
            for index, payload in enumerate(payloads):
                if not payload.strip():
                    n_blank += 1
                    continue
                self._read_header(payload, positions[index])
                n_header = 1
                payloads = payloads[index + 1 :]
                positions = positions[index + 1 :]
                break
            else:
                return self._empty(n_blank=n_blank)
        bulk = self._csv_bulk(payloads, positions)
        decoded = self._csv_each(payloads, positions) if bulk is None else bulk
        decoded.n_blank += n_blank
        decoded.n_header = n_header
        return decoded

    def _read_header(self, payload: bytes, position: dict[str, Any]) -> None:
        line = position.get("line")
        where = line if isinstance(line, int) else None
        reason = self._oversize(payload, position)
        if reason is not None:
            raise InputError(
                f"the CSV header is too long: {reason}", source=self.source, line=where
            )
        try:
            text = payload.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as error:
            raise InputError(
                f"the CSV header is not valid UTF-8 (byte {error.start})",
                source=self.source,
                line=where,
            ) from None
        try:
            columns = [name.strip() for name in _split_csv(text)]
        except csv.Error as error:
            raise InputError(
                f"the CSV header is malformed: {error}", source=self.source, line=where
            ) from None
        seen: set[str] = set()
        for name in columns:
            if name in seen and name:
                raise InputError(
                    f"the CSV header names column {name!r} twice", source=self.source, line=where
                )
            seen.add(name)
        listing = ", ".join(columns)
        for name in self._features or []:
            if name not in seen:
                raise InputError(
                    f"feature {name!r} is not a column of the CSV header (columns: {listing})",
                    source=self.source,
                    line=where,
                )
        if self.key_field is not None and self.key_field not in seen:
            raise InputError(
                f"key field {self.key_field!r} is not a column of the CSV header "
                f"(columns: {listing})",
                source=self.source,
                line=where,
            )
        index = {name: i for i, name in enumerate(columns)}
        self._columns = columns
        if self._features is not None:
            self._feature_columns = [index[name] for name in self._features]
        self._label_column = None if self.label_field is None else index.get(self.label_field)
        self._key_column = None if self.key_field is None else index[self.key_field]
        self._id_column = None if self.id_field is None else index.get(self.id_field)
        self._timestamp_column = (
            None if self.timestamp_field is None else index.get(self.timestamp_field)
        )

    def _infer_csv(self, cells: list[str]) -> bool:
        """Fix the features from a row's numeric cells; False when there are none."""
        assert self._columns is not None
        chosen = [
            i
            for i, (name, cell) in enumerate(zip(self._columns, cells, strict=True))
            if name and name not in self._reserved and _parses_as_float(cell)
        ]
        if not chosen:
            return False
        self._features = [self._columns[i] for i in chosen]
        self._feature_columns = chosen
        return True

    def _csv_bulk(self, payloads: list[bytes], positions: list[dict[str, Any]]) -> Decoded | None:
        """Decode a batch in which nothing is wrong, or return None at the first doubt."""
        assert self._columns is not None
        if not payloads:
            return self._empty()
        if self._any_oversize(payloads, positions):
            return None
        if any(map(bytes.endswith, payloads, repeat((b"\r", b"\n")))):
            payloads = [payload.rstrip(b"\r\n") for payload in payloads]
        try:
            texts = list(map(bytes.decode, payloads))
            rows = [text.split(",") if '"' not in text else _split_csv(text) for text in texts]
        except (UnicodeDecodeError, csv.Error):
            return None
        if set(map(len, rows)) != {len(self._columns)}:
            return None
        if self._features is None and not self._infer_csv(rows[0]):
            return None
        columns = self._feature_columns
        cells = [row[i] for row in rows for i in columns]
        numbers = _parse_numbers(cells)
        if numbers is None:
            return None
        values = np.array(numbers, dtype=np.float64).reshape(len(rows), len(columns))
        if not np.isfinite(values).all():
            return None
        if self._label_column is None:
            labels = np.full(len(rows), -1, dtype=np.int8)
        else:
            try:
                label_list = [_CSV_LABELS[row[self._label_column]] for row in rows]
            except KeyError:
                return None
            labels = np.array(label_list, dtype=np.int8)
        keys: list[str] | None = None
        if self._key_column is not None:
            keys = [row[self._key_column] for row in rows]
            if "" in keys:
                return None
        ids: list[str | None] | None = None
        if self.id_field is not None:
            column = self._id_column
            ids = [None] * len(rows) if column is None else [row[column] or None for row in rows]
        timestamps: list[Any] | None = None
        if self.timestamp_field is not None:
            column = self._timestamp_column
            timestamps = (
                [None] * len(rows) if column is None else [row[column] or None for row in rows]
            )
        return Decoded(
            values=values,
            records=self._csv_records(rows, values) if self.keep_records else [],
            positions=list(positions),
            labels=labels,
            keys=keys,
            ids=ids,
            timestamps=timestamps,
        )

    def _csv_each(self, payloads: list[bytes], positions: list[dict[str, Any]]) -> Decoded:
        """Decode record by record, sorting out exactly which records are bad and why."""
        assert self._columns is not None
        n_columns = len(self._columns)
        numbers: list[list[float]] = []
        rows: list[list[str]] = []
        good_positions: list[dict[str, Any]] = []
        labels: list[int] = []
        keys: list[str] = []
        ids: list[str | None] = []
        timestamps: list[Any] = []
        bad: list[BadRecord] = []
        n_blank = 0
        for payload, position in zip(payloads, positions, strict=True):
            reason = self._oversize(payload, position)
            if reason is not None:
                bad.append(BadRecord(position, reason, payload))
                continue
            if not payload.strip():
                n_blank += 1
                continue
            try:
                text = payload.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                bad.append(BadRecord(position, f"invalid UTF-8 at byte {error.start}", payload))
                continue
            try:
                row = _split_csv(text)
            except csv.Error as error:
                bad.append(BadRecord(position, f"malformed CSV: {error}", payload))
                continue
            if len(row) != n_columns:
                reason = f"expected {n_columns} columns as in the header, got {len(row)}"
                bad.append(BadRecord(position, reason, payload))
                continue
            if self._features is None and not self._infer_csv(row):
                reason = (
                    "no numeric cell to take the features from (features are inferred "
                    "from the first row that has numeric cells)"
                )
                bad.append(BadRecord(position, reason, payload))
                continue
            features = self._features
            assert features is not None
            try:
                numbers_row = [
                    _csv_number(row[i], name)
                    for i, name in zip(self._feature_columns, features, strict=True)
                ]
                label = -1
                if self._label_column is not None:
                    assert self.label_field is not None
                    label = _csv_label(row[self._label_column], self.label_field)
                if self._key_column is not None:
                    assert self.key_field is not None
                    key = row[self._key_column]
                    if not key:
                        raise _Reject(f"key field {self.key_field!r} is empty")
                    keys.append(key)
            except _Reject as reject:
                bad.append(BadRecord(position, reject.reason, payload))
                continue
            numbers.append(numbers_row)
            rows.append(row)
            good_positions.append(position)
            labels.append(label)
            if self._id_column is not None:
                ids.append(row[self._id_column] or None)
            else:
                ids.append(None)
            if self._timestamp_column is not None:
                timestamps.append(row[self._timestamp_column] or None)
            else:
                timestamps.append(None)
        d = 0 if self._features is None else len(self._features)
        values = np.array(numbers, dtype=np.float64).reshape(len(numbers), d)
        return Decoded(
            values=values,
            records=self._csv_records(rows, values) if self.keep_records else [],
            positions=good_positions,
            labels=np.array(labels, dtype=np.int8),
            keys=None if self.key_field is None else keys,
            ids=None if self.id_field is None else ids,
            timestamps=None if self.timestamp_field is None else timestamps,
            bad=bad,
            n_blank=n_blank,
        )

    def _csv_records(self, rows: list[list[str]], values: FloatMatrix) -> list[dict[str, Any]]:
        """One dict per row, feature cells replaced by their numbers."""
        if not rows:
            return []
        assert self._columns is not None and self._features is not None
        columns = self._columns
        features = self._features
        records: list[dict[str, Any]] = [dict(zip(columns, row, strict=True)) for row in rows]
        for record, numbers in zip(records, values.tolist(), strict=True):
            record.update(zip(features, numbers, strict=True))
        return records


def encode_result(record: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Return the output for one event: its original fields, then ``extra``.

    A field of ``extra`` replaces an original field of the same name, so
    ``log_p`` and ``alert`` always mean what the detector says. Encode the
    result with ``orjson.dumps(result, option=JSON_OPTIONS)``.

    >>> extra = {"log_p": np.float64(-3.25), "alert": True}
    >>> result = encode_result({"host": "a", "cpu": 0.5}, extra)
    >>> orjson.dumps(result, option=JSON_OPTIONS)
    b'{"host":"a","cpu":0.5,"log_p":-3.25,"alert":true}'
    """
    return {**record, **extra}


# -- per-value rules, shared by the bulk and the record-by-record paths ----------------------


def _json_kind(value: Any) -> str:
    """Name a JSON value's kind for a message: 'an array', 'null', ..."""
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


def _json_error_reason(payload: bytes, error: orjson.JSONDecodeError) -> str:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as bad_utf8:
        return f"invalid UTF-8 at byte {bad_utf8.start}"
    # Parse again without the line ending a file reader leaves on, so that "at
    # character N" counts within the line as the user sees it.
    try:
        orjson.loads(payload.rstrip(b"\r\n"))
    except orjson.JSONDecodeError as within_line:
        error = within_line
    return f"invalid JSON at character {error.pos}: {error.msg}"


def _json_number(event: dict[str, Any], name: str) -> int | float:
    try:
        value = event[name]
    except KeyError:
        raise _Reject(f"missing feature {name!r}") from None
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise _Reject(f"feature {name!r} is {value!r}, not a finite number")
        return float(value)
    if kind is int:
        return int(value)
    if kind is str:
        if _parses_as_float(value):
            raise _Reject(
                f"feature {name!r} is the string {_json_text(value)}; numbers must not be quoted"
            )
        raise _Reject(f"feature {name!r} is the string {_json_text(value)}, not a number")
    if kind is bool:
        raise _Reject(f"feature {name!r} is a boolean ({_json_text(value)}), not a number")
    raise _Reject(f"feature {name!r} is {_json_kind(value)}, not a number")


def _json_label(event: dict[str, Any], name: str | None) -> int:
    if name is None:
        return -1
    value = event.get(name)
    try:
        return _JSON_LABELS[value]
    except (KeyError, TypeError):
        raise _Reject(
            f"label {name!r} is {_json_text(value)}; {_LABEL_RULE} (null or absent for unlabelled)"
        ) from None


def _scalar_text(value: str | int | float | bool) -> str:
    """Text of a key or id: strings as they are, numbers and booleans as JSON writes them."""
    return value if type(value) is str else orjson.dumps(value).decode("utf-8")


def _json_key(event: dict[str, Any], name: str) -> str:
    value = event.get(name)
    if value is None:
        state = "null" if name in event else "missing"
        raise _Reject(f"key field {name!r} is {state}; every event needs a key")
    if type(value) not in _SCALAR_TYPES:
        raise _Reject(f"key field {name!r} is {_json_kind(value)}; expected a string or a number")
    return _scalar_text(value)


def _json_id(event: dict[str, Any], name: str) -> str | None:
    value = event.get(name)
    if value is None:
        return None
    if type(value) not in _SCALAR_TYPES:
        raise _Reject(f"id field {name!r} is {_json_kind(value)}; expected a string or a number")
    return _scalar_text(value)


def _bulk_text(values: list[Any]) -> list[str] | None:
    """Keys as text in bulk, or None when one of them is not a string, number or boolean."""
    kinds = set(map(type, values))
    if kinds <= {str}:
        return values
    if kinds <= _SCALAR_TYPES:
        return list(map(_scalar_text, values))
    return None


def _bulk_optional_text(values: list[Any]) -> list[str | None] | None:
    """Ids as text in bulk (None stays None), or None when one of them is an array or object."""
    kinds = set(map(type, values))
    if kinds <= {str, type(None)}:
        return values
    if kinds <= _SCALAR_TYPES | {type(None)}:
        return [None if value is None else _scalar_text(value) for value in values]
    return None


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_numbers(cells: list[str]) -> list[int | float] | None:
    """Parse CSV cells as numbers in bulk, or return None if one does not parse.

    orjson parses a whole batch of plain decimal cells at once, about three
    times faster than ``float`` cell by cell; cells JSON does not accept
    (``.5``, ``1.``, ``+1``, ``nan``) take the ``float`` route, which is the
    rule the record-by-record path applies. Both round correctly, so both
    give the same float64 for the same text.
    """
    try:
        numbers: list[Any] = orjson.loads("[" + ",".join(cells) + "]")
    except orjson.JSONDecodeError:
        numbers = []
    # A cell such as "[1" or "true" can parse as JSON without being a number.
    if len(numbers) == len(cells) and set(map(type, numbers)) <= _NUMBER_TYPES:
        return numbers
    try:
        return list(map(float, cells))
    except ValueError:
        return None


def _csv_number(cell: str, name: str) -> float:
    if not cell.strip():
        raise _Reject(f"feature {name!r} is empty")
    try:
        value = float(cell)
    except ValueError:
        raise _Reject(f"feature {name!r} is {cell[:60]!r}, not a number") from None
    if not math.isfinite(value):
        raise _Reject(f"feature {name!r} is {cell.strip()!r}, not a finite number")
    return value


def _csv_label(cell: str, name: str) -> int:
    text = cell.strip()
    label = _CSV_LABELS.get(text.lower())
    if label is not None:
        return label
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if number in (0.0, 1.0):
        return int(number)
    raise _Reject(f"label {name!r} is {cell[:60]!r}; {_LABEL_RULE} (empty for unlabelled)")


def _split_csv(text: str) -> list[str]:
    """Split one CSV line; the csv module only when a quote makes it necessary."""
    if '"' not in text:
        return text.split(",")
    rows = list(csv.reader([text], strict=True))
    if len(rows) != 1:
        raise csv.Error("a quoted field spans lines")
    return rows[0]
