"""The validation buffer: labelled raw feature vectors kept to re-choose the threshold on.

:class:`ValidationBuffer` is bounded, with one FIFO per class so that rare
positives are never evicted by the flood of negatives. It keeps the vectors
themselves, not their scores, so they can be re-scored under the current
model; its state round-trips through a JSON-able dict for checkpoints.

Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.confusion import as_labels
from stream_detect.errors import ModelError

__all__ = ["ValidationBuffer"]

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]


class _ClassRing:
    """A FIFO of at most ``capacity`` rows of one class, in a preallocated ring."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rows: Array | None = None
        self.seq = np.zeros(capacity, dtype=np.int64)
        self.keys: NDArray[np.object_] = np.full(capacity, None, dtype=object)
        self.start = 0
        self.count = 0

    def push(self, rows: Array, seq: IntArray, keys: NDArray[np.object_]) -> None:
        if len(rows) > self.capacity:
            # Older rows of the batch would be overwritten by its newer ones anyway.
            rows, seq, keys = rows[-self.capacity :], seq[-self.capacity :], keys[-self.capacity :]
        if self.rows is None:
            self.rows = np.zeros((self.capacity, rows.shape[1]))
        m = len(rows)
        slots = (self.start + self.count + np.arange(m)) % self.capacity
        self.rows[slots] = rows
        self.seq[slots] = seq
        self.keys[slots] = keys
        overflow = max(self.count + m - self.capacity, 0)
        self.start = (self.start + overflow) % self.capacity
        self.count = min(self.count + m, self.capacity)

    def ordered(self) -> IntArray:
        """Slots from oldest to newest."""
        return (self.start + np.arange(self.count)) % self.capacity


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
        self._rings = (_ClassRing(capacity_per_class), _ClassRing(capacity_per_class))
        self._n_seen = 0

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
        self, X: ArrayLike, y: ArrayLike, keys: Sequence[str | None] | None = None
    ) -> ValidationBuffer:
        """Add rows ``X`` (m, d) with labels ``y`` (m,) or (m, 1) and optional keys; return self.

        Raises ValueError, naming the problem, for a wrong shape, a label other
        than 0/1, a non-finite value, or keys that are not strings.
        """
        rows = np.asarray(X, dtype=np.float64)
        if rows.ndim != 2:
            raise ValueError(f"X must be a 2-D array of rows (m, d), got shape {rows.shape}")
        m, d = rows.shape
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
        key_array: NDArray[np.object_] = np.full(m, None, dtype=object)
        if keys is not None:
            if len(keys) != m:
                raise ValueError(f"X has {m} rows but {len(keys)} keys were given")
            for key in keys:
                if key is not None and not isinstance(key, str):
                    raise ValueError(f"keys must be strings or None, got {key!r}")
            key_array[:] = keys
        if m == 0:
            return self
        self._n_features = d
        seq = self._n_seen + np.arange(m, dtype=np.int64)
        for label, ring in enumerate(self._rings):
            mask = labels == bool(label)
            if np.any(mask):
                ring.push(rows[mask], seq[mask], key_array[mask])
        self._n_seen += m
        return self

    def arrays(self) -> tuple[Array, NDArray[np.int8], list[str | None]]:
        """``(X, y, keys)`` of every row held, oldest first (so in insertion order within class).

        ``X`` is a fresh (m, d) float64 array, ``y`` int8 0/1, ``keys`` a list.
        """
        parts_X: list[Array] = []
        parts_y: list[NDArray[np.int8]] = []
        parts_seq: list[IntArray] = []
        parts_keys: list[NDArray[np.object_]] = []
        for label, ring in enumerate(self._rings):
            if ring.rows is None or ring.count == 0:
                continue
            slots = ring.ordered()
            parts_X.append(ring.rows[slots])
            parts_y.append(np.full(len(slots), label, dtype=np.int8))
            parts_seq.append(ring.seq[slots])
            parts_keys.append(ring.keys[slots])
        if not parts_X:
            return np.zeros((0, self._n_features or 0)), np.zeros(0, dtype=np.int8), []
        order = np.argsort(np.concatenate(parts_seq), kind="stable")
        keys: list[str | None] = np.concatenate(parts_keys)[order].tolist()
        return np.concatenate(parts_X)[order], np.concatenate(parts_y)[order], keys

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state for a checkpoint; :meth:`from_dict` restores it exactly.

        >>> buffer = ValidationBuffer(4).add(np.array([[0.5, 1.0]]), [1], keys=["e1"])
        >>> restored = ValidationBuffer.from_dict(buffer.to_dict())
        >>> restored.arrays()[0].tolist(), restored.arrays()[2], restored.n_seen
        ([[0.5, 1.0]], ['e1'], 1)
        """
        X, y, keys = self.arrays()
        return {
            "capacity_per_class": self._capacity,
            "n_features": self._n_features,
            "n_seen": self._n_seen,
            "rows": X.tolist(),
            "labels": y.tolist(),
            "keys": keys,
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
            if len(rows):
                buffer.add(np.asarray(rows, dtype=np.float64), np.asarray(labels), keys)
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
            resized.add(*self.arrays())
        resized._n_seen = self._n_seen
        return resized
