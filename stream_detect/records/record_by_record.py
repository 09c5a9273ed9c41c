"""The record-by-record path: which records of a batch are bad, and why, one at a time.

This is the authority on what a good record is: the bulk paths
(:mod:`~stream_detect.records.bulk`) only ever accept what it accepts, with
the same values, and hand a batch over to it at their first doubt. It never
raises for a bad record: every payload ends up a good row, a blank line, or a
:class:`~stream_detect.records.batch.BadRecord` with its position and a
sentence naming the field and the problem (the sentences come from the
field rules, the size limits of :mod:`~stream_detect.records.size_limits`
and the formats' readers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from stream_detect.records.batch import BadRecord, Decoded
from stream_detect.records.record_format import Record, RecordFormat
from stream_detect.records.reject import Reject
from stream_detect.records.roles import FieldRoles
from stream_detect.records.size_limits import oversize_reason, too_long_reason

__all__ = ["DecodeSettings", "decode_each", "infer_features"]


class DecodeSettings(Protocol):
    """What the paths read of the decoder's settings (see :class:`RecordDecoder`)."""

    roles: FieldRoles
    max_record_bytes: int
    max_key_bytes: int
    keep_records: bool


def decode_each(
    reader: RecordFormat[Record],
    payloads: list[bytes],
    positions: Sequence[dict[str, Any]],
    settings: DecodeSettings,
    features: list[str] | None,
    fix_features: Callable[[list[str]], None],
) -> Decoded:
    """Decode record by record, sorting out exactly which records are bad and why.

    ``features`` None: they are taken from the first record that has numeric
    fields (:func:`infer_features`) and handed to ``fix_features``, which
    binds ``reader`` to them; records before it are bad records.

    >>> from types import SimpleNamespace
    >>> from stream_detect.records.json_lines import JsonLines
    >>> reader = JsonLines(FieldRoles())
    >>> settings = SimpleNamespace(roles=FieldRoles(), max_record_bytes=100, max_key_bytes=16,
    ...                            keep_records=False)
    >>> lines = [b'{"note": "x"}', b"", b'{"x": 1, "label": 1}']
    >>> decoded = decode_each(reader, lines, [{"line": n} for n in (1, 2, 3)], settings, None,
    ...                       reader.bind)
    >>> decoded.values.tolist(), decoded.labels.tolist(), decoded.n_blank
    ([[1.0]], [1], 1)
    >>> [(bad.position["line"], bad.reason[:40]) for bad in decoded.bad]
    [(1, 'no numeric field to take the features fr')]
    """
    rows: list[Sequence[int | float]] = []
    records: list[Record] = []
    # The lines of the good records, for the formats that read their output fields again.
    good_payloads: list[bytes] = []
    good_positions: list[dict[str, Any]] = []
    labels: list[int] = []
    keys: list[str] = []
    ids: list[str | None] = []
    timestamps: list[Any] = []
    bad: list[BadRecord] = []
    n_blank = 0
    roles, max_key_bytes = settings.roles, settings.max_key_bytes
    key_field, id_field, timestamp_field = roles.key_field, roles.id_field, roles.timestamp_field
    for payload, position in zip(payloads, positions, strict=True):
        reason = oversize_reason(payload, position, settings.max_record_bytes)
        if reason is not None:
            bad.append(BadRecord(position, reason, payload))
            continue
        if not payload.strip():
            n_blank += 1
            continue
        try:
            record = reader.parse(payload)
            if features is None:
                features = infer_features(reader, record)
                fix_features(features)
            row = reader.numbers(record)
            label = reader.label(record)
            key = None if key_field is None else reader.key(record, key_field)
            ident = None if id_field is None else reader.ident(record, id_field)
            too_long = too_long_reason("key", key, max_key_bytes) or too_long_reason(
                "id", ident, max_key_bytes
            )
            if too_long is not None:
                raise Reject(too_long)
        except Reject as reject:
            bad.append(BadRecord(position, reject.reason, payload))
            continue
        rows.append(row)
        records.append(record)
        good_payloads.append(payload)
        good_positions.append(position)
        labels.append(label)
        if key is not None:
            keys.append(key)
        ids.append(ident)
        if timestamp_field is not None:
            timestamps.append(reader.timestamp(record, timestamp_field))
    d = 0 if features is None else len(features)
    values = np.array(rows, dtype=np.float64).reshape(len(rows), d)
    return Decoded(
        values=values,
        records=reader.to_dicts(records, values, good_payloads)
        if settings.keep_records and records
        else [],
        positions=good_positions,
        labels=np.array(labels, dtype=np.int8),
        keys=None if key_field is None else keys,
        ids=None if id_field is None else ids,
        timestamps=None if timestamp_field is None else timestamps,
        bad=bad,
        n_blank=n_blank,
    )


def infer_features(reader: RecordFormat[Record], record: Record) -> list[str]:
    """The features a record's numeric fields make; Reject when it has none.

    >>> from stream_detect.records.json_lines import JsonLines
    >>> reader = JsonLines(FieldRoles())
    >>> infer_features(reader, {"cpu": 0.5, "host": "a", "label": 1})
    ['cpu']
    """
    inferred = reader.numeric_fields(record)
    if not inferred:
        noun = "field" if reader.name == "json" else "cell"
        event = "event" if reader.name == "json" else "row"
        raise Reject(
            f"no numeric {noun} to take the features from (features are inferred "
            f"from the first {event}s that have numeric {noun}s)"
        )
    return inferred
