"""``fit`` and ``evaluate`` floor integer features that varied at 1/12, as ``run`` does.

The rule is :mod:`stream_detect.quantisation`'s, in the batch sense: a
feature whose transformed training values are all integers, two different
ones or more, scores with its variance floored at 1/12 (the diagonal
model's variance, the full model's ridge). Checked against scipy's
densities on a floored variance computed by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.stats

from stream_detect.cli import main
from stream_detect.density import TRACE_RIDGE, gaussian_log_pdf
from stream_detect.detector import Detector
from stream_detect.errors import ModelError
from stream_detect.feature_transforms import FeatureTransforms
from stream_detect.fitted_model import FittedModel
from stream_detect.fitting import fit_model
from stream_detect.initial_model import detector_settings_for
from stream_detect.modelfile import load_model, save_model
from stream_detect.settings import DetectorSettings

#: The variance of rounding to a unit step, written out (not imported) on purpose.
TWELFTH = 1.0 / 12.0


@pytest.fixture
def flag_and_latency() -> np.ndarray:
    """A 0/1 flag set on 0.1% of 20,000 rows, beside a continuous latency."""
    rng = np.random.default_rng(7)
    flag = np.zeros(20_000)
    flag[rng.choice(flag.size, 20, replace=False)] = 1.0
    return np.column_stack([flag, rng.normal(100.0, 10.0, flag.size)])


def by_hand_variances(X: np.ndarray, floored: list[bool]) -> np.ndarray:
    """Population variances raised to the floors, feature by feature in plain Python."""
    out = []
    for j, is_floored in enumerate(floored):
        column = [float(v) for v in X[:, j]]
        mean = sum(column) / len(column)
        var = sum((v - mean) ** 2 for v in column) / len(column)
        floor = (TWELFTH if is_floored else 1e-12) + 1e-20 * mean**2
        out.append(max(var, floor))
    return np.array(out)


def test_a_flag_is_floored_at_a_unit_step_in_the_diagonal_model(
    flag_and_latency: np.ndarray,
) -> None:
    X = flag_and_latency
    model = fit_model(X, ["flag", "latency"])
    assert model.integer_floor is not None and model.integer_floor.tolist() == [True, False]
    var = by_hand_variances(X, [True, False])
    assert var[0] == pytest.approx(TWELFTH, rel=1e-9)  # the flag's own variance is about 0.001
    rows = np.array([[1.0, 100.0], [0.0, 100.0], [2.0, 100.0], [0.0, 160.0]])
    expected = scipy.stats.norm.logpdf(rows, X.mean(axis=0), np.sqrt(var)).sum(axis=1)
    np.testing.assert_allclose(model.log_p(rows), expected, rtol=1e-12)
    # One step is at most √12 σ out (no alert on its own); the unfloored model put it ~32σ out.
    assert (1.0 - X[:, 0].mean()) / np.sqrt(var[0]) < np.sqrt(12.0)
    assert 31.5 < (1.0 - X[:, 0].mean()) / X[:, 0].std() < 32.0


def test_the_full_model_adds_the_floor_to_its_ridge(flag_and_latency: np.ndarray) -> None:
    rng = np.random.default_rng(8)
    X = np.column_stack([flag_and_latency, rng.normal(size=len(flag_and_latency))])
    model = fit_model(X, ["flag", "latency", "z"], kind="full")
    assert model.integer_floor is not None and model.integer_floor.tolist() == [True, False, False]
    mean = X.mean(axis=0)
    cov = np.cov(X, rowvar=False, bias=True)
    # The streaming full model's ridge: the floor (1/12 for the flag) + relative + trace part.
    floor = np.array([TWELFTH, 1e-12, 1e-12])
    ridge = floor + 1e-20 * mean**2 + TRACE_RIDGE * np.trace(cov) / 3
    rows = np.array([[1.0, 100.0, 0.0], [0.0, 120.0, 1.0], [3.0, 90.0, -2.0]])
    expected = scipy.stats.multivariate_normal.logpdf(rows, mean, cov + np.diag(ridge))
    np.testing.assert_allclose(model.log_p(rows), expected, rtol=1e-9)


@pytest.mark.parametrize(
    ("column", "transforms"),
    [
        ([3.0, 3.0, 3.0, 3.0], None),  # one value: nothing to floor yet
        ([0.0, 1.0, 0.0, 1.5], None),  # a value that is not an integer
        ([1.0, 2.0, 4.0, 8.0], {"x": "log"}),  # integers, but not once transformed
    ],
)
def test_a_feature_that_is_not_a_varied_integer_is_not_floored(
    column: list[float], transforms: dict[str, str] | None
) -> None:
    X = np.array(column)[:, None]
    model = fit_model(X, ["x"], transforms=FeatureTransforms.from_dict(transforms or {}))
    assert model.integer_floor is not None and model.integer_floor.tolist() == [False]
    values = model.transform(X)
    plain = gaussian_log_pdf(values, model.mean, model.var, 1e-12, 1e-20)
    assert model.log_p(X).tolist() == plain.tolist()


def test_the_model_file_names_the_floored_features_and_reads_them_back(
    tmp_path: Path, flag_and_latency: np.ndarray
) -> None:
    model = fit_model(flag_and_latency, ["flag", "latency"])
    path = tmp_path / "model.json"
    save_model(model, path)
    data = json.loads(path.read_text())
    assert data["integer_floor"] == ["flag"]
    loaded = load_model(path)
    assert loaded.integer_floor is not None and loaded.integer_floor.tolist() == [True, False]
    rows = flag_and_latency[:50]
    assert loaded.log_p(rows).tolist() == model.log_p(rows).tolist()


def test_a_model_file_written_before_the_rule_scores_as_it_did(
    tmp_path: Path, flag_and_latency: np.ndarray
) -> None:
    data = fit_model(flag_and_latency, ["flag", "latency"]).to_dict()
    del data["integer_floor"]  # what fit wrote before
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    old = load_model(path)
    assert old.integer_floor is None
    rows = np.array([[1.0, 100.0], [0.0, 100.0]])
    # The scores of the unfloored Gaussian, bit for bit, with the one-number floor.
    unfloored = gaussian_log_pdf(rows, old.mean, old.var, old.variance_floor, old.relative_floor)
    assert old.log_p(rows).tolist() == unfloored.tolist()
    assert old.log_p(rows)[0] < -400  # the flag's 1 ~32σ out, as before
    assert "integer_floor" not in old.to_dict()  # saved again, it stays a file without the rule


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["speed"], "integer_floor names 'speed', expected features among ['flag', 'latency']"),
        (["flag", "flag"], "integer_floor names 'flag' more than once"),
        ("flag", "integer_floor is 'flag', expected a list of feature names"),
        ([1], "integer_floor is [1], expected a list of feature names"),
    ],
)
def test_a_bad_integer_floor_is_refused_in_one_line(names: Any, message: str) -> None:
    data = fit_model(np.array([[0.0, 1.5], [1.0, 2.5]]), ["flag", "latency"]).to_dict()
    data["integer_floor"] = names
    with pytest.raises(ModelError) as caught:
        FittedModel.from_dict(data)
    assert str(caught.value) == message


def stream_from(model: FittedModel, key_field: str | None = None) -> Detector:
    settings = detector_settings_for(DetectorSettings(key_field=key_field), model, "m.json")
    return Detector(settings, model.features, initial_model=model)


@pytest.mark.parametrize("key_field", [None, "host"])
def test_a_stream_from_the_model_starts_with_its_floors(
    flag_and_latency: np.ndarray, key_field: str | None
) -> None:
    model = fit_model(flag_and_latency, ["flag", "latency"])
    detector = stream_from(model, key_field)
    assert detector.integers.floored.tolist() == [True, False]
    rows = np.array([[1.0, 100.0], [1.0, 100.0], [0.5, 100.0], [1.0, 100.0]])
    keys = None if key_field is None else ["a"] * len(rows)
    log_p = detector.process(rows, keys=keys).log_p
    # The first event scores as evaluate scores it: floored, one step within √12 σ.
    assert log_p[0] == pytest.approx(model.log_p(rows[:1])[0], rel=1e-12)
    # A value that is not an integer turns the floor off from its own event on.
    assert detector.integers.floored.tolist() == [False, False]
    assert log_p[3] < log_p[1] - 100


@pytest.mark.parametrize("key_field", [None, "host"])
def test_a_stream_from_the_model_alerts_on_two_steps_not_one(
    flag_and_latency: np.ndarray, key_field: str | None
) -> None:
    model = fit_model(flag_and_latency, ["flag", "latency"])
    detector = stream_from(model, key_field)
    # The prior's Student-t tails (the default threshold) get the floor too.
    assert detector.integers.scale_floor.tolist() == [np.sqrt(TWELFTH), 0.0]
    rows = np.array([[1.0, 100.0], [0.0, 100.0], [2.0, 100.0]])
    keys = None if key_field is None else ["a"] * len(rows)
    assert detector.process(rows, keys=keys).alert.tolist() == [False, False, True]


def test_a_stream_from_an_old_model_file_learns_the_floors_from_the_stream(
    flag_and_latency: np.ndarray,
) -> None:
    data = fit_model(flag_and_latency, ["flag", "latency"]).to_dict()
    del data["integer_floor"]
    old = FittedModel.from_dict(data)
    detector = stream_from(old)
    assert detector.integers.floored.tolist() == [False, False]
    rows = np.array([[1.0, 100.0], [1.0, 100.0], [0.0, 100.0], [1.0, 100.0]])
    log_p = detector.process(rows).log_p
    # As before the rule: the first 1 unfloored, as evaluate scores it with that file,
    # and the floor comes once the stream itself has shown two values (the 0).
    assert log_p[0] == pytest.approx(old.log_p(rows[:1])[0], rel=1e-12)
    assert max(log_p[0], log_p[1]) < -400 < log_p[3]


def test_a_constant_integer_of_the_fit_counts_as_seen_by_the_stream() -> None:
    rng = np.random.default_rng(9)
    X = np.column_stack([np.full(500, 4.0), rng.normal(size=500)])
    model = fit_model(X, ["version", "x"])
    detector = stream_from(model)
    assert detector.integers.integral.tolist() == [True, False]
    rows = np.array([[5.0, 0.0], [5.0, 0.0]])
    log_p = detector.process(rows).log_p
    # The new version is the first change (rare, unfloored); from the next event, floored.
    assert log_p[0] < -1e6
    assert detector.integers.floored.tolist() == [True, False]
    assert log_p[1] > -1e6


def write_csv(path: Path, header: str, rows: np.ndarray) -> None:
    path.write_text(header + "\n" + "\n".join(",".join(f"{v:g}" for v in row) for row in rows))


def test_fit_and_evaluate_no_longer_flag_every_set_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag_and_latency: np.ndarray
) -> None:
    train, test, model_file = tmp_path / "train.csv", tmp_path / "test.csv", tmp_path / "m.json"
    labels = np.zeros((len(flag_and_latency), 1))
    write_csv(train, "flag,latency,label", np.hstack([flag_and_latency, labels]))
    rng = np.random.default_rng(10)
    normal = np.column_stack([np.zeros(200), rng.normal(100.0, 10.0, 200), np.zeros(200)])
    normal[:10, 0] = 1.0  # flags set on normal events
    slow = np.column_stack([np.zeros(5), np.full(5, 180.0), np.ones(5)])  # the anomalies
    write_csv(test, "flag,latency,label", np.vstack([normal, slow]))
    assert main(["fit", str(train), "--val", str(test), "--out", str(model_file)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["integer_floor"] == ["flag"]
    assert (report["tp"], report["fp"]) == (5, 0)
    assert main(["evaluate", str(model_file), str(test)]) == 0
    scores = json.loads(capsys.readouterr().out)
    # Unfloored, the set flags score ~500 below the rest, far below the slow events.
    assert (scores["tp"], scores["fp"], scores["fn"]) == (5, 0, 0)
