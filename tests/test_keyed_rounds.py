"""Keyed full-covariance models scored in rounds give what the per-key path and one event give."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from batch_runs import (
    assert_close,
    check_batch_sizes,
    check_reference,
    check_restore,
    run,
    settings_for,
)
from numpy.typing import NDArray

from stream_detect import keyed_rounds
from stream_detect.detections import Detections
from stream_detect.detector import Detector
from stream_detect.keyed_models import groups
from stream_detect.keyed_rounds import score_calm_keys
from stream_detect.segmented import segmented_comoments
from stream_detect.settings import DetectorSettings
from stream_detect.stats import RunningCovariance
from stream_detect.stats_for_many import learn_each_full

Array = NDArray[np.float64]
FEATURES = ("x", "y", "errors")
#: Where three keys' x moves 8 σ for good (accepted after three alerts).
SHIFT = 2000


def keyed_stream(keys: int, rows: int = 3000, seed: int = 7) -> tuple[Array, list[str], Any]:
    """Correlated noise per key, an error count, spikes, a level shift; and labels.

    Keys are uneven: the first ones carry many rows, most only a few. The
    error count is an integer feature (its variance floor comes and stays).
    About 3% of rows carry a label (held out from learning).
    """
    rng = np.random.default_rng(seed)
    key = np.minimum((keys * rng.random(rows) ** 2).astype(int), keys - 1)
    level = rng.normal(size=(keys, 2)) * 5.0 + [10.0, -3.0]
    X = np.column_stack(
        (
            rng.normal(size=(rows, 2)) @ np.array([[1.0, 0.0], [0.8, 0.6]]) + level[key],
            (rng.random(rows) < 0.05).astype(np.float64),
        )
    )
    spikes = rng.choice(np.arange(200, rows), size=rows // 50, replace=False)
    X[spikes, 1] += 12.0
    X[SHIFT:, 0] += np.where(key[SHIFT:] < 3, 8.0, 0.0)
    labels = np.where(rng.random(rows) < 0.03, rng.integers(0, 2, rows), -1).astype(np.int8)
    return X, [f"k{k}" for k in key], labels


def config_settings(flagged: str, half_life: float | None = None, **more: Any) -> DetectorSettings:
    more = {"accept_after": 3, "min_samples": 10, **more}
    return settings_for((flagged, True, half_life, "full"), **more)


@pytest.mark.parametrize("labelled", [False, True])
@pytest.mark.parametrize("flagged", ["clip", "exclude"])
@pytest.mark.parametrize("keys", [10, 200])
def test_every_batch_size_equals_the_per_event_reference(
    keys: int, flagged: str, labelled: bool
) -> None:
    X, names, labels = keyed_stream(keys)
    settings = config_settings(flagged, log_epsilon=-12.0)
    detectors = check_reference(
        settings, FEATURES, X, names, 8, labels=labels if labelled else None
    )
    # Spikes alert and the shift is accepted: the rounds' keys met the per-key ones.
    assert all(detector.alerts > 20 and detector.relearned > 0 for detector in detectors)


@pytest.mark.parametrize("half_life", [None, 300.0])
@pytest.mark.parametrize("keys", [10, 200])
def test_under_the_default_tail_every_batch_size_scores_as_one_event_at_a_time(
    keys: int, half_life: float | None
) -> None:
    X, names, labels = keyed_stream(keys)
    one = check_batch_sizes(config_settings("clip", half_life), FEATURES, X, names, 8, labels)
    assert one["alert"].sum() > 20


@pytest.mark.parametrize("split", [SHIFT + 1, SHIFT + 9])
def test_a_checkpoint_restored_mid_stream_continues_as_an_uninterrupted_run(split: int) -> None:
    X, names, _ = keyed_stream(200)
    check_restore(config_settings("clip"), FEATURES, X, names, split)


def wide_stream(features: int, keys: int = 100, rows: int = 2000) -> tuple[Array, list[str], Any]:
    """Correlated noise of many features per key, spikes, a level shift, some labels."""
    rng = np.random.default_rng(features)
    key = np.minimum((keys * rng.random(rows) ** 2).astype(int), keys - 1)
    mixing = np.eye(features) + 0.3 * rng.normal(size=(features, features)) / np.sqrt(features)
    X = rng.normal(size=(rows, features)) @ mixing + rng.normal(size=(keys, features))[key] * 5.0
    spikes = rng.choice(np.arange(300, rows), size=rows // 50, replace=False)
    X[spikes, 1] += 12.0
    X[1500:, 0] += np.where(key[1500:] < 3, 8.0, 0.0)
    labels = np.where(rng.random(rows) < 0.03, rng.integers(0, 2, rows), -1).astype(np.int8)
    return X, [f"k{k}" for k in key], labels


def wide_settings(**more: Any) -> DetectorSettings:
    return config_settings("clip", min_samples=30, **more)


def test_many_features_every_batch_size_equals_the_per_event_reference() -> None:
    # From 16 features the per-key path scores by low-rank updates, a round directly.
    X, names, labels = wide_stream(20)
    features = tuple(f"f{j}" for j in range(20))
    detectors = check_reference(wide_settings(log_epsilon=-25.0), features, X, names, 40, labels)
    assert all(detector.alerts > 10 for detector in detectors)


def test_many_features_under_the_default_tail_every_batch_size_scores_as_one_event() -> None:
    X, names, labels = wide_stream(20)
    features = tuple(f"f{j}" for j in range(20))
    one = check_batch_sizes(wide_settings(), features, X, names, 40, labels)
    assert one["alert"].sum() > 10


def every_field(
    detector: Detector, X: Array, keys: list[str], labels: Any, batch: int, every_score: bool
) -> Any:
    """Every field of every row's detection, the contributions of alerts included."""
    rows: dict[str, list[Any]] = {}
    for begin in range(0, X.shape[0], batch):
        part = slice(begin, begin + batch)
        out = detector.process(X[part], labels[part], keys[part], every_score=every_score)
        for name, value in vars(out).items():
            if name == "contributions":
                value = [value.get(i) for i in range(out.alert.size)]
            rows.setdefault(name, []).extend(list(value))
    return {name: np.array(values, dtype=object) for name, values in rows.items()}


@pytest.mark.parametrize(
    "settings",
    [{}, {"log_epsilon": -12.0}, {"max_keys": 50}, {"every_score": False}, {"features": 20}],
)
@pytest.mark.parametrize("batch", [7, 64, 4096])
def test_rounds_give_what_the_per_key_path_gives(
    monkeypatch: pytest.MonkeyPatch, batch: int, settings: dict[str, Any]
) -> None:
    # Writing alerts only, a row's score and tail are left NaN unless it alerts.
    settings = dict(settings)
    every_score = settings.pop("every_score", True)
    if "features" in settings:
        X, names, labels = wide_stream(settings["features"])
        features = tuple(f"f{j}" for j in range(X.shape[1]))
        config = wide_settings()
    else:
        X, names, labels = keyed_stream(200)
        features = FEATURES
        config = config_settings("clip", **settings)
    rounds = Detector(config, features)
    with_rounds = every_field(rounds, X, names, labels, batch, every_score)
    # Rounds of no rows: every key goes the per-key way.
    monkeypatch.setattr(keyed_rounds, "ROUND_ELEMENTS", 0)
    per_key = Detector(config, features)
    without = every_field(per_key, X, names, labels, batch, every_score)
    assert with_rounds.keys() == without.keys()
    # Many features: the per-key path's low-rank updates agree with a round's direct
    # factorisation to rounding times conditioning, so not on the first, ridge-borne
    # covariances of a model (as batch sizes do not either: check_batch_sizes).
    ready = without["n"].astype(int) >= (2 * X.shape[1] if "features" in settings else 0)
    for name, values in with_rounds.items():
        if name in ("log_p", "score", "distance_sq", "log_tail", "log_epsilon"):
            got, expected = values[ready].astype(float), without[name][ready].astype(float)
            assert_close(got, expected, name)
        elif name == "contributions":
            for got, expected in zip(values, without[name], strict=True):
                assert (got is None) == (expected is None)
                if got is not None:
                    assert list(got) == list(expected)
                    assert_close(
                        np.array(list(got.values())), np.array(list(expected.values())), name
                    )
        else:
            np.testing.assert_array_equal(values, without[name], err_msg=name)
    # Evictions keep most keys in warm-up when only 50 of 200 are kept.
    assert with_rounds["alert"].astype(bool).sum() > (0 if "max_keys" in settings else 10)
    assert rounds.models.evicted > 0 or "max_keys" not in settings
    assert rounds.models.evicted == per_key.models.evicted
    assert list(rounds.models) == list(per_key.models)
    assert rounds.learned_events == per_key.learned_events
    assert rounds.relearned == per_key.relearned


def test_calm_keys_are_scored_together_and_the_others_left() -> None:
    X, names, labels = keyed_stream(200, rows=1000)
    detector = Detector(config_settings("clip"), FEATURES)
    run(detector, X, names, 64, stop=900)
    piece = groups(names, 900, 1000)
    states = [detector.models.state_for(key) for key, _ in piece]
    # The key that has learned most is past its warm-up: its spike alerts.
    spiked = max(range(len(piece)), key=lambda index: states[index].learned)
    X = X.copy()
    X[piece[spiked][1][-1], 1] += 40.0
    learned = [state.learned for state in states]
    out = Detections.empty(X.shape[0])
    rest = score_calm_keys(detector.policy, piece, states, X, labels, -13.8, out)
    assert spiked in rest and len(rest) < len(piece) // 4
    for index, (_, rows) in enumerate(piece):
        if index in rest:
            # Left alone: nothing written, nothing learned.
            assert np.isnan(out.log_p[rows]).all() and states[index].learned == learned[index]
        else:
            assert not out.alert[rows].any()
            assert states[index].learned == learned[index] + np.count_nonzero(labels[rows] < 0)


def test_segmented_comoments_are_the_one_key_scan_bit_for_bit() -> None:
    rng = np.random.default_rng(1)
    d, lengths = 4, rng.integers(1, 40, 60)
    states = []
    for _ in lengths:
        state = RunningCovariance(d)
        if learned := int(rng.integers(0, 5)):
            state.learn(rng.normal(size=(learned, d)) * 3.0 + 100.0)
        states.append(state)
    X = rng.normal(size=(int(lengths.sum()), d)) + 100.0
    X[rng.random(X.shape[0]) < 0.05] = -0.0
    learn = rng.random(X.shape[0]) < 0.8
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    before, unsure = segmented_comoments(
        X,
        learn,
        starts,
        np.array([s.n for s in states]),
        np.stack([s.mean for s in states]),
        np.stack([s.second for s in states]),
    )
    assert not unsure.any()
    for state, start, length in zip(states, starts, lengths, strict=True):
        part = slice(start, start + length)
        expected = state.prequential(X[part], learn[part])
        for name in ("n", "mean", "second"):
            np.testing.assert_array_equal(getattr(before, name)[part], getattr(expected, name))


def test_a_key_whose_sums_cancel_is_left_to_the_one_key_scan() -> None:
    # The second key's history is a sliver at 0 (a restored or discounted model); its
    # rows sit at 1e9, 1e-3 apart: summed about 0, their spread cancels nine digits.
    X = np.array([[5.0], [1e9], [1e9 + 1e-3], [1e9]])
    n0, zeros = np.array([0.0, 1e-9]), np.zeros((2, 1))
    _, unsure = segmented_comoments(
        X, np.ones(4, bool), np.array([0, 1]), n0, zeros, zeros[..., None]
    )
    assert unsure.tolist() == [False, True]


@pytest.mark.parametrize("rows", [1, 2, 3, 17])
def test_learn_each_full_is_learn_bit_for_bit(rows: int) -> None:
    rng = np.random.default_rng(rows)
    d = 5
    states = []
    for _ in range(100):
        state = RunningCovariance(d)
        if learned := int(rng.integers(0, 4)):
            state.learn(rng.normal(size=(learned, d)) * rng.uniform(0.1, 1e3) + 50.0)
        states.append(state)
    X = rng.normal(size=(100, rows, d)) * 10.0
    X[rng.random(X.shape) < 0.1] = -0.0
    n, mean, second = learn_each_full(
        np.array([s.n for s in states]),
        np.stack([s.mean for s in states]),
        np.stack([s.second for s in states]),
        X,
    )
    for k, state in enumerate(states):
        state.learn(X[k])
        assert state.n == n[k]
        np.testing.assert_array_equal(state.mean, mean[k])
        np.testing.assert_array_equal(state.second, second[k])


def test_models_of_more_features_than_rounds_take_go_key_by_key() -> None:
    features = tuple(f"f{j}" for j in range(keyed_rounds.MOST_FEATURES + 1))
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, len(features)))
    names = [f"k{i % 40}" for i in range(200)]
    detector = Detector(config_settings("clip"), features)
    run(detector, X, names, 100, stop=100)
    piece = groups(names, 100, 200)
    states = [detector.models.state_for(key) for key, _ in piece]
    out = Detections.empty(200)
    labels = np.full(200, -1, np.int8)
    rest = score_calm_keys(detector.policy, piece, states, X, labels, -13.8, out)
    assert rest == list(range(len(piece))) and np.isnan(out.log_p).all()
