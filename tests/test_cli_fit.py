"""Tests of ``stream-detect fit`` and ``stream-detect evaluate``, in-process and as a program."""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import scipy.stats

from stream_detect.cli import main
from stream_detect.confusion import confusion_counts
from stream_detect.modelfile import load_model
from stream_detect.threshold import best_log_threshold
from stream_detect.threshold_grid import grid_log_threshold, select_threshold

REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- helpers


def write_csv(path: Path, header: Sequence[str], rows: Any) -> Path:
    lines = [",".join(header)]
    lines += [",".join(_cell(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _cell(value: Any) -> str:
    return repr(float(value)) if isinstance(value, (float, np.floating)) else str(value)


def write_jsonl(path: Path, header: Sequence[str], rows: Any) -> Path:
    events = [dict(zip(header, (v.item() for v in row), strict=True)) for row in np.asarray(rows)]
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> dict[str, Any]:
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, "")
    assert out.count("\n") == 1, "one JSON object on one line"
    result: dict[str, Any] = json.loads(out)
    return result


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def diagonal_log_p(train: np.ndarray, X: np.ndarray) -> np.ndarray:
    """log p under independent normals with the population moments of ``train``, via SciPy."""
    result: np.ndarray = scipy.stats.norm.logpdf(X, train.mean(axis=0), train.std(axis=0)).sum(
        axis=1
    )
    return result


# ---------------------------------------------------------------- generated data


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Any]:
    """Normal training events, labelled validation and test events with rare anomalies."""
    rng = np.random.default_rng(42)
    cov = [[1.0, 0.6], [0.6, 2.0]]
    train = rng.multivariate_normal([5.0, -3.0], cov, size=400)

    def labelled(n_normal: int, n_anomalous: int) -> tuple[np.ndarray, np.ndarray]:
        normal = rng.multivariate_normal([5.0, -3.0], cov, size=n_normal)
        anomalous = rng.multivariate_normal([9.0, 2.0], [[4.0, 0.0], [0.0, 4.0]], n_anomalous)
        X = np.vstack([normal, anomalous])
        y = np.r_[np.zeros(n_normal, dtype=int), np.ones(n_anomalous, dtype=int)]
        order = rng.permutation(len(y))
        return X[order], y[order]

    X_val, y_val = labelled(150, 12)
    X_test, y_test = labelled(150, 10)
    return {
        "train": write_csv(tmp_path / "train.csv", ["cpu", "mem"], train),
        "val": write_csv(
            tmp_path / "val.csv",
            ["cpu", "mem", "label"],
            [[a, b, int(c)] for (a, b), c in zip(X_val, y_val, strict=True)],
        ),
        "test": write_jsonl(
            tmp_path / "test.jsonl", ["cpu", "mem", "label"], np.column_stack([X_test, y_test])
        ),
        "X": train,
        "X_val": X_val,
        "y_val": y_val,
        "X_test": X_test,
        "y_test": y_test,
        "dir": tmp_path,
    }


def test_fit_reports_the_model_and_the_exact_threshold(
    capsys: pytest.CaptureFixture[str], files: dict[str, Any]
) -> None:
    result = run_json(capsys, "fit", files["train"], "--val", files["val"])
    X, X_val, y_val = files["X"], files["X_val"], files["y_val"]
    assert (result["n"], result["d"], result["features"]) == (400, 2, ["cpu", "mem"])
    assert result["ignored_columns"] == []
    assert (result["kind"], result["transforms"], result["threshold_method"]) == (
        "diagonal",
        {},
        "exact",
    )
    np.testing.assert_allclose(result["mean"], X.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(result["var"], X.var(axis=0), rtol=1e-12)
    choice = best_log_threshold(y_val, diagonal_log_p(X, X_val))
    assert result["log_epsilon"] == pytest.approx(choice.log_epsilon, rel=1e-12)
    assert result["epsilon"] == pytest.approx(math.exp(choice.log_epsilon), rel=1e-12)
    assert result["f1"] == choice.f1 > 0.5
    assert (result["precision"], result["recall"]) == (choice.precision, choice.recall)
    assert result["n_flagged"] == choice.n_flagged
    assert result["tp"] + result["fp"] + result["fn"] + result["tn"] == len(y_val)
    expected_train = int(np.sum(diagonal_log_p(X, X) < choice.log_epsilon))
    assert result["n_flagged_train"] == expected_train
    assert (result["validation_source"], result["n_validation"]) == (str(files["val"]), 162)
    assert "note" not in result


def test_grid_and_classic_thresholds(
    capsys: pytest.CaptureFixture[str], files: dict[str, Any]
) -> None:
    log_p = diagonal_log_p(files["X"], files["X_val"])
    grid = run_json(capsys, "fit", files["train"], "--val", files["val"], "--threshold", "grid")
    expected = grid_log_threshold(files["y_val"], log_p)
    assert grid["log_epsilon"] == pytest.approx(expected.log_epsilon, rel=1e-9)
    assert grid["f1"] == expected.f1
    classic = run_json(
        capsys, "fit", files["train"], "--val", files["val"], "--threshold", "classic"
    )
    epsilon, f1 = select_threshold(files["y_val"], np.exp(log_p))
    assert classic["epsilon"] == pytest.approx(epsilon, rel=1e-9)
    assert classic["f1"] == pytest.approx(f1, rel=1e-12)
    assert classic["log_epsilon"] == pytest.approx(math.log(epsilon), rel=1e-12)
    exact = run_json(capsys, "fit", files["train"], "--val", files["val"])
    assert exact["f1"] >= max(grid["f1"], classic["f1"])


def test_log_space_works_where_densities_overflow(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # 60 features of spread 1e-7: log p is about +900, so p itself overflows float64.
    rng = np.random.default_rng(9)
    names = [f"f{j}" for j in range(60)]
    train = write_csv(tmp_path / "t.csv", names, 1.0 + 1e-7 * rng.normal(size=(300, 60)))
    val_X = 1.0 + 1e-7 * rng.normal(size=(40, 60))
    val_X[:4] += 1e-6
    val_rows = np.column_stack([val_X, np.r_[np.ones(4), np.zeros(36)]]).tolist()
    val = write_csv(
        tmp_path / "v.csv", [*names, "label"], [[*r[:-1], int(r[-1])] for r in val_rows]
    )
    exact = run_json(capsys, "fit", train, "--val", val)
    assert exact["f1"] == 1.0
    assert exact["log_epsilon"] > 709
    assert exact["epsilon"] == "inf"
    code, out, err = run(capsys, "fit", train, "--val", val, "--threshold", "classic")
    assert_one_line_error(code, out, err, "v.csv", "--threshold exact")


@pytest.mark.parametrize(
    ("command", "flag", "first", "second"),
    [
        ("fit", "--val", "{val}", "{train}"),
        ("fit", "--model", "diagonal", "full"),
        ("fit", "--label-field", "label", "other"),
        ("fit", "--threshold", "exact", "classic"),
        ("fit", "--out", "{tmp}/a.json", "{tmp}/b.json"),
        ("fit", "--plot", "{tmp}/a.png", "{tmp}/b.png"),
        ("evaluate", "--label-field", "label", "other"),
        ("evaluate", "--plot", "{tmp}/a.png", "{tmp}/b.png"),
    ],
)
def test_an_option_given_twice_is_refused_not_silently_replaced(
    capsys: pytest.CaptureFixture[str],
    files: dict[str, Any],
    tmp_path: Path,
    command: str,
    flag: str,
    first: str,
    second: str,
) -> None:
    # "--val a.csv --val b.csv" chose epsilon on b.csv only, without a word.
    names = {"val": files["val"], "train": files["train"], "tmp": tmp_path}
    values = [value.format(**names) for value in (first, second)]
    model = tmp_path / "model.json"
    run_json(capsys, "fit", files["train"], "--val", files["val"], "--out", model)
    inputs = [files["train"]] if command == "fit" else [model, files["val"]]
    code, out, err = run(capsys, command, *inputs, flag, values[0], flag, values[1])
    assert_one_line_error(code, out, err, f"option {flag}: got {values[1]!r}, expected {flag} once")
    assert not (tmp_path / "a.json").exists() and not (tmp_path / "a.png").exists()


@pytest.mark.parametrize(
    ("command", "empty"),
    [
        ("fit", "TRAIN"),
        ("fit", "--val"),
        ("fit", "--out"),
        ("fit", "--plot"),
        ("evaluate", "MODEL.json"),
        ("evaluate", "TEST"),
        ("evaluate", "--plot"),
    ],
)
def test_an_empty_file_name_is_named_as_such(
    capsys: pytest.CaptureFixture[str],
    files: dict[str, Any],
    tmp_path: Path,
    command: str,
    empty: str,
) -> None:
    # An unset variable ("--out $MODEL") gave ": no such file", or "cannot write model
    # file .: it is a folder", naming the current folder no one had named.
    model = tmp_path / "model.json"
    run_json(capsys, "fit", files["train"], "--val", files["val"], "--out", model)
    if command == "fit":
        positional = {"TRAIN": files["train"]}
        flags = {"--val": files["val"], "--out": tmp_path / "m.json", "--plot": tmp_path / "p.png"}
    else:
        positional = {"MODEL.json": model, "TEST": files["val"]}
        flags = {"--plot": tmp_path / "p.png"}
    argv: list[str | Path] = ["" if name == empty else path for name, path in positional.items()]
    if empty.startswith("--"):
        argv += [empty, ""]
    with pytest.raises(SystemExit) as stopped:  # argparse refuses it, as it does "--model x"
        run(capsys, command, *argv)
    captured = capsys.readouterr()
    message = f"argument {empty}: got '', expected a file name"
    assert_one_line_error(int(stopped.value.code or 0), captured.out, captured.err, message)
    assert empty in positional or empty in flags


def test_classic_threshold_refuses_densities_that_all_underflow(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # 2000 features: log p is about -2800, so every density is 0 in float64. The classic
    # grid then had nothing to search and gave epsilon 0, a model that never flags.
    rng = np.random.default_rng(4)
    names = [f"f{j}" for j in range(2000)]
    train = write_csv(tmp_path / "t.csv", names, rng.normal(size=(50, 2000)))
    val_X = rng.normal(size=(20, 2000))
    val_X[:3, :5] += 8.0
    labels = [1, 1, 1] + [0] * 17
    rows = [[*row, label] for row, label in zip(val_X, labels, strict=True)]
    val = write_csv(tmp_path / "v.csv", [*names, "label"], rows)
    exact = run_json(capsys, "fit", train, "--val", val)
    assert exact["log_epsilon"] < -745 and exact["epsilon"] == 0.0 and exact["f1"] == 1.0
    code, out, err = run(capsys, "fit", train, "--val", val, "--threshold", "classic")
    assert_one_line_error(code, out, err, "v.csv", "underflows to 0")
    assert "--threshold exact" in err


def test_full_model(capsys: pytest.CaptureFixture[str], files: dict[str, Any]) -> None:
    result = run_json(capsys, "fit", files["train"], "--val", files["val"], "--model", "full")
    X = files["X"]
    assert result["kind"] == "full"
    np.testing.assert_allclose(result["cov"], np.cov(X.T, bias=True), rtol=1e-12)
    log_p = scipy.stats.multivariate_normal(X.mean(axis=0), np.cov(X.T, bias=True)).logpdf(
        files["X_val"]
    )
    choice = best_log_threshold(files["y_val"], log_p)
    assert result["f1"] == choice.f1
    assert result["log_epsilon"] == pytest.approx(choice.log_epsilon, rel=1e-8)


def test_transforms_explicit_and_auto(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    latency = rng.lognormal(2.0, 0.8, 2000)
    load = rng.normal(0.0, 1.0, 2000)
    train = write_csv(tmp_path / "train.csv", ["latency", "load"], np.column_stack([latency, load]))
    result = run_json(capsys, "fit", train, "--transform", "latency=log")
    assert result["transforms"] == {"latency": "log"}
    assert result["mean"][0] == pytest.approx(np.log(latency).mean(), rel=1e-12)
    auto = run_json(capsys, "fit", train, "--transform", "auto")
    assert auto["transforms"] == {"latency": "log"}
    mixed = run_json(capsys, "fit", train, "--transform", "auto", "--transform", "latency=sqrt")
    assert mixed["transforms"] == {"latency": "sqrt"}
    one = run_json(capsys, "fit", train, "--transform", "latency=auto")
    assert one["transforms"] == {"latency": "log"}


def test_features_option_chooses_the_columns_and_the_report_lists_the_rest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    train = tmp_path / "train.csv"
    train.write_text("host,cpu,mem,note,label\nweb-1,1,10,,0\nweb-2,2,12,3,0\nweb-3,4,11,x,1\n")
    # Inferred, "note" (empty in the first row, 3 later) would be dropped: refused.
    code, out, err = run(capsys, "fit", train)
    assert_one_line_error(code, out, err, "train.csv:3:", "column 'note'")
    result = run_json(capsys, "fit", train, "--features", "mem,cpu")
    assert (result["features"], result["d"]) == (["mem", "cpu"], 2)
    assert result["ignored_columns"] == ["host", "note"]
    assert result["mean"] == pytest.approx([11.0, 7 / 3])
    only = run_json(capsys, "fit", train, "--features", "cpu")
    assert only["ignored_columns"] == ["host", "mem", "note"]


def test_fit_out_then_evaluate(capsys: pytest.CaptureFixture[str], files: dict[str, Any]) -> None:
    model_path = files["dir"] / "model.json"
    fitted = run_json(capsys, "fit", files["train"], "--val", files["val"], "--out", model_path)
    assert fitted["model_file"] == str(model_path)
    model = load_model(model_path)
    assert model.log_epsilon == fitted["log_epsilon"]
    assert model.validation is not None and model.validation["f1"] == fitted["f1"]
    result = run_json(capsys, "evaluate", model_path, files["test"])
    log_p = diagonal_log_p(files["X"], files["X_test"])
    counts = confusion_counts(files["y_test"], log_p < fitted["log_epsilon"])
    for key, value in counts.to_dict().items():
        assert result[key] == value, key
    assert (result["n"], result["log_epsilon"]) == (160, fitted["log_epsilon"])


def test_evaluate_says_null_where_a_ratio_is_undefined_as_replay_says_n_a(
    capsys: pytest.CaptureFixture[str], files: dict[str, Any]
) -> None:
    model_path = files["dir"] / "model.json"
    fitted = run_json(capsys, "fit", files["train"], "--val", files["val"], "--out", model_path)
    calm = ",".join(repr(value) for value in fitted["mean"])
    far = ",".join("1000000.0" for _ in fitted["mean"])
    expected = {
        # Nothing flagged: no precision; anomalies labelled but none found: recall 0.
        "calm_anomalous": (f"{calm},1", {"precision": None, "recall": 0.0, "f1": 0.0}),
        # Nothing flagged and no anomaly label: none of the three is defined.
        "calm_normal": (f"{calm},0", {"precision": None, "recall": None, "f1": None}),
        # Flagged, but no anomaly label: precision 0, no recall.
        "far_normal": (f"{far},0", {"precision": 0.0, "recall": None, "f1": 0.0}),
    }
    for name, (row, metrics) in expected.items():
        test = files["dir"] / f"{name}.csv"
        test.write_text(f"cpu,mem,label\n{row}\n{row}\n")
        result = run_json(capsys, "evaluate", model_path, test)
        assert {key: result[key] for key in metrics} == metrics, name


def test_fit_out_to_a_fifo_or_device_is_refused_and_left_in_place(
    capsys: pytest.CaptureFixture[str], files: dict[str, Any]
) -> None:
    # A model file is written to a temporary file and renamed over the target: over
    # /dev/null or /dev/full (as root) that replaced the device by a regular file.
    fifo = files["dir"] / "model.fifo"
    os.mkfifo(fifo)
    capsys.readouterr()
    status = main(["fit", str(files["train"]), "--out", str(fifo)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err == [f"stream-detect fit: error: cannot write model file {fifo}: not a regular file"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_train_labels_serve_when_there_is_no_val(
    capsys: pytest.CaptureFixture[str], files: dict[str, Any]
) -> None:
    X, y = files["X_val"], files["y_val"]
    train = write_jsonl(
        files["dir"] / "labelled.jsonl", ["a", "b", "label"], np.column_stack([X, y])
    )
    result = run_json(capsys, "fit", train)
    assert result["features"] == ["a", "b"]  # the label is never a feature
    choice = best_log_threshold(y, diagonal_log_p(X, X))
    assert result["f1"] == choice.f1
    assert result["validation_source"] == str(train)
    assert result["n_flagged_train"] == result["n_flagged"]


def test_a_differently_named_label_field(
    capsys: pytest.CaptureFixture[str], files: dict[str, Any]
) -> None:
    X, y = files["X_val"], files["y_val"]
    train = write_csv(
        files["dir"] / "t.csv",
        ["a", "is_bad", "b"],
        np.column_stack([X[:, 0], y, X[:, 1]]).tolist(),
    )
    result = run_json(capsys, "fit", train, "--label-field", "is_bad")
    assert result["features"] == ["a", "b"]
    assert result["n_validation"] == len(y)


def test_without_labels_no_epsilon_is_invented(
    capsys: pytest.CaptureFixture[str], files: dict[str, Any]
) -> None:
    model_path = files["dir"] / "m.json"
    result = run_json(capsys, "fit", files["train"], "--out", model_path)
    for key in ("log_epsilon", "epsilon", "f1", "precision", "recall", "n_flagged_train"):
        assert result[key] is None, key
    assert "no labels" in result["note"] and "--val" in result["note"]
    assert load_model(model_path).log_epsilon is None
    code, out, err = run(capsys, "evaluate", model_path, files["test"])
    assert_one_line_error(code, out, err, str(model_path), "no threshold")


def test_label_field_none_means_no_labels_as_in_run_and_inspect(
    capsys: pytest.CaptureFixture[str], files: dict[str, Any]
) -> None:
    # It was taken as a column named "none": "label field 'none' is not a column of the
    # CSV header", where run and inspect read it as "the events carry no labels".
    model_path = files["dir"] / "m.json"
    for spelling in ("none", "NONE"):
        result = run_json(
            capsys, "fit", files["val"], "--label-field", spelling, "--out", model_path
        )
        # No field is the label, so one named label is data, as in run.
        assert result["features"] == ["cpu", "mem", "label"]
        assert result["log_epsilon"] is None and result["n_validation"] is None
        assert "--label-field none" in result["note"] and "--log-tail-epsilon" in result["note"]
        assert load_model(model_path).log_epsilon is None
    code, out, err = run(capsys, "evaluate", model_path, files["test"], "--label-field", "none")
    assert_one_line_error(code, out, err, "option --label-field: got 'none'", "needs labels")


def test_label_field_none_refuses_what_needs_labels_before_reading(
    capsys: pytest.CaptureFixture[str], files: dict[str, Any]
) -> None:
    absent = files["dir"] / "absent.csv"
    code, out, err = run(capsys, "fit", absent, "--val", files["val"], "--label-field", "none")
    assert_one_line_error(code, out, err, "option --label-field: got 'none'", "--val needs labels")
    code, out, err = run(
        capsys, "fit", absent, "--label-field", "none", "--plot", files["dir"] / "c.png"
    )
    assert_one_line_error(code, out, err, "--plot", "--label-field none: the events carry no")
    assert not (files["dir"] / "c.png").exists()


def test_one_class_labels_in_train_give_a_note(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    train = write_csv(tmp_path / "t.csv", ["x", "label"], [[float(i), 0] for i in range(20)])
    result = run_json(capsys, "fit", train)
    assert result["log_epsilon"] is None
    assert "holds only 0 (20 events)" in result["note"]


def test_a_plot_without_two_classes_says_which_labels_are_missing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # It said "expected labelled events (--val, or a label column in TRAIN)" of a
    # TRAIN that had a label column, of one class.
    train = write_csv(tmp_path / "t.csv", ["x", "label"], [[float(i), 0] for i in range(20)])
    code, out, err = run(capsys, "fit", train, "--plot", tmp_path / "c.png")
    assert_one_line_error(code, out, err, "--plot", "labels of both classes to draw the curves")
    assert "holds only 0 (20 events)" in err and "label column in TRAIN" not in err
    unlabelled = write_csv(tmp_path / "u.csv", ["x"], [[float(i)] for i in range(20)])
    code, out, err = run(capsys, "fit", unlabelled, "--plot", tmp_path / "c.png")
    assert_one_line_error(code, out, err, "--plot", "no row of TRAIN is labelled in 'label'")


def test_plots_are_written(capsys: pytest.CaptureFixture[str], files: dict[str, Any]) -> None:
    pytest.importorskip("matplotlib")
    curves = files["dir"] / "curves.png"
    model_path = files["dir"] / "m.json"
    result = run_json(
        capsys, "fit", files["train"], "--val", files["val"], "--plot", curves, "--out", model_path
    )
    assert result["plot"] == str(curves)
    assert curves.read_bytes().startswith(b"\x89PNG")
    test_curves = files["dir"] / "test.png"
    run_json(capsys, "evaluate", model_path, files["test"], "--plot", test_curves)
    assert test_curves.read_bytes().startswith(b"\x89PNG")


def test_partly_labelled_files_use_their_labelled_rows(
    capsys: pytest.CaptureFixture[str], files: dict[str, Any]
) -> None:
    # The label rule of every command: an empty label cell is an unlabelled row.
    folder: Path = files["dir"]
    rows = [[a, b, int(c)] for (a, b), c in zip(files["X_val"], files["y_val"], strict=True)]
    partly = [[a, b, "" if i % 3 == 0 else c] for i, (a, b, c) in enumerate(rows)]
    write_csv(folder / "partly.csv", ["cpu", "mem", "label"], partly)
    kept = [row for i, row in enumerate(rows) if i % 3 != 0]
    write_csv(folder / "kept.csv", ["cpu", "mem", "label"], kept)
    partly_fit = run_json(capsys, "fit", files["train"], "--val", folder / "partly.csv")
    kept_fit = run_json(capsys, "fit", files["train"], "--val", folder / "kept.csv")
    assert partly_fit["log_epsilon"] == kept_fit["log_epsilon"]
    assert partly_fit["n_validation"] == len(kept)
    assert {k: v for k, v in partly_fit.items() if "validation" not in k} == {
        k: v for k, v in kept_fit.items() if "validation" not in k
    }
    model_path = folder / "m.json"
    run_json(capsys, "fit", files["train"], "--val", folder / "partly.csv", "--out", model_path)
    partly_eval = run_json(capsys, "evaluate", model_path, folder / "partly.csv")
    kept_eval = run_json(capsys, "evaluate", model_path, folder / "kept.csv")
    assert partly_eval["n"] == kept_eval["n"] == len(kept)
    assert {k: v for k, v in partly_eval.items() if k != "test"} == {
        k: v for k, v in kept_eval.items() if k != "test"
    }


@pytest.mark.parametrize(
    ("name", "magic"), [("curves.png", b"\x89PNG"), ("curves.svg", b"<?xml"), ("c.PDF", b"%PDF")]
)
def test_plot_format_follows_the_extension(
    capsys: pytest.CaptureFixture[str], files: dict[str, Any], name: str, magic: bytes
) -> None:
    pytest.importorskip("matplotlib")
    curves = files["dir"] / name
    run_json(capsys, "fit", files["train"], "--val", files["val"], "--plot", curves)
    assert curves.read_bytes().startswith(magic)


# ---------------------------------------------------------------- errors: exit 2, one line


@pytest.fixture
def bad_files(files: dict[str, Any]) -> dict[str, Path]:
    folder: Path = files["dir"]
    paths = {
        "text": folder / "text.csv",
        "ragged": folder / "ragged.csv",
        "unlabelled": folder / "unlabelled.csv",
        "one_class": folder / "one_class.csv",
        "negative": folder / "negative.csv",
        "no_mem": folder / "no_mem.csv",
        "not_json": folder / "not_json.json",
        "future": folder / "future.json",
    }
    paths["text"].write_text("cpu,mem\n1,2\n3,abc\n")
    paths["ragged"].write_text("cpu,mem\n1,2\n3,4\n5\n")
    paths["unlabelled"].write_text("cpu,mem\n1,2\n3,4\n")
    paths["one_class"].write_text("cpu,mem,label\n1,2,0\n3,4,0\n")
    # A blank line before the bad row: its line (4) is neither its row (2) nor row + 1.
    paths["negative"].write_text("cpu,mem,label\n5,-3,0\n\n-1,-3,1\n")
    paths["no_mem"].write_text("cpu,label\n1,0\n2,1\n")
    paths["not_json"].write_text("{oops\n")
    paths["future"].write_text(json.dumps({"format": "stream_detect.model", "version": 9}))
    paths["late_number"] = folder / "late_number.csv"
    paths["late_number"].write_text("cpu,mem\n1,\n3,4\n")
    return paths


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["fit", "{dir}/absent.csv"], ["absent.csv", "no such file"]),
        (["fit", "{text}"], ["text.csv:3:", "abc"]),
        (["fit", "{ragged}"], ["ragged.csv:4:", "columns"]),
        (["fit", "{train}", "--val", "{ragged}"], ["ragged.csv:4:"]),
        (["fit", "{train}", "--val", "{unlabelled}"], ["unlabelled.csv:", "no row is labelled"]),
        (["fit", "{train}", "--val", "{one_class}"], ["one_class.csv:", "holds only 0"]),
        (["fit", "{train}", "--val", "{no_mem}"], ["no_mem.csv", "mem"]),
        (
            ["fit", "{train}", "--val", "{negative}", "--transform", "cpu=log"],
            ["negative.csv:4: feature 'cpu' = -1.0 is outside the domain of transform 'log'"],
        ),
        (
            ["fit", "{negative}", "--transform", "cpu=log"],
            ["negative.csv:4: feature 'cpu' = -1.0 is outside the domain of transform 'log'"],
        ),
        (["fit", "{train}", "--transform", "cpu=cube"], ["--transform", "'cube'"]),
        (["fit", "{train}", "--transform", "disk=log"], ["--transform", "'disk=log'", "'cpu'"]),
        (["fit", "{train}", "--transform", "disk=auto"], ["--transform", "'disk=auto'"]),
        (["fit", "{train}", "--plot", "{dir}/p.png"], ["--plot", "labels of both classes"]),
        (["fit", "{train}", "--val", "{val}", "--out", "{dir}/no/m.json"], ["no/m.json"]),
        # A column whose first cell is no number, but later ones are, is not dropped silently.
        (["fit", "{late_number}"], ["late_number.csv:3:", "column 'mem' holds a number (4)"]),
        (["fit", "{train}", "--features", "cpu,label"], ["option --features: got 'cpu,label'"]),
        (["fit", "{train}", "--features", "cpu,disk"], ["train.csv", "'disk'"]),
        # A label column named otherwise than `label` must be in the header.
        (
            ["fit", "{train}", "--label-field", "is_bad"],
            ["train.csv:1:", "label field 'is_bad' is not a column of the CSV header (columns:"],
        ),
        (
            ["fit", "{train}", "--val", "{val}", "--label-field", "is_bad"],
            ["train.csv:1:", "label field 'is_bad'"],
        ),
        (["fit", "{train}", "--transform", "cpu=cube"], ["option --transform: got 'cube'"]),
        # The destinations are checked first: TRAIN does not even exist here.
        (["fit", "{dir}/absent.csv", "--plot", "{dir}/no/p.png"], ["no/p.png", "no such folder"]),
        (["fit", "{dir}/absent.csv", "--out", "{dir}/no/m.json"], ["no/m.json", "no such folder"]),
        # The plot's format comes from its name: any other extension is refused first.
        (["fit", "{dir}/absent.csv", "--plot", "{dir}/p.jpg"], ["p.jpg", ".png, .svg or .pdf"]),
        (["evaluate", "{dir}/absent.json", "{test}", "--plot", "{dir}/p"], ["p:", ".png, .svg"]),
        (["fit", "{dir}/absent.csv", "--out", "{dir}"], ["cannot write model file", "a folder"]),
        (
            ["evaluate", "{dir}/absent.json", "{test}", "--plot", "{dir}/no/p.png"],
            ["no/p.png", "no such folder"],
        ),
        (["evaluate", "{dir}/absent.json", "{test}"], ["absent.json"]),
        (["evaluate", "{not_json}", "{test}"], ["not_json.json is not JSON", "line 1"]),
        (["evaluate", "{future}", "{test}"], ["future.json", "version 9"]),
        (["evaluate", "{train}", "{test}"], ["train.csv is not JSON"]),
    ],
)
def test_errors_are_one_line_naming_the_file(
    capsys: pytest.CaptureFixture[str],
    files: dict[str, Any],
    bad_files: dict[str, Path],
    argv: list[str],
    fragments: list[str],
) -> None:
    names = {**{k: str(v) for k, v in files.items() if isinstance(v, Path)}, **bad_files}
    code, out, err = run(capsys, *(a.format(**names) for a in argv))
    assert_one_line_error(code, out, err, *fragments)


def test_evaluate_errors_on_the_test_file(
    capsys: pytest.CaptureFixture[str], files: dict[str, Any], bad_files: dict[str, Path]
) -> None:
    model_path = files["dir"] / "m.json"
    run_json(capsys, "fit", files["train"], "--val", files["val"], "--out", model_path)
    code, out, err = run(capsys, "evaluate", model_path, bad_files["unlabelled"])
    assert_one_line_error(code, out, err, "unlabelled.csv:", "no row is labelled")
    code, out, err = run(capsys, "evaluate", model_path, bad_files["no_mem"])
    assert_one_line_error(code, out, err, "no_mem.csv", "mem")
    code, out, err = run(capsys, "evaluate", model_path, bad_files["text"])
    assert_one_line_error(code, out, err, "text.csv:3:")
    logged = files["dir"] / "logged.json"
    run_json(
        capsys,
        "fit",
        files["train"],
        "--val",
        files["val"],
        "--transform",
        "cpu=log",
        "--out",
        logged,
    )
    code, out, err = run(capsys, "evaluate", logged, bad_files["negative"])
    assert_one_line_error(code, out, err, "negative.csv:4: feature 'cpu' = -1.0 is outside")
    code, out, err = run(capsys, "evaluate", model_path, files["val"], "--label-field", "is_bad")
    assert_one_line_error(code, out, err, "val.csv:1:", "label field 'is_bad' is not a column")


# ---------------------------------------------------------------- the classic exercise


def _exercise_files(folder: Path, part: int, target: Path) -> tuple[Path, Path]:
    data = scipy.io.loadmat(folder / f"ex8data{part}.mat")
    names = [f"x{j}" for j in range(data["X"].shape[1])]
    train = write_csv(target / f"train{part}.csv", names, data["X"])
    val_rows = np.column_stack([data["Xval"], data["yval"]]).tolist()
    val = write_jsonl(target / f"val{part}.jsonl", [*names, "label"], np.array(val_rows))
    return train, val


@pytest.mark.parametrize(
    ("part", "epsilon", "f1", "n_flagged_train"),
    [(1, 8.990853e-05, 0.875, 6), (2, 1.377229e-18, 0.615385, 117)],
)
def test_fit_classic_reproduces_the_exercise(
    capsys: pytest.CaptureFixture[str],
    shared_data: Path,
    tmp_path: Path,
    part: int,
    epsilon: float,
    f1: float,
    n_flagged_train: int,
) -> None:
    train, val = _exercise_files(shared_data / "ng_ex8", part, tmp_path)
    result = run_json(capsys, "fit", train, "--val", val, "--threshold", "classic")
    assert result["epsilon"] == pytest.approx(epsilon, rel=1e-6)
    assert result["f1"] == pytest.approx(f1, abs=5e-7)
    assert result["n_flagged_train"] == n_flagged_train
    exact = run_json(capsys, "fit", train, "--val", val)
    assert exact["f1"] >= result["f1"]


def test_fit_on_the_exercise_set_1_parameters(
    capsys: pytest.CaptureFixture[str], shared_data: Path, tmp_path: Path
) -> None:
    train, val = _exercise_files(shared_data / "ng_ex8", 1, tmp_path)
    result = run_json(capsys, "fit", train, "--val", val, "--threshold", "classic")
    np.testing.assert_allclose(result["mean"], [14.1122, 14.9977], atol=5e-5)
    np.testing.assert_allclose(result["var"], [1.8326, 1.7097], atol=5e-5)


# ---------------------------------------------------------------- as a real program


def _program(*argv: str | Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream_detect", *(str(a) for a in argv)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )


def test_fit_and_evaluate_as_a_program(files: dict[str, Any]) -> None:
    model_path = files["dir"] / "m.json"
    fitted = _program("fit", files["train"], "--val", files["val"], "--out", model_path)
    assert (fitted.returncode, fitted.stderr) == (0, "")
    report = json.loads(fitted.stdout)
    assert report["f1"] > 0.5
    evaluated = _program("evaluate", model_path, files["test"])
    assert (evaluated.returncode, evaluated.stderr) == (0, "")
    assert json.loads(evaluated.stdout)["n"] == 160


def test_a_dash_names_the_way_to_read_standard_input(
    capsys: pytest.CaptureFixture[str], files: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # "-: no such file" said nothing of /dev/stdin, which these commands read.
    monkeypatch.chdir(files["dir"])
    hint = "'-' names a file here; for standard input, name /dev/stdin"
    model_path = files["dir"] / "m.json"
    run_json(capsys, "fit", files["train"], "--val", files["val"], "--out", model_path)
    for argv in (["fit", "-"], ["inspect", "-"], ["evaluate", model_path, "-"]):
        code, out, err = run(capsys, *argv)
        assert_one_line_error(code, out, err, f"-: no such file ({hint})")
    code, out, err = run(capsys, "evaluate", "-", files["test"])
    assert_one_line_error(code, out, err, f"cannot read model file -: no such file ({hint})")
    fitted = _program("fit", "/dev/stdin", stdin=files["train"].read_text())
    assert (fitted.returncode, fitted.stderr) == (0, "")
    assert json.loads(fitted.stdout)["n"] == 400


def test_an_error_as_a_program(files: dict[str, Any], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("cpu,mem\n1,2\n3,x\n")
    finished = _program("fit", files["train"], "--val", bad)
    assert finished.returncode == 2
    assert finished.stdout == ""
    assert "Traceback" not in finished.stderr
    assert finished.stderr.count("\n") == 1
    assert f"{bad}:3:" in finished.stderr


def test_the_model_file_says_null_where_fit_prints_null(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The classic grid can end on a threshold that flags no validation row: precision
    # has nothing to divide by. fit printed null while its model file said 0.0.
    train = write_csv(tmp_path / "train.csv", ["x"], [[v] for v in (1, 2, 3, 2, 1, 2, 3)])
    val = write_csv(tmp_path / "val.csv", ["x", "label"], [[2, 1], [10, 0]])
    model_path = tmp_path / "model.json"
    fitted = run_json(
        capsys, "fit", train, "--val", val, "--threshold", "grid", "--out", model_path
    )
    assert fitted["precision"] is None and fitted["n_flagged"] == 0
    written = json.loads(model_path.read_text())["validation"]
    assert {key: written[key] for key in ("precision", "recall", "f1")} == {
        key: fitted[key] for key in ("precision", "recall", "f1")
    }
    assert load_model(model_path).validation == written
    # A file written before, with 0.0 where the ratio is undefined, still reads and scores.
    old = json.loads(model_path.read_text())
    old["validation"]["precision"] = 0.0
    model_path.write_text(json.dumps(old))
    assert load_model(model_path).validation == {**written, "precision": 0.0}
    assert run_json(capsys, "evaluate", model_path, val)["n"] == 2


def test_a_label_column_with_every_cell_empty_is_not_called_missing(
    capsys: pytest.CaptureFixture[str], files: dict[str, Any], tmp_path: Path
) -> None:
    # The column is there and unlabels every row: "no 'label' column" sent users
    # looking for a column their file has.
    empty = tmp_path / "empty_labels.csv"
    empty.write_text("cpu,mem,label\n1,2,\n3,4,\n")
    code, out, err = run(capsys, "fit", files["train"], "--val", empty)
    assert_one_line_error(code, out, err, "empty_labels.csv:", "no row is labelled")
    assert "column;" not in err
    model_path = tmp_path / "m.json"
    run_json(capsys, "fit", files["train"], "--val", files["val"], "--out", model_path)
    code, out, err = run(capsys, "evaluate", model_path, empty)
    assert_one_line_error(code, out, err, "empty_labels.csv:", "no row is labelled")
    result = run_json(capsys, "fit", empty)
    assert "no row of TRAIN is labelled in 'label'" in result["note"]


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_labels_in_a_field_named_otherwise_but_for_case_are_pointed_at(
    capsys: pytest.CaptureFixture[str], files: dict[str, Any], tmp_path: Path, suffix: str
) -> None:
    # evaluate said only "'label' is missing or empty in every row", while the answers
    # sat in the file's 'Label' column; fit (features inferred) already named it.
    rows = [(1.0, 2.0, 0), (3.0, 4.0, 1)]
    test = tmp_path / f"test.{suffix}"
    if suffix == "csv":
        test.write_text("cpu,mem,Label\n" + "".join(f"{a},{b},{y}\n" for a, b, y in rows))
    else:
        test.write_text(
            "".join(json.dumps({"cpu": a, "mem": b, "Label": y}) + "\n" for a, b, y in rows)
        )
    hint = (
        "field 'Label' is there, but it is not the label field 'label' (names match exactly, "
        "case included): name it with --label-field Label"
    )
    model_path = tmp_path / "m.json"
    run_json(capsys, "fit", files["train"], "--val", files["val"], "--out", model_path)
    code, out, err = run(capsys, "evaluate", model_path, test)
    assert_one_line_error(code, out, err, f"test.{suffix}:", "no row is labelled", hint)
    code, out, err = run(capsys, "fit", files["train"], "--val", test)
    assert_one_line_error(code, out, err, f"test.{suffix}:", "no row is labelled", hint)
    assert run_json(capsys, "evaluate", model_path, test, "--label-field", "Label")["n"] == 2
    result = run_json(capsys, "fit", test, "--features", "cpu,mem")
    assert result["note"].endswith(hint)


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs Linux's /sys")
@pytest.mark.parametrize(
    ("option", "path", "message"),
    [
        ("--plot", "/sys/curves.png", "/sys/curves.png: cannot write the plot: "),
        ("--out", "/sys/m.json", "cannot write model file /sys/m.json: "),
    ],
)
def test_a_folder_no_file_can_be_made_in_is_refused_before_reading(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, option: str, path: str, message: str
) -> None:
    # Only the folder's existence was checked first: such an output failed once TRAIN
    # was read and the model fitted (here, TRAIN's absence was said first).
    pytest.importorskip("matplotlib")
    code, out, err = run(capsys, "fit", tmp_path / "absent.csv", option, path)
    assert_one_line_error(code, out, err, message)


def test_a_variance_below_the_float_range_is_held_in_the_features_scaled_units(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # fit reported 0.0 (then null) for x: its variance underflowed. Its values are now
    # fitted times the power of two that brings the first into [1, 2), as run scales them.
    path = tmp_path / "tiny.csv"
    path.write_text("x,c,y,label\n1e-300,1e-300,1,0\n-1e-300,1e-300,2,1\n2e-300,1e-300,4,0\n")
    report = run_json(capsys, "fit", path)
    k = 1 - math.frexp(1e-300)[1]
    assert report["unit_exponents"] == {"x": k, "c": k}
    scaled = np.ldexp([1e-300, -1e-300, 2e-300], k)
    # Constant is constant, and an ordinary variance is as the model holds it.
    assert report["var"] == [pytest.approx(np.var(scaled), rel=1e-12), 0.0, pytest.approx(14 / 9)]
    assert load_model_var(capsys, path, tmp_path) == report["var"]
    code, out, _ = run(capsys, "inspect", path, "--json", "--no-progress")
    assert code == 0
    assert [f["variance"] for f in json.loads(out)["features"]][:2] == [None, 0.0]
    # Differing values that the transform makes equal (log(1 + 1e-300) is 0) vary no more.
    assert run_json(capsys, "fit", path, "--transform", "x=log:1")["var"][0] == 0.0


def load_model_var(capsys: pytest.CaptureFixture[str], path: Path, tmp_path: Path) -> Any:
    """The variances of the model file fit writes for ``path``: what scoring uses, unchanged."""
    model_path = tmp_path / "model.json"
    run_json(capsys, "fit", path, "--out", model_path)
    return load_model(model_path).var.tolist()
