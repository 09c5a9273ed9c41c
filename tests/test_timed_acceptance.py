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
    # Accepted after two rows: the model's 2000 rows of the old level are discounted
    # to min_samples before the two are learned, so the new level is normal at once
    # (learned on top of all 2000, it alerted 68 times over six hours), where counting
    # 600 events would keep it alerting for two days.
    np.testing.assert_array_equal(np.flatnonzero(alerts[2000:]), [0, 1])


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


# ---------------------------------------------------------------- one model per key


def host_stream(hosts: int, seconds: int, seed: int) -> tuple[np.ndarray, list[str], list[float]]:
    """``hosts`` sensors N(50, 3) at 1 Hz each, interleaved; h1 sticks 8 sigma off at 1000 s."""
    rng = np.random.default_rng(seed)
    X = 50.0 + 3.0 * rng.normal(size=(seconds * hosts, 1))
    keys = [f"h{i % hosts}" for i in range(seconds * hosts)]
    stamps = [i // hosts + (i % hosts) / hosts for i in range(seconds * hosts)]
    stuck = [i for i in range(1000 * hosts, seconds * hosts) if keys[i] == "h1"]
    X[stuck] = 50.0 + 8 * 3.0
    return X, keys, stamps


def keyed_alerts(
    settings: DetectorSettings, X: np.ndarray, keys: list[str], stamps: list[float], batch: int
) -> tuple[np.ndarray, Detector]:
    detector = Detector(settings, ("f0",))
    parts = [
        detector.process(
            X[i : i + batch], keys=keys[i : i + batch], timestamps=stamps[i : i + batch]
        )
        for i in range(0, len(X), batch)
    ]
    return np.concatenate([part.alert for part in parts]), detector


KEYED = DetectorSettings(
    timestamp_field="t", key_field="host", accept_after_seconds=60.0, retune_seconds=0.0
)


@pytest.mark.parametrize("hosts", [2, 10])
def test_a_key_accepts_a_deviation_after_the_duration_of_its_own_events(hosts: int) -> None:
    # Ten hosts at 1 Hz make a 10 Hz stream; a host's deviation is counted in the host's
    # own events, so 60 s is 60 of them, not the 600 events the stream carries meanwhile.
    X, keys, stamps = host_stream(hosts, 1400, seed=11)
    alerts, detector = keyed_alerts(KEYED, X, keys, stamps, batch=4096)
    assert detector.tuner.accept_after == 60
    stuck = np.array([key == "h1" for key in keys]) & (np.arange(len(X)) >= 1000 * hosts)
    assert 55 <= alerts[stuck].sum() <= 65, "about 60 s of alerts, then the new normal"
    assert alerts[~stuck].sum() <= 1


@pytest.mark.parametrize("batch", [1, 7, 333])
def test_keyed_timed_acceptance_is_the_same_for_any_batch_size(batch: int) -> None:
    # max_keys 3 of 4 hosts: keys are evicted and come back, and the count of keys held
    # at each re-read of the rate must be the one the event-by-event loop has.
    X, keys, stamps = host_stream(4, 400, seed=12)
    X[[40, 41, 900]] += 30.0
    settings = DetectorSettings(
        timestamp_field="t",
        key_field="host",
        accept_after_seconds=20.0,
        max_keys=3,
        min_samples=5,
        retune_seconds=0.0,
    )
    rng = np.random.default_rng(13)
    order = rng.permutation(len(X))[:1200]
    order.sort()
    X, keys, stamps = X[order], [keys[i] for i in order], [stamps[i] for i in order]
    whole, first = keyed_alerts(settings, X, keys, stamps, batch=len(X))
    split, second = keyed_alerts(settings, X, keys, stamps, batch=batch)
    np.testing.assert_array_equal(split, whole)
    assert second.tuner.accept_after == first.tuner.accept_after
    assert second.evicted == first.evicted > 0
