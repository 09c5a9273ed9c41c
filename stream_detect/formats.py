"""Record formats, and the one map from a file name's extension to its format.

Sources use it for a format hint, the table loader to pick its decoder; the
batch tools say with :func:`not_a_table` why a named file is not read, and with
:func:`missing_file_text` that it is not there.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["FORMATS", "format_for_path", "missing_file_text", "not_a_table"]

#: Input formats a decoder accepts: ``auto`` lets the first line that parses decide.
FORMATS: Final = ("json", "csv", "auto")

_FORMAT_BY_EXTENSION: Final = {".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json"}


def format_for_path(path: str | os.PathLike[str]) -> str | None:
    """Return the record format a file name names: ``"csv"``, ``"json"`` or None.

    The extension decides, in any case; other names (``.txt``, none) give None.

    >>> format_for_path("events.jsonl"), format_for_path("train.CSV"), format_for_path("log.txt")
    ('json', 'csv', None)
    """
    extension = os.path.splitext(os.fspath(path))[1].lower()
    return _FORMAT_BY_EXTENSION.get(extension)


#: Extensions of files that hold no lines of text, and what to do with one.
_NOT_TEXT: Final = {
    ".mat": (
        "a MATLAB .mat file",
        "save its arrays as CSV first (scipy.io.loadmat, then numpy.savetxt with a header)",
    ),
    ".npy": ("a NumPy array file", "save it as CSV first (numpy.savetxt with a header)"),
    ".npz": ("a NumPy archive", "save its arrays as CSV first (numpy.savetxt with a header)"),
    ".gz": ("gzip-compressed", "decompress it first (gunzip -k)"),
    ".bz2": ("bzip2-compressed", "decompress it first (bunzip2 -k)"),
    ".xz": ("xz-compressed", "decompress it first (unxz -k)"),
    ".zst": ("zstd-compressed", "decompress it first (unzstd)"),
    ".zip": ("a zip archive", "extract it first (unzip)"),
    ".parquet": ("a Parquet file", "export it as CSV first"),
    ".xlsx": ("a spreadsheet", "save it as CSV first"),
    ".xls": ("a spreadsheet", "save it as CSV first"),
}


def not_a_table(path: str | os.PathLike[str]) -> str | None:
    """Why a file named ``path`` is no CSV or JSON-lines table, by its extension; or None.

    Read as text, such a file fails at some byte of its "header" with a
    message about UTF-8 that does not say what the file is.

    >>> not_a_table("ex8data1.mat")
    'a MATLAB .mat file, not CSV or JSON lines: save its arrays as CSV first \
(scipy.io.loadmat, then numpy.savetxt with a header)'
    >>> not_a_table("events.csv.gz")
    'gzip-compressed, not CSV or JSON lines: decompress it first (gunzip -k)'
    >>> not_a_table("events.csv") is None
    True
    """
    known = _NOT_TEXT.get(os.path.splitext(os.fspath(path))[1].lower())
    if known is None:
        return None
    what, remedy = known
    return f"{what}, not CSV or JSON lines: {remedy}"


def missing_file_text(path: str | os.PathLike[str]) -> str:
    """What a batch tool says of a file argument naming no file: for ``-``, how to read stdin.

    ``fit``, ``evaluate``, ``inspect``, ``replay`` and a model file
    (``--initial-model``) are read by name, so
    ``-`` is a file name there, not standard input as in ``run --source -``;
    ``/dev/stdin`` names standard input as a file, and they read it so.

    >>> missing_file_text("train.csv")
    'no such file'
    >>> missing_file_text("-")
    "no such file ('-' names a file here; for standard input, name /dev/stdin)"
    """
    if os.fspath(path) == "-":
        return "no such file ('-' names a file here; for standard input, name /dev/stdin)"
    return "no such file"
