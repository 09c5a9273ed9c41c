"""What an array argument of the API may hold: real numbers, as float64, in the shape asked.

Every function of the API that takes feature rows (the :class:`~stream_detect.detector.Detector`,
the running statistics, the classic functions) passes them through
:func:`real_rows` first, so a caller's list, integer, bool or float32 array is
read as the float64 values it holds, while text, complex numbers, dates or a
ragged list are refused in one sentence naming the argument, instead of
failing deep inside numpy or, for complex numbers, losing their imaginary
part in silence. A float64 array is returned as it is (no copy), so the
detector's own batches pass untouched.

>>> real_rows([[1, 2], [3, 4]], "X", 2).dtype
dtype('float64')
>>> real_rows(np.array([[1j, 2.0]]), "X", 2)
Traceback (most recent call last):
...
TypeError: X must hold real numbers, got dtype complex128 (complex numbers)
"""

from __future__ import annotations

import decimal
import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["real_array", "real_rows"]

Array = NDArray[np.float64]

#: numpy dtype kinds read as real numbers: bool (as 0 and 1), integers, floats.
_REAL_KINDS = "biuf"
_KIND_NAMES = {
    "c": "complex numbers",
    "U": "text",
    "S": "bytes",
    "M": "dates",
    "m": "time spans",
    "V": "raw records",
}


def real_array(values: ArrayLike, name: str) -> Array:
    """``values`` as a float64 array of any shape; TypeError or ValueError naming ``name``.

    A float64 array comes back as the same object. A Python number wider
    than float64 (``10**400``) is refused rather than made infinite.

    >>> a = np.zeros(3); real_array(a, "x") is a
    True
    >>> real_array([["1", 2.0]], "X")
    Traceback (most recent call last):
    ...
    TypeError: X must hold real numbers, got dtype <U32 (text)
    """
    if isinstance(values, np.ndarray) and values.dtype == np.float64:
        return values
    try:
        array = np.asarray(values)
    except ValueError as exc:
        # numpy's own words for a ragged nesting of lists ("inhomogeneous shape").
        raise ValueError(f"{name} is not a rectangular array of numbers: {exc}") from None
    kind = array.dtype.kind
    if kind == "O":
        _check_objects(array, name)
    elif kind not in _REAL_KINDS:
        raise TypeError(
            f"{name} must hold real numbers, got dtype {array.dtype} "
            f"({_KIND_NAMES.get(kind, 'not numbers')})"
        )
    try:
        return array.astype(np.float64)
    except OverflowError:
        raise ValueError(
            f"{name} holds a number beyond the float64 range (about 1.8e308)"
        ) from None


def real_rows(values: ArrayLike, name: str, d: int | None = None) -> Array:
    """``values`` as a float64 array of rows ``(m, d)``; ``d`` None accepts any width.

    >>> real_rows([1.0, 2.0], "X")
    Traceback (most recent call last):
    ...
    ValueError: X must be a 2-D array of rows (m, d), got shape (2,)
    >>> real_rows([[1.0, 2.0]], "X", 3)
    Traceback (most recent call last):
    ...
    ValueError: X: expected rows of 3 features, a 2-D array (m, 3), got shape (1, 2)
    """
    array = real_array(values, name)
    if d is None:
        if array.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array of rows (m, d), got shape {array.shape}")
    elif array.ndim != 2 or array.shape[1] != d:
        raise ValueError(
            f"{name}: expected rows of {d} features, a 2-D array (m, {d}), got shape {array.shape}"
        )
    return array


def _check_objects(array: NDArray[Any], name: str) -> None:
    """Refuse an object array holding anything but real numbers (text above all)."""
    for index, value in enumerate(array.flat):
        if isinstance(value, (str, bytes)) or not isinstance(
            value, (numbers.Real, decimal.Decimal)
        ):
            where = tuple(int(i) for i in np.unravel_index(index, array.shape))
            place = "" if not where else f" at {where[0] if len(where) == 1 else where}"
            raise TypeError(
                f"{name} must hold real numbers, got {type(value).__name__} {value!r:.40}{place}"
            )
