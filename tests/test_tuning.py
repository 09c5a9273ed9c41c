"""The threshold schedule: re-tunes by events, labels and the clock, and the no-label rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stream_detect.settings import DEFAULT_LOG_TAIL_EPSILON, DetectorSettings
from stream_detect.tuning import UNSET_RETUNE_EVERY, ThresholdTuner


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


def test_without_epsilon_a_gaussian_model_holds_the_fixed_tail_default() -> None:
    # The rule: no ε given means log_tail_epsilon on the log tail, from the first event,
    # and re-tunes without labels never move it (no scores of unlabelled events are kept).
    tuner = ThresholdTuner(DetectorSettings(retune_every=1000), 1)
    assert tuner.log_epsilon == DEFAULT_LOG_TAIL_EPSILON == math.log(1e-6)
    assert tuner.epsilon_source == "default"
    assert tuner.rows_until_due(np.zeros(5000, dtype=bool)) == 1000
    assert not tuner.retune(no_scores)
    assert (tuner.log_epsilon, tuner.epsilon_source) == (DEFAULT_LOG_TAIL_EPSILON, "default")
    assert "recent_scores" not in tuner.to_dict()


def test_a_model_without_a_tail_has_no_epsilon_until_labels_set_one() -> None:
    tuner = ThresholdTuner(DetectorSettings(model="river:HalfSpaceTrees", retune_every=1000), 1)
    assert tuner.log_epsilon is None and tuner.threshold == -math.inf
    assert tuner.rows_until_due(np.zeros(1000, dtype=bool)) == UNSET_RETUNE_EVERY
    assert not tuner.retune(no_scores) and tuner.epsilon_source == "unset"


@pytest.mark.parametrize(("every", "tried_every"), [(1000, 100), (50, 50), (0, 100)])
def test_while_no_epsilon_is_set_a_retune_is_tried_every_100_events_or_n_if_fewer(
    every: int, tried_every: int
) -> None:
    # As the README's run flag table says: even --retune-every 0 tries every 100 events.
    assert UNSET_RETUNE_EVERY == 100
    settings = DetectorSettings(model="river:HalfSpaceTrees", retune_every=every)
    tuner = ThresholdTuner(settings, 1)
    for _ in range(3):
        assert tuner.rows_until_due(np.zeros(5000, dtype=bool)) == tried_every
        assert tuner.advance(tried_every, 0)
        assert not tuner.retune(no_scores) and tuner.log_epsilon is None


def test_a_given_epsilon_is_kept_without_labels() -> None:
    tuner = ThresholdTuner(DetectorSettings(log_epsilon=-7.0), 1)
    assert not tuner.retune(no_scores)
    assert (tuner.log_epsilon, tuner.epsilon_source) == (-7.0, "initial")


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
