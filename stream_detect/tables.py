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

Labels: the first data row decides whether the table is labelled. If it has a
label (0/1/true/false), every row must have one; if it has none (no label
column, an empty cell, null, absent), no row may have one and ``y`` is None.
The label field is never a feature.

Files are read in chunks of rows; the raw text of the whole file is never held.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from stream_detect.errors import ConfigError, InputError
from stream_detect.progress import Progress
from stream_detect.records import RecordDecoder
from stream_detect.sources.base import RawBatch

__all__ = ["DEFAULT_CHUNK_ROWS", "Table", "TableChunk", "iter_table", "load_table", "table_format"]

#: Rows decoded at a time by :func:`iter_table`.
DEFAULT_CHUNK_ROWS: Final = 65536

_FORMAT_BY_EXTENSION: Final = {".csv": "csv", ".jsonl": "json", ".ndjson": "json", ".json": "json"}


@dataclass(frozen=True, eq=False)
class Table:
    """A whole table: features ``X`` (n, d) float64, labels ``y`` (n,) int8 or None.

    ``source`` is the path as the caller gave it, for messages.
    """

    X: NDArray[np.float64]
    y: NDArray[np.int8] | None
    features: list[str]
    source: str


@dataclass(frozen=True, eq=False)
class TableChunk:
    """Consecutive rows of a table, with how far into the file they reach.

    ``bytes_read / total_bytes`` is the fraction of the file read so far,
    for a progress bar.
    """

    X: NDArray[np.float64]
    y: NDArray[np.int8] | None
    features: list[str]
    bytes_read: int
    total_bytes: int


def table_format(path: str | os.PathLike[str]) -> str:
    """Return the decoder format for a file name: ``"csv"``, ``"json"`` or ``"auto"``.

    >>> table_format("train.CSV"), table_format("events.ndjson"), table_format("data.txt")
    ('csv', 'json', 'auto')
    """
    extension = os.path.splitext(os.fspath(path))[1].lower()
    return _FORMAT_BY_EXTENSION.get(extension, "auto")


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
        first data row (leaving out the label), as the stream does.
    chunk_rows
        Lines read per chunk (blank lines and the header included).

    Raises
    ------
    InputError
        At the first problem, naming the file and the 1-based line: a missing
        or empty file, a non-numeric or empty cell, a row with the wrong number
        of columns, invalid JSON, a missing field, NaN or infinity, an invalid
        or missing label.

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
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ConfigError("chunk_rows", chunk_rows, "an integer >= 1")
    source = os.fspath(path)
    fmt = table_format(source)
    decoder = RecordDecoder(fmt, features, label_field=label_field, keep_records=False)
    try:
        handle = open(source, "rb")  # noqa: SIM115 - closed by the with below, in the generator
    except FileNotFoundError:
        raise InputError("no such file", source=source) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", source=source) from None
    except PermissionError:
        raise InputError("permission denied", source=source) from None
    with handle:
        total_bytes = os.fstat(handle.fileno()).st_size
        lines_before = 0
        labelled: bool | None = None
        while True:
            lines = list(islice(handle, chunk_rows))
            if not lines:
                break
            if lines_before == 0 and fmt == "json":
                _refuse_json_array(lines, source)
            positions: list[dict[str, Any]] = [
                {"line": number}
                for number in range(lines_before + 1, lines_before + len(lines) + 1)
            ]
            lines_before += len(lines)
            try:
                decoded = decoder.decode(RawBatch(lines, positions))
            except InputError as error:
                raise InputError(error.reason, source=source, line=error.line) from None
            if decoded.bad:
                first_bad = decoded.bad[0]
                raise InputError(first_bad.reason, source=source, line=first_bad.position["line"])
            if not len(decoded):
                continue
            has_label = decoded.labels >= 0
            if labelled is None:
                labelled = bool(has_label[0])
            if labelled and not has_label.all():
                line = decoded.positions[int(np.argmin(has_label))]["line"]
                raise InputError(
                    f"missing label {label_field!r}; the first row is labelled, so every row "
                    "must be",
                    source=source,
                    line=line,
                )
            if not labelled and has_label.any():
                line = decoded.positions[int(np.argmax(has_label))]["line"]
                raise InputError(
                    f"label {label_field!r} on this row but not on the first row; label every "
                    "row or none",
                    source=source,
                    line=line,
                )
            assert decoder.features is not None
            yield TableChunk(
                X=decoded.values,
                y=decoded.labels if labelled else None,
                features=decoder.features,
                bytes_read=handle.tell(),
                total_bytes=total_bytes,
            )
        if labelled is None:
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
    >>> table.features, table.X.tolist(), table.y.tolist()
    (['x', 'y'], [[1.0, 2.0], [3.0, 4.0]], [0, 1])
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
    y_parts = [chunk.y for chunk in chunks if chunk.y is not None]
    return Table(
        X=np.concatenate([chunk.X for chunk in chunks]),
        y=np.concatenate(y_parts) if y_parts else None,
        features=chunks[0].features,
        source=source,
    )


def _refuse_json_array(lines: list[bytes], source: str) -> None:
    """A ``.json`` file holding one array is a common mix-up; say what to do."""
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped:
            if stripped.startswith(b"["):
                raise InputError(
                    "the file holds a JSON array; expected JSON lines, one object per line "
                    "(convert with: jq -c '.[]')",
                    source=source,
                    line=number,
                )
            return
