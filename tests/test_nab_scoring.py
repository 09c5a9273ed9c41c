"""Tests of the NAB scorer in stream_detect/nab.py and nab_corpus.py (and bench/nab.py's reading).

Small files whose scores are worked out by hand from NAB's rules pin the
semantics (earliest detection per window, false positives weighted by their
distance past the preceding window, the probationary period); the corpus sweep
must equal scoring every threshold one by one; and, when ../shared/data is
present, threshold 1.0 on NAB's own windowedGaussian result files must give
NAB's published totals.
"""

from __future__ import annotations

import csv
import doctest
import functools
import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from stream_detect import nab as nab_scoring
from stream_detect import nab_corpus

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str, filename: str) -> ModuleType:
    """Import a bench/ script by path (bench/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCH / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before running it: dataclasses look their module up.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


scoring = nab_scoring
bench_nab = _load("nab_bench", "nab.py")

STANDARD = scoring.CostMatrix(tp_weight=1.0, fp_weight=0.11, fn_weight=1.0)
LOW_FP = scoring.CostMatrix(tp_weight=1.0, fp_weight=0.22, fn_weight=1.0)
LOW_FN = scoring.CostMatrix(tp_weight=1.0, fp_weight=0.11, fn_weight=2.0)
MAX_TP = 2.0 / (1.0 + math.exp(-5.0)) - 1.0


def _sigmoid_value(position: float) -> float:
    """NAB's scaledSigmoid, written out independently of the code under test."""
    return -1.0 if position > 3.0 else 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


# ---------------------------------------------------------------- primitives


def test_scaled_sigmoid_matches_nab_anchor_values() -> None:
    # The values NAB's docstring gives for the left edge, the middle, the right
    # edge and one window past it; beyond 3 widths a false positive costs the full weight.
    positions = np.array([-1.0, -0.5, 0.0, 1.0, 3.0, 3.0001, 50.0, -50.0])
    expected = [0.98661, 0.84828, 0.0, -0.98661, -0.99999939, -1.0, -1.0, 1.0]
    np.testing.assert_allclose(scoring.scaled_sigmoid(positions), expected, atol=1e-5)
    assert pytest.approx(MAX_TP, rel=1e-15) == scoring.MAX_TP


@pytest.mark.parametrize(
    ("rows", "expected"), [(10, 1), (20, 3), (1000, 150), (4032, 604), (5000, 750), (22695, 750)]
)
def test_probationary_length_is_15_percent_capped_at_750(rows: int, expected: int) -> None:
    assert scoring.probationary_length(rows) == expected


def test_cost_matrix_reads_nab_profile_entries() -> None:
    profile = {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11, "tnWeight": 1.0}}
    assert scoring.CostMatrix.from_profile(profile) == LOW_FN


def test_normalised_score_maps_null_to_0_and_perfect_to_100() -> None:
    assert nab_corpus.normalised_score(-116.0, -116.0, 116.0) == 0.0
    assert nab_corpus.normalised_score(116.0, -232.0, 116.0) == 100.0
    assert nab_corpus.normalised_score(0.0, -116.0, 116.0) == pytest.approx(50.0)


# ---------------------------------------------------------- hand-worked files
# Twenty rows with timestamps 0..19 and one window on rows 8..11 (width 4,
# right edge 11). floor(0.15 * 20) = 3, so rows 0..2 are probationary.


@pytest.fixture
def twenty_rows() -> Any:
    return scoring.file_layout(np.arange(20), [(8, 11)])


def test_layout_of_hand_worked_file(twenty_rows: Any) -> None:
    layout = twenty_rows
    assert layout.window.tolist() == [-1] * 8 + [0] * 4 + [-1] * 8
    assert layout.scorable.tolist() == [False] * 3 + [True] * 17
    # Before any window: full penalty. In the window: position -(11 - i + 1) / 4.
    # After it: position |11 - i| / (4 - 1).
    expected = [-1.0] * 8
    expected += [_sigmoid_value(-(11 - i + 1) / 4) for i in range(8, 12)]
    expected += [_sigmoid_value(abs(11 - i) / 3) for i in range(12, 20)]
    np.testing.assert_allclose(layout.unweighted, expected, rtol=1e-14)
    np.testing.assert_allclose(
        layout.unweighted[8:12], [0.98661, 0.95405, 0.84828, 0.55460], atol=1e-5
    )
    np.testing.assert_allclose(layout.unweighted[[12, 14]], [-0.68226, -0.98661], atol=1e-5)


def test_score_of_hand_worked_file(twenty_rows: Any) -> None:
    scores = np.zeros(20)
    # Row 1 is probationary (ignored); row 5 is a false positive before any window;
    # rows 9 and 10 are in the window (only the earlier counts); row 12 is a
    # false positive one third of a window width past it.
    scores[[1, 5, 9, 10, 12]] = 1.0
    result = scoring.score_file(scores, twenty_rows, STANDARD, 1.0)
    window = 0.9540452601799487 / MAX_TP  # position -0.75, scaled so the left edge is worth 1
    after = -0.6822617902381697 * 0.11  # position 1/3
    assert window == pytest.approx(0.9669890878, abs=1e-10)
    assert result.score == pytest.approx(-0.11 + window + after, abs=1e-12)
    assert result.score == pytest.approx(0.7819402909, abs=1e-9)
    assert (result.tp, result.fp, result.fn, result.tn) == (2, 2, 2, 11)


def test_detection_is_score_at_or_above_threshold(twenty_rows: Any) -> None:
    scores = np.zeros(20)
    scores[8] = 0.7
    assert scoring.score_file(scores, twenty_rows, STANDARD, 0.7).score == pytest.approx(1.0)
    assert scoring.score_file(scores, twenty_rows, STANDARD, 0.70001).score == -1.0


def test_missed_window_costs_fn_weight_and_false_positives_add_up(twenty_rows: Any) -> None:
    assert scoring.score_file(np.zeros(20), twenty_rows, LOW_FN, 0.5).score == -2.0
    scores = np.zeros(20)
    scores[[3, 4, 5]] = 1.0  # three false positives before any window
    result = scoring.score_file(scores, twenty_rows, LOW_FP, 0.5)
    assert result.score == pytest.approx(-1.0 - 3 * 0.22)
    assert (result.tp, result.fp) == (0, 3)


def test_window_inside_probation_does_not_count() -> None:
    # 40 rows: probation is rows 0..5, so the window on rows 1..3 never counts,
    # but a false positive after it is still measured from its right edge.
    layout = scoring.file_layout(np.arange(40), [(1, 3), (20, 23)])
    assert layout.scored_windows.tolist() == [1]
    assert nab_corpus.null_score([layout], LOW_FN) == -2.0
    assert nab_corpus.perfect_score([layout], STANDARD) == pytest.approx(1.0)
    scores = np.zeros(40)
    scores[6] = 1.0  # 3 rows past a window of width 3: position 3 / 2
    expected = -1.0 + 0.11 * _sigmoid_value(1.5)
    assert scoring.score_file(scores, layout, STANDARD, 0.5).score == pytest.approx(expected)


def test_window_straddling_probation_is_worth_its_first_scorable_row() -> None:
    # Window on rows 1..6 (width 6), rows 3.. scorable: the best possible
    # detection is at row 3, position -(6 - 3 + 1) / 6 = -2/3.
    layout = scoring.file_layout(np.arange(20), [(1, 6)])
    expected = _sigmoid_value(-2.0 / 3.0) / MAX_TP
    assert expected == pytest.approx(0.9437422612, abs=1e-10)
    assert nab_corpus.perfect_score([layout], STANDARD) == pytest.approx(expected)
    scores = np.zeros(20)
    scores[2] = 1.0  # probationary: as if nothing were detected
    assert scoring.score_file(scores, layout, STANDARD, 0.5).score == -1.0


def test_repeated_timestamps_follow_nab() -> None:
    # Timestamps 4..6 repeat (a daylight-saving hour). A window from 5 to 8 is
    # entered at the first 5 (row 5), left at the first 8 (row 11), and its width
    # comes from the first occurrences: 11 - 5 + 1 = 7.
    timestamps = np.array([0, 1, 2, 3, 4, 5, 6, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16])
    layout = scoring.file_layout(timestamps, [(5, 8)])
    assert np.flatnonzero(layout.window == 0).tolist() == list(range(5, 12))
    assert layout.unweighted[5] == pytest.approx(MAX_TP)
    assert layout.unweighted[8] == pytest.approx(_sigmoid_value(-(11 - 8 + 1) / 7))


def test_bad_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="not a timestamp"):
        scoring.file_layout(np.arange(10), [(3, 42)])
    with pytest.raises(ValueError, match="time order"):
        scoring.file_layout(np.arange(10), [(6, 7), (2, 3)])


# ------------------------------------------------------------- corpus sweep


def test_sweep_equals_scoring_each_threshold() -> None:
    rng = np.random.default_rng(7)
    layouts, scores = [], []
    for rows, windows in [(60, [(10, 14), (40, 49)]), (35, [(20, 22)]), (50, [])]:
        layouts.append(scoring.file_layout(np.arange(rows), windows))
        # Rounded, so many rows tie on one threshold.
        scores.append(rng.random(rows).round(2))
    for cost in (STANDARD, LOW_FP, LOW_FN):
        sweep = nab_corpus.sweep_thresholds(scores, layouts, cost)
        assert sweep.thresholds[0] == np.inf
        assert np.all(np.diff(sweep.thresholds) < 0)
        assert sweep.scores[0] == nab_corpus.null_score(layouts, cost) == -3 * cost.fn_weight
        for threshold, total in zip(sweep.thresholds, sweep.scores, strict=True):
            direct = sum(
                scoring.score_file(s, layout, cost, threshold).score
                for s, layout in zip(scores, layouts, strict=True)
            )
            assert total == pytest.approx(direct, abs=1e-12)
        best_threshold, best_score = sweep.best()
        assert best_score == max(sweep.scores)
        assert best_threshold == sweep.thresholds[np.argmax(sweep.scores)]


def test_sweep_depends_only_on_the_order_of_scores() -> None:
    layout = scoring.file_layout(np.arange(60), [(10, 14), (40, 49)])
    scores = np.random.default_rng(3).random(60)
    plain = nab_corpus.sweep_thresholds([scores], [layout], STANDARD)
    squared = nab_corpus.sweep_thresholds([np.exp(10 * scores)], [layout], STANDARD)
    np.testing.assert_array_equal(plain.scores, squared.scores)


def test_best_threshold_ties_go_to_the_highest_threshold() -> None:
    layout = scoring.file_layout(np.arange(20), [(8, 11)])
    scores = np.zeros(20)
    scores[8] = 0.9  # the window's left edge: perfect
    scores[9] = 0.5  # later in the same window: lowering the threshold to it changes nothing
    sweep = nab_corpus.sweep_thresholds([scores], [layout], STANDARD)
    assert sweep.best() == (0.9, 1.0)


def test_sweep_refuses_mismatched_inputs() -> None:
    layout = scoring.file_layout(np.arange(20), [(8, 11)])
    with pytest.raises(ValueError, match="19 anomaly scores"):
        nab_corpus.sweep_thresholds([np.zeros(19)], [layout], STANDARD)
    with pytest.raises(ValueError, match="2 score arrays for 1 layouts"):
        nab_corpus.sweep_thresholds([np.zeros(20), np.zeros(20)], [layout], STANDARD)


@pytest.mark.parametrize(
    "module", [scoring, nab_corpus, bench_nab], ids=["nab_scoring", "nab_corpus", "nab"]
)
def test_docstring_examples(module: ModuleType) -> None:
    # bench/ is outside pytest's doctest paths, so its examples are run here.
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


# ------------------------------------------------------------ the script


def _write_corpus(root: Path) -> None:
    """A two-file NAB-shaped corpus: a spike inside a window, and a quiet file."""
    rng = np.random.default_rng(0)
    windows = {}
    for name, spike in [("group/spiky.csv", 300), ("group/quiet.csv", None)]:
        values = rng.normal(10.0, 1.0, 400)
        if spike is not None:
            values[spike] += 25.0
        stamps = np.datetime64("2020-01-01T00:00") + np.arange(400) * np.timedelta64(5, "m")
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["timestamp,value"]
        stamp_text = [f"{str(t).replace('T', ' ')}:00" for t in stamps]
        lines += [f"{t},{float(v)!r}" for t, v in zip(stamp_text, values, strict=True)]
        path.write_text("\n".join(lines) + "\n")
        if spike is not None:
            windows[name] = [
                [f"{stamp_text[spike - 10]}.000000", f"{stamp_text[spike + 10]}.000000"]
            ]
        else:
            windows[name] = []
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    (root / "config").mkdir()
    costs = {"standard": STANDARD, "reward_low_FP_rate": LOW_FP, "reward_low_FN_rate": LOW_FN}
    profiles = {
        name: {
            "CostMatrix": {
                "tpWeight": c.tp_weight,
                "fpWeight": c.fp_weight,
                "fnWeight": c.fn_weight,
                "tnWeight": 1.0,
            }
        }
        for name, c in costs.items()
    }
    (root / "config" / "profiles.json").write_text(json.dumps(profiles))


def test_script_on_a_small_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_corpus(tmp_path)
    assert bench_nab.main(["--data", str(tmp_path), "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 series, 800 events" in out
    # One clear spike, caught at its window's midpoint (position -(310 - 300 + 1) / 21).
    expected = 100.0 * (_sigmoid_value(-11 / 21) / MAX_TP + 1.0) / 2.0
    learn = next(line for line in out.splitlines() if "flagged=learn " in line)
    assert float(learn.split()[2]) == pytest.approx(expected, abs=0.01)


def test_script_fails_in_one_line_without_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench_nab.main(["--data", str(tmp_path / "absent")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "no NAB corpus at" in captured.err


# ------------------------------------------------ NAB's published numbers

#: Totals of results/windowedGaussian/*_scores.csv and the scoreboard entry (final_results.json).
PUBLISHED = {
    "standard": (-24.0131054891, 39.6495),
    "reward_low_FP_rate": (-67.5863, 20.8680),
    "reward_low_FN_rate": (-67.0131, 47.4100),
}


@functools.cache
def _windowed_gaussian(nab_root: Path) -> tuple[list[str], list[Any], list[np.ndarray]]:
    """File names, layouts and anomaly scores of NAB's windowedGaussian result files."""
    windows = bench_nab.read_windows(nab_root / "labels" / "combined_windows.json")
    names = sorted(windows)
    layouts, scores = [], []
    for name in names:
        group, file_name = name.split("/")
        path = nab_root / "results" / "windowedGaussian" / group / f"windowedGaussian_{file_name}"
        timestamps, columns = bench_nab.read_table(path)
        layouts.append(scoring.file_layout(timestamps, windows[name]))
        scores.append(columns["anomaly_score"])
    return names, layouts, scores


def _score_rows(path: Path) -> dict[str, list[str]]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    # Columns: Detector, Profile, File, Threshold, Score, TP, TN, FP, FN, Total_Count.
    return {row[2] if row[0] != "Totals" else "Totals": row for row in rows[1:]}


@pytest.mark.parametrize("profile", list(PUBLISHED))
def test_windowed_gaussian_reproduces_published_totals(shared_data: Path, profile: str) -> None:
    nab_root = shared_data / "nab"
    names, layouts, scores = _windowed_gaussian(nab_root)
    assert len(names) == 58
    profiles = bench_nab.read_profiles(nab_root / "config" / "profiles.json")
    cost = profiles[profile]
    per_file = {
        name: scoring.score_file(s, layout, cost, 1.0)
        for name, s, layout in zip(names, scores, layouts, strict=True)
    }
    published = _score_rows(
        nab_root / "results" / "windowedGaussian" / f"windowedGaussian_{profile}_scores.csv"
    )
    for name, result in per_file.items():
        assert result.score == pytest.approx(float(published[name][4]), abs=1e-6), name
    total = functools.reduce(lambda a, b: a + b, per_file.values())
    totals = published["Totals"]
    assert (total.tp, total.tn, total.fp, total.fn) == tuple(int(v) for v in totals[5:9])

    raw, normalised = PUBLISHED[profile]
    null = nab_corpus.null_score(layouts, cost)
    perfect = nab_corpus.perfect_score(layouts, cost)
    assert null == -116.0 * cost.fn_weight
    assert perfect == pytest.approx(116.0, abs=1e-9)
    assert total.score == pytest.approx(raw, abs=1e-3)
    assert total.score == pytest.approx(float(totals[4]), abs=1e-6)
    assert nab_corpus.normalised_score(total.score, null, perfect) == pytest.approx(
        normalised, abs=1e-3
    )


def test_windowed_gaussian_optimised_threshold_is_nabs(shared_data: Path) -> None:
    # config/thresholds.json gives windowedGaussian threshold 1.0 under every profile.
    nab_root = shared_data / "nab"
    _, layouts, scores = _windowed_gaussian(nab_root)
    thresholds = json.loads((nab_root / "config" / "thresholds.json").read_text())
    for profile, cost in bench_nab.read_profiles(nab_root / "config" / "profiles.json").items():
        threshold, raw = nab_corpus.sweep_thresholds(scores, layouts, cost).best()
        assert threshold == thresholds["windowedGaussian"][profile]["threshold"] == 1.0
        assert raw == pytest.approx(PUBLISHED[profile][0], abs=1e-3)
