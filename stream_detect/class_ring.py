"""One class's labelled rows in a preallocated ring, and the rows of all classes read back in order.

:class:`ClassRing` is the store behind each class of
:class:`~stream_detect.validation_buffer.ValidationBuffer`: each row keeps its
number (the order rows were added in, across classes), its key and its event
id beside it, and the oldest rows are overwritten once the ring is full. A
row may be taken out (an event's label corrected), the others keeping their
order. :func:`rows_in_order` reads the rings of every class back as one
set of rows, in the order they were added.

>>> ring = ClassRing(2)
>>> none = np.full(3, None, dtype=object)
>>> ring.push(np.array([[1.0], [2.0], [3.0]]), np.arange(3), none, none)
>>> ring.seq[ring.ordered()].tolist(), ring.slot_of(0), ring.slot_of(2)
([1, 2], None, 1)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["ClassRing", "rows_in_order"]

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]


class ClassRing:
    """A FIFO of at most ``capacity`` rows of one class, in a preallocated ring."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rows: Array | None = None
        self.seq = np.zeros(capacity, dtype=np.int64)
        self.keys: NDArray[np.object_] = np.full(capacity, None, dtype=object)
        self.ids: NDArray[np.object_] = np.full(capacity, None, dtype=object)
        self.start = 0
        self.count = 0

    def push(
        self, rows: Array, seq: IntArray, keys: NDArray[np.object_], ids: NDArray[np.object_]
    ) -> None:
        if len(rows) > self.capacity:
            # Older rows of the batch would be overwritten by its newer ones anyway.
            last = slice(-self.capacity, None)
            rows, seq, keys, ids = rows[last], seq[last], keys[last], ids[last]
        if self.rows is None:
            self.rows = np.zeros((self.capacity, rows.shape[1]))
        m = len(rows)
        slots = (self.start + self.count + np.arange(m)) % self.capacity
        self.rows[slots] = rows
        self.seq[slots] = seq
        self.keys[slots] = keys
        self.ids[slots] = ids
        overflow = max(self.count + m - self.capacity, 0)
        self.start = (self.start + overflow) % self.capacity
        self.count = min(self.count + m, self.capacity)

    def ordered(self) -> IntArray:
        """Slots from oldest to newest."""
        return (self.start + np.arange(self.count)) % self.capacity

    def slot_of(self, seq: int) -> int | None:
        """The slot holding the row numbered ``seq``, None if it is not held (evicted)."""
        slots = self.ordered()
        # Rows are held in the order they were numbered.
        at = int(np.searchsorted(self.seq[slots], seq))
        return int(slots[at]) if at < self.count and self.seq[slots[at]] == seq else None

    def remove(self, slot: int) -> None:
        """Drop the row in ``slot``; the others keep their order (moved to the ring's start)."""
        assert self.rows is not None
        kept = self.ordered()
        kept = kept[kept != slot]
        n = len(kept)
        self.rows[:n], self.seq[:n] = self.rows[kept], self.seq[kept]
        self.keys[:n], self.ids[:n] = self.keys[kept], self.ids[kept]
        self.keys[n], self.ids[n] = None, None
        self.start, self.count = 0, n


def rows_in_order(
    rings: tuple[ClassRing, ...], n_features: int | None
) -> tuple[Array, NDArray[np.int8], list[str | None], list[str | None]]:
    """``(X, y, keys, ids)`` of every row ``rings`` hold (ring ``i``: label ``i``), oldest first.

    With no row held, ``X`` is ``(0, n_features)`` (``(0, 0)`` when unknown).

    >>> none = np.full(1, None, dtype=object)
    >>> rings = (ClassRing(2), ClassRing(2))
    >>> rings[1].push(np.array([[5.0]]), np.array([0]), none, none)
    >>> rings[0].push(np.array([[7.0]]), np.array([1]), none, none)
    >>> X, y, keys, ids = rows_in_order(rings, 1)
    >>> X.ravel().tolist(), y.tolist()
    ([5.0, 7.0], [1, 0])
    """
    parts_X: list[Array] = []
    parts_y: list[NDArray[np.int8]] = []
    parts_seq: list[IntArray] = []
    parts_keys: list[NDArray[np.object_]] = []
    parts_ids: list[NDArray[np.object_]] = []
    for label, ring in enumerate(rings):
        if ring.rows is None or ring.count == 0:
            continue
        slots = ring.ordered()
        parts_X.append(ring.rows[slots])
        parts_y.append(np.full(len(slots), label, dtype=np.int8))
        parts_seq.append(ring.seq[slots])
        parts_keys.append(ring.keys[slots])
        parts_ids.append(ring.ids[slots])
    if not parts_X:
        return np.zeros((0, n_features or 0)), np.zeros(0, dtype=np.int8), [], []
    order = np.argsort(np.concatenate(parts_seq), kind="stable")
    keys: list[str | None] = np.concatenate(parts_keys)[order].tolist()
    ids: list[str | None] = np.concatenate(parts_ids)[order].tolist()
    return np.concatenate(parts_X)[order], np.concatenate(parts_y)[order], keys, ids
