"""The learning policy's engine against the per-event reference, on random streams.

The engine scores a whole block under a guessed plan of what each row
teaches and re-plans until the guess holds; whatever the stream (spikes,
level shifts, labels, keys) and the policy, the result must be the one of
the obviously-correct loop in tests/reference.py, for any batch size.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import reference_run

from stream_detect.detector import Detector
from stream_detect.settings import DetectorSettings
from stream_detect.teaching import RunState, plan_teaching

FEATURES = ("a", "b")


@st.composite
def streams(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, list[str]]:
    seed = draw(st.integers(0, 2**32 - 1))
    rows = draw(st.integers(1, 300)) if draw(st.booleans()) else 300
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 2)) * draw(st.sampled_from([0.01, 1.0, 50.0])) + draw(
        st.sampled_from([0.0, 7.0, -300.0])
    )
    scale = float(np.std(X)) if rows > 1 else 1.0
    spikes = rng.random(rows) < draw(st.sampled_from([0.0, 0.05, 0.1, 0.3]))
    X[spikes] += rng.choice([-1.0, 1.0], size=(int(spikes.sum()), 1)) * 9.0 * max(scale, 1e-3)
    for _ in range(draw(st.integers(0, 2))):
        start = int(rng.integers(0, rows))
        X[start : start + int(rng.integers(1, 60))] += 12.0 * max(scale, 1e-3)
    labels = np.where(rng.random(rows) < draw(st.sampled_from([0.0, 0.1])), spikes, -1)
    keys = [f"k{k}" for k in rng.integers(0, draw(st.integers(1, 3)), rows)]
    return X, labels.astype(np.int8), keys


@settings(max_examples=50, deadline=None)
@given(
    stream=streams(),
    flagged=st.sampled_from(["exclude", "clip", "learn"]),
    accept_after=st.sampled_from([0, 1, 3, 10]),
    keyed=st.booleans(),
    half_life=st.sampled_from([None, 40.0]),
    learn_labelled=st.booleans(),
    batch=st.sampled_from([1, 5, 64, 1000]),
)
def test_the_engine_equals_the_per_event_reference(
    stream: tuple[np.ndarray, np.ndarray, list[str]],
    flagged: str,
    accept_after: int,
    keyed: bool,
    half_life: float | None,
    learn_labelled: bool,
    batch: int,
) -> None:
    X, labels, keys = stream
    detector_settings = DetectorSettings(
        flagged=flagged,
        accept_after=accept_after,
        key_field="k" if keyed else None,
        half_life=half_life,
        learn_labelled=learn_labelled,
        log_epsilon=-6.0 if keyed else -8.0,
        min_samples=5,
        retune_every=0,
        retune_labels=0,
    )
    expected = reference_run(detector_settings, X, labels, keys if keyed else None)
    detector = Detector(detector_settings, FEATURES)
    parts = []
    for start in range(0, X.shape[0], batch):
        part = slice(start, start + batch)
        parts.append(detector.process(X[part], labels[part], keys[part] if keyed else None))
    n = np.concatenate([p.n for p in parts])
    alert = np.concatenate([p.alert for p in parts])
    score = np.concatenate([p.score for p in parts])
    np.testing.assert_array_equal(n, expected.n)
    np.testing.assert_array_equal(alert, expected.alert)
    known = n > 0
    np.testing.assert_allclose(score[known], expected.score[known], rtol=agreement(X), atol=1e-9)


def agreement(X: np.ndarray) -> float:
    """How closely two exact computations of the scores of ``X`` agree: both round.

    The variance of values far from zero next to their spread loses about
    (|x| / σ)² ulps to cancellation, whichever way it is summed (values near
    -300 with σ = 0.01 lose about 1e9), so the allowance grows with it from
    1e-9 for data near zero.
    """
    spread = np.maximum(X.std(axis=0), 1e-12)
    conditioning = float(np.max(np.square(np.abs(X).mean(axis=0) / spread)))
    return max(1e-9, 1e-15 * conditioning)


def test_a_plan_learns_an_accepted_deviation_after_its_last_pending_row() -> None:
    alert = np.array([True, True, True, True, False, False, False])
    plan = plan_teaching(
        RunState(), alert, np.ones(7, bool), flagged="exclude", accept_after=2, offset=10
    )
    # Rows 10 and 11 are pending until 11 accepts them; 12 and 13 are learned as accepted.
    assert plan.accepted == {11: (10, 11)}
    assert plan.learned.tolist() == [False, False, True, True, True, True, True]
    assert plan.end.run_length == 0 and plan.end.relearned == 2


def test_rows_that_are_not_learnable_leave_the_count_alone() -> None:
    alert = np.array([True, False, False])
    learnable = np.array([True, False, False])
    plan = plan_teaching(RunState(), alert, learnable, flagged="clip", accept_after=5)
    assert plan.clipped.tolist() == [True, False, False]
    assert plan.end.run_length == 1 and plan.end.pending == [0]


def test_a_block_longer_than_a_pass_gives_what_short_batches_give() -> None:
    # One process() call over many rows with many alerts is cut into blocks of a
    # batch's size (a pass re-scores everything after its first change); the cut
    # must not show.
    rng = np.random.default_rng(5)
    X = rng.normal(size=(9000, 3))
    spikes = rng.random(9000) < 0.05
    X[spikes] += rng.choice([-9.0, 9.0], size=(int(spikes.sum()), 3))
    X[6000:6400] += 6.0  # a deviation long enough to be accepted
    settings = DetectorSettings(accept_after=50)
    whole = Detector(settings, ("a", "b", "c")).process(X)
    detector = Detector(settings, ("a", "b", "c"))
    parts = [detector.process(X[i : i + 700]) for i in range(0, 9000, 700)]
    np.testing.assert_array_equal(np.concatenate([p.alert for p in parts]), whole.alert)
    np.testing.assert_allclose(
        np.concatenate([p.log_tail for p in parts]), whole.log_tail, rtol=1e-9, atol=1e-9
    )
    assert whole.alert.sum() > 300 and detector.relearned > 0
