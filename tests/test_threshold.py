"""Tests of stream_detect.threshold against brute force and the classic exercise."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from stream_detect.classic import estimate_gaussian, multivariate_gaussian
from stream_detect.confusion import ConfusionCounts, confusion_counts
from stream_detect.threshold import (
    best_log_threshold,
    quantile_log_threshold,
    select_log_threshold,
    threshold_curves,
)
from stream_detect.threshold_choice import ThresholdChoice
from stream_detect.threshold_grid import grid_log_threshold, select_threshold

# ---------------------------------------------------------------- references


def brute_counts(y: list[int], flagged: list[bool]) -> tuple[int, int, int, int]:
    """tp, fp, fn, tn by one loop over the events."""
    tp = fp = fn = tn = 0
    for label, flag in zip(y, flagged, strict=True):
        if flag and label:
            tp += 1
        elif flag:
            fp += 1
        elif label:
            fn += 1
        else:
            tn += 1
    return tp, fp, fn, tn


def exact_f1(tp: int, fp: int, fn: int) -> Fraction:
    """F1 = 2PR/(P+R) as an exact fraction, 0 where undefined."""
    if tp == 0:
        return Fraction(0)
    precision = Fraction(tp, tp + fp)
    recall = Fraction(tp, tp + fn)
    return 2 * precision * recall / (precision + recall)


def brute_best(y: list[int], scores: list[float]) -> tuple[Fraction, int]:
    """Best exact F1 over every reachable set of flagged events, and the fewest flagged at it.

    The reachable sets under ``score < t`` are: nothing, and for every distinct
    score s, the events with score <= s (unless s is +inf, which no t exceeds).
    """
    candidates: list[list[bool]] = [[False] * len(scores)]
    for s in sorted(set(scores)):
        if s < math.inf:
            candidates.append([v <= s for v in scores])
    best: tuple[Fraction, int] | None = None
    for flagged in candidates:
        tp, fp, fn, _ = brute_counts(y, flagged)
        f1, k = exact_f1(tp, fp, fn), sum(flagged)
        if best is None or f1 > best[0] or (f1 == best[0] and k < best[1]):
            best = (f1, k)
    assert best is not None
    return best


def literal_classic(
    y: NDArray[np.integer], p: NDArray[np.float64], steps: int = 1000
) -> tuple[float, float]:
    """selectThreshold of the exercise, transcribed line by line (NaN F1 never wins)."""
    best_epsilon = 0.0
    best_f1 = 0.0
    step = (max(p) - min(p)) / steps
    labels = np.asarray(y).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        for epsilon in np.arange(min(p), max(p), step):
            predictions = p < epsilon
            tp = np.sum((predictions == 1) & (labels == 1))
            fp = np.sum((predictions == 1) & (labels == 0))
            fn = np.sum((predictions == 0) & (labels == 1))
            prec = np.float64(tp) / np.float64(tp + fp)
            rec = np.float64(tp) / np.float64(tp + fn)
            f1 = 2 * prec * rec / (prec + rec)
            if f1 > best_f1:
                best_f1 = float(f1)
                best_epsilon = float(epsilon)
    return best_epsilon, best_f1


labels_st = st.lists(st.booleans(), min_size=1, max_size=40)


@st.composite
def labelled_scores(draw: st.DrawFn, allow_infinity: bool = True) -> tuple[list[int], list[float]]:
    """Random labels with scores drawn from a few values (so ties are common) or anywhere."""
    n = draw(st.integers(1, 40))
    y = [int(v) for v in draw(st.lists(st.booleans(), min_size=n, max_size=n))]
    pool = st.sampled_from([-5.0, -3.0, -3.0, -1.0, 0.0, 2.5])
    anywhere = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    element = st.one_of(pool, anywhere)
    if allow_infinity:
        element = st.one_of(element, st.sampled_from([-math.inf, math.inf]))
    scores = draw(st.lists(element, min_size=n, max_size=n))
    return y, scores


# ---------------------------------------------------------------- confusion counts


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=50))
def test_confusion_counts_match_a_loop(pairs: list[tuple[bool, bool]]) -> None:
    y = [int(a) for a, _ in pairs]
    flagged = [b for _, b in pairs]
    counts = confusion_counts(np.array(y, dtype=np.int64), np.array(flagged, dtype=bool))
    tp, fp, fn, tn = brute_counts(y, flagged)
    assert (counts.tp, counts.fp, counts.fn, counts.tn) == (tp, fp, fn, tn)
    assert counts.n_flagged == tp + fp
    assert counts.precision == (tp / (tp + fp) if tp + fp else 0.0)
    assert counts.recall == (tp / (tp + fn) if tp + fn else 0.0)
    assert counts.f1 == pytest.approx(float(exact_f1(tp, fp, fn)), rel=1e-15, abs=0.0)
    for value in (counts.precision, counts.recall, counts.f1):
        assert not math.isnan(value)


def test_f1_equals_the_textbook_formula() -> None:
    counts = ConfusionCounts(tp=7, fp=2, fn=3, tn=100)
    precision, recall = 7 / 9, 7 / 10
    assert counts.f1 == pytest.approx(2 * precision * recall / (precision + recall), rel=1e-15)


def test_metrics_are_zero_not_nan_when_undefined() -> None:
    empty = ConfusionCounts(0, 0, 0, 0)
    assert (empty.precision, empty.recall, empty.f1, empty.n_flagged) == (0.0, 0.0, 0.0, 0)
    assert ConfusionCounts(0, 3, 0, 1).f1 == 0.0
    assert ConfusionCounts(0, 0, 4, 1).precision == 0.0


def test_to_dict_is_json_and_complete() -> None:
    data = ConfusionCounts(2, 1, 1, 6).to_dict()
    assert set(data) == {"tp", "fp", "fn", "tn", "precision", "recall", "f1", "n_flagged"}
    assert json.loads(json.dumps(data)) == data


@pytest.mark.parametrize("dtype", [bool, np.int8, np.uint8, np.int64, np.float64])
def test_label_dtypes_and_column_shape(dtype: type) -> None:
    y = np.array([1, 0, 1, 0], dtype=dtype)
    flagged = np.array([True, True, False, False])
    expected = ConfusionCounts(1, 1, 1, 1)
    assert confusion_counts(y, flagged) == expected
    assert confusion_counts(y.reshape(-1, 1), flagged.reshape(-1, 1)) == expected


def test_bad_labels_and_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="only 0 and 1"):
        confusion_counts([0, 2], [True, False])
    with pytest.raises(ValueError, match=r"shape \(m,\) or \(m, 1\)"):
        confusion_counts(np.zeros((2, 2)), [True, False])
    with pytest.raises(ValueError, match="flagged has 1 entries"):
        confusion_counts([0, 1], [True])


# ---------------------------------------------------------------- exact threshold


@settings(max_examples=250, deadline=None)
@given(labelled_scores())
def test_best_log_threshold_matches_brute_force(data: tuple[list[int], list[float]]) -> None:
    y, scores = data
    choice = best_log_threshold(np.array(y), np.array(scores))
    best_f1, fewest = brute_best(y, scores)
    assert choice.f1 == pytest.approx(float(best_f1), rel=1e-15, abs=0.0)
    assert choice.n_flagged == fewest
    # The returned log epsilon really flags that set, with that F1.
    flagged = np.array(scores) < choice.log_epsilon
    counts = confusion_counts(np.array(y), flagged)
    assert counts.n_flagged == choice.n_flagged
    assert (counts.f1, counts.precision, counts.recall) == (
        choice.f1,
        choice.precision,
        choice.recall,
    )


@settings(max_examples=200, deadline=None)
@given(labelled_scores(allow_infinity=False))
def test_best_log_threshold_is_the_midpoint_of_its_interval(
    data: tuple[list[int], list[float]],
) -> None:
    y, scores = data
    choice = best_log_threshold(y, scores)
    ordered = sorted(scores)
    k = choice.n_flagged
    if 0 < k < len(ordered):
        lower, upper = ordered[k - 1], ordered[k]
        assert choice.log_epsilon == pytest.approx((lower + upper) / 2, rel=1e-12)
        assert lower < choice.log_epsilon <= upper
    elif k == 0:
        assert choice.log_epsilon == ordered[0] - 1.0
    else:
        assert choice.log_epsilon == ordered[-1] + 1.0


@settings(max_examples=200, deadline=None)
@given(labelled_scores(allow_infinity=False))
def test_exact_is_never_worse_than_the_grid(data: tuple[list[int], list[float]]) -> None:
    y, scores = data
    assert best_log_threshold(y, scores).f1 >= grid_log_threshold(y, scores, steps=100).f1


def test_ties_in_f1_go_to_the_fewest_flagged() -> None:
    # Cuts flagging 1, 2, 3, 4 events: F1 = 2tp / (k + P) = 2/3, 1/2, 4/5, 2/3.
    choice = best_log_threshold([1, 0, 1, 0], [-4.0, -3.0, -2.0, -1.0])
    assert (choice.n_flagged, choice.f1, choice.log_epsilon) == (3, 0.8, -1.5)
    # Cuts: 2/3, 1/2, 2/5, 2/3 -- the tie between one and four flagged goes to one.
    same = best_log_threshold([1, 0, 0, 1], [-4.0, -3.0, -2.0, -1.0])
    assert (same.n_flagged, same.f1, same.log_epsilon) == (1, pytest.approx(2 / 3), -3.5)


def test_all_equal_scores() -> None:
    everything = best_log_threshold([1, 0, 1], [-2.0, -2.0, -2.0])
    assert everything.n_flagged == 3
    assert everything.log_epsilon == -1.0
    assert everything.f1 == pytest.approx(0.8)
    nothing = best_log_threshold([0, 0, 0], [-2.0, -2.0, -2.0])
    assert (nothing.n_flagged, nothing.f1, nothing.log_epsilon) == (0, 0.0, -3.0)


def test_a_single_score() -> None:
    assert best_log_threshold([1], [5.0]) == ThresholdChoice(6.0, 1.0, 1.0, 1.0, 1)
    assert best_log_threshold(np.array([[0]]), np.array([[5.0]])) == ThresholdChoice(
        4.0, 0.0, 0.0, 0.0, 0
    )


def test_infinite_scores() -> None:
    # -inf is below any log epsilon: flagging just it uses upper - 1.
    choice = best_log_threshold([1, 0, 0], [-math.inf, -2.0, 3.0])
    assert (choice.n_flagged, choice.log_epsilon) == (1, -3.0)
    # +inf can never be flagged; the best cut flags the finite positive.
    assert best_log_threshold([1, 0], [-1.0, math.inf]).log_epsilon == 0.0
    # A positive at +inf cannot be flagged at all: F1 is 0 whatever, so nothing is flagged.
    unreachable = best_log_threshold([0, 1], [-1.0, math.inf])
    assert (unreachable.f1, unreachable.n_flagged, unreachable.log_epsilon) == (0.0, 0, -2.0)
    # Both ends infinite: the cut between -inf and +inf is 0.
    assert best_log_threshold([1, 0], [-math.inf, math.inf]).log_epsilon == 0.0
    # Nothing flagged when the lowest score is -inf: only -inf flags nothing.
    assert best_log_threshold([0, 0], [-math.inf, 1.0]).log_epsilon == -math.inf


def test_huge_and_adjacent_scores_keep_the_rule() -> None:
    big = np.finfo(np.float64).max
    choice = best_log_threshold([1, 0], [-big, big])
    assert -big < choice.log_epsilon <= big
    assert choice.n_flagged == 1
    below = 1.0
    above = float(np.nextafter(1.0, 2.0))
    adjacent = best_log_threshold([1, 0], [below, above])
    assert below < adjacent.log_epsilon <= above
    assert (np.array([below, above]) < adjacent.log_epsilon).tolist() == [True, False]
    assert best_log_threshold([1], [1e300]).log_epsilon > 1e300


def test_best_log_threshold_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        best_log_threshold([], [])
    with pytest.raises(ValueError, match="NaN"):
        best_log_threshold([1, 0], [math.nan, 1.0])
    with pytest.raises(ValueError, match="log_p has 1 entries but the labels have 2"):
        best_log_threshold([1, 0], [1.0])


def test_best_log_threshold_scales() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(200_000) < 0.01
    log_p = rng.normal(size=y.size) - 3.0 * y
    choice = best_log_threshold(y, log_p)
    assert choice.f1 > grid_log_threshold(y, log_p).f1 - 1e-12
    assert choice.f1 == confusion_counts(y, log_p < choice.log_epsilon).f1


# ---------------------------------------------------------------- grid and classic


@settings(max_examples=200, deadline=None)
@given(labelled_scores(allow_infinity=False))
def test_grid_matches_the_literal_exercise(data: tuple[list[int], list[float]]) -> None:
    y, scores = data
    log_p = np.array(scores)
    if not (log_p.max() - log_p.min()) / 50 > 0:
        choice = grid_log_threshold(y, log_p, steps=50)
        assert (choice.log_epsilon, choice.n_flagged) == (log_p[0], 0)
        return
    epsilon, f1 = literal_classic(np.array(y), log_p, steps=50)
    choice = grid_log_threshold(y, log_p, steps=50)
    if f1 > 0:
        assert choice.log_epsilon == epsilon
        assert choice.f1 == pytest.approx(f1, rel=1e-15)
    else:
        assert choice.f1 == 0.0
        assert choice.log_epsilon == log_p.min()


def test_grid_with_the_default_1000_steps() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(300) < 0.05
    log_p = rng.normal(size=300) - 2.5 * y
    epsilon, f1 = literal_classic(y.astype(int), log_p)
    choice = grid_log_threshold(y, log_p)
    assert (choice.log_epsilon, choice.f1) == (epsilon, pytest.approx(f1, rel=1e-15))


def test_grid_edge_cases() -> None:
    assert select_threshold([0, 1], [0.0, 5e-324]) == (0.0, 0.0)
    tiny = grid_log_threshold([0, 1], [0.0, 5e-324])
    assert (tiny.log_epsilon, tiny.n_flagged) == (0.0, 0)
    huge = grid_log_threshold([1, 0], [-1e308, 1e308])
    assert (huge.n_flagged, huge.f1) == (1, 1.0)
    assert grid_log_threshold([1, 0], [-math.inf, -math.inf]).log_epsilon == 0.0
    assert grid_log_threshold([1, 0, 0], [-math.inf, -1.0, 2.0]).n_flagged >= 1
    with pytest.raises(ValueError, match="steps"):
        grid_log_threshold([1], [1.0], steps=0)


def test_grid_steps_are_capped_with_a_clear_error() -> None:
    # steps=10**12 asked numpy for 8 TB of candidates: a MemoryError, not a sentence.
    with pytest.raises(ValueError, match=r"steps must be between 1 and 1,000,000, got 1,000,"):
        grid_log_threshold([1, 0], [-5.0, -1.0], steps=10**12)
    with pytest.raises(ValueError, match=r"between 1 and 1,000,000, got 1,000,001"):
        grid_log_threshold([1, 0], [-5.0, -1.0], steps=1_000_001)
    # The cap itself is fine (a grid that fine is about 64 MB of work).
    assert grid_log_threshold([1, 0], [-5.0, -1.0], steps=1_000_000).f1 == 1.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.floats(0.0, 1.0, allow_nan=False)), min_size=2, max_size=40
    )
)
def test_select_threshold_matches_the_literal_exercise(
    pairs: list[tuple[bool, float]],
) -> None:
    y = np.array([int(a) for a, _ in pairs])
    p = np.array([b for _, b in pairs])
    if not (p.max() - p.min()) / 1000 > 0:  # equal, or the step underflows (5e-324 apart)
        assert select_threshold(y, p) == (0.0, 0.0)
        return
    epsilon, f1 = select_threshold(y, p)
    expected_epsilon, expected_f1 = literal_classic(y, p)
    assert epsilon == expected_epsilon
    assert f1 == expected_f1


def test_select_threshold_refuses_non_finite_densities() -> None:
    with pytest.raises(ValueError, match="finite"):
        select_threshold([0, 1], [math.inf, 0.1])
    with pytest.raises(ValueError, match="NaN"):
        select_threshold([0, 1], [math.nan, 0.1])


def test_select_log_threshold_dispatches() -> None:
    y, log_p = [1, 0, 0, 1, 0], [-9.0, -1.0, -2.0, -8.0, -1.5]
    exact = best_log_threshold(y, log_p)
    grid = grid_log_threshold(y, log_p)
    assert select_log_threshold(y, log_p) == (exact.log_epsilon, exact.f1)
    assert select_log_threshold(y, log_p, method="grid") == (grid.log_epsilon, grid.f1)
    with pytest.raises(ValueError, match="'exact' or 'grid'"):
        select_log_threshold(y, log_p, method="best")  # type: ignore[arg-type]


def _exercise(folder: Path, part: int) -> dict[str, NDArray[np.float64]]:
    scipy_io = pytest.importorskip("scipy.io")
    data: dict[str, NDArray[np.float64]] = scipy_io.loadmat(folder / f"ex8data{part}.mat")
    return data


@pytest.mark.parametrize(
    ("part", "epsilon", "f1", "n_flagged"),
    [(1, 8.990853e-05, 0.875, 6), (2, 1.377229e-18, 0.615385, 117)],
)
def test_select_threshold_reproduces_the_exercise(
    shared_data: Path, part: int, epsilon: float, f1: float, n_flagged: int
) -> None:
    data = _exercise(shared_data / "ng_ex8", part)
    mu, var = estimate_gaussian(data["X"])
    p_val = multivariate_gaussian(data["Xval"], mu, var)
    found_epsilon, found_f1 = select_threshold(data["yval"], p_val)
    assert found_epsilon == pytest.approx(epsilon, rel=1e-6)
    assert found_f1 == pytest.approx(f1, abs=5e-7)
    assert int(np.sum(multivariate_gaussian(data["X"], mu, var) < found_epsilon)) == n_flagged


@pytest.mark.parametrize(
    ("part", "epsilon", "f1"), [(1, 8.990853e-05, 0.875), (2, 1.377229e-18, 0.615385)]
)
def test_select_threshold_on_the_lab_npy_copy(
    shared_data: Path, part: int, epsilon: float, f1: float
) -> None:
    folder = shared_data / "ng_ex8" / "lab_npy"
    X = np.load(folder / f"X_part{part}.npy")
    X_val = np.load(folder / f"X_val_part{part}.npy")
    y_val = np.load(folder / f"y_val_part{part}.npy")
    assert y_val.ndim == 1
    mu, var = estimate_gaussian(X)
    found = select_threshold(y_val, multivariate_gaussian(X_val, mu, var))
    assert found == (pytest.approx(epsilon, rel=1e-6), pytest.approx(f1, abs=5e-7))


def test_exact_threshold_on_the_exercise_is_at_least_as_good(shared_data: Path) -> None:
    for part in (1, 2):
        data = _exercise(shared_data / "ng_ex8", part)
        mu, var = estimate_gaussian(data["X"])
        p_val = multivariate_gaussian(data["Xval"], mu, var)
        _, classic_f1 = select_threshold(data["yval"], p_val)
        assert best_log_threshold(data["yval"], np.log(p_val)).f1 >= classic_f1 - 1e-12


# ---------------------------------------------------------------- quantile


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([-4.0, -2.0, -1.0, 0.0, 3.0]) | st.floats(-50, 50), min_size=1),
    st.floats(0.001, 0.999),
)
def test_quantile_never_flags_more_than_asked(scores: list[float], contamination: float) -> None:
    log_epsilon = quantile_log_threshold(scores, contamination)
    flagged = int(np.sum(np.array(scores) < log_epsilon))
    target = math.floor(contamination * len(scores) + 1e-9)
    assert flagged <= target
    if len(set(scores)) == len(scores):
        assert flagged == target


def test_quantile_examples() -> None:
    scores = np.arange(100.0)
    assert quantile_log_threshold(scores, 0.29) == 28.5
    assert quantile_log_threshold(scores, 0.001) == -1.0
    assert quantile_log_threshold([1.0, 1.0, 1.0, 5.0], 0.5) == 0.0
    for bad in (0.0, 1.0, -0.1, math.nan):
        with pytest.raises(ValueError, match="contamination"):
            quantile_log_threshold(scores, bad)
    with pytest.raises(ValueError, match="empty"):
        quantile_log_threshold([], 0.1)


# ---------------------------------------------------------------- threshold curves


def brute_force_metrics(
    y: np.ndarray, log_p: np.ndarray, log_epsilon: float
) -> tuple[float, float, float]:
    flagged = log_p < log_epsilon
    tp = int(np.sum(flagged & (y == 1)))
    fp = int(np.sum(flagged & (y == 0)))
    fn = int(np.sum(~flagged & (y == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(-20, 5)), min_size=1, max_size=60),
)
def test_threshold_curves_equal_a_brute_force_sweep(pairs: list[tuple[int, int]]) -> None:
    y = np.array([label for label, _ in pairs])
    log_p = np.array([float(score) for _, score in pairs])  # small integers: many ties
    curves = threshold_curves(y, log_p)
    assert np.array_equal(curves.log_epsilon, np.unique(log_p))
    assert curves.n_positive == int(y.sum())
    for k, cut in enumerate(curves.log_epsilon):
        # any log epsilon in (cut, next cut] flags exactly the events with log_p <= cut
        upper = curves.log_epsilon[k + 1] if k + 1 < curves.log_epsilon.size else cut + 1.0
        for log_epsilon in (np.nextafter(cut, np.inf), (cut + upper) / 2, upper):
            expected = brute_force_metrics(y, log_p, log_epsilon)
            got = (curves.precision[k], curves.recall[k], curves.f1[k])
            np.testing.assert_allclose(got, expected, atol=1e-12)
        flagged = log_p <= cut
        assert curves.n_flagged[k] == int(np.sum(flagged))
        assert curves.tp[k] == int(np.sum(flagged & (y == 1)))
        assert curves.fp[k] == int(np.sum(flagged & (y == 0)))


def test_threshold_curves_agree_with_confusion_counts() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.05).astype(int)
    log_p = np.where(y == 1, rng.normal(-12, 3, 500), rng.normal(-5, 1, 500))
    curves = threshold_curves(y, log_p)
    for k in range(0, curves.log_epsilon.size, 37):
        counts = confusion_counts(y, log_p <= curves.log_epsilon[k])
        assert counts.precision == pytest.approx(curves.precision[k])
        assert counts.recall == pytest.approx(curves.recall[k])
        assert counts.f1 == pytest.approx(curves.f1[k])
    best = best_log_threshold(y, log_p)
    assert best.f1 == pytest.approx(curves.f1.max())


def test_threshold_curves_edge_cases() -> None:
    empty = threshold_curves([], [])
    assert empty.log_epsilon.size == 0 and empty.n_positive == 0
    no_anomalies = threshold_curves([0, 0], [-1.0, -2.0])
    assert no_anomalies.recall.tolist() == [0.0, 0.0]
    assert no_anomalies.f1.tolist() == [0.0, 0.0]
    with_inf = threshold_curves([1, 0, 1], [-np.inf, -1.0, -np.inf])
    assert with_inf.log_epsilon.tolist() == [-np.inf, -1.0]
    assert with_inf.recall.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="NaN"):
        threshold_curves([0, 1], [np.nan, 1.0])
    with pytest.raises(ValueError, match="values"):
        threshold_curves([0, 1, 1], [1.0, 2.0])


def best_log_threshold_before_the_curves(y: list[int], log_p: list[float]) -> ThresholdChoice:
    """best_log_threshold as it was before it used threshold_curves, kept to pin its results."""
    from stream_detect.threshold import _interval_point
    from stream_detect.threshold_choice import choice_from_counts, labels_and_scores

    labels, scores = labels_and_scores(y, log_p)
    n = len(scores)
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    cum_tp = np.concatenate(([0], np.cumsum(labels[order], dtype=np.int64)))
    n_positive = int(cum_tp[-1])
    cuts = np.arange(n + 1)
    reachable = np.ones(n + 1, dtype=bool)
    reachable[1:n] = sorted_scores[:-1] < sorted_scores[1:]
    reachable[n] = bool(sorted_scores[-1] < np.inf)
    denominator = cuts + n_positive
    f1 = np.zeros(n + 1)
    np.divide(2.0 * cum_tp, denominator, out=f1, where=(cum_tp > 0) & reachable)
    f1[~reachable] = -1.0
    best = int(np.argmax(f1))
    lower = float(sorted_scores[best - 1]) if best > 0 else -math.inf
    upper = float(sorted_scores[best]) if best < n else math.inf
    tp = int(cum_tp[best])
    counts = ConfusionCounts(tp=tp, fp=best - tp, fn=n_positive - tp, tn=n - best - n_positive + tp)
    return choice_from_counts(_interval_point(lower, upper, nothing_flagged=best == 0), counts)


@settings(max_examples=500, deadline=None)
@given(labelled_scores())
def test_best_log_threshold_is_bit_identical_to_the_version_before_the_curves(
    data: tuple[list[int], list[float]],
) -> None:
    y, scores = data
    assert best_log_threshold(y, scores) == best_log_threshold_before_the_curves(y, scores)


def test_decisions_follow_the_rule_of_labels() -> None:
    # The text "False", a NaN or a 2 used to count as flagged, being true to Python.
    for flagged in (np.array(["False", "True"]), [np.nan, 1.0], [2, 0]):
        with pytest.raises(ValueError, match="flagged must hold"):
            confusion_counts([0, 1], flagged)
    assert confusion_counts([0, 1], [0.0, 1.0]) == ConfusionCounts(tp=1, fp=0, fn=0, tn=1)


def test_arguments_of_the_threshold_functions_are_named_when_wrong() -> None:
    # select_threshold of nothing failed inside numpy ("zero-size array to reduction").
    with pytest.raises(ValueError, match="p_val is empty"):
        select_threshold([], [])
    with pytest.raises(TypeError, match=r"steps must be an integer number of grid steps, got 2\.5"):
        grid_log_threshold([0, 1], [-1.0, -2.0], steps=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="contamination must be a number between 0 and 1"):
        quantile_log_threshold([-1.0, -2.0], "0.1")  # type: ignore[arg-type]
