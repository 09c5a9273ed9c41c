"""What a record stream's first lines fix for the rest of it, with the decoder's settings.

:class:`StreamLayout` holds the settings a
:class:`~stream_detect.records.decoder.RecordDecoder` is made with (checked) and
what the stream's first lines decide for every batch after them: the format
(:class:`~stream_detect.records.record_format.StreamStart`), the reader of that
format (the CSV header's columns), the features (given, or fixed by the first
batch, with those left out), and the msgspec path built for them. Both decoding
paths read these; what a batch does with them is :mod:`~stream_detect.records.decoder`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from stream_detect.errors import ConfigError
from stream_detect.field_names import check_feature_names
from stream_detect.formats import FORMATS
from stream_detect.records.batch import Decoded
from stream_detect.records.json_lines import JsonLines
from stream_detect.records.record_format import RecordFormat, StreamStart
from stream_detect.records.roles import FieldRoles

if TYPE_CHECKING:
    from stream_detect.records.csv_rows import CsvRows
    from stream_detect.records.typed_lines import TypedLines

__all__ = [
    "DEFAULT_MAX_KEY_BYTES",
    "DEFAULT_MAX_RECORD_BYTES",
    "StreamLayout",
]

#: Records longer than this many bytes are bad records by default.
DEFAULT_MAX_RECORD_BYTES: Final = 1 << 20
#: Longest key or id value kept, in UTF-8 bytes; longer ones make the record a bad record.
DEFAULT_MAX_KEY_BYTES: Final = 256


class StreamLayout:
    """A decoder's settings, and the format, reader and features its stream's first lines fixed.

    The parameters are :class:`~stream_detect.records.decoder.RecordDecoder`'s.
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
        infer_from_most: bool = True,
        source_fields: Sequence[str] = (),
    ) -> None:
        if format not in FORMATS:
            raise ConfigError("format", format, "one of 'json', 'csv', 'auto'")
        if isinstance(max_record_bytes, bool) or not isinstance(max_record_bytes, int):
            raise ConfigError("max_record_bytes", max_record_bytes, "an integer >= 1")
        if max_record_bytes < 1:
            raise ConfigError("max_record_bytes", max_record_bytes, "an integer >= 1")
        self.roles = FieldRoles(
            label_field, key_field, id_field, timestamp_field, frozenset(source_fields)
        )
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
        self.infer_from_most = infer_from_most
        #: Fields left out of the inferred features because they only rose over the first batch.
        self.left_out: list[str] = []
        self._start = StreamStart(format)
        self._features: list[str] | None = None
        if features is not None:
            self._features = check_feature_names(features, roles=self.roles.as_mapping())
        self._reader: JsonLines | CsvRows | None = None
        self._typed: TypedLines | None = None

    @property
    def features(self) -> list[str] | None:
        """The feature names, or None until the first event with numbers fixes them."""
        return None if self._features is None else list(self._features)

    @property
    def format(self) -> str:
        """``"json"`` or ``"csv"``; ``"auto"`` until the first line that parses decides."""
        return self._start.format

    @property
    def columns(self) -> list[str] | None:
        """The CSV header's column names, or None before the header (or for JSON)."""
        if self._reader is None or isinstance(self._reader, JsonLines):
            return None
        return list(self._reader.columns)

    @property
    def label_note(self) -> str | None:
        """What it means that a CSV header lacks the default label column; None otherwise."""
        if self._reader is None or isinstance(self._reader, JsonLines):
            return None
        return self._reader.label_note

    def use_csv_header(self, header: str) -> None:
        """Read the stream as CSV with this header line (a resumed stream's, say)."""
        self._start.known("csv")
        self._start_csv(header.encode("utf-8"), {"line": 1})

    # -- the state the paths share -----------------------------------------------------

    def _start_csv(self, header: bytes, position: dict[str, Any]) -> None:
        # Imported here: a JSON stream does not load the csv module and the CSV rules.
        from stream_detect.records.csv_rows import CsvRows

        reader = CsvRows(
            self.roles, header, position, self._features, self.max_record_bytes, self.source
        )
        if self._features is not None:
            reader.bind(self._features)
        self._reader = reader

    def _set_features(self, reader: RecordFormat[Any], features: list[str]) -> None:
        self._features = features
        # The msgspec path is built for one list of features.
        self._typed = None
        reader.bind(features)

    def _typed_lines(self) -> TypedLines | None:
        """The msgspec path for the features fixed, while it is usable (see :mod:`bulk`)."""
        assert self._features is not None
        if self._typed is None:
            # Imported here: a run that never takes this path does not load msgspec.
            from stream_detect.records.typed_lines import TypedLines

            self._typed = TypedLines(self.roles, self._features)
        return self._typed if self._typed.usable else None

    def _empty(self, n_blank: int = 0) -> Decoded:
        return Decoded.empty(
            0 if self._features is None else len(self._features),
            keys=self.key_field is not None,
            ids=self.id_field is not None,
            timestamps=self.timestamp_field is not None,
            n_blank=n_blank,
        )
