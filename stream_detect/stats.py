"""Running moments: Welford updates, Chan merges and the exact prequential batch.

Two statistics share one algebra and differ only in their second moment:

* :class:`RunningMoments` keeps, per feature, the count ``n``, the ``mean``
  and ``m2`` (the sum of squared deviations from the mean) — the diagonal model.
* :class:`RunningCovariance` keeps the full co-moment matrix instead — the
  full-covariance model.

Both support exponential forgetting with a half-life counted in *learned*
events: before each event is learned, the weight of everything learned before
it is multiplied by ``0.5 ** (1 / half_life)``. With no half-life every event
weighs 1 and the statistics are the plain population moments.

:meth:`RunningMoments.prequential` answers the question the detector asks of a
micro-batch: *what were the statistics just before each row*, given which rows
are learned, exactly as the one-event-at-a-time Welford loop would, from prefix
sums (:mod:`stream_detect.prequential`).

Rows are read by :func:`~stream_detect.real_arrays.real_rows` (any real dtype;
a wrong shape, text or complex numbers raise naming the argument). A NaN or
infinite value is learned as numpy's mean would take it: the statistics it
enters become NaN. The detector refuses such rows before any model sees them
(:mod:`stream_detect.admission`).
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

import numpy as np
from numpy.typing import NDArray

from stream_detect.errors import ModelError
from stream_detect.prequential import Prefix, exclusive_cumsum, prefix_statistics
from stream_detect.real_arrays import real_array, real_rows

__all__ = [
    "RunningCovariance",
    "RunningMoments",
    "decay_factor",
]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
M = TypeVar("M", bound="_Moments")


def decay_factor(half_life: float | None) -> float:
    """Weight kept per learned event for a half-life in events (1.0: no forgetting).

    >>> decay_factor(None), decay_factor(1.0)
    (1.0, 0.5)
    """
    if half_life is None:
        return 1.0
    if isinstance(half_life, bool) or not isinstance(half_life, (int, float, np.number)):
        raise TypeError(f"half_life must be a number of events or None, got {half_life!r}")
    decay = 0.5 ** (1.0 / half_life) if half_life > 0 else 0.0
    if not decay > 0:
        raise ValueError(f"half_life must be a positive number of events, got {half_life!r}")
    return float(decay)


class _Moments(ABC):
    """Count, mean and a second moment, with Welford updates and Chan merges."""

    kind: ClassVar[str]

    def __init__(self, d: int, half_life: float | None = None) -> None:
        try:
            if isinstance(d, bool):
                raise TypeError
            d = operator.index(d)
        except TypeError:
            raise TypeError(f"d must be an integer number of features, got {d!r}") from None
        if d < 1:
            raise ValueError(f"d must be >= 1 feature, got {d}")
        self.half_life = half_life
        self.decay = decay_factor(half_life)
        self.n = 0.0
        self.mean: Array = np.zeros(d)
        self.second: Array = np.zeros(self._second_shape(d))

    @classmethod
    def empty(cls: type[M], d: int, half_life: float | None = None) -> M:
        """A state that has learned nothing, for ``d`` features."""
        return cls(d, half_life)

    @property
    def d(self) -> int:
        """Number of features."""
        return int(self.mean.shape[0])

    @staticmethod
    @abstractmethod
    def _second_shape(d: int) -> tuple[int, ...]:
        """Shape of the second moment for d features."""

    @staticmethod
    @abstractmethod
    def _outer(a: Array, b: Array) -> Array:
        """Second-moment contribution of paired deviations (broadcast over leading axes)."""

    def _prefix_outer(self, weighted: Array, y: Array) -> Array:
        """Per row, the sum of ``_outer(weighted[k], y[k])`` over the rows ``k`` before it."""
        return exclusive_cumsum(self._outer(weighted, y))

    def _weighted_second(self, weights: Array, dev: Array) -> Array:
        """``sum_k weights[k] * outer(dev[k], dev[k])``: the weighted deviations' second moment."""
        out: Array = np.einsum("k,k...->...", weights, self._outer(dev, dev))
        return out

    def copy(self: M) -> M:
        """An independent copy of this state."""
        other = type(self)(self.d, self.half_life)
        other.n = self.n
        other.mean = self.mean.copy()
        other.second = self.second.copy()
        return other

    def update(self: M, x: Array) -> M:
        """Learn one event with Welford's recurrence; return ``self``.

        >>> RunningMoments(1).update(np.array([1.0])).update(np.array([3.0])).var.tolist()
        [1.0]
        """
        x = real_array(x, "x")
        if x.shape != (self.d,):
            raise ValueError(
                f"x must be one event of {self.d} features, shape ({self.d},), got shape {x.shape}"
            )
        self.n = self.decay * self.n + 1.0
        delta = x - self.mean
        self.mean = self.mean + delta / self.n
        self.second = self.decay * self.second + self._outer(delta, x - self.mean)
        return self

    def learn(self: M, X: Array) -> M:
        """Learn the rows of ``X`` in order, exactly as repeated :meth:`update` would; return self.

        The batch's own moments are computed around their mean and merged with
        Chan et al.'s formula, so the cost is one pass of numpy.

        >>> X = np.array([[1.0, 10.0], [2.0, 20.0], [6.0, 30.0]])
        >>> s = RunningMoments(2).learn(X)
        >>> s.mean.tolist(), np.allclose(s.var, X.var(axis=0))
        ([3.0, 20.0], True)
        """
        X = real_rows(X, "X", self.d)
        rows = X.shape[0]
        if rows == 0:
            return self
        if self.decay == 1.0:
            weights = np.ones(rows)
        else:
            weights = self.decay ** np.arange(rows - 1, -1, -1, dtype=np.float64)
        total = float(weights.sum())
        # Averaging deviations from the first row keeps a constant feature exactly constant.
        batch_mean = X[0] + weights @ (X - X[0]) / total
        dev = X - batch_mean
        batch = type(self)(self.d, self.half_life)
        batch.n = total
        batch.mean = batch_mean
        batch.second = self._weighted_second(weights, dev)
        self.discount(self.decay**rows)
        merged = self.merge(batch)
        self.n, self.mean, self.second = merged.n, merged.mean, merged.second
        return self

    def discount(self, share: float) -> None:
        """Weigh everything learned so far by ``share``, in place: the mean and spread stay.

        What a half-life does to the past at each event, and an accepted
        deviation to its key's history (:mod:`stream_detect.acceptance`).

        >>> s = RunningMoments(1).learn(np.array([[0.0], [2.0]]))
        >>> s.discount(0.5); s.n, s.mean.tolist(), s.var.tolist()
        (1.0, [1.0], [1.0])
        """
        self.n *= share
        self.second = self.second * share

    def merge(self: M, other: M) -> M:
        """Return the state of both event sets together (Chan et al.); neither input changes.

        >>> a = RunningMoments(1).learn(np.array([[1.0], [2.0]]))
        >>> b = RunningMoments(1).learn(np.array([[6.0]]))
        >>> a.merge(b).var.round(6).tolist()
        [4.666667]
        """
        if type(other) is not type(self):
            raise TypeError(f"cannot merge a {type(other).__name__} into a {type(self).__name__}")
        if other.d != self.d:
            raise ValueError(f"cannot merge states of {self.d} and {other.d} features")
        if other.decay != self.decay:
            # Their sums weigh past events differently: no state is both at once.
            raise ValueError(
                f"cannot merge states of half-lives {self.half_life} and {other.half_life}"
            )
        out = self.copy()
        n = self.n + other.n
        if other.n == 0:
            return out
        if self.n == 0:
            out.n, out.mean, out.second = other.n, other.mean.copy(), other.second.copy()
            return out
        delta = other.mean - self.mean
        out.n = n
        out.mean = self.mean + delta * (other.n / n)
        out.second = self.second + other.second + self._outer(delta, delta) * (self.n * other.n / n)
        return out

    def prequential(self, X: Array, learn: BoolArray | None = None) -> Prefix:
        """Statistics just before each row of ``X``, learning the rows where ``learn`` is true.

        The state itself does not change (call :meth:`learn` with the learned
        rows to commit them). Row ``i`` sees every earlier learned row of the
        batch, weighted by the half-life, exactly as the per-event loop would.

        >>> s = RunningMoments(1).learn(np.array([[0.0], [2.0]]))
        >>> p = s.prequential(np.array([[4.0], [100.0], [6.0]]), np.array([True, False, True]))
        >>> p.n.tolist(), p.mean[:, 0].tolist()
        ([2.0, 3.0, 3.0], [1.0, 2.0, 2.0])
        """
        return prefix_statistics(self, X, learn)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot; :meth:`from_dict` restores it exactly (floats round-trip)."""
        return {
            "kind": self.kind,
            "half_life": self.half_life,
            "n": self.n,
            "mean": self.mean.tolist(),
            "second": self.second.tolist(),
        }

    @classmethod
    def from_dict(cls: type[M], data: dict[str, Any]) -> M:
        """Restore a state written by :meth:`to_dict`; :class:`ModelError` if it does not fit.

        >>> s = RunningCovariance(2).learn(np.array([[1.0, 2.0], [3.0, 5.0]]))
        >>> t = RunningCovariance.from_dict(s.to_dict())
        >>> bool(np.array_equal(t.second, s.second)), t.n
        (True, 2.0)
        """
        try:
            if data["kind"] != cls.kind:
                raise ModelError(f"state is of kind {data['kind']!r}, expected {cls.kind!r}")
            mean = np.asarray(data["mean"], dtype=np.float64)
            if mean.ndim != 1:
                raise ModelError(f"mean has shape {mean.shape}, expected one value per feature")
            state = cls(int(mean.shape[0]), data.get("half_life"))
            second = np.asarray(data["second"], dtype=np.float64)
            if second.shape != state.second.shape:
                raise ModelError(
                    f"second moment has shape {second.shape}, expected {state.second.shape}"
                )
            state.n = float(data["n"])
            if not state.n >= 0.0 or state.n == np.inf:
                raise ModelError(f"n is {state.n!r}, expected a finite count >= 0")
            state.mean = mean
            state.second = second
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelError(f"malformed {cls.kind} state: {exc}") from exc
        return state


class RunningMoments(_Moments):
    """Per-feature count, mean and m2 (sum of squared deviations): the diagonal model.

    ``var`` is the population variance ``m2 / n`` (1/m, as in the classic method).

    >>> s = RunningMoments(2)
    >>> for row in [[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]:
    ...     _ = s.update(np.array(row))
    >>> s.n, s.mean.tolist(), s.var.round(6).tolist()
    (3.0, [2.0, 0.0], [0.666667, 0.0])
    """

    kind = "diagonal"

    @staticmethod
    def _second_shape(d: int) -> tuple[int, ...]:
        return (d,)

    @staticmethod
    def _outer(a: Array, b: Array) -> Array:
        out: Array = a * b
        return out

    @property
    def m2(self) -> Array:
        """Sum of squared deviations from the mean, per feature."""
        return self.second

    @property
    def var(self) -> Array:
        """Population variance per feature (zeros before anything is learned)."""
        if self.n <= 0:
            return np.zeros(self.d)
        out: Array = self.second / self.n
        return out


class RunningCovariance(_Moments):
    """Count, mean and co-moment matrix: the full-covariance model.

    >>> X = np.array([[1.0, 2.0], [2.0, 4.1], [3.0, 5.9], [4.0, 8.2]])
    >>> s = RunningCovariance(2).learn(X)
    >>> bool(np.allclose(s.cov, np.cov(X.T, bias=True)))
    True
    """

    kind = "full"

    @staticmethod
    def _second_shape(d: int) -> tuple[int, ...]:
        return (d, d)

    @staticmethod
    def _outer(a: Array, b: Array) -> Array:
        out: Array = a[..., :, None] * b[..., None, :]
        return out

    def _prefix_outer(self, weighted: Array, y: Array) -> Array:
        # Co-moments are symmetric: the running sums of the lower triangle's
        # products (the same products as the whole outer one) fill both halves.
        # A running sum along the rows costs numpy a chain of dependent additions
        # per column, so d(d+1)/2 columns instead of d² is most of the saving.
        rows, d = y.shape
        lower, upper = np.tril_indices(d)
        running = exclusive_cumsum(weighted[:, lower] * y[:, upper])
        # Entries (i, j) and (j, i) both read the running sum of the pair.
        pair = np.empty((d, d), dtype=np.intp)
        pair[lower, upper] = pair[upper, lower] = np.arange(lower.size)
        out: Array = np.take(running, pair.reshape(-1), axis=1).reshape(rows, d, d)
        return out

    def _weighted_second(self, weights: Array, dev: Array) -> Array:
        # One matrix product instead of a (rows, d, d) stack of outer products:
        # d² per row without the memory traffic. Aᵀ A is computed as a symmetric
        # product, so the co-moment stays exactly symmetric.
        scaled = dev if self.decay == 1.0 else dev * np.sqrt(weights)[:, None]
        out: Array = scaled.T @ scaled
        return out

    @property
    def comoment(self) -> Array:
        """Sum of outer products of deviations from the mean."""
        return self.second

    @property
    def cov(self) -> Array:
        """Population covariance matrix (zeros before anything is learned)."""
        if self.n <= 0:
            return np.zeros((self.d, self.d))
        out: Array = self.second / self.n
        return out

    @property
    def var(self) -> Array:
        """Population variance per feature (the covariance diagonal)."""
        return np.diagonal(self.cov).copy()
