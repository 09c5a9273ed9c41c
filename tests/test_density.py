"""Tests of stream_detect.density against SciPy and plain linear algebra."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from stream_detect.density import (
    DEFAULT_VARIANCE_FLOOR,
    LARGEST_DISTANCE_SQ,
    LOG_2PI,
    SMALLEST_VARIANCE_FLOOR,
    TRACE_RIDGE,
    diagonal_contributions,
    diagonal_log_pdf,
    floor_covariance,
    floor_variance,
    full_contributions,
    full_distance,
    full_log_pdf,
    gaussian_log_pdf,
    gaussian_score,
    log_pdf_from_distance,
    scale_free_log_pdf,
)

Array = NDArray[np.float64]


def random_cov(rng: np.random.Generator, d: int, scale: float = 1.0) -> Array:
    """A well-conditioned random covariance with correlated features."""
    A = rng.normal(size=(d, d))
    cov: Array = (A @ A.T / d + 0.2 * np.eye(d)) * scale**2
    return cov


# ---------------------------------------------------------------- against SciPy


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 30),
    st.sampled_from([1e-6, 1.0, 1e6]),
    st.integers(0, 2**32 - 1),
)
def test_diagonal_log_pdf_is_the_sum_of_scipy_normal_log_pdfs(
    d: int, rows: int, scale: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=d) * 100 * scale
    var = rng.uniform(0.1, 10.0, d) * scale**2
    X = mean + rng.normal(size=(rows, d)) * 3 * np.sqrt(var)
    expected = scipy.stats.norm.logpdf(X, loc=mean, scale=np.sqrt(var)).sum(axis=1)
    np.testing.assert_allclose(diagonal_log_pdf(X, mean, var), expected, rtol=1e-12, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 8),
    st.integers(1, 30),
    st.sampled_from([1e-6, 1.0, 1e6]),
    st.integers(0, 2**32 - 1),
)
def test_full_log_pdf_equals_scipy_multivariate_normal(
    d: int, rows: int, scale: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=d) * 100 * scale
    cov = random_cov(rng, d, scale)
    X = rng.multivariate_normal(mean, cov * 4, size=rows)
    expected = np.atleast_1d(scipy.stats.multivariate_normal(mean, cov).logpdf(X))
    np.testing.assert_allclose(full_log_pdf(X, mean, cov), expected, rtol=1e-10, atol=1e-8)
    distance_sq, log_det = full_distance(X, mean, cov)
    dev = X - mean
    np.testing.assert_allclose(
        distance_sq, np.einsum("bi,ij,bj->b", dev, np.linalg.inv(cov), dev), rtol=1e-9
    )
    np.testing.assert_allclose(log_det, np.linalg.slogdet(cov)[1], rtol=1e-12, atol=1e-9)


def test_a_diagonal_covariance_gives_the_diagonal_log_pdf() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 5))
    mean, var = rng.normal(size=5), rng.uniform(0.5, 2.0, 5)
    np.testing.assert_allclose(
        full_log_pdf(X, mean, np.diag(var)), diagonal_log_pdf(X, mean, var), rtol=1e-13
    )


def test_log_pdf_from_distance_is_the_gaussian_formula() -> None:
    d2, log_det = np.array([0.0, 4.0]), np.array([0.0, math.log(9.0)])
    expected = [-0.5 * 3 * LOG_2PI, -0.5 * (4.0 + math.log(9.0) + 3 * LOG_2PI)]
    np.testing.assert_allclose(log_pdf_from_distance(d2, log_det, 3), expected, rtol=1e-15)
    # The scale-free score is the density of the standardised event: N(z; 0, I).
    z = np.array([[1.0, -2.0, 0.5]])
    np.testing.assert_allclose(
        scale_free_log_pdf(np.sum(z**2, axis=1), 3),
        scipy.stats.multivariate_normal(np.zeros(3), np.eye(3)).logpdf(z),
        rtol=1e-13,
    )


# ---------------------------------------------------------------- per-row parameters


def test_per_row_diagonal_parameters_equal_a_loop() -> None:
    rng = np.random.default_rng(1)
    rows, d = 40, 4
    X = rng.normal(size=(rows, d))
    means = rng.normal(size=(rows, d))
    variances = rng.uniform(0.1, 3.0, (rows, d))
    looped = [diagonal_log_pdf(X[i : i + 1], means[i], variances[i])[0] for i in range(rows)]
    np.testing.assert_allclose(diagonal_log_pdf(X, means, variances), looped, rtol=1e-14)
    looped_c = [
        diagonal_contributions(X[i : i + 1], means[i], variances[i])[0] for i in range(rows)
    ]
    np.testing.assert_allclose(diagonal_contributions(X, means, variances), looped_c, rtol=1e-14)


def test_per_row_full_parameters_equal_a_loop() -> None:
    rng = np.random.default_rng(2)
    rows, d = 30, 4
    X = rng.normal(size=(rows, d))
    means = rng.normal(size=(rows, d))
    covs = np.stack([random_cov(rng, d) for _ in range(rows)])
    for function in (full_log_pdf, full_contributions):
        batched = function(X, means, covs)
        looped = np.concatenate([function(X[i : i + 1], means[i], covs[i]) for i in range(rows)])
        np.testing.assert_allclose(batched, looped, rtol=1e-11, atol=1e-12)
    d2, log_det = full_distance(X, means, covs)
    for i in range(rows):
        expected = scipy.stats.multivariate_normal(means[i], covs[i]).logpdf(X[i])
        assert log_pdf_from_distance(d2[i : i + 1], log_det[i : i + 1], d)[0] == pytest.approx(
            expected, rel=1e-10
        )


def test_per_row_floor_covariance_equals_a_loop() -> None:
    rng = np.random.default_rng(3)
    covs = np.stack([random_cov(rng, 3) for _ in range(6)])
    means = rng.normal(size=(6, 3)) * 1e3
    batched = floor_covariance(covs, means, 1e-6, 1e-9)
    for i in range(6):
        np.testing.assert_array_equal(batched[i], floor_covariance(covs[i], means[i], 1e-6, 1e-9))
    # The input is not modified.
    assert not np.shares_memory(batched, covs)


# ---------------------------------------------------------------- floors


def test_floor_variance_raises_only_what_is_below_the_floor() -> None:
    var = np.array([0.0, 0.0, 5.0, 1e-30])
    mean = np.array([0.0, 1e6, 1e6, 0.0])
    floored = floor_variance(var, mean, variance_floor=1e-12, relative_floor=1e-12)
    np.testing.assert_allclose(floored, [1e-12, 1e-12 + 1.0, 5.0, 1e-12], rtol=1e-15)


def test_a_constant_feature_gives_finite_scores() -> None:
    # Feature 0 never moved: var 0. An event equal to it is likely, one off it is not.
    mean = np.array([7.0, 0.0])
    var = floor_variance(np.array([0.0, 1.0]), mean)
    X = np.array([[7.0, 0.5], [7.001, 0.5]])
    log_p = diagonal_log_pdf(X, mean, var)
    assert np.all(np.isfinite(log_p))
    assert log_p[0] > 0  # a density spike: far above any ordinary log p
    assert log_p[1] < log_p[0] - 1000
    assert np.all(np.isfinite(diagonal_contributions(X, mean, var)))


def singular_covariances() -> list[tuple[str, Array, Array]]:
    rng = np.random.default_rng(4)
    base = rng.normal(size=(200, 3))
    duplicate = np.column_stack([base, base[:, 1]])  # two identical features
    few = rng.normal(size=(3, 6)) * 1e3 + 1e6  # fewer events than features, far from 0
    constant = np.column_stack([base, np.full(200, 42.0)])
    zero = np.zeros((1, 4))
    return [
        (name, X.mean(axis=0), np.cov(X.T, bias=True))
        for name, X in [
            ("duplicate column", duplicate),
            ("n < d", few),
            ("constant", constant),
            ("single event", zero),
        ]
    ]


@pytest.mark.parametrize(
    ("name", "mean", "cov"), singular_covariances(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_a_singular_covariance_gives_finite_scores_after_the_ridge(
    name: str, mean: Array, cov: Array
) -> None:
    assert np.linalg.matrix_rank(cov) < cov.shape[0], "the fixture should be singular"
    floored = floor_covariance(cov, mean)
    np.linalg.cholesky(floored)  # positive definite: no LinAlgError
    rng = np.random.default_rng(5)
    X = mean + rng.normal(size=(10, mean.size)) * np.sqrt(np.diagonal(cov) + 1.0)
    for values in (full_log_pdf(X, mean, floored), full_contributions(X, mean, floored)):
        assert np.all(np.isfinite(values))
    # The ridge is tiny beside the data: off the degenerate directions nothing changes much.
    assert np.allclose(floored, cov, rtol=0, atol=1e-6 * (1 + np.abs(mean).max() ** 2))


def test_the_ridge_follows_the_documented_formula() -> None:
    cov = np.array([[4.0, 0.0], [0.0, 0.0]])
    mean = np.array([10.0, 0.0])
    floored = floor_covariance(cov, mean, variance_floor=1e-3, relative_floor=1e-2)
    ridge = 1e-3 + 1e-2 * mean**2 + TRACE_RIDGE * 2.0  # trace / d = 2
    np.testing.assert_allclose(floored, cov + np.diag(ridge), rtol=1e-15)


# ---------------------------------------------------------------- underflow


def test_two_hundred_tiny_densities_keep_a_finite_log_p() -> None:
    rng = np.random.default_rng(6)
    d = 200
    mean = rng.normal(size=d)
    var = rng.uniform(0.5, 2.0, d)
    X = mean + 6.0 * np.sqrt(var) * rng.choice([-1.0, 1.0], size=(3, d))
    # The classic product of per-feature densities underflows to exactly 0 ...
    product = np.prod(scipy.stats.norm.pdf(X, loc=mean, scale=np.sqrt(var)), axis=1)
    assert np.all(product == 0.0)
    # ... while log p is finite and is the sum of the per-feature log densities.
    log_p = diagonal_log_pdf(X, mean, var)
    assert np.all(np.isfinite(log_p)) and np.all(log_p < -3000)
    expected = scipy.stats.norm.logpdf(X, loc=mean, scale=np.sqrt(var)).sum(axis=1)
    np.testing.assert_allclose(log_p, expected, rtol=1e-13)
    full = full_log_pdf(X, mean, np.diag(var))
    np.testing.assert_allclose(full, expected, rtol=1e-12)


# ---------------------------------------------------------------- contributions


def test_diagonal_contributions_are_squared_z_scores_summing_to_the_distance() -> None:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(25, 6)) * 3
    mean, var = rng.normal(size=6), rng.uniform(0.2, 4.0, 6)
    contributions = diagonal_contributions(X, mean, var)
    np.testing.assert_allclose(contributions, ((X - mean) / np.sqrt(var)) ** 2, rtol=1e-13)
    distance = np.sum(contributions, axis=1)
    np.testing.assert_allclose(distance, np.sum(((X - mean) / np.sqrt(var)) ** 2, axis=1))
    # ... and that distance is what log p is built on.
    np.testing.assert_allclose(
        diagonal_log_pdf(X, mean, var),
        log_pdf_from_distance(distance, np.full(25, np.sum(np.log(var))), 6),
        rtol=1e-13,
    )


@pytest.mark.parametrize("d", [1, 2, 5, 9])
def test_full_contributions_sum_to_dev_inv_cov_dev(d: int) -> None:
    rng = np.random.default_rng(d)
    cov = random_cov(rng, d)
    mean = rng.normal(size=d)
    X = rng.multivariate_normal(mean, cov * 9, size=20)
    contributions = full_contributions(X, mean, cov)
    dev = X - mean
    inverse = np.linalg.inv(cov)
    np.testing.assert_allclose(contributions, dev * (dev @ inverse), rtol=1e-9, atol=1e-12)
    expected = np.einsum("bi,ij,bj->b", dev, inverse, dev)
    np.testing.assert_allclose(np.sum(contributions, axis=1), expected, rtol=1e-9)
    np.testing.assert_allclose(full_distance(X, mean, cov)[0], expected, rtol=1e-9)


def test_a_full_contribution_can_be_negative_for_a_correlated_pair() -> None:
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    # Feature 1 moved less than feature 0 predicts: it pulls the distance down.
    contributions = full_contributions(np.array([[2.0, 0.5]]), np.zeros(2), cov)
    assert contributions[0, 1] < 0 < contributions[0, 0]
    assert np.sum(contributions) == pytest.approx(
        np.array([2.0, 0.5]) @ np.linalg.inv(cov) @ np.array([2.0, 0.5])
    )


# ---------------------------------------------------------------- the one Gaussian density


def test_gaussian_log_pdf_floors_then_dispatches_on_the_shape_of_spread() -> None:
    rng = np.random.default_rng(11)
    X = rng.normal(size=(30, 3)) * 2
    mean = np.array([1e6, 0.0, -2.0])
    var = np.array([0.0, 1.5, 4.0])  # a constant feature: only the floor keeps it finite
    floored = floor_variance(var, mean, 1e-6, 1e-12)
    expected = scipy.stats.norm.logpdf(X, loc=mean, scale=np.sqrt(floored)).sum(axis=1)
    got = gaussian_log_pdf(X, mean, var, 1e-6, 1e-12)
    np.testing.assert_array_equal(got, diagonal_log_pdf(X, mean, floored))
    np.testing.assert_allclose(got, expected, rtol=1e-12)

    cov = random_cov(rng, 3)
    cov[0, :] = cov[:, 0] = 0.0  # singular: only the ridge gives a Cholesky factor
    ridged = floor_covariance(cov, mean, 1e-6, 1e-12)
    expected_full = scipy.stats.multivariate_normal(mean, ridged).logpdf(X)
    got_full = gaussian_log_pdf(X, mean, cov, 1e-6, 1e-12)
    np.testing.assert_array_equal(got_full, full_log_pdf(X, mean, ridged))
    np.testing.assert_allclose(got_full, expected_full, rtol=1e-9)
    assert cov[0, 0] == 0.0, "the statistics are never changed in place"


def test_gaussian_log_pdf_takes_parameters_per_row() -> None:
    rng = np.random.default_rng(12)
    X = rng.normal(size=(4, 2))
    means = rng.normal(size=(4, 2))
    variances = rng.uniform(0.5, 2.0, size=(4, 2))
    per_row = gaussian_log_pdf(X, means, variances)
    one_by_one = [gaussian_log_pdf(X[i : i + 1], means[i], variances[i])[0] for i in range(4)]
    np.testing.assert_allclose(per_row, one_by_one, rtol=1e-14)
    covs = np.stack([np.diag(v) for v in variances])
    # The ridge is added to the variances where the floor is a maximum: 1e-12 apart.
    np.testing.assert_allclose(gaussian_log_pdf(X, means, covs), per_row, rtol=1e-9)
    with pytest.raises(ValueError, match="spread"):
        gaussian_log_pdf(X, means[0], np.ones((2, 2, 2)))


def test_a_small_real_variance_far_from_zero_is_used_as_it_is() -> None:
    """A latitude of 48.85 varying by 1e-5: the floor must not widen it."""
    mean = np.array([48.85])
    var = np.array([1e-10])
    assert floor_variance(var, mean)[0] == 1e-10


# ---------------------------------------------------------------- overflow


@pytest.mark.parametrize("floor", [SMALLEST_VARIANCE_FLOOR, DEFAULT_VARIANCE_FLOOR])
@pytest.mark.parametrize("full", [False, True], ids=["diagonal", "full"])
def test_a_distance_beyond_the_float_range_saturates_without_a_warning(
    floor: float, full: bool
) -> None:
    # Feature 0 was constant at 0: its variance is the floor, and 1e150 away (the largest
    # value a stream admits) is a squared distance past 1.8e308.
    mean = np.array([0.0, 10.0, 0.0])
    spread = np.diag([0.0, 4.0, 0.0]) if full else np.array([0.0, 4.0, 0.0])
    X = np.array([[1e150, 10.0, 0.0], [1e150, 10.0, -1e150], [1.0, 12.0, 0.0], [0.0, 10.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scored = gaussian_score(X, mean, spread, floor, 0.0)
    assert scored.distance_sq[:2].tolist() == [LARGEST_DISTANCE_SQ] * 2
    assert np.all(np.isfinite(scored.log_p)) and scored.log_p[0] < -1e307
    assert 1e11 < scored.distance_sq[2] < LARGEST_DISTANCE_SQ  # 1 away from a constant: far
    assert scored.distance_sq[3] == 0.0 and scored.log_p[3] > 0.0
    if not full:
        assert scored.contributions is not None
        assert scored.contributions[1].tolist() == [LARGEST_DISTANCE_SQ, 0.0, LARGEST_DISTANCE_SQ]
