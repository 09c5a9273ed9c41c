"""When each slot of a bounded table was last seen, and which live slot was seen least recently.

Each slot holds a stamp: the count of sightings when it was last seen, so a
batch marks its slots seen with one array assignment (:meth:`Recency.mark`)
and no per-slot Python step. The least recently seen slot, the smallest
stamp, is found through a queue of the live slots by stamp, built when it
runs out and read lazily: a slot freed, or seen again, since it was queued is
skipped, since it is then newer than every slot still queued, which keep
their order.

>>> recency = Recency()
>>> recency.resize(3)
>>> recency.mark(np.array([2, 0, 1]))
>>> recency.mark_one(2)
>>> recency.oldest(lambda: np.array([0, 1, 2]), lambda slot: True)
0
>>> recency.order(np.array([0, 1, 2])).tolist()
[0, 1, 2]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = ["Recency"]

IntArray = NDArray[np.intp]


class Recency:
    """The stamps of a table's slots (``resize`` it with the table) and its eviction queue."""

    def __init__(self) -> None:
        self.stamps = np.zeros(0, np.int64)
        self._clock = 0
        # Live slots and their stamps when queued, least recent first; read from _queued on.
        self._queue_slots: list[int] = []
        self._queue_stamps: list[int] = []
        self._queued = 0

    def resize(self, size: int) -> None:
        """Keep the stamps of the first ``size`` slots; new slots are as if never seen."""
        stamps = np.zeros(size, np.int64)
        keep = min(size, self.stamps.size)
        stamps[:keep] = self.stamps[:keep]
        self.stamps = stamps

    def clear(self) -> None:
        """Forget the queue (the table was emptied)."""
        self._queue_slots, self._queue_stamps, self._queued = [], [], 0

    def mark(self, slots: IntArray) -> None:
        """Mark ``slots`` (distinct) as just seen, in that order: the last is the most recent."""
        self.stamps[slots] = np.arange(self._clock, self._clock + slots.size)
        self._clock += int(slots.size)

    def mark_one(self, slot: int) -> None:
        """Mark ``slot`` as just seen."""
        self.stamps[slot] = self._clock
        self._clock += 1

    def order(self, slots: IntArray) -> IntArray:
        """The positions of ``slots`` from least to most recently seen."""
        order: IntArray = np.argsort(self.stamps[slots], kind="stable")
        return order

    def queued(self, live: Callable[[], IntArray], *, afresh: bool) -> tuple[list[int], list[int]]:
        """Slots least recently seen first, as :meth:`oldest` meets them, and the positions after.

        The slots left in the queue whose stamps still count (``afresh``: every
        live slot, the queue built again, in which those come first too, since
        every slot seen or added since is newer), each with the queue position
        after it, for :meth:`take_until`. A slot freed since it was queued is
        among them: the caller skips it, as :meth:`oldest` does. Nothing is taken.

        >>> recency = Recency()
        >>> recency.resize(3)
        >>> recency.mark(np.array([2, 0, 1]))
        >>> recency.queued(lambda: np.array([0, 1, 2]), afresh=True)
        ([2, 0, 1], [1, 2, 3])
        """
        if afresh or self._queued == len(self._queue_slots):
            self._requeue(live)
        start = self._queued
        queued = np.array(self._queue_slots[start:], dtype=np.intp)
        unseen = np.flatnonzero(
            self.stamps[queued] == np.array(self._queue_stamps[start:], np.int64)
        )
        ends: list[int] = (unseen + start + 1).tolist()
        slots: list[int] = queued[unseen].tolist()
        return slots, ends

    def take_until(self, position: int) -> None:
        """Take the queued slots before ``position`` (see :meth:`queued`)."""
        self._queued = position

    def _requeue(self, live: Callable[[], IntArray]) -> None:
        slots = live()
        ordered = slots[self.order(slots)]
        self._queue_slots = ordered.tolist()
        self._queue_stamps = self.stamps[ordered].tolist()
        self._queued = 0

    def oldest(self, live: Callable[[], IntArray], is_live: Callable[[int], bool]) -> int:
        """The live slot seen least recently (there must be one).

        ``live`` gives every live slot, asked only when the queue runs out;
        ``is_live`` says whether a queued slot still holds its entry.
        """
        while True:
            if self._queued == len(self._queue_slots):
                self._requeue(live)
            slot = self._queue_slots[self._queued]
            stamp = self._queue_stamps[self._queued]
            self._queued += 1
            if is_live(slot) and self.stamps[slot] == stamp:
                return slot
