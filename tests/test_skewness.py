"""Tests of stream_detect.skewness: skewness and ThirdMoments against SciPy and numpy."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from stream_detect.skewness import ThirdMoments, skewness

# ---------------------------------------------------------------- skewness


@pytest.mark.parametrize("seed", range(5))
def test_skewness_matches_scipy_on_skewed_samples(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for x in (
        rng.normal(size=1000),
        rng.lognormal(size=1000),
        rng.exponential(size=17) * 1e6 + 1e9,
        -rng.gamma(0.5, size=300) * 1e-6,
    ):
        assert skewness(x) == pytest.approx(scipy.stats.skew(x, bias=True), rel=1e-9, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.integers(3, 200),
        elements=st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False),
    )
)
def test_skewness_matches_scipy_hypothesis(x: np.ndarray) -> None:
    # Skewness is scale-free; scaling first keeps SciPy's m2**1.5 from underflowing.
    top = float(np.max(np.abs(x)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SciPy warns on (nearly) constant input
        expected = scipy.stats.skew(x / top if top else x, bias=True)
    ours = skewness(x)
    if np.isnan(expected):
        assert ours == 0.0
    elif np.ptp(x) > 1e-6 * max(1.0, float(np.max(np.abs(x)))):
        assert ours == pytest.approx(expected, rel=1e-7, abs=1e-7)


def test_skewness_edge_cases() -> None:
    assert math.isnan(skewness([]))
    assert math.isnan(skewness([1.0, np.nan, 2.0]))
    assert skewness([3.0]) == 0.0
    assert skewness(np.full(10, 1e6)) == 0.0
    assert skewness([1.0, 2.0, 3.0]) == 0.0
    assert skewness(np.array([[0.0, 0.0], [0.0, 1.0]])) == pytest.approx(1.1547005, rel=1e-6)


# ---------------------------------------------------------------- ThirdMoments


@settings(max_examples=100, deadline=None)
@given(
    data=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 120), st.integers(1, 4)),
        elements=st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
    ),
    cuts=st.lists(st.integers(0, 120), max_size=6),
    offset=st.sampled_from([0.0, 1e6, -1e6]),
)
def test_third_moments_chunked_equal_numpy_on_the_concatenation(
    data: np.ndarray, cuts: list[int], offset: float
) -> None:
    X = data + offset
    bounds = sorted({0, X.shape[0], *(min(c, X.shape[0]) for c in cuts)})
    moments = ThirdMoments(X.shape[1])
    for start, stop in itertools.pairwise(bounds):
        moments.learn(X[start:stop])
    dev = X - X.mean(axis=0)
    scale = float(np.abs(X).max()) + 1.0
    assert moments.n.tolist() == [float(X.shape[0])] * X.shape[1]
    np.testing.assert_allclose(moments.mean, X.mean(axis=0), rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(
        moments.m2, (dev**2).sum(axis=0), rtol=1e-8, atol=1e-9 * scale**2 * X.shape[0]
    )
    np.testing.assert_allclose(
        moments.m3, (dev**3).sum(axis=0), rtol=1e-6, atol=1e-7 * scale**3 * X.shape[0]
    )


def test_third_moments_merge_of_two_states_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    a_rows, b_rows = rng.lognormal(size=(700, 3)), rng.exponential(size=(50, 3)) + 4.0
    merged = ThirdMoments(3).learn(a_rows).merge(ThirdMoments(3).learn(b_rows))
    both = np.vstack([a_rows, b_rows])
    np.testing.assert_allclose(merged.mean, both.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged.var, both.var(axis=0), rtol=1e-10)
    np.testing.assert_allclose(merged.skewness, scipy.stats.skew(both, bias=True), rtol=1e-9)
    # merge leaves its inputs alone, and merging with an empty state changes nothing
    empty = ThirdMoments(3)
    np.testing.assert_array_equal(merged.merge(empty).m3, merged.m3)
    np.testing.assert_array_equal(empty.merge(merged).m3, merged.m3)
    assert empty.n.tolist() == [0.0, 0.0, 0.0]


def test_third_moments_skip_non_finite_values_per_feature() -> None:
    X = np.array([[1.0, np.nan], [2.0, 5.0], [np.inf, 7.0], [6.0, 9.0]])
    m = ThirdMoments(2).learn(X)
    assert m.n.tolist() == [3.0, 3.0]
    assert m.non_finite.tolist() == [1, 1]
    np.testing.assert_allclose(m.mean, [3.0, 7.0])
    np.testing.assert_allclose(m.skewness, [scipy.stats.skew([1.0, 2.0, 6.0]), 0.0], atol=1e-12)


def test_third_moments_empty_constant_and_shape_errors() -> None:
    m = ThirdMoments(2)
    assert np.isnan(m.var).all() and np.isnan(m.skewness).all()
    m.learn(np.empty((0, 2)))
    assert m.n.tolist() == [0.0, 0.0]
    m.learn(np.full((5, 2), 3.0))
    assert m.skewness.tolist() == [0.0, 0.0]
    copy = m.copy()
    copy.learn([[1.0, 1.0]])
    assert m.n.tolist() == [5.0, 5.0]
    with pytest.raises(ValueError):
        m.learn(np.ones((2, 3)))
    with pytest.raises(ValueError):
        m.merge(ThirdMoments(3))
    with pytest.raises(ValueError):
        ThirdMoments(0)


def test_constant_data_have_zero_skewness_despite_rounding_of_the_mean() -> None:
    x = np.full(87, 47127.91469319)
    assert skewness(x) == 0.0
    moments = ThirdMoments(1).learn(x[:40, None]).learn(x[40:, None])
    assert moments.skewness.tolist() == [0.0]
    assert moments.min.tolist() == moments.max.tolist() == [47127.91469319]


def test_third_moments_track_extremes_of_finite_values() -> None:
    m = ThirdMoments(2).learn([[1.0, np.nan], [-3.0, 2.0]]).learn([[np.inf, 5.0]])
    assert m.min.tolist() == [-3.0, 2.0]
    assert m.max.tolist() == [1.0, 5.0]
    assert ThirdMoments(1).min.tolist() == [math.inf]


def test_skewness_of_huge_values_equals_that_of_the_scaled_values() -> None:
    x = np.random.default_rng(5).lognormal(size=1000)
    assert skewness(x * 2.0**1000) == skewness(x)
    assert skewness(np.array([1e308, 1e308, -1e308])) == pytest.approx(skewness([1.0, 1.0, -1.0]))


@pytest.mark.parametrize(("low", "high"), [(-320, -300), (-160, -150), (140, 160), (290, 307)])
def test_third_moments_of_values_near_either_float_limit_keep_their_skewness(
    low: int, high: int
) -> None:
    # Below about 1e-154 the squared deviations underflowed: the variance was 0 and the
    # skewness 0 for skewed data; above about 1e100 the cubes overflowed to a NaN.
    rng = np.random.default_rng(7)
    x = 10.0 ** rng.uniform(low, high, size=3000)
    expected = scipy.stats.skew(x / np.max(x), bias=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        moments = ThirdMoments(1)
        for part in np.array_split(x, 7):
            moments.learn(part[:, None])
        skew = moments.skewness
        var = moments.var
    assert skew[0] == pytest.approx(expected, rel=1e-9)
    assert moments.mean[0] == pytest.approx(float(np.mean(x / np.max(x))) * np.max(x), rel=1e-9)
    top = float(np.max(x))
    log2_var = math.log2(float(np.var(x / top))) + 2 * math.log2(top)
    if log2_var < -1022:
        # The variance is below the smallest normal double: not 0, which would mean constant.
        assert math.isnan(var[0])
    elif log2_var >= 1024:
        assert var[0] == math.inf
    else:
        assert var[0] == pytest.approx(float(np.var(x / top)) * top * top, rel=1e-9)
    # Constant values, however small, are still constant.
    constant = ThirdMoments(1).learn(np.full((5, 1), 1e-310))
    assert constant.skewness.tolist() == [0.0] and constant.var.tolist() == [0.0]


def test_third_moments_merge_chunks_of_far_apart_scales() -> None:
    rng = np.random.default_rng(8)
    parts = [rng.lognormal(size=200) * scale for scale in (1e-300, 1.0, 1e-300, 1e5)]
    moments = ThirdMoments(1)
    for part in parts:
        moments.learn(part[:, None])
    both = np.concatenate(parts)
    assert moments.skewness[0] == pytest.approx(scipy.stats.skew(both, bias=True), rel=1e-9)
    assert moments.var[0] == pytest.approx(float(np.var(both)), rel=1e-9)
    assert moments.n.tolist() == [800.0]


def _fsum_moments(x: np.ndarray) -> tuple[float, float]:
    """Variance and skewness of ``x`` from correctly rounded sums (a slow reference)."""
    mean = math.fsum(x) / len(x)
    dev = x - mean
    dev -= math.fsum(dev) / len(x)
    m2 = math.fsum(dev * dev) / len(x)
    m3 = math.fsum(dev**3) / len(x)
    return m2, m3 / m2**1.5


def test_third_moments_of_a_wide_chunk_keep_the_digits_of_a_large_mean() -> None:
    # Summed down the columns of a (65536, 3) chunk one row after another, the mean of
    # a feature at 1e6 with a spread of 3 was off by 1e-14, and its skewness by 1e-6.
    rng = np.random.default_rng(5)
    n = 65536
    X = np.column_stack([rng.lognormal(2, 1, n), rng.normal(1e6, 3, n), rng.exponential(1, n)])
    moments = ThirdMoments(3).learn(X)
    for j in range(3):
        var, skew = _fsum_moments(X[:, j])
        assert moments.var[j] == pytest.approx(var, rel=1e-13)
        assert moments.skewness[j] == pytest.approx(skew, rel=1e-9)
