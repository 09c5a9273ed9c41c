"""CSV: a header line naming the columns, then one row per record, read by the cell rules.

:class:`CsvRows` is the CSV half of :class:`~stream_detect.records.RecordDecoder`:
it reads the header, splits rows and reads their cells, one row at a time (the
exact path, which says why a row is bad) or a whole batch at once (the fast
path, which gives up, returning None, at the first doubt). A quoted field
cannot span lines: each line is one record.
"""

from __future__ import annotations

import csv
import operator
from collections.abc import Sequence
from itertools import repeat
from typing import Any

from stream_detect.errors import InputError
from stream_detect.records.batch import FloatMatrix
from stream_detect.records.feature_values import (
    cell_number,
    cell_numbers,
    parses_as_float,
    picked_flat,
)
from stream_detect.records.keys_and_ids import cell_key
from stream_detect.records.labels import CELL_LABELS, cell_label
from stream_detect.records.lazy_records import LazyRecords
from stream_detect.records.line_ends import lone_carriage_return, lone_carriage_return_note
from stream_detect.records.reject import Reject
from stream_detect.records.roles import DEFAULT_LABEL_FIELD, FieldRoles
from stream_detect.records.size_limits import oversize_reason

__all__ = ["CsvRows", "split_csv"]

Row = list[str]

#: What may come before a header's first column name: white space, a byte-order mark.
_LEADING_BLANKS = " \t\ufeff"
#: How much of a refused header an error quotes.
_SHOWN_CHARS = 40


class CsvRows:
    """Read CSV rows by the columns of a header.

    Parameters
    ----------
    roles
        The label, key, id and timestamp fields.
    header
        The header line, as bytes.
    position
        Where the header line is, for errors.
    features
        The configured features, or None when they are to be inferred.
    max_record_bytes, source
        The record length limit, and what to name in errors.

    Raises
    ------
    InputError
        The header cannot be read (too long, not UTF-8, malformed, a column
        named twice, a JSON object: JSON lines read as CSV) or lacks a
        configured feature or the key column, since every row after it would
        be bad too; or it lacks a label column named
        other than :data:`~stream_detect.records.roles.DEFAULT_LABEL_FIELD`,
        since a column meant as the label (or as data) would be read as the other.

    Examples
    --------
    >>> rows = CsvRows(FieldRoles(), b"x,y,label", {"line": 1}, None, 100)
    >>> rows.columns, rows.numeric_fields(rows.parse(b"1,a,0"))
    (['x', 'y', 'label'], ['x'])
    >>> CsvRows(FieldRoles(label_field="is_bad"), b"x,label", {"line": 1}, None, 100)
    Traceback (most recent call last):
    ...
    stream_detect.errors.InputError: label field 'is_bad' is not a column of the CSV header \
(columns: x, label)
    """

    name = "csv"

    def __init__(
        self,
        roles: FieldRoles,
        header: bytes,
        position: dict[str, Any],
        features: Sequence[str] | None,
        max_record_bytes: int,
        source: str | None = None,
    ) -> None:
        self.roles = roles
        self.columns = _read_header(header, position, max_record_bytes, source)
        line = position.get("line")
        self._header_line = line if isinstance(line, int) else None
        listing = ", ".join(self.columns)
        # The default label may be absent (an unlabelled stream); a label field
        # named otherwise was meant to be there, and without it a column called
        # `label` would be learned as a feature.
        label = None if roles.label_field == DEFAULT_LABEL_FIELD else roles.label_field
        for name in [*(features or []), roles.key_field, label]:
            if name is not None and name not in self.columns:
                what = {roles.key_field: "key field", label: "label field"}.get(name, "feature")
                raise InputError(
                    f"{what} {name!r} is not a column of the CSV header (columns: {listing})",
                    source=source,
                    line=line if isinstance(line, int) else None,
                )
        # A one-column header holding another common separator: the file is
        # most likely separated by it, which is worth saying on every row.
        only = self.columns[0] if len(self.columns) == 1 else ""
        self._separator = next((mark for mark in ";\t|" if mark in only), None)
        self._index = {name: i for i, name in enumerate(self.columns)}
        self._label = None if roles.label_field is None else self._index.get(roles.label_field)
        self._label_missing = roles.label_field is not None and self._label is None
        self.features: list[str] = []
        self._feature_columns: list[int] = []

    @property
    def label_note(self) -> str | None:
        """What a header without the (default) label column means, for the user; None: it has one.

        Every row is then unlabelled, which is no error: but a label column
        named otherwise (``Label``, ``is_anomaly``) would be learned as a
        feature, so a run says so once.

        >>> print(CsvRows(FieldRoles(), b"x,Label", {"line": 1}, None, 100).label_note)
        the CSV header has no 'label' column: every row is unlabelled (--label-field NAME \
reads labels from column NAME; --label-field none says there are none)
        """
        if not self._label_missing:
            return None
        return (
            f"the CSV header has no {self.roles.label_field!r} column: every row is unlabelled "
            "(--label-field NAME reads labels from column NAME; --label-field none says there "
            "are none)"
        )

    def bind(self, features: list[str]) -> None:
        """Read these features (columns of the header) from now on."""
        self.features = features
        self._feature_columns = [self._index[name] for name in features]

    # -- one row -----------------------------------------------------------------------

    def parse(self, payload: bytes) -> Row:
        """The cells of one line; Reject saying what is wrong with the line."""
        try:
            text = payload.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as error:
            raise Reject(f"invalid UTF-8 at byte {error.start}") from None
        try:
            row = split_csv(text)
        except csv.Error as error:
            if text.count('"') % 2:
                raise Reject(
                    "a quoted cell is still open at the end of the line (one record per "
                    "line: a cell cannot hold a line break)"
                ) from None
            raise Reject(f"malformed CSV: {error}") from None
        if self._separator is not None and self._separator in row[0]:
            raise Reject(
                f"one cell, holding {self._separator!r}: only commas separate cells, and the "
                f"header has none (is the file separated by {self._separator!r}?)"
            )
        if len(row) != len(self.columns):
            reason = f"expected {len(self.columns)} columns as in the header, got {len(row)}"
            carriage_return = lone_carriage_return(text)
            if carriage_return is not None:
                reason += f" ({lone_carriage_return_note(carriage_return)})"
            raise Reject(reason)
        # Before the features are fixed, a repeat with no number in it is refused here,
        # where any row without one is (the bulk path fixes no features from it either).
        if not self.features and self._repeats_header(row) and not self.numeric_fields(row):
            raise Reject(self._repeat_reason())
        return row

    def _repeats_header(self, row: Row) -> bool:
        """Whether a row repeats the header (a joined file's own may start with a BOM)."""
        cells = [row[0].strip().removeprefix("\ufeff"), *map(str.strip, row[1:])]
        return cells == self.columns

    def _repeat_reason(self) -> str:
        where = "" if self._header_line is None else f" (line {self._header_line})"
        return (
            f"the CSV header{where} repeated, not a record (were files joined with their headers?)"
        )

    def numeric_fields(self, row: Row) -> list[str]:
        """The named columns whose cell reads as a number, leaving out those with a role."""
        reserved = self.roles.reserved
        return [
            name
            for name, cell in zip(self.columns, row, strict=True)
            if name and name not in reserved and parses_as_float(cell)
        ]

    def filled_fields(self, row: Row) -> list[str]:
        """The named columns whose cell is not empty, leaving out those with a role."""
        reserved = self.roles.reserved
        return [
            name
            for name, cell in zip(self.columns, row, strict=True)
            if name and name not in reserved and cell.strip()
        ]

    def numbers(self, row: Row) -> list[float]:
        """The features of one row."""
        try:
            return [
                cell_number(row[i], name)
                for i, name in zip(self._feature_columns, self.features, strict=True)
            ]
        except Reject:
            # Only the reason changes: a header whose feature names read as finite
            # numbers is a row like any other (the bulk path takes it as one).
            if self._repeats_header(row):
                raise Reject(self._repeat_reason()) from None
            raise

    def label(self, row: Row) -> int:
        """The row's label, -1 for none."""
        if self._label is None:
            return -1
        assert self.roles.label_field is not None
        return cell_label(row[self._label], self.roles.label_field)

    def key(self, row: Row, name: str) -> str:
        """The row's key."""
        return cell_key(row[self._index[name]], name)

    def ident(self, row: Row, name: str) -> str | None:
        """The row's id, None for an empty cell or no such column."""
        column = self._index.get(name)
        return None if column is None else row[column] or None

    def timestamp(self, row: Row, name: str) -> str | None:
        """The row's timestamp as written, None for an empty cell or no such column."""
        return self.ident(row, name)

    def to_dicts(
        self,
        rows: list[Row],
        values: FloatMatrix,
        payloads: Sequence[bytes],
        *,
        lazy: bool = False,
    ) -> Sequence[dict[str, Any]]:
        """One dict per row, feature cells as their numbers; ``lazy``: each built when read.

        The rows' lines (``payloads``) are not needed: the cells are the fields.

        >>> import numpy as np
        >>> rows = CsvRows(FieldRoles(), b"x,host", {"line": 1}, ["x"], 100)
        >>> rows.bind(["x"])
        >>> lazy = rows.to_dicts([["1", "a"], ["2.5", "b"]], np.array([[1.0], [2.5]]), [],
        ...                      lazy=True)
        >>> lazy[1], lazy.parsed
        ({'x': 2.5, 'host': 'b'}, 1)
        """
        columns, features = self.columns, self.features
        if lazy:

            def build(i: int) -> dict[str, Any]:
                record = dict(zip(columns, rows[i], strict=True))
                record.update(zip(features, values[i].tolist(), strict=True))
                return record

            return LazyRecords(range(len(rows)), parse=build)
        records: list[dict[str, Any]] = [dict(zip(columns, row, strict=True)) for row in rows]
        for record, numbers in zip(records, values.tolist(), strict=True):
            record.update(zip(features, numbers, strict=True))
        return records

    # -- a whole batch: None at the first doubt ------------------------------------------

    def parse_all(self, payloads: list[bytes]) -> list[Row] | None:
        """Every line's cells, or None."""
        if any(map(bytes.endswith, payloads, repeat((b"\r", b"\n")))):
            payloads = [payload.rstrip(b"\r\n") for payload in payloads]
        try:
            lines = list(map(bytes.decode, payloads))
            if any(map(operator.contains, payloads, repeat(b'"'))):
                rows = [line.split(",") if '"' not in line else split_csv(line) for line in lines]
            else:
                # No quote anywhere: every line splits at its commas, in one C-level pass.
                rows = list(map(str.split, lines, repeat(",")))
        except (UnicodeDecodeError, csv.Error):
            return None
        return rows if set(map(len, rows)) == {len(self.columns)} else None

    def all_numbers(self, rows: list[Row]) -> list[int | float] | None:
        """Every row's features, row after row, or None."""
        return cell_numbers(picked_flat(rows, self._feature_columns))

    def all_labels(self, rows: list[Row]) -> list[int] | None:
        """Every row's label (with a label field), or None."""
        column = self._label
        if column is None:
            return [-1] * len(rows)
        try:
            return [CELL_LABELS[row[column]] for row in rows]
        except KeyError:
            return None

    def all_keys(self, rows: list[Row], name: str) -> list[str] | None:
        """Every row's key, or None."""
        column = self._index[name]
        keys = [row[column] for row in rows]
        return None if "" in keys else keys

    def all_idents(self, rows: list[Row], name: str) -> list[str | None] | None:
        """Every row's id."""
        return [self.ident(row, name) for row in rows]


def split_csv(text: str) -> Row:
    """Split one CSV line; the csv module only when a quote makes it necessary.

    >>> split_csv('a,"b,c",d')
    ['a', 'b,c', 'd']
    """
    if '"' not in text:
        return text.split(",")
    rows = list(csv.reader([text], strict=True))
    if len(rows) != 1:
        raise csv.Error("a quoted field spans lines")
    return rows[0]


def _read_header(
    payload: bytes, position: dict[str, Any], max_record_bytes: int, source: str | None
) -> list[str]:
    line = position.get("line")
    where = line if isinstance(line, int) else None
    reason = oversize_reason(payload, position, max_record_bytes)
    if reason is not None:
        raise InputError(f"the CSV header is too long: {reason}", source=source, line=where)
    try:
        text = payload.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as error:
        raise InputError(
            f"the CSV header is not valid UTF-8 (byte {error.start})", source=source, line=where
        ) from None
    # JSON lines read as CSV (--format csv, a .csv name) would make the first object
    # the header and refuse every row after it for want of a number: say why once.
    if text.lstrip(_LEADING_BLANKS).startswith("{"):
        raise InputError(
            f"the CSV header looks like a JSON object ({_shown(text)}): the input looks like "
            "JSON lines, read as CSV by --format csv or a .csv name",
            source=source,
            line=where,
        )
    # A file with lone \r line ends is one line: its header would run on into its rows.
    carriage_return = lone_carriage_return(text)
    if carriage_return is not None:
        raise InputError(
            f"the CSV header is not one line: {lone_carriage_return_note(carriage_return)}",
            source=source,
            line=where,
        )
    try:
        columns = [name.strip() for name in split_csv(text)]
    except csv.Error as error:
        raise InputError(
            f"the CSV header is malformed: {error}", source=source, line=where
        ) from None
    seen: set[str] = set()
    for name in columns:
        if name in seen and name:
            raise InputError(
                f"the CSV header names column {name!r} twice", source=source, line=where
            )
        seen.add(name)
    return columns


def _shown(text: str) -> str:
    """The start of a header, quoted, cut to :data:`_SHOWN_CHARS` characters."""
    if len(text) <= _SHOWN_CHARS:
        return repr(text)
    return f"{text[:_SHOWN_CHARS]!r}..."
