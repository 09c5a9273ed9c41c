"""One model per key, bounded, evicting the least recently seen, as if events came one by one.

:class:`KeyedModels` maps a key (a host, a sensor; ``""`` when the stream has
no key field) to its :class:`KeyState`: the model and what the learning policy
remembers about that key. At most ``max_keys`` are held. A batch is handled a
key at a time (:func:`groups`), yet the models kept, and the
order they are evicted in, are exactly those of the event-by-event loop:
:meth:`KeyedModels.pieces` cuts a batch where that could differ, and
:meth:`KeyedModels.mark_seen` orders recency by each key's last event.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.model_interface import Model

__all__ = ["SINGLE_KEY", "KeyState", "KeyedModels", "groups", "pieces"]

Array = NDArray[np.float64]
IntArray = NDArray[np.intp]

#: Key of the single model when there is no key field.
SINGLE_KEY = ""


@dataclass
class KeyState:
    """A key's model and what the learning policy remembers about the key.

    ``learned`` counts the events the model learned; ``run_length`` the
    current deviation count (alerts up, calm events down, see
    :mod:`stream_detect.learning`); ``pending`` the flagged events of that
    deviation not learned yet (learned together if it is accepted).
    """

    model: Model
    learned: int = 0
    run_length: int = 0
    pending: list[Array] = field(default_factory=list)


class KeyedModels(Mapping[str, KeyState]):
    """The models of the most recently seen keys, at most ``max_keys`` of them.

    A read-only mapping from key to :class:`KeyState`, least recently seen
    first; looking a key up does not mark it seen, :meth:`state_for` does.

    Parameters
    ----------
    max_keys
        Most models held at once (>= 1).
    new_model
        Builds the model of a key seen for the first time.
    initial_learned
        Events that new model counts as learned already (a model started from
        a fitted one skips warm-up).
    min_samples
        Events a model learns before it may alert: a model evicted with fewer
        learned is counted in ``evicted_in_warmup`` too.

    Examples
    --------
    >>> from stream_detect.models import build_model
    >>> models = KeyedModels(2, lambda: build_model("diagonal", ("x",)), min_samples=5)
    >>> for key in ("a", "b", "a", "c"):
    ...     _ = models.state_for(key)
    >>> list(models), models.evicted, models.evicted_in_warmup
    (['a', 'c'], 1, 1)
    """

    def __init__(
        self,
        max_keys: int,
        new_model: Callable[[], Model],
        *,
        initial_learned: int = 0,
        min_samples: int = 0,
    ) -> None:
        self.max_keys = max_keys
        self.new_model = new_model
        self.initial_learned = initial_learned
        self.min_samples = min_samples
        self.evicted = 0
        #: Of ``evicted``, the models evicted before their warm-up ended (they never alerted).
        self.evicted_in_warmup = 0
        self._states: OrderedDict[str, KeyState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def __iter__(self) -> Iterator[str]:
        """Keys from least to most recently seen."""
        return iter(self._states)

    def __getitem__(self, key: str) -> KeyState:
        return self._states[key]

    def learned_counts(self) -> NDArray[np.int64]:
        """Events each model has learned, least recently seen key first."""
        return np.array([state.learned for state in self._states.values()], dtype=np.int64)

    def to_list(self) -> list[dict[str, Any]]:
        """Every key's state, JSON-able, least recently seen first (as checkpoints hold them)."""
        return [
            {
                "key": key,
                "state": state.model.to_dict(),
                "learned": state.learned,
                "run_length": state.run_length,
                "pending": [p.tolist() for p in state.pending],
            }
            for key, state in self._states.items()
        ]

    def clear(self) -> None:
        """Forget every model (the eviction count stays)."""
        self._states.clear()

    def state_for(self, key: str) -> KeyState:
        """The state of ``key``, marked most recently seen; a new model if it had none.

        Adding a model beyond ``max_keys`` evicts the least recently seen one.
        """
        state = self._states.get(key)
        if state is not None:
            self._states.move_to_end(key)
            return state
        state = self._states[key] = KeyState(self.new_model(), learned=self.initial_learned)
        while len(self._states) > self.max_keys:
            _, gone = self._states.popitem(last=False)
            self.evicted += 1
            self.evicted_in_warmup += gone.learned < self.min_samples
        return state

    def put(self, key: str, state: KeyState) -> None:
        """Set ``key``'s state (a restored checkpoint), marking it most recently seen."""
        self.state_for(key)
        self._states[key] = state

    def mark_seen(self, groups: list[tuple[str, IntArray]]) -> None:
        """Order recency as the event-by-event loop would: by each key's last row."""
        for key, _ in sorted(groups, key=lambda group: int(group[1][-1])):
            if key in self._states:
                self._states.move_to_end(key)

    def pieces(self, keys: list[str], start: int, stop: int) -> list[tuple[int, int]]:
        """Cut ``[start, stop)`` into pieces of at most ``max_keys`` keys (see :func:`pieces`).

        >>> from stream_detect.models import build_model
        >>> models = KeyedModels(2, lambda: build_model("diagonal", ("x",)))
        >>> models.pieces(["a", "b", "a", "c", "b"], 0, 5)
        [(0, 3), (3, 5)]
        """
        return pieces(keys, start, stop, self.max_keys)


def pieces(keys: list[str], start: int, stop: int, limit: int) -> list[tuple[int, int]]:
    """Cut ``[start, stop)`` so that no piece holds more than ``limit`` distinct keys.

    Scoring a key's rows together equals the event-by-event order as long
    as no model is evicted between two rows of its key, which can only
    happen when a piece holds more distinct keys than the models kept.

    >>> pieces(["a", "b", "a", "c", "b"], 0, 5, 2)
    [(0, 3), (3, 5)]
    """
    if len(set(keys[start:stop])) <= limit:
        return [(start, stop)]
    cut = []
    begin = start
    seen: set[str] = set()
    for i in range(start, stop):
        if keys[i] not in seen and len(seen) == limit:
            cut.append((begin, i))
            begin, seen = i, set()
        seen.add(keys[i])
    cut.append((begin, stop))
    return cut


def groups(keys: list[str], start: int, stop: int) -> list[tuple[str, IntArray]]:
    """Rows of ``[start, stop)`` per key, each in arrival order, keys by first appearance.

    >>> [(key, rows.tolist()) for key, rows in groups(["b", "a", "b"], 0, 3)]
    [('b', [0, 2]), ('a', [1])]
    """
    piece = np.asarray(keys[start:stop], dtype=object)
    uniques, inverse = np.unique(piece, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(uniques)))[:-1]
    split = np.split(order + start, bounds)
    # Visit keys in order of first appearance so eviction is deterministic.
    first = [int(rows[0]) for rows in split]
    ranked = sorted(zip(first, uniques.tolist(), split, strict=True))
    return [(str(key), rows) for _, key, rows in ranked]
