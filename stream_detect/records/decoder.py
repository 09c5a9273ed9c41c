"""The decoder front: pick the format, then decode each batch in bulk or record by record.

Speed comes from doing the per-batch work in bulk: one parse per line, one
list of all feature values, one ``np.array`` and one ``np.isfinite`` per batch.
Only when that bulk path meets a problem does the decoder go over the batch
record by record to find which records are bad and why; the record-by-record
path is the authority and the bulk paths only ever accept what it accepts.

JSON lines have two bulk paths. The orjson one parses each line into a dict,
which is also the event's record for output. The msgspec one
(:mod:`~stream_detect.records.typed_lines`) decodes the whole batch in one
call into typed structs and builds no dict; the records are parsed from
their lines only when read (:mod:`~stream_detect.records.lazy_records`). It
runs about 1.8 times as fast when few records are read (alerts only, about 1
in 100), and at about 0.8 times the speed when every one is, since each line
is then parsed twice (``python bench/decode_paths.py``).
So the decoder tries it first, once the features are known, when
``lazy_records`` is set (the pipeline sets it unless every event is
written: ``--emit all``) or when no records are kept; otherwise, or when it
gives up on a batch, the orjson path runs, then record by record.
Both paths, for both formats, are written once here; what differs between
JSON lines and CSV is in :mod:`~stream_detect.records.json_lines` and
:mod:`~stream_detect.records.csv_rows`, the field rules in
:mod:`~stream_detect.records.fields`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

import numpy as np
import orjson

from stream_detect.errors import ConfigError
from stream_detect.field_names import check_feature_names
from stream_detect.formats import FORMATS
from stream_detect.records.batch import BadRecord, Decoded, FloatMatrix
from stream_detect.records.csv_rows import CsvRows
from stream_detect.records.fields import (
    Reject,
    any_oversize,
    any_too_long,
    oversize_reason,
    too_long_reason,
)
from stream_detect.records.json_lines import JsonLines
from stream_detect.records.lazy_records import LazyRecords
from stream_detect.records.roles import FieldRoles
from stream_detect.sources.base import RawBatch

if TYPE_CHECKING:
    from stream_detect.records.typed_lines import TypedLines

__all__ = [
    "DEFAULT_MAX_KEY_BYTES",
    "DEFAULT_MAX_RECORD_BYTES",
    "MIN_ROWS_FOR_RISING",
    "RecordDecoder",
]

#: Records longer than this many bytes are bad records by default.
DEFAULT_MAX_RECORD_BYTES: Final = 1 << 20
#: Longest key or id value kept, in UTF-8 bytes; longer ones make the record a bad record.
DEFAULT_MAX_KEY_BYTES: Final = 256
#: Inferred features are checked for "only rises" (a counter, a clock) over the
#: first batch when it has at least this many good rows.
MIN_ROWS_FOR_RISING: Final = 8
_BOM: Final = b"\xef\xbb\xbf"

_Record = TypeVar("_Record")


class _Format(Protocol[_Record]):
    """What a record format does: :class:`JsonLines` and :class:`CsvRows` are the two."""

    name: str

    def bind(self, features: list[str]) -> None: ...
    def parse(self, payload: bytes) -> _Record: ...
    def numeric_fields(self, record: _Record) -> list[str]: ...
    def numbers(self, record: _Record) -> Sequence[int | float]: ...
    def label(self, record: _Record) -> int: ...
    def key(self, record: _Record, name: str) -> str: ...
    def ident(self, record: _Record, name: str) -> str | None: ...
    def timestamp(self, record: _Record, name: str) -> Any: ...
    def to_dicts(
        self, records: list[_Record], values: FloatMatrix, *, lazy: bool = False
    ) -> Sequence[dict[str, Any]]: ...
    def parse_all(self, payloads: list[bytes]) -> list[_Record] | None: ...
    def all_numbers(self, records: list[_Record]) -> list[int | float] | None: ...
    def all_labels(self, records: list[_Record]) -> list[int] | None: ...
    def all_keys(self, records: list[_Record], name: str) -> list[str] | None: ...
    def all_idents(self, records: list[_Record], name: str) -> list[str | None] | None: ...


class RecordDecoder:
    """Decode batches of raw JSON-line or CSV records into :class:`Decoded` batches.

    Parameters
    ----------
    format
        ``"json"`` (one JSON object per line), ``"csv"`` (a header line, then
        rows) or ``"auto"``: the first line that parses decides. A line that
        starts with ``{`` or parses as JSON means JSON lines; a line that is
        not JSON is a CSV header, unless the next non-blank line starts with
        ``{``, in which case the stream is JSON lines and the first line one
        bad record. A first line with nothing after it in its batch waits for
        the next batch, and is reported there.
    features
        The feature fields, in order. None: the numeric fields of the first
        event that has any (JSON numbers; for CSV, cells that parse as
        numbers), leaving out the label, key, id and timestamp fields and
        CSV columns without a name, and leaving out a field that only rises
        over the first batch (strictly increasing over at least
        :data:`MIN_ROWS_FOR_RISING` good rows: a counter, an epoch
        timestamp), listed in :attr:`left_out`. Fixed from then on.
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
    max_key_bytes
        A key or id value longer than this many UTF-8 bytes makes its record
        a bad record: keys and ids are remembered, so this bounds their memory.
    keep_records
        False leaves :attr:`Decoded.records` empty, which saves building a
        dict per CSV row when only the arrays are wanted.
    lazy_records
        True when only some records will be read (a run that writes its
        alerts only): JSON records are then parsed from their lines when
        read, and batches are decoded by the msgspec path (see the module).
    source
        What the records come from (a source URI or path), named in the
        errors about the CSV header; None leaves it out.
    leave_out_rising
        False keeps inferred features that only rise over the first batch.

    Notes
    -----
    Bad records never raise; they come back in :attr:`Decoded.bad`. What does
    raise :class:`~stream_detect.errors.InputError` is a CSV header the stream
    cannot be read with (not UTF-8, a duplicate column, a configured feature
    or key column missing), since every row after it would be bad too.

    Every payload of a batch is accounted for exactly once (a held first line
    counts in the batch that decides the format)::

        len(batch) == len(decoded) + len(decoded.bad) + decoded.n_blank + decoded.n_header

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
        max_key_bytes: int = DEFAULT_MAX_KEY_BYTES,
        keep_records: bool = True,
        lazy_records: bool = False,
        source: str | None = None,
        leave_out_rising: bool = True,
    ) -> None:
        if format not in FORMATS:
            raise ConfigError("format", format, "one of 'json', 'csv', 'auto'")
        if isinstance(max_record_bytes, bool) or not isinstance(max_record_bytes, int):
            raise ConfigError("max_record_bytes", max_record_bytes, "an integer >= 1")
        if max_record_bytes < 1:
            raise ConfigError("max_record_bytes", max_record_bytes, "an integer >= 1")
        self.roles = FieldRoles(label_field, key_field, id_field, timestamp_field)
        self.label_field = label_field
        self.key_field = key_field
        self.id_field = id_field
        self.timestamp_field = timestamp_field
        self.max_record_bytes = max_record_bytes
        self.max_key_bytes = max_key_bytes
        self.keep_records = keep_records
        self.lazy_records = lazy_records
        self.source = source
        self.leave_out_rising = leave_out_rising
        #: Fields left out of the inferred features because they only rose over the first batch.
        self.left_out: list[str] = []
        self._format = format
        self._features: list[str] | None = None
        if features is not None:
            self._features = check_feature_names(features, roles=self.roles.as_mapping())
        self._reader: JsonLines | CsvRows | None = None
        self._typed: TypedLines | None = None
        self._first_line_pending = True
        self._held: tuple[bytes, dict[str, Any]] | None = None

    @property
    def features(self) -> list[str] | None:
        """The feature names, or None until the first event with numbers fixes them."""
        return None if self._features is None else list(self._features)

    @property
    def format(self) -> str:
        """``"json"`` or ``"csv"``; ``"auto"`` until the first line that parses decides."""
        return self._format

    @property
    def columns(self) -> list[str] | None:
        """The CSV header's column names, or None before the header (or for JSON)."""
        return list(self._reader.columns) if isinstance(self._reader, CsvRows) else None

    def use_csv_header(self, header: str) -> None:
        """Read the stream as CSV with this header line (a resumed stream's, say)."""
        self._format = "csv"
        self._first_line_pending = False
        self._start_csv(header.encode("utf-8"), {"line": 1})

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
        if self._held is not None:
            payloads = [self._held[0], *payloads]
            positions = [self._held[1], *positions]
            self._held = None
        n_blank = n_header = 0
        if self._reader is None:
            first = next((i for i, payload in enumerate(payloads) if payload.strip()), None)
            if first is None:
                return self._empty(n_blank=len(payloads))
            if self._first_line_pending and payloads[first].startswith(_BOM):
                payloads = list(payloads)
                payloads[first] = payloads[first][len(_BOM) :]
            self._first_line_pending = False
            if self._format == "auto":
                decided = _sniff(payloads, first)
                if decided is None:
                    self._held = (payloads[first], positions[first])
                    return self._empty(n_blank=len(payloads) - 1)
                self._format = decided
            if self._format == "json":
                self._reader = JsonLines(self.roles)
                if self._features is not None:
                    self._reader.bind(self._features)
            else:
                self._start_csv(payloads[first], positions[first])
                n_blank, n_header = first, 1
                payloads = payloads[first + 1 :]
                positions = positions[first + 1 :]
        assert self._reader is not None
        reader: _Format[Any] = self._reader
        decoded = self._decode_rows(reader, payloads, positions)
        decoded.n_blank += n_blank
        decoded.n_header = n_header
        return decoded

    # -- the two paths, for any format ------------------------------------------------

    def _start_csv(self, header: bytes, position: dict[str, Any]) -> None:
        reader = CsvRows(
            self.roles, header, position, self._features, self.max_record_bytes, self.source
        )
        if self._features is not None:
            reader.bind(self._features)
        self._reader = reader

    def _set_features(self, reader: _Format[Any], features: list[str]) -> None:
        self._features = features
        self._typed = None
        reader.bind(features)

    def _typed_lines(self, reader: _Format[Any]) -> TypedLines | None:
        """The msgspec path for this batch, or None where it does not serve (see the module)."""
        if reader.name != "json" or self._features is None:
            return None
        if self.keep_records and not self.lazy_records:
            return None
        if self._typed is None:
            # Imported here: a run that never takes this path does not load msgspec.
            from stream_detect.records.typed_lines import TypedLines

            self._typed = TypedLines(self.roles, self._features)
        return self._typed if self._typed.usable else None

    def _decode_rows(
        self, reader: _Format[_Record], payloads: list[bytes], positions: list[dict[str, Any]]
    ) -> Decoded:
        inferring = self._features is None
        bulk = self._decode_bulk(reader, payloads, positions)
        # "is None", not "or": an empty Decoded is falsy.
        decoded = self._decode_each(reader, payloads, positions) if bulk is None else bulk
        if (
            not (inferring and self.leave_out_rising)
            or self._features is None
            or len(decoded) < MIN_ROWS_FOR_RISING
        ):
            return decoded
        rising = np.all(np.diff(decoded.values, axis=0) > 0, axis=0).tolist()
        if not any(rising) or all(rising):
            return decoded
        features = self._features
        self.left_out = [name for name, up in zip(features, rising, strict=True) if up]
        self._set_features(
            reader, [name for name, up in zip(features, rising, strict=True) if not up]
        )
        bulk = self._decode_bulk(reader, payloads, positions)
        return self._decode_each(reader, payloads, positions) if bulk is None else bulk

    def _decode_bulk(
        self, reader: _Format[_Record], payloads: list[bytes], positions: list[dict[str, Any]]
    ) -> Decoded | None:
        """Decode a batch in which nothing is wrong, or return None at the first doubt."""
        if not payloads:
            return self._empty()
        if any_oversize(payloads, positions, self.max_record_bytes):
            return None
        typed = self._typed_lines(reader)
        columns = None if typed is None else typed.decode(payloads)
        if columns is not None:
            if self._any_too_long(columns.keys, columns.ids):
                return None
            return Decoded(
                values=columns.values,
                records=LazyRecords(payloads) if self.keep_records else [],
                positions=list(positions),
                labels=columns.labels,
                keys=columns.keys,
                ids=columns.ids,
                timestamps=columns.timestamps,
            )
        records = reader.parse_all(payloads)
        if records is None:
            return None
        if self._features is None:
            inferred = reader.numeric_fields(records[0])
            if not inferred:
                return None
            self._set_features(reader, inferred)
        assert self._features is not None
        numbers = reader.all_numbers(records)
        if numbers is None:
            return None
        try:
            values = np.array(numbers, dtype=np.float64).reshape(len(records), len(self._features))
        except OverflowError:
            return None
        if not np.isfinite(values).all():
            return None
        if self.label_field is None:
            labels = np.full(len(records), -1, dtype=np.int8)
        else:
            label_list = reader.all_labels(records)
            if label_list is None:
                return None
            labels = np.array(label_list, dtype=np.int8)
        keys = ids = None
        if self.key_field is not None:
            keys = reader.all_keys(records, self.key_field)
            if keys is None:
                return None
        if self.id_field is not None:
            ids = reader.all_idents(records, self.id_field)
            if ids is None:
                return None
        if self._any_too_long(keys, ids):
            return None
        timestamps = None
        if self.timestamp_field is not None:
            name = self.timestamp_field
            timestamps = [reader.timestamp(record, name) for record in records]
        return Decoded(
            values=values,
            records=reader.to_dicts(records, values, lazy=self.lazy_records)
            if self.keep_records
            else [],
            positions=list(positions),
            labels=labels,
            keys=keys,
            ids=ids,
            timestamps=timestamps,
        )

    def _any_too_long(self, keys: list[str] | None, ids: list[str | None] | None) -> bool:
        """Whether a key or an id is longer than ``max_key_bytes`` (see :func:`too_long_reason`)."""
        limit = self.max_key_bytes
        return (keys is not None and any_too_long(keys, limit)) or (
            ids is not None and any_too_long(ids, limit)
        )

    def _decode_each(
        self, reader: _Format[_Record], payloads: list[bytes], positions: list[dict[str, Any]]
    ) -> Decoded:
        """Decode record by record, sorting out exactly which records are bad and why."""
        rows: list[Sequence[int | float]] = []
        records: list[_Record] = []
        good_positions: list[dict[str, Any]] = []
        labels: list[int] = []
        keys: list[str] = []
        ids: list[str | None] = []
        timestamps: list[Any] = []
        bad: list[BadRecord] = []
        n_blank = 0
        key_field, id_field, timestamp_field = self.key_field, self.id_field, self.timestamp_field
        for payload, position in zip(payloads, positions, strict=True):
            reason = oversize_reason(payload, position, self.max_record_bytes)
            if reason is not None:
                bad.append(BadRecord(position, reason, payload))
                continue
            if not payload.strip():
                n_blank += 1
                continue
            try:
                record = reader.parse(payload)
                if self._features is None:
                    self._infer(reader, record)
                row = reader.numbers(record)
                label = reader.label(record)
                key = None if key_field is None else reader.key(record, key_field)
                ident = None if id_field is None else reader.ident(record, id_field)
                too_long = too_long_reason("key", key, self.max_key_bytes) or too_long_reason(
                    "id", ident, self.max_key_bytes
                )
                if too_long is not None:
                    raise Reject(too_long)
            except Reject as reject:
                bad.append(BadRecord(position, reject.reason, payload))
                continue
            rows.append(row)
            records.append(record)
            good_positions.append(position)
            labels.append(label)
            if key is not None:
                keys.append(key)
            ids.append(ident)
            if timestamp_field is not None:
                timestamps.append(reader.timestamp(record, timestamp_field))
        d = 0 if self._features is None else len(self._features)
        values = np.array(rows, dtype=np.float64).reshape(len(rows), d)
        return Decoded(
            values=values,
            records=reader.to_dicts(records, values) if self.keep_records and records else [],
            positions=good_positions,
            labels=np.array(labels, dtype=np.int8),
            keys=None if key_field is None else keys,
            ids=None if id_field is None else ids,
            timestamps=None if timestamp_field is None else timestamps,
            bad=bad,
            n_blank=n_blank,
        )

    def _infer(self, reader: _Format[_Record], record: _Record) -> None:
        """Fix the features from a record's numeric fields; Reject when it has none."""
        inferred = reader.numeric_fields(record)
        if not inferred:
            noun = "field" if reader.name == "json" else "cell"
            event = "event" if reader.name == "json" else "row"
            raise Reject(
                f"no numeric {noun} to take the features from (features are inferred "
                f"from the first {event} that has numeric {noun}s)"
            )
        self._set_features(reader, inferred)

    def _empty(self, n_blank: int = 0) -> Decoded:
        return Decoded.empty(
            0 if self._features is None else len(self._features),
            keys=self.key_field is not None,
            ids=self.id_field is not None,
            timestamps=self.timestamp_field is not None,
            n_blank=n_blank,
        )


def _sniff(payloads: list[bytes], first: int) -> str | None:
    """The format of a stream whose first non-blank line is ``payloads[first]``; None: undecided.

    >>> _sniff([b"[1, 2]"], 0), _sniff([b"x,y", b"1,2"], 0), _sniff([b"oops", b'{"x": 1}'], 0)
    ('json', 'csv', 'json')
    >>> _sniff([b"oops", b""], 0) is None
    True
    """
    line = payloads[first].strip()
    if line.startswith(b"{"):
        return "json"
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    else:
        # No CSV header is valid JSON; a JSON stream's bad first line may well be.
        return "json"
    following = next((p.strip() for p in payloads[first + 1 :] if p.strip()), None)
    if following is None:
        return None
    return "json" if following.startswith(b"{") else "csv"
