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

Files are read in blocks and decoded a few thousand lines at a time
(:mod:`stream_detect.table_reader`); the raw text of the whole file is never
held, nor a line longer than a record may be (:mod:`stream_detect.table_lines`),
and what a whole table holds beyond its arrays is one such part's decoding.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

import numpy as np
from numpy.typing import NDArray

from stream_detect.errors import ConfigError
from stream_detect.progress import Progress
from stream_detect.table_reader import PART_LINES, TablePart, TableReader
from stream_detect.table_rows import TableRows

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "Table",
    "TableChunk",
    "iter_table",
    "load_table",
]

#: Lines a chunk of :func:`iter_table` is read from, by default.
DEFAULT_CHUNK_ROWS: Final = 65536

ArrayType = TypeVar("ArrayType", bound=np.generic)


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
    with TableReader(path, label_field, features) as reader:
        ended = False
        while not ended:
            # A chunk is read in parts, so that decoding holds copies of a part, not of a chunk.
            parts: list[TablePart] = []
            line_count = 0
            while line_count < chunk_rows:
                part = reader.read(min(PART_LINES, chunk_rows - line_count))
                if part is None:
                    ended = True
                    break
                line_count += part.line_count
                if len(part.X):
                    parts.append(part)
            if not parts:
                continue
            chunk = _chunk(parts, reader)
            # Not held while the caller has the chunk: only the chunk's own arrays are.
            del parts
            yield chunk
        reader.finish()


def _chunk(parts: list[TablePart], reader: TableReader) -> TableChunk:
    """The parts of one chunk, as one."""
    labels = _joined([part.labels for part in parts])
    return TableChunk(
        X=_joined([part.X for part in parts]),
        y=labels if bool(np.any(labels >= 0)) else None,
        features=reader.features,
        bytes_read=parts[-1].bytes_read,
        total_bytes=reader.total_bytes,
        ignored_columns=list(reader.left_out.names),
        lines=_joined([part.lines for part in parts]),
    )


def _joined(arrays: list[NDArray[ArrayType]]) -> NDArray[ArrayType]:
    """The arrays, one after another; one array is itself, not a copy."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


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
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(TableReader(source, label_field, features))
        bar = None
        if progress:
            bar = stack.enter_context(Progress(None, f"reading {source}", unit="bytes"))
            bar.total = reader.total_bytes
        rows: TableRows | None = None
        while (part := reader.read(PART_LINES)) is not None:
            if len(part.X):
                if rows is None:
                    rows = TableRows(part.X.shape[1])
                rows.add(part.X, part.labels, part.lines, part.bytes_read, reader.total_bytes)
            if bar is not None:
                bar.advance_to(part.bytes_read)
            # Let go before the next part is decoded.
            del part
        reader.finish()
        assert rows is not None  # finish() raised if no part had rows
        X, labels, lines = rows.arrays()
        return Table(
            X=X,
            y=labels if bool(np.any(labels >= 0)) else None,
            features=reader.features,
            source=source,
            ignored_columns=list(reader.left_out.names),
            lines=lines,
        )
