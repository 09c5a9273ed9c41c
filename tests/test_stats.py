"""Tests of stream_detect.stats against numpy and a per-event Welford loop.

The yardsticks are deliberately plain: numpy's ``mean``/``var(ddof=0)``/
``cov(bias=True)``, an explicit weighted mean and variance for forgetting, and a
Python loop that applies Welford's recurrence one event at a time.

Tolerances say what the float64 data can support: a mean agrees to 1e-9 of the
data's scale; a second moment agrees to 1e-9 of its own magnitude, plus an
absolute floor of ``1e-12 * n * scale**2`` -- each deviation of an event near
``loc = 1000 * scale`` is known only to ``eps * |loc| ~ 2e-13 * scale``, so an
m2 that happens to be tiny cannot be known better than that.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from stream_detect import prequential
from stream_detect.errors import ModelError
from stream_detect.stats import RunningCovariance, RunningMoments, decay_factor
from stream_detect.stats_for_many import learn_one_each

Array = NDArray[np.float64]
Moments = RunningMoments | RunningCovariance
KINDS = [RunningMoments, RunningCovariance]
SCALES = [1e-6, 1.0, 1e6]
RTOL = 1e-9
FLOOR = 1e-12

# ---------------------------------------------------------------- references


@dataclass
class Loop:
    """What the one-event-at-a-time loop saw before each row, and where it ended."""

    n: Array
    mean: Array
    second: Array
    final_n: float
    final_mean: Array
    final_second: Array


def welford_loop(
    X: Array,
    learn: NDArray[np.bool_],
    *,
    full: bool,
    half_life: float | None = None,
    start: tuple[float, Array, Array] | None = None,
) -> Loop:
    """Welford's recurrence, one event at a time, written out independently of the package."""
    rows, d = X.shape
    decay = 1.0 if half_life is None else 0.5 ** (1.0 / half_life)
    if start is None:
        n, mean, second = 0.0, np.zeros(d), np.zeros((d, d) if full else d)
    else:
        n, mean, second = start[0], start[1].copy(), start[2].copy()
    out_n = np.empty(rows)
    out_mean = np.empty((rows, d))
    out_second = np.empty((rows, *second.shape))
    for i in range(rows):
        out_n[i], out_mean[i], out_second[i] = n, mean, second
        if not learn[i]:
            continue
        n = decay * n + 1.0
        delta = X[i] - mean
        mean = mean + delta / n
        after = X[i] - mean
        second = decay * second + (np.outer(delta, after) if full else delta * after)
    return Loop(out_n, out_mean, out_second, n, mean, second)


def weighted_moments(X: Array, half_life: float | None) -> tuple[float, Array, Array, Array]:
    """n, mean, population var and cov with weights ``2**(-k / half_life)``.

    ``k`` is the number of rows learned after a row, so the newest weighs 1.
    """
    rows = X.shape[0]
    k = np.arange(rows - 1, -1, -1, dtype=np.float64)
    w = np.ones(rows) if half_life is None else 2.0 ** (-k / half_life)
    n = float(w.sum())
    mean = np.average(X, axis=0, weights=w)
    dev = X - mean
    var = np.average(dev**2, axis=0, weights=w)
    cov = np.einsum("k,ki,kj->ij", w, dev, dev) / n
    return n, mean, var, cov


def data(rng: np.random.Generator, rows: int, d: int, scale: float, loc: Array) -> Array:
    """``loc + scale * N(0, 1)``."""
    return loc + scale * rng.standard_normal((rows, d))


# ---------------------------------------------------------------- comparisons


def assert_mean_close(actual: Array, expected: Array, scale: float) -> None:
    """Means agree to 1e-9 of the data's scale."""
    np.testing.assert_allclose(actual, expected, rtol=0.0, atol=RTOL * scale)


def assert_second_close(
    actual: Array, expected: Array, n: Array | float, scale: float, *, full: bool
) -> None:
    """m2 / co-moments agree to 1e-9 of their own magnitude (see the module docstring).

    ``n`` is one count or one per row of a stack. An off-diagonal co-moment is
    measured against ``sqrt(m2_i * m2_j)``, the size Cauchy-Schwarz allows it.
    """
    expected = np.asarray(expected)
    n_arr = np.asarray(n, dtype=np.float64)
    magnitude = _comoment_magnitude(expected) if full else np.abs(expected)
    trailing = 2 if full else 1
    floor = FLOOR * n_arr.reshape(n_arr.shape + (1,) * trailing) * scale**2
    error = np.abs(np.asarray(actual) - expected)
    bound = RTOL * magnitude + floor
    bad = error > bound
    assert not np.any(bad), (
        f"second moment off by {error[bad].max():.3g} where {bound[bad].min():.3g} is allowed"
    )


def _comoment_magnitude(stack: Array) -> Array:
    diag = np.abs(np.diagonal(stack, axis1=-2, axis2=-1))
    out: Array = np.sqrt(diag[..., :, None] * diag[..., None, :])
    return out


def assert_state_close(state: Moments, n: float, mean: Array, second: Array, scale: float) -> None:
    assert state.n == pytest.approx(n, rel=1e-12)
    assert_mean_close(state.mean, mean, scale)
    assert_second_close(
        state.second, second, float(n), scale, full=isinstance(state, RunningCovariance)
    )


# ---------------------------------------------------------------- strategies


def make_stream(
    rows: int, scale: float, loc_units: list[float], p_learn: float, prior: int, seed: int
) -> dict[str, Any]:
    """A batch of ``loc + scale * N(0, 1)`` rows, its learn mask and rows learned before it."""
    rng = np.random.default_rng(seed)
    loc = np.array(loc_units) * scale
    d = loc.size
    return {
        "X": data(rng, rows, d, scale, loc),
        "prior": data(rng, prior, d, scale, loc),
        "learn": rng.random(rows) < p_learn,
        "scale": scale,
    }


@st.composite
def streams(draw: st.DrawFn, max_rows: int = 4096) -> dict[str, Any]:
    """Hypothesis-drawn shape, scale, offset within 1000 scales, learn mask and prior state."""
    # Hypothesis favours small integers; the second branch reaches the long batches.
    rows = draw(st.one_of(st.integers(1, 40), st.integers(1, max_rows)))
    d = draw(st.integers(1, 6))
    scale = draw(st.sampled_from(SCALES))
    loc_units = draw(st.lists(st.floats(-1000, 1000), min_size=d, max_size=d))
    p_learn = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]))
    prior = draw(st.sampled_from([0, 0, 1, 2, 37]))
    return make_stream(rows, scale, loc_units, p_learn, prior, draw(st.integers(0, 2**32 - 1)))


#: The far corners, always tried: the longest batch at both extreme scales and offsets.
LONGEST = [
    make_stream(4096, 1e6, [1000.0, -1000.0, 0.5, 999.9, -3.0, 0.0], 0.9, 37, 1),
    make_stream(4096, 1e-6, [-1000.0] * 6, 1.0, 0, 2),
]


# ---------------------------------------------------------------- update / learn vs numpy


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("kind", KINDS)
def test_update_and_learn_match_numpy(kind: type[Moments], scale: float) -> None:
    rng = np.random.default_rng(1)
    X = data(rng, 500, 4, scale, np.array([-1000.0, -3.0, 0.0, 999.0]) * scale)
    by_update = kind.empty(4)
    for x in X:
        assert by_update.update(x) is by_update
    by_learn = kind.empty(4)
    assert by_learn.learn(X) is by_learn
    for state in (by_update, by_learn):
        assert state.n == 500.0
        assert_mean_close(state.mean, X.mean(axis=0), scale)
        assert_second_close(state.var * 500, X.var(axis=0, ddof=0) * 500, 500.0, scale, full=False)
        if isinstance(state, RunningCovariance):
            expected = np.cov(X.T, bias=True) * 500
            assert_second_close(state.cov * 500, expected, 500.0, scale, full=True)
            np.testing.assert_array_equal(state.var, np.diagonal(state.cov))
            np.testing.assert_array_equal(state.comoment, state.second)
        else:
            np.testing.assert_array_equal(state.m2, state.second)


def test_variance_is_the_population_variance() -> None:
    state = RunningMoments.empty(1).learn(np.array([[1.0], [2.0], [3.0], [4.0]]))
    assert state.var.tolist() == [1.25]  # 5 / 4, not 5 / 3
    full = RunningCovariance.empty(2).learn(np.array([[1.0, 2.0], [3.0, 6.0]]))
    assert full.cov.tolist() == [[1.0, 2.0], [2.0, 4.0]]


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_state_has_zero_statistics(kind: type[Moments]) -> None:
    state = kind.empty(3)
    assert state.n == 0.0 and state.d == 3
    assert not np.any(state.var) and not np.any(state.mean)
    assert state.learn(np.zeros((0, 3))).n == 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_learn_rejects_rows_of_the_wrong_width(kind: type[Moments]) -> None:
    with pytest.raises(ValueError, match="3 features"):
        kind.empty(3).learn(np.zeros((4, 2)))


@settings(max_examples=40, deadline=None)
@given(streams(max_rows=300), st.sampled_from([None, 1.0, 7.5, 300.0]), st.booleans())
def test_learn_equals_repeated_update(
    stream: dict[str, Any], half_life: float | None, full: bool
) -> None:
    kind = RunningCovariance if full else RunningMoments
    X, prior, scale = stream["X"], stream["prior"], stream["scale"]
    by_learn = kind.empty(X.shape[1], half_life).learn(prior).learn(X)
    by_update = kind.empty(X.shape[1], half_life)
    for x in np.concatenate([prior, X]):
        by_update.update(x)
    assert_state_close(by_learn, by_update.n, by_update.mean, by_update.second, scale)


# ---------------------------------------------------------------- merge


@settings(max_examples=60, deadline=None)
@given(streams(max_rows=400), st.data(), st.booleans())
def test_merge_equals_the_fit_of_the_concatenation(
    stream: dict[str, Any], draw: st.DataObject, full: bool
) -> None:
    kind = RunningCovariance if full else RunningMoments
    X, scale = stream["X"], stream["scale"]
    cut = draw.draw(st.integers(0, X.shape[0]), label="cut")
    left = kind.empty(X.shape[1]).learn(X[:cut])
    right = kind.empty(X.shape[1]).learn(X[cut:])
    before = (left.to_dict(), right.to_dict())
    merged = left.merge(right)
    assert (left.to_dict(), right.to_dict()) == before, "merge changed an input"
    assert merged is not left and merged is not right
    n, mean, var, cov = weighted_moments(X, None)
    assert_state_close(merged, n, mean, (cov if full else var) * n, scale)
    # Merging is symmetric up to rounding.
    swapped = right.merge(left)
    assert_state_close(swapped, merged.n, merged.mean, merged.second, scale)


def test_merge_of_many_partitions_equals_one_fit() -> None:
    rng = np.random.default_rng(5)
    X = data(rng, 1000, 3, 1e6, np.array([1e9, -2e8, 0.0]))
    parts = np.split(X, [10, 11, 400, 999])
    merged = RunningCovariance.empty(3)
    for part in parts:
        merged = merged.merge(RunningCovariance.empty(3).learn(part))
    n, mean, _, cov = weighted_moments(X, None)
    assert_state_close(merged, n, mean, cov * n, 1e6)


def test_merge_rejects_states_of_different_width() -> None:
    with pytest.raises(ValueError, match="3 and 2 features"):
        RunningMoments.empty(3).merge(RunningMoments.empty(2))


# ---------------------------------------------------------------- prequential vs the loop


def check_prequential(stream: dict[str, Any], full: bool, half_life: float | None) -> None:
    kind = RunningCovariance if full else RunningMoments
    X, prior, learn, scale = stream["X"], stream["prior"], stream["learn"], stream["scale"]
    state = kind.empty(X.shape[1], half_life).learn(prior)
    start = (state.n, state.mean.copy(), state.second.copy())
    before = state.to_dict()
    prefix = state.prequential(X, learn)
    assert state.to_dict() == before, "prequential changed the state"
    loop = welford_loop(X, learn, full=full, half_life=half_life, start=start)
    np.testing.assert_allclose(prefix.n, loop.n, rtol=1e-12, atol=0.0)
    assert_mean_close(prefix.mean, loop.mean, scale)
    assert_second_close(prefix.second, loop.second, loop.n, scale, full=full)
    spread = prefix.spread
    assert np.all(np.isfinite(spread))
    seen = loop.n > 0
    per_row_n = prefix.n[seen].reshape((-1,) + (1,) * (spread.ndim - 1))
    np.testing.assert_array_equal(spread[seen], prefix.second[seen] / per_row_n)
    assert not np.any(spread[~seen])
    # Committing the learned rows reaches the loop's final state.
    state.learn(X[learn])
    assert_state_close(state, loop.final_n, loop.final_mean, loop.final_second, scale)


@settings(max_examples=30, deadline=None)
@given(streams())
@example(LONGEST[0])
@example(LONGEST[1])
def test_prequential_diagonal_equals_the_per_event_loop(stream: dict[str, Any]) -> None:
    check_prequential(stream, full=False, half_life=None)


@settings(max_examples=20, deadline=None)
@given(streams())
@example(LONGEST[0])
@example(LONGEST[1])
def test_prequential_full_equals_the_per_event_loop(stream: dict[str, Any]) -> None:
    check_prequential(stream, full=True, half_life=None)


@settings(max_examples=30, deadline=None)
@given(streams(), st.sampled_from([1.0, 2.5, 16.0, 300.0]), st.booleans())
@example(LONGEST[0], 2.5, True)
@example(LONGEST[1], 16.0, False)
def test_prequential_with_half_life_equals_the_per_event_loop(
    stream: dict[str, Any], half_life: float, full: bool
) -> None:
    check_prequential(stream, full=full, half_life=half_life)


@pytest.mark.parametrize("batch", [1, 7, 64, 1500])
def test_prequential_in_batches_of_any_size_equals_one_loop(batch: int) -> None:
    rng = np.random.default_rng(batch)
    X = data(rng, 1500, 3, 1e-6, np.array([5e-4, -1e-3, 0.0]))
    learn = rng.random(1500) < 0.8
    loop = welford_loop(X, learn, full=False)
    state = RunningMoments.empty(3)
    for begin in range(0, 1500, batch):
        part = slice(begin, begin + batch)
        prefix = state.prequential(X[part], learn[part])
        assert_mean_close(prefix.mean, loop.mean[part], 1e-6)
        assert_second_close(prefix.second, loop.second[part], loop.n[part], 1e-6, full=False)
        state.learn(X[part][learn[part]])


def test_prequential_without_a_mask_learns_every_row() -> None:
    X = np.arange(12.0).reshape(6, 2)
    prefix = RunningMoments.empty(2).prequential(X)
    assert prefix.n.tolist() == [0, 1, 2, 3, 4, 5]
    np.testing.assert_allclose(prefix.mean[3], X[:3].mean(axis=0))


def test_prequential_rejects_a_mask_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="learn mask"):
        RunningMoments.empty(1).prequential(np.zeros((3, 1)), np.ones(2, dtype=bool))


# ---------------------------------------------------------------- forgetting vs explicit weights


def test_decay_factor_halves_the_weight_every_half_life() -> None:
    assert decay_factor(None) == 1.0
    assert decay_factor(10.0) ** 10 == pytest.approx(0.5, rel=1e-15)
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="half_life"):
            decay_factor(bad)


@pytest.mark.parametrize("half_life", [1.0, 3.0, 50.0, 1000.0])
@pytest.mark.parametrize("kind", KINDS)
def test_half_life_weights_events_by_powers_of_two(kind: type[Moments], half_life: float) -> None:
    rng = np.random.default_rng(int(half_life))
    scale = 1e6
    X = data(rng, 700, 3, scale, np.array([1e9, 0.0, -4e8]))
    learn = rng.random(700) < 0.7
    by_learn = kind.empty(3, half_life).learn(X[learn])
    by_update = kind.empty(3, half_life)
    for x in X[learn]:
        by_update.update(x)
    n, mean, var, cov = weighted_moments(X[learn], half_life)
    second = (cov if kind is RunningCovariance else var) * n
    for state in (by_learn, by_update):
        assert_state_close(state, n, mean, second, scale)
        np.testing.assert_allclose(state.var, var, rtol=1e-9)
    # Row i of a prequential batch sees the learned rows before it, newest weighing 1.
    prefix = kind.empty(3, half_life).prequential(X, learn)
    for i in (1, 2, 10, 350, 699):
        before = X[:i][learn[:i]]
        if before.shape[0] == 0:
            continue
        n_i, mean_i, var_i, cov_i = weighted_moments(before, half_life)
        assert prefix.n[i] == pytest.approx(n_i, rel=1e-12)
        assert_mean_close(prefix.mean[i], mean_i, scale)
        expected = (cov_i if kind is RunningCovariance else var_i) * n_i
        assert_second_close(prefix.second[i], expected, n_i, scale, full=kind is RunningCovariance)


def test_without_forgetting_every_event_weighs_one() -> None:
    state = RunningMoments.empty(1, None).learn(np.ones((1000, 1)))
    assert state.n == 1000.0
    forgetting = RunningMoments.empty(1, 10.0).learn(np.ones((1000, 1)))
    # sum of 2**(-k/10), k = 0..999: the geometric series, close to its limit.
    assert forgetting.n == pytest.approx(1 / (1 - 0.5**0.1), rel=1e-12)


# ---------------------------------------------------------------- edge cases


@pytest.mark.parametrize("value", [0.0, 3.0, 1e6 + 0.1, -7.3e-6])
@pytest.mark.parametrize("half_life", [None, 20.0])
@pytest.mark.parametrize("kind", KINDS)
def test_a_constant_feature_has_zero_variance_and_no_nan(
    kind: type[Moments], half_life: float | None, value: float
) -> None:
    rng = np.random.default_rng(3)
    X = np.column_stack([np.full(2000, value), rng.normal(size=2000)])
    learn = rng.random(2000) < 0.9
    prefix = kind.empty(2, half_life).prequential(X, learn)
    spread = prefix.spread if kind is RunningMoments else np.diagonal(prefix.spread, 0, 1, 2)
    assert np.all(np.isfinite(prefix.mean)) and np.all(np.isfinite(prefix.spread))
    assert np.all(prefix.mean[prefix.n > 0, 0] == value)
    assert np.all(spread[:, 0] == 0.0)
    updated = kind.empty(2, half_life)
    for x in X[:300]:
        updated.update(x)
    assert updated.mean[0] == value and updated.var[0] == 0.0
    learned = kind.empty(2, half_life).learn(X[learn])
    merged = learned.merge(updated)
    for state in (learned, merged):
        assert np.all(np.isfinite(state.second)) and np.all(state.var >= 0.0)
        assert state.mean[0] == value and state.var[0] == 0.0
    # A prefix that starts from a learned state stays exact too.
    after = learned.prequential(X[:100], learn[:100]).spread
    assert np.all((after[:, 0] if after.ndim == 2 else after[:, 0, 0]) == 0.0)


@pytest.mark.parametrize(
    ("value", "learned", "half_life", "ulps", "rows"),
    [
        (273923.3746429086, 15, 1.0, 27, 93),
        (-966944.7289429418, 2, 3.0, 18, 244),
        (87249.98293084581, 22, 1.0, 56, 280),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_prequential_variance_is_never_negative(
    kind: type[Moments], value: float, learned: int, half_life: float, ulps: int, rows: int
) -> None:
    # A constant that moves by a few ulps while the old level is forgotten makes
    # the prefix m2 a difference of two nearly equal sums, too small to trigger
    # a chunk split; these cases round below zero before clipping.
    state = kind.empty(1, half_life).learn(np.full((learned, 1), value))
    moved = np.full((rows, 1), value + ulps * np.spacing(value))
    spread = state.prequential(moved).spread.reshape(rows)
    assert np.all(spread >= 0.0)


def test_learn_keeps_a_constant_feature_exactly_constant() -> None:
    value = 1e6 + 0.1
    state = RunningMoments.empty(1).learn(np.full((1800, 1), value))
    assert state.mean[0] == value
    assert state.var[0] == 0.0


def find_splits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count chunks the prefix sums refused (the chunk-splitting path was taken)."""
    refused: list[int] = []
    original = prequential.prefix_chunk

    def spy(moments: Any, X: Array, learn: NDArray[np.bool_]) -> Any:
        result = original(moments, X, learn)
        if result is None:
            refused.append(X.shape[0])
        return result

    monkeypatch.setattr(prequential, "prefix_chunk", spy)
    return refused


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("half_life", [None, 50.0])
@pytest.mark.parametrize("kind", KINDS)
def test_a_step_of_a_thousand_deviations_inside_one_batch_still_agrees(
    kind: type[Moments], half_life: float | None, scale: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = find_splits(monkeypatch)
    rng = np.random.default_rng(11)
    rows = 4096
    X = data(rng, rows, 3, scale, np.array([1000.0, 0.0, -250.0]) * scale)
    X[1500:] += 1e3 * scale  # every feature jumps by a thousand standard deviations
    learn = rng.random(rows) < 0.95
    state = kind.empty(3, half_life).learn(data(rng, 100, 3, scale, X[0]))
    start = (state.n, state.mean.copy(), state.second.copy())
    prefix = state.prequential(X, learn)
    loop = welford_loop(X, learn, full=kind is RunningCovariance, half_life=half_life, start=start)
    assert_mean_close(prefix.mean, loop.mean, scale)
    assert_second_close(prefix.second, loop.second, loop.n, scale, full=kind is RunningCovariance)
    if half_life is not None:
        # The old level is forgotten, so sums around it would cancel ~1e6 of their digits.
        assert refused, "the step never made a chunk split"


@pytest.mark.parametrize("kind", KINDS)
def test_stationary_data_far_from_zero_needs_no_chunk_split(
    kind: type[Moments], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sums are taken around the first learned row, not around 0, so an
    # offset of 1e6 standard deviations costs no digits and no retries.
    refused = find_splits(monkeypatch)
    X = data(np.random.default_rng(12), 4096, 3, 1.0, np.full(3, 1e6))
    learn = np.arange(4096) % 3 > 0
    kind.empty(3).prequential(X, learn)
    assert refused == []


# ---------------------------------------------------------------- persistence


@pytest.mark.parametrize("half_life", [None, 12.5])
@pytest.mark.parametrize("kind", KINDS)
def test_to_dict_from_dict_round_trips_exactly_through_json(
    kind: type[Moments], half_life: float | None
) -> None:
    rng = np.random.default_rng(2)
    state = kind.empty(3, half_life).learn(data(rng, 333, 3, 1e-6, np.full(3, 1e-4)))
    for encoded in (json.dumps(state.to_dict()), orjson.dumps(state.to_dict())):
        restored = kind.from_dict(json.loads(encoded))
        assert type(restored) is kind
        assert restored.n == state.n and restored.half_life == half_life
        assert restored.decay == state.decay
        np.testing.assert_array_equal(restored.mean, state.mean)
        np.testing.assert_array_equal(restored.second, state.second)
        # And it goes on exactly as the original does.
        more = data(rng, 10, 3, 1e-6, np.full(3, 1e-4))
        np.testing.assert_array_equal(
            restored.copy().learn(more).second, state.copy().learn(more).second
        )


def test_from_dict_rejects_a_state_of_another_kind_or_shape() -> None:
    diagonal = RunningMoments.empty(2).learn(np.eye(2)).to_dict()
    with pytest.raises(ModelError, match="kind"):
        RunningCovariance.from_dict(diagonal)
    broken = {**diagonal, "second": [1.0, 2.0, 3.0]}
    with pytest.raises(ModelError, match="shape"):
        RunningMoments.from_dict(broken)
    with pytest.raises(ModelError, match="malformed"):
        RunningMoments.from_dict({"kind": "diagonal"})


def test_copy_is_independent() -> None:
    state = RunningCovariance.empty(2).learn(np.array([[1.0, 2.0], [3.0, 1.0]]))
    twin = state.copy()
    twin.update(np.array([100.0, -100.0]))
    assert state.n == 2.0 and state.mean.tolist() == [2.0, 1.5]


# ---------------------------------------------------------------- one row per state

_values = st.sampled_from([0.0, -0.0, 1.0, -3.5, 1e-300, 1e300, 123456.789])
_state_rows = st.tuples(
    st.sampled_from([0.0, 5e-324, 1.0, 3.0, 1e6]),
    st.lists(_values | st.floats(-1e6, 1e6), min_size=2, max_size=2),
    st.lists(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1e6), min_size=2, max_size=2),
    st.lists(_values | st.floats(-1e6, 1e6), min_size=2, max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_state_rows, min_size=1, max_size=6), st.sampled_from([None, 0.5, 10.0, 1e6]))
def test_learn_one_each_is_learn_of_one_row_bit_for_bit(
    rows: list[tuple[float, list[float], list[float], list[float]]], half_life: float | None
) -> None:
    n = np.array([row[0] for row in rows])
    mean, m2, X = (np.array([row[k] for row in rows]) for k in (1, 2, 3))
    got_n, got_mean, got_m2 = learn_one_each(n, mean, m2, X, decay_factor(half_life))
    for k in range(len(rows)):
        state = RunningMoments(2, half_life)
        state.n, state.mean, state.second = float(n[k]), mean[k].copy(), m2[k].copy()
        with np.errstate(over="ignore", invalid="ignore"):  # both overflow alike near 1e300
            state.learn(X[k : k + 1])
        assert got_n[k].tobytes() == np.float64(state.n).tobytes()
        assert got_mean[k].tobytes() == state.mean.tobytes()
        assert got_m2[k].tobytes() == state.second.tobytes()


@pytest.mark.parametrize("kind", [RunningMoments, RunningCovariance])
def test_an_event_or_batch_of_the_wrong_shape_is_refused_before_the_state_changes(
    kind: type[RunningMoments] | type[RunningCovariance],
) -> None:
    # update() used to broadcast a (2, 2) "event" into a 2-D mean, and prequential() to
    # fail inside numpy ("operands could not be broadcast", "diag requires ...").
    state = kind(2).learn(np.array([[1.0, 2.0], [3.0, 5.0]]))
    before = state.to_dict()
    for event in (np.ones((2, 2)), np.ones(3), 1.0):
        with pytest.raises(ValueError, match=r"x must be one event of 2 features"):
            state.update(event)  # type: ignore[arg-type]
    for rows in (np.ones(2), np.ones((3, 3))):
        with pytest.raises(ValueError, match=r"X: expected rows of 2 features"):
            state.prequential(rows)
        with pytest.raises(ValueError, match=r"X: expected rows of 2 features"):
            state.learn(rows)
    with pytest.raises(TypeError, match="X must hold real numbers"):
        state.learn(np.array([[1j, 2.0]]))
    assert state.to_dict() == before


@pytest.mark.parametrize("kind", [RunningMoments, RunningCovariance])
def test_only_states_of_one_kind_and_one_half_life_merge(
    kind: type[RunningMoments] | type[RunningCovariance],
) -> None:
    other_kind = RunningCovariance if kind is RunningMoments else RunningMoments
    rows = np.array([[1.0, 2.0], [3.0, 5.0]])
    with pytest.raises(TypeError, match="cannot merge"):
        kind(2).learn(rows).merge(other_kind(2).learn(rows))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"half-lives 10\.0 and None"):
        kind(2, 10.0).learn(rows).merge(kind(2).learn(rows))
    # Empty states merge as the identity, whichever side they are on.
    full = kind(2).learn(rows)
    for merged in (full.merge(kind(2)), kind(2).merge(full)):
        assert merged.n == 2.0 and np.array_equal(merged.second, full.second)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (("2",), TypeError, "d must be an integer number of features, got '2'"),
        ((2.5,), TypeError, "d must be an integer"),
        ((True,), TypeError, "d must be an integer"),
        ((2, "x"), TypeError, "half_life must be a number of events or None, got 'x'"),
    ],
)
def test_sizes_and_half_lives_of_the_wrong_type_are_named(
    arguments: tuple[Any, ...], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RunningMoments(*arguments)


@pytest.mark.parametrize(
    ("change", "message"),
    [({"n": -5.0}, "n is -5.0"), ({"n": math.nan}, "n is nan"), ({"mean": [[1.0]]}, "mean has")],
)
def test_a_state_with_an_impossible_count_or_mean_is_refused(
    change: dict[str, Any], message: str
) -> None:
    data = {**RunningMoments(1).learn(np.array([[1.0], [2.0]])).to_dict(), **change}
    with pytest.raises(ModelError, match=message):
        RunningMoments.from_dict(data)
