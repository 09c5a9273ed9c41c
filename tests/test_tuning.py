"""The threshold schedule: re-tunes by events, labels and the clock, and the no-label fallback."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stream_detect.settings import DetectorSettings
from stream_detect.threshold import quantile_log_threshold
from stream_detect.tuning import RECENT_SCORES, UNSET_RETUNE_EVERY, ThresholdTuner


def no_scores(X: np.ndarray, keys: list[str | None]) -> np.ndarray:
    return np.full(X.shape[0], np.nan)


def test_a_retune_falls_due_every_n_events_whatever_the_batching() -> None:
    tuner = ThresholdTuner(DetectorSettings(log_epsilon=-5.0, retune_every=30), 1)
    due_at = []
    seen = 0
    for batch in (7, 50, 1, 13, 40):
        left = batch
        while left:
            take = tuner.rows_until_due(np.zeros(left, dtype=bool))
            seen += take
            left -= take
            if tuner.advance(take, 0):
                due_at.append(seen)
                tuner.retune(no_scores)
    assert due_at == [30, 60, 90]
    assert tuner.retunes == 3 and tuner.log_epsilon == -5.0


def test_a_retune_falls_due_at_the_kth_new_label() -> None:
    tuner = ThresholdTuner(DetectorSettings(log_epsilon=-5.0, retune_every=0, retune_labels=3), 1)
    labelled = np.zeros(20, dtype=bool)
    labelled[[2, 5, 9, 15]] = True
    assert tuner.rows_until_due(labelled) == 10
    assert tuner.advance(10, 3)
    tuner.retune(no_scores)
    assert tuner.rows_until_due(labelled[10:]) == 10
    assert not tuner.advance(10, 1)


def test_the_clock_decides_the_time_based_retune() -> None:
    now = [100.0]
    settings = DetectorSettings(log_epsilon=-5.0, retune_seconds=20.0)
    tuner = ThresholdTuner(settings, 1, clock=lambda: now[0])
    now[0] = 119.0
    assert not tuner.due_by_time()
    now[0] = 120.0
    assert tuner.due_by_time()
    tuner.retune(no_scores)
    assert not tuner.due_by_time()
    off = ThresholdTuner(DetectorSettings(retune_seconds=0.0), 1, clock=lambda: now[0])
    now[0] = 1e9
    assert not off.due_by_time()


def test_without_epsilon_the_quantile_fallback_is_tried_every_hundred_events() -> None:
    tuner = ThresholdTuner(DetectorSettings(contamination=0.1, retune_every=1000), 1)
    assert tuner.log_epsilon is None and tuner.threshold == -math.inf
    assert tuner.rows_until_due(np.zeros(1000, dtype=bool)) == UNSET_RETUNE_EVERY
    assert not tuner.retune(no_scores), "too few scores for a quantile yet"
    scores = np.arange(100, dtype=np.float64)
    tuner.remember_scores(scores)
    assert tuner.retune(no_scores)
    assert tuner.epsilon_source == "quantile"
    assert tuner.log_epsilon == quantile_log_threshold(scores, 0.1)


def test_the_fallback_never_replaces_a_given_epsilon_and_keeps_the_newest_scores() -> None:
    tuner = ThresholdTuner(DetectorSettings(log_epsilon=-7.0, contamination=0.1), 1)
    tuner.remember_scores(np.arange(RECENT_SCORES + 5, dtype=np.float64))
    assert not tuner.retune(no_scores) and tuner.log_epsilon == -7.0
    assert tuner.recent_count == RECENT_SCORES
    assert tuner.recent_scores.min() == 5.0


def test_labels_of_both_classes_tune_by_f1() -> None:
    settings = DetectorSettings(min_positive_labels=2, min_negative_labels=3)
    tuner = ThresholdTuner(settings, 1)
    X = np.array([[0.0], [1.0], [2.0], [3.0], [9.0], [10.0]])
    tuner.add_labelled(X, np.array([0, 0, 0, 0, 1, 1], dtype=np.int8), None)
    assert tuner.retune(lambda rows, keys: -rows[:, 0])
    assert tuner.epsilon_source == "f1" and tuner.log_epsilon == pytest.approx(-6.0)


@pytest.mark.parametrize(
    ("saved_given", "given", "expected"),
    [
        (-40.0, -40.0, (-3.5, "f1")),  # unchanged: the run resumes where it stopped
        (-40.0, -9.0, (-9.0, "initial")),  # changed this run: the user's value wins
        (None, -9.0, (-9.0, "initial")),  # given only this run: it wins
        (-40.0, None, (-3.5, "f1")),  # not given this run: the saved threshold resumes
    ],
)
def test_a_log_epsilon_given_this_run_wins_over_the_saved_one(
    saved_given: float | None, given: float | None, expected: tuple[float, str]
) -> None:
    before = ThresholdTuner(DetectorSettings(log_epsilon=saved_given), 1)
    saved = before.to_dict()
    saved.update(log_epsilon=-3.5, epsilon_source="f1")
    counters = {"events": 10, "retunes": 1, "labels_since_retune": 0, "next_retune_at": 1000}
    after = ThresholdTuner(DetectorSettings(log_epsilon=given), 1)
    after.restore(saved, counters)
    assert (after.log_epsilon, after.epsilon_source) == expected
