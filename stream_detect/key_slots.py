"""Which row (*slot*) of a bounded table each key holds, the least recently seen key evicted.

:class:`KeySlots` is the bookkeeping half of
:class:`~stream_detect.keyed_arrays.KeyedArrays`: a key maps to its slot in a
dict, when each slot was last seen is kept by
:class:`~stream_detect.recency.Recency`, a slot freed by eviction is handed to
the next new key, and the evictions (with those of models still in warm-up)
are counted. A batch's keys get their slots in one go
(:meth:`KeySlots._slots_for`), with the evictions planned for the batch
(:func:`_eviction_plan`) rather than found key by key. What a slot holds is
the subclass's concern, except the events its model has learned, which decide
whether its eviction falls in warm-up.
"""

from __future__ import annotations

import heapq

import numpy as np
from numpy.typing import NDArray

from stream_detect.recency import Recency

__all__ = ["KeySlots"]


class KeySlots:
    """The slots of at most ``max_keys`` keys, and the events each slot's model has learned.

    Parameters
    ----------
    max_keys
        Most keys held at once (>= 1).
    initial_learned
        Events a new key counts as learned already.
    min_samples
        Events a model learns before it may alert: a key evicted with fewer
        learned is counted in ``evicted_in_warmup`` too.

    Examples
    --------
    >>> table = KeySlots(2)
    >>> [table._slot_for(key) for key in ["a", "b", "a", "c"]]
    [0, 1, 0, 1]
    >>> sorted(table._slots.items()), table.evicted, table.evicted_in_warmup
    ([('a', 0), ('c', 1)], 1, 0)
    """

    def __init__(self, max_keys: int, *, initial_learned: int = 0, min_samples: int = 0) -> None:
        self.max_keys = max_keys
        self.initial_learned = initial_learned
        self.min_samples = min_samples
        self.evicted = 0
        #: Of ``evicted``, the models evicted before their warm-up ended (they never alerted).
        self.evicted_in_warmup = 0
        self._slots: dict[str, int] = {}
        self._free: list[int] = []
        self._fresh: list[int] = []
        #: Per slot: its key (None while free), and when it was last seen.
        self._key_of: list[str | None] = []
        self.recency = Recency()
        #: Per slot: the events its model has learned (a subclass's other rows sit beside it).
        self.learned = np.zeros(0, np.int64)

    def clear(self) -> None:
        """Forget every key (the eviction count stays)."""
        self._slots.clear()
        self._free.clear()
        self._fresh.clear()
        self._key_of.clear()
        self.recency.clear()

    def mark_seen(self, slots: NDArray[np.intp]) -> None:
        """Mark the keys of ``slots`` (distinct, least recent first) as just seen, in that order."""
        self.recency.mark(slots)

    def _by_recency(self) -> tuple[list[str], NDArray[np.intp]]:
        """The keys and their slots, least recently seen first."""
        keys = list(self._slots)
        live = self._live()
        order = self.recency.order(live)
        return [keys[i] for i in order.tolist()], live[order]

    def _live(self) -> NDArray[np.intp]:
        return np.fromiter(self._slots.values(), np.intp, count=len(self._slots))

    def _slot_for(self, key: str) -> int:
        """``key``'s slot, marked most recently seen; a new slot if it had none.

        A new slot holds a fresh model only after the subclass resets it,
        which it does for every slot handed out since (``_fresh``) in one go.
        """
        slot = self._slots.get(key)
        if slot is None:
            if len(self._slots) >= self.max_keys:
                self._evict_oldest()
            slot = self._new_slot(key)
        self.recency.mark_one(slot)
        return slot

    def _evict_oldest(self) -> None:
        """Free the slot of the least recently seen key."""
        slot = self.recency.oldest(self._live, self._is_live)
        key = self._key_of[slot]
        assert key is not None
        # A slot handed out in this batch holds its last key's counts until reset.
        learned = self.initial_learned if slot in self._fresh else int(self.learned[slot])
        del self._slots[key]
        self._key_of[slot] = None
        self._free.append(slot)
        self.evicted += 1
        self.evicted_in_warmup += learned < self.min_samples

    def _slots_for(self, keys: list[str]) -> list[int]:
        """The slots of distinct ``keys``, as :meth:`_slot_for` one after the other gives them.

        The known keys are only looked up (the caller marks them seen in the
        order it needs): the order in which keys are marked seen changes
        nothing when the new keys fit without evicting any; when they evict,
        the evictions are planned for the batch (:meth:`_slots_evicting`),
        and the keys go one by one only when that plan falls short.
        """
        found = list(map(self._slots.get, keys))
        new = found.count(None)
        # Past max_keys (a reload may lower it), each new key evicts one key.
        room = max(self.max_keys - len(self._slots), 0)
        if new > room:
            evicting = self._slots_evicting(keys, found, room)
            return [self._slot_for(key) for key in keys] if evicting is None else evicting
        if not new:
            return found  # type: ignore[return-value]  # no None left in it
        # The new keys' slots in one go, in the order one _new_slot call per key gives.
        slots = self._take_free(new)
        unseen = [key for key, slot in zip(keys, found, strict=True) if slot is None]
        self._slots.update(zip(unseen, slots, strict=True))
        key_of = self._key_of
        for key, slot in zip(unseen, slots, strict=True):
            key_of[slot] = key
        self._fresh.extend(slots)
        handed = iter(slots)
        return [next(handed) if slot is None else slot for slot in found]

    def _slots_evicting(
        self, keys: list[str], found: list[int | None], room: int
    ) -> list[int] | None:
        """:meth:`_slots_for` when new keys evict: the same slots and evictions, planned first.

        The keys come one by one: a known key is seen (no longer the oldest),
        a new one takes a free slot while there is ``room``, then the slot of
        the least recently seen key not seen yet in the batch. A known key
        evicted before its turn comes as a new key then. The plan walks the
        eviction queue once (built again if what is left of it runs out);
        None (nothing changed) if it would evict a key added in the batch,
        for the caller to go key by key.
        """
        for afresh in (False, True):
            queued, ends = self.recency.queued(self._live, afresh=afresh)
            plan = _eviction_plan(found, room, queued, self._key_of)
            if plan is not None:
                break
        else:
            return None
        evictions, taken = plan
        # The plan evicts no key added in the batch, so every evicted slot's count is its key's.
        evicted = np.array([evicts for _, evicts in evictions if evicts is not None], np.intp)
        self.evicted_in_warmup += int(np.count_nonzero(self.learned[evicted] < self.min_samples))
        free = iter(self._take_free(sum(evicts is None for _, evicts in evictions)))
        slots = list(found)
        key_of = self._key_of
        for turn, evicts in evictions:
            if evicts is None:
                slot = next(free)
            else:
                del self._slots[key_of[evicts]]  # type: ignore[arg-type]  # a live slot's key
                self.evicted += 1
                slot = evicts
            self._slots[keys[turn]] = slot
            key_of[slot] = keys[turn]
            self._fresh.append(slot)
            slots[turn] = slot
        if taken:
            self.recency.take_until(ends[taken - 1])
        return slots  # type: ignore[return-value]  # every turn has its slot now

    def _is_live(self, slot: int) -> bool:
        return self._key_of[slot] is not None

    def _take_free(self, count: int) -> list[int]:
        """``count`` free slots, in the order popping them one by one (growing when out) gives."""
        taken: list[int] = []
        while len(taken) < count:
            if not self._free:
                self._grow()
            size = min(count - len(taken), len(self._free))
            taken.extend(self._free[: -size - 1 : -1])
            del self._free[-size:]
        return taken

    def _new_slot(self, key: str) -> int:
        """A slot for ``key``, which has none, while the map has room."""
        (slot,) = self._take_free(1)
        self._slots[key] = slot
        self._key_of[slot] = key
        self._fresh.append(slot)
        return slot

    def _grow(self) -> None:
        old = len(self._key_of)
        new = min(self.max_keys, max(16, 2 * old))
        self._resize(new)
        self._free.extend(range(new - 1, old - 1, -1))

    def _resize(self, size: int) -> None:
        """Make the table ``size`` slots long (a subclass resizes its own rows, then calls this)."""
        keep = min(size, self.learned.size)
        learned = np.zeros(size, np.int64)
        learned[:keep] = self.learned[:keep]
        self.learned = learned
        self.recency.resize(size)
        del self._key_of[size:]
        self._key_of.extend([None] * (size - len(self._key_of)))


def _eviction_plan(
    found: list[int | None], room: int, queued: list[int], key_of: list[str | None]
) -> tuple[list[tuple[int, int | None]], int] | None:
    """Which key each new key's turn evicts (None: a free slot), and how many queued it passed.

    ``found`` holds each key's slot (None: new), ``room`` the free slots,
    ``queued`` slots least recently seen first (a free one, ``key_of`` None,
    is passed by). None if the queue runs out (see
    :meth:`KeySlots._slots_evicting`).

    >>> key_of = list("abcdefghij")
    >>> _eviction_plan([None, 5, None, None], 1, [5, 7, 9], key_of)
    ([(0, None), (2, 7), (3, 9)], 3)
    >>> _eviction_plan([None, None, 5], 0, [5, 7, 9], key_of)  # 5 goes before its turn comes
    ([(0, 5), (1, 7), (2, 9)], 3)
    """
    turn_of = {slot: i for i, slot in enumerate(found) if slot is not None}
    waiting = [i for i, slot in enumerate(found) if slot is None]  # ascending: a heap
    plan: list[tuple[int, int | None]] = []
    taken = 0
    while waiting:
        turn = heapq.heappop(waiting)
        if room:
            room -= 1
            plan.append((turn, None))
            continue
        while True:
            if taken == len(queued):
                return None
            victim = queued[taken]
            taken += 1
            if key_of[victim] is None:
                continue
            seen = turn_of.get(victim)
            if seen is None or seen > turn:
                break
        plan.append((turn, victim))
        if seen is not None:
            heapq.heappush(waiting, seen)
    return plan, taken
