"""Generated event streams and the readers of results that several test modules share."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.state import load_checkpoint

Array = NDArray[np.float64]


def labelled_stream(count: int = 1500, seed: int = 4) -> tuple[Array, NDArray[np.int8]]:
    """Normal events with rare big deviations; every 20th event labelled, the last one too."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(count, 2))
    labels = np.full(count, -1, dtype=np.int8)
    labelled = np.arange(10, count, 20)
    anomalous = labelled[::5]
    X[anomalous] += rng.choice([-1.0, 1.0], size=(anomalous.size, 2)) * rng.uniform(
        2.5, 5.0, size=(anomalous.size, 1)
    )
    labels[labelled] = 0
    labels[anomalous] = 1
    labels[-1] = 0
    return X, labels


def column(results: list[dict[str, Any]], name: str) -> Array:
    """One output field over all results, null as NaN."""
    return np.array([math.nan if r[name] is None else r[name] for r in results], dtype=np.float64)


def model_state(path: Path) -> dict[str, Any]:
    """The running statistics of the single model in a checkpoint file."""
    checkpoint = load_checkpoint(path)
    assert checkpoint is not None
    (model,) = checkpoint.detector["models"]
    stats: dict[str, Any] = model["state"]["stats"]
    return stats


def assert_same_state(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Two models learned the same events (to rounding)."""
    assert mine["n"] == theirs["n"]
    assert np.allclose(mine["mean"], theirs["mean"], rtol=1e-12, atol=1e-12)
    assert np.allclose(mine["second"], theirs["second"], rtol=1e-12, atol=1e-12)


def detector_state(path: Path) -> dict[str, Any]:
    """The whole detector state of a checkpoint file (models, validation buffer, ε, counters)."""
    checkpoint = load_checkpoint(path)
    assert checkpoint is not None
    return checkpoint.detector


def assert_same_detector(mine: Any, theirs: Any, where: str = "detector") -> None:
    """Two detector states are the same: equal but for float rounding (sums over other batches).

    >>> assert_same_detector({"n": 2, "mean": [0.1 + 0.2]}, {"n": 2, "mean": [0.3]})
    """
    if isinstance(mine, dict) and isinstance(theirs, dict):
        assert mine.keys() == theirs.keys(), where
        for name in mine:
            assert_same_detector(mine[name], theirs[name], f"{where}.{name}")
    elif isinstance(mine, list) and isinstance(theirs, list):
        assert len(mine) == len(theirs), where
        for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            assert_same_detector(a, b, f"{where}[{i}]")
    elif isinstance(mine, float) and isinstance(theirs, float):
        assert math.isclose(mine, theirs, rel_tol=1e-9, abs_tol=1e-12), (where, mine, theirs)
    else:
        assert mine == theirs, (where, mine, theirs)
