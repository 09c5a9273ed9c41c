"""Inputs and settings that must not corrupt a detector, and the fixes that guard them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from stream_detect.assembly import run_stream
from stream_detect.detector import MAX_ABS_VALUE, Detector
from stream_detect.errors import ConfigError
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.stats import decay_factor
from stream_detect.testing import ListSink, ListSource


def unlabelled(rows: int) -> np.ndarray:
    return np.full(rows, -1, dtype=np.int8)


def test_transform_names_why_each_bad_row_is_unusable() -> None:
    detector = Detector(DetectorSettings(transforms={"b": "log"}), ("a", "b"))
    X = np.array([[1.0, 1.0], [np.nan, 1.0], [1e200, 1.0], [1.0, -1.0], [1.0, 2.0]])
    _, reasons = detector.transform(X)
    assert reasons[0] is None and reasons[4] is None
    assert reasons[1] == "feature 'a' = nan is not a finite number"
    assert "1e+200" in str(reasons[2]) and "too large" in str(reasons[2])
    assert reasons[3] == "feature 'b' = -1.0 is outside the domain of transform log"


def test_a_huge_value_is_a_dead_letter_and_the_model_keeps_alerting() -> None:
    rng = np.random.default_rng(3)
    events = [{"x": float(v)} for v in rng.normal(size=400)]
    events[10] = {"x": 1e200}
    events[300] = {"x": 50.0}
    sink, dead = ListSink(), ListSink()
    summary = run_stream(
        RunSettings(),
        DetectorSettings(log_epsilon=-12.0, min_samples=20),
        source=ListSource(events),
        sink=sink,
        dead_letter=dead,
    )
    assert summary.bad_records == 1 and dead.records[0]["position"]["line"] == 11
    assert [r["x"] for r in sink.records] == [50.0]


@pytest.mark.parametrize(
    ("X", "labels", "message"),
    [
        (np.array([[1.0], [np.inf]]), unlabelled(2), "finite"),
        (np.array([[1.0], [2 * MAX_ABS_VALUE]]), unlabelled(2), "finite"),
        (np.array([[1.0], [2.0]]), np.array([-1, 2], dtype=np.int8), "labels"),
        (np.array([[1.0, 2.0]]), unlabelled(1), "features"),
    ],
)
def test_a_bad_batch_is_refused_before_anything_is_learned(
    X: np.ndarray, labels: np.ndarray, message: str
) -> None:
    detector = Detector(DetectorSettings(), ("a",))
    with pytest.raises(ValueError, match=message):
        detector.process(X, labels)
    assert detector.events == 0 and not detector.models


def test_a_keyed_detector_needs_keys() -> None:
    detector = Detector(DetectorSettings(key_field="host"), ("a",))
    with pytest.raises(ValueError, match="key"):
        detector.process(np.zeros((2, 1)), unlabelled(2))


def test_validation_rows_of_a_model_in_warm_up_do_not_steer_epsilon() -> None:
    settings = DetectorSettings(key_field="host", min_samples=20, retune_every=0)
    detector = Detector(settings, ("a",))
    rng = np.random.default_rng(1)
    detector.process(rng.normal(size=(50, 1)), unlabelled(50), ["old"] * 50)
    detector.process(np.array([[0.3]]), unlabelled(1), ["new"])
    scores = detector.score_rows(np.array([[0.0], [0.0]]), ["old", "new"])
    assert np.isfinite(scores[0]) and np.isnan(scores[1])


def test_a_river_model_per_key_scores_and_alerts() -> None:
    settings = DetectorSettings(
        model="river:HalfSpaceTrees", key_field="host", log_epsilon=-0.9, min_samples=10
    )
    detector = Detector(settings, ("a",))
    X = np.random.default_rng(0).uniform(size=(300, 1))
    out = detector.process(X, unlabelled(300), ["h"] * 300)
    assert np.isfinite(out.score[10:]).all()
    # An anomaly score is not a log density: log_p stays empty, score carries it.
    assert np.isnan(out.log_p).all()


@pytest.mark.parametrize(
    ("settings", "features", "key"),
    [
        (lambda: DetectorSettings(), (), "features"),
        # Refused as soon as the settings are built, before a detector exists.
        (lambda: DetectorSettings(model="river:HalfSpaceTrees", flagged="clip"), ("a",), "flagged"),
        (lambda: DetectorSettings(transforms={"z": "log"}), ("a",), "transforms"),
    ],
)
def test_settings_the_detector_cannot_honour_are_refused(
    settings: Callable[[], DetectorSettings], features: tuple[str, ...], key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Detector(settings(), features)
    assert caught.value.key == key


def test_a_restored_detector_keeps_this_runs_validation_size() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 1))
    labels = np.where(np.arange(300) % 3 == 0, 0, -1).astype(np.int8)
    big = Detector(DetectorSettings(validation_size=500, retune_every=0), ("a",))
    big.process(X, labels)
    small = Detector(
        DetectorSettings(validation_size=40, min_negative_labels=40, retune_every=0), ("a",)
    )
    small.restore(big.to_dict())
    X_val, y_val, _ = small.validation.arrays()
    assert small.validation.capacity_per_class == 40 and len(y_val) == 40
    assert np.array_equal(X_val, X[labels == 0][-40:])


def test_a_half_life_too_short_to_represent_is_refused() -> None:
    with pytest.raises(ValueError, match="half_life"):
        decay_factor(1e-5)
    assert decay_factor(1.0) == 0.5


def test_labels_keys_and_ids_are_optional() -> None:
    X = np.random.default_rng(8).normal(size=(120, 1))
    X[100] = [40.0]
    settings = DetectorSettings(log_epsilon=-12.0, min_samples=20)
    given = Detector(settings, ("a",)).process(X, unlabelled(120))
    for omitted in (
        Detector(settings, ("a",)).process(X),
        Detector(settings, ("a",)).process(X, None),
    ):
        np.testing.assert_array_equal(omitted.score, given.score)
        np.testing.assert_array_equal(omitted.alert, given.alert)
    assert np.flatnonzero(given.alert).tolist() == [100]


def test_a_keyed_detector_still_needs_keys_when_labels_are_omitted() -> None:
    detector = Detector(DetectorSettings(key_field="host"), ("a",))
    with pytest.raises(ValueError, match="one key per row"):
        detector.process(np.zeros((3, 1)))


@pytest.mark.parametrize(
    ("X", "error", "message"),
    [
        (
            np.array([[1.0 + 2.0j], [2.0]]),
            TypeError,
            r"X must hold real numbers, got dtype complex",
        ),
        (np.array([["1"], ["2"]]), TypeError, r"X must hold real numbers, got dtype <U1 \(text\)"),
        (np.array([[1.0], ["2"]], dtype=object), TypeError, r"got str '2' at \(1, 0\)"),
        ([[1.0], [2.0, 3.0]], ValueError, "X is not a rectangular array"),
        (np.zeros((2, 1, 1)), ValueError, r"expected rows of 1 features.*got shape \(2, 1, 1\)"),
        (np.array([[1.0], [np.nan]]), ValueError, r"X\[1, 0\] = nan: rows must be finite"),
    ],
)
def test_a_batch_of_the_wrong_kind_is_refused_in_one_sentence_naming_x(
    X: object, error: type[Exception], message: str
) -> None:
    # Complex numbers used to lose their imaginary part in silence, text to fail inside numpy.
    detector = Detector(DetectorSettings(), ("a",))
    with pytest.raises(error, match=message):
        detector.process(X)  # type: ignore[arg-type]
    assert detector.events == 0 and not detector.models


def test_rows_and_labels_of_any_real_dtype_score_as_their_float64_values() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 2)).astype(np.float32)
    labels = np.where(np.arange(300) % 10 == 0, 0, -1)
    settings = DetectorSettings(min_samples=20, retune_every=50, min_negative_labels=1)
    reference = Detector(settings, ("a", "b")).process(X.astype(np.float64), labels.astype(np.int8))
    for rows, given in [(X, labels), (X.tolist(), labels.tolist()), (np.asfortranarray(X), labels)]:
        out = Detector(settings, ("a", "b")).process(rows, given)
        assert np.array_equal(out.score, reference.score, equal_nan=True)
        assert np.array_equal(out.log_p, reference.log_p, equal_nan=True)


@pytest.mark.parametrize(
    ("labels", "keys", "ids", "message"),
    [
        (np.zeros(2, dtype=np.int8), None, None, r"labels must have one entry per row of X \(3\)"),
        (np.array(["0", "1", "0"]), None, None, "labels must hold -1 .* got dtype <U1"),
        (np.array([0.0, 0.5, 1.0]), None, None, r"found 0\.5"),
        (None, ["h"] * 2, None, r"one key per row \(3\), got 2"),
        (None, ["h"] * 3, ["1"], r"ids must have one entry per row \(3\), got 1"),
    ],
)
def test_labels_keys_and_ids_that_do_not_fit_the_rows_are_named(
    labels: object, keys: list[str] | None, ids: list[str | None] | None, message: str
) -> None:
    detector = Detector(DetectorSettings(key_field="host"), ("a",))
    with pytest.raises((TypeError, ValueError), match=message):
        rows_keys = ["h"] * 3 if keys is None else keys
        detector.process(np.zeros((3, 1)), labels, rows_keys, ids)  # type: ignore[arg-type]


@pytest.mark.parametrize("features", ["a,b", ("a", "a"), (1, 2)])
def test_feature_names_are_distinct_strings(features: object) -> None:
    # "a,b" used to become the features 'a', ',' and 'b'; ("a", "a") two features named alike.
    with pytest.raises(ConfigError, match="features"):
        Detector(DetectorSettings(), features)  # type: ignore[arg-type]


def test_keys_given_to_a_detector_without_a_key_field_are_refused() -> None:
    # They were ignored, even of the wrong length: every row went to the one model.
    detector = Detector(DetectorSettings(), ("a",))
    with pytest.raises(ValueError, match="keys given to a detector without a key_field"):
        detector.process(np.zeros((3, 1)), keys=["x"])
    assert detector.events == 0


def test_an_id_given_as_a_number_is_labelled_by_the_number_or_its_text() -> None:
    # Ids are remembered as text: label_event(3, ...) found nothing, label_event("3", ...) did.
    detector = Detector(DetectorSettings(log_epsilon=-12.0, min_samples=5), ("a",))
    rows = np.random.default_rng(0).normal(size=(10, 1))
    detector.process(rows, ids=list(range(10)))  # type: ignore[arg-type]
    assert detector.label_event(3, 1) == "new"
    assert detector.label_event("3", 1) == "repeated"
    assert detector.label_event(99, 1) is None
