"""Many keys' diagonal Gaussian statistics as rows of a few arrays, bounded, least recent out.

:class:`KeyedArrays` keeps, per key, the weight learned ``n``, the ``mean``
and ``m2`` (``(K, d)`` arrays), the events learned and the learning policy's
deviation count; the rare pending alerts sit in a dict. Which row (*slot*)
each key holds, when it was last seen and which key is evicted is
:class:`~stream_detect.key_slots.KeySlots`'s bookkeeping, so a batch marks
its keys seen with one array assignment (:meth:`KeyedArrays.mark_seen`) and
no per-key work, and the least recently seen key is evicted as in the
event-by-event loop (see :func:`~stream_detect.keyed_models.pieces`); a new
key's slot is reset to the template's fresh model in one go for a batch.
How a batch is scored against these arrays is
:mod:`stream_detect.keyed_bank`'s concern.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.gaussian_model import GaussianModel
from stream_detect.key_slots import KeySlots
from stream_detect.keyed_columns import Columns, entries
from stream_detect.keyed_models import KeyState

__all__ = ["KeyedArrays"]

Array = NDArray[np.float64]


class KeyedArrays(KeySlots, Mapping[str, KeyState]):
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
        super().__init__(max_keys, initial_learned=initial_learned, min_samples=min_samples)
        self.template = template
        self.d = template.stats.d
        self.n = np.zeros(0)
        self.mean = np.zeros((0, self.d))
        self.second = np.zeros((0, self.d))
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
        super().clear()
        self.pending.clear()
        self._resize(0)

    def put(self, key: str, state: KeyState) -> None:
        """Set ``key``'s state (a restored checkpoint), marking it most recently seen."""
        slot = self._slot_for(key)
        self._reset_fresh()
        self._store(slot, state)

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

    def _resize(self, size: int) -> None:
        """Make every per-slot array ``size`` rows long, keeping the rows that fit."""
        keep = min(size, self.n.size)

        def resized(array: Any) -> Any:
            out = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
            out[:keep] = array[:keep]
            return out

        self.n, self.mean, self.second = resized(self.n), resized(self.mean), resized(self.second)
        self.run_length = resized(self.run_length)
        super()._resize(size)

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
