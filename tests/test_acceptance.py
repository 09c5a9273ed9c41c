"""An accepted deviation discounts its key's history before its pending rows are learned."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from batch_runs import (
    CONFIGS,
    RESTORE_CONFIGS,
    check_batch_sizes,
    check_reference,
    check_restore,
    config_id,
    settings_for,
)
from numpy.typing import NDArray

from stream_detect.acceptance import history_kept
from stream_detect.detector import Detector
from stream_detect.settings import DetectorSettings

Array = NDArray[np.float64]
FEATURES = ("x", "y", "version")
#: Where the version changes, and where x moves 8 σ for good.
DEPLOY, SHIFT = 500, 750


def deploy_stream(before: int = 5000, after: int = 400, seed: int = 1) -> Array:
    """A constant setting that changes once, beside a log-normal latency.

    Not an integer: an integer feature's first change is let in by its variance
    floor, not by acceptance (``test_quantisation.py``).
    """
    rng = np.random.default_rng(seed)
    version = np.concatenate((np.full(before, 0.25), np.full(after, 0.75)))
    latency = np.round(rng.lognormal(3.0, 0.2, version.size), 4)
    return np.column_stack((version, latency))


def test_history_kept_is_the_deviation_or_min_samples_and_never_grows() -> None:
    assert history_kept(5000.0, 2, 50) == 50 / 5000
    assert history_kept(5000.0, 600, 50) == 600 / 5000
    assert history_kept(30.0, 2, 50) == 1.0


def test_a_deploy_in_five_minute_metrics_stops_alerting_soon_after_its_acceptance() -> None:
    X = deploy_stream()
    stamps = [300.0 * i for i in range(X.shape[0])]
    settings = DetectorSettings(timestamp_field="t", retune_seconds=0.0)
    detector = Detector(settings, ("version", "latency"))
    alerts = np.concatenate(
        [
            detector.process(X[i : i + 1000], timestamps=stamps[i : i + 1000]).alert
            for i in range(0, X.shape[0], 1000)
        ]
    )
    assert detector.tuner.accept_after == 2  # 600 s of 5-minute rows
    after = np.flatnonzero(alerts[5000:])
    assert after[:2].tolist() == [0, 1], "the deploy is reported at once"
    # Learned on top of 5000 rows of 0.25, 0.75 alerted about 200 times (n/25); discounted
    # to min_samples first, the history lets it in
    # at once (measured: the two alerts that accepted it, the README's numbers).
    assert after.size <= 5 and after.max() < 10


def shifted_stream(rows: int = 1000, seed: int = 3) -> tuple[Array, list[str]]:
    """Two keys of correlated noise: a near-constant version that changes, then a level shift."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 3)) @ np.array([[1.0, 0.0, 0.0], [0.6, 2.0, 0.0], [0, 0, 0.001]])
    X += [10.0, -5.0, 3.0]
    X[DEPLOY:, 2] += 1.0
    X[SHIFT:, 0] += 8.0
    spikes = rng.choice(np.arange(100, rows), size=12, replace=False)
    X[spikes, 1] += 14.0
    keys = ["a" if r < 0.6 else "b" for r in rng.random(rows)]
    return X, keys


def config_settings(config: tuple[Any, ...], **more: Any) -> DetectorSettings:
    return settings_for(config, accept_after=3, min_samples=20, **more)


@pytest.fixture(scope="module")
def stream() -> tuple[Array, list[str]]:
    return shifted_stream()


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_every_batch_size_equals_the_per_event_reference(
    stream: tuple[Array, list[str]], config: tuple[Any, ...]
) -> None:
    X, keys = stream
    keyed = config[1]
    settings = config_settings(config, log_epsilon=-9.0 if keyed else -12.0)
    detectors = check_reference(
        settings, FEATURES, X, keys if keyed else None, 4 if config[3] == "full" else 1
    )
    # Both changes are accepted (three alerts each), for each key.
    assert all(detector.relearned > 0 for detector in detectors)


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_under_the_default_tail_every_batch_size_scores_as_one_event_at_a_time(
    stream: tuple[Array, list[str]], config: tuple[Any, ...]
) -> None:
    X, keys = stream
    keyed = config[1]
    settings = config_settings(config)
    # A full model's first rows have near-singular covariances (warm-up covers them).
    one = check_batch_sizes(
        settings, FEATURES, X, keys if keyed else None, 4 if config[3] == "full" else 1
    )
    # Each change alerts until its acceptance (three alerts per key) and hardly after.
    assert 3 <= one["alert"][DEPLOY : DEPLOY + 100].sum() <= 12
    assert 3 <= one["alert"][SHIFT : SHIFT + 100].sum() <= 12


@pytest.mark.parametrize("split", [DEPLOY + 1, DEPLOY + 9, SHIFT + 2, SHIFT + 9])
@pytest.mark.parametrize("config", RESTORE_CONFIGS, ids=config_id)
def test_a_checkpoint_restored_mid_stream_continues_as_an_uninterrupted_run(
    stream: tuple[Array, list[str]], config: tuple[Any, ...], split: int
) -> None:
    X, keys = stream
    settings = config_settings(config)
    interrupted = check_restore(settings, FEATURES, X, keys if config[1] else None, split)
    # Split while a deviation is pending, or after its acceptance discounted the history.
    pending = any(state.pending for state in interrupted.models.values())
    assert pending or interrupted.relearned > 0
