"""A uniform random sample of the rows of a stream, in bounded memory (reservoir sampling).

:class:`RowReservoir` keeps at most ``capacity`` rows of a stream of chunks
such that, at any point, every row seen so far is in the sample with the
same probability, however long the stream: ``inspect`` makes its
suggestions and histograms from it when a file is larger than the sample.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["RowReservoir"]

Array = NDArray[np.float64]


class RowReservoir:
    """A uniform random sample of at most ``capacity`` rows of a stream of chunks.

    Algorithm R, vectorised per chunk: row i (0-based, counted over all chunks)
    enters with probability ``capacity / (i + 1)`` into a uniformly chosen
    slot, so after any number of rows every row seen is in the sample with the
    same probability. The slots are filled in arrival order until full, so a
    stream no longer than ``capacity`` is kept whole and in order.

    >>> reservoir = RowReservoir(3, d=1, seed=0)
    >>> reservoir.add(np.arange(2.0)[:, None]); reservoir.sample.ravel().tolist()
    [0.0, 1.0]
    >>> reservoir.add(np.arange(2.0, 100.0)[:, None]); reservoir.sample.shape, reservoir.seen
    ((3, 1), 100)
    """

    def __init__(self, capacity: int, d: int, seed: int | None = 0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 row, got {capacity}")
        self.capacity = capacity
        self.seen = 0
        self._rows: Array = np.empty((capacity, d))
        self._rng = np.random.default_rng(seed)

    @property
    def sample(self) -> Array:
        """The rows kept (a view; at most ``capacity`` of them)."""
        return self._rows[: min(self.seen, self.capacity)]

    def add(self, X: Array) -> None:
        """Offer the rows of ``X`` (in order) to the sample."""
        rows = X.shape[0]
        free = max(0, min(self.capacity - self.seen, rows))
        self._rows[self.seen : self.seen + free] = X[:free]
        if free < rows:
            # Row with global index i replaces slot j ~ U{0..i} when j < capacity.
            index = np.arange(self.seen + free, self.seen + rows, dtype=np.int64)
            slots = self._rng.integers(0, index + 1)
            chosen = np.flatnonzero(slots < self.capacity)
            # A later row wins a slot taken twice in this chunk, as in the sequential loop.
            reversed_slots = slots[chosen][::-1]
            unique_slots, first = np.unique(reversed_slots, return_index=True)
            winners = chosen[::-1][first] + free
            self._rows[unique_slots] = X[winners]
        self.seen += rows
