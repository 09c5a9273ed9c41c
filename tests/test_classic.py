"""Tests of stream_detect.classic against numpy, SciPy and the exercise's published numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from stream_detect import classic
from stream_detect.classic import (
    estimate_gaussian,
    log_multivariate_gaussian,
    multivariate_gaussian,
)
from stream_detect.density import DEFAULT_RELATIVE_FLOOR, DEFAULT_VARIANCE_FLOOR, gaussian_log_pdf

rows = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 30), st.integers(1, 5)),
    elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=200, deadline=None)
@given(rows)
def test_estimate_gaussian_matches_numpy(X: np.ndarray) -> None:
    mu, var = estimate_gaussian(X)
    np.testing.assert_allclose(mu, X.mean(axis=0), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(var, X.var(axis=0, ddof=0), rtol=1e-9, atol=1e-6)
    assert mu.shape == var.shape == (X.shape[1],)


def test_estimate_gaussian_divides_by_m() -> None:
    mu, var = estimate_gaussian(np.array([[1.0], [2.0], [3.0], [6.0]]))
    assert mu.tolist() == [3.0]
    assert var.tolist() == [3.5]  # 14 / 4, not 14 / 3


def test_estimate_gaussian_refuses_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"2-D array of rows \(m, d\)"):
        estimate_gaussian(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="no rows"):
        estimate_gaussian(np.zeros((0, 2)))


def test_diagonal_density_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(200, 4))
    mu, var = estimate_gaussian(X)
    expected = scipy.stats.multivariate_normal(mu, np.diag(var)).pdf(X)
    np.testing.assert_allclose(multivariate_gaussian(X, mu, var), expected, rtol=1e-12)
    expected_log = scipy.stats.multivariate_normal(mu, np.diag(var)).logpdf(X)
    np.testing.assert_allclose(log_multivariate_gaussian(X, mu, var), expected_log, rtol=1e-12)


def test_full_density_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(3, 3))
    X = rng.normal(size=(300, 3)) @ mixing + [1.0, -2.0, 5.0]
    mu = X.mean(axis=0)
    cov = np.cov(X.T, bias=True)
    expected = scipy.stats.multivariate_normal(mu, cov).pdf(X)
    np.testing.assert_allclose(multivariate_gaussian(X, mu, cov), expected, rtol=1e-11)
    expected_log = scipy.stats.multivariate_normal(mu, cov).logpdf(X)
    np.testing.assert_allclose(log_multivariate_gaussian(X, mu, cov), expected_log, rtol=1e-12)


def test_a_vector_of_variances_is_the_diagonal_covariance() -> None:
    X = np.array([[0.5, -1.0], [2.0, 3.0]])
    mu, var = np.array([1.0, 0.0]), np.array([2.0, 0.5])
    np.testing.assert_allclose(
        multivariate_gaussian(X, mu, var), multivariate_gaussian(X, mu, np.diag(var)), rtol=1e-9
    )


def test_log_density_does_not_underflow() -> None:
    d = 200
    X = np.full((1, d), 5.0)
    mu, var = np.zeros(d), np.ones(d)
    assert multivariate_gaussian(X, mu, var)[0] == 0.0
    expected = scipy.stats.norm.logpdf(5.0) * d
    assert log_multivariate_gaussian(X, mu, var)[0] == pytest.approx(expected, rel=1e-12)


def test_a_constant_feature_gives_a_finite_density() -> None:
    X = np.array([[1.0, 7.0], [2.0, 7.0], [3.0, 7.0]])
    mu, var = estimate_gaussian(X)
    assert var[1] == 0.0
    log_p = log_multivariate_gaussian(np.array([[2.0, 7.0], [2.0, 7.5]]), mu, var)
    assert np.all(np.isfinite(log_p))
    assert log_p[0] > log_p[1]
    full = log_multivariate_gaussian(X, mu, np.cov(X.T, bias=True))
    assert np.all(np.isfinite(full))


def test_parameter_shapes_are_checked() -> None:
    X = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"mu must have shape \(2,\)"):
        multivariate_gaussian(X, np.zeros(3), np.ones(2))
    with pytest.raises(ValueError, match=r"var must have shape \(2,\) or \(2, 2\)"):
        multivariate_gaussian(X, np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match="not symmetric"):
        multivariate_gaussian(X, np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="not positive semi-definite"):
        multivariate_gaussian(X, np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]))


def test_public_names() -> None:
    assert sorted(classic.__all__) == [
        "estimate_gaussian",
        "log_multivariate_gaussian",
        "multivariate_gaussian",
    ]


def test_exercise_set_1_parameters(shared_data: Path) -> None:
    data = scipy.io.loadmat(shared_data / "ng_ex8" / "ex8data1.mat")
    mu, var = estimate_gaussian(data["X"])
    np.testing.assert_allclose(mu, [14.1122, 14.9977], atol=5e-5)
    np.testing.assert_allclose(var, [1.8326, 1.7097], atol=5e-5)
    p = multivariate_gaussian(data["X"], mu, var)
    sd = np.sqrt(var)
    expected = np.prod(scipy.stats.norm.pdf(data["X"], mu, sd), axis=1)
    np.testing.assert_allclose(p, expected, rtol=1e-12)


def test_exercise_set_2_full_covariance_matches_scipy(shared_data: Path) -> None:
    data = scipy.io.loadmat(shared_data / "ng_ex8" / "ex8data2.mat")
    X = data["X"]
    mu = X.mean(axis=0)
    cov = np.cov(X.T, bias=True)
    expected = scipy.stats.multivariate_normal(mu, cov).logpdf(data["Xval"])
    got = log_multivariate_gaussian(data["Xval"], mu, cov)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_the_diagonal_density_is_the_package_density() -> None:
    rng = np.random.default_rng(21)
    X = rng.normal(size=(40, 3))
    mu, var = estimate_gaussian(X)
    var[1] = 0.0  # floored, as everywhere else
    np.testing.assert_array_equal(
        log_multivariate_gaussian(X, mu, var),
        gaussian_log_pdf(X, mu, var, DEFAULT_VARIANCE_FLOOR, DEFAULT_RELATIVE_FLOOR),
    )


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        # A NaN or inf used to give a NaN mean, variance or density, with no word.
        (lambda: estimate_gaussian([[1.0, np.nan]]), ValueError, r"X\[0, 1\] = nan: X must hold"),
        (lambda: estimate_gaussian([[np.inf], [1.0]]), ValueError, r"X\[0, 0\] = inf"),
        (lambda: multivariate_gaussian([[0.0]], [np.nan], [1.0]), ValueError, r"mu\[0\] = nan"),
        (lambda: multivariate_gaussian([[0.0]], [0.0], [np.inf]), ValueError, r"var\[0\] = inf"),
        # A NaN in a covariance matrix was called "not symmetric".
        (
            lambda: multivariate_gaussian([[0.0, 0.0]], [0.0, 0.0], [[np.nan, 0.0], [0.0, 1.0]]),
            ValueError,
            r"var\[0, 0\] = nan",
        ),
        # A negative variance was floored into a density of 0.
        (lambda: multivariate_gaussian([[0.0]], [0.0], [-1.0]), ValueError, r"var\[0\] = -1\.0"),
        (lambda: estimate_gaussian([["1", "2"]]), TypeError, r"X must hold real numbers.*text"),
        (lambda: estimate_gaussian([[1j]]), TypeError, r"X must hold real numbers.*complex"),
        (lambda: estimate_gaussian([[1.0], [1.0, 2.0]]), ValueError, "X is not a rectangular"),
    ],
)
def test_parameters_and_data_that_are_not_finite_real_numbers_are_named(
    call: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call()  # type: ignore[operator]


def test_a_row_of_x_off_the_real_line_gets_nan_or_no_density() -> None:
    log_p = log_multivariate_gaussian([[np.nan], [np.inf], [0.0]], [0.0], [1.0])
    assert np.isnan(log_p[0]) and log_p[1] < -8e307 and np.isfinite(log_p[2])
