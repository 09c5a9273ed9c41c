"""Skewness of feature values: of an array at once, or of data too large to hold.

:func:`skewness` is the population skewness m3 / m2^1.5 of an array, as
``scipy.stats.skew(bias=True)`` but 0.0 for constant values and without
overflow for values near the float limit. :class:`ThirdMoments` gives the
exact same statistic per feature one chunk at a time, merging chunks with the
pairwise update formulas. Pure numpy, no I/O.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["FLOAT_EPS", "LARGE_MAGNITUDE", "ThirdMoments", "skewness"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Machine epsilon of float64: a spread within this share of the mean is no spread.
FLOAT_EPS = float(np.finfo(np.float64).eps)
#: Above this magnitude, sums and differences of values may overflow float64.
LARGE_MAGNITUDE = 1e300


def skewness(x: ArrayLike) -> float:
    """Population skewness m3 / m2^1.5 of the values of ``x``, as ``scipy.stats.skew(bias=True)``.

    NaN for no values or when a value is not finite; 0.0 for constant values,
    which are symmetric (SciPy gives NaN there).

    >>> skewness([1.0, 2.0, 3.0]), skewness([5.0, 5.0])
    (0.0, 0.0)
    >>> round(skewness([0.0, 0.0, 0.0, 1.0]), 6)
    1.154701
    """
    values = np.asarray(x, dtype=np.float64).ravel()
    if values.size == 0 or not np.isfinite(values).all():
        return math.nan
    magnitude = float(np.max(np.abs(values)))
    if magnitude > LARGE_MAGNITUDE:
        # The mean and the deviations of values near ±1e308 overflow. Skewness does not
        # change with the scale, and a power of two scales exactly, so nothing else changes.
        values = np.ldexp(values, -math.frexp(magnitude)[1])
    mean = float(values.mean())
    dev = values - mean
    # Scaled deviations neither overflow when cubed nor underflow when squared.
    scale = float(np.max(np.abs(dev)))
    if scale == 0.0 or values.min() == values.max():
        # Constant: the rounding of the mean may leave deviations, but no shape.
        return 0.0
    z = dev / scale
    m2 = float(np.mean(z * z))
    m3 = float(np.mean(z * z * z))
    # A spread within rounding noise of the mean is no spread (SciPy's test too).
    if scale * math.sqrt(m2) <= FLOAT_EPS * abs(mean):
        return 0.0
    return m3 / (m2 * math.sqrt(m2))


class ThirdMoments:
    """Per-feature count, mean, m2, m3, min and max of the finite values seen; mergeable.

    ``m2`` and ``m3`` are sums of squared and cubed deviations from the mean.
    :meth:`learn` takes one chunk at a time and merges it with the formulas of
    Chan et al. and Pébay (2008), so the result equals the moments of all the
    chunks concatenated, whatever their sizes. Non-finite values (NaN, inf) are
    left out and counted in ``non_finite``; ``n`` is therefore per feature.
    Deviations beyond about 1e100 overflow the third moment: the skewness is
    then NaN, without a warning.

    >>> m = ThirdMoments(1).learn([[0.0], [0.0]]).learn([[0.0], [1.0]])
    >>> m.n.tolist(), m.mean.tolist(), m.var.tolist(), m.skewness.round(6).tolist()
    ([4.0], [0.25], [0.1875], [1.154701])
    """

    def __init__(self, d: int) -> None:
        if d < 1:
            raise ValueError(f"d must be >= 1 feature, got {d}")
        self.n: Array = np.zeros(d)
        self.mean: Array = np.zeros(d)
        self.m2: Array = np.zeros(d)
        self.m3: Array = np.zeros(d)
        self.non_finite: NDArray[np.int64] = np.zeros(d, dtype=np.int64)
        self.min: Array = np.full(d, np.inf)
        self.max: Array = np.full(d, -np.inf)

    @property
    def d(self) -> int:
        """Number of features."""
        return int(self.n.shape[0])

    @property
    def var(self) -> Array:
        """Population variance m2 / n per feature (NaN where nothing was seen)."""
        out: Array = np.divide(self.m2, self.n, out=np.full(self.d, np.nan), where=self.n > 0)
        return out

    @property
    def skewness(self) -> Array:
        """Population skewness per feature, as :func:`skewness` (NaN where nothing was seen)."""
        out = np.full(self.d, np.nan)
        var = self.var
        seen = self.n > 0
        # Equal extremes: constant, whatever the rounding of the mean left in m2.
        # sqrt(var) <= eps |mean| is var <= (eps mean)², without squaring a huge mean.
        flat = seen & ((self.min == self.max) | (np.sqrt(var) <= FLOAT_EPS * np.abs(self.mean)))
        shaped = seen & ~flat
        out[flat] = 0.0
        # Moments of values near ±1e308 overflow to inf: the skewness is then NaN, quietly.
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            third = self.m3[shaped] / self.n[shaped]
            out[shaped] = third / var[shaped] / np.sqrt(var[shaped])
        return out

    def copy(self) -> ThirdMoments:
        """An independent copy."""
        other = ThirdMoments(self.d)
        other.n, other.mean = self.n.copy(), self.mean.copy()
        other.m2, other.m3 = self.m2.copy(), self.m3.copy()
        other.non_finite = self.non_finite.copy()
        other.min, other.max = self.min.copy(), self.max.copy()
        return other

    def learn(self, X: ArrayLike) -> ThirdMoments:
        """Add the rows of ``X`` (shape ``(rows, d)``); return ``self``."""
        values = np.asarray(X, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != self.d:
            raise ValueError(f"expected rows of {self.d} features, got shape {values.shape}")
        if values.shape[0] == 0:
            return self
        finite = np.isfinite(values)
        with np.errstate(over="ignore", invalid="ignore"):
            batch = self._batch(values, finite)
            merged = self.merge(batch)
        self.n, self.mean, self.m2, self.m3 = merged.n, merged.mean, merged.m2, merged.m3
        self.non_finite = merged.non_finite
        self.min, self.max = merged.min, merged.max
        return self

    def _batch(self, values: Array, finite: BoolArray) -> ThirdMoments:
        """The moments of one chunk, around its own mean."""
        batch = ThirdMoments(self.d)
        batch.non_finite = (~finite).sum(axis=0).astype(np.int64)
        batch.n = finite.sum(axis=0).astype(np.float64)
        total = np.where(finite, values, 0.0).sum(axis=0)
        np.divide(total, batch.n, out=batch.mean, where=batch.n > 0)
        dev = np.where(finite, values - batch.mean, 0.0)
        square = dev * dev
        batch.m2 = square.sum(axis=0)
        batch.m3 = (square * dev).sum(axis=0)
        batch.min = np.min(values, axis=0, where=finite, initial=np.inf)
        batch.max = np.max(values, axis=0, where=finite, initial=-np.inf)
        return batch

    def merge(self, other: ThirdMoments) -> ThirdMoments:
        """The moments of both value sets together; neither input changes.

        >>> a = ThirdMoments(1).learn([[1.0], [2.0]])
        >>> b = ThirdMoments(1).learn([[9.0]])
        >>> bool(np.isclose(a.merge(b).skewness[0], skewness([1.0, 2.0, 9.0])))
        True
        """
        if other.d != self.d:
            raise ValueError(f"cannot merge moments of {self.d} and {other.d} features")
        out = ThirdMoments(self.d)
        with np.errstate(over="ignore", invalid="ignore"):
            self._merge_into(other, out)
        return out

    def _merge_into(self, other: ThirdMoments, out: ThirdMoments) -> None:
        n_a, n_b = self.n, other.n
        n = n_a + n_b
        safe_n = np.where(n > 0, n, 1.0)
        delta = other.mean - self.mean
        out.n = n
        out.mean = self.mean + delta * (n_b / safe_n)
        out.m2 = self.m2 + other.m2 + delta * delta * (n_a * n_b / safe_n)
        out.m3 = (
            self.m3
            + other.m3
            + delta**3 * (n_a * n_b * (n_a - n_b) / (safe_n * safe_n))
            + 3.0 * delta * (n_a * other.m2 - n_b * self.m2) / safe_n
        )
        out.non_finite = self.non_finite + other.non_finite
        out.min = np.minimum(self.min, other.min)
        out.max = np.maximum(self.max, other.max)
