"""Low-rank updates of the full model equal factorising every row's covariance."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from test_detector import assert_matches_reference, make_stream, run, settings_for
from test_models import correlation_condition, one_row_at_a_time

from stream_detect import gaussian_model
from stream_detect.detector import Detector
from stream_detect.gaussian_model import GaussianModel
from stream_detect.precision import score_full_prequential
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
    st.sampled_from([None, 1, 7, 1000]),
    st.integers(0, 2**32 - 1),
)
def test_low_rank_updates_equal_factorising_each_row(
    rows: int,
    d: int,
    layout: str,
    half_life: float | None,
    p_learn: float,
    run_rows: int | None,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    X = make_rows(layout, rows + 3 * d, d, rng)
    warm, X = X[: 3 * d], X[3 * d :]
    learn = rng.random(rows) < p_learn
    direct = GaussianModel(d, full=True, half_life=half_life, low_rank=False)
    direct.learn(warm)
    learned = direct.stats.copy()
    block = score_full_prequential(direct.stats, X, learn, run_rows=run_rows)
    assert direct.n == learned.n, "prequential must not learn"
    assert np.array_equal(direct.stats.second, learned.second)
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
    low_rank = GaussianModel(4, full=True, low_rank=True)
    block = low_rank.prequential(X, learn)
    expected = one_row_at_a_time(GaussianModel(4, full=True, low_rank=False), X, learn)
    # Fewer than d + 1 events leave the covariance singular up to the ridge, and a
    # few more still leave it so ill-conditioned that the offset layout's rounding
    # (values near 1e6, deviations near 1) exceeds the bound: compare from 2 d events.
    assert_scores_match(block, expected, np.arange(rows) >= 8)
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
    whole = GaussianModel(3, full=True, half_life=half_life, low_rank=True)
    whole.learn(X[:10])
    parts = GaussianModel(3, full=True, half_life=half_life, low_rank=True)
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
    model = GaussianModel(3, full=True, low_rank=True)
    model.learn(rng.normal(size=(50, 3)))
    model.prequential(rng.normal(size=(5, 3)), np.ones(5, dtype=bool))
    other = RunningCovariance(3).learn(rng.normal(size=(40, 3)) + 10.0)
    model.restore({"type": "gaussian", "stats": other.to_dict()})
    X = rng.normal(size=(4, 3)) + 10.0
    direct = GaussianModel(3, full=True, low_rank=False)
    direct.stats = other.copy()
    expected = direct.prequential(X, np.ones(4, dtype=bool))
    got = model.prequential(X, np.ones(4, dtype=bool))
    np.testing.assert_allclose(got.log_p, expected.log_p, rtol=1e-10)


def test_full_models_use_low_rank_updates_from_the_threshold_on() -> None:
    threshold = gaussian_model.LOW_RANK_FULL_FEATURES
    assert GaussianModel(threshold, full=True).low_rank
    assert GaussianModel(threshold + 100, full=True).low_rank
    assert not GaussianModel(threshold - 1, full=True).low_rank
    assert not GaussianModel(threshold + 100, full=True, low_rank=False).low_rank
    assert not GaussianModel(100, full=False).low_rank


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
def test_detector_with_low_rank_updates_equals_the_per_event_reference(
    monkeypatch: pytest.MonkeyPatch, config: tuple[Any, ...], batch: int
) -> None:
    monkeypatch.setattr(gaussian_model, "LOW_RANK_FULL_FEATURES", 1)
    stream = make_stream()
    settings = settings_for(*config)
    detector = Detector(settings, ("x", "y", "z"))
    result = run(detector, stream, batch, keyed=settings.key_field is not None)
    assert_matches_reference(result, settings, stream)
    assert any(
        isinstance(state.model, GaussianModel) and state.model.low_rank
        for state in detector.models.values()
    )


def per_event_reference(
    X: Array, learn: NDArray[np.bool_], half_life: float | None, score_from: int = 0
) -> tuple[Array, Array]:
    """log p and squared distance of each row, by Welford and a factorisation per row.

    Written from the definitions alone (population covariance, the ridge of
    ``floor_covariance``, the decay applied before each learned event), with
    no code of the package, so both sides cannot share a mistake. Rows before
    ``score_from`` are only learned.
    """
    rows, d = X.shape
    decay = 1.0 if half_life is None else 0.5 ** (1.0 / half_life)
    n, mean, comoment = 0.0, np.zeros(d), np.zeros((d, d))
    log_p, distance_sq = np.full(rows, np.nan), np.full(rows, np.nan)
    for i, x in enumerate(X):
        if n > 0 and i >= score_from:
            cov = comoment / n
            ridge = 1e-12 + 1e-20 * mean**2 + 1e-12 * np.trace(cov) / d
            floored = cov + np.diag(ridge)
            dev = x - mean
            distance_sq[i] = dev @ np.linalg.solve(floored, dev)
            sign, log_det = np.linalg.slogdet(floored)
            assert sign > 0
            log_p[i] = -0.5 * (distance_sq[i] + log_det + d * np.log(2 * np.pi))
        if learn[i]:
            n_after = decay * n + 1.0
            delta = x - mean
            mean = mean + delta / n_after
            comoment = decay * comoment + np.outer(delta, x - mean)
            n = n_after
    return log_p, distance_sq


@pytest.mark.parametrize("half_life", [None, 150.0])
@pytest.mark.parametrize("d", [8, 32, 128])
def test_low_rank_updates_equal_a_per_event_numpy_reference(
    d: int, half_life: float | None
) -> None:
    rng = np.random.default_rng(d)
    rows = 4 * d + 300
    mixing = np.eye(d) + rng.normal(size=(d, d)) / np.sqrt(d)
    X = rng.normal(size=(rows, d)) @ mixing * np.linspace(0.5, 3.0, d) + 10.0
    X[rng.random(rows) < 0.02] += 6.0
    learn = rng.random(rows) < 0.9
    # A covariance of fewer events than features rests on its ridge alone:
    # the model starts from 4 d learned events (learned by the reference too).
    warm = 4 * d
    model = GaussianModel(d, full=True, half_life=half_life, low_rank=True)
    model.learn(X[:warm][learn[:warm]])
    block = model.prequential(X[warm:], learn[warm:])
    log_p, distance_sq = per_event_reference(X, learn, half_life, score_from=warm)
    np.testing.assert_allclose(block.log_p, log_p[warm:], rtol=1e-9)
    np.testing.assert_allclose(block.distance_sq, distance_sq[warm:], rtol=1e-9)
    np.testing.assert_allclose(block.contributions.sum(axis=1), distance_sq[warm:], rtol=1e-9)
