"""The t series: its table of term counts, its sums, and where it meets the continued fraction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect import t_series, tails


def _t_series_terms(t2: float, dof: float, count: int) -> list[float]:
    """c_0 .. c_(count-1) of the t series, as :func:`t_series._t_series_sums` defines them."""
    y = t2 / (dof + t2)
    excess = y * (0.5 * dof - 1.0)
    terms = [1.0]
    for k in range(count - 1):
        terms.append(terms[-1] * (y + excess / (1.5 + k)))
    return terms


@settings(max_examples=300, deadline=None)
@given(share=st.floats(0.0, 1.0), log10_dof=st.floats(-1.0, 9.0))
def test_t_series_term_counts_leave_less_than_half_an_ulp(share: float, log10_dof: float) -> None:
    dof = 10.0**log10_dof
    t2 = share * min(t_series._SERIES_MAX_T2, dof / 3.0)
    y = t2 / (dof + t2)
    excess = y * (0.5 * dof - 1.0)
    row = math.floor((excess - t_series._EXCESS_FROM) * t_series._EXCESS_STEPS)
    column = math.floor(math.sqrt(y) * t_series._ROOT_Y_STEPS)
    count = int(t_series._series_length_table()[row * t_series._SERIES_TABLE_SHAPE[1] + column])
    terms = _t_series_terms(t2, dof, 400)
    # Summed from the smallest term up, so that the sums themselves hardly round.
    kept, left_out = math.fsum(terms[: count + 1]), math.fsum(terms[count + 1 :])
    assert left_out <= 2.0**-53 * kept * (1.0 + 1e-12)


@settings(max_examples=200, deadline=None)
@given(share=st.floats(0.0, 1.0), log10_dof=st.floats(-1.0, 9.0))
def test_t_series_sums_match_the_whole_series(share: float, log10_dof: float) -> None:
    dof = 10.0**log10_dof
    t2 = share * min(t_series._SERIES_MAX_T2, dof / 3.0)
    ours = float(t_series._t_series_sums(np.array([t2]), np.array([dof]))[0])
    assert ours == pytest.approx(math.fsum(_t_series_terms(t2, dof, 400)), rel=4e-16)


@settings(max_examples=200, deadline=None)
@given(y_share=st.floats(0.0, 1.0), log10_dof=st.floats(-1.0, 9.0))
def test_t_series_equals_the_continued_fraction_where_both_run(
    y_share: float, log10_dof: float
) -> None:
    dof = np.array([10.0**log10_dof])
    t2 = y_share * np.minimum(t_series._SERIES_MAX_T2, dof / 3.0)
    t = np.sqrt(t2)
    if not t[0] > 0.0:
        return
    log_beta = tails._log_beta_with_half(0.5 * dof)
    series = float(t_series._log_t_tail_by_series(t, t2, dof, log_beta)[0])
    fraction = float(tails._log_t_tail_by_fraction(t, t2, dof, log_beta)[0])
    assert series == pytest.approx(fraction, rel=max(1e-12, float(dof[0]) * 1e-16), abs=1e-15)
