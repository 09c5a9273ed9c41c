"""The tail probabilities against SciPy, over wide ranges of distance and dimension."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from stream_detect import tails
from stream_detect.tails import chi2_log_sf, log_upper_gamma, normal_log_tail, student_t_log_tail

RELATIVE = 1e-10
#: Near log p = 0 SciPy rounds 1 - 1e-23 to 1; an absolute slack of 1e-14 in log p covers it.
ABSOLUTE = 1e-14


def _close(ours: float, theirs: float) -> None:
    assert ours == pytest.approx(theirs, rel=RELATIVE, abs=ABSOLUTE)


@settings(max_examples=300, deadline=None)
@given(
    d=st.integers(min_value=1, max_value=4000),
    scale=st.floats(min_value=0.0, max_value=6.0),
)
def test_chi2_log_sf_matches_scipy(d: int, scale: float) -> None:
    # Distances from 0 to well past the bulk (mean d, sd sqrt(2d)).
    distance_sq = scale * (d + 10.0 * math.sqrt(2.0 * d) + 20.0)
    theirs = float(stats.chi2.logsf(distance_sq, d))
    if not theirs > -700.0:  # SciPy's tail underflows there; see the next test.
        return
    _close(float(chi2_log_sf(distance_sq, d)), theirs)


@settings(max_examples=200, deadline=None)
@given(z=st.floats(min_value=0.0, max_value=1e6))
def test_normal_tails_match_scipy_for_any_z(z: float) -> None:
    # SciPy's norm.logsf stays accurate far into the tail, where chi2.logsf underflows.
    _close(float(normal_log_tail(z, two_sided=False)), float(stats.norm.logsf(z)))
    _close(float(normal_log_tail(-z, two_sided=False)), float(stats.norm.logsf(z)))
    two_sided = float(stats.norm.logsf(z)) + math.log(2.0)
    _close(float(normal_log_tail(z)), two_sided)
    _close(float(chi2_log_sf(z * z, 1)), two_sided)


@settings(max_examples=200, deadline=None)
@given(
    a=st.floats(min_value=1e-3, max_value=1e4),
    x=st.floats(min_value=1e-12, max_value=1e5),
)
def test_log_upper_gamma_matches_scipy(a: float, x: float) -> None:
    theirs = float(stats.gamma.logsf(x, a))
    if not theirs > -700.0:
        return
    _close(float(log_upper_gamma(a, x)), theirs)


@settings(max_examples=300, deadline=None)
@given(
    t=st.one_of(st.floats(0.0, 60.0), st.floats(60.0, 1e12)),
    log10_dof=st.floats(-1.0, 6.0),
)
def test_student_t_tail_matches_scipy(t: float, log10_dof: float) -> None:
    dof = 10.0**log10_dof
    theirs = float(stats.t.logsf(t, dof))
    ours = float(student_t_log_tail(t, dof, two_sided=False))
    if theirs > -1.0:
        # SciPy's logsf is log(sf) there, which rounds; its sf does not, except
        # that for t near 0 it rounds 0.5 - O(t) to 0.5: allow that much.
        assert math.exp(ours) == pytest.approx(
            float(stats.t.sf(t, dof)), rel=RELATIVE, abs=max(1e-12, t)
        )
    elif theirs > -700.0:
        _close(ours, theirs)
    _close(float(student_t_log_tail(-t, dof)), ours + math.log(2.0))


def test_student_t_tail_tends_to_the_normal() -> None:
    z = np.array([0.5, 3.0, 10.0])
    # At ν = 1e6 the two differ by about z⁴ / (4ν) in log tail.
    np.testing.assert_allclose(student_t_log_tail(z, 1e6), normal_log_tail(z), rtol=1e-4)
    assert student_t_log_tail(np.inf, 4.0).tolist() == -math.inf


def test_far_tail_is_finite_and_decreasing() -> None:
    distance_sq = np.array([1e3, 1e4, 1e6, 1e10, 1e300])
    for d in (1, 7, 3000):
        tails = chi2_log_sf(distance_sq, d)
        assert np.all(np.isfinite(tails))
        assert np.all(np.diff(tails) < 0.0)
        # Leading behaviour of the tail: -r²/2 + (d/2 - 1) log(r²/2) - lgamma(d/2).
        r2 = distance_sq[-2]
        expected = -r2 / 2 + (d / 2 - 1) * math.log(r2 / 2) - math.lgamma(d / 2)
        assert tails[-2] == pytest.approx(expected, rel=1e-9)


def test_batch_equals_one_at_a_time() -> None:
    rng = np.random.default_rng(7)
    distance_sq = rng.chisquare(5, size=200) * rng.choice([1.0, 10.0, 100.0], size=200)
    d = rng.choice([1, 5, 50, 500], size=200)
    batch = chi2_log_sf(distance_sq, d)
    one_by_one = [float(chi2_log_sf(r2, k)) for r2, k in zip(distance_sq, d, strict=True)]
    assert batch.tolist() == one_by_one


def test_edges() -> None:
    assert chi2_log_sf(np.inf, 3).tolist() == -math.inf
    assert chi2_log_sf(0.0, 3).tolist() == 0.0
    with pytest.raises(ValueError, match="a > 0"):
        log_upper_gamma(0.0, 1.0)
    with pytest.raises(ValueError, match="x >= 0"):
        chi2_log_sf(np.nan, 2)


# The fast paths against SciPy over the whole range; each against the form it replaces is in
# test_gamma_tails, test_t_series and test_beta_fraction.


@settings(max_examples=300, deadline=None)
@given(
    t=st.one_of(st.floats(0.0, 4.0), st.floats(0.0, 1e3)),
    log10_dof=st.floats(0.0, 9.0),
)
def test_student_t_tail_matches_scipy_up_to_a_billion_dof(t: float, log10_dof: float) -> None:
    dof = 10.0**log10_dof
    theirs = float(stats.t.logsf(t, dof))
    ours = float(student_t_log_tail(t, dof, two_sided=False))
    # Rounding of ν-sized terms costs about ν · 1e-16 relative beyond ν = 1e6 (see the docstring).
    relative = max(RELATIVE, dof * 1e-16)
    if theirs > -1.0:
        assert math.exp(ours) == pytest.approx(
            float(stats.t.sf(t, dof)), rel=relative, abs=max(1e-12, t)
        )
    elif theirs > -700.0:
        assert ours == pytest.approx(theirs, rel=relative, abs=ABSOLUTE)


@pytest.mark.parametrize("d", [2, 8, 16, 64, 80, 100])
def test_chi2_even_dof_closed_form_matches_scipy(d: int) -> None:
    distance_sq = np.concatenate([np.linspace(d + 2.0, 40.0 * d + 100.0, 200), [1e4, 3e4]])
    theirs = stats.chi2.logsf(distance_sq, d)
    keep = theirs > -700.0
    np.testing.assert_allclose(chi2_log_sf(distance_sq, d)[keep], theirs[keep], rtol=RELATIVE)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 3000))
def test_log_beta_with_half_is_exact_to_an_ulp_or_two(n: int) -> None:
    # B(n, 1/2) = 4^n n! (n-1)! / (2n)! exactly; float() of the fraction rounds once.
    exact = Fraction(4**n * math.factorial(n) * math.factorial(n - 1), math.factorial(2 * n))
    expected = math.log(float(exact))
    ours = float(tails._log_beta_with_half(np.array([float(n)]))[0])
    assert ours == pytest.approx(expected, rel=1e-15, abs=5e-16)


def test_student_t_batch_equals_one_at_a_time() -> None:
    rng = np.random.default_rng(11)
    t = rng.standard_t(3, size=300) * rng.choice([1.0, 5.0, 100.0], size=300)
    dof = rng.choice([0.5, 2.0, 30.0, 1e3, 1e5, 1e8], size=300)
    batch = student_t_log_tail(t, dof)
    one_by_one = [float(student_t_log_tail(v, n)) for v, n in zip(t, dof, strict=True)]
    assert batch.tolist() == one_by_one
    # And a row-shared ν, as the prior passes it, gives the same numbers.
    rows = np.broadcast_to(dof[:, None], (300, 2))
    np.testing.assert_array_equal(student_t_log_tail(np.stack([t, t], axis=1), rows)[:, 0], batch)


def test_student_t_blocks_give_what_rows_one_at_a_time_give() -> None:
    rng = np.random.default_rng(13)
    rows = 3 * tails._BLOCK_ELEMENTS // 8 + 5
    t = rng.normal(size=(rows, 8)) * rng.choice([1.0, 1.0, 1.0, 3.0, 30.0], size=(rows, 1))
    t[rng.random(t.shape) < 0.01] = 0.0
    t[rng.random(t.shape) < 0.001] = -np.inf
    dof = np.broadcast_to(rng.choice([0.5, 3.0, 40.0, 2e3, 1e6], size=(rows, 1)), t.shape)
    batch = student_t_log_tail(t, dof)
    # Rows alone go through other blocks, and through the series whole or gathered.
    one_by_one = np.stack([student_t_log_tail(t[i], dof[i]) for i in range(rows)])
    np.testing.assert_array_equal(batch, one_by_one)
    shuffled = rng.permutation(rows)
    np.testing.assert_array_equal(student_t_log_tail(t[shuffled], dof[shuffled]), batch[shuffled])
    # ν per element (no axis to share it along) gives the same numbers.
    np.testing.assert_array_equal(student_t_log_tail(t, np.array(dof)), batch)
    # No rows, and no features, are batches too.
    assert student_t_log_tail(np.zeros((0, 8)), 3.0).shape == (0, 8)
    assert student_t_log_tail(np.zeros((rows, 0)), dof[:, :0]).shape == (rows, 0)
