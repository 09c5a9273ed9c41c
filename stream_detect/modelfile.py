"""Model files: a fitted model and its threshold kept as JSON, written atomically, read with checks.

``stream-detect fit`` writes one, ``stream-detect evaluate`` reads one. The file
is data, never code (no pickle)::

    {
      "format": "stream_detect.model", "version": 1,
      "kind": "diagonal",                  # or "full"
      "features": ["latency", "bytes"],
      "transforms": {"bytes": "log:1"},    # feature -> spec; features not named are used as is
      "n": 1000.0,                         # events the statistics were fitted on
      "mean": [...],                       # in transformed units
      "var": [...],                        # diagonal model: population variances (1/m)
      "cov": [[...], ...],                 # full model instead of "var": population covariance
      "variance_floor": 1e-12, "relative_floor": 1e-20,
      "integer_floor": ["errors"],         # integers that varied: variance floored at 1/12
      "unit_exponents": {"seconds": 17},   # tiny features: multiplied by 2**17 before the
                                           # mean and var above (absent when there is none)
      "log_epsilon": -9.31, "epsilon": 9.1e-05,  # null when no labels chose one
      "threshold_method": "exact",         # exact | grid | classic | null
      "validation": {"tp": ..., "f1": ..., ...}  # what the threshold achieved, or null
    }

In ``validation``, a precision, recall or F1 with nothing to divide by is
null, as ``fit`` prints it (files written before say 0.0 there; the block
is kept as it is on reading, never used to score).

``log_epsilon`` is what decisions use (flag when log p(x) < log ε); ``epsilon``
is written for people, and on reading must be exp(log ε) or null, so that an
edit of ``epsilon`` alone is refused rather than ignored. A non-finite log ε is written as
the string ``"-inf"`` or ``"inf"``, since JSON has no infinities.

``integer_floor`` is absent from files written before the integer features'
floor (:mod:`stream_detect.quantisation`): such a model scores with no such floor.

``unit_exponents`` names the features whose first non-zero transformed value
was below 2^-10, each with the ``k`` its values are multiplied by (``2**k``
brings that value into [1, 2); :mod:`stream_detect.feature_units`), so that
their statistics are not hidden by the variance floor; log p(x) and log ε
stay in the events' own units. A file without it (no tiny feature, or
written before the rule) scores every feature in its own units.

The content is :meth:`FittedModel.to_dict`, checked on reading by
:meth:`FittedModel.from_dict` (:mod:`stream_detect.model_dict`).
"""

from __future__ import annotations

import codecs
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from stream_detect.atomic import check_writable_file, write_atomically
from stream_detect.errors import ModelError
from stream_detect.fitted_model import FittedModel
from stream_detect.formats import missing_file_text
from stream_detect.small_files import MODEL_FILE_LIMIT, FileTooLarge, read_at_most

__all__ = ["check_model_path", "load_model", "save_model"]


def check_model_path(path: str | os.PathLike[str]) -> None:
    """Fail now if :func:`save_model` could not write ``path``: no folder, a folder, not a
    file, a folder where no file can be made.

    Raises :class:`ModelError` worded as :func:`save_model` words a failed
    write, so a command can check its ``--out`` before the work.

    >>> check_model_path("/no/such/folder/model.json")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: cannot write model file /no/such/folder/model.json: no such \
folder
    """
    try:
        check_writable_file(path, by_rename=True)
    except OSError as exc:
        raise ModelError(f"cannot write model file {Path(path)}: {exc.strerror}") from exc


def save_model(model: FittedModel, path: str | os.PathLike[str]) -> None:
    """Write ``model`` to ``path`` as JSON, atomically (a temporary file, then a rename).

    :class:`ModelError` names the file when it cannot be written.
    """
    target = Path(path)
    text = json.dumps(model.to_dict(), indent=2, allow_nan=False) + "\n"
    try:
        write_atomically(target, text.encode("utf-8"))
    except OSError as exc:
        raise ModelError(f"cannot write model file {target}: {exc.strerror or exc}") from exc


def load_model(path: str | os.PathLike[str]) -> FittedModel:
    """Read a model written by :func:`save_model`.

    :class:`ModelError` names the file and the problem: missing or unreadable,
    not JSON, not a model, another format version, or inconsistent content.
    """
    source = Path(path)
    try:
        # An editor's byte-order mark is not content: utf-8-sig reads past it.
        text = _read_object_text(source).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ModelError(
            f"model file {source} is not UTF-8 text (at byte {exc.start}); a model file is "
            "the JSON `stream-detect fit --out` writes"
        ) from exc
    except FileTooLarge as exc:
        raise ModelError(f"model file {source} {exc.reason}") from None
    except FileNotFoundError:
        raise ModelError(f"cannot read model file {source}: {missing_file_text(source)}") from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {source}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(
            text,
            parse_constant=_no_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
            object_pairs_hook=_without_repeats,
        )
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"model file {source} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except _NotAModelValue as exc:
        raise ModelError(f"model file {source} holds {exc}") from None
    except RecursionError:
        raise ModelError(
            f"model file {source} is nested too deeply; a model file is the JSON "
            "`stream-detect fit --out` writes"
        ) from None
    try:
        return FittedModel.from_dict(data)
    except ModelError as exc:
        raise ModelError(f"model file {source}: {exc}") from exc


def _read_object_text(source: Path) -> bytes:
    """The bytes of ``source``, read past its first ones only if they may start JSON.

    A device that never ends (``/dev/zero``) or a large binary file given by
    mistake would otherwise be read whole into memory before JSON refused it.
    Raises :class:`ModelError` for such a start (a byte no JSON value starts
    with, after white space and a byte-order mark),
    :class:`~stream_detect.small_files.FileTooLarge` past
    :data:`~stream_detect.small_files.MODEL_FILE_LIMIT` bytes (256 MiB),
    :class:`OSError` as reading does.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.json"
    >>> _ = path.write_bytes(b"\\x00" * 10)
    >>> _read_object_text(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: model file ... is not JSON: it starts with byte 0x00, where \
a model file starts with '{'
    """
    with source.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
        start = head.removeprefix(codecs.BOM_UTF8).lstrip(b" \t\r\n")[:1]
        if start and start not in _JSON_STARTS:
            printable = start.isascii() and start.decode().isprintable()
            shown = repr(start.decode()) if printable else f"byte 0x{start[0]:02x}"
            raise ModelError(
                f"model file {source} is not JSON: it starts with {shown}, "
                "where a model file starts with '{'"
            )
        return read_at_most(handle, MODEL_FILE_LIMIT, str(source), "model file", start=head)


#: Bytes read before the start of a model file is checked.
_HEAD_BYTES = 65536
#: The bytes a JSON value may start with; any other is no JSON, whatever follows.
_JSON_STARTS = frozenset(bytes([byte]) for byte in b'{["-0123456789tfn')


class _NotAModelValue(ValueError):
    """A value of the file that no model holds, found while it is parsed."""


def _no_constant(name: str) -> None:
    """Refuse ``NaN`` and ``Infinity``: Python's reader takes them, JSON has neither.

    >>> json.loads("[NaN]", parse_constant=_no_constant)
    Traceback (most recent call last):
    ...
    stream_detect.modelfile._NotAModelValue: NaN, which is not JSON (a model file writes \
an infinite log_epsilon as "inf" or "-inf")
    """
    raise _NotAModelValue(
        f"{name}, which is not JSON (a model file writes an infinite log_epsilon "
        'as "inf" or "-inf")'
    )


def _without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict; a key given twice is refused, where Python keeps the last.

    A hand edit that adds ``"var"`` again below the one written would
    otherwise be read, or ignored, depending on which comes last.

    >>> json.loads('{"n": 1, "n": 2}', object_pairs_hook=_without_repeats)
    Traceback (most recent call last):
    ...
    stream_detect.modelfile._NotAModelValue: the key 'n' twice in one object
    """
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise _NotAModelValue(f"the key {key!r} twice in one object")
        data[key] = value
    return data


def _bounded_int(text: str) -> int:
    """An integer of the file; one beyond the float range (a model's numbers are floats) is refused.

    Refused before it is converted: Python converts at most 4300 digits, and
    a larger integer would fail later, when it is made a float.

    >>> _bounded_int("300"), _bounded_int("-7")
    (300, -7)
    >>> _bounded_int("1" + "0" * 400)
    Traceback (most recent call last):
    ...
    stream_detect.modelfile._NotAModelValue: an integer of 401 digits, beyond the range of a number
    """
    digits = len(text.lstrip("-"))
    if digits > _MOST_DIGITS or abs(value := int(text)) > sys.float_info.max:
        raise _NotAModelValue(f"an integer of {digits} digits, beyond the range of a number")
    return value


def _finite_float(text: str) -> float:
    """A number of the file as a float; one beyond the float range (``1e400``) is refused.

    >>> _finite_float("2.5e-3")
    0.0025
    >>> _finite_float("-1e400")
    Traceback (most recent call last):
    ...
    stream_detect.modelfile._NotAModelValue: -1e400, beyond the range of a number
    """
    value = float(text)
    if not math.isfinite(value):
        raise _NotAModelValue(f"{text[:40]}, beyond the range of a number")
    return value


#: Digits of the largest integer a float holds (about 1.8e308).
_MOST_DIGITS = 309
