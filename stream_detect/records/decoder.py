"""The decoder front: pick the format, fix the features, then decode each batch.

:class:`RecordDecoder` keeps what a stream's first lines decide (the format,
:class:`~stream_detect.records.record_format.StreamStart`; the CSV header;
the features, given or inferred), which its base
:class:`~stream_detect.records.stream_layout.StreamLayout` holds, and hands
each batch to the bulk path (:mod:`~stream_detect.records.bulk`), and to the
record-by-record path (:mod:`~stream_detect.records.record_by_record`, the
authority on bad records) when the bulk path meets a problem. Both paths, for
both formats, are written once; what differs between JSON lines and CSV is in
:mod:`~stream_detect.records.json_lines` and
:mod:`~stream_detect.records.csv_rows`, the field rules in
:mod:`~stream_detect.records.feature_values`, :mod:`~stream_detect.records.labels`
and :mod:`~stream_detect.records.keys_and_ids`.

Which fields become the features when none are named (those most events of
the first batch carry, less those that only rise over it) is
:mod:`~stream_detect.records.inferred_features`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from stream_detect.records.batch import Decoded
from stream_detect.records.bulk import decode_bulk
from stream_detect.records.inferred_features import (
    MIN_ROWS_FOR_RISING,
    most_carried,
    without_rising,
)
from stream_detect.records.json_lines import JsonLines
from stream_detect.records.record_by_record import decode_each
from stream_detect.records.record_format import RecordFormat
from stream_detect.records.stream_layout import StreamLayout
from stream_detect.records.tombstones import in_arrival_order, set_aside_tombstones
from stream_detect.sources.base import RawBatch

__all__ = ["RecordDecoder"]


class RecordDecoder(StreamLayout):
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
        the next batch, and is reported there (or by :meth:`finish`, as a CSV
        header, if the stream ends first).
    features
        The feature fields, in order. None: the numeric fields that more
        than half of the first batch's events carry together
        (:mod:`~stream_detect.records.inferred_features`; JSON numbers; for
        CSV, cells that parse as numbers), leaving out the label, key, id and timestamp fields and
        CSV columns without a name, and leaving out a field that only rises
        over the first batch (strictly increasing over at least
        :data:`~stream_detect.records.inferred_features.MIN_ROWS_FOR_RISING`
        good rows: a counter, an epoch timestamp), listed in
        :attr:`left_out`. Fixed from then on. In JSON lines a dotted name
        (``cpu.user``) reads a member of a nested object unless the event
        has a top-level field so named, and the numeric members of nested
        objects are inferred by such names
        (:mod:`~stream_detect.records.field_paths`); the role fields may be
        dotted too.
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
    source_fields
        Fields the source adds to every event (a scrape's time): never
        inferred as features, though ``features`` may name them.
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
    infer_from_most
        False takes inferred features from the first record that has numeric
        fields alone, as the table commands document ("the first data row
        decides the features"); True (a stream) from what most of the first
        batch carries.

    Notes
    -----
    Bad records never raise; they come back in :attr:`Decoded.bad`. What does
    raise :class:`~stream_detect.errors.InputError` is a CSV header the stream
    cannot be read with (not UTF-8, a duplicate column, a configured feature
    or key column missing, a JSON object where the header should be), since
    every row after it would be bad too.

    A Kafka record with a null value (a tombstone) is a bad record, never a
    blank line (:mod:`~stream_detect.records.tombstones`).

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

    def finish(self) -> Decoded:
        """At the end of the stream: the first line still held, read as the CSV header.

        A first line that is not JSON waits for the line after it to decide
        the format (see ``format``); when the stream ends first, nothing
        follows it and it is the header of a CSV stream without rows, counted
        in ``n_header``. Raises :class:`~stream_detect.errors.InputError` as
        any header may; with no line held, an empty batch.

        >>> decoder = RecordDecoder("auto")
        >>> len(decoder.decode(RawBatch([b"x,y"], [{"line": 1}])))
        0
        >>> decoded = decoder.finish()
        >>> decoded.n_header, decoder.format, decoder.columns
        (1, 'csv', ['x', 'y'])
        """
        held = self._start.release()
        decoded = self._empty()
        if held is not None:
            self._start_csv(*held)
            decoded.n_header = 1
        return decoded

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
        if len(batch.payloads) != len(batch.positions):
            raise ValueError(
                f"a batch needs one position per payload, got {len(batch.payloads)} payloads "
                f"and {len(batch.positions)} positions"
            )
        # Set aside first: an empty tombstone must neither pass for a blank line
        # nor be the line that decides the format.
        payloads, positions, tombstones = set_aside_tombstones(batch.payloads, batch.positions)
        decoded = self._decode_records(payloads, positions)
        if tombstones:
            decoded.bad = in_arrival_order(decoded.bad + tombstones, batch.positions)
        return decoded

    def _decode_records(
        self, payloads: list[bytes], positions: Sequence[dict[str, Any]]
    ) -> Decoded:
        """Decode a batch's records (its tombstones set aside): the format, then the rows."""
        payloads, positions = self._start.with_held(payloads, positions)
        n_blank = n_header = 0
        if self._reader is None:
            first = next((i for i, payload in enumerate(payloads) if payload.strip()), None)
            if first is None:
                return self._empty(n_blank=len(payloads))
            started = self._start.read_first(payloads, positions, first)
            if started is None:
                return self._empty(n_blank=len(payloads) - 1)
            payloads = started
            if self._start.format == "json":
                self._reader = JsonLines(self.roles)
                if self._features is not None:
                    self._reader.bind(self._features)
            else:
                self._start_csv(payloads[first], positions[first])
                n_blank, n_header = first, 1
                payloads = payloads[first + 1 :]
                positions = positions[first + 1 :]
        assert self._reader is not None
        reader: RecordFormat[Any] = self._reader
        decoded = self._decode_rows(reader, payloads, positions)
        decoded.n_blank += n_blank
        decoded.n_header = n_header
        return decoded

    # -- one batch ------------------------------------------------------------------------

    def _decode_rows(
        self, reader: RecordFormat[Any], payloads: list[bytes], positions: Sequence[dict[str, Any]]
    ) -> Decoded:
        if not payloads:
            return self._empty()
        inferring = self._features is None
        if inferring and self.infer_from_most:
            chosen = most_carried(reader, payloads, positions, self.max_record_bytes)
            if chosen is not None:
                self._set_features(reader, chosen)
        decoded = self._decode_paths(reader, payloads, positions)
        if (
            not (inferring and self.leave_out_rising)
            or self._features is None
            or len(decoded) < MIN_ROWS_FOR_RISING
        ):
            return decoded
        kept, rising = without_rising(self._features, decoded.values)
        if not rising:
            return decoded
        self.left_out = rising
        self._set_features(reader, kept)
        return self._decode_paths(reader, payloads, positions)

    def _decode_paths(
        self, reader: RecordFormat[Any], payloads: list[bytes], positions: Sequence[dict[str, Any]]
    ) -> Decoded:
        """The bulk path's batch, or the record-by-record path's where the bulk one gives up."""
        fix_features = functools.partial(self._set_features, reader)
        bulk = decode_bulk(
            reader, payloads, positions, self, self._features, fix_features, self._typed_lines
        )
        # "is not None", not "or": an empty Decoded is falsy.
        if bulk is not None:
            return bulk
        # The bulk path may have fixed the features before it gave up: read them again.
        return decode_each(reader, payloads, positions, self, self._features, fix_features)
