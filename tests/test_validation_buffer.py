"""Tests of stream_detect.validation_buffer against one deque per class."""

from __future__ import annotations

import collections
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from stream_detect.errors import ModelError
from stream_detect.validation_buffer import ValidationBuffer


class ReferenceBuffer:
    """One deque per class, one row at a time: obviously right, slow."""

    def __init__(self, capacity: int) -> None:
        self.classes = (collections.deque(maxlen=capacity), collections.deque(maxlen=capacity))
        self.seq = 0

    def add(self, X: NDArray[np.float64], y: list[int], keys: list[str | None]) -> None:
        for row, label, key in zip(X, y, keys, strict=True):
            self.classes[label].append((self.seq, row.tolist(), label, key))
            self.seq += 1

    def arrays(self) -> tuple[list[list[float]], list[int], list[str | None]]:
        items = sorted([*self.classes[0], *self.classes[1]])
        return [i[1] for i in items], [i[2] for i in items], [i[3] for i in items]


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 6),
    st.lists(st.lists(st.booleans(), max_size=15), max_size=8),
)
def test_buffer_matches_per_class_deques(capacity: int, batches: list[list[bool]]) -> None:
    buffer = ValidationBuffer(capacity_per_class=capacity)
    reference = ReferenceBuffer(capacity)
    counter = 0
    for batch in batches:
        y = [int(b) for b in batch]
        X = np.arange(counter, counter + len(y), dtype=np.float64).reshape(-1, 1) * [1.0, -1.0]
        keys: list[str | None] = [f"e{counter + i}" if i % 2 else None for i in range(len(y))]
        counter += len(y)
        buffer.add(X.reshape(len(y), 2), np.array(y, dtype=np.uint8), keys)
        reference.add(X.reshape(len(y), 2), y, keys)
        X_got, y_got, keys_got = buffer.arrays()
        X_ref, y_ref, keys_ref = reference.arrays()
        assert X_got.tolist() == X_ref
        assert y_got.tolist() == y_ref
        assert keys_got == keys_ref
        assert buffer.n_positive == len(reference.classes[1])
        assert buffer.n_negative == len(reference.classes[0])
    assert buffer.n_seen == counter
    restored = ValidationBuffer.from_dict(json.loads(json.dumps(buffer.to_dict())))
    assert restored.to_dict() == buffer.to_dict()


#: A row of the reference: (number, value, id).
Row = tuple[int, float, str | None]


class ReferenceLabels:
    """One deque per class of (number, value, id); an event's label found by a scan.

    An id names the newest event that had it: an older row of the same id loses it.
    """

    def __init__(self, capacity: int) -> None:
        self.classes: tuple[collections.deque[Row], collections.deque[Row]] = (
            collections.deque(maxlen=capacity),
            collections.deque(maxlen=capacity),
        )
        self.seq = 0

    def add(self, value: float, label: int, event_id: str | None) -> None:
        if event_id is not None:
            for rows in self.classes:
                for i, (seq, old_value, old_id) in enumerate(rows):
                    if old_id == event_id:
                        rows[i] = (seq, old_value, None)
        self.classes[label].append((self.seq, value, event_id))
        self.seq += 1

    def label_event(self, event_id: str, value: float, label: int) -> str:
        held = [(item, c) for c in (0, 1) for item in self.classes[c] if item[2] == event_id]
        if not held:
            self.add(value, label, event_id)
            return "new"
        ((newest, old_label),) = held
        if old_label == label:
            return "repeated"
        self.classes[old_label].remove(newest)
        self.add(value, label, event_id)
        return "corrected"

    def rows(self) -> list[tuple[float, int, str | None]]:
        items = sorted((*item, c) for c in (0, 1) for item in self.classes[c])
        return [(value, c, event_id) for _, value, event_id, c in items]


#: A step: an inline labelled row (label, id or None) or feedback ("feedback", id, label).
Step = tuple[str, str | None, int]


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 4),
    st.lists(
        st.tuples(
            st.sampled_from(["inline", "feedback"]),
            st.sampled_from([None, "a", "b", "c"]),
            st.integers(0, 1),
        ),
        max_size=30,
    ),
)
def test_an_events_latest_label_is_the_one_held(capacity: int, steps: list[Step]) -> None:
    # A second label for an event added a second row: now it replaces the first, or, the
    # same label again, changes nothing; the classes stay bounded and in order.
    buffer, reference = ValidationBuffer(capacity), ReferenceLabels(capacity)
    for n, (kind, event_id, label) in enumerate(steps):
        if kind == "feedback" and event_id is not None:
            expected = reference.label_event(event_id, float(n), label)
            assert buffer.label_event(event_id, [float(n)], label) == expected
        else:
            buffer.add([[float(n)]], [label], ids=[event_id])
            reference.add(float(n), label, event_id)
        X, y, _ = buffer.arrays()
        got = list(zip(X[:, 0].tolist(), y.tolist(), buffer.ids(), strict=True))
        assert got == reference.rows()
    # The ids go through a checkpoint: a label delivered again after it still repeats.
    restored = ValidationBuffer.from_dict(json.loads(json.dumps(buffer.to_dict())))
    assert restored.to_dict() == buffer.to_dict()
    for event_id in ("a", "b", "c"):
        label = buffer.label_of(event_id)
        assert restored.label_of(event_id) == label
        if label is not None:
            assert restored.label_event(event_id, [0.0], label) == "repeated"


def test_the_ids_of_a_batch_point_at_the_rows_held() -> None:
    # Positives early in a batch outlive the negatives after them: their ids still find them.
    buffer = ValidationBuffer(capacity_per_class=3)
    X = np.arange(10, dtype=np.float64)[:, None]
    buffer.add(X, [1, 1, 0, 0, 0, 0, 0, 0, 0, 0], ids=[f"e{i}" for i in range(10)])
    assert [buffer.label_of(f"e{i}") for i in range(10)] == [1, 1] + [None] * 5 + [0] * 3
    assert buffer.label_event("e0", [0.0], 0) == "corrected"
    assert (buffer.n_positive, buffer.n_negative) == (1, 3)
    assert buffer.arrays()[0][:, 0].tolist() == [1.0, 8.0, 9.0, 0.0]
    # Many more ids than rows held: the index is pruned, the rows held are still found.
    for start in range(10, 200, 10):
        buffer.add(X + start, [0] * 10, ids=[f"e{start + i}" for i in range(10)])
    assert len(buffer._event_rows) <= 4 * 3 + 10
    assert [buffer.label_of(f"e{i}") for i in (1, 197, 198, 199, 196)] == [1, 0, 0, 0, None]


def test_rare_positives_survive_a_flood_of_negatives() -> None:
    buffer = ValidationBuffer(capacity_per_class=10)
    buffer.add(np.array([[100.0], [200.0]]), [1, 1], keys=["a1", "a2"])
    for start in range(0, 10_000, 1000):
        buffer.add(np.arange(start, start + 1000, dtype=np.float64)[:, None], np.zeros(1000))
    X, y, keys = buffer.arrays()
    assert (buffer.n_positive, buffer.n_negative, len(buffer)) == (2, 10, 12)
    assert X[:2, 0].tolist() == [100.0, 200.0]
    assert keys[:2] == ["a1", "a2"]
    assert X[2:, 0].tolist() == [float(v) for v in range(9990, 10_000)]
    assert y.dtype == np.int8


def test_buffer_arrays_are_copies_and_empty_is_well_shaped() -> None:
    empty = ValidationBuffer(3, n_features=4)
    X, y, keys = empty.arrays()
    assert (X.shape, y.shape, keys) == ((0, 4), (0,), [])
    buffer = ValidationBuffer(3).add(np.array([[1.0, 2.0]]), np.array([[1]]))
    X, _, _ = buffer.arrays()
    X[0, 0] = 99.0
    assert buffer.arrays()[0][0, 0] == 1.0


def test_buffer_refuses_bad_input_with_clear_messages() -> None:
    buffer = ValidationBuffer(5).add(np.zeros((1, 2)), [0])
    with pytest.raises(ValueError, match=r"2-D array of rows \(m, d\)"):
        buffer.add(np.zeros(2), [0])
    with pytest.raises(ValueError, match="3 features but the buffer holds rows of 2"):
        buffer.add(np.zeros((1, 3)), [0])
    with pytest.raises(ValueError, match="1 rows but y has 2 labels"):
        buffer.add(np.zeros((1, 2)), [0, 1])
    with pytest.raises(ValueError, match="only 0 and 1"):
        buffer.add(np.zeros((1, 2)), [3])
    with pytest.raises(ValueError, match="NaN or infinite"):
        buffer.add(np.array([[math.nan, 0.0]]), [0])
    with pytest.raises(ValueError, match="keys must be strings"):
        buffer.add(np.zeros((1, 2)), [0], keys=[7])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="2 keys"):
        buffer.add(np.zeros((1, 2)), [0], keys=["a", "b"])
    with pytest.raises(ValueError, match="capacity_per_class must be at least 1"):
        ValidationBuffer(0)
    with pytest.raises(ValueError, match="capacity_per_class must be an integer"):
        ValidationBuffer(2.5)  # type: ignore[arg-type]
    assert len(buffer) == 1


def test_a_huge_saved_capacity_is_checked_not_allocated() -> None:
    # from_dict allocated the saved capacity before it was resized: 10**12 rows ran out of memory.
    saved = ValidationBuffer(4).add(np.array([[1.0], [2.0], [3.0]]), [0, 1, 0]).to_dict()
    saved["capacity_per_class"] = 10**12
    restored = ValidationBuffer.from_dict(saved, capacity_per_class=4)
    X, y, _ = restored.arrays()
    assert restored.capacity_per_class == 4
    assert (X.ravel().tolist(), y.tolist(), restored.n_seen) == ([1.0, 2.0, 3.0], [0, 1, 0], 3)
    with pytest.raises(ModelError, match="capacity_per_class = 1"):
        ValidationBuffer.from_dict({**saved, "capacity_per_class": 1}, capacity_per_class=4)


def test_buffer_from_dict_names_the_problem() -> None:
    good = ValidationBuffer(2).add(np.array([[1.0], [2.0]]), [0, 1]).to_dict()
    with pytest.raises(ModelError, match="lacks the key 'rows'"):
        ValidationBuffer.from_dict({k: v for k, v in good.items() if k != "rows"})
    with pytest.raises(ModelError, match="capacity_per_class = 1"):
        ValidationBuffer.from_dict({**good, "capacity_per_class": 1, "labels": [0, 0]})
    with pytest.raises(ModelError, match="n_seen"):
        ValidationBuffer.from_dict({**good, "n_seen": 1})
    with pytest.raises(ModelError, match="invalid"):
        ValidationBuffer.from_dict({**good, "rows": [[1.0], ["x"]]})
    with pytest.raises(ModelError, match="invalid"):
        ValidationBuffer.from_dict([])  # type: ignore[arg-type]
