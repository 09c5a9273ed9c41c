"""Tests of ``stream-detect inspect``: the streaming summary, the sample, the CLI and its errors."""

from __future__ import annotations

import functools
import io
import json
import math
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.stats

from stream_detect import inspection
from stream_detect.cli import main
from stream_detect.commands.inspect import format_table
from stream_detect.errors import ConfigError, InputError
from stream_detect.histogram_plot import MAX_HISTOGRAM_FEATURES
from stream_detect.inspection import inspect_chunks, inspect_file
from stream_detect.reservoir import RowReservoir

REPO = Path(__file__).resolve().parents[1]
N_ROWS = 3000


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def make_columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "cpu": rng.normal(50.0, 5.0, n),
        "bytes": rng.lognormal(3.0, 1.0, n),
        "latency": rng.exponential(2.0, n),
        "offset": rng.lognormal(0.0, 1.0, n) - 2.0,
        "errors": np.where(rng.random(n) < 0.25, 0.0, rng.normal(0.0, 1.0, n)),
    }


def write_csv(path: Path, columns: dict[str, np.ndarray], labels: np.ndarray | None) -> Path:
    names = list(columns)
    table = np.column_stack([columns[name] for name in names])
    header = ",".join(["host", *names] + (["label"] if labels is not None else []))
    lines = [header]
    for i, row in enumerate(table):
        cells = [f"h{i % 3}", *(repr(float(v)) for v in row)]
        if labels is not None:
            cells.append(str(int(labels[i])))
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def data_csv(tmp_path: Path) -> Path:
    labels = (np.arange(N_ROWS) % 50 == 0).astype(int)
    return write_csv(tmp_path / "events.csv", make_columns(N_ROWS), labels)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["inspect", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# ---------------------------------------------------------------- RowReservoir


def test_reservoir_keeps_a_short_stream_whole_and_in_order() -> None:
    reservoir = RowReservoir(100, d=2, seed=1)
    X = np.arange(60.0).reshape(30, 2)
    reservoir.add(X[:7])
    reservoir.add(X[7:])
    assert np.array_equal(reservoir.sample, X)
    assert reservoir.seen == 30


@pytest.mark.parametrize("chunks", [[1000], [10, 990], [3, 500, 1, 496], [1] * 30 + [970]])
def test_reservoir_gives_every_row_the_same_chance(chunks: list[int]) -> None:
    capacity, n, trials = 10, 1000, 600
    counts = np.zeros(n)
    X = np.arange(float(n))[:, None]
    for seed in range(trials):
        reservoir = RowReservoir(capacity, d=1, seed=seed)
        start = 0
        for size in chunks:
            reservoir.add(X[start : start + size])
            start += size
        sample = reservoir.sample[:, 0].astype(int)
        assert sample.size == capacity and np.unique(sample).size == capacity
        counts[sample] += 1
    # Each row is kept with probability capacity / n; compare tenths of the stream,
    # each expected to hold trials * capacity / 10 = 600 inclusions (sd about 23).
    per_tenth = counts.reshape(10, -1).sum(axis=1)
    assert np.all(np.abs(per_tenth - trials * capacity / 10) < 6 * math.sqrt(600))


def test_reservoir_rejects_zero_capacity() -> None:
    with pytest.raises(ValueError):
        RowReservoir(0, d=1)


# ---------------------------------------------------------------- inspect_chunks


def chunked(
    X: np.ndarray, y: np.ndarray | None, features: list[str], sizes: list[int]
) -> list[SimpleNamespace]:
    out, start = [], 0
    for size in sizes:
        part_y = None if y is None else y[start : start + size]
        out.append(SimpleNamespace(X=X[start : start + size], y=part_y, features=features))
        start += size
    return out


def test_streaming_statistics_equal_numpy_on_the_whole_table() -> None:
    columns = make_columns(5000, seed=3)
    names = list(columns)
    X = np.column_stack([columns[n] for n in names])
    y = (np.arange(5000) % 100 == 0).astype(np.int8)
    report = inspect_chunks(chunked(X, y, names, [1, 999, 2500, 1500]), "t", sample_rows=700)
    assert report.rows == 5000
    assert report.labels == {"anomalous": 50, "normal": 4950}
    assert report.sample_rows == 700
    assert report.feature_names == names
    for j, feature in enumerate(report.features):
        column = X[:, j]
        assert feature.count == 5000
        assert feature.mean == pytest.approx(column.mean(), rel=1e-12, abs=1e-12)
        assert feature.variance == pytest.approx(column.var(), rel=1e-10)
        assert feature.skewness == pytest.approx(scipy.stats.skew(column), rel=1e-8, abs=1e-10)
        assert feature.minimum == column.min() and feature.maximum == column.max()
        assert feature.zero_share == np.mean(column == 0)
        assert feature.negative_share == np.mean(column < 0)
        # before, and after "none", the skewness is the exact one, not the sample's
        assert feature.suggestion.skew_before == feature.skewness
        if feature.suggestion.transform.is_identity:
            assert feature.suggestion.skew_after == feature.skewness
    specs = report.transforms.to_dict()
    assert specs["bytes"] == "log"
    assert specs["offset"].startswith("log:")
    assert specs["latency"].startswith(("sqrt", "root:"))
    assert "cpu" not in specs


def test_sample_is_bounded_and_suggestions_use_it() -> None:
    X = np.random.default_rng(0).lognormal(size=(20_000, 1))
    report = inspect_chunks(chunked(X, None, ["x"], [20_000]), "t", sample_rows=500, seed=7)
    assert report.sample.shape == (500, 1)
    assert set(report.sample[:, 0]).issubset(set(X[:, 0]))
    assert report.labels is None
    again = inspect_chunks(chunked(X, None, ["x"], [20_000]), "t", sample_rows=500, seed=7)
    assert np.array_equal(again.sample, report.sample)


def test_inspect_chunks_errors() -> None:
    with pytest.raises(InputError, match="no data rows"):
        inspect_chunks([], "empty.csv")
    with pytest.raises(InputError, match="no data rows"):
        inspect_chunks([SimpleNamespace(X=np.empty((0, 1)), y=None, features=["a"])], "e")
    chunks = [
        SimpleNamespace(X=np.ones((2, 1)), y=None, features=["a"]),
        SimpleNamespace(X=np.ones((2, 1)), y=None, features=["b"]),
    ]
    with pytest.raises(InputError, match="features changed"):
        inspect_chunks(chunks, "t")
    with pytest.raises(ConfigError):
        inspect_chunks([], "t", sample_rows=0)
    with pytest.raises(ConfigError, match="seed"):
        inspect_chunks([SimpleNamespace(X=np.ones((2, 1)), y=None, features=["a"])], "t", seed=-1)
    with pytest.raises(InputError, match="no numeric features"):
        inspect_chunks([SimpleNamespace(X=np.empty((3, 0)), y=None, features=[])], "t")


def test_to_dict_is_strict_json() -> None:
    X = np.array([[1.0], [1.0]])
    report = inspect_chunks(chunked(X, None, ["const"], [2]), "t")
    text = json.dumps(report.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert data["features"][0]["skewness"] == 0.0
    assert data["transforms"] == {}


def test_table_notes_the_sample_and_the_flags() -> None:
    X = np.random.default_rng(0).lognormal(size=(2000, 1))
    report = inspect_chunks(chunked(X, None, ["bytes"], [2000]), "big.csv", sample_rows=100)
    text = format_table(report, plot="h.png")
    assert "uniform sample of 100 of 2,000 rows" in text
    assert "--transform bytes=log" in text
    assert text.splitlines()[-1] == "histograms: h.png"


def test_the_headline_of_one_row_says_row() -> None:
    report = inspect_chunks(chunked(np.array([[1.0]]), None, ["x"], [1]), "one.csv")
    assert format_table(report).splitlines()[0] == "one.csv: 1 row, 1 feature, no labels"


def test_a_rare_zero_is_not_shown_as_none() -> None:
    # One zero in 20,000 rows read "0.0%", yet it is what makes log refuse the feature.
    X = np.ones((20000, 1))
    X[7, 0] = 0.0
    report = inspect_chunks(chunked(X, None, ["x"], [20000]), "rare.csv")
    row = format_table(report).splitlines()[2].split()
    assert row[0] == "x" and row[5:7] == ["<0.1%", "0.0%"]


def test_a_suggestion_from_a_sample_holds_for_every_row() -> None:
    # The sample missed the file's one zero, and "log" was suggested (and printed as
    # --transform x=log), which fit then refused at that zero's line.
    X = np.random.default_rng(1).lognormal(2.0, 1.0, size=(20000, 1))
    X[12345, 0] = 0.0
    report = inspect_chunks(chunked(X, None, ["x"], [20000]), "rz.csv", sample_rows=1000)
    assert np.all(report.sample > 0.0)  # the zero is not in the sample
    transform = report.features[0].suggestion.transform
    assert transform.spec.startswith("log:")
    assert np.all(np.isfinite(transform.forward(X[:, 0])))


def test_names_that_do_not_print_are_escaped_and_flags_quoted() -> None:
    # A line break in a JSON field's name broke the table, an escape sequence reached
    # the terminal, and a name with a space gave a flag that could not be pasted.
    X = np.random.default_rng(0).lognormal(size=(500, 3))
    names = ["a\nb", "\x1b[31mred", "cpu load"]
    text = format_table(inspect_chunks(chunked(X, None, names, [500]), "n.jsonl"))
    lines = text.splitlines()
    assert len(lines) == 6 and "\x1b" not in text
    assert [line.split()[0] for line in lines[2:4]] == ["'a\\nb'", "'\\x1b[31mred'"]
    assert lines[4].startswith("cpu load ")
    assert "--transform 'cpu load=log'" in lines[5]


# ---------------------------------------------------------------- the command, in process


def test_inspect_prints_a_table(capsys: pytest.CaptureFixture[str], data_csv: Path) -> None:
    status, out, err = run_cli(capsys, str(data_csv), "--no-progress")
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"{data_csv}: 3,000 rows, 5 features, labels: 60 anomalous, 2,940 normal"
    assert lines[1].split() == [
        "feature", "count", "mean", "variance", "skewness", "zeros", "negatives",
        "suggested", "skew", "after",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[2:7]}
    assert list(rows) == ["cpu", "bytes", "latency", "offset", "errors"]
    assert "label" not in rows and "host" not in rows
    assert rows["bytes"][7] == "log"
    assert rows["offset"][7].startswith("log:")
    assert rows["cpu"][7] == "none"
    zeros = np.mean(make_columns(N_ROWS)["errors"] == 0)
    assert rows["errors"][5] == f"{100 * zeros:.1f}%"
    assert "--transform bytes=log" in out


def test_inspect_json_matches_numpy(capsys: pytest.CaptureFixture[str], data_csv: Path) -> None:
    status, out, _ = run_cli(capsys, str(data_csv), "--json", "--no-progress")
    assert status == 0
    report = json.loads(out)
    columns = make_columns(N_ROWS)
    assert report["rows"] == N_ROWS and report["d"] == 5
    assert report["labels"] == {"anomalous": 60, "normal": 2940}
    assert report["plot"] is None
    for feature in report["features"]:
        column = columns[feature["name"]]
        assert feature["count"] == N_ROWS
        assert feature["mean"] == pytest.approx(column.mean(), rel=1e-12)
        assert feature["variance"] == pytest.approx(column.var(), rel=1e-10)
        assert feature["skewness"] == pytest.approx(scipy.stats.skew(column), rel=1e-8)
        assert feature["negative_share"] == pytest.approx(np.mean(column < 0))
        assert feature["zero_share"] == pytest.approx(np.mean(column == 0))
    assert report["transforms"]["bytes"] == "log"


def test_inspect_json_lines_with_features_and_no_labels(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    rng = np.random.default_rng(0)
    path.write_text(
        "".join(
            json.dumps({"a": float(a), "b": float(b), "label": 0}) + "\n"
            for a, b in zip(rng.lognormal(size=500), rng.normal(size=500), strict=True)
        )
    )
    status, out, _ = run_cli(capsys, str(path), "--json", "--features", "b", "--no-progress")
    assert status == 0
    report = json.loads(out)
    assert [f["name"] for f in report["features"]] == ["b"]
    assert report["labels"] == {"anomalous": 0, "normal": 500}
    status, out, _ = run_cli(capsys, str(path), "--json", "--label-field", "none", "--no-progress")
    report = json.loads(out)
    assert report["labels"] is None
    assert [f["name"] for f in report["features"]] == ["a", "b", "label"]


def test_inspect_accepts_a_partly_labelled_file_as_run_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "partly.csv"
    path.write_text("x,label\n1,0\n2,\n3,1\n4,\n")
    status, out, _ = run_cli(capsys, str(path), "--json", "--no-progress")
    assert status == 0
    report = json.loads(out)
    assert report["rows"] == 4
    assert report["labels"] == {"anomalous": 1, "normal": 1}
    status, _, err = run_cli(capsys, str(path), "--label-field", "", "--no-progress")
    assert status == 2
    assert "--label-field" in err and "none" in err


def test_on_features_is_called_before_the_second_chunk_is_read() -> None:
    def chunks() -> Iterator[SimpleNamespace]:
        yield SimpleNamespace(X=np.ones((2, 2)), y=None, features=["a", "b"])
        raise AssertionError("the second chunk was asked for")

    def refuse(features: list[str]) -> None:
        raise ConfigError("--plot", "h.png", f"fewer than {len(features)} features")

    with pytest.raises(ConfigError, match="fewer than 2 features"):
        inspect_chunks(chunks(), "t", on_features=refuse)


@pytest.mark.parametrize("named", [False, True])
def test_plot_of_too_many_features_names_the_flags_and_is_refused_early(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, named: bool
) -> None:
    names = [f"c{i}" for i in range(MAX_HISTOGRAM_FEATURES + 1)]
    path = tmp_path / "wide.csv"
    row = ",".join("1" for _ in names)
    path.write_text(",".join(names) + "\n" + row + "\n" + row + "\n")
    argv = ["--features", ",".join(names)] if named else []
    plot = tmp_path / "h.png"
    status, out, err = run_cli(capsys, str(path), "--plot", str(plot), *argv)
    assert status == 2 and out == ""
    assert err == (
        f"stream-detect inspect: error: option --plot: got '{plot}', expected at most "
        f"{MAX_HISTOGRAM_FEATURES} features to draw, one row of histograms each; there are "
        f"{len(names)}: choose some with --features\n"
    )
    assert not plot.exists()


def test_inspect_plot_writes_a_png_of_the_documented_size(
    capsys: pytest.CaptureFixture[str], data_csv: Path, tmp_path: Path
) -> None:
    plot = tmp_path / "hist.png"
    status, out, _ = run_cli(capsys, str(data_csv), "--plot", str(plot), "--json", "--no-progress")
    assert status == 0
    assert json.loads(out)["plot"] == str(plot)
    assert png_size(plot) == (1000, 250 * 5)


def test_inspect_large_file_is_sampled_and_exact(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # More rows than one chunk of the table reader (65,536 lines), so moments are merged.
    n = 70_000
    rng = np.random.default_rng(11)
    columns = {"x": rng.lognormal(size=n), "y": rng.normal(size=n)}
    path = tmp_path / "big.csv"
    body = np.column_stack([columns["x"], columns["y"]])
    with path.open("w") as handle:
        handle.write("x,y\n")
        np.savetxt(handle, body, delimiter=",", fmt="%.17g")
    status, out, _ = run_cli(capsys, str(path), "--json", "--sample-rows", "5000", "--no-progress")
    assert status == 0
    report = json.loads(out)
    assert report["rows"] == n and report["sample_rows"] == 5000
    for feature in report["features"]:
        column = columns[feature["name"]]
        assert feature["mean"] == pytest.approx(column.mean(), rel=1e-12)
        assert feature["skewness"] == pytest.approx(scipy.stats.skew(column), rel=1e-8)
    assert report["transforms"] == {"x": "log"}


@pytest.mark.parametrize(
    ("content", "argv", "fragment"),
    [
        ("a,b\n1,2\n3,x\n", [], "bad.csv:3:"),
        ("a,b\n1,2\n3\n", [], "bad.csv:3:"),
        ("a,b\n", [], "no data rows"),
        ("", [], "empty"),
        ("a,b\n1,2\n", ["--features", "a,zz"], "zz"),
        ("a,b\n1,2\n", ["--features", "a,,b"], "--features"),
        ("a,b\n1,2\n", ["--sample-rows", "0"], "--sample-rows"),
        ("a,b\n1,2\n", ["--plot", "/nonexistent-folder/h.png"], "no such folder"),
        ("a,b\n1,2\n", ["--features", "a,a"], "each at most once"),
        ("a,b\n1,\n2,3\n", [], "bad.csv:3: column 'b' holds a number (3) but is not a feature"),
        ("a,b\n1,2\n", ["--sample-rows", "0"], "option --sample-rows: got 0"),
        ("a,b\n1,2\n", ["--seed", "-1"], "option --seed: got -1, expected an integer >= 0"),
        (
            "a,b\n1,2\n",
            ["--seed", "1", "--seed", "2"],
            "option --seed: got 2, expected --seed once",
        ),
        ("a,b\n1,2\n", ["--sample-rows", "5", "--sample-rows", "9"], "expected --sample-rows once"),
        ("a,b\n1,2\n", ["--plot", "a.png", "--plot", "b.png"], "expected --plot once"),
        ("a,b\n1,2\n", ["--label-field", "a", "--label-field", "b"], "expected --label-field once"),
    ],
)
def test_inspect_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    content: str,
    argv: list[str],
    fragment: str,
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    status, out, err = run_cli(capsys, str(path), *argv)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("stream-detect inspect: error: ")
    assert fragment in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [[""], ["data.csv", "--plot", ""]])
def test_inspect_empty_file_name(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    # It was ": no such file" (and ": cannot write the plot: it is a folder"): a message
    # about a file with no name.
    with pytest.raises(SystemExit) as stopped:
        run_cli(capsys, *argv)
    captured = capsys.readouterr()
    assert (stopped.value.code, captured.out) == (2, "")
    which = "DATA" if argv == [""] else "--plot"
    assert captured.err.startswith(
        f"stream-detect inspect: error: argument {which}: got '', expected a file name"
    )
    assert captured.err.count("\n") == 1


def test_inspect_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run_cli(capsys, str(tmp_path / "nope.csv"))
    assert status == 2
    assert err == f"stream-detect inspect: error: {tmp_path / 'nope.csv'}: no such file\n"


def test_inspect_drives_a_progress_bar_by_bytes(
    data_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No delay, so even this small file reports; the stream is not a terminal.
    monkeypatch.setattr(inspection, "Progress", functools.partial(inspection.Progress, delay=0.0))
    stream = io.StringIO()
    inspect_file(str(data_csv), progress_stream=stream)
    lines = stream.getvalue().splitlines()
    size = data_csv.stat().st_size
    assert lines[-1].startswith(f"inspect events.csv: done, {size / 1024:.1f} KiB in ")
    assert len(lines) <= 3


def test_progress_is_quiet_on_error(data_csv: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a\n1\nx\n")
    stream = io.StringIO()
    with pytest.raises(InputError):
        inspect_file(str(bad), progress_stream=stream)
    assert stream.getvalue() == ""


# ---------------------------------------------------------------- a real process


def run_process(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream_detect", "inspect", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )


def test_subprocess_json(data_csv: Path) -> None:
    result = run_process(str(data_csv), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["transforms"]["bytes"] == "log"
    assert "Traceback" not in result.stderr


def test_subprocess_bad_cell_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n3,abc\n")
    result = run_process(str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"stream-detect inspect: error: {path}:3: ")
    assert "Traceback" not in result.stderr


def test_subprocess_missing_file(tmp_path: Path) -> None:
    result = run_process(str(tmp_path / "missing.jsonl"))
    assert result.returncode == 2
    assert result.stderr.strip().endswith("missing.jsonl: no such file")
    assert "Traceback" not in result.stderr


def test_the_plot_destination_is_checked_before_the_file_is_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The data file does not exist either: the plot's folder is what is reported.
    status, _, err = run_cli(capsys, str(tmp_path / "nope.csv"), "--plot", str(tmp_path))
    assert status == 2
    assert (
        err == f"stream-detect inspect: error: {tmp_path}: cannot write the plot: it is a folder\n"
    )


def test_subprocess_values_near_the_float_limit_plot_quietly(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("x,y\n1e308,1\n-1e308,2\n1e307,3\n0,4\n1.7e308,5\n")
    plot = tmp_path / "big.png"
    result = run_process(str(path), "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # neither a traceback nor a RuntimeWarning
    assert png_size(plot) == (1000, 500)
    result = run_process(str(path), "--json", "--no-progress")
    assert result.returncode == 0 and result.stderr == ""
    assert json.loads(result.stdout)["features"][0]["max"] == 1.7e308


def test_values_below_1e_300_keep_their_skewness_and_their_variance_is_na(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The variance underflowed to 0 and the skewness printed 0 for skewed data.
    x = 10.0 ** np.random.default_rng(3).uniform(-320, -300, size=2000)
    path = tmp_path / "tiny.csv"
    path.write_text("x\n" + "".join(f"{float(v)!r}\n" for v in x))
    status, out, _ = run_cli(capsys, str(path), "--json", "--no-progress")
    assert status == 0
    (feature,) = json.loads(out)["features"]
    expected = scipy.stats.skew(x / np.max(x), bias=True)
    assert expected > 5 and feature["skewness"] == pytest.approx(expected, rel=1e-9)
    assert feature["variance"] is None
    status, out, _ = run_cli(capsys, str(path), "--no-progress")
    assert status == 0
    row = next(line.split() for line in out.splitlines() if line.startswith("x "))
    assert row[3] == "n/a" and float(row[4]) == pytest.approx(expected, rel=1e-3)
