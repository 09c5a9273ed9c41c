"""A bounded memory of recent events by id, so feedback labels can find them.

An operator confirms or rejects an alert some time after it was raised; the
label names the event by id. :class:`RecentEvents` keeps the feature vectors
of the last ``capacity`` identified events in a ring, with a dict from id to
slot; adding a batch costs a few bulk operations, not a Python loop of dict
surgery per event.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["RecentEvents"]

Array = NDArray[np.float64]


class RecentEvents:
    """The key and feature vector of the last ``capacity`` events that had an id.

    >>> recent = RecentEvents(capacity=2, d=1)
    >>> recent.add(["a", None, "b", "c"], None, np.array([[1.0], [2.0], [3.0], [4.0]]))
    >>> recent.get("a") is None, recent.get("c")[1].tolist(), len(recent)
    (True, [4.0], 2)
    """

    def __init__(self, capacity: int, d: int) -> None:
        self.capacity = capacity
        self._rows: Array = np.zeros((capacity, d))
        self._names: list[str | None] = []
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self._written = 0
        self.clear()

    def clear(self) -> None:
        """Forget every event."""
        self._rows[:] = 0.0
        self._names = [None] * self.capacity
        self._keys = [""] * self.capacity
        self._index = {}
        self._written = 0

    def __len__(self) -> int:
        return min(self._written, self.capacity)

    def add(self, ids: list[str | None], keys: list[str] | None, X: Array) -> None:
        """Remember the rows of ``X`` whose id is not None; the oldest are forgotten."""
        if self.capacity == 0:
            return
        chosen = [i for i, event_id in enumerate(ids) if event_id is not None]
        chosen = chosen[-self.capacity :]
        if not chosen:
            return
        slots = ((self._written + np.arange(len(chosen))) % self.capacity).tolist()
        self._rows[slots] = X[chosen]
        names = [str(ids[i]) for i in chosen]
        row_keys = [""] * len(chosen) if keys is None else [keys[i] for i in chosen]
        for slot, name, key in zip(slots, names, row_keys, strict=True):
            self._names[slot] = name
            self._keys[slot] = key
        self._index.update(zip(names, slots, strict=True))
        self._written += len(chosen)
        if len(self._index) > 2 * self.capacity:
            self._rebuild_index()

    def _rebuild_index(self) -> None:
        """Drop index entries whose slot now holds another event (oldest to newest)."""
        order = (self._written + np.arange(self.capacity)) % self.capacity
        self._index = {
            name: slot for slot in order.tolist() if (name := self._names[slot]) is not None
        }

    def get(self, event_id: str) -> tuple[str, Array] | None:
        """``(key, features)`` of the event with this id, or None if it is not remembered."""
        slot = self._index.get(event_id)
        if slot is None or self._names[slot] != event_id:
            return None
        return self._keys[slot], self._rows[slot].copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able contents, oldest first."""
        held = len(self)
        order = ((self._written - held + np.arange(held)) % max(self.capacity, 1)).tolist()
        return {
            "ids": [self._names[s] for s in order],
            "keys": [self._keys[s] for s in order],
            "rows": self._rows[order].tolist(),
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Refill from :meth:`to_dict` output (keeps this memory's capacity)."""
        rows = np.asarray(data["rows"], dtype=np.float64).reshape(-1, self._rows.shape[1])
        self.clear()
        self.add([str(i) for i in data["ids"]], [str(k) for k in data["keys"]], rows)
