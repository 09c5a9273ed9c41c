"""Load a whole table of events (CSV or JSON lines) for the batch commands.

Unlike the stream, a table is strict: the first problem raises
:class:`~stream_detect.errors.InputError` naming the file, the 1-based line and
what is wrong, because a model fitted on half a file, silently, is worse than
no model. Rows are decoded by the same :class:`~stream_detect.records.RecordDecoder`
as the stream, so ``fit`` on a file and ``run`` on the same events agree on
the features and on what a number is.

The format comes from the extension: ``.csv`` is CSV with a header line;
``.jsonl``, ``.ndjson`` and ``.json`` are JSON lines (one object per line);
any other name is sniffed from its first non-blank line (``{`` means JSON
lines). Blank lines are skipped.

Labels follow the rule of every command (:mod:`stream_detect.records.labels`):
1/true an anomaly, 0/false normal, an empty cell, null or an absent field
unlabelled, which any row may be (``-1`` in ``y``). ``y`` is None when no row
has a label. The label field is never a feature, and when the first row decides
the features, none may be named as the label field but for case (``Label`` for
``label``): that is an error rather than the labels fitted as a feature
(:mod:`stream_detect.first_row_features`).
A command that finds no label where such a field is (features given, as
``evaluate``'s are) says so with :func:`~stream_detect.label_names.label_hint`.

Features: when they are not given, the first data row decides them, as in the
stream: its numeric fields, leaving out the label. A JSON field named ``""``
(or blank) holding a number there is an error: a feature needs a name. **A field the first row did
not make a feature must then never hold a number in a later row** (a CSV cell
that parses as a finite number, a JSON number); if one does, that line is an
error, since the first row's empty or text cell would otherwise drop a numeric
column silently (:mod:`stream_detect.left_out_fields` finds such numbers).
Unnamed CSV columns are never features and never checked.
Fields that are neither features nor the label are listed in
``ignored_columns``, so a caller can say what was left out.

Files are read in chunks of rows; the raw text of the whole file is never held,
nor a line longer than a record may be (:mod:`stream_detect.table_lines`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from stream_detect.errors import ConfigError, InputError
from stream_detect.first_row_features import blank_numeric_fields, unfit_inferred_feature
from stream_detect.formats import format_for_path, missing_file_text, not_a_table
from stream_detect.left_out_fields import LeftOutFields
from stream_detect.progress import Progress
from stream_detect.records import RecordDecoder
from stream_detect.sources.base import RawBatch
from stream_detect.table_lines import read_lines, refuse_json_array, without_line_break

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "Table",
    "TableChunk",
    "iter_table",
    "load_table",
]

#: Rows decoded at a time by :func:`iter_table`.
DEFAULT_CHUNK_ROWS: Final = 65536


@dataclass(frozen=True, eq=False)
class Table:
    """A whole table: features ``X`` (n, d) float64, labels ``y`` (n,) int8 or None.

    ``y`` is 1 (anomaly), 0 (normal) or -1 (unlabelled); None when no row has a label.

    ``source`` is the path as the caller gave it, for messages.
    ``ignored_columns`` are the named fields that are neither features nor the
    label, in the order they first appear. ``lines`` (n,) are the rows' 1-based
    line numbers in the file, for messages about a row (None: not known).
    """

    X: NDArray[np.float64]
    y: NDArray[np.int8] | None
    features: list[str]
    source: str
    ignored_columns: list[str] = field(default_factory=list)
    lines: NDArray[np.int64] | None = None


@dataclass(frozen=True, eq=False)
class TableChunk:
    """Consecutive rows of a table, with how far into the file they reach.

    ``bytes_read / total_bytes`` is the fraction of the file read so far,
    for a progress bar. ``ignored_columns`` are the fields seen so far that
    are neither features nor the label (see :class:`Table`); ``lines`` the
    rows' 1-based line numbers in the file.
    """

    X: NDArray[np.float64]
    y: NDArray[np.int8] | None
    features: list[str]
    bytes_read: int
    total_bytes: int
    ignored_columns: list[str] = field(default_factory=list)
    lines: NDArray[np.int64] | None = None


def iter_table(
    path: str | os.PathLike[str],
    label_field: str | None = "label",
    features: Sequence[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[TableChunk]:
    """Yield a table's rows in chunks of at most ``chunk_rows`` rows.

    Parameters
    ----------
    path
        A CSV or JSON-lines file (see the module docstring for the format rules).
    label_field
        The label column or field; None when the table has no labels.
    features
        The feature columns, in order; None takes the numeric fields of the
        first data row (leaving out the label), as the stream does, and then
        no other field may hold a number in a later row.
    chunk_rows
        Lines read per chunk (blank lines and the header included).

    Raises
    ------
    InputError
        At the first problem, naming the file and the 1-based line: a missing,
        unreadable or empty file, a non-numeric or empty cell, a row with the wrong number
        of columns, invalid JSON, a missing field, NaN or infinity, an invalid
        or missing label, a number in a field the first row did not make a feature.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "events.jsonl"
    >>> _ = path.write_text('{"x": 1, "y": 2}\\n{"x": 3, "y": 4}\\n{"x": 5, "y": 6}\\n')
    >>> [chunk.X.tolist() for chunk in iter_table(path, chunk_rows=2)]
    [[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0]]]
    >>> _ = path.write_text('{"x": 1, "y": 2}\\n{"x": 3}\\n')
    >>> list(iter_table(path))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stream_detect.errors.InputError: ...events.jsonl:2: missing feature 'y'
    >>> _ = path.write_text('{"x": 1, "y": null}\\n{"x": 3, "y": 4}\\n')
    >>> list(iter_table(path))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stream_detect.errors.InputError: ...events.jsonl:2: field 'y' holds a number (4) but is not \
a feature: the first data row (line 1), which decides the features, has null there; fix that row \
or choose the features (--features)
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ConfigError("chunk_rows", chunk_rows, "an integer >= 1")
    source = os.fspath(path)
    fmt = format_for_path(source) or "auto"
    # JSON events are kept at no cost (they are parsed anyway) for the fields left out.
    decoder = RecordDecoder(
        fmt,
        features,
        label_field=label_field,
        keep_records=fmt != "csv",
        leave_out_rising=False,
        infer_from_most=False,
    )
    left_out = LeftOutFields(label_field, check=features is None)
    try:
        handle = open(source, "rb")  # noqa: SIM115 - closed by the with below, in the generator
    except FileNotFoundError:
        raise InputError(missing_file_text(source), source=source) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", source=source) from None
    except PermissionError:
        raise InputError("permission denied", source=source) from None
    with handle:
        refusal = not_a_table(source)
        if refusal is not None:
            # Read as text, it would fail at some byte of a "header", saying only "UTF-8".
            raise InputError(refusal, source=source)
        total_bytes = os.fstat(handle.fileno()).st_size
        # Counted, not asked of the file: a pipe (/dev/stdin, <(...)) cannot tell its position.
        bytes_read = 0
        lines_before = 0
        seen_rows = False
        while True:
            try:
                lines, overlong = read_lines(handle, chunk_rows, decoder.max_record_bytes)
            except OSError as error:
                # A failing disk or network file system (EIO), as `run` words it.
                raise InputError(f"cannot read: {error.strerror}", source=source) from None
            if overlong is not None and not lines:
                raise InputError(overlong, source=source, line=lines_before + 1)
            if not lines:
                break
            if lines_before == 0 and fmt == "json":
                refuse_json_array(lines, source)
            positions: list[dict[str, Any]] = [
                {"line": number}
                for number in range(lines_before + 1, lines_before + len(lines) + 1)
            ]
            first_line = lines_before + 1
            lines_before += len(lines)
            bytes_read += sum(map(len, lines))
            if max(map(len, lines)) > decoder.max_record_bytes:
                # A line's length is without its line break, as `run` counts it (and limits it).
                lines = [without_line_break(line) for line in lines]
            try:
                decoded = decoder.decode(RawBatch(lines, positions))
            except InputError as error:
                raise InputError(error.reason, source=source, line=error.line) from None
            if decoder.format == "csv":
                decoder.keep_records = False
            # Several rules may be broken in one chunk; the earliest line is reported.
            problems: list[tuple[int, str]] = []
            if decoded.bad:
                first_bad = decoded.bad[0]
                problems.append((first_bad.position["line"], first_bad.reason))
            if len(decoded):
                assert decoder.features is not None
                if not seen_rows and features is None:
                    # Before the fields left out: that one holds a number says less.
                    problem = unfit_inferred_feature(
                        [*decoder.features, *blank_numeric_fields(decoded.records[:1])],
                        label_field,
                        decoded.positions[0]["line"],
                    )
                    if problem is not None:
                        problems.append(problem)
                if decoder.format == "csv":
                    assert decoder.columns is not None
                    problem = left_out.scan_csv(
                        decoder.columns, decoder.features, lines, first_line, decoded.positions
                    )
                else:
                    problem = left_out.scan_json(
                        decoder.features, decoded.records, decoded.positions
                    )
                if problem is not None:
                    problems.append(problem)
                seen_rows = True
            if problems:
                line, reason = min(problems, key=lambda problem: problem[0])
                raise InputError(reason, source=source, line=line)
            if overlong is not None:
                # The rows before it are fine, and the line itself was not read to its end.
                raise InputError(overlong, source=source, line=lines_before + 1)
            if not len(decoded):
                continue
            assert decoder.features is not None
            yield TableChunk(
                X=decoded.values,
                y=decoded.labels if bool(np.any(decoded.labels >= 0)) else None,
                features=decoder.features,
                bytes_read=bytes_read,
                total_bytes=total_bytes,
                ignored_columns=list(left_out.names),
                lines=np.fromiter(
                    map(itemgetter("line"), decoded.positions), np.int64, count=len(decoded)
                ),
            )
        if not seen_rows:
            try:
                # A lone first line held back to decide the format: a CSV header.
                decoder.finish()
            except InputError as error:
                raise InputError(error.reason, source=source, line=error.line) from None
            if decoder.columns is not None:
                raise InputError("the file has a header but no data rows", source=source)
            raise InputError("the file is empty", source=source)


def load_table(
    path: str | os.PathLike[str],
    label_field: str | None = "label",
    features: Sequence[str] | None = None,
    *,
    progress: bool = False,
) -> Table:
    """Load a whole table; strict, see :func:`iter_table` for the rules and errors.

    With ``progress``, a read that takes more than a second reports bytes
    read on stderr (see :class:`stream_detect.progress.Progress`).

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.csv"
    >>> _ = path.write_text("host,x,y,label\\na,1,2,0\\nb,3,4,1\\n")
    >>> table = load_table(path)
    >>> table.features, table.X.tolist(), table.y.tolist(), table.lines.tolist()
    (['x', 'y'], [[1.0, 2.0], [3.0, 4.0]], [0, 1], [2, 3])
    >>> _ = path.write_text("x,y\\n1,2\\n3\\n")
    >>> load_table(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stream_detect.errors.InputError: ...train.csv:3: expected 2 columns as in the header, got 1
    """
    source = os.fspath(path)
    if progress:
        chunks = []
        with Progress(None, f"reading {source}", unit="bytes") as bar:
            for chunk in iter_table(source, label_field, features):
                bar.total = chunk.total_bytes
                bar.advance_to(chunk.bytes_read)
                chunks.append(chunk)
    else:
        chunks = list(iter_table(source, label_field, features))
    labelled = any(chunk.y is not None for chunk in chunks)
    y_parts = [
        np.full(len(chunk.X), -1, dtype=np.int8) if chunk.y is None else chunk.y for chunk in chunks
    ]
    line_parts = [chunk.lines for chunk in chunks if chunk.lines is not None]
    return Table(
        X=np.concatenate([chunk.X for chunk in chunks]),
        y=np.concatenate(y_parts) if labelled else None,
        features=chunks[0].features,
        source=source,
        ignored_columns=chunks[-1].ignored_columns,
        lines=np.concatenate(line_parts) if len(line_parts) == len(chunks) else None,
    )
