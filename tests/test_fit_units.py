"""``fit``, ``evaluate`` and ``run --initial-model`` follow run's rule for tiny features.

A feature whose first non-zero value is below 2^-10 is fitted times a power of
two (:mod:`stream_detect.feature_units`), so the variance floor does not hide
its spread; log p(x) and log ε stay in the events' own units.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stream_detect.cli import main
from stream_detect.density import gaussian_score
from stream_detect.detector import Detector
from stream_detect.errors import ModelError
from stream_detect.fitting import fit_model
from stream_detect.modelfile import load_model, save_model
from stream_detect.settings import DetectorSettings
from tests.test_cli_fit import run_json, write_csv, write_jsonl

FEATURES = ["tiny", "other"]


def labelled(rng: np.random.Generator, normal: int, anomalous: int) -> np.ndarray:
    """Rows ``tiny, other, label``: a feature 1 + N(0, 0.01) beside N(0, 1), anomalies at 6σ.

    Half the anomalies are in the small feature, half in the other: a model
    blind to the small one's spread misses the first half.
    """
    X = np.column_stack([1.0 + 0.01 * rng.normal(size=normal), rng.normal(size=normal)])
    odd = np.column_stack([1.0 + 0.01 * rng.normal(size=anomalous), rng.normal(size=anomalous)])
    odd[: anomalous // 2, 0] += 0.06
    odd[anomalous // 2 :, 1] += 6.0
    rows = np.vstack(
        [np.column_stack([X, np.zeros(normal)]), np.column_stack([odd, np.ones(anomalous)])]
    )
    return rows[rng.permutation(len(rows))]


def write_files(folder: Path, scale: float) -> dict[str, Path]:
    """Training, validation and test files whose first feature is multiplied by ``scale``."""
    rng = np.random.default_rng(11)
    train = np.column_stack([1.0 + 0.01 * rng.normal(size=2000), rng.normal(size=2000)])
    val, test = labelled(rng, 400, 20), labelled(rng, 400, 20)
    for rows in (train, val, test):
        rows[:, 0] *= scale
    folder.mkdir()
    return {
        "train": write_csv(folder / "train.csv", FEATURES, train),
        "val": write_jsonl(folder / "val.jsonl", [*FEATURES, "label"], val),
        "test": write_jsonl(folder / "test.jsonl", [*FEATURES, "label"], test),
        "model": folder / "model.json",
    }


COUNTS = ("tp", "fp", "fn", "tn", "precision", "recall", "f1", "n_flagged")


def fit_and_evaluate(
    capsys: pytest.CaptureFixture[str], folder: Path, scale: float, *options: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    files = write_files(folder, scale)
    fitted = run_json(
        capsys, "fit", files["train"], "--val", files["val"], "--out", files["model"], *options
    )
    evaluated = run_json(capsys, "evaluate", files["model"], files["test"])
    return fitted, evaluated


@pytest.mark.parametrize("options", [(), ("--model", "full"), ("--threshold", "grid")])
@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e-5, 1e5])
def test_fit_and_evaluate_do_not_depend_on_a_features_scale(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scale: float, options: tuple[str, ...]
) -> None:
    plain_fit, plain_eval = fit_and_evaluate(capsys, tmp_path / "plain", 1.0, *options)
    # The anomalies of both features are found: a fair F1 to compare with.
    assert plain_fit["f1"] > 0.8 and plain_eval["f1"] > 0.8
    fitted, evaluated = fit_and_evaluate(capsys, tmp_path / "scaled", scale, *options)
    assert {key: fitted[key] for key in COUNTS} == {key: plain_fit[key] for key in COUNTS}
    assert fitted["n_flagged_train"] == plain_fit["n_flagged_train"]
    assert {key: evaluated[key] for key in COUNTS} == {key: plain_eval[key] for key in COUNTS}
    # The density is in the events' units: scaling a feature by s divides it by s.
    moved = plain_fit["log_epsilon"] - math.log(scale)
    # A full covariance's ridge holds 1e-12 of the mean variance (density.floor_covariance):
    # a large feature lends the others some, which moves log ε by about 1e-7 at 1e5.
    close = 1e-6 if scale > 1.0 and "full" in options else 1e-9
    assert fitted["log_epsilon"] == pytest.approx(moved, rel=close, abs=close)
    assert evaluated["log_epsilon"] == fitted["log_epsilon"]
    if scale < 2.0**-10:
        k = 1 - math.frexp(float(np.loadtxt(tmp_path / "scaled" / "train.csv", delimiter=",",
                                            skiprows=1, max_rows=1)[0]))[1]  # fmt: skip
        assert fitted["unit_exponents"] == {"tiny": k}
        assert json.loads((tmp_path / "scaled" / "model.json").read_text())["unit_exponents"] == {
            "tiny": k
        }
    else:
        assert "unit_exponents" not in fitted


def test_a_model_of_ordinary_features_is_written_without_exponents(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fitted, _ = fit_and_evaluate(capsys, tmp_path / "plain", 1.0)
    assert "unit_exponents" not in fitted
    assert "unit_exponents" not in json.loads((tmp_path / "plain" / "model.json").read_text())
    assert load_model(tmp_path / "plain" / "model.json").unit_exponents is None


# A model file as fit wrote it before the rule: the small feature held in its own units, its
# variance (1e-14) below the floor (1e-12).
OLD_FILE = {
    "format": "stream_detect.model",
    "version": 1,
    "kind": "diagonal",
    "features": ["tiny", "other"],
    "transforms": {},
    "n": 2000,
    "mean": [1e-05, 0.01],
    "var": [1e-14, 0.98],
    "variance_floor": 1e-12,
    "relative_floor": 1e-20,
    "integer_floor": [],
    "log_epsilon": 3.5,
    "epsilon": math.exp(3.5),
    "threshold_method": "exact",
    "validation": None,
}


def test_a_model_file_written_before_the_rule_scores_as_before(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps(OLD_FILE, indent=2) + "\n")
    model = load_model(path)
    assert model.unit_exponents is None
    rows = np.array([[1e-5, 0.0], [1.2e-5, 1.0], [2e-5, -2.0]])
    # In the events' units, with the floor over the small feature's variance, as before.
    expected = gaussian_score(rows, model.mean, model.var, 1e-12, 1e-20).log_p
    np.testing.assert_array_equal(model.log_p(rows), expected)
    assert model.log_p(rows).tolist() == [
        11.987683824805526,
        9.487683824805526,
        -40.073540664990404,
    ]
    # evaluate flags with it as before, and the file is written back unchanged.
    test = write_jsonl(
        tmp_path / "test.jsonl", ["tiny", "other", "label"], np.column_stack([rows, [0, 0, 1]])
    )
    evaluated = run_json(capsys, "evaluate", path, test)
    assert (evaluated["tp"], evaluated["fp"], evaluated["tn"]) == (1, 0, 2)
    save_model(model, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == path.read_text()
    # A stream from it keeps the small feature in its units, as before.
    assert model.units.identity


def stream(scale: float, spike: int = 150, rows: int = 300) -> list[dict[str, Any]]:
    rng = np.random.default_rng(5)
    tiny = scale * (1.0 + 0.01 * rng.normal(size=rows))
    tiny[spike] *= 10.0
    other = rng.normal(size=rows)
    return [
        {"tiny": float(t), "other": float(o), "k": f"k{i % 3}"}
        for i, (t, o) in enumerate(zip(tiny, other, strict=True))
    ]


def run_from(
    capsys: pytest.CaptureFixture[str], folder: Path, model: Path, scale: float, *options: str
) -> list[dict[str, Any]]:
    source, out = folder / "events.jsonl", folder / "out.jsonl"
    source.write_text("".join(json.dumps(event) + "\n" for event in stream(scale)))
    argv = ["run", "--source", f"file:{source}", "--sink", f"file:{out}", "--emit", "all"]
    assert main([*argv, "--initial-model", str(model), "--no-progress", *options]) == 0
    capsys.readouterr()
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.parametrize("options", [(), ("--key-field", "k"), ("--model", "full")])
@pytest.mark.parametrize("scale", [1e-300, 1e-5])
def test_a_run_from_a_tiny_features_fit_alerts_on_a_tenfold_spike(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scale: float, options: tuple[str, ...]
) -> None:
    kind = ["--model", "full"] if "full" in options else []
    results = {}
    for name, size in (("plain", 1.0), ("scaled", scale)):
        files = write_files(tmp_path / name, size)
        run_json(
            capsys, "fit", files["train"], "--val", files["val"], "--out", files["model"], *kind
        )
        results[name] = run_from(capsys, tmp_path / name, files["model"], size, *options)
    alerts = [i for i, result in enumerate(results["scaled"]) if result["alert"]]
    assert 150 in alerts
    assert alerts == [i for i, result in enumerate(results["plain"]) if result["alert"]]
    # The first event is scored by the fitted model as evaluate scores it, in the events' units.
    model = load_model(tmp_path / "scaled" / "model.json")
    first = results["scaled"][0]
    expected = model.log_p(np.array([[first["tiny"], first["other"]]]))[0]
    assert first["log_p"] == pytest.approx(expected, rel=1e-12)


def test_a_feature_the_fit_saw_only_as_zero_is_scaled_at_its_first_value_in_the_stream() -> None:
    train = np.column_stack([np.zeros(500), np.random.default_rng(2).normal(size=500)])
    model = fit_model(train, ["late", "other"])
    assert model.unit_exponents is None
    assert model.units.decided.tolist() == [False, True]
    detector = Detector(DetectorSettings(features=("late", "other")), ("late", "other"),
                        initial_model=model)  # fmt: skip
    detector.process(np.array([[0.0, 0.1], [3e-300, 0.2]]))
    assert detector.units.exponents.tolist() == [1 - math.frexp(3e-300)[1], 0]
    # A checkpoint keeps the choice.
    assert detector.to_dict()["feature_units"]["decided"] == [True, True]


def test_a_fit_of_tiny_features_starts_the_stream_in_its_units() -> None:
    train = np.column_stack([3e-7 * (1.0 + 0.01 * np.arange(50)), np.arange(50.0)])
    model = fit_model(train, ["tiny", "other"])
    units = model.units
    assert units.exponents.tolist() == [1 - math.frexp(3e-7)[1], 0]
    assert units.decided.tolist() == [True, True]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"zzz": 3}, "unit_exponents names 'zzz', expected features among"),
        ({"a": -1}, r"unit_exponents\['a'\] is -1, expected a whole number from 0 to 1074"),
        ({"a": 1075}, r"unit_exponents\['a'\] is 1075, expected a whole number"),
        ({"a": 2.0}, r"unit_exponents\['a'\] is 2.0, expected a whole number"),
        ({"a": True}, r"unit_exponents\['a'\] is True, expected a whole number"),
        ([3, 0], "unit_exponents is .*, expected an object: feature name -> power of two"),
    ],
)
def test_bad_unit_exponents_are_refused_with_the_files_name(
    tmp_path: Path, value: Any, message: str
) -> None:
    data = fit_model(np.array([[1.0, 2.0], [3.0, 5.0]]), ["a", "b"]).to_dict()
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**data, "unit_exponents": value}))
    with pytest.raises(ModelError, match=f"{path}.*{message}"):
        load_model(path)


def test_unit_exponents_round_trip_through_a_file(tmp_path: Path) -> None:
    train = np.column_stack([1e-200 * (1.0 + np.arange(20.0)), np.arange(20.0) ** 1.5])
    model = fit_model(train, ["tiny", "other"], kind="full").with_threshold(400.0, "exact")
    save_model(model, tmp_path / "m.json")
    again = load_model(tmp_path / "m.json")
    assert again.unit_exponents is not None and model.unit_exponents is not None
    assert again.unit_exponents.tolist() == model.unit_exponents.tolist()
    np.testing.assert_array_equal(again.log_p(train), model.log_p(train))


def test_the_power_of_two_is_chosen_on_the_transformed_values_as_run_chooses_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    files = write_files(tmp_path / "sqrt", 1e-300)
    fitted = run_json(
        capsys, "fit", files["train"], "--transform", "tiny=sqrt", "--out", files["model"]
    )
    first = float(np.loadtxt(files["train"], delimiter=",", skiprows=1, max_rows=1)[0])
    # sqrt(1e-300) is 1e-150: its own power of two, not that of 1e-300.
    assert fitted["unit_exponents"] == {"tiny": 1 - math.frexp(math.sqrt(first))[1]}
    results = run_from(capsys, tmp_path / "sqrt", files["model"], 1e-300)
    model = load_model(files["model"])
    expected = model.log_p(np.array([[results[0]["tiny"], results[0]["other"]]]))[0]
    assert results[0]["log_p"] == pytest.approx(expected, rel=1e-12)
    assert 150 in [i for i, result in enumerate(results) if result["alert"]]
