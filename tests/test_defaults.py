"""The defaults on unlabelled streams: a calibrated threshold, learning that never goes deaf.

Every test here runs ``DetectorSettings()`` as a user gets it (no labels, no
log epsilon): alerts compare the log tail probability with the fixed
``log_tail_epsilon``, an alert that starts a run is learned clipped at
``clip_sigma``, and a run of ``accept_after`` alerts is the new normal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from stream_detect.detector import Detector
from stream_detect.settings import DEFAULT_ACCEPT_AFTER, DetectorSettings
from tests.test_reference_data import PUBLISHED_AUC, load_odds, roc_auc

Array = NDArray[np.float64]


def alerts_of(X: Array, settings: DetectorSettings | None = None, batch: int = 4096) -> Array:
    """Run a fresh detector with ``settings`` (default: the defaults); the alert flags."""
    names = tuple(f"f{j}" for j in range(X.shape[1]))
    detector = Detector(settings or DetectorSettings(), names)
    parts = [detector.process(X[i : i + batch]).alert for i in range(0, X.shape[0], batch)]
    return np.concatenate(parts)


def test_pure_gaussian_noise_alerts_on_at_most_a_thousandth_of_events() -> None:
    X = np.random.default_rng(1).normal(size=(100_000, 3))
    alerts = alerts_of(X)
    # The default is one false alert per million; 0.1% is the promise, with room.
    assert alerts.mean() <= 0.001
    assert alerts.sum() <= 10


def test_every_spike_after_an_incident_is_still_seen() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(50.0, 3.0, size=20_000)
    x[5000:5150] = 50.0 + 10 * 3.0  # an incident: 150 events at +10 sigma
    spikes = [3000, 8000, 12000, 16000]
    x[spikes] = 50.0 + 7 * 3.0
    alerts = alerts_of(x[:, None])
    assert alerts[spikes].all(), "no spike may be missed, before or after the incident"
    assert alerts[5000:5150].all(), "the incident alerts throughout (shorter than accept_after)"
    quiet = np.ones(x.size, dtype=bool)
    quiet[spikes] = False
    quiet[5000:5150] = False
    assert alerts[quiet].sum() <= 2


def test_a_15_sigma_event_just_past_warm_up_alerts() -> None:
    x = np.random.default_rng(3).normal(size=200)
    row = DetectorSettings().min_samples + 1
    x[row] = 15.0
    alerts = alerts_of(x[:, None])
    assert alerts[row] and alerts.sum() == 1


def test_one_wild_value_does_not_blind_the_model() -> None:
    x = np.random.default_rng(4).normal(size=5000)
    x[100] = 1e6
    x[3000] = 8.0
    alerts = alerts_of(x[:, None])
    assert alerts[100] and alerts[3000], "the 8 sigma event after the 1e6 must still alert"
    assert alerts.sum() == 2


def test_a_level_shift_stops_alerting_within_the_acceptance_time() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=8000)
    x[3000:] += 10.0  # a new normal, for good
    alerts = alerts_of(x[:, None])
    after = np.flatnonzero(alerts[3000:])
    assert after.min() == 0, "the shift is reported at once"
    # Every event alerts until accept_after of them are accepted; then silence.
    assert after.size >= DEFAULT_ACCEPT_AFTER - 1
    assert after.max() < DEFAULT_ACCEPT_AFTER + 50
    assert not alerts[3000 + DEFAULT_ACCEPT_AFTER + 50 :].any()


def test_a_stuck_sensor_keeps_alerting_for_ten_minutes() -> None:
    # 1 Hz, four sensors, an hour of normal running, then one sensor stuck 8 sigma off
    # for ten minutes (600 rows, as many as accept_after), then normal again.
    rng = np.random.default_rng(6)
    X = 50.0 + 3.0 * rng.normal(size=(3600 + 600 + 1800, 4))
    X[3600:4200, 1] = 50.0 + 8 * 3.0
    alerts = alerts_of(X)
    assert alerts[3600:4200].mean() >= 0.9
    assert alerts[:3600].sum() <= 1 and alerts[4200:].sum() <= 1


def test_a_constant_feature_that_changes_is_rare_not_impossible() -> None:
    rng = np.random.default_rng(7)
    X = np.column_stack([rng.normal(size=600), np.where(np.arange(600) < 400, 3.0, 4.0)])
    names = ("varies", "was_constant")
    out = Detector(DetectorSettings(), names).process(X)
    # A floored Gaussian calls 4.0 after four hundred 3.0s impossible (log p near -1e14).
    assert np.all(np.isfinite(out.log_tail)) and out.log_tail[400] > -1e3
    assert out.alert[400]
    assert out.log_tail[400] < out.log_epsilon[400]


@pytest.mark.parametrize("direction", ["high", "low", "both"])
def test_a_deviation_the_other_way_counts_for_nothing(direction: str) -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(2000, 2))
    X[1000, 0] = 12.0
    X[1500, 0] = -12.0
    settings = DetectorSettings(direction={"f0": direction})
    names = ("f0", "f1")
    out = Detector(settings, names).process(X)
    expected = {"high": [1000], "low": [1500], "both": [1000, 1500]}[direction]
    assert np.flatnonzero(out.alert).tolist() == expected
    ignored = sorted({1000, 1500} - set(expected))
    # The ignored value scores as the mean: only the other feature is left in its tail.
    for row in ignored:
        alone = Detector(DetectorSettings(), ("f1",)).process(X[:, 1:]).log_tail[row]
        assert out.log_tail[row] > -5.0 and alone > -5.0


@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_the_defaults_give_the_same_scores_for_any_batch_size(batch: int) -> None:
    rng = np.random.default_rng(9)
    X = rng.normal(size=(1500, 2))
    X[[300, 301, 302, 900]] += 9.0  # alerts, a short run of them: clipped and pending rows
    X[1000:] += 7.0  # a run long enough to be accepted
    settings = DetectorSettings(accept_after=100)
    names = ("a", "b")
    whole = Detector(settings, names).process(X)
    detector = Detector(settings, names)
    parts = [detector.process(X[i : i + batch]) for i in range(0, X.shape[0], batch)]
    tails = np.concatenate([p.log_tail for p in parts])
    alerts = np.concatenate([p.alert for p in parts])
    np.testing.assert_allclose(tails, whole.log_tail, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(alerts, whole.alert)
    assert whole.alert[[300, 900, 1000]].all() and detector.relearned > 0


@pytest.mark.parametrize("name", sorted(PUBLISHED_AUC))
def test_odds_stream_auc_of_the_defaults_is_near_the_batch_gaussian(
    shared_data: Path, name: str
) -> None:
    """Shuffled (seed 7), streamed with the defaults, ranked by the log tail."""
    X, y = load_odds(shared_data, name)
    order = np.random.default_rng(7).permutation(len(X))
    X, y = X[order], y[order]
    names = tuple(f"f{j}" for j in range(X.shape[1]))
    out = Detector(DetectorSettings(), names).process(X)
    assert np.all(np.isfinite(out.log_tail[1:]))
    assert roc_auc(y, -out.log_tail) >= PUBLISHED_AUC[name] - 0.01
