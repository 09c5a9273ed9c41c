"""Many keys' diagonal Gaussian statistics as rows of a few arrays, bounded, least recent out.

:class:`KeyedArrays` keeps, per key, the weight learned ``n``, the ``mean``
and ``m2`` (``(K, d)`` arrays), the events learned and the learning policy's
deviation count; the rare pending alerts sit in a dict. A key maps to its
row (its *slot*) in a dict; when each slot was last seen is kept by
:class:`~stream_detect.recency.Recency`, so a batch marks its keys seen with
one array assignment (:meth:`KeyedArrays.mark_seen`) and no per-key work, and
the least recently seen key is evicted as in the event-by-event loop (see
:func:`~stream_detect.keyed_models.pieces`). A slot freed by eviction is
handed to the next new key; a new key's slot is reset to the template's
fresh model in one go for a batch. How a batch is scored against these
arrays is :mod:`stream_detect.keyed_bank`'s concern.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.gaussian_model import GaussianModel
from stream_detect.keyed_columns import Columns, entries
from stream_detect.keyed_models import KeyState
from stream_detect.recency import Recency

__all__ = ["KeyedArrays"]

Array = NDArray[np.float64]


class KeyedArrays(Mapping[str, KeyState]):
    """Diagonal Gaussian statistics of the most recently seen keys, at most ``max_keys``.

    A read-only mapping from key to a snapshot :class:`KeyState`, least
    recently seen first.

    Parameters
    ----------
    max_keys
        Most models held at once (>= 1).
    template
        The diagonal model every new key starts as (its statistics, floors,
        prior, directions and half-life are every key's).
    initial_learned
        Events a new key counts as learned already.
    min_samples
        Events a model learns before it may alert: a model evicted with fewer
        learned is counted in ``evicted_in_warmup`` too.

    Examples
    --------
    >>> arrays = KeyedArrays(2, GaussianModel(1, full=False))
    >>> arrays.put("a", KeyState(GaussianModel.from_moments(2.0, np.array([1.0]),
    ...                                                    np.array([0.25]))))
    >>> arrays.put("b", KeyState(GaussianModel(1, full=False)))
    >>> arrays.put("c", KeyState(GaussianModel(1, full=False)))
    >>> list(arrays), arrays.evicted, arrays.evicted_in_warmup
    (['b', 'c'], 1, 0)
    """

    def __init__(
        self,
        max_keys: int,
        template: GaussianModel,
        *,
        initial_learned: int = 0,
        min_samples: int = 0,
    ) -> None:
        if template.full:
            raise ValueError("a keyed bank holds diagonal models only")
        self.max_keys = max_keys
        self.template = template
        self.initial_learned = initial_learned
        self.min_samples = min_samples
        self.evicted = 0
        #: Of ``evicted``, the models evicted before their warm-up ended (they never alerted).
        self.evicted_in_warmup = 0
        self.d = template.stats.d
        self._slots: dict[str, int] = {}
        self._free: list[int] = []
        self._fresh: list[int] = []
        #: Per slot: its key (None while free), and when it was last seen.
        self._key_of: list[str | None] = []
        self.recency = Recency()
        self.n = np.zeros(0)
        self.mean = np.zeros((0, self.d))
        self.second = np.zeros((0, self.d))
        self.learned = np.zeros(0, np.int64)
        self.run_length = np.zeros(0, np.int64)
        self.pending: dict[int, list[Array]] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def __iter__(self) -> Iterator[str]:
        """Keys from least to most recently seen."""
        keys, _ = self._by_recency()
        return iter(keys)

    def __getitem__(self, key: str) -> KeyState:
        """A snapshot of ``key``'s state (changing it changes nothing here)."""
        slot = self._slots[key]
        model = self.model_at(slot)
        return KeyState(
            model,
            int(self.learned[slot]),
            int(self.run_length[slot]),
            [p.copy() for p in self.pending.get(slot, [])],
        )

    def learned_counts(self) -> NDArray[np.int64]:
        """Events each model has learned, least recently seen key first."""
        _, live = self._by_recency()
        counts: NDArray[np.int64] = self.learned[live]
        return counts

    def to_list(self) -> list[dict[str, Any]]:
        """Every key's state, JSON-able, least recently seen first, as :class:`KeyedModels` has it.

        >>> bank = KeyedArrays(4, GaussianModel(1, full=False))
        >>> bank.put("a", KeyState(GaussianModel(1, full=False), learned=2))
        >>> bank.to_list()[0]["state"]["stats"]["n"], bank.to_list()[0]["learned"]
        (0.0, 2)
        """
        return entries(self.to_columns(), self.template.stats.half_life)

    def to_columns(self) -> Columns:
        """Every key's state as copied columns, least recently seen first (a checkpoint's)."""
        keys, live = self._by_recency()
        pending: dict[int, list[Array]] = {}
        if self.pending:
            row_of = np.zeros(self.n.size, np.intp)
            row_of[live] = np.arange(live.size)
            pending = {
                int(row_of[slot]): [p.copy() for p in rows] for slot, rows in self.pending.items()
            }
        return Columns(
            keys,
            self.n[live],
            self.mean[live],
            self.second[live],
            self.learned[live],
            self.run_length[live],
            dict(sorted(pending.items())),
        )

    def load(self, columns: Columns) -> None:
        """Hold the models of ``columns`` alone (a restored checkpoint), least recently seen first.

        The state is the one :meth:`clear` then :meth:`put` of each key in
        turn leaves (the same slots, the same table size), in a few array
        copies; past ``max_keys`` the oldest keys are evicted, and counted.
        """
        self.clear()
        excess = max(len(columns.keys) - self.max_keys, 0)
        if excess:
            self.evicted += excess
            warming = columns.learned[:excess] < self.min_samples
            self.evicted_in_warmup += int(np.count_nonzero(warming))
            columns = columns.without_oldest(excess)
        count = len(columns.keys)
        size = 0
        while size < count:  # as _grow would have grown the table
            size = min(self.max_keys, max(16, 2 * size))
        self._resize(size)
        self.n[:count] = columns.n
        self.mean[:count] = columns.mean
        self.second[:count] = columns.second
        self.learned[:count] = columns.learned
        self.run_length[:count] = columns.run_length
        self.pending.update(columns.pending)
        self._slots.update(zip(columns.keys, range(count), strict=True))
        self._key_of[:count] = columns.keys
        self._free.extend(range(size - 1, count - 1, -1))
        self.recency.mark(np.arange(count, dtype=np.intp))

    def clear(self) -> None:
        """Forget every model (the eviction count stays)."""
        self._slots.clear()
        self._free.clear()
        self._fresh.clear()
        self._key_of.clear()
        self.recency.clear()
        self.pending.clear()
        self._resize(0)

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

    def put(self, key: str, state: KeyState) -> None:
        """Set ``key``'s state (a restored checkpoint), marking it most recently seen."""
        slot = self._slot_for(key)
        self._reset_fresh()
        self._store(slot, state)

    def _slot_for(self, key: str) -> int:
        """``key``'s slot, marked most recently seen; a new slot if it had none.

        A new slot holds a fresh model only after :meth:`_reset_fresh`, which
        resets every slot handed out since in one go.
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

    def _reset_fresh(self) -> None:
        """Give every slot handed out since the last call the template's fresh model."""
        if not self._fresh:
            return
        fresh = np.array(self._fresh, dtype=np.intp)
        self._fresh.clear()
        stats = self.template.stats
        self.n[fresh] = stats.n
        self.mean[fresh] = stats.mean
        self.second[fresh] = stats.second
        self.learned[fresh] = self.initial_learned
        self.run_length[fresh] = 0
        if self.pending:
            for slot in fresh.tolist():
                self.pending.pop(slot, None)

    def _grow(self) -> None:
        old = self.n.size
        new = min(self.max_keys, max(16, 2 * old))
        self._resize(new)
        self._free.extend(range(new - 1, old - 1, -1))

    def _resize(self, size: int) -> None:
        keep = min(size, self.n.size)

        def resized(array: Any) -> Any:
            out = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
            out[:keep] = array[:keep]
            return out

        self.n, self.mean, self.second = resized(self.n), resized(self.mean), resized(self.second)
        self.learned, self.run_length = resized(self.learned), resized(self.run_length)
        self.recency.resize(size)
        del self._key_of[size:]
        self._key_of.extend([None] * (size - len(self._key_of)))

    def model_at(self, slot: int) -> GaussianModel:
        """A new model holding the statistics in ``slot`` (a copy: changes stay in it)."""
        model = self.template.clone_empty()
        stats = model.stats
        stats.n = float(self.n[slot])
        stats.mean = self.mean[slot].copy()
        stats.second = self.second[slot].copy()
        return model

    def _store(self, slot: int, state: KeyState) -> None:
        assert isinstance(state.model, GaussianModel)
        stats = state.model.stats
        self.n[slot] = stats.n
        self.mean[slot] = stats.mean
        self.second[slot] = stats.second
        self.learned[slot] = state.learned
        self.run_length[slot] = state.run_length
        if state.pending:
            self.pending[slot] = [np.asarray(p, dtype=np.float64) for p in state.pending]
        else:
            self.pending.pop(slot, None)


def _eviction_plan(
    found: list[int | None], room: int, queued: list[int], key_of: list[str | None]
) -> tuple[list[tuple[int, int | None]], int] | None:
    """Which key each new key's turn evicts (None: a free slot), and how many queued it passed.

    ``found`` holds each key's slot (None: new), ``room`` the free slots,
    ``queued`` slots least recently seen first (a free one, ``key_of`` None,
    is passed by). None if the queue runs out (see
    :meth:`KeyedArrays._slots_evicting`).

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
