"""The incomplete beta's continued fraction: every way of evaluating it gives the same value."""

from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect import beta_fraction

Array = np.ndarray


def _t_tail_arguments(dof: Array, t: Array) -> tuple[Array, Array, Array]:
    """(a, b, x) of the fraction as the t tail runs it: I_x(ν/2, 1/2), or its complement's."""
    t2 = np.square(t)
    x, one_minus_x = dof / (dof + t2), t2 / (dof + t2)
    a, b = 0.5 * dof, np.full(dof.shape, 0.5)
    direct = x < (a + 1.0) / (a + b + 2.0)
    return np.where(direct, a, b), np.where(direct, b, a), np.where(direct, x, one_minus_x)


def _grid() -> tuple[Array, Array, Array]:
    """ν from 1 to 1e6 and t from 1e-3 to 1e150, both on log scales, flat."""
    dof, t = np.meshgrid(np.logspace(0.0, 6.0, 49), np.logspace(-3.0, 150.0, 307))
    return _t_tail_arguments(dof.ravel(), t.ravel())


def _condition(a: Array, b: Array, x: Array) -> Array:
    """How much the rounding of the first level, 1 + d_1, grows in the fraction's value.

    Near the bound x = (a+1)/(a+b+2), with a large, 1 + d_1 = 1 - (a+b) x / (a+1)
    cancels; every evaluation inherits its rounding, amplified by |d_1 / (1 + d_1)|.
    """
    first = -(a + b) * x / (a + 1.0)
    out: Array = np.maximum(1.0, np.abs(first / (1.0 + first)))
    return out


def _exact(a: float, b: float, x: float, levels: int = 600) -> float:
    """The fraction at these (binary) arguments, bottom-up in 60-digit decimals."""
    with localcontext() as context:
        context.prec = 60
        a_, b_, x_ = Decimal(a), Decimal(b), Decimal(x)
        value = Decimal(1)
        for level in range(levels, 0, -1):
            m = level // 2
            if level % 2:
                d = -(a_ + m) * (a_ + b_ + m) * x_ / ((a_ + 2 * m) * (a_ + 2 * m + 1))
            else:
                d = m * (b_ - m) * x_ / ((a_ + 2 * m - 1) * (a_ + 2 * m))
            value = 1 + d / value
        return float(1 / value)


@settings(max_examples=100, deadline=None)
@given(x=st.floats(1e-6, 0.999), log10_a=st.floats(-1.0, 4.0))
def test_unguarded_lentz_equals_the_guarded_one(x: float, log10_a: float) -> None:
    a, b = np.array([10.0**log10_a]), np.array([0.5])
    # Only inside the region of convergence, where both are used.
    if not x < (a[0] + 1.0) / (a[0] + b[0] + 2.0):
        return
    fast = beta_fraction._beta_fraction_by_lentz(a, b, np.array([x]))
    slow = beta_fraction._beta_fraction_guarded(a, b, np.array([x]))
    # Near the bound the first level cancels and both inherit its rounding, amplified
    # (x = 0.999, a = 1e4: a condition of 951, the two 1.2e-13 apart, each within
    # 2e-13 of the exact value); elsewhere the condition is 1 and the bound as it was.
    condition = float(_condition(a, b, np.array([x]))[0])
    assert fast[0] == pytest.approx(slow[0], rel=1e-13 * condition)


def test_bottom_up_agrees_with_lentz_over_the_t_tails_range() -> None:
    a, b, x = _grid()
    ours, lentz = (
        beta_fraction._beta_fraction(a, b, x),
        beta_fraction._beta_fraction_by_lentz(a, b, x),
    )
    relative = np.abs(ours - lentz) / lentz
    assert np.all(relative <= 1e-14 * _condition(a, b, x))
    # Where nothing cancels (nearly all of the grid) that is 1e-14 outright.
    assert np.mean(_condition(a, b, x) == 1.0) > 0.99


@pytest.mark.parametrize(
    ("dof", "t"),
    [(1.0, 2.0), (3.0, 1.2), (30.0, 3.5), (1e3, 3.5), (1e3, 8.0), (1e4, 40.0), (1e6, 3.5),
     (1e6, 1e3), (5.0, 1e150), (2.0, 0.9), (40.0, 3.0)],
)  # fmt: skip
def test_bottom_up_is_exact_to_its_rounding(dof: float, t: float) -> None:
    a, b, x = _t_tail_arguments(np.array([dof]), np.array([t]))
    ours = float(beta_fraction._beta_fraction(a, b, x)[0])
    exact = _exact(float(a[0]), float(b[0]), float(x[0]))
    assert ours == pytest.approx(exact, rel=2e-15 * float(_condition(a, b, x)[0]))


def test_batch_equals_one_element_at_a_time() -> None:
    a, b, x = _grid()
    rng = np.random.default_rng(5)
    # Shuffled, and more than a chunk: elements settle at every depth, in every chunk.
    order = rng.permutation(np.tile(np.arange(a.size), 2))[: beta_fraction._CHUNK + 999]
    a, b, x = a[order], b[order], x[order]
    batch = beta_fraction._beta_fraction(a, b, x)
    alone = [
        float(beta_fraction._beta_fraction(a[i : i + 1], b[i : i + 1], x[i : i + 1])[0])
        for i in range(a.size)
    ]
    assert batch.tolist() == alone


def test_elements_no_depth_settles_go_to_lentz(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, x = _grid()
    # So shallow that most elements are left for Lentz's algorithm.
    monkeypatch.setattr(beta_fraction, "_DEPTHS", ((0, 1), (1, 2)))
    ours, lentz = (
        beta_fraction._beta_fraction(a, b, x),
        beta_fraction._beta_fraction_by_lentz(a, b, x),
    )
    assert np.mean(ours == lentz) > 0.5
    np.testing.assert_allclose(ours, lentz, rtol=1e-13)
