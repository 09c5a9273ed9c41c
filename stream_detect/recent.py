"""Bounded memories by id that join feedback labels to their events.

An operator confirms or rejects an alert some time after it was raised; the
label names the event by id. :class:`RecentEvents` keeps the feature vectors
of the last ``capacity`` identified events in a ring, with a dict from id to
slot; adding a batch costs a few bulk operations, not a Python loop of dict
surgery per event. A label can also come before its event (both read from
files, at their own pace): :class:`HeldFeedback` keeps such labels, bounded,
until the event arrives.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Feedback", "HeldFeedback", "RecentEvents"]

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
        # Fresh zeros, not zeros written: the pages of rows no id ever fills stay untouched,
        # so a run without ids, or with fewer, does not hold id_memory x d floats.
        self._rows = np.zeros(self._rows.shape)
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


@dataclass(frozen=True)
class Feedback:
    """One feedback label read from the labels source, waiting for its event.

    ``position`` and ``payload`` are where it was read and what it said, kept
    so it can still go to the dead letters if its event never comes.
    """

    event_id: str
    label: int
    position: dict[str, Any]
    payload: bytes


class HeldFeedback:
    """Feedback labels that named an event not seen yet, held (bounded) until it arrives.

    Labels read from a file race with the events: a label can be read before
    the batch that holds its event. Holding it by id until that event arrives
    makes what is matched independent of how the input is batched. At most
    ``capacity`` labels are held; :meth:`hold` returns the oldest one it drops
    to make room. Every label is held, a second one for the same id too:
    :meth:`take` gives them in the order they were read, so the event gets
    each as if it had come first (the latest word of the operator counts,
    and a label read twice is a repeat), whatever the batching.

    >>> held = HeldFeedback(capacity=2)
    >>> held.hold(Feedback("a", 1, {"line": 1}, b"")) is None
    True
    >>> held.hold(Feedback("b", 0, {"line": 2}, b"")) is None
    True
    >>> held.hold(Feedback("a", 0, {"line": 3}, b"")).position
    {'line': 1}
    >>> [(f.event_id, f.label) for f in held.take(["x", "b", "a"])], len(held)
    ([('b', 0), ('a', 0)], 0)
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        #: Every label held, by the number it was held under, oldest first.
        self._held: OrderedDict[int, Feedback] = OrderedDict()
        #: Id -> the numbers of its labels held, oldest first.
        self._by_id: dict[str, list[int]] = {}
        self._numbered = 0

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, feedback: Feedback) -> Feedback | None:
        """Keep ``feedback``; return the label that had to go for it (the oldest held), if any."""
        if self.capacity < 1:
            return feedback
        number = self._numbered
        self._numbered += 1
        self._held[number] = feedback
        self._by_id.setdefault(feedback.event_id, []).append(number)
        if len(self._held) <= self.capacity:
            return None
        _, dropped = self._held.popitem(last=False)
        numbers = self._by_id[dropped.event_id]
        # The oldest label held is the oldest of its id's.
        numbers.pop(0)
        if not numbers:
            del self._by_id[dropped.event_id]
        return dropped

    def take(self, ids: Iterable[str | None]) -> list[Feedback]:
        """Remove and return the labels held for these ids (each id's oldest first)."""
        if not self._held:
            return []
        taken: list[Feedback] = []
        for event_id in ids:
            if event_id is not None and event_id in self._by_id:
                taken.extend(self._held.pop(n) for n in self._by_id.pop(event_id))
        return taken

    def holds(self, feedback: Feedback) -> bool:
        """True if the label read where ``feedback`` was is held (a label read again is held once).

        Only the labels of its event are looked at: a replay checks every label it reads again.

        >>> held = HeldFeedback(capacity=4)
        >>> _ = held.hold(Feedback("a", 1, {"offset": 7}, b""))
        >>> [held.holds(Feedback("a", 1, {"offset": at}, b"")) for at in (7, 8)]
        [True, False]
        """
        return self._number_of(feedback) is not None

    def take_at(self, feedback: Feedback) -> None:
        """Stop holding the label read where ``feedback`` was (it was joined when read again)."""
        number = self._number_of(feedback)
        if number is not None:
            del self._held[number]
            numbers = self._by_id[feedback.event_id]
            numbers.remove(number)
            if not numbers:
                del self._by_id[feedback.event_id]

    def _number_of(self, feedback: Feedback) -> int | None:
        """The number the label read at ``feedback``'s position is held under, if held."""
        for number in self._by_id.get(feedback.event_id, ()):
            if self._held[number].position == feedback.position:
                return number
        return None

    def drain(self) -> list[Feedback]:
        """Remove and return every held label, oldest first."""
        held = list(self._held.values())
        self._held.clear()
        self._by_id.clear()
        return held

    def to_list(self) -> list[dict[str, Any]]:
        """JSON-able contents, oldest first."""
        return [
            {
                "id": f.event_id,
                "label": f.label,
                "position": f.position,
                "payload": f.payload.decode("utf-8", "replace"),
            }
            for f in self._held.values()
        ]

    def restore(self, items: Iterable[dict[str, Any]]) -> list[Feedback]:
        """Hold again what :meth:`to_list` wrote; return those beyond this capacity, oldest first.

        The newest are kept, as :meth:`hold` keeps them; the caller sends the
        rest to the dead letters, so a smaller capacity loses none silently.

        >>> held = HeldFeedback(capacity=1)
        >>> saved = [{"id": i, "label": 1, "position": {}, "payload": ""} for i in "ab"]
        >>> [f.event_id for f in held.restore(saved)], [f.event_id for f in held.drain()]
        (['a'], ['b'])
        """
        self.drain()
        dropped: list[Feedback] = []
        for item in items:
            gone = self.hold(
                Feedback(
                    str(item["id"]),
                    int(item["label"]),
                    dict(item["position"]),
                    str(item["payload"]).encode(),
                )
            )
            if gone is not None:
                dropped.append(gone)
        return dropped
