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
