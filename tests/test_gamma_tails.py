"""The incomplete gamma's shortcuts against the forms they replace; the public tails: test_tails."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect import gamma_tails
from stream_detect.gamma_tails import chi2_log_sf, log_upper_gamma


@settings(max_examples=200, deadline=None)
@given(k=st.integers(1, gamma_tails._CLOSED_FORM_MAX), excess=st.floats(1.0, 1e6))
def test_gamma_closed_form_equals_the_continued_fraction(k: int, excess: float) -> None:
    x = np.array([k + excess])
    closed = float(gamma_tails._log_upper_closed_form(k, x)[0])
    fraction = float(gamma_tails._log_upper_by_fraction(np.array([float(k)]), x)[0])
    assert closed == pytest.approx(fraction, rel=1e-13)


@settings(max_examples=100, deadline=None)
@given(a=st.floats(1e-3, 1e4), excess=st.floats(1.0, 1e5))
def test_unguarded_gamma_fraction_equals_the_guarded_one(a: float, excess: float) -> None:
    x = np.array([a + excess])
    fast = gamma_tails._gamma_fraction(np.array([a]), x, guarded=False)
    slow = gamma_tails._gamma_fraction(np.array([a]), x, guarded=True)
    assert fast[0] == pytest.approx(slow[0], rel=1e-13)


def test_distances_near_the_float_range_have_the_leading_term_without_a_warning() -> None:
    """Beyond 1e8 (1 + a) the leading term is log Q to rounding: the fraction agrees there."""

    def leading(a: float, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = (a - 1) * np.log(x) - x - math.lgamma(a)
        return out

    for a in (0.5, 1.5, 4.0, 100.0, 1e4):
        x = np.array([1e8, 1e9, 1e10]) * (1 + a)
        fraction = gamma_tails._log_upper_by_fraction(np.full(3, a), x)
        np.testing.assert_allclose(fraction, leading(a, x), rtol=1e-15)
        np.testing.assert_allclose(log_upper_gamma(a, 2 * x), leading(a, 2 * x), rtol=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        far = chi2_log_sf([1.7976931348623157e308, 1e300, 1e40], 3)
    assert np.all(np.isfinite(far)) and far[0] < far[1] < far[2] < 0
