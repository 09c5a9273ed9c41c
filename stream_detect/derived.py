"""Causal time-series features of one value column, per key, with bounded state.

A plain Gaussian of a raw value misses what a time series makes obvious: a
value normal at noon is odd at midnight, a level that drifts, a series that
suddenly turns noisy. Each class here turns a value column into one derived
feature, using only the current and earlier rows of the same key:

=========================  ==================================================  ============
class                      feature of row t                                    state per key
=========================  ==================================================  ============
:class:`SeasonalResidual`  x_t minus the mean of earlier x in t's bucket       2 per bucket
                           (hour of day, day of week or hour of week; 0 if
                           the bucket is empty); buckets never mix
:class:`MovingMean`        mean of the last ``k`` values (fewer at the start)  k - 1 values
:class:`RollingStd`        population std of the last ``w`` values             w - 1 values
:class:`Difference`        x_t - x_(t-1) (0 for a key's first row)             1 value
=========================  ==================================================  ============

Every feature's ``update(values, keys, wall_seconds)`` takes a batch and gives
the feature per row; feeding a batch gives exactly the floats feeding its rows
one at a time would (sums run in one fixed order). With ``max_keys`` a feature
holds the state of at most that many keys and forgets the least recently seen
one first, in the order the event-by-event loop would, which is also the order
the detector evicts its models in (:mod:`stream_detect.keyed_models`): the
derived state of a key goes when its model goes. ``to_dict`` / ``from_dict``
carry the state through a checkpoint as JSON-able values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from stream_detect.errors import ConfigError
from stream_detect.timestamps import SEASONS, Season, season_bucket

__all__ = ["DerivedFeature", "Difference", "MovingMean", "RollingStd", "SeasonalResidual"]

Array = NDArray[np.float64]


def _groups(keys: Sequence[Hashable]) -> dict[Hashable, NDArray[np.intp]]:
    """Row indices of each key, in order of first appearance."""
    rows: dict[Hashable, list[int]] = {}
    for row, key in enumerate(keys):
        rows.setdefault(key, []).append(row)
    return {key: np.array(indices, dtype=np.intp) for key, indices in rows.items()}


def _pieces(keys: Sequence[Hashable], limit: int) -> list[tuple[int, int]]:
    """Cut a batch so that no piece holds more than ``limit`` distinct keys.

    Within such a piece no key's state can be evicted between two of its rows,
    so handling the piece a key at a time equals the event-by-event order.

    >>> _pieces(["a", "b", "a", "c", "b"], 2)
    [(0, 3), (3, 5)]
    """
    pieces = []
    begin = 0
    seen: set[Hashable] = set()
    for i, key in enumerate(keys):
        if key not in seen and len(seen) == limit:
            pieces.append((begin, i))
            begin, seen = i, set()
        seen.add(key)
    pieces.append((begin, len(keys)))
    return pieces


class DerivedFeature(ABC):
    """One derived feature of a value column, kept per key (at most ``max_keys`` of them)."""

    kind: ClassVar[str]

    def __init__(self, max_keys: int | None = None) -> None:
        if max_keys is not None and not (isinstance(max_keys, int) and max_keys >= 1):
            raise ConfigError("max_keys", max_keys, "an integer >= 1")
        self.max_keys = max_keys
        #: Keys with state, least recently seen first.
        self._seen: OrderedDict[str, None] = OrderedDict()
        #: Keys whose state was forgotten to stay within ``max_keys``.
        self.evicted = 0

    @property
    def keys(self) -> list[str]:
        """The keys the feature holds state for, least recently seen first."""
        return list(self._seen)

    @abstractmethod
    def _update_key(self, key: str, values: Array, wall_seconds: Array | None) -> Array:
        """The feature of one key's rows (in time order), updating its state."""

    @abstractmethod
    def _forget(self, key: str) -> None:
        """Drop the state of ``key`` (it starts afresh if it comes back)."""

    def update(
        self, values: Array, keys: Sequence[Hashable], wall_seconds: Array | None = None
    ) -> Array:
        """The feature of each row of a batch; ``wall_seconds`` only for seasonal features."""
        values = np.asarray(values, dtype=np.float64)
        out = np.empty(values.size)
        names = [str(key) for key in keys]
        limit = self.max_keys
        pieces = [(0, len(names))] if limit is None else _pieces(names, limit)
        for begin, end in pieces:
            groups = _groups(names[begin:end])
            for key, rows in groups.items():
                rows = rows + begin
                self._touch(str(key))
                seconds = None if wall_seconds is None else np.asarray(wall_seconds)[rows]
                out[rows] = self._update_key(str(key), values[rows], seconds)
            # Recency follows each key's last row, as the event-by-event loop leaves it.
            for key, _ in sorted(groups.items(), key=lambda group: int(group[1][-1])):
                self._seen.move_to_end(str(key))
        return out

    def _touch(self, key: str) -> None:
        """Mark ``key`` seen; a new key beyond ``max_keys`` evicts the least recently seen."""
        if key in self._seen:
            self._seen.move_to_end(key)
            return
        self._seen[key] = None
        while self.max_keys is not None and len(self._seen) > self.max_keys:
            oldest, _ = self._seen.popitem(last=False)
            self._forget(oldest)
            self.evicted += 1

    def _bounds(self) -> dict[str, Any]:
        """The key bound and recency order, for :meth:`to_dict`."""
        return {"max_keys": self.max_keys, "order": list(self._seen), "evicted": self.evicted}

    def _restore_bounds(self, state: dict[str, Any], held: Sequence[str]) -> None:
        """Load what :meth:`_bounds` wrote (a state without it holds ``held``, unbounded)."""
        limit = state.get("max_keys")
        self.max_keys = None if limit is None else int(limit)
        self._seen = OrderedDict.fromkeys(str(key) for key in state.get("order", held))
        self.evicted = int(state.get("evicted", 0))

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Parameters and per-key state as JSON-able values."""

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> DerivedFeature:
        """The feature :meth:`to_dict` described, whichever class it is."""
        kinds = {sub.kind: sub for sub in (SeasonalResidual, MovingMean, RollingStd, Difference)}
        return kinds[state["kind"]]._restore(state)

    @classmethod
    @abstractmethod
    def _restore(cls, state: dict[str, Any]) -> DerivedFeature: ...


#: Most cells (rows times window size) a window matrix holds at once: a long window is
#: worked through a batch in pieces of rows, so its memory does not grow with the batch.
_WINDOW_CELLS = 1 << 21


class _WindowFeature(DerivedFeature):
    """A feature of the last ``size`` values of a key."""

    def __init__(self, size: int, max_keys: int | None = None) -> None:
        super().__init__(max_keys)
        if not (isinstance(size, int) and size >= 1):
            raise ConfigError(f"{self.kind} window", size, "an integer >= 1")
        self.size = size
        self._recent: dict[str, list[float]] = {}

    def _forget(self, key: str) -> None:
        self._recent.pop(key, None)

    def _update_key(self, key: str, values: Array, wall_seconds: Array | None) -> Array:
        # Each piece's rows see the values before them through the kept window, so the
        # pieces give the floats the whole batch would, in (rows, size) matrices of bounded size.
        # No row of this call sees more values than the window kept plus the call's own.
        widest = min(self.size, len(self._recent.get(key, ())) + values.size)
        rows = max(1, _WINDOW_CELLS // widest)
        if values.size <= rows:
            return self._of_rows(key, values)
        return np.concatenate(
            [
                self._of_rows(key, values[start : start + rows])
                for start in range(0, values.size, rows)
            ]
        )

    @abstractmethod
    def _of_rows(self, key: str, values: Array) -> Array:
        """The feature of consecutive rows of ``key``, updating its window."""

    def _windows(self, key: str, values: Array) -> tuple[Array, Array]:
        """Each row's window, newest first, as (B, width <= size) with NaN where there is none."""
        history = np.concatenate([np.array(self._recent.get(key, []), dtype=np.float64), values])
        offset = history.size - values.size
        keep = history[max(0, history.size - (self.size - 1)) :] if self.size > 1 else history[:0]
        self._recent[key] = keep.tolist()
        rows = np.arange(values.size) + offset
        # Lags before the key's first value are NaN in every row, and add nothing: left out.
        width = min(self.size, max(history.size, 2))
        lags = rows[:, None] - np.arange(width)[None, :]
        window = np.where(lags >= 0, history[np.maximum(lags, 0)], np.nan)
        return window, np.sum(lags >= 0, axis=1).astype(np.float64)

    @staticmethod
    def _ordered_sum(window: Array) -> Array:
        """Each row's sum from 0.0, newest first, one lag at a time: the per-row order.

        In C, not a Python loop over lags (which made a window of 100,000 rows score
        about 50 rows a second): an accumulation adds strictly left to right, where
        a sum's order is pairwise. It starts from the first term, not from 0.0; the
        two differ only where every term is -0.0, which adding 0.0 last settles.
        """
        if window.shape[1] == 0:
            return np.zeros(window.shape[0])
        terms = np.where(np.isnan(window), 0.0, window)
        total: Array = np.add.accumulate(terms, axis=1)[:, -1] + 0.0
        return total

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "size": self.size, "recent": self._recent, **self._bounds()}

    @classmethod
    def _restore(cls, state: dict[str, Any]) -> DerivedFeature:
        feature = cls(int(state["size"]))
        feature._recent = {key: list(map(float, v)) for key, v in state["recent"].items()}
        feature._restore_bounds(state, list(feature._recent))
        return feature


class MovingMean(_WindowFeature):
    """Mean of the last ``size`` values of the key (all of them while fewer).

    >>> MovingMean(2).update(np.array([1.0, 3.0, 7.0]), ["a"] * 3).tolist()
    [1.0, 2.0, 5.0]
    """

    kind = "moving_mean"

    def _of_rows(self, key: str, values: Array) -> Array:
        window, count = self._windows(key, values)
        mean: Array = self._ordered_sum(window) / count
        return mean


class RollingStd(_WindowFeature):
    """Population standard deviation of the last ``size`` values of the key.

    >>> RollingStd(2).update(np.array([1.0, 3.0, 3.0]), ["a"] * 3).tolist()
    [0.0, 1.0, 0.0]
    """

    kind = "rolling_std"

    def _of_rows(self, key: str, values: Array) -> Array:
        window, count = self._windows(key, values)
        mean = self._ordered_sum(window) / count
        deviations = np.square(window - mean[:, None])
        std: Array = np.sqrt(self._ordered_sum(deviations) / count)
        return std


class Difference(_WindowFeature):
    """The change from the key's previous value (0 for its first row).

    >>> Difference().update(np.array([1.0, 3.0, 2.5]), ["a"] * 3).tolist()
    [0.0, 2.0, -0.5]
    """

    kind = "difference"

    def __init__(self, size: int = 2, max_keys: int | None = None) -> None:
        super().__init__(2, max_keys)

    def _of_rows(self, key: str, values: Array) -> Array:
        window, _ = self._windows(key, values)
        change: Array = np.where(np.isnan(window[:, 1]), 0.0, window[:, 0] - window[:, 1])
        return change


class SeasonalResidual(DerivedFeature):
    """The value minus the running mean of earlier values of the key in the same bucket.

    Parameters
    ----------
    season : {"hour_of_day", "day_of_week", "hour_of_week"}
        Which bucket a row's wall-clock time falls in.
    max_keys
        Most keys held (None: every key seen); the least recently seen goes first.

    Examples
    --------
    >>> feature = SeasonalResidual("hour_of_day")
    >>> hours = np.array([0.0, 1.0, 24.0, 25.0, 48.0]) * 3600
    >>> feature.update(np.array([10.0, 50.0, 12.0, 52.0, 14.0]), ["a"] * 5, hours).tolist()
    [0.0, 0.0, 2.0, 2.0, 3.0]
    """

    kind = "seasonal_residual"

    def __init__(self, season: Season, max_keys: int | None = None) -> None:
        super().__init__(max_keys)
        if season not in SEASONS:
            raise ConfigError("season", season, "one of " + ", ".join(SEASONS))
        self.season = season
        # Per key: count and sum of values seen in each bucket.
        self._counts: dict[str, Array] = {}
        self._sums: dict[str, Array] = {}

    def _update_key(self, key: str, values: Array, wall_seconds: Array | None) -> Array:
        if wall_seconds is None:
            raise ConfigError("timestamp_field", None, "a timestamp for a seasonal feature")
        buckets = season_bucket(wall_seconds, self.season)
        size = SEASONS[self.season]
        counts = self._counts.setdefault(key, np.zeros(size))
        sums = self._sums.setdefault(key, np.zeros(size))
        out = np.empty(values.size)
        for bucket in np.unique(buckets):
            rows = np.flatnonzero(buckets == bucket)
            # cumsum adds left to right from the stored sum: the per-row order.
            running = np.cumsum(np.concatenate([[sums[bucket]], values[rows]]))
            seen = counts[bucket] + np.arange(rows.size)
            before = np.divide(running[:-1], seen, out=np.zeros(rows.size), where=seen > 0)
            out[rows] = np.where(seen > 0, values[rows] - before, 0.0)
            sums[bucket] = running[-1]
            counts[bucket] += rows.size
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "season": self.season,
            "counts": {key: v.tolist() for key, v in self._counts.items()},
            "sums": {key: v.tolist() for key, v in self._sums.items()},
            **self._bounds(),
        }

    def _forget(self, key: str) -> None:
        self._counts.pop(key, None)
        self._sums.pop(key, None)

    @classmethod
    def _restore(cls, state: dict[str, Any]) -> DerivedFeature:
        feature = cls(state["season"])
        feature._counts = {k: np.array(v, dtype=np.float64) for k, v in state["counts"].items()}
        feature._sums = {k: np.array(v, dtype=np.float64) for k, v in state["sums"].items()}
        feature._restore_bounds(state, list(feature._counts))
        return feature
