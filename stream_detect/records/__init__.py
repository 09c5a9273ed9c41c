"""Decode raw records (JSON lines or CSV) into arrays.

A :class:`RecordDecoder` turns the :class:`~stream_detect.sources.base.RawBatch`
a source hands out into a :class:`Decoded` batch: a float64 matrix of the good
events' features plus what the detector and the output need (labels, keys,
ids, timestamps, the original fields, the positions). Bad records never raise
and are never dropped: each one comes back in :attr:`Decoded.bad` with its
position and a sentence saying what is wrong with which field.

The modules, one concept each:

* :mod:`~stream_detect.records.batch`: the decoded batch types;
* the field rules, each for a JSON value and a CSV cell, which both formats,
  both paths and the table loader read fields through, so each rule is said
  once: :mod:`~stream_detect.records.feature_values` (a feature is a finite
  number), :mod:`~stream_detect.records.labels` (what a label is) and
  :mod:`~stream_detect.records.keys_and_ids` (a key or an id as text);
* :mod:`~stream_detect.records.size_limits`: how long a record, a key or an id
  may be, :mod:`~stream_detect.records.line_ends`: a record ends at a line
  feed, never a lone carriage return,
  :mod:`~stream_detect.records.hidden_characters`: a NUL byte or a byte-order
  mark named where a record is refused, and :mod:`~stream_detect.records.reject`:
  a refused record and how its reason names a value;
* :mod:`~stream_detect.records.json_lines` and :mod:`~stream_detect.records.csv_rows`:
  the two formats;
* :mod:`~stream_detect.records.typed_lines`: the msgspec bulk path for JSON lines
  (:mod:`~stream_detect.records.typed_events`: the struct an event decodes into),
  and :mod:`~stream_detect.records.lazy_records`: the records it parses only when read;
* :mod:`~stream_detect.records.wide_integers`: integers wider than 64 bits in an
  event's own fields, read back exactly for output;
* :mod:`~stream_detect.records.inferred_features`: the features chosen when none
  are named (those most events carry, less those that only rise);
* :mod:`~stream_detect.records.field_paths`: how a dotted name (``cpu.user``)
  reads a member of a nested JSON object, in every path, and which nested
  members are candidates when the features are inferred;
* :mod:`~stream_detect.records.record_format`: what a format does, and which one
  a stream's first line says it is in;
* :mod:`~stream_detect.records.bulk`: the bulk path, and
  :mod:`~stream_detect.records.record_by_record`: the path that says which
  records are bad and why;
* :mod:`~stream_detect.records.stream_layout`: the decoder's settings and what
  a stream's first lines fixed (the format, the CSV header, the features), which
  both paths read, and :mod:`~stream_detect.records.decoder`: the front that
  decodes each batch on them and runs the two paths.
"""

from __future__ import annotations

from stream_detect.formats import FORMATS
from stream_detect.records.batch import JSON_OPTIONS, RAW_TEXT_LIMIT, BadRecord, Decoded
from stream_detect.records.decoder import RecordDecoder
from stream_detect.records.stream_layout import DEFAULT_MAX_RECORD_BYTES

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "FORMATS",
    "JSON_OPTIONS",
    "RAW_TEXT_LIMIT",
    "BadRecord",
    "Decoded",
    "RecordDecoder",
]
