"""The validation buffer: labelled raw feature vectors kept to re-choose the threshold on.

:class:`ValidationBuffer` is bounded, with one FIFO per class so that rare
positives are never evicted by the flood of negatives. It keeps the vectors
themselves, not their scores, so they can be re-scored under the current
model; its state round-trips through a JSON-able dict for checkpoints.

A row may carry the id of its event, so that the event is labelled once:
:meth:`ValidationBuffer.label_event` gives an event its latest label (a
second label that differs replaces the first, one that repeats it changes
nothing), whether the label came inline or as feedback, and however often
Kafka delivers it.

Each class's rows sit in a :class:`~stream_detect.class_ring.ClassRing`;
which row an event id names is kept by
:class:`~stream_detect.event_rows.EventRows`. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.class_ring import ClassRing, rows_in_order
from stream_detect.errors import ModelError
from stream_detect.event_rows import EventRows

__all__ = ["LabelOutcome", "ValidationBuffer"]

Array = NDArray[np.float64]
#: What a label did to the buffer: ``"new"`` (the event had none), ``"repeated"`` (it had
#: this one: nothing changed) or ``"corrected"`` (its other label was replaced).
LabelOutcome = Literal["new", "repeated", "corrected"]


class ValidationBuffer:
    """Bounded, class-stratified store of labelled raw feature vectors.

    The threshold is re-chosen by re-scoring these vectors under the current
    model, so the buffer keeps the vectors themselves (float64 rows), not
    their scores. Each class has its own FIFO of ``capacity_per_class`` rows:
    a flood of negatives evicts only older negatives, never the rare
    positives. Each row may carry a string key (an event id, an entity).

    Parameters
    ----------
    capacity_per_class
        Most rows kept per class (>= 1).
    n_features
        Width of the rows; taken from the first :meth:`add` when omitted.

    Examples
    --------
    >>> buffer = ValidationBuffer(capacity_per_class=2)
    >>> _ = buffer.add(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 1, 0, 0]))
    >>> buffer.n_negative, buffer.n_positive
    (2, 1)
    >>> X, y, keys = buffer.arrays()
    >>> X[:, 0].tolist(), y.tolist(), keys
    ([1.0, 2.0, 3.0], [1, 0, 0], [None, None, None])
    """

    def __init__(self, capacity_per_class: int = 1000, n_features: int | None = None) -> None:
        if isinstance(capacity_per_class, bool) or not isinstance(capacity_per_class, int):
            raise ValueError(f"capacity_per_class must be an integer, got {capacity_per_class!r}")
        if capacity_per_class < 1:
            raise ValueError(f"capacity_per_class must be at least 1, got {capacity_per_class}")
        if n_features is not None and n_features < 1:
            raise ValueError(f"n_features must be at least 1, got {n_features}")
        self._capacity = capacity_per_class
        self._n_features = n_features
        self._rings = (ClassRing(capacity_per_class), ClassRing(capacity_per_class))
        self._n_seen = 0
        self._event_rows = EventRows(self._rings, capacity_per_class)

    @property
    def capacity_per_class(self) -> int:
        """Most rows kept per class."""
        return self._capacity

    @property
    def n_features(self) -> int | None:
        """Width of the stored rows, None before the first row."""
        return self._n_features

    @property
    def n_negative(self) -> int:
        """Rows labelled 0 held now."""
        return self._rings[0].count

    @property
    def n_positive(self) -> int:
        """Rows labelled 1 held now."""
        return self._rings[1].count

    @property
    def n_seen(self) -> int:
        """Rows ever added, including those evicted since."""
        return self._n_seen

    def __len__(self) -> int:
        return self.n_negative + self.n_positive

    def add(
        self,
        X: ArrayLike,
        y: ArrayLike,
        keys: Sequence[str | None] | None = None,
        ids: Sequence[str | None] | None = None,
    ) -> ValidationBuffer:
        """Add rows ``X`` (m, d) with labels ``y`` (m,) or (m, 1) and optional keys; return self.

        ``ids`` are the rows' event ids (None: none), by which
        :meth:`label_event` finds an event's row again; every row is added,
        even one whose id the buffer holds already (two events that share an
        id are two events). Raises ValueError, naming the problem, for a wrong
        shape, a label other than 0/1, a non-finite value, or keys or ids that
        are not strings.
        """
        rows = np.asarray(X, dtype=np.float64)
        if rows.ndim != 2:
            raise ValueError(f"X must be a 2-D array of rows (m, d), got shape {rows.shape}")
        m, d = rows.shape
        # Here, not at the top: only labelled rows need it, and a plain run starts faster.
        from stream_detect.confusion import as_labels

        labels = as_labels(y, "y")
        if len(labels) != m:
            raise ValueError(f"X has {m} rows but y has {len(labels)} labels")
        expected = self._n_features
        if expected is not None and d != expected:
            raise ValueError(f"X rows have {d} features but the buffer holds rows of {expected}")
        if d == 0:
            raise ValueError("X rows have no features")
        if not np.all(np.isfinite(rows)):
            raise ValueError("X holds NaN or infinite values; the buffer keeps finite vectors")
        key_array = _strings(keys, m, "keys")
        id_array = _strings(ids, m, "ids")
        if m == 0:
            return self
        self._n_features = d
        seq = self._n_seen + np.arange(m, dtype=np.int64)
        named: list[tuple[int, str]] = []
        for label, ring in enumerate(self._rings):
            mask = labels == bool(label)
            if np.any(mask):
                ring.push(rows[mask], seq[mask], key_array[mask], id_array[mask])
                if ids is not None:
                    # Only the newest ``capacity`` rows of a class can be held.
                    kept = slice(-self._capacity, None)
                    pairs = zip(seq[mask][kept].tolist(), id_array[mask][kept], strict=True)
                    named.extend((number, name) for number, name in pairs if name is not None)
        self._n_seen += m
        if named:
            self._event_rows.point(sorted(named))
        return self

    def label_of(self, event_id: str) -> int | None:
        """The label the buffer holds for the event ``event_id``; None if it holds none."""
        found = self._event_rows.find(event_id)
        return None if found is None else found[0]

    def label_event(
        self, event_id: str, row: ArrayLike, label: int, key: str | None = None
    ) -> LabelOutcome:
        """Give the event ``event_id`` (features ``row``) the label ``label``; say what it did.

        The latest label of an event is the one held: a label the event
        already has changes nothing (``"repeated"``: a label delivered twice
        counts once); another one replaces it (``"corrected"``: the old row
        leaves its class, the new one joins the other as its newest row);
        otherwise the row is added (``"new"``).

        >>> buffer = ValidationBuffer(4)
        >>> [buffer.label_event("e1", [0.5], label) for label in (1, 1, 0)]
        ['new', 'repeated', 'corrected']
        >>> buffer.n_positive, buffer.n_negative, buffer.arrays()[0].tolist()
        (0, 1, [[0.5]])
        """
        found = self._event_rows.find(event_id)
        if found is not None and found[0] == label:
            return "repeated"
        if found is not None:
            self._rings[found[0]].remove(found[1])
        self.add(np.asarray(row, dtype=np.float64).reshape(1, -1), [label], [key], [event_id])
        return "new" if found is None else "corrected"

    def arrays(self) -> tuple[Array, NDArray[np.int8], list[str | None]]:
        """``(X, y, keys)`` of every row held, oldest first (so in insertion order within class).

        ``X`` is a fresh (m, d) float64 array, ``y`` int8 0/1, ``keys`` a list.
        """
        X, y, keys, _ = self._held()
        return X, y, keys

    def ids(self) -> list[str | None]:
        """The event id of every row held (None: none), in the order of :meth:`arrays`."""
        return self._held()[3]

    def _held(self) -> tuple[Array, NDArray[np.int8], list[str | None], list[str | None]]:
        """``(X, y, keys, ids)`` of every row held, oldest first."""
        return rows_in_order(self._rings, self._n_features)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state for a checkpoint; :meth:`from_dict` restores it exactly.

        >>> buffer = ValidationBuffer(4).add(np.array([[0.5, 1.0]]), [1], keys=["e1"])
        >>> restored = ValidationBuffer.from_dict(buffer.to_dict())
        >>> restored.arrays()[0].tolist(), restored.arrays()[2], restored.n_seen
        ([[0.5, 1.0]], ['e1'], 1)
        """
        X, y, keys, ids = self._held()
        return {
            "capacity_per_class": self._capacity,
            "n_features": self._n_features,
            "n_seen": self._n_seen,
            "rows": X.tolist(),
            "labels": y.tolist(),
            "keys": keys,
            "ids": ids,
        }

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], capacity_per_class: int | None = None
    ) -> ValidationBuffer:
        """Rebuild a buffer from :meth:`to_dict`; ModelError names what is wrong with ``data``.

        Given ``capacity_per_class``, the buffer has that capacity and keeps
        the newest rows of each class (as :meth:`resized` does); the saved
        capacity is then only checked, never allocated, so a number edited
        into a checkpoint cannot claim the memory of a trillion rows.

        >>> saved = ValidationBuffer(3).add(np.array([[1.0], [2.0], [3.0]]), [0, 0, 0]).to_dict()
        >>> saved["capacity_per_class"] = 10**12
        >>> restored = ValidationBuffer.from_dict(saved, capacity_per_class=2)
        >>> restored.capacity_per_class, restored.arrays()[0].ravel().tolist(), restored.n_seen
        (2, [2.0, 3.0], 3)
        """
        try:
            saved = data["capacity_per_class"]
            if isinstance(saved, bool) or not isinstance(saved, int) or saved < 1:
                raise ValueError(f"capacity_per_class must be an integer >= 1, got {saved!r}")
            capacity = saved if capacity_per_class is None else capacity_per_class
            buffer = cls(capacity, data["n_features"])
            rows, labels, keys, n_seen = data["rows"], data["labels"], data["keys"], data["n_seen"]
            # Checkpoints written before the ids were kept have none.
            ids = data.get("ids")
            if len(rows):
                buffer.add(np.asarray(rows, dtype=np.float64), np.asarray(labels), keys, ids)
            # The labels are 0/1 once add took them.
            positives = int(np.count_nonzero(np.asarray(labels, dtype=np.int64) == 1))
            if max(positives, len(rows) - positives) > saved:
                raise ValueError(
                    f"its {len(rows)} rows hold more of one class than capacity_per_class = {saved}"
                )
            if isinstance(n_seen, bool) or not isinstance(n_seen, int) or n_seen < len(rows):
                raise ValueError(f"n_seen must be an integer >= {len(rows)}, got {n_seen!r}")
        except KeyError as exc:
            raise ModelError(f"validation buffer state lacks the key {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise ModelError(f"validation buffer state is invalid: {exc}") from exc
        buffer._n_seen = n_seen
        return buffer

    def resized(self, capacity_per_class: int) -> ValidationBuffer:
        """A buffer of another capacity holding the newest rows of each class; ``n_seen`` is kept.

        >>> buffer = ValidationBuffer(3).add(np.array([[1.0], [2.0], [3.0]]), [0, 0, 0])
        >>> smaller = buffer.resized(2)
        >>> smaller.arrays()[0].ravel().tolist(), smaller.n_seen
        ([2.0, 3.0], 3)
        """
        resized = ValidationBuffer(capacity_per_class, self._n_features)
        if len(self):
            resized.add(*self._held())
        resized._n_seen = self._n_seen
        return resized


def _strings(values: Sequence[str | None] | None, m: int, name: str) -> NDArray[np.object_]:
    """``values`` (strings or None, one per row; None: all None) as an object array of ``m``."""
    array: NDArray[np.object_] = np.full(m, None, dtype=object)
    if values is not None:
        if len(values) != m:
            raise ValueError(f"X has {m} rows but {len(values)} {name} were given")
        for value in values:
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be strings or None, got {value!r}")
        array[:] = values
    return array
