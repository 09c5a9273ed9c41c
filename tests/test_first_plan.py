"""The first plan a block is scored under: right for isolated spikes, harmless when wrong."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stream_detect.first_plan as first_plan_module
from stream_detect.detector import Detector
from stream_detect.keyed_models import SINGLE_KEY
from stream_detect.learning import LearningPolicy
from stream_detect.settings import DetectorSettings
from stream_detect.teaching import RunState, TeachingPlan

FEATURES = ("a", "b", "c", "d")


def _spiky(rows: int, seed: int, *, far_from_zero: bool = False) -> np.ndarray:
    """Gaussian rows, 1% of them spikes 9 σ out in every feature after the first 1,000.

    ``far_from_zero``: one feature's mean is 30,000 σ from zero, where the
    mean itself rounds at 1e-12 σ and two exact computations of a clipped
    vector can differ by more than a pass's tolerance (then passes are added).
    """
    rng = np.random.default_rng(seed)
    scale = np.array([1.0, 10.0, 0.01 if far_from_zero else 1.0, 100.0])
    X = rng.normal(size=(rows, len(FEATURES))) * scale + [0, 5, -300 if far_from_zero else 0, 7]
    spikes = rng.random(rows) < 0.01
    spikes[:1000] = False
    X[spikes] += rng.choice([-9.0, 9.0], size=(int(spikes.sum()), 1)) * scale
    return X


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the passes the engine makes (calls of ``LearningPolicy._settle``)."""
    counted = [0]
    settle = LearningPolicy._settle

    def counting(self: LearningPolicy, *args: Any) -> Any:
        counted[0] += 1
        return settle(self, *args)

    monkeypatch.setattr(LearningPolicy, "_settle", counting)
    yield counted


def _as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """Score every block first as if each row taught itself, as without this module."""
    monkeypatch.setattr(
        "stream_detect.learning.first_plan",
        lambda policy, state, group, learnable, run, threshold: (
            TeachingPlan.as_is(learnable, run),
            group,
        ),
    )


@pytest.mark.parametrize("model", ["diagonal", "full"])
def test_a_batch_of_isolated_spikes_settles_in_one_pass(
    passes: list[int], monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    X = _spiky(5096, seed=1)
    detector = Detector(DetectorSettings(retune_every=0, model=model), FEATURES)
    detector.process(X[:1000])
    passes[0] = 0
    out = detector.process(X[1000:])
    assert out.alert.sum() >= 20 and passes[0] == 1
    _as_is(monkeypatch)
    detector = Detector(DetectorSettings(retune_every=0, model=model), FEATURES)
    detector.process(X[:1000])
    passes[0] = 0
    detector.process(X[1000:])
    assert passes[0] == 2  # the pass the foreseen plan saves


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    share=st.sampled_from([0.0, 0.01, 0.3, 1.0]),
    flagged=st.sampled_from(["clip", "exclude"]),
    accept_after=st.sampled_from([0, 3, 100]),
    batch=st.sampled_from([7, 300, 4096]),
    model=st.sampled_from(["diagonal", "full"]),
)
def test_any_guess_gives_the_result_of_scoring_every_row_as_itself_first(
    seed: int, share: float, flagged: str, accept_after: int, batch: int, model: str
) -> None:
    """Foreseen alerts replaced by random rows: only the number of passes may change."""
    X = _spiky(3000, seed, far_from_zero=True)
    X[2000:2100] += 50.0  # a run: pending rows, and an accepted deviation with 3
    rng = np.random.default_rng(seed)
    detector_settings = DetectorSettings(flagged=flagged, accept_after=accept_after, model=model)

    def run() -> list[np.ndarray]:
        detector = Detector(detector_settings, FEATURES)
        parts = [detector.process(X[i : i + batch]) for i in range(0, X.shape[0], batch)]
        return [
            np.concatenate([p.alert for p in parts]),
            np.concatenate([p.n for p in parts]),
            np.concatenate([p.log_tail for p in parts]),
        ]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            first_plan_module,
            "foreseen_alerts",
            lambda model, group, now, threshold: rng.random(group.shape[0]) < share,
        )
        guessed = run()
    with pytest.MonkeyPatch.context() as patch:
        _as_is(patch)
        plain = run()
    np.testing.assert_array_equal(guessed[0], plain[0])
    np.testing.assert_array_equal(guessed[1], plain[1])
    np.testing.assert_allclose(guessed[2], plain[2], rtol=1e-9, atol=1e-9)


def test_the_guessed_clipped_vectors_are_the_ones_learned() -> None:
    X = _spiky(5096, seed=2)
    detector = Detector(DetectorSettings(retune_every=0), FEATURES)
    detector.process(X[:1000])
    state = detector.models.state_for(SINGLE_KEY)
    assert detector.log_epsilon is not None
    plan, values = first_plan_module.first_plan(
        detector.policy,
        state,
        X[1000:],
        np.ones(4096, bool),
        RunState(),
        detector.log_epsilon,
    )
    before = state.model.stats.copy()
    taught = values[plan.learned]
    expected = before.learn(taught)
    out = detector.process(X[1000:])
    assert np.array_equal(np.flatnonzero(plan.clipped), np.flatnonzero(out.alert))
    after = state.model.stats
    np.testing.assert_allclose(after.mean, expected.mean, rtol=1e-12)
    np.testing.assert_allclose(after.second, expected.second, rtol=1e-12)
