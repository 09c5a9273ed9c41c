"""The incomplete beta's continued fraction: every way of evaluating it gives the same value."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect import beta_fraction


@settings(max_examples=100, deadline=None)
@given(x=st.floats(1e-6, 0.999), log10_a=st.floats(-1.0, 4.0))
def test_unguarded_beta_fraction_equals_the_guarded_one(x: float, log10_a: float) -> None:
    a, b = np.array([10.0**log10_a]), np.array([0.5])
    # Only inside the region of convergence, where both are used.
    if not x < (a[0] + 1.0) / (a[0] + b[0] + 2.0):
        return
    fast = beta_fraction._beta_fraction(a, b, np.array([x]))
    slow = beta_fraction._beta_fraction_guarded(a, b, np.array([x]))
    assert fast[0] == pytest.approx(slow[0], rel=1e-13)
