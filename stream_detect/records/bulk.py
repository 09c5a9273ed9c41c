"""The bulk path: a batch in which nothing is wrong, decoded in a few calls, or None at a doubt.

Speed comes from doing the per-batch work in bulk: one parse per line, one
list of all feature values, one ``np.array`` and one ``np.isfinite`` per batch.
:func:`decode_bulk` promises only this: what it returns is exactly what the
record-by-record path (:mod:`~stream_detect.records.record_by_record`, the
authority) would return for the same batch; where it cannot be sure (a bad
record, a value it does not read the same way), it returns None and the
caller goes record by record.

JSON lines have two bulk paths. The orjson one parses each line into a dict,
which is also the event's record for output. The msgspec one
(:mod:`~stream_detect.records.typed_lines`) decodes the whole batch in one
call into typed structs and builds no dict; the records are parsed from
their lines only when read (:mod:`~stream_detect.records.lazy_records`). It
runs about 1.8 times as fast when few records are read (alerts only, about 1
in 100), and at about 0.8 times the speed when every one is, since each line
is then parsed twice (``python bench/decode_paths.py``). So it is tried
first, once the features are known, when records are read lazily (the
pipeline sets ``lazy_records`` unless every event is written: ``--emit
all``) or not kept; when it gives up on a batch, the orjson path runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from stream_detect.records.batch import Decoded
from stream_detect.records.lazy_records import LazyRecords
from stream_detect.records.record_by_record import DecodeSettings
from stream_detect.records.record_format import Record, RecordFormat
from stream_detect.records.size_limits import any_oversize, any_too_long

if TYPE_CHECKING:
    from stream_detect.records.typed_lines import TypedLines

__all__ = ["BulkSettings", "decode_bulk"]


class BulkSettings(DecodeSettings, Protocol):
    """The settings of :class:`DecodeSettings`, and whether records are read lazily."""

    lazy_records: bool


def decode_bulk(
    reader: RecordFormat[Record],
    payloads: list[bytes],
    positions: Sequence[dict[str, Any]],
    settings: BulkSettings,
    features: list[str] | None,
    fix_features: Callable[[list[str]], None],
    typed_lines: Callable[[], TypedLines | None],
) -> Decoded | None:
    """Decode a non-empty batch in which nothing is wrong, or return None at the first doubt.

    ``features`` None: they are taken from the first record's numeric fields
    and handed to ``fix_features`` (which binds ``reader`` to them) before
    anything else can give up, so a batch that goes record by record next
    reads the same features. ``typed_lines`` gives the msgspec path for the
    features given (None while it is not usable); it is asked only where the
    path serves (see the module) and no record is too long.

    >>> from types import SimpleNamespace
    >>> from stream_detect.records.json_lines import JsonLines
    >>> from stream_detect.records.roles import FieldRoles
    >>> settings = SimpleNamespace(roles=FieldRoles(), max_record_bytes=100, max_key_bytes=16,
    ...                            keep_records=True, lazy_records=False)
    >>> reader, fixed = JsonLines(settings.roles), []
    >>> def fix(names):
    ...     fixed.append(names); reader.bind(names)
    >>> lines = [b'{"x": 1}', b'{"x": 2.5}']
    >>> decoded = decode_bulk(reader, lines, [{}, {}], settings, None, fix, lambda: None)
    >>> fixed, decoded.values.tolist(), decoded.labels.tolist()
    ([['x']], [[1.0], [2.5]], [-1, -1])
    >>> decode_bulk(reader, [b'{"x": "a"}'], [{}], settings, ["x"], fix, lambda: None) is None
    True
    """
    roles, max_key_bytes = settings.roles, settings.max_key_bytes
    lengths = np.fromiter(map(len, payloads), np.intp, len(payloads))
    if any_oversize(int(lengths.max()), positions, settings.max_record_bytes):
        return None
    typed = typed_lines() if _typed_serves(reader, settings, features) else None
    columns = None if typed is None else typed.decode(payloads, lengths)
    if columns is not None:
        if _any_too_long(columns.keys, columns.ids, max_key_bytes):
            return None
        return Decoded(
            values=columns.values,
            records=LazyRecords(payloads) if settings.keep_records else [],
            positions=positions,
            labels=columns.labels,
            keys=columns.keys,
            ids=columns.ids,
            timestamps=columns.timestamps,
        )
    records = reader.parse_all(payloads)
    if records is None:
        return None
    if features is None:
        inferred = reader.numeric_fields(records[0])
        if not inferred:
            return None
        fix_features(inferred)
        features = inferred
    numbers = reader.all_numbers(records)
    if numbers is None:
        return None
    try:
        values = np.array(numbers, dtype=np.float64).reshape(len(records), len(features))
    except OverflowError:
        return None
    if not np.isfinite(values).all():
        return None
    if roles.label_field is None:
        labels = np.full(len(records), -1, dtype=np.int8)
    else:
        label_list = reader.all_labels(records)
        if label_list is None:
            return None
        labels = np.array(label_list, dtype=np.int8)
    keys = ids = None
    if roles.key_field is not None:
        keys = reader.all_keys(records, roles.key_field)
        if keys is None:
            return None
    if roles.id_field is not None:
        ids = reader.all_idents(records, roles.id_field)
        if ids is None:
            return None
    if _any_too_long(keys, ids, max_key_bytes):
        return None
    timestamps = None
    if roles.timestamp_field is not None:
        name = roles.timestamp_field
        timestamps = [reader.timestamp(record, name) for record in records]
    return Decoded(
        values=values,
        records=reader.to_dicts(records, values, payloads, lazy=settings.lazy_records)
        if settings.keep_records
        else [],
        positions=positions,
        labels=labels,
        keys=keys,
        ids=ids,
        timestamps=timestamps,
    )


def _any_too_long(keys: list[str] | None, ids: list[str | None] | None, limit: int) -> bool:
    """Whether a key or an id is longer than ``limit`` bytes (see :func:`too_long_reason`)."""
    return (keys is not None and any_too_long(keys, limit)) or (
        ids is not None and any_too_long(ids, limit)
    )


def _typed_serves(
    reader: RecordFormat[Record], settings: BulkSettings, features: list[str] | None
) -> bool:
    """Whether the msgspec path is worth trying: JSON, features known, few records read."""
    if reader.name != "json" or features is None:
        return False
    return not settings.keep_records or settings.lazy_records
