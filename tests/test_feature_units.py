"""A feature's scale does not matter: tiny features are scored in units where they have size one."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from reference import reference_run

from stream_detect.detections import Detections
from stream_detect.detector import Detector
from stream_detect.errors import ModelError
from stream_detect.feature_units import FeatureUnits
from stream_detect.settings import DetectorSettings

FEATURES = ("tiny", "other")


def stream(seed: int = 1, rows: int = 3000) -> np.ndarray:
    """A feature 1 + N(0, 0.1) with spikes of 10 (rows 1000, 2000), beside a N(0, 1) one."""
    rng = np.random.default_rng(seed)
    base = 1.0 + 0.1 * rng.normal(size=rows)
    base[0] = 1.5  # in [1, 2): the unit a rescaled feature is brought to
    base[[1000, 2000][: rows // 1500 + 1]] = 10.0
    return np.column_stack([base, rng.normal(size=rows)])


def run(
    X: np.ndarray,
    settings: DetectorSettings,
    batch: int | None = None,
    labels: np.ndarray | None = None,
    keys: list[str] | None = None,
) -> tuple[list[Detections], Detector]:
    detector = Detector(settings, FEATURES)
    step = batch or X.shape[0]
    parts = [
        detector.process(
            X[i : i + step],
            None if labels is None else labels[i : i + step],
            None if keys is None else keys[i : i + step],
        )
        for i in range(0, X.shape[0], step)
    ]
    return parts, detector


def alerts(parts: list[Detections]) -> list[int]:
    return np.flatnonzero(np.concatenate([part.alert for part in parts])).tolist()


SETTINGS = {
    "prior": DetectorSettings(),
    "no prior": DetectorSettings(prior=False),
    "full": DetectorSettings(model="full"),
}
# Every power of ten from the smallest normal doubles up to where a spike of 10x stays
# within the values a stream admits (1e150).
SCALES = [-307, -300, -250, -200, -154, -150, -100, -50, -20, -12, -8, -6, -5, -4, -3, -2, -1]
SCALES += [1, 2, 3, 6, 10, 50, 100, 140]


@pytest.mark.parametrize("name", sorted(SETTINGS))
@pytest.mark.parametrize("power", SCALES)
def test_a_feature_scaled_by_a_power_of_ten_raises_the_same_alerts(name: str, power: int) -> None:
    X = stream()
    expected = alerts(run(X, SETTINGS[name])[0])
    assert expected == [1000, 2000]
    X[:, 0] *= 10.0**power
    assert alerts(run(X, SETTINGS[name])[0]) == expected


def test_a_keyed_tiny_feature_raises_the_same_alerts() -> None:
    X = stream(rows=6000)
    keys = [f"k{i % 2}" for i in range(X.shape[0])]
    settings = DetectorSettings(key_field="k")
    expected = alerts(run(X, settings, keys=keys)[0])
    X[:, 0] *= 1e-300
    assert alerts(run(X, settings, keys=keys)[0]) == expected != []


def test_log_p_is_the_density_in_the_events_own_units() -> None:
    # Scaled by 2**-40 the feature is brought back to exactly the rows of the unscaled run,
    # so only the Jacobian of the scaling differs: 40 log 2 more density per event.
    X = stream()
    settings = DetectorSettings(log_epsilon=-10.0)
    [plain], _ = run(X, settings)
    X[:, 0] = np.ldexp(X[:, 0], -40)
    [tiny], _ = run(X, settings)
    np.testing.assert_allclose(tiny.log_p, plain.log_p + 40 * math.log(2.0), rtol=1e-12)
    np.testing.assert_array_equal(tiny.alert, plain.alert)
    np.testing.assert_array_equal(tiny.log_epsilon, plain.log_epsilon)
    np.testing.assert_array_equal(tiny.distance_sq, plain.distance_sq)


@pytest.mark.parametrize("batch", [1, 7, 333])
def test_a_tiny_feature_that_starts_at_zero_gives_the_same_result_in_any_batch(batch: int) -> None:
    X = stream(rows=1200)
    X[:, 0] *= 1e-200
    X[:150, 0] = 0.0
    labels = np.full(X.shape[0], -1, dtype=np.int8)
    labels[::20] = 0
    labels[[1000, 1100]] = 1
    X[1100, 0] *= 10.0
    # Labelled anomalies before the tiny feature's first value: log ε is chosen then too.
    labels[[30, 70]] = 1
    X[[30, 70], 1] = 8.0
    # log ε on log p(x) is re-tuned on labels: the validation rows are scored in the
    # units in force at each re-tune, whatever the batching.
    settings = DetectorSettings(
        log_epsilon=-10.0, retune_every=50, min_positive_labels=1, min_negative_labels=2
    )
    whole, first = run(X, settings, labels=labels)
    split, second = run(X, settings, batch=batch, labels=labels)
    # Micro-batches score to ~1e-9 relative of the event-by-event loop (prefix sums).
    for field in ("log_p", "score", "log_epsilon", "distance_sq"):
        joined = np.concatenate([getattr(part, field) for part in split])
        np.testing.assert_allclose(joined, getattr(whole[0], field), rtol=1e-9, err_msg=field)
    np.testing.assert_array_equal(alerts(split), alerts(whole))
    assert second.log_epsilon == pytest.approx(first.log_epsilon, rel=1e-9)
    assert first.epsilon_source == "f1" and 1100 in alerts(whole)


def test_a_checkpoint_carries_the_units() -> None:
    X = stream()
    X[:, 0] *= 1e-300
    [whole], _ = run(X, DetectorSettings())
    first = Detector(DetectorSettings(), FEATURES)
    head = first.process(X[:1500]).alert
    state = json.loads(json.dumps(first.to_dict()))
    assert state["feature_units"]["exponents"][0] > 900
    second = Detector(DetectorSettings(), FEATURES)
    second.restore(state)
    tail = second.process(X[1500:]).alert
    np.testing.assert_array_equal(np.concatenate([head, tail]), whole.alert)


def test_a_checkpoint_of_ordinary_features_is_written_as_before() -> None:
    first = Detector(DetectorSettings(), FEATURES)
    first.process(stream()[:100])
    assert "feature_units" not in first.to_dict()


def test_feature_units_of_the_wrong_shape_are_refused() -> None:
    X = stream()
    X[:, 0] *= 1e-300
    first = Detector(DetectorSettings(), FEATURES)
    first.process(X[:100])
    state = first.to_dict()
    state["feature_units"]["exponents"] = [5000, 0]
    with pytest.raises(ModelError, match="detector state"):
        Detector(DetectorSettings(), FEATURES).restore(state)


def test_a_feature_that_grows_by_more_than_the_float_range_still_alerts() -> None:
    X = stream()
    X[:, 0] *= 1e-300
    X[2500, 0] = 1e100  # 1e400 times its first value: taken at 1e150 once scaled
    parts, _ = run(X, DetectorSettings())
    assert alerts(parts) == [1000, 2000, 2500]
    assert np.isfinite(parts[0].log_tail[2500])


def test_ordinary_rows_pass_unchanged() -> None:
    units = FeatureUnits(2)
    X = np.array([[0.5, -3.0], [1e-3, 7.0]])
    scaled, changes = units.apply(X)
    assert scaled is X and changes == [] and units.identity


@pytest.mark.parametrize("keyed", [False, True])
@pytest.mark.parametrize("batch", [1, 64, 1000])
def test_the_per_event_reference_scores_tiny_features_in_their_units(
    keyed: bool, batch: int
) -> None:
    # A feature of size 0.01 whose first value is 6.5e-4 is rescaled by 2**11: the
    # variance floor then weighs less, most of all while a key has learned one row.
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 2)) * 0.01
    X[0, 1] = 6.5e-4
    X[150] += 0.2
    keys = [f"k{i % 2}" for i in range(300)]
    settings = DetectorSettings(
        key_field="k" if keyed else None, log_epsilon=-6.0 if keyed else -8.0, min_samples=5
    )
    expected = reference_run(settings, X, np.full(300, -1, np.int8), keys if keyed else None)
    detector = Detector(settings, ["x", "y"])
    parts = [
        detector.process(X[i : i + batch], keys=keys[i : i + batch] if keyed else None)
        for i in range(0, 300, batch)
    ]
    assert detector.units.exponents.tolist() == [0, 11]
    np.testing.assert_array_equal(np.concatenate([p.alert for p in parts]), expected.alert)
    known = expected.n > 0
    for name in ("score", "log_p"):
        got = np.concatenate([getattr(p, name) for p in parts])[known]
        np.testing.assert_allclose(got, getattr(expected, name)[known], rtol=1e-9)
