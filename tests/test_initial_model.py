"""``stream-detect run --initial-model``: a stream that starts from a model ``fit`` wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stream_detect.cli import main
from stream_detect.feature_transforms import FeatureTransforms
from stream_detect.fitted_model import ModelKind
from stream_detect.fitting import fit_model
from stream_detect.gaussian_model import GaussianModel
from stream_detect.modelfile import load_model, save_model
from stream_detect.state import load_checkpoint


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


def summary_of(stderr: str) -> dict[str, Any]:
    lines = [line for line in stderr.splitlines() if line.startswith('{"summary"')]
    assert lines, stderr[-2000:]
    summary: dict[str, Any] = json.loads(lines[-1])["summary"]
    return summary


@pytest.fixture
def fitted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A model written by ``stream-detect fit --out``, with y log-transformed and log ε set."""
    rng = np.random.default_rng(3)
    train = tmp_path / "train.csv"
    rows = [
        f"{x},{y}" for x, y in zip(rng.normal(size=500), rng.lognormal(1.0, 0.3, 500), strict=True)
    ]
    train.write_text("x,y\n" + "\n".join(rows) + "\n")
    path = tmp_path / "model.json"
    assert main(["fit", str(train), "--transform", "y=log", "--out", str(path)]) == 0
    capsys.readouterr()
    save_model(load_model(path).with_threshold(-12.0, "exact"), path)
    return path


def stream_events(count: int = 100) -> list[dict[str, Any]]:
    rng = np.random.default_rng(4)
    xs, ys = rng.normal(size=count), rng.lognormal(1.0, 0.3, count)
    events = [{"x": float(x), "y": float(y)} for x, y in zip(xs, ys, strict=True)]
    events[10] = {"x": 9.0, "y": 2.7}
    return events


def run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, list[dict[str, Any]], str]:
    source, out = tmp_path / "events.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(jsonl(stream_events()))
    status = main(["run", "--source", f"file:{source}", "--sink", f"file:{out}", *args])
    err = capsys.readouterr().err
    results = [json.loads(line) for line in out.read_bytes().splitlines()] if status == 0 else []
    return status, results, err


def test_a_run_starts_from_the_fitted_model_and_keeps_learning(
    fitted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = tmp_path / "state.json"
    status, results, err = run(
        tmp_path, capsys, "--initial-model", str(fitted), "--emit", "all",
        "--checkpoint", str(checkpoint), "--retune-every", "0", "--retune-seconds", "0",
    )  # fmt: skip
    assert status == 0, err
    model = load_model(fitted)
    first = results[0]
    # No warm-up: the first event is judged by the fitted model, with its log ε.
    assert (first["n"], first["warmup"], first["log_epsilon"]) == (500, False, -12.0)
    expected = model.log_p(np.array([[first["x"], first["y"]]]))[0]
    assert first["log_p"] == pytest.approx(expected, rel=1e-12)
    assert [i for i, r in enumerate(results) if r["alert"]] == [10]
    summary = summary_of(err)
    assert summary["resumed_from"] == {"initial_model": str(fitted)}
    saved = load_checkpoint(checkpoint)
    assert saved is not None
    assert saved.detector["transforms"] == {"y": "log"}
    (state,) = saved.detector["models"]
    # Every event is learned: the one alert (it starts a run) clipped to 6 sigma.
    assert state["learned"] == 500 + 100 and state["state"]["stats"]["n"] == 600.0


def test_the_log_epsilon_the_run_names_wins(
    fitted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, results, err = run(
        tmp_path, capsys, "--initial-model", str(fitted), "--emit", "all", "--log-epsilon", "-30"
    )
    assert status == 0, err
    assert {r["log_epsilon"] for r in results} == {-30.0}


@pytest.mark.parametrize("kind", ["diagonal", "full"])
def test_with_keys_every_key_starts_from_the_model_and_flags_what_it_flags(
    kind: ModelKind, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A quiet model (sigma 0.001), so log p(x) is far above the scale-free score: its
    # log epsilon compared as it is with the scale-free score made every event an alert.
    rng = np.random.default_rng(21)
    fitted = fit_model(rng.normal(0.0, 0.001, (500, 2)), ["x", "y"], kind=kind)
    at_5_sigma = float(fitted.log_p(np.array([[0.005, 0.0]]))[0])
    path = tmp_path / "quiet.json"
    save_model(fitted.with_threshold(at_5_sigma, "exact"), path)
    events = [
        {"key": f"k{i % 3}", "x": float(x), "y": float(y)}
        for i, (x, y) in enumerate(rng.normal(0.0, 0.001, (60, 2)))
    ]
    events[31]["x"] = 0.02  # 20 sigma out
    source = tmp_path / "events.jsonl"
    source.write_bytes(jsonl(events))
    results = {}
    for name, extra in (
        ("one", []),
        ("keyed", ["--key-field", "key"]),
        ("one slot", ["--key-field", "key", "--max-keys", "1"]),
    ):
        out = tmp_path / f"{name}.jsonl"
        args = ["run", "--source", f"file:{source}", "--sink", f"file:{out}", "--emit", "all"]
        assert main([*args, "--initial-model", str(path), *extra]) == 0
        capsys.readouterr()
        results[name] = [json.loads(line) for line in out.read_bytes().splitlines()]
    one, keyed, evicting = results["one"], results["keyed"], results["one slot"]
    for row in keyed[:3] + evicting:
        # No warm-up for any key, nor for a key evicted and seen again: each starts
        # from the fitted model, and its score is the model's log p moved by one constant.
        assert not row["warmup"] and row["n"] >= 500
    first = keyed[0]
    moved = at_5_sigma + first["score"] - first["log_p"]
    assert all(row["log_epsilon"] == pytest.approx(moved, abs=1e-9) for row in keyed)
    for rows in (one, keyed, evicting):
        assert [i for i, row in enumerate(rows) if row["alert"]] == [31]


def test_an_alert_budget_sets_the_threshold_instead_of_the_model(
    fitted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It was refused as "--alerts-per-day expected no log_epsilon", though the run gave
    # none: the model file's had been taken as the run's.
    status, results, err = run(
        tmp_path, capsys, "--initial-model", str(fitted), "--emit", "all",
        "--alerts-per-day", "5", "--events-per-day", "1000",
    )  # fmt: skip
    assert status == 0, err
    assert summary_of(err)["epsilon_source"] in ("default", "budget")
    assert results[0]["log_epsilon"] != -12.0 and not results[0]["warmup"]


def test_the_config_key_names_the_model_too(
    fitted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(f'initial_model = "{fitted}"\nemit = "all"\n')
    status, results, err = run(tmp_path, capsys, "--config", str(config))
    assert status == 0, err
    assert results[0]["n"] == 500 and not results[0]["warmup"]


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--features", "x"], ["features", "['x']", "['x', 'y']"]),
        (["--transform", "y=sqrt"], ["transforms", "'sqrt'", "'log'"]),
        (["--model", "river:HalfSpaceTrees"], ["river:HalfSpaceTrees", "'diagonal'"]),
        # A model feature given a role was reported as "config key features", not the file.
        (["--label-field", "y"], ["features", "['x', 'y']", "'y'", "label_field"]),
        (["--key-field", "x"], ["features", "['x', 'y']", "'x'", "key_field"]),
    ],
)
def test_settings_that_contradict_the_model_are_one_line_and_exit_2(
    fitted: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    words: list[str],
) -> None:
    status, _, err = run(tmp_path, capsys, "--initial-model", str(fitted), *flags)
    assert status == 2
    (line,) = err.splitlines()
    assert str(fitted) in line and all(word in line for word in words), line


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"mean": [1e308, 1.0]}, "mean holds 1e+308"),
        ({"var": [1e307, 1.0]}, "var holds 1e+307"),
        ({"n": 1e300}, "n is 1e+300"),
    ],
)
@pytest.mark.parametrize("flags", [[], ["--no-prior"]])
def test_a_model_file_too_large_to_learn_on_is_one_line_and_exit_2(
    fitted: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, Any],
    words: str,
    flags: list[str],
) -> None:
    # Such a model ended a run with a traceback, or learned on from sums of infinity.
    fitted.write_text(json.dumps({**json.loads(fitted.read_text()), **change}))
    status, _, err = run(tmp_path, capsys, "--initial-model", str(fitted), *flags)
    assert status == 2
    (line,) = err.splitlines()
    assert str(fitted) in line and words in line, line


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"mean": ["0", "1"]}, "mean[0] is '0', expected a number"),
        ({"var": [1.0, False]}, "var[1] is False, expected a number"),
        ({"version": True}, "version is True, expected the integer 1"),
    ],
)
def test_a_model_file_of_the_wrong_types_is_one_line_and_exit_2(
    fitted: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, Any],
    words: str,
) -> None:
    # Text numbers were read as numbers and true as version 1, by run and evaluate alike.
    fitted.write_text(json.dumps({**json.loads(fitted.read_text()), **change}))
    status, _, err = run(tmp_path, capsys, "--initial-model", str(fitted))
    assert status == 2
    (line,) = err.splitlines()
    assert str(fitted) in line and words in line, line
    data = tmp_path / "events.jsonl"
    assert main(["evaluate", str(fitted), str(data)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert str(fitted) in line and words in line, line


def test_evaluate_names_the_model_file_whose_features_hold_the_label_column(
    fitted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It was reported as "config key features", a key evaluate does not even have.
    test = tmp_path / "test.csv"
    test.write_text("x,y\n0.5,2.0\n")
    assert main(["evaluate", str(fitted), str(test), "--label-field", "y"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert f"model file {fitted}: features is ['x', 'y']" in line, line
    assert "--label-field" in line and "config key" not in line, line


def test_the_same_features_and_transforms_are_accepted(
    fitted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--features", "x,y", "--transform", "y=log", "--emit", "all"]
    status, results, err = run(tmp_path, capsys, "--initial-model", str(fitted), *flags)
    assert status == 0, err
    assert results[0]["n"] == 500


def test_a_model_file_given_as_checkpoint_points_to_initial_model(
    fitted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(tmp_path, capsys, "--checkpoint", str(fitted))
    assert status == 2
    (line,) = err.splitlines()
    assert "--initial-model" in line and str(fitted) in line


def test_a_checkpoint_wins_over_the_initial_model_at_restart(
    fitted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = tmp_path / "state.json"
    flags = ["--initial-model", str(fitted), "--checkpoint", str(checkpoint)]
    assert run(tmp_path, capsys, *flags)[0] == 0
    (tmp_path / "out.jsonl").unlink()
    status, results, err = run(tmp_path, capsys, *flags, "--emit", "all")
    assert status == 0, err
    assert results == []  # the file was read to its end before the restart
    saved = load_checkpoint(checkpoint)
    assert saved is not None and saved.detector["models"][0]["learned"] == 600  # alert clipped


def test_the_streaming_model_of_a_fit_scores_as_the_fit_does() -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 3)) @ np.array([[1.0, 0.4, 0.0], [0.0, 1.0, 0.3], [0, 0, 1.0]])
    for kind in ("diagonal", "full"):
        model = fit_model(X[:200], ["a", "b", "c"], kind=kind, transforms=FeatureTransforms())
        stream = model.streaming_model()
        assert isinstance(stream, GaussianModel) and stream.full == (kind == "full")
        np.testing.assert_array_equal(stream.score(X[200:]).log_p, model.log_p(X[200:]))
        # Learning on equals having fitted on everything.
        stream.learn(X[200:])
        everything = fit_model(X, ["a", "b", "c"], kind=kind)
        np.testing.assert_allclose(stream.stats.mean, everything.mean, rtol=1e-12)
        np.testing.assert_allclose(stream.score(X[:5]).log_p, everything.log_p(X[:5]), rtol=1e-9)
