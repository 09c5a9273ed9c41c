"""refine_clipped against the clipped vectors computed row by row from scratch.

A pass learned ``used`` (every row as it came); the next plan teaches some
alerts clipped and drops others. The refined guess must be the fixed point
the row-by-row computation reaches: each clipped row pulled in under the
statistics of everything learned before it, as the new plan teaches it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect.clipping import clip_towards_mean, refine_clipped
from stream_detect.density import floor_covariance, floor_variance, full_distance
from stream_detect.detector import Detector
from stream_detect.settings import DetectorSettings

SIGMA = 3.0
FLOOR = 1e-9


def _statistics(rows: np.ndarray, full: bool) -> tuple[float, np.ndarray, np.ndarray]:
    mean = rows.mean(axis=0)
    dev = rows - mean
    second = dev.T @ dev if full else np.sum(dev * dev, axis=0)
    return float(rows.shape[0]), mean, second


def _clip(x: np.ndarray, rows: np.ndarray, full: bool) -> np.ndarray:
    n, mean, second = _statistics(rows, full)
    if full:
        cov = floor_covariance(second / n, mean, FLOOR, 0.0)
        distance_sq, _ = full_distance(x[None, :], mean, cov)
    else:
        var = floor_variance(second / n, mean, FLOOR, 0.0)
        distance_sq = np.sum(np.square(x - mean) / var)[None]
    out: np.ndarray = clip_towards_mean(x[None, :], mean[None, :], distance_sq, SIGMA)[0]
    return out


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    full=st.booleans(),
    dropped_share=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_refined_vectors_are_the_row_by_row_ones(
    seed: int, full: bool, dropped_share: float
) -> None:
    rng = np.random.default_rng(seed)
    d, history, rows = 3, 200, 40
    base = rng.normal(size=(history, d)) @ (np.eye(d) + 0.3 * rng.normal(size=(d, d)))
    X = rng.normal(size=(rows, d))
    spikes = np.sort(rng.choice(np.arange(1, rows), size=6, replace=False))
    X[spikes] += rng.choice([-9.0, 9.0], size=(spikes.size, d))
    # The new plan: some spikes dropped, the others (and always the last) clipped.
    dropped = spikes[:-1][rng.random(spikes.size - 1) < dropped_share]
    clipped = np.setdiff1d(spikes, dropped)
    learned_now = np.ones(rows, bool)
    learned_now[dropped] = False

    # The pass learned every row as it came: its statistics at the clipped rows.
    stats = [_statistics(np.vstack([base, X[:k]]), full) for k in clipped.tolist()]
    n = np.array([s[0] for s in stats])
    mean = np.array([s[1] for s in stats])
    second = np.array([s[2] for s in stats])

    # Row by row: the vector each row teaches under the new plan.
    expected = X.copy()
    for k in clipped.tolist():
        before = np.vstack([base, expected[:k][learned_now[:k]]])
        expected[k] = _clip(X[k], before, full)

    taught = X.copy()  # first guess: unclipped, as the pass used them
    changed = np.union1d(dropped, clipped)
    out = refine_clipped(
        X,
        X,
        taught,
        np.arange(rows),
        n,
        mean,
        second,
        changed,
        clipped,
        clip_sigma=SIGMA,
        decay=1.0,
        variance_floor=FLOOR,
        relative_floor=0.0,
        was_learned=np.ones(changed.size, bool),
        is_learned=learned_now[changed],
    )
    np.testing.assert_allclose(out[clipped], expected[clipped], rtol=1e-10, atol=1e-10)
    unchanged = np.setdiff1d(np.arange(rows), clipped)
    assert np.array_equal(out[unchanged], X[unchanged])


def test_without_masks_every_changed_row_counts_as_learned() -> None:
    X = np.array([[0.0], [2.0], [20.0], [0.0], [30.0]])
    taught = X.copy()
    taught[2] = 5.0

    def refine(was: np.ndarray | None, now: np.ndarray | None) -> np.ndarray:
        out: np.ndarray = refine_clipped(
            X,
            X,
            taught,
            np.arange(5),
            np.array([4.0]),
            np.array([[5.5]]),
            np.array([[283.0]]),
            np.array([2, 4]),
            np.array([4]),
            clip_sigma=2.0,
            decay=1.0,
            variance_floor=1e-9,
            relative_floor=0.0,
            was_learned=was,
            is_learned=now,
        )
        return out

    both = np.ones(2, bool)
    assert np.array_equal(refine(None, None), refine(both, both))
    dropped = refine(both, np.array([False, True]))
    # Rows 0, 1, 3 alone before row 4: mean 2/3, m2 8/3, so 2/3 + 2 * sqrt(8/9).
    assert dropped[4, 0] == pytest.approx(2 / 3 + 2 * np.sqrt(8 / 9), rel=1e-12)


@pytest.mark.parametrize("model", ["diagonal", "full"])
@pytest.mark.parametrize("batch", [7, 4096])
def test_values_whose_squares_leave_the_float_range_do_not_end_a_run(
    model: str, batch: int
) -> None:
    """A feature constant at 0, then jumping to ±1e150: the refined guesses give up, the
    passes decide (the full model's corrected co-moments lost positive definiteness)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 3))
    X[:, 2] = 0.0
    X[1000:, 2] = rng.choice([1e150, -1e150, 1.0, 1e-300, 5.0], size=2000)
    detector = Detector(DetectorSettings(model=model), ("a", "b", "c"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no numpy warning on the way
        alerts = sum(
            int(detector.process(X[i : i + batch]).alert.sum()) for i in range(0, 3000, batch)
        )
    assert alerts >= 500  # the jumps to ±1e150 alert
