"""The keyed bank (diagonal models as arrays) against one model object per key.

Both hold the same models under the same policy; whatever the keys, their
number against ``max_keys`` (eviction), the half-life, the prior and the
batch size, the bank must give what the per-key path gives, row by row, and
end with the same models in the same recency order.
"""

from __future__ import annotations

from typing import NamedTuple
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect import keyed_foresight
from stream_detect.detector import Detector
from stream_detect.keyed_bank import KeyedBank
from stream_detect.keyed_models import KeyedModels
from stream_detect.settings import DetectorSettings

FEATURES = ("a", "b", "c")


def per_key(detector: Detector) -> Detector:
    """The same detector with one model object per key instead of the bank."""
    detector.models = KeyedModels(detector.settings.max_keys, detector.new_model)
    return detector


class Case(NamedTuple):
    """One stream and detector set-up, run through the bank and the per-key loop."""

    seed: int
    n_keys: int
    max_keys: int
    flagged: str
    accept_after: int
    half_life: float | None
    prior: bool
    tail_rule: bool
    batch: int


@settings(max_examples=25, deadline=None)
@given(
    case=st.builds(
        Case,
        seed=st.integers(0, 2**32 - 1),
        n_keys=st.integers(1, 40),
        max_keys=st.integers(1, 25),
        flagged=st.sampled_from(["exclude", "clip", "learn"]),
        accept_after=st.sampled_from([0, 2, 5]),
        half_life=st.sampled_from([None, 15.0]),
        prior=st.booleans(),
        tail_rule=st.booleans(),
        batch=st.sampled_from([1, 16, 100, 500]),
    ),
    foresight=st.sampled_from([2, keyed_foresight.FORESIGHT_ROWS]),
)
def test_the_bank_equals_one_model_per_key(case: Case, foresight: int) -> None:
    # The keys with at least ``foresight`` rows in a batch are scanned first
    # under their foreseen alerts (keyed_foresight); few rows make most keys so.
    with mock.patch.object(keyed_foresight, "FORESIGHT_ROWS", foresight):
        _compare_bank_and_loop(case)


def _compare_bank_and_loop(case: Case) -> None:
    seed, n_keys, max_keys, flagged, accept_after, half_life, prior, tail_rule, batch = case
    rng = np.random.default_rng(seed)
    rows = 300
    X = rng.normal(size=(rows, 3)) * [1.0, 10.0, 0.1] + [0.0, 100.0, -5.0]
    spikes = rng.random(rows) < 0.08
    X[spikes] += 8.0 * rng.choice([-1.0, 1.0], size=(int(spikes.sum()), 1)) * [1.0, 10.0, 0.1]
    X[200:240] += [6.0, 0.0, 0.0]
    labels = np.where(rng.random(rows) < 0.05, spikes, -1).astype(np.int8)
    keys = [f"k{k}" for k in rng.integers(0, n_keys, rows)]
    detector_settings = DetectorSettings(
        key_field="host",
        max_keys=max_keys,
        flagged=flagged,
        accept_after=accept_after,
        half_life=half_life,
        prior=prior,
        log_epsilon=None if tail_rule else -7.0,
        min_samples=4,
        retune_every=0,
        retune_labels=0,
    )
    bank = Detector(detector_settings, FEATURES)
    assert isinstance(bank.models, KeyedBank)
    loop = per_key(Detector(detector_settings, FEATURES))
    for start in range(0, rows, batch):
        part = slice(start, start + batch)
        got = bank.process(X[part], labels[part], keys[part])
        want = loop.process(X[part], labels[part], keys[part])
        for name in ("alert", "warmup", "n"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
        for name in ("log_p", "score", "distance_sq", "log_tail"):
            np.testing.assert_allclose(
                getattr(got, name), getattr(want, name), rtol=1e-9, atol=1e-9, err_msg=name
            )
        assert got.contributions.keys() == want.contributions.keys()
    assert list(bank.models) == list(loop.models)
    assert bank.evicted == loop.evicted and bank.relearned == loop.relearned
    for key in loop.models:
        mine, theirs = bank.models[key], loop.models[key]
        assert (mine.learned, mine.run_length) == (theirs.learned, theirs.run_length)
        np.testing.assert_allclose(mine.model.stats.mean, theirs.model.stats.mean, rtol=1e-9)
        assert len(mine.pending) == len(theirs.pending)


def test_a_bank_checkpoint_restores_the_same_models() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3))
    X[::37] += 9.0
    X[190:200] += 20.0  # a deviation still pending when the state is saved
    keys = [f"k{k}" for k in rng.integers(0, 6, 300)]
    detector_settings = DetectorSettings(
        key_field="host",
        max_keys=6,
        accept_after=3,
        min_samples=5,
        retune_every=0,
        log_epsilon=-7.0,
    )
    first = Detector(detector_settings, FEATURES)
    first.process(X[:200], keys=keys[:200])
    saved = first.to_dict()
    assert saved["models"]["layout"] == "columns"
    # Read as a list, the same entries as one model object per key would write.
    assert first.models.to_list() == [
        {
            "key": key,
            "state": state.model.to_dict(),
            "learned": state.learned,
            "run_length": state.run_length,
            "pending": [p.tolist() for p in state.pending],
        }
        for key, state in first.models.items()
    ]
    assert saved["models"]["pending"]
    second = Detector(detector_settings, FEATURES)
    second.restore(saved)
    assert second.to_dict() == saved
    np.testing.assert_array_equal(
        first.process(X[200:], keys=keys[200:]).score,
        second.process(X[200:], keys=keys[200:]).score,
    )


@pytest.mark.parametrize("share", [0.02, 0.3])
@pytest.mark.parametrize("flagged", ["clip", "exclude"])
@pytest.mark.parametrize("accept_after", [0, 2])
def test_a_wrong_foresight_changes_no_result(share: float, flagged: str, accept_after: int) -> None:
    # Rows guessed at random as the foreseen alerts: the first scan under that
    # plan settles the rows up to the first it got wrong, so the results are the
    # per-key loop's whatever the guess.
    rng = np.random.default_rng(7)

    def guess(model: object, X: np.ndarray, now: object, threshold: float) -> np.ndarray:
        return rng.random(X.shape[0]) < share

    with (
        mock.patch.object(keyed_foresight, "foreseen_alerts", guess),
        mock.patch.object(keyed_foresight, "FORESIGHT_ROWS", 8),
    ):
        _compare_bank_and_loop(Case(3, 3, 10, flagged, accept_after, None, True, True, 100))
