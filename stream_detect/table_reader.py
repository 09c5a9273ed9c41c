"""Read a table file strictly, a part of its lines at a time, for :mod:`stream_detect.tables`.

:class:`TableReader` opens the file, reads its lines in blocks
(:class:`~stream_detect.table_lines.TableLines`), decodes each part of them
with the stream's :class:`~stream_detect.records.RecordDecoder` and raises
:class:`~stream_detect.errors.InputError` at the first problem, naming the
file and line; a part that comes back has none. What the rules are is said in
:mod:`stream_detect.tables`.

Parts are kept small (:data:`PART_LINES`) because decoding holds several
copies of a part's text at once (its lines, their cells or JSON objects, the
numbers as Python floats); what a part leaves is its matrix and labels, so
the memory a read needs beyond its result stays that of one small part.
Which lines make a part changes no result: the decoder keeps its state (the
format, the header, the features) from part to part, and each check reports
the earliest line it finds, parts being read in order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from operator import itemgetter
from types import TracebackType
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from stream_detect.errors import InputError
from stream_detect.first_row_features import blank_numeric_fields, unfit_inferred_feature
from stream_detect.formats import format_for_path, missing_file_text, not_a_table
from stream_detect.left_out_fields import LeftOutFields
from stream_detect.records import RecordDecoder
from stream_detect.sources.base import RawBatch
from stream_detect.sources.line_positions import LinePositions
from stream_detect.table_lines import TableLines, refuse_json_array, without_line_break

__all__ = ["PART_LINES", "TablePart", "TableReader", "line_numbers"]

#: Lines decoded at a time: large enough that a part's fixed costs do not show,
#: small enough that its transient copies are a few megabytes.
PART_LINES: Final = 8192


@dataclass(frozen=True, eq=False)
class TablePart:
    """The rows decoded from consecutive lines of a table (maybe none: blank lines, the header).

    ``X`` (n, d) float64, ``labels`` (n,) int8 (-1 unlabelled), ``lines`` (n,)
    the rows' 1-based line numbers; ``line_count`` how many lines the part
    read, and ``bytes_read`` how many bytes of the file are read up to its end.
    """

    X: NDArray[np.float64]
    labels: NDArray[np.int8]
    lines: NDArray[np.int64]
    line_count: int
    bytes_read: int


def line_numbers(positions: Sequence[dict[str, Any]]) -> NDArray[np.int64]:
    """The ``"line"`` of each position, without making the dicts a line source has not made.

    >>> line_numbers([{"line": 3}, {"line": 5}]).tolist(), line_numbers(LinePositions(2, [0]))
    ([3, 5], array([2]))
    """
    if isinstance(positions, LinePositions):
        return positions.line_numbers()
    return np.fromiter(map(itemgetter("line"), positions), np.int64, count=len(positions))


class TableReader:
    """A table file opened for strict reading; use as a context manager, which closes it.

    Raises :class:`~stream_detect.errors.InputError` when the file cannot be
    opened (missing, a directory, not readable) or is no table by its name.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = path.write_text("x,label\\n1,0\\n\\n2,\\n")
    >>> with TableReader(path, "label", None) as reader:
    ...     part = reader.read(3)
    ...     part.X.tolist(), part.labels.tolist(), part.lines.tolist(), part.line_count
    ([[1.0]], [0], [2], 3)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        label_field: str | None,
        features: Sequence[str] | None,
    ) -> None:
        self.source = os.fspath(path)
        fmt = format_for_path(self.source) or "auto"
        # JSON events are kept at no cost (they are parsed anyway) for the fields left out.
        self.decoder = RecordDecoder(
            fmt,
            features,
            label_field=label_field,
            keep_records=fmt != "csv",
            leave_out_rising=False,
            infer_from_most=False,
        )
        self.left_out = LeftOutFields(label_field, check=features is None)
        self._label_field = label_field
        self._inferring = features is None
        try:
            self._handle = open(self.source, "rb")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise InputError(missing_file_text(self.source), source=self.source) from None
        except IsADirectoryError:
            raise InputError("is a directory, not a file", source=self.source) from None
        except PermissionError:
            raise InputError("permission denied", source=self.source) from None
        try:
            refusal = not_a_table(self.source)
            if refusal is not None:
                # Read as text, it would fail at some byte of a "header", saying only "UTF-8".
                raise InputError(refusal, source=self.source)
            self.total_bytes = os.fstat(self._handle.fileno()).st_size
        except BaseException:
            self._handle.close()
            raise
        self._lines = TableLines(self._handle, self.decoder.max_record_bytes)
        # Counted, not asked of the file: a pipe (/dev/stdin, <(...)) cannot tell its position.
        self.bytes_read = 0
        self._lines_before = 0
        self._seen_rows = False
        # A JSON array is looked for up to the first line that is not blank.
        self._array_checked = fmt != "json"

    def __enter__(self) -> TableReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._handle.close()

    @property
    def features(self) -> list[str]:
        """The feature names, once a part has given rows."""
        assert self.decoder.features is not None
        return self.decoder.features

    def read(self, count: int) -> TablePart | None:
        """The rows of the next ``count`` lines (fewer at the end); None once the file has ended.

        Raises :class:`~stream_detect.errors.InputError` at the earliest
        problem of these lines, or at a line too long to be read, after those
        before it.
        """
        source = self.source
        try:
            lines, overlong = self._lines.read(count)
        except OSError as error:
            # A failing disk or network file system (EIO), as `run` words it.
            raise InputError(f"cannot read: {error.strerror}", source=source) from None
        if overlong is not None and not lines:
            raise InputError(overlong, source=source, line=self._lines_before + 1)
        if not lines:
            return None
        first_line = self._lines_before + 1
        if not self._array_checked:
            self._array_checked = refuse_json_array(lines, source, first_line)
        # Where each line starts, and the end of the last: numbers, no dict per line.
        ends = list(accumulate(map(len, lines), initial=self.bytes_read))
        self.bytes_read = ends.pop()
        positions = LinePositions(first_line, ends)
        self._lines_before += len(lines)
        decoder = self.decoder
        if max(map(len, lines)) > decoder.max_record_bytes:
            # A line's length is without its line break, as `run` counts it (and limits it).
            lines = [without_line_break(line) for line in lines]
        try:
            decoded = decoder.decode(RawBatch(lines, positions))
        except InputError as error:
            raise InputError(error.reason, source=source, line=error.line) from None
        # Several rules may be broken in one part; the earliest line is reported.
        problems: list[tuple[int, str]] = []
        if decoded.bad:
            first_bad = decoded.bad[0]
            problems.append((first_bad.position["line"], first_bad.reason))
        if len(decoded):
            problem = self._first_rows_problem(decoded.records, decoded.positions)
            if problem is not None:
                problems.append(problem)
            if decoder.format == "csv":
                assert decoder.columns is not None
                problem = self.left_out.scan_csv(
                    decoder.columns, self.features, lines, first_line, decoded.positions
                )
            else:
                problem = self.left_out.scan_json(self.features, decoded.records, decoded.positions)
            if problem is not None:
                problems.append(problem)
            self._seen_rows = True
            if decoder.format == "csv":
                # The first row's dict was wanted (for its blank cells); no other CSV row's is.
                decoder.keep_records = False
        if problems:
            line, reason = min(problems, key=itemgetter(0))
            raise InputError(reason, source=source, line=line)
        if overlong is not None:
            # The rows before it are fine, and the line itself was not read to its end.
            raise InputError(overlong, source=source, line=self._lines_before + 1)
        return TablePart(
            X=decoded.values,
            labels=decoded.labels,
            lines=line_numbers(decoded.positions),
            line_count=len(lines),
            bytes_read=self.bytes_read,
        )

    def _first_rows_problem(
        self, records: Sequence[dict[str, Any]], positions: Sequence[dict[str, Any]]
    ) -> tuple[int, str] | None:
        """What is wrong with the features the first data row made, before any row was seen."""
        if self._seen_rows or not self._inferring:
            return None
        # Before the fields left out: that one holds a number says less.
        return unfit_inferred_feature(
            [*self.features, *blank_numeric_fields(records[:1])],
            self._label_field,
            positions[0]["line"],
        )

    def finish(self) -> None:
        """At the end of the file: raise if it gave no rows (empty, or a header alone)."""
        if self._seen_rows:
            return
        try:
            # A lone first line held back to decide the format: a CSV header.
            self.decoder.finish()
        except InputError as error:
            raise InputError(error.reason, source=self.source, line=error.line) from None
        if self.decoder.columns is not None:
            raise InputError("the file has a header but no data rows", source=self.source)
        raise InputError("the file is empty", source=self.source)
