"""The anomaly likelihood layer against a slow, one-row-at-a-time reference."""

from __future__ import annotations

import itertools
import json
import math
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from stream_detect.errors import ConfigError
from stream_detect.likelihood import AnomalyLikelihood


class ReferenceLikelihood:
    """The rules of the module docstring, written out for one row at a time."""

    def __init__(
        self, d: int, window: int, averaging: int, period: int, refractory: int, learning: int
    ) -> None:
        self.d, self.window, self.averaging, self.learning = d, window, averaging, learning
        self.period, self.refractory = period, refractory
        self.raw: list[deque[float]] = [deque(maxlen=averaging) for _ in range(d)]
        self.averaged: deque[list[float]] = deque(maxlen=window)
        self.values: deque[list[float]] = deque(maxlen=window)
        self.mean = [0.5] * d
        self.std = [1000.0] * d
        self.rows = 0
        self.previous_log_p = 0.0
        self.last_alert: int | None = None

    def step(self, scores: list[float], values: list[float]) -> tuple[float, bool]:
        # Rows of the window that are past the learning period.
        usable = min(len(self.averaged), max(0, self.rows - self.learning))
        if self.rows % self.period == 0 and usable < self.period:
            self.mean, self.std = [0.5] * self.d, [1000.0] * self.d
        elif self.rows % self.period == 0:
            history = np.array(list(self.averaged)[len(self.averaged) - usable :])
            value_history = np.array(list(self.values)[len(self.values) - usable :])
            for j in range(self.d):
                column = history[:, j]
                mean = float(np.mean(column, axis=0))
                var = float(np.mean(np.square(column - mean), axis=0))
                value_column = value_history[:, j]
                value_var = np.mean(np.square(value_column - np.mean(value_column, axis=0)))
                if value_var < 1.5e-5:
                    self.mean[j], self.std[j] = 0.5, 1000.0
                else:
                    self.mean[j], self.std[j] = max(mean, 0.03), math.sqrt(max(var, 3e-4))
        tails = []
        averaged = []
        for j in range(self.d):
            self.raw[j].append(scores[j])
            total = 0.0
            for value in reversed(self.raw[j]):
                total += value
            a = total / len(self.raw[j])
            averaged.append(a)
            tails.append(float(stats.norm.logsf(abs(a - self.mean[j]) / self.std[j])))
        # In log space, as SciPy's sf underflows to 0 where the layer's tails do not.
        log_p = min(0.0, math.log(self.d) + min(tails))
        raw_log_p = log_p
        if log_p <= math.log(1e-5) and self.previous_log_p <= math.log(1e-5):
            log_p = math.log(1e-3)
        self.previous_log_p = raw_log_p
        alert = log_p <= math.log(1e-5) and (
            self.last_alert is None or self.rows - self.last_alert > self.refractory
        )
        if alert:
            self.last_alert = self.rows
        self.averaged.append(averaged)
        self.values.append(values)
        self.rows += 1
        return log_p, alert


def _stream(rows: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, d)).cumsum(axis=0)
    values[: rows // 4, 0] = 3.0  # a flat stretch
    scores = np.abs(rng.standard_t(3, size=(rows, d)))
    for row in rng.integers(0, rows, size=6):
        scores[row : row + 5] += rng.uniform(5, 60)
    return scores, values


@settings(max_examples=25, deadline=None)
@given(
    d=st.integers(1, 3),
    window=st.integers(5, 60),
    averaging=st.integers(1, 12),
    period=st.integers(1, 30),
    refractory=st.integers(0, 15),
    learning=st.integers(0, 40),
    seed=st.integers(0, 1000),
    cuts=st.lists(st.integers(0, 250), max_size=6),
)
def test_batches_equal_the_per_row_reference(
    d: int,
    window: int,
    averaging: int,
    period: int,
    refractory: int,
    learning: int,
    seed: int,
    cuts: list[int],
) -> None:
    scores, values = _stream(250, d, seed)
    reference = ReferenceLikelihood(d, window, averaging, period, refractory, learning)
    expected = [reference.step(scores[i].tolist(), values[i].tolist()) for i in range(250)]

    layer = AnomalyLikelihood(
        d,
        window=window,
        averaging=averaging,
        reestimate_every=period,
        refractory=refractory,
        learning_period=learning,
    )
    log_p, alerts = [], []
    edges = [0, *sorted(cuts), 250]
    for start, stop in itertools.pairwise(edges):
        # A checkpoint between batches must not change anything either.
        layer = AnomalyLikelihood.from_dict(json.loads(json.dumps(layer.to_dict())))
        result = layer.update(scores[start:stop], values[start:stop])
        log_p.extend(result.log_p.tolist())
        alerts.extend(result.alert.tolist())
    np.testing.assert_allclose(log_p, [p for p, _ in expected], rtol=1e-9, atol=1e-12)
    assert alerts == [alert for _, alert in expected]


def test_any_batch_split_gives_identical_bits() -> None:
    scores, values = _stream(3000, 3, 11)
    whole = AnomalyLikelihood(3, window=500).update(scores, values)
    layer = AnomalyLikelihood(3, window=500)
    pieces = [layer.update(scores[i : i + 37], values[i : i + 37]) for i in range(0, 3000, 37)]
    assert np.concatenate([p.log_p for p in pieces]).tobytes() == whole.log_p.tobytes()
    assert np.concatenate([p.alert for p in pieces]).tolist() == whole.alert.tolist()
    assert whole.alert.sum() >= 3


def test_state_stays_bounded() -> None:
    layer = AnomalyLikelihood(2, window=100, averaging=10)
    scores, values = _stream(2000, 2, 3)
    layer.update(scores, values)
    state = layer.to_dict()
    assert len(state["averaged"]) == len(state["values"]) == 100
    assert len(state["recent_raw"]) == 9


def test_onset_rule_and_refractory() -> None:
    layer = AnomalyLikelihood(1, window=200, reestimate_every=200, refractory=30, learning_period=0)
    rng = np.random.default_rng(5)
    values = rng.normal(size=(400, 1))
    scores = np.abs(values)
    scores[300:360] = 50.0  # a long excursion
    result = layer.update(scores, values)
    p = np.exp(result.log_p)
    assert p[300] <= 1e-5
    assert np.allclose(p[301:310], 1e-3)  # the run after its onset is marked down
    assert np.flatnonzero(result.alert).tolist() == [300]


def test_infinite_scores_do_not_poison_the_window() -> None:
    layer = AnomalyLikelihood(1, window=50, reestimate_every=10)
    scores = np.abs(np.random.default_rng(2).normal(size=(200, 1)))
    scores[60] = np.inf
    values = np.random.default_rng(3).normal(size=(200, 1))
    result = layer.update(scores, values)
    assert np.all(np.isfinite(result.log_p[np.r_[0:60, 150:200]]))
    assert result.alert[60]


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ConfigError, match="window"):
        AnomalyLikelihood(1, window=0)
    with pytest.raises(ConfigError, match="alert_p"):
        AnomalyLikelihood(1, alert_p=1.5)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        AnomalyLikelihood(2).update(np.zeros((3, 1)), np.zeros((3, 1)))
