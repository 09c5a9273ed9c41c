"""Tests of the models: the Gaussian model's prequential scoring, build_model, the model kinds."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from stream_detect.errors import ConfigError, ModelError
from stream_detect.gaussian_model import GaussianModel
from stream_detect.model_interface import ScoreBlock
from stream_detect.model_kinds import MODEL_PATTERN, model_kind, model_kinds, supports
from stream_detect.model_store import ModelFactory
from stream_detect.models import build_model
from stream_detect.quantisation import IntegerFeatures
from stream_detect.river_model import RiverModel
from stream_detect.settings import DetectorSettings

Array = NDArray[np.float64]
FEATURES = ("a", "b", "c")


def one_row_at_a_time(model: GaussianModel, X: Array, learn: NDArray[np.bool_]) -> list[ScoreBlock]:
    """Score each row with score(), then learn it if told to: the definition of prequential."""
    blocks = []
    for x, learned in zip(X, learn, strict=True):
        blocks.append(model.score(x[None, :]))
        if learned:
            model.learn(x[None, :])
    return blocks


def correlation_condition(spread: Array | None) -> float:
    """Condition number of the correlation matrix of a (floored) covariance; 1 if diagonal."""
    if spread is None or spread.ndim == 1:
        return 1.0
    sd = np.sqrt(np.diagonal(spread))
    return float(np.linalg.cond(spread / np.outer(sd, sd)))


# ---------------------------------------------------------------- GaussianModel


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 300),
    st.booleans(),
    st.sampled_from([None, 5.0, 100.0]),
    st.sampled_from([0.0, 0.3, 0.9, 1.0]),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_prequential_equals_scoring_each_row_after_learning_the_previous_ones(
    rows: int, full: bool, half_life: float | None, p_learn: float, low_rank: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    scale = np.array([1.0, 1e3, 1e-3])
    X = rng.normal(size=(rows, 3)) * scale + [5.0, -2e4, 0.0]
    learn = rng.random(rows) < p_learn
    batch = GaussianModel(3, full=full, half_life=half_life, low_rank=low_rank)
    warm = X[: rows // 3]
    batch.learn(warm)
    looped = GaussianModel(3, full=full, half_life=half_life)
    looped.learn(warm)
    block = batch.prequential(X, learn)
    assert batch.n == looped.n, "prequential must not learn"
    expected = one_row_at_a_time(looped, X, learn)
    log_p = np.array([b.log_p[0] for b in expected])
    distance_sq = np.array([b.distance_sq[0] for b in expected])
    assert np.array_equal(np.isnan(block.log_p), np.isnan(log_p))
    # A full covariance of fewer than d + 1 events is singular up to the ridge,
    # so its scores are ill-conditioned; the detector does not use them either.
    learned_before = warm.shape[0] + np.concatenate(([0], np.cumsum(learn)[:-1]))
    seen = learned_before >= (4 if full else 1)
    # Rounding in the moments is amplified by the conditioning of the correlation
    # matrix: a few events in 3-D can span a nearly flat cloud.
    rtol = np.array([1e-9 + 1e-15 * correlation_condition(b.spread) for b in expected])
    for got, want in ((block.log_p, log_p), (block.distance_sq, distance_sq)):
        error = np.abs(got[seen] - want[seen])
        assert np.all(error <= rtol[seen] * np.abs(want[seen]) + 1e-9)
    assert block.mean is not None
    # Low-rank updates never form a row's covariance: they keep its contributions instead.
    assert (block.spread is None) == (full and low_rank)
    for i in np.flatnonzero(seen)[:: max(1, rows // 10)]:
        assert expected[i].mean is not None and expected[i].spread is not None
        assert np.all(np.abs(block.mean[i] - expected[i].mean[0]) <= 1e-9 * scale)
        if block.spread is None:
            assert block.contributions is not None
            total = block.contributions[i].sum()
            assert abs(total - block.distance_sq[i]) <= 1e-9 * abs(block.distance_sq[i])
            continue
        spread_scale = np.outer(scale, scale) if full else scale**2
        error = np.abs(block.spread[i] - expected[i].spread)
        assert np.all(error <= 1e-9 * (np.abs(expected[i].spread) + spread_scale))


def test_a_model_that_learned_nothing_scores_nan() -> None:
    for full in (False, True):
        model = GaussianModel(2, full=full)
        assert np.all(np.isnan(model.score(np.ones((3, 2))).log_p))
        block = model.prequential(np.ones((3, 2)), np.array([False, True, True]))
        assert np.isnan(block.log_p[:2]).all() and np.isfinite(block.log_p[2])
        assert np.isnan(block.distance_sq[:2]).all()


@pytest.mark.parametrize("full", [False, True])
def test_score_is_the_gaussian_log_pdf_of_the_learned_moments(full: bool) -> None:
    rng = np.random.default_rng(0)
    train = rng.multivariate_normal(
        [1.0, -1.0, 3.0], [[2, 0.8, 0], [0.8, 1, 0.3], [0, 0.3, 4]], 500
    )
    X = rng.normal(size=(20, 3)) * 3
    model = GaussianModel(3, full=full)
    model.learn(train)
    block = model.score(X)
    mean = train.mean(axis=0)
    if full:
        expected = scipy.stats.multivariate_normal(mean, np.cov(train.T, bias=True)).logpdf(X)
    else:
        sd = train.std(axis=0, ddof=0)
        expected = scipy.stats.norm.logpdf(X, mean, sd).sum(axis=1)
    np.testing.assert_allclose(block.log_p, expected, rtol=1e-9)
    contributions = model.contributions(X, block, np.arange(20))
    assert contributions is not None
    np.testing.assert_allclose(contributions.sum(axis=1), block.distance_sq, rtol=1e-9)
    # The scale-free score drops log det: it is log N(z; 0, I) of the whitened event.
    np.testing.assert_allclose(
        block.scale_free, -0.5 * (block.distance_sq + 3 * math.log(2 * math.pi)), rtol=1e-13
    )


@pytest.mark.parametrize("full", [False, True])
def test_prequential_contributions_match_each_rows_own_model(full: bool) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    model = GaussianModel(3, full=full)
    model.learn(rng.normal(size=(10, 3)))
    block = model.prequential(X, np.ones(60, dtype=bool))
    rows = np.array([0, 17, 59])
    contributions = model.contributions(X, block, rows)
    assert contributions is not None
    np.testing.assert_allclose(contributions.sum(axis=1), block.distance_sq[rows], rtol=1e-9)


def test_a_constant_feature_does_not_make_every_event_an_anomaly() -> None:
    rng = np.random.default_rng(2)
    train = np.column_stack([np.full(300, 5.0), rng.normal(size=300)])
    for full in (False, True):
        model = GaussianModel(2, full=full)
        model.learn(train)
        block = model.score(np.array([[5.0, 0.1], [5.0, 4.0], [5.5, 0.0]]))
        assert np.all(np.isfinite(block.log_p))
        # Ordinary events outscore the one that left the constant.
        assert block.log_p[0] > block.log_p[1] > block.log_p[2]


def test_gaussian_state_round_trips_and_rejects_another_width() -> None:
    rng = np.random.default_rng(3)
    model = GaussianModel(3, full=True, half_life=50.0)
    model.learn(rng.normal(size=(80, 3)))
    copy = GaussianModel(3, full=True, half_life=50.0)
    copy.restore(model.to_dict())
    X = rng.normal(size=(5, 3))
    np.testing.assert_array_equal(copy.score(X).log_p, model.score(X).log_p)
    assert copy.stats.decay == model.stats.decay
    with pytest.raises(ModelError, match="features"):
        GaussianModel(2, full=True).restore(model.to_dict())
    with pytest.raises(ModelError, match="kind"):
        GaussianModel(3, full=False).restore(model.to_dict())


# ---------------------------------------------------------------- build_model


def test_build_model_by_name() -> None:
    diagonal = build_model("diagonal", FEATURES, half_life=30.0, variance_floor=1e-6)
    assert isinstance(diagonal, GaussianModel) and not diagonal.full
    assert diagonal.stats.half_life == 30.0 and diagonal.variance_floor == 1e-6
    full = build_model("full", FEATURES, half_life=30.0)
    assert isinstance(full, GaussianModel) and full.full and full.stats.d == 3
    assert full.stats.half_life == 30.0 and full.stats.decay == 0.5 ** (1 / 30.0)
    river = build_model("river:HalfSpaceTrees", FEATURES, params={"seed": 3})
    assert isinstance(river, RiverModel) and river.features == FEATURES


@pytest.mark.parametrize("kind", ["gaussian", "Diagonal", "", "river", "full "])
def test_build_model_rejects_an_unknown_name_and_lists_the_options(kind: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_model(kind, FEATURES)
    assert info.value.key == "model" and info.value.value == kind
    for option in ("diagonal", "full", "river:NAME"):
        assert option in str(info.value)


def test_build_model_rejects_an_unknown_river_detector_and_lists_those_it_knows() -> None:
    with pytest.raises(ConfigError) as info:
        build_model("river:NoSuchTrees", FEATURES)
    message = str(info.value)
    assert info.value.key == "model"
    assert "river:HalfSpaceTrees" in message and "river:LODA" in message


def test_build_model_rejects_parameters_the_river_detector_does_not_take() -> None:
    with pytest.raises(ConfigError) as info:
        build_model("river:HalfSpaceTrees", FEATURES, params={"no_such_parameter": 1})
    assert info.value.key == "model_params"
    assert "HalfSpaceTrees" in str(info.value)


# ---------------------------------------------------------------- model kinds


@pytest.mark.parametrize(
    ("model", "checkpointable", "gaussian", "clipped"),
    [
        ("diagonal", True, True, True),
        ("full", True, True, True),
        ("river:HalfSpaceTrees", False, False, False),
    ],
)
def test_each_model_kind_declares_what_it_supports(
    model: str, checkpointable: bool, gaussian: bool, clipped: bool
) -> None:
    assert supports(model, "checkpointable") is checkpointable
    assert supports(model, "gaussian_score") is gaussian
    assert supports(model, "clipped_learning") is clipped
    assert re.fullmatch(MODEL_PATTERN, model)
    built = build_model(model, FEATURES, params={"seed": 1} if model.startswith("river") else None)
    assert isinstance(built, GaussianModel) is gaussian


@pytest.mark.parametrize("model", ["gaussian", "river:", "full ", "river:1x"])
def test_an_unknown_model_supports_nothing_and_names_the_choices(model: str) -> None:
    assert not any(
        supports(model, capability)  # type: ignore[arg-type]
        for capability in ("checkpointable", "gaussian_score", "clipped_learning")
    )
    assert re.fullmatch(MODEL_PATTERN, model) is None
    with pytest.raises(ConfigError) as info:
        model_kind(model)
    assert all(kind.spelling in str(info.value) for kind in model_kinds())


@pytest.mark.parametrize("kind", ["diagonal", "full"])
def test_each_new_key_gets_a_model_of_its_own_as_built(kind: str) -> None:
    settings = DetectorSettings(model=kind, half_life=50.0, direction={"a": "high"})
    integers = IntegerFeatures(3, variance_floor=1e-9)
    factory = ModelFactory(settings, FEATURES, None, integers)
    first, second = factory(), factory()
    assert isinstance(first, GaussianModel) and isinstance(second, GaussianModel)
    built = build_model(kind, FEATURES, half_life=50.0, direction={"a": "high"})
    assert isinstance(built, GaussianModel)
    for model in (first, second):
        assert model.to_dict() == built.to_dict()
        assert (model.full, model.low_rank, model.stats.decay) == (
            built.full,
            built.low_rank,
            built.stats.decay,
        )
        assert model.direction is not None and model.direction.tolist() == [1, 0, 0]
        assert (model.prior is None) == (kind == "full")
        # The floors are the integer features' very arrays, shared by every key.
        assert model.variance_floor is integers.floor
    first.learn(np.ones((2, 3)))
    assert second.n == 0 and not second.stats.mean.any()
