"""With timestamps, a persistent deviation is accepted after a duration of event time."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stream_detect.detector import Detector
from stream_detect.settings import DEFAULT_ACCEPT_AFTER_SECONDS, DetectorSettings

TIMED = DetectorSettings(timestamp_field="t", retune_seconds=0.0)


def alerts_of(
    X: np.ndarray, seconds_apart: float, settings: DetectorSettings = TIMED, batch: int = 1000
) -> tuple[np.ndarray, Detector]:
    stamps = [float(seconds_apart * i) for i in range(len(X))]
    detector = Detector(settings, tuple(f"f{j}" for j in range(X.shape[1])))
    parts = [
        detector.process(X[i : i + batch], timestamps=stamps[i : i + batch]).alert
        for i in range(0, len(X), batch)
    ]
    return np.concatenate(parts), detector


def test_five_minute_metrics_accept_a_level_shift_after_ten_minutes() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=3000)
    x[2000:] += 10.0
    alerts, detector = alerts_of(x[:, None], seconds_apart=300.0)
    assert detector.tuner.accept_after == 2  # 600 s of 5-minute rows
    assert alerts[2000] and alerts[2000:2002].all()
    # Accepted after two rows, the shift is learned as it comes: the model's 2000 rows of
    # the old level take it about 70 rows (under six hours) to stop finding it unusual,
    # where counting 600 events would keep it alerting for two days.
    assert alerts[2000:].sum() < 100 and not alerts[2100:].any()


def test_a_stuck_sensor_at_1_hz_keeps_alerting_for_ten_minutes() -> None:
    rng = np.random.default_rng(6)
    X = 50.0 + 3.0 * rng.normal(size=(3600 + 600 + 1800, 4))
    X[3600:4200, 1] = 50.0 + 8 * 3.0
    alerts, detector = alerts_of(X, seconds_apart=1.0)
    assert detector.tuner.accept_after == DEFAULT_ACCEPT_AFTER_SECONDS
    assert alerts[3600:4200].mean() >= 0.9
    assert alerts[:3600].sum() <= 1 and alerts[4200:].sum() <= 1


def test_without_a_duration_the_acceptance_counts_events() -> None:
    x = np.random.default_rng(7).normal(size=2000)
    x[1000:] += 10.0
    settings = DetectorSettings(timestamp_field="t", accept_after_seconds=0.0, accept_after=100)
    alerts, detector = alerts_of(x[:, None], seconds_apart=300.0, settings=settings)
    assert detector.tuner.accept_after == 100
    assert alerts[1000:1099].all() and not alerts[1200:].any()


@pytest.mark.parametrize("batch", [1, 7, 333])
def test_timed_acceptance_is_the_same_for_any_batch_size(batch: int) -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(1200, 2))
    X[[300, 301, 700]] += 9.0
    X[900:] += 7.0
    whole, _ = alerts_of(X, seconds_apart=60.0, batch=1200)
    split, detector = alerts_of(X, seconds_apart=60.0, batch=batch)
    np.testing.assert_array_equal(split, whole)
    assert detector.tuner.accept_after == 10 and detector.relearned > 0


def test_a_checkpoint_carries_the_measured_rate() -> None:
    rng = np.random.default_rng(9)
    X = rng.normal(size=(3000, 1))
    X[2500:] += 10.0
    stamps = [float(300 * i) for i in range(3000)]
    whole, _ = alerts_of(X, seconds_apart=300.0, batch=3000)
    first = Detector(TIMED, ("f0",))
    head = first.process(X[:2400], timestamps=stamps[:2400]).alert
    second = Detector(TIMED, ("f0",))
    second.restore(json.loads(json.dumps(first.to_dict())))
    assert second.tuner.accept_after == 2
    tail = second.process(X[2400:], timestamps=stamps[2400:]).alert
    np.testing.assert_array_equal(np.concatenate([head, tail]), whole)
