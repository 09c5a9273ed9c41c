"""Integer-valued features: variance floored at 1/12 until a value is not an integer."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from batch_runs import (
    CONFIGS,
    RESTORE_CONFIGS,
    check_batch_sizes,
    check_reference,
    check_restore,
    config_id,
    run,
    settings_for,
)
from numpy.typing import NDArray
from reference import reference_run

from stream_detect.detector import Detector
from stream_detect.errors import ModelError
from stream_detect.quantisation import UNIT_STEP_VARIANCE, IntegerFeatures
from stream_detect.settings import DetectorSettings

Array = NDArray[np.float64]
#: Where the count stops being an integer (a rate from then on).
RATE_FROM = 900


def error_counts(rows: int = 20_000, seed: int = 5) -> tuple[Array, int]:
    """A latency beside an error count that is 1 in 0.5% of events, and one burst of 6."""
    rng = np.random.default_rng(seed)
    latency = np.round(rng.normal(100.0, 10.0, rows), 3)
    errors = (rng.random(rows) < 0.005).astype(np.float64)
    burst = rows * 3 // 4
    errors[burst] = 6.0
    errors[burst - 1000] = 2.0
    return np.column_stack((latency, errors)), burst


def test_single_errors_do_not_alert_and_a_burst_does() -> None:
    X, burst = error_counts()
    detector = Detector(DetectorSettings(), ("latency", "errors"))
    out = run(detector, X, None, 1024)
    ones = np.flatnonzero(X[:, 1] == 1.0)
    assert ones.size > 80
    # The first error is a change of a feature constant so far: rare, so it alerts.
    assert out["alert"][ones[0]]
    # Before the floor every single error alerted (a 1 among 0.5% sits 14 σ out).
    assert not out["alert"][ones[1:]].any()
    # Two steps at once stand √48 ≈ 6.9 σ out, a burst of 6 about 21 σ.
    assert out["alert"][burst] and out["alert"][burst - 1000]
    assert detector.integers.floored.tolist() == [False, True]


def test_the_floor_comes_after_the_first_change_and_goes_with_the_first_fraction() -> None:
    ints = IntegerFeatures(3, variance_floor=1e-12)
    X = np.array([[1.0, 2.0, 0.5], [3.0, 2.0, 1.0], [4.0, 7.0, 2.0], [5.0, 7.5, 3.0]])
    # Row 1 changes the first feature (scored without the floor); row 2 gets it.
    assert ints.next_cut(X, 0, 4) == 2
    ints.observe(X, 0, 2)
    ints.enter(X[2])
    assert ints.floored.tolist() == [True, False, False]
    # Row 2 changes the second, so row 3 would get its floor, but row 3 is no integer.
    assert ints.next_cut(X, 2, 4) is None
    ints.observe(X, 2, 4)
    assert ints.integral.tolist() == [True, False, False]
    assert ints.floor.tolist() == [UNIT_STEP_VARIANCE, 1e-12, 1e-12]
    assert ints.scale_floor[0] == np.sqrt(UNIT_STEP_VARIANCE)
    assert ints.scale_floor[1:].tolist() == [0.0, 0.0]
    # The floors the batches met are those of one row at a time.
    one = IntegerFeatures(3, variance_floor=1e-12)
    floors = []
    for i in range(4):
        if one.next_cut(X, i, i + 1) is not None:
            one.enter(X[i])
        floors.append(one.floored.tolist())
        one.observe(X, i, i + 1)
    assert floors == [[False] * 3, [False] * 3, [True, False, False], [True, False, False]]


def mixed_stream(rows: int = 1400, seed: int = 2) -> tuple[Array, list[str]]:
    """A flag, a count that becomes a rate, a version with a deploy, and a continuous feature."""
    rng = np.random.default_rng(seed)
    flag = (rng.random(rows) < 0.02).astype(np.float64)
    count = rng.poisson(0.05, rows).astype(np.float64)
    count[RATE_FROM:] = np.round(count[RATE_FROM:] + rng.random(rows - RATE_FROM) * 0.01, 4)
    version = np.where(np.arange(rows) < 700, 3.0, 4.0)
    latency = rng.normal(50.0, 2.0, rows)
    X = np.column_stack((flag, count, version, latency))
    spikes = rng.choice(np.arange(300, rows), size=10, replace=False)
    X[spikes, 3] += 20.0
    X[spikes[:3], 1] = 7.0
    keys = ["a" if r < 0.6 else "b" for r in rng.random(rows)]
    return X, keys


FEATURES = ("flag", "count", "version", "latency")


def config_settings(config: tuple[Any, ...], **more: Any) -> DetectorSettings:
    return settings_for(config, accept_after=5, min_samples=30, **more)


@pytest.fixture(scope="module")
def stream() -> tuple[Array, list[str]]:
    return mixed_stream()


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_every_batch_size_equals_the_per_event_reference(
    stream: tuple[Array, list[str]], config: tuple[Any, ...]
) -> None:
    X, keys = stream
    keyed = config[1]
    settings = config_settings(config, log_epsilon=-20.0 if keyed else -25.0)
    ready_n = 5 if config[3] == "full" else 1
    for detector in check_reference(settings, FEATURES, X, keys if keyed else None, ready_n):
        assert detector.integers.floored.tolist() == [True, False, True, False]


def test_the_reference_sees_the_floor() -> None:
    """The flag's ones stand 3.5 σ out under the floor, about 7 σ without it."""
    X, _ = mixed_stream()
    settings = config_settings(("clip", False, None, "diagonal"), log_epsilon=-1e9)
    floored = reference_run(settings, X, np.full(X.shape[0], -1, np.int8))
    shifted = X + np.array([0.5, 0.0, 0.0, 0.0])  # the same flag, no longer integers
    unfloored = reference_run(settings, shifted, np.full(X.shape[0], -1, np.int8))
    ones = np.flatnonzero(X[:, 0] == 1.0)
    late = ones[ones > 500]
    assert np.all(floored.log_p[late] > unfloored.log_p[late] + 5.0)


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_under_the_default_tail_every_batch_size_scores_as_one_event_at_a_time(
    stream: tuple[Array, list[str]], config: tuple[Any, ...]
) -> None:
    X, keys = stream
    keyed = config[1]
    settings = config_settings(config)
    check_batch_sizes(
        settings, FEATURES, X, keys if keyed else None, 5 if config[3] == "full" else 1
    )


def test_the_low_rank_full_model_equals_the_reference() -> None:
    rng = np.random.default_rng(4)
    rows, d = 700, 18
    X = rng.normal(size=(rows, d)) @ (np.eye(d) + 0.2 * rng.normal(size=(d, d)))
    X[:, 0] = (rng.random(rows) < 0.03).astype(np.float64)
    X[:, 1] = rng.poisson(0.1, rows)
    X[450:, 1] += 0.25
    features = tuple(f"f{j}" for j in range(d))
    settings = config_settings(("clip", False, None, "full"), log_epsilon=-60.0)
    check_reference(settings, features, X, None, 2 * d)


@pytest.mark.parametrize("split", [RATE_FROM - 3, RATE_FROM + 5])
@pytest.mark.parametrize("config", RESTORE_CONFIGS, ids=config_id)
def test_a_checkpoint_restored_mid_stream_continues_as_an_uninterrupted_run(
    stream: tuple[Array, list[str]], config: tuple[Any, ...], split: int
) -> None:
    X, keys = stream
    # The integer features' state is part of the detector's state compared there.
    check_restore(config_settings(config), FEATURES, X, keys if config[1] else None, split)


def test_a_checkpoint_from_before_the_rule_restores_with_the_floor_off() -> None:
    X, _ = error_counts(rows=3000)
    settings = DetectorSettings()
    detector = Detector(settings, ("latency", "errors"))
    run(detector, X, None, 512)
    state = orjson.loads(orjson.dumps(detector.to_dict()))
    assert state["integer_features"]["floored"] == [False, True]
    del state["integer_features"]
    restored = Detector(settings, ("latency", "errors"))
    restored.restore(state)
    assert restored.integers.floored.tolist() == [False, False]
    state["integer_features"] = {
        "integral": [True],
        "varied": [True],
        "first": [0.0],
        "floored": [True],
    }
    with pytest.raises(ModelError, match="detector state"):
        Detector(settings, ("latency", "errors")).restore(state)


def test_a_deploy_of_an_integer_version_alerts_once_and_is_let_in_by_the_floor() -> None:
    rng = np.random.default_rng(1)
    version = np.concatenate((np.full(5000, 3.0), np.full(400, 4.0)))
    latency = np.round(rng.lognormal(3.0, 0.2, version.size), 4)
    X = np.column_stack((version, latency))
    detector = Detector(DetectorSettings(), ("version", "latency"))
    after = np.flatnonzero(run(detector, X, None, 1000)["alert"][5000:])
    # The change is reported at once; the rows after it stand √12 σ out on the version,
    # where without the floor each alerted until the model learned it (about n/25 rows).
    assert after[0] == 0
    assert after.size <= 3
    assert detector.integers.floored.tolist() == [True, False]
