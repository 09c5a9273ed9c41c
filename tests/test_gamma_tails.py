"""The incomplete gamma's shortcuts against the forms they replace; the public tails: test_tails."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect import gamma_tails


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
