"""Keyed diagonal models saved as columns: one list per statistic, one entry per key.

A checkpoint of many keys' diagonal models (:class:`~stream_detect.keyed_arrays.KeyedArrays`)
saves them not as one table per key but as a table of columns, least
recently seen key first::

    {"layout": "columns", "kind": "diagonal", "half_life": null,
     "keys": ["a", "b"], "n": [2.0, 1.0], "mean": [[1.5], [0.0]],
     "second": [[0.5], [0.0]], "learned": [2, 1], "run_length": [0, 0],
     "pending": {"1": [[9.0]]}}

``pending`` holds the rare pending deviations, by the index of their key.
Writing the columns is a few array copies that orjson serialises directly,
and reading them back is a few array conversions, where one table per key
cost a Python dict per key each way. :func:`decode` checks the columns by
the rules :mod:`stream_detect.checkpoint_rules` holds a saved model to, a
column at a time, and refuses in one sentence naming the column, the entry
and the rule:

>>> saved = encode(Columns(["a"], np.array([1.0]), np.array([[np.inf]]), np.zeros((1, 1)),
...     np.array([1]), np.array([0]), {}), None, arrays=False)
>>> decode(saved, 1)
Traceback (most recent call last):
...
stream_detect.errors.ModelError: models.mean[0][0] is inf, expected a finite number of magnitude \
at most 1e154
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from itertools import chain
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.field_checks import (
    MAX_COUNT,
    MAX_MEAN_MAGNITUDE,
    check_count,
    check_vector,
    is_number,
    refuse,
    required,
)

__all__ = ["LAYOUT", "Columns", "decode", "encode", "entries"]

Array = NDArray[np.float64]
Counts = NDArray[np.int64]

#: The value of ``layout`` that marks models saved as columns.
LAYOUT = "columns"
_NUMBERS = frozenset({int, float})
#: The columns a saved table holds, and what each is, in words.
_COLUMNS = {
    "keys": "a list of keys (strings)",
    "n": "a list of counts, one per key",
    "mean": "a list of feature vectors, one per key",
    "second": "a list of feature vectors, one per key",
    "learned": "a list of integers >= 0, one per key",
    "run_length": "a list of integers >= 0, one per key",
    "pending": "a table of pending feature vectors by key index",
}


@dataclass(frozen=True)
class Columns:
    """Keys' diagonal statistics, row ``i`` for ``keys[i]``, least recently seen first.

    ``pending`` maps a row to its key's pending deviations (absent: none).
    """

    keys: list[str]
    n: Array
    mean: Array
    second: Array
    learned: Counts
    run_length: Counts
    pending: dict[int, list[Array]]

    def without_oldest(self, count: int) -> Columns:
        """These columns without their first ``count`` rows."""
        pending = {row - count: rows for row, rows in self.pending.items() if row >= count}
        return replace(
            self,
            keys=self.keys[count:],
            n=self.n[count:],
            mean=self.mean[count:],
            second=self.second[count:],
            learned=self.learned[count:],
            run_length=self.run_length[count:],
            pending=pending,
        )


def encode(columns: Columns, half_life: float | None, *, arrays: bool) -> dict[str, Any]:
    """``columns`` as the saved table, its columns numpy arrays if ``arrays`` (for orjson's
    OPT_SERIALIZE_NUMPY), else lists, JSON-able by any encoder. Either way the floats read
    back as the same doubles.
    """

    def column(values: NDArray[Any]) -> Any:
        return values if arrays else values.tolist()

    return {
        "layout": LAYOUT,
        "kind": "diagonal",
        "half_life": half_life,
        "keys": columns.keys,
        "n": column(columns.n),
        "mean": column(columns.mean),
        "second": column(columns.second),
        "learned": column(columns.learned),
        "run_length": column(columns.run_length),
        "pending": {
            str(row): [p.tolist() for p in rows] for row, rows in columns.pending.items() if rows
        },
    }


def entries(columns: Columns, half_life: float | None) -> list[dict[str, Any]]:
    """The models of ``columns`` as a list of one table per key: the layout of other models.

    >>> one = Columns(["a"], np.array([2.0]), np.array([[1.5]]), np.array([[0.5]]),
    ...     np.array([2]), np.array([0]), {})
    >>> entries(one, None)[0]["state"]["stats"]
    {'kind': 'diagonal', 'half_life': None, 'n': 2.0, 'mean': [1.5], 'second': [0.5]}
    """
    rows = zip(
        columns.keys,
        columns.n.tolist(),
        columns.mean.tolist(),
        columns.second.tolist(),
        columns.learned.tolist(),
        columns.run_length.tolist(),
        strict=True,
    )
    return [
        {
            "key": key,
            "state": {
                "type": "gaussian",
                "stats": {
                    "kind": "diagonal",
                    "half_life": half_life,
                    "n": n,
                    "mean": mean,
                    "second": second,
                },
            },
            "learned": learned,
            "run_length": run_length,
            "pending": [p.tolist() for p in columns.pending.get(row, [])],
        }
        for row, (key, n, mean, second, learned, run_length) in enumerate(rows)
    ]


def decode(models: dict[str, Any], d: int) -> Columns:
    """The columns of a saved table of ``d``-feature models, every value checked first.

    Raises
    ------
    ModelError
        One sentence naming the column, the entry and the rule it breaks: an
        unknown layout or kind, a column of the wrong type or length, a key
        that is no string or is named twice, a count or second moment below
        zero, a NaN or infinity, a mean whose square overflows, a pending
        deviation of other than ``d`` features.
    """
    layout = models.get("layout")
    if layout != LAYOUT:
        refuse("models.layout", layout, f"{LAYOUT!r} (or models saved as a list)")
    kind = models.get("kind")
    if kind != "diagonal":
        refuse("models.kind", kind, "'diagonal': columns hold keyed diagonal models only")
    half_life = models.get("half_life")
    if half_life is not None and not (is_number(half_life) and 0 < half_life < math.inf):
        refuse("models.half_life", half_life, "a positive number of events or null")
    for name, expected in _COLUMNS.items():
        required(models, name, "models", expected)
    keys = _keys(models["keys"])
    count = len(keys)
    n = _numbers("n", models["n"], count, None)
    counted = f"a finite count >= 0 and at most {MAX_COUNT}"
    _refuse_outside("n", n, models["n"], 0, MAX_COUNT, counted)
    mean = _numbers("mean", models["mean"], count, d)
    limit = f"a finite number of magnitude at most {MAX_MEAN_MAGNITUDE:g}"
    _refuse_outside("mean", mean, models["mean"], -MAX_MEAN_MAGNITUDE, MAX_MEAN_MAGNITUDE, limit)
    second = _numbers("second", models["second"], count, d)
    expected = "a finite sum of squared deviations >= 0"
    _refuse_outside("second", second, models["second"], 0, math.inf, expected)
    return Columns(
        keys,
        n,
        mean,
        second,
        _counts("learned", models["learned"], count),
        _counts("run_length", models["run_length"], count),
        _pending(models["pending"], count, d),
    )


def _keys(keys: Any) -> list[str]:
    """The saved keys: strings, each once."""
    if not isinstance(keys, list):
        refuse("models.keys", keys, "a list of keys (strings)")
    if not set(map(type, keys)) <= {str}:
        at = next(i for i, key in enumerate(keys) if not isinstance(key, str))
        refuse(f"models.keys[{at}]", keys[at], "a string")
    if len(set(keys)) != len(keys):
        # Restoring a key twice would silently replace its first model.
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            earlier = first.setdefault(key, i)
            if earlier != i:
                unique = f"a key no other model has (models.keys[{earlier}])"
                refuse(f"models.keys[{i}]", key, unique)
    return keys


def _numbers(name: str, values: Any, count: int, width: int | None) -> Array:
    """``values`` as doubles: ``count`` numbers, or ``count`` rows of ``width``; else refused."""
    where = f"models.{name}"
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        values = values.tolist()  # handed over in memory: checked as if read back
    shape = f"{count} numbers" if width is None else f"{count} rows of {width} numbers"
    if not isinstance(values, list) or len(values) != count:
        refuse(where, values, f"a list of {shape}, one per key")
    flat: Any = values
    if width is not None:
        if not set(map(type, values)) <= {list} or set(map(len, values)) - {width}:
            at = next(i for i, row in enumerate(values) if not _is_row(row, width))
            refuse(f"{where}[{at}]", values[at], f"a list of {width} numbers")
        flat = chain.from_iterable(values)
    if not set(map(type, flat)) <= _NUMBERS:
        index, value = _first(values, width, lambda value: type(value) not in _NUMBERS)
        refuse(f"{where}{index}", value, "a number")
    try:
        array = np.array(values, dtype=np.float64)
    except OverflowError:
        index, value = _first(values, width, lambda value: abs(value) > 1.8e308)
        refuse(f"{where}{index}", value, "a finite number")
    return array.reshape(count) if width is None else array.reshape(count, width)


def _is_row(row: Any, width: int) -> bool:
    return isinstance(row, list) and len(row) == width


def _refuse_outside(
    name: str, array: Array, values: Any, low: float, high: float, expected: str
) -> None:
    """Refuse the first entry of ``array`` that is NaN, infinite, or outside [low, high]."""
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(array) | (array < low) | (array > high)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        value = values.tolist() if isinstance(values, np.ndarray) else values
        for i in at:
            value = value[i]
        refuse(f"models.{name}{''.join(f'[{i}]' for i in at)}", value, expected)


def _counts(name: str, values: Any, count: int) -> Counts:
    """``values`` as ``count`` integers from 0 to :data:`MAX_COUNT`; else refused."""
    where = f"models.{name}"
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        values = values.tolist()
    if not isinstance(values, list) or len(values) != count:
        refuse(where, values, f"a list of {count} integers >= 0, one per key")
    try:
        array = np.array(values, dtype=np.int64) if set(map(type, values)) <= {int} else None
    except OverflowError:
        array = None
    if array is None or (array < 0).any():
        for i, value in enumerate(values):
            check_count(f"{where}[{i}]", value)
    assert array is not None
    return array


def _pending(pending: Any, count: int, d: int) -> dict[int, list[Array]]:
    """The pending deviations by row: rows of ``d`` numbers under the index of a key."""
    if not isinstance(pending, dict):
        refuse("models.pending", pending, "a table of pending feature vectors by key index")
    held: dict[int, list[Array]] = {}
    for index, rows in pending.items():
        if not (isinstance(index, str) and index.isdecimal() and str(int(index)) == index):
            refuse("models.pending", f"a field {index!r}", "fields named by key indexes")
        row = int(index)
        if row >= count:
            below = f"fields named by key indexes below {count}"
            refuse("models.pending", f"a field {index!r}", below)
        where = f"models.pending[{index!r}]"
        if not isinstance(rows, list):
            refuse(where, rows, f"a list of feature vectors of {d} numbers")
        for j, vector in enumerate(rows):
            check_vector(f"{where}[{j}]", vector, d, limit=math.inf)
        if rows:
            held[row] = [np.asarray(vector, dtype=np.float64) for vector in rows]
    return held


def _first(values: list[Any], width: int | None, wrong: Any) -> tuple[str, Any]:
    """The index (as ``[i]`` or ``[i][j]``) and value of the first entry ``wrong`` holds for."""
    if width is None:
        at = next(i for i, value in enumerate(values) if wrong(value))
        return f"[{at}]", values[at]
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            if wrong(value):
                return f"[{i}][{j}]", value
    raise AssertionError("no such entry")
