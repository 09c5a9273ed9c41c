"""The Normal–Inverse-Gamma prior: Student-t tails from the first events on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from stream_detect.errors import ConfigError
from stream_detect.prequential import Prefix
from stream_detect.prior import DeferredTails, NormalInverseGammaPrior, fisher_statistic_at
from stream_detect.stats import RunningMoments
from stream_detect.tails import chi2_log_sf
from tests.test_reference_data import PUBLISHED_AUC, load_odds, roc_auc


def test_predictive_is_the_conjugate_posterior_t() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(4.0, 2.0, size=(40, 2))
    prior = NormalInverseGammaPrior(mean=1.0, kappa=0.5, alpha=2.0, beta=3.0)
    before = RunningMoments(2).prequential(X)
    tails = prior.log_tails(X, before)
    for row in (1, 7, 39):
        seen = X[:row]
        for j in range(2):
            n, xbar = row, seen[:, j].mean()
            kappa, alpha = 0.5 + n, 2.0 + n / 2
            mu = (0.5 * 1.0 + n * xbar) / kappa
            beta = 3.0 + 0.5 * np.sum((seen[:, j] - xbar) ** 2)
            beta += 0.5 * n * (xbar - 1.0) ** 2 / (2 * kappa)  # kappa0 = 0.5
            scale = np.sqrt(beta * (kappa + 1) / (alpha * kappa))
            expected = np.log(2 * stats.t.sf(abs(X[row, j] - mu) / scale, 2 * alpha))
            assert tails.feature_log_p[row, j] == pytest.approx(expected, rel=1e-9)
        fisher = -2 * tails.feature_log_p[row].sum()
        assert tails.log_p[row] == pytest.approx(stats.chi2.logsf(fisher, 4), rel=1e-9)
    assert tails.log_p[0] == 0.0


def test_constant_feature_does_not_make_a_change_impossible() -> None:
    # A plain Gaussian with a variance floor gives log p ~ -1e14 here.
    X = np.array([[3.0]] * 500 + [[3.5], [3.0], [4.0]])
    tails = NormalInverseGammaPrior().log_tails(X, RunningMoments(1).prequential(X))
    assert -1e4 < tails.log_p[500] < -10.0
    assert np.all(tails.log_p[:500] > -0.05)  # the constant itself is no surprise
    # Once the feature has moved, its spread is known: a return is ordinary, more is not.
    assert tails.log_p[501] > -1.0
    assert tails.log_p[502] < tails.log_p[501]


def test_batches_agree_with_one_event_at_a_time() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3)) * [1.0, 1e3, 1e-3] + [0.0, 5e4, 1.0]
    prior = NormalInverseGammaPrior()
    whole = prior.log_tails(X, RunningMoments(3).prequential(X)).log_p
    state = RunningMoments(3)
    pieces = []
    for row in X:
        pieces.append(prior.log_tails(row[None, :], state.prequential(row[None, :])).log_p)
        state.learn(row[None, :])
    np.testing.assert_allclose(np.concatenate(pieces), whole, rtol=1e-9, atol=1e-12)


def test_bad_prior_is_refused() -> None:
    with pytest.raises(ConfigError, match="prior beta"):
        NormalInverseGammaPrior(beta=0.0)


def test_cardio_stream_auc_is_near_the_batch_gaussian(shared_data: Path) -> None:
    """Shuffled cardio, scored as it streams: within 0.01 of the batch Gaussian's AUC."""
    X, y = load_odds(shared_data, "cardio")
    order = np.random.default_rng(7).permutation(len(X))
    X, y = X[order], y[order]
    tails = NormalInverseGammaPrior().log_tails(X, RunningMoments(X.shape[1]).prequential(X))
    assert np.all(np.isfinite(tails.log_p)) and tails.log_p.min() > -1e4
    assert roc_auc(y, -tails.log_p) >= PUBLISHED_AUC["cardio"] + 0.001 - 0.01


@settings(max_examples=200, deadline=None)
@given(
    t=st.lists(
        st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False), min_size=1, max_size=4
    ),
    dof=st.floats(0.05, 1e10),
)
def test_the_tail_floor_never_exceeds_the_exact_tail(t: list[float], dof: float) -> None:
    values = np.array([t])
    tails = DeferredTails(values, np.full(values.shape, dof), np.zeros(1, bool))
    exact = tails.at(np.arange(1))
    assert tails.floor()[0] <= exact[0]
    # Tight enough to be worth it: within a few units of log for Gaussian-sized values.
    if dof > 100 and np.all(np.abs(values) < 5):
        assert exact[0] - tails.floor()[0] < 2.5 * values.shape[1]


def test_deferred_tails_compute_each_row_once_and_equal_the_whole_block() -> None:
    rng = np.random.default_rng(5)
    X = rng.standard_t(3, size=(300, 4))
    before = RunningMoments(4).prequential(X)
    prior = NormalInverseGammaPrior()
    whole = prior.log_tails(X, before).log_p
    deferred = prior.deferred_tails(X, before)
    some = np.array([3, 0, 299, 3])
    np.testing.assert_array_equal(deferred.at(some), whole[some])
    np.testing.assert_array_equal(deferred.at(np.arange(300)), whole)


@settings(max_examples=100, deadline=None)
@given(log_tail=st.floats(-1e5, 0.5), dof=st.integers(2, 400).map(lambda k: 2 * (k // 2)))
def test_the_fisher_statistic_at_a_threshold_brackets_it(log_tail: float, dof: int) -> None:
    x = fisher_statistic_at(log_tail, dof)
    if x == -np.inf:
        assert log_tail > -1e-5
        return
    assert chi2_log_sf(x, dof) > log_tail
    assert chi2_log_sf(x * (1 + 1e-5) + 1e-5, dof) < log_tail + 1e-5 * (1 + abs(log_tail))


def test_in_doubt_keeps_every_row_whose_exact_tail_is_below_the_threshold() -> None:
    rng = np.random.default_rng(8)
    t = rng.standard_t(2, size=(5000, 6)) * rng.choice([0.3, 1.0, 4.0], size=(5000, 1))
    tails = DeferredTails(t, np.full(t.shape, 7.0), rng.random(5000) < 0.01)
    exact = tails.at(np.arange(5000))
    for threshold in (-40.0, -13.8, -3.0, -1e-12, 0.0, -np.inf):
        doubt = np.zeros(5000, bool)
        doubt[tails.in_doubt(threshold)] = True
        assert not np.any(~doubt & (exact < threshold))
        assert doubt.mean() < 0.6 or threshold > -5


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 200),
    d=st.integers(1, 16),
    spread=st.sampled_from([0.1, 1.0, 5.0, 40.0]),
    odd=st.sampled_from([None, np.nan, np.inf]),
    threshold=st.sampled_from([-np.inf, -1e3, -40.0, -13.8, -2.0, -1e-12, 0.0]),
)
def test_in_doubt_is_exactly_the_rows_whose_bound_reaches_the_threshold(
    seed: int, rows: int, d: int, spread: float, odd: float | None, threshold: float
) -> None:
    """The coarse first bound only saves work: the rows are those of the bound itself."""
    rng = np.random.default_rng(seed)
    t = rng.standard_t(3, size=(rows, d)) * spread
    if odd is not None:
        t[rng.random((rows, d)) < 0.05] = odd
    tails = DeferredTails(t, np.full(t.shape, 5.0), rng.random(rows) < 0.05)
    bound = tails._statistic_bound()
    expected = np.flatnonzero(~(bound < fisher_statistic_at(threshold, 2 * d)))
    np.testing.assert_array_equal(tails.in_doubt(threshold), expected)


def test_a_huge_spread_over_a_huge_count_keeps_a_finite_scale() -> None:
    # beta * (kappa + 1) passes the float range (about 5e304 * 1e15) although the
    # scale, about sqrt(beta / alpha) = 1e145, does not: no overflow and no warning.
    prior = NormalInverseGammaPrior()
    n = np.array([1e15, 10.0])
    mean = np.array([[0.0], [1.0]])
    second = np.array([[1e305], [4.0]])
    with np.errstate(all="raise"):
        _, scale, _ = prior.predictive(Prefix(n, mean, second))
    np.testing.assert_allclose(scale[0], np.sqrt(1e305 / 2.0 / (prior.alpha + 1e15 / 2.0)))
    kappa, alpha = prior.kappa + 10.0, prior.alpha + 5.0
    beta = prior.beta + 2.0 + prior.kappa * 10.0 * (1.0 - prior.mean) ** 2 / (2.0 * kappa)
    assert scale[1, 0] == np.sqrt(beta * (kappa + 1.0) / (alpha * kappa))
