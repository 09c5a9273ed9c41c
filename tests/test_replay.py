"""`stream-detect replay`: metrics, NAB windows, JSON output and the plot."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from stream_detect.cli import main
from stream_detect.replay import evaluate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _write_series(path: Path, rows: int = 1500) -> list[str]:
    rng = np.random.default_rng(4)
    values = 50 + rng.normal(0, 3, rows)
    label = np.zeros(rows, dtype=int)
    values[1200:1205] += 40
    label[1200:1205] = 1
    hours = np.datetime64("2014-04-01T00:00") + np.arange(rows) * np.timedelta64(1, "h")
    stamps = [str(h).replace("T", " ") + ":00" for h in hours]
    lines = ["timestamp,value,label"] + [
        f"{s},{v:.4f},{y}" for s, v, y in zip(stamps, values, label, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return stamps


def test_replay_reports_pointwise_and_windowwise_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "series.csv"
    _write_series(data)
    args = ["replay", str(data), "--labels-column", "label", "--timestamp-field", "timestamp"]
    assert main([*args, "--log-epsilon", "-20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 1500
    assert report["windowwise"]["recall"] == 1.0
    assert report["pointwise"]["true_positives"] >= 1
    assert report["alerts_per_day"] == pytest.approx(report["alerts"] / (1499 / 24))


def test_replay_with_windows_gives_a_nab_score_and_a_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    data = tmp_path / "series.csv"
    stamps = _write_series(data)
    windows = tmp_path / "windows.json"
    windows.write_text(json.dumps({"series.csv": [[stamps[1190], stamps[1210]]]}))
    plot = tmp_path / "replay.png"
    args = ["replay", str(data), "--config", str(CONFIGS / "nab.toml"), "--windows", str(windows)]
    assert main([*args, "--plot", str(plot), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["nab"]) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    assert report["nab"]["standard"] > 50
    assert plot.stat().st_size > 10_000


def test_windows_need_a_timestamp_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "series.csv"
    _write_series(data)
    windows = tmp_path / "windows.json"
    windows.write_text("[]")
    assert main(["replay", str(data), "--windows", str(windows)]) == 2
    assert "timestamp" in capsys.readouterr().err


def test_a_labels_column_missing_from_the_header_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "series.csv"
    _write_series(data)
    # Not accepted with the `label` column learned as a feature and every row unlabelled.
    assert main(["replay", str(data), "--labels-column", "is_anomaly"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"stream-detect replay: error: {data}:1: label field 'is_anomaly' is not a column "
        "of the CSV header (columns: timestamp, value, label)"
    ]


@pytest.mark.parametrize(
    ("flag", "first", "second"),
    [("--labels-column", "nope", "label"), ("--plot", "a.png", "b.png"), ("--windows", "a", "b")],
)
def test_a_replay_option_given_twice_is_refused_not_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, first: str, second: str
) -> None:
    # The second value silently replaced the first, as no other command lets it.
    data = tmp_path / "series.csv"
    _write_series(data, rows=200)
    assert main(["replay", str(data), flag, first, flag, second]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"stream-detect replay: error: option {flag}: got {second!r}, expected {flag} once "
        "(it was given before; give every value in one flag rather than have one silently "
        "dropped)"
    ]


def test_data_whose_name_holds_a_question_mark_or_a_percent_is_replayed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "series?100%25.csv"
    _write_series(data, rows=200)
    assert main(["replay", str(data), "--labels-column", "label", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 200


def test_window_metrics_count_windows_found_and_alerts_inside() -> None:
    alert = np.array([1, 0, 1, 1, 0, 0, 0, 0], dtype=bool)
    labels = np.array([0, 0, 1, 1, 0, 1, 1, 0], dtype=bool)
    report = evaluate(alert, labels=labels)
    assert report.windowwise is not None and report.pointwise is not None
    assert (report.windowwise.recall, report.windowwise.precision) == (0.5, 2 / 3)
    assert report.pointwise.recall == 0.5


def test_nab_file_runs_through_the_nab_config(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nab = shared_data / "nab"
    data = nab / "data" / "realKnownCause" / "nyc_taxi.csv"
    windows = nab / "labels" / "combined_windows.json"
    config = str(CONFIGS / "nab.toml")
    out = tmp_path / "out.jsonl"
    source, sink = f"file:{data}", f"file:{out}"
    assert (
        main(["run", "--config", config, "--source", source, "--sink", sink, "--emit", "all"]) == 0
    )
    lines = out.read_text().splitlines()
    assert len(lines) == 10320
    assert json.loads(lines[-1])["timestamp"] == "2015-01-31 23:30:00"
    assert main(["replay", str(data), "--config", config, "--windows", str(windows), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["nab"]["standard"] > 50


def test_bad_rows_go_to_the_dead_letters_not_nowhere(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Replay kept its dead letters in memory and dropped them: "rows 100" and nothing
    # said about the two lines that were not events.
    data = tmp_path / "events.jsonl"
    rng = np.random.default_rng(4)
    good = [json.dumps({"a": a, "b": b}) + "\n" for a, b in rng.normal(size=(100, 2)).tolist()]
    data.write_text("".join(good[:50]) + "garbage\n" + '{"a": "x", "b": 1}\n' + "".join(good[50:]))
    assert main(["replay", str(data)]) == 0
    captured = capfd.readouterr()
    assert captured.out.startswith("rows 100, alerts")
    letters = [json.loads(line) for line in captured.err.splitlines()]
    assert [letter["position"]["line"] for letter in letters] == [51, 52]
    assert "invalid JSON" in letters[0]["reason"] and "'a'" in letters[1]["reason"]
    # --dead-letter names where they go, as for `run`.
    dead = tmp_path / "dead.jsonl"
    assert main(["replay", str(data), "--dead-letter", f"file:{dead}"]) == 0
    assert capfd.readouterr().err == ""
    assert len(dead.read_text().splitlines()) == 2


def test_a_file_with_no_usable_row_exits_3_as_run_does(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Replay printed "rows 0, alerts 0" and exited 0 where `run` over the same file exits 3.
    data = tmp_path / "events.jsonl"
    data.write_text("".join(json.dumps({"a": "x", "b": 1}) + "\n" for _ in range(3)))
    reason = "feature 'a' is the string \"x\", not a number"
    expected = (
        "no event was usable: all 3 records were dead letters (most common reason: " + reason + ")"
    )
    flags = ["--features", "a,b", "--dead-letter", f"file:{tmp_path / 'dead.jsonl'}"]
    assert main(["run", "--source", f"file:{data}", "--no-summary", *flags]) == 3
    assert capfd.readouterr().err.splitlines() == [f"stream-detect run: error: {expected}"]
    assert main(["replay", str(data), *flags]) == 3
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"stream-detect replay: error: {expected}"]
    # An empty file is not an unusable one: nothing was read, as for `run`.
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["replay", str(empty)]) == 0


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--sink", "file:{out}"], "--sink"),
        (["--source", "file:{out}"], "--source"),
        (["--emit", "alerts"], "--emit"),
        (["--checkpoint", "{out}"], "--checkpoint"),
        (["--state-dir", "{out}"], "--state-dir"),
        (["--labels", "file:{out}"], "--labels"),
        (["--http", "127.0.0.1:0"], "--http"),
        (["--summary"], "--summary"),
        (["--progress"], "--progress"),
    ],
)
def test_run_flags_replay_does_not_use_are_refused(
    flags: list[str], named: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # `replay --sink file:out.jsonl` printed its report and wrote nothing to out.jsonl.
    data = tmp_path / "series.csv"
    _write_series(data, rows=200)
    out = tmp_path / "out.jsonl"
    status = main(["replay", str(data), *(flag.format(out=out) for flag in flags)])
    captured = capfd.readouterr()
    assert status == 2
    assert captured.out == "" and not out.exists()
    [line] = captured.err.splitlines()
    assert line.startswith(f"stream-detect replay: error: option {named}: got "), line
    assert "replay does not use it" in line


def test_a_config_file_shared_with_run_may_name_a_sink(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # The config serves `run` too: its sink, checkpoint and emit keys are not replay's business.
    data = tmp_path / "series.csv"
    _write_series(data, rows=200)
    out = tmp_path / "out.jsonl"
    config = tmp_path / "run.toml"
    config.write_text(f'sink = "file:{out}"\nemit = "alerts"\n')
    assert main(["replay", str(data), "--config", str(config)]) == 0
    assert capfd.readouterr().out.startswith("rows 200, alerts")
    assert not out.exists()


def test_a_folder_or_a_missing_file_as_data_is_named_for_what_it_is(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # A folder was reported as "no such file".
    for data, words in ((tmp_path, "is a directory, not a file"), (tmp_path / "x", "no such file")):
        assert main(["replay", str(data)]) == 2
        [line] = capfd.readouterr().err.splitlines()
        assert line == f"stream-detect replay: error: {data}: {words}"


@pytest.mark.parametrize("empty", ["DATA", "--windows", "--plot"])
def test_an_empty_file_name_is_named_as_such(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], empty: str
) -> None:
    # An unset variable (replay "$DATA") gave ": is a directory, not a file", naming the
    # current folder no one had named.
    data = tmp_path / "series.csv"
    _write_series(data, rows=200)
    argv = ["replay", "" if empty == "DATA" else str(data)]
    if empty != "DATA":
        argv += [empty, ""]
    with pytest.raises(SystemExit) as stopped:  # argparse refuses it, as fit does
        main(argv)
    captured = capfd.readouterr()
    assert stopped.value.code == 2 and captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(f"stream-detect replay: error: argument {empty}: got '', "), line
    assert "expected a file name" in line


def test_a_named_pipe_as_data_is_replayed_as_run_reads_it(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # A pipe (/dev/stdin, <(...)) was refused as "no such file", though run reads one.
    series = tmp_path / "series.csv"
    _write_series(series, rows=300)
    pipe = tmp_path / "series-pipe"
    os.mkfifo(pipe)
    writer = threading.Thread(target=pipe.write_bytes, args=(series.read_bytes(),), daemon=True)
    writer.start()
    try:
        assert main(["replay", str(pipe), "--format", "csv", "--json"]) == 0
    finally:
        writer.join(timeout=10)
    assert json.loads(capfd.readouterr().out)["rows"] == 300


@pytest.mark.parametrize(
    ("windows", "words"),
    [
        ([["2014-04-20 12:00:00", "2014-04-20 06:00:00"]], "window 0 ('2014-04-20 12:00:00', "),
        (
            [["2014-04-20 06:00:00", "2014-04-20 12:00:00"], ["2014-04-20 08:00:00", "2014-05-01"]],
            "window 1 ('2014-04-20 08:00:00', '2014-05-01') does not begin after window 0 ends",
        ),
        ([["soon", "later"]], "timestamp 'soon' is neither ISO 8601 nor epoch seconds"),
        ([["2014-04-20 06:00:00"]], "window 0 is ['2014-04-20 06:00:00'], not a [start, end]"),
        ({"series.csv": 5}, "the windows are 5, not a list of [start, end] pairs"),
    ],
)
def test_a_windows_file_that_cannot_place_its_windows_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], windows: object, words: str
) -> None:
    # A window ending before it starts was scored as if nothing were wrong; overlapping
    # windows, a limit that is not a time, or a table entry that is not a list ended the
    # replay with a traceback (from NAB's placing, numpy's parsing or the unpacking).
    data = tmp_path / "series.csv"
    _write_series(data, rows=600)
    path = tmp_path / "windows.json"
    path.write_text(json.dumps(windows))
    args = ["replay", str(data), "--timestamp-field", "timestamp", "--windows", str(path)]
    assert main(args) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"stream-detect replay: error: {path}: ")
    assert words in line


def test_a_window_whose_limits_fall_between_rows_is_scored_by_the_rows_inside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # NAB's placing needs limits that are rows' timestamps: a window from 11:30 ended the
    # replay with a ValueError traceback. It now starts at the first row inside it.
    data = tmp_path / "series.csv"
    stamps = _write_series(data)
    # Its label column dropped: labelled rows are held out, not learned, without --labels-column.
    lines = data.read_text().splitlines()
    data.write_text("".join(line.rsplit(",", 1)[0] + "\n" for line in lines))
    scores = []
    for start, end in ((stamps[1190], stamps[1210]), ("2014-05-20 13:30:00", "2014-05-21 10:59")):
        path = tmp_path / "windows.json"
        path.write_text(json.dumps([[start, end]]))
        args = ["replay", str(data), "--timestamp-field", "timestamp", "--windows", str(path)]
        assert main([*args, "--log-epsilon", "-20", "--json"]) == 0
        scores.append(json.loads(capsys.readouterr().out))
    assert stamps[1190] == "2014-05-20 14:00:00" and stamps[1210] == "2014-05-21 10:00:00"
    assert scores[0] == scores[1]
    assert scores[0]["nab"] is not None and scores[0]["windowwise"]["recall"] == 1.0


def test_a_window_that_holds_no_row_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It was dropped in silence from the window-wise counts, and NAB's placing raised.
    data = tmp_path / "series.csv"
    _write_series(data, rows=600)
    path = tmp_path / "windows.json"
    path.write_text(json.dumps([["2015-01-01 00:00:00", "2015-01-02 00:00:00"]]))
    args = ["replay", str(data), "--timestamp-field", "timestamp", "--windows", str(path)]
    assert main(args) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        f"stream-detect replay: error: {data}: window 0 (2015-01-01T00:00:00, "
        "2015-01-02T00:00:00) holds no row's time"
    )


def test_rows_out_of_time_order_are_placed_in_windows_by_their_own_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A binary search over rows out of order missed the rows of a window: it was dropped
    # and the window-wise recall said n/a.
    data = tmp_path / "series.csv"
    _write_series(data, rows=1300)
    header, *rows = data.read_text().splitlines()
    data.write_text("\n".join([header, *rows[1200:1205], *rows[:1200], *rows[1205:]]) + "\n")
    path = tmp_path / "windows.json"
    path.write_text(json.dumps([["2014-05-20 23:00:00", "2014-05-21 05:00:00"]]))
    args = ["replay", str(data), "--timestamp-field", "timestamp", "--windows", str(path)]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["windowwise"]["false_negatives"] + report["windowwise"]["true_positives"] == 1


def test_rows_whose_timestamp_has_no_time_are_left_out_of_the_time_measures(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Without a seasonal feature the stream needs no time and scores such a row, but the
    # report then stopped at it: exit 2 with neither file nor line, after the whole replay.
    # The warning names replay, as its others do (it said "stream-detect: warning:").
    data = tmp_path / "series.csv"
    _write_series(data, rows=600)
    header, *rows = data.read_text().splitlines()
    rows[100] = "soon," + rows[100].split(",", 1)[1]
    rows[200] = "," + rows[200].split(",", 1)[1]
    data.write_text("\n".join([header, *rows]) + "\n")
    args = ["replay", str(data), "--labels-column", "label", "--timestamp-field", "timestamp"]
    assert main([*args, "--log-epsilon", "-20", "--json"]) == 0
    captured = capfd.readouterr()
    report = json.loads(captured.out)
    assert report["rows"] == 600
    assert report["alerts_per_day"] == pytest.approx(report["alerts"] / (599 / 24))
    assert captured.err.splitlines() == [
        "stream-detect replay: warning: 2 of 600 rows have no time in 'timestamp' and are left "
        f"out of alerts per day and the windows (the first, {data}:102: timestamp 'soon' is "
        "neither ISO 8601 nor epoch seconds)"
    ]


def test_labels_count_by_the_stream_s_rule_whatever_their_spelling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The stream takes true / TRUE / True as an anomaly, but the report read a label
    # by float(): those rows were normal to the metrics, anomalous to the detector.
    reports = []
    for spelling in ("1", "true", " TRUE ", "1.0"):
        data = tmp_path / f"series-{spelling.strip()}.csv"
        _write_series(data, rows=1300)
        header, *rows = data.read_text().splitlines()
        rows = [row[:-1] + spelling if row.endswith(",1") else row for row in rows]
        data.write_text("\n".join([header, *rows]) + "\n")
        args = ["replay", str(data), "--labels-column", "label", "--log-epsilon", "-20"]
        assert main([*args, "--json"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    assert reports[0]["pointwise"]["true_positives"] == 5
    assert all(report == reports[0] for report in reports)


def test_nab_windows_find_a_data_file_copied_out_of_its_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # NAB's combined_windows.json names files with their folder; the README's
    # `replay nyc_taxi.csv --windows combined_windows.json` has the file on its own.
    data = tmp_path / "series.csv"
    stamps = _write_series(data, rows=300)
    windows = tmp_path / "windows.json"
    windows.write_text(
        json.dumps(
            {
                "realKnownCause/series.csv": [[stamps[200], stamps[210]]],
                "realKnownCause/other.csv": [],
            }
        )
    )
    args = ["replay", str(data), "--timestamp-field", "timestamp", "--windows", str(windows)]
    assert main([*args, "--json"]) == 0
    assert "nab" in json.loads(capsys.readouterr().out)
    # Two keys of that name: which one is meant cannot be told, so none is taken.
    windows.write_text(json.dumps({"a/series.csv": [], "b/series.csv": []}))
    assert main(args) == 2
    assert "has no windows for" in capsys.readouterr().err


def test_the_warning_of_a_stream_of_dead_letters_names_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `run` says "stream-detect run: warning:"; replay's said "stream-detect: warning:".
    data = tmp_path / "bad.jsonl"
    data.write_text('{"a": "x"}\n' * 600)
    dead = tmp_path / "dead.jsonl"
    args = ["replay", str(data), "--features", "a", "--dead-letter", f"file:{dead}"]
    assert main(args) == 3
    warning, error = capsys.readouterr().err.splitlines()
    assert warning.startswith("stream-detect replay: warning: the last 600 records")
    assert error.startswith("stream-detect replay: error: no event was usable")


def test_a_file_whose_every_row_is_labelled_says_no_row_was_learned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without --labels-column every labelled row was held out for validation, so the
    # model learned nothing and the report said "alerts 0" without a word on why.
    data = tmp_path / "series.csv"
    _write_series(data, rows=300)
    assert main(["replay", str(data), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["alerts"] == 0
    assert captured.err.splitlines() == [
        "stream-detect replay: warning: all 300 rows hold a label in 'label', and labelled "
        "rows are held out for validation, not learned: no row was learned; --labels-column "
        "label learns them and scores the alerts against them, --learn-labelled learns them"
    ]
    # Either remedy, or one row left unlabelled (it is learned), and nothing is said.
    header, *rows = data.read_text().splitlines()
    partly = tmp_path / "partly.csv"
    partly.write_text("\n".join([header, rows[0][: rows[0].rindex(",") + 1], *rows[1:]]) + "\n")
    for args in (
        [str(data), "--labels-column", "label"],
        [str(data), "--learn-labelled"],
        [str(data), "--label-field", "none"],
        [str(partly)],
    ):
        assert main(["replay", *args, "--json"]) == 0
        assert capsys.readouterr().err == ""


def test_a_window_of_one_row_is_shaded_on_the_plot(tmp_path: Path) -> None:
    # A lone labelled anomaly made the window (100, 100), shaded from row 100 to row 100:
    # no width, nothing drawn.
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    from stream_detect.replay_plot import plot_replay

    def orange_pixels(windows: np.ndarray) -> int:
        out = plot_replay(
            tmp_path / "r.png", np.zeros(200), np.zeros(200), np.full(200, -5.0),
            np.zeros(200, dtype=bool), windows,
        )  # fmt: skip
        rgb = imread(out)[..., :3]
        # tab:orange at alpha 0.2 over white: red full, green and blue lower, blue lowest.
        tinted = (rgb[..., 0] > 0.95) & (rgb[..., 1] < 0.95) & (rgb[..., 2] < rgb[..., 1] - 0.03)
        return int(np.count_nonzero(tinted))

    assert orange_pixels(np.zeros((0, 2), dtype=np.intp)) == 0
    assert orange_pixels(np.array([[100, 100]])) > 500


def test_a_mat_file_is_named_for_what_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It went to run's source and came out as a dead letter about UTF-8 (exit 3).
    data = tmp_path / "ex8data1.mat"
    data.write_bytes(b"MATLAB 5.0 MAT-file\x00\xff\n")
    assert main(["replay", str(data)]) == 2
    assert capsys.readouterr().err == (
        f"stream-detect replay: error: {data}: a MATLAB .mat file, not CSV or JSON lines: save "
        "its arrays as CSV first (scipy.io.loadmat, then numpy.savetxt with a header)\n"
    )


def test_dotted_fields_of_nested_events_are_read_as_run_reads_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The label, labels column and timestamp of nested events were read as top-level
    # fields: every row looked unlabelled, untimed, and the warning never came.
    data = tmp_path / "nested.jsonl"
    hours = np.datetime64("2014-04-01T00:00") + np.arange(300) * np.timedelta64(1, "h")
    rng = np.random.default_rng(3)
    events = [
        {"at": {"time": str(h)}, "cpu": {"user": float(v)}, "meta": {"label": int(i == 250)}}
        for i, (h, v) in enumerate(zip(hours, rng.normal(10, 1, 300), strict=True))
    ]
    events[250]["cpu"]["user"] = 40.0
    data.write_text("".join(json.dumps(e) + "\n" for e in events))
    nested = ["--features", "cpu.user", "--label-field", "meta.label"]
    assert main(["replay", str(data), *nested, "--json"]) == 0
    assert "all 300 rows hold a label in 'meta.label'" in capsys.readouterr().err
    timed = [*nested, "--timestamp-field", "at.time", "--labels-column", "meta.label"]
    assert main(["replay", str(data), *timed, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pointwise"]["true_positives"] == 1
    assert report["alerts_per_day"] == pytest.approx(report["alerts"] / (299 / 24))
