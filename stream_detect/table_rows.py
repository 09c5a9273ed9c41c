"""A whole table's rows gathered part by part into arrays sized ahead, for ``load_table``.

Joining the parts at the end (``np.concatenate``) holds the table twice at
its peak, and the parts, kept while the next ones are decoded, are strewn
among the decoder's freed buffers: the allocator can hand little of that back.
:class:`TableRows` copies each part into arrays sized from the file (its
length over the bytes per row read so far) and lets the part go, so the peak
is the table and one part. An estimate that falls short grows the arrays by
half at least (one copy, rare for a file of similar rows); rows never filled
are given back when the arrays are cut to their length, and were never
touched before, so the memory never held them.
"""

from __future__ import annotations

from typing import Final, TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = ["TableRows"]

ArrayType = TypeVar("ArrayType", bound=np.generic)

#: Rows made room for, beyond the estimate, when nothing tells how many will come (a pipe).
_FIRST_ROWS: Final = 1 << 16


class TableRows:
    """Rows of ``d`` features, with their labels and line numbers, added in order.

    >>> rows = TableRows(2)
    >>> rows.add(np.ones((3, 2)), np.zeros(3, np.int8), np.arange(2, 5), 30, 90)
    >>> rows.add(np.zeros((1, 2)), np.full(1, -1, np.int8), np.array([6]), 40, 90)
    >>> X, labels, lines = rows.arrays()
    >>> X.shape, labels.tolist(), lines.tolist()
    ((4, 2), [0, 0, 0, -1], [2, 3, 4, 6])
    """

    def __init__(self, d: int) -> None:
        self._X: NDArray[np.float64] = np.empty((0, d), dtype=np.float64)
        self._labels: NDArray[np.int8] = np.empty(0, dtype=np.int8)
        self._lines: NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._count = 0

    def _let_go(self) -> None:
        """Hold empty arrays of their own, none a view of those given out."""
        self._X = np.empty((0, self._X.shape[1]), dtype=np.float64)
        self._labels = np.empty(0, dtype=np.int8)
        self._lines = np.empty(0, dtype=np.int64)
        self._count = 0

    def add(
        self,
        X: NDArray[np.float64],
        labels: NDArray[np.int8],
        lines: NDArray[np.int64],
        bytes_read: int,
        total_bytes: int,
    ) -> None:
        """Add a part's rows; ``bytes_read`` of the file's ``total_bytes`` (0: unknown) are read."""
        start, stop = self._count, self._count + len(X)
        if stop > len(self._X):
            self._grow(stop, bytes_read, total_bytes)
        self._X[start:stop] = X
        self._labels[start:stop] = labels
        self._lines[start:stop] = lines
        self._count = stop

    def _grow(self, needed: int, bytes_read: int, total_bytes: int) -> None:
        if total_bytes > bytes_read > 0:
            # The rest of the file read as the rows so far, and a sixteenth more for the spread.
            expected = needed * total_bytes // bytes_read
            expected += expected // 16
        else:
            expected = max(needed, _FIRST_ROWS)
        size = max(needed, expected, len(self._X) + len(self._X) // 2)
        self._X = _resized(self._X, (size, self._X.shape[1]), self._count)
        self._labels = _resized(self._labels, (size,), self._count)
        self._lines = _resized(self._lines, (size,), self._count)

    def arrays(self) -> tuple[NDArray[np.float64], NDArray[np.int8], NDArray[np.int64]]:
        """The rows, labels and line numbers added, each cut to their number (no copy).

        The object lets go of them, and holds no rows after.
        """
        count = self._count
        X, labels, lines = self._X, self._labels, self._lines
        # No other array may share what resize reallocates.
        self._let_go()
        # In place: the unused end is given back (realloc), the rows are not copied.
        X.resize((count, X.shape[1]), refcheck=False)
        labels.resize((count,), refcheck=False)
        lines.resize((count,), refcheck=False)
        return X, labels, lines


def _resized(array: NDArray[ArrayType], shape: tuple[int, ...], count: int) -> NDArray[ArrayType]:
    """A new array of ``shape`` holding the first ``count`` rows of ``array``."""
    grown = np.empty(shape, dtype=array.dtype)
    grown[:count] = array[:count]
    return grown
