"""The running inverse of the full model equals factorising every row's covariance."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from test_detector import assert_matches_reference, make_stream, run, settings_for
from test_models import correlation_condition, one_row_at_a_time

from stream_detect import models
from stream_detect.detector import Detector
from stream_detect.models import GaussianModel
from stream_detect.precision import RunningPrecision
from stream_detect.stats import RunningCovariance

Array = NDArray[np.float64]

#: Feature layouts: plain, very different scales, a constant feature, two equal
#: features (a singular covariance held up only by the ridge), a far offset.
LAYOUTS = ["plain", "scales", "constant", "duplicate", "offset"]


def make_rows(layout: str, rows: int, d: int, rng: np.random.Generator) -> Array:
    X = rng.normal(size=(rows, d)) @ (np.eye(d) + 0.5 * rng.normal(size=(d, d)) / d)
    if layout == "scales":
        X *= np.logspace(-3, 3, d)
    elif layout == "constant":
        X[:, 0] = 42.0
    elif layout == "duplicate":
        X[:, 1] = X[:, 0]
    elif layout == "offset":
        X += 1e6
    return X


def assert_scores_match(got: Any, want: list[Any], seen: NDArray[np.bool_]) -> None:
    """Within the tolerance of the block path: 1e-9 plus rounding amplified by conditioning.

    The amplified rounding is taken relative to the score, to the squared
    distance inside log p and to 1: a direction held up only by the ridge (two
    equal features) carries an error of that size even when log p is near zero.
    """
    log_p = np.array([b.log_p[0] for b in want])
    distance_sq = np.array([b.distance_sq[0] for b in want])
    assert np.array_equal(np.isnan(got.log_p), np.isnan(log_p))
    rtol = np.array([1e-9 + 1e-15 * correlation_condition(b.spread) for b in want])
    for have, expected in ((got.log_p, log_p), (got.distance_sq, distance_sq)):
        error = np.abs(have[seen] - expected[seen])
        conditioning = (rtol[seen] - 1e-9) * (1.0 + np.abs(distance_sq[seen]))
        assert np.all(error <= rtol[seen] * np.abs(expected[seen]) + conditioning + 1e-9)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 200),
    st.integers(2, 6),
    st.sampled_from(LAYOUTS),
    st.sampled_from([None, 3.0, 50.0]),
    st.sampled_from([0.0, 0.5, 1.0]),
    st.sampled_from([None, 1, 1000]),
    st.integers(0, 2**32 - 1),
)
def test_running_inverse_equals_factorising_each_row(
    rows: int,
    d: int,
    layout: str,
    half_life: float | None,
    p_learn: float,
    refresh_every: int | None,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    X = make_rows(layout, rows + 3 * d, d, rng)
    warm, X = X[: 3 * d], X[3 * d :]
    learn = rng.random(rows) < p_learn
    direct = GaussianModel(d, full=True, half_life=half_life, sequential=False)
    direct.learn(warm)
    precision = RunningPrecision.from_moments(direct.stats, refresh_every=refresh_every)
    block = precision.prequential(X, learn)
    assert precision.n == direct.n, "prequential must not learn"
    expected = one_row_at_a_time(direct, X, learn)
    assert_scores_match(block, expected, np.ones(rows, dtype=bool))
    for i in range(0, rows, max(1, rows // 5)):
        assert expected[i].mean is not None
        np.testing.assert_allclose(block.mean[i], expected[i].mean[0], rtol=1e-9, atol=1e-9)
        assert np.isclose(block.contributions[i].sum(), block.distance_sq[i], rtol=1e-9)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 120), st.sampled_from(LAYOUTS), st.integers(0, 2**32 - 1))
def test_a_model_that_starts_empty_scores_like_the_direct_one(
    rows: int, layout: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    X = make_rows(layout, rows, 4, rng)
    learn = np.ones(rows, dtype=bool)
    sequential = GaussianModel(4, full=True, sequential=True)
    block = sequential.prequential(X, learn)
    expected = one_row_at_a_time(GaussianModel(4, full=True, sequential=False), X, learn)
    # Fewer than d + 1 events leave the covariance singular up to the ridge: ill-conditioned.
    assert_scores_match(block, expected, np.arange(rows) >= 5)
    assert np.isnan(block.log_p[0])


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 150), st.integers(1, 149), st.sampled_from([None, 20.0]), st.integers(0, 99))
def test_scoring_in_two_calls_equals_one_call(
    rows: int, cut: int, half_life: float | None, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    X = make_rows("plain", rows + 10, 3, rng)
    cut = min(cut, rows - 1)
    learn = rng.random(rows) < 0.8
    whole = GaussianModel(3, full=True, half_life=half_life, sequential=True)
    whole.learn(X[:10])
    parts = GaussianModel(3, full=True, half_life=half_life, sequential=True)
    parts.learn(X[:10])
    once = whole.prequential(X[10:], learn)
    first = parts.prequential(X[10 : 10 + cut], learn[:cut])
    parts.learn(X[10 : 10 + cut][learn[:cut]])
    second = parts.prequential(X[10 + cut :], learn[cut:])
    np.testing.assert_allclose(
        np.concatenate([first.log_p, second.log_p]), once.log_p, rtol=1e-11, atol=1e-11
    )
    assert first.spread is None and once.contributions is not None


def test_the_model_follows_a_replaced_state() -> None:
    rng = np.random.default_rng(3)
    model = GaussianModel(3, full=True, sequential=True)
    model.learn(rng.normal(size=(50, 3)))
    model.prequential(rng.normal(size=(5, 3)), np.ones(5, dtype=bool))
    other = RunningCovariance(3).learn(rng.normal(size=(40, 3)) + 10.0)
    model.restore({"type": "gaussian", "stats": other.to_dict()})
    X = rng.normal(size=(4, 3)) + 10.0
    direct = GaussianModel(3, full=True, sequential=False)
    direct.stats = other.copy()
    expected = direct.prequential(X, np.ones(4, dtype=bool))
    got = model.prequential(X, np.ones(4, dtype=bool))
    np.testing.assert_allclose(got.log_p, expected.log_p, rtol=1e-10)


def test_many_features_use_the_running_inverse() -> None:
    assert GaussianModel(models.SEQUENTIAL_FULL_FEATURES, full=True).sequential
    assert not GaussianModel(models.SEQUENTIAL_FULL_FEATURES - 1, full=True).sequential
    assert not GaussianModel(100, full=False).sequential


@pytest.mark.parametrize(
    "config",
    [
        ("exclude", 10, False, None, "full"),
        ("clip", 10, False, 300.0, "full"),
        ("clip", 10, True, None, "full"),
        ("learn", 0, True, 300.0, "full"),
    ],
)
@pytest.mark.parametrize("batch", [7, 4096])
def test_detector_with_the_running_inverse_equals_the_per_event_reference(
    monkeypatch: pytest.MonkeyPatch, config: tuple[Any, ...], batch: int
) -> None:
    monkeypatch.setattr(models, "SEQUENTIAL_FULL_FEATURES", 1)
    stream = make_stream()
    settings = settings_for(*config)
    detector = Detector(settings, ("x", "y", "z"))
    result = run(detector, stream, batch, keyed=settings.key_field is not None)
    assert_matches_reference(result, settings, stream)
    assert any(
        isinstance(state.model, GaussianModel) and state.model.sequential
        for state in detector.models.values()
    )
