"""Skewness of feature values: of an array at once, or of data too large to hold.

:func:`skewness` is the population skewness m3 / m2^1.5 of an array, as
``scipy.stats.skew(bias=True)`` but 0.0 for constant values and without
overflow or underflow for values near either float limit. :class:`ThirdMoments`
gives the exact same statistic per feature one chunk at a time, merging chunks
with the pairwise update formulas. Pure numpy, no I/O.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["FLOAT_EPS", "LARGE_MAGNITUDE", "ThirdMoments", "lost_variance", "skewness"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Machine epsilon of float64: a spread within this share of the mean is no spread.
FLOAT_EPS = float(np.finfo(np.float64).eps)
#: Above this magnitude, sums and differences of values may overflow float64.
LARGE_MAGNITUDE = 1e300
#: The smallest normal double: a variance below it has lost its digits.
_SMALLEST_NORMAL = float(np.finfo(np.float64).tiny)


def lost_variance(var: Array, varies: BoolArray) -> BoolArray:
    """Where a variance ``var`` of values that differ (``varies``) is below the smallest
    normal double: its digits are lost (0 would call the feature constant), so it is
    shown as not known (``n/a``, null), by ``inspect`` and ``fit`` alike.

    >>> lost_variance(np.array([0.0, 0.0, 2.0]), np.array([True, False, True])).tolist()
    [True, False, False]
    """
    lost: BoolArray = (var < _SMALLEST_NORMAL) & varies
    return lost


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

    The moments are kept on each feature's values divided by a power of two
    near their largest magnitude, so the sums neither underflow (values below
    about 1e-154, whose squares leave the doubles) nor overflow (above about
    1e100, whose cubes do): the skewness, which does not change with the
    scale, is a number for any finite values. A power of two scales exactly,
    so values in between give the same moments as unscaled sums would.

    >>> m = ThirdMoments(1).learn([[0.0], [0.0]]).learn([[0.0], [1.0]])
    >>> m.n.tolist(), m.mean.tolist(), m.var.tolist(), m.skewness.round(6).tolist()
    ([4.0], [0.25], [0.1875], [1.154701])
    >>> tiny = ThirdMoments(1).learn([[0.0], [0.0], [0.0], [1e-300]])
    >>> tiny.skewness.round(6).tolist(), tiny.var.tolist()
    ([1.154701], [nan])
    """

    def __init__(self, d: int) -> None:
        if d < 1:
            raise ValueError(f"d must be >= 1 feature, got {d}")
        self.n: Array = np.zeros(d)
        self.non_finite: NDArray[np.int64] = np.zeros(d, dtype=np.int64)
        self.min: Array = np.full(d, np.inf)
        self.max: Array = np.full(d, -np.inf)
        # The moments of the values times 2**-exponent, per feature.
        self._exponent: NDArray[np.int64] = np.zeros(d, dtype=np.int64)
        self._mean: Array = np.zeros(d)
        self._m2: Array = np.zeros(d)
        self._m3: Array = np.zeros(d)

    @property
    def d(self) -> int:
        """Number of features."""
        return int(self.n.shape[0])

    @property
    def mean(self) -> Array:
        """Mean per feature (0 where nothing was seen)."""
        out: Array = np.ldexp(self._mean, self._exponent)
        return out

    @property
    def m2(self) -> Array:
        """Sum of squared deviations per feature (0 or inf where a double cannot hold it)."""
        with np.errstate(over="ignore", under="ignore"):
            out: Array = np.ldexp(self._m2, 2 * self._exponent)
        return out

    @property
    def m3(self) -> Array:
        """Sum of cubed deviations per feature (0 or ±inf where a double cannot hold it)."""
        with np.errstate(over="ignore", under="ignore"):
            out: Array = np.ldexp(self._m3, 3 * self._exponent)
        return out

    @property
    def var(self) -> Array:
        """Population variance m2 / n per feature.

        NaN where nothing was seen, and where values that differ have a
        variance below the smallest normal double (values below about
        1e-154): 0 would call them constant. inf where it passes the largest.
        """
        out: Array = np.full(self.d, np.nan)
        seen = self.n > 0
        with np.errstate(over="ignore", under="ignore"):
            out[seen] = np.ldexp(self._m2[seen] / self.n[seen], 2 * self._exponent[seen])
        out[seen & lost_variance(out, (self._m2 > 0.0) & (self.min != self.max))] = np.nan
        return out

    @property
    def skewness(self) -> Array:
        """Population skewness per feature, as :func:`skewness` (NaN where nothing was seen)."""
        out = np.full(self.d, np.nan)
        seen = self.n > 0
        # Of the scaled values: the skewness does not change with the scale.
        var = np.divide(self._m2, self.n, out=np.zeros(self.d), where=seen)
        # Equal extremes: constant, whatever the rounding of the mean left in m2.
        # sqrt(var) <= eps |mean| is var <= (eps mean)², without squaring the mean.
        flat = seen & ((self.min == self.max) | (np.sqrt(var) <= FLOAT_EPS * np.abs(self._mean)))
        shaped = seen & ~flat
        out[flat] = 0.0
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            third = self._m3[shaped] / self.n[shaped]
            out[shaped] = third / var[shaped] / np.sqrt(var[shaped])
        return out

    def copy(self) -> ThirdMoments:
        """An independent copy."""
        other = ThirdMoments(self.d)
        other.n, other.non_finite = self.n.copy(), self.non_finite.copy()
        other.min, other.max = self.min.copy(), self.max.copy()
        other._exponent, other._mean = self._exponent.copy(), self._mean.copy()
        other._m2, other._m3 = self._m2.copy(), self._m3.copy()
        return other

    def learn(self, X: ArrayLike) -> ThirdMoments:
        """Add the rows of ``X`` (shape ``(rows, d)``); return ``self``."""
        values = np.asarray(X, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != self.d:
            raise ValueError(f"expected rows of {self.d} features, got shape {values.shape}")
        if values.shape[0] == 0:
            return self
        finite = np.isfinite(values)
        merged = self.merge(self._batch(values, finite))
        self.n, self.non_finite = merged.n, merged.non_finite
        self.min, self.max = merged.min, merged.max
        self._exponent, self._mean = merged._exponent, merged._mean
        self._m2, self._m3 = merged._m2, merged._m3
        return self

    def _batch(self, values: Array, finite: BoolArray) -> ThirdMoments:
        """The moments of one chunk, around its own mean, scaled by its largest magnitude."""
        batch = ThirdMoments(self.d)
        batch.non_finite = (~finite).sum(axis=0).astype(np.int64)
        batch.n = finite.sum(axis=0).astype(np.float64)
        batch.min = np.min(values, axis=0, where=finite, initial=np.inf)
        batch.max = np.max(values, axis=0, where=finite, initial=-np.inf)
        magnitude = np.maximum(
            np.abs(batch.min), np.abs(batch.max), where=batch.n > 0, out=np.zeros(self.d)
        )
        batch._exponent = np.frexp(magnitude)[1].astype(np.int64)
        # One feature per row: numpy sums along a contiguous axis pairwise (error about
        # log n · eps), but down the columns of rows one row after another (about n · eps),
        # which over a 65,536-row chunk put 1e-14 of a mean of 1e6 into the deviations of
        # a feature whose spread is 3, and 1e-6 into its skewness.
        dropped = np.ascontiguousarray(~finite.T)
        # In place from here: a chunk of many features is large, and one copy is enough.
        dev = values.T.copy(order="C")
        np.ldexp(dev, -batch._exponent[:, None], out=dev)
        dev[dropped] = 0.0
        seen = batch.n > 0
        np.divide(dev.sum(axis=1), batch.n, out=batch._mean, where=seen)
        dev -= batch._mean[:, None]
        dev[dropped] = 0.0
        # The corrected two-pass algorithm: the deviations' own mean is the mean's rounding.
        residual = np.divide(dev.sum(axis=1), batch.n, out=np.zeros(self.d), where=seen)
        batch._mean += residual
        dev -= residual[:, None]
        dev[dropped] = 0.0
        square = dev * dev
        batch._m2 = square.sum(axis=1)
        square *= dev
        batch._m3 = square.sum(axis=1)
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
        # Both on the larger scale (a side with nothing seen takes the other's).
        exponent = np.where(
            self.n == 0,
            other._exponent,
            np.where(other.n == 0, self._exponent, np.maximum(self._exponent, other._exponent)),
        )
        # The smaller side's sums may lose what lies below 2**-1074 of the larger's: nothing.
        with np.errstate(under="ignore"):
            mine, theirs = self._scaled_to(exponent), other._scaled_to(exponent)
        out._exponent = exponent
        out._merge_into(mine, theirs)
        out.non_finite = self.non_finite + other.non_finite
        out.min = np.minimum(self.min, other.min)
        out.max = np.maximum(self.max, other.max)
        return out

    def _scaled_to(self, exponent: NDArray[np.int64]) -> tuple[Array, Array, Array, Array]:
        """Count, mean, m2 and m3 of the values times 2**-exponent."""
        shift = self._exponent - exponent
        return (
            self.n,
            np.ldexp(self._mean, shift),
            np.ldexp(self._m2, 2 * shift),
            np.ldexp(self._m3, 3 * shift),
        )

    def _merge_into(
        self, mine: tuple[Array, Array, Array, Array], theirs: tuple[Array, Array, Array, Array]
    ) -> None:
        """Set this state's scaled moments to those of both sides (Chan et al., Pébay)."""
        n_a, mean_a, m2_a, m3_a = mine
        n_b, mean_b, m2_b, m3_b = theirs
        n = n_a + n_b
        safe_n = np.where(n > 0, n, 1.0)
        delta = mean_b - mean_a
        self.n = n
        self._mean = mean_a + delta * (n_b / safe_n)
        self._m2 = m2_a + m2_b + delta * delta * (n_a * n_b / safe_n)
        self._m3 = (
            m3_a
            + m3_b
            + delta**3 * (n_a * n_b * (n_a - n_b) / (safe_n * safe_n))
            + 3.0 * delta * (n_a * m2_b - n_b * m2_a) / safe_n
        )
