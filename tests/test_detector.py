"""Tests of stream_detect.detector against the per-event reference in tests/reference.py.

With a fixed log epsilon and no re-tuning the vectorised detector must give,
event by event, what the obviously-correct loop gives, however the stream is
cut into batches. The remaining tests pin down the semantics the reference
does not model: re-tuning, warm-up, keys, eviction, drift, feedback and
checkpoints.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import orjson
import pytest
import scipy.stats
from numpy.typing import NDArray
from reference import ReferenceResult, reference_run

from stream_detect.detector import Detector
from stream_detect.errors import ModelError
from stream_detect.settings import DEFAULT_LOG_TAIL_EPSILON, DetectorSettings
from stream_detect.threshold import best_log_threshold

Array = NDArray[np.float64]
Labels = NDArray[np.int8]
FEATURES = ("x", "y", "z")
D = len(FEATURES)
FIELDS = ("log_p", "score", "distance_sq", "log_epsilon", "alert", "warmup", "n")


@dataclass
class Stream:
    X: Array
    labels: Labels
    keys: list[str]
    ids: list[str | None]

    def __len__(self) -> int:
        return int(self.X.shape[0])


def make_stream(rows: int = 500, seed: int = 0) -> Stream:
    """Correlated normal events with spikes, a 40-event level shift, labels and two keys.

    The spikes are labelled 1 now and then and a few normal events 0, so
    re-tuning by F1 has something to work with.
    """
    rng = np.random.default_rng(seed)
    mixing = np.array([[1.0, 0.0, 0.0], [0.6, 2.0, 0.0], [0.0, -0.3, 0.5]])
    X = rng.normal(size=(rows, D)) @ mixing.T + [10.0, -5.0, 2.0]
    spikes = rng.choice(np.arange(60, rows), size=rows // 40, replace=False)
    signs = rng.choice([-1.0, 1.0], size=(spikes.size, 1))
    X[spikes] += signs * rng.uniform(6.0, 9.0, (spikes.size, 1)) * [1.0, 2.0, 0.5]
    shift = slice(rows // 2, rows // 2 + 40)
    X[shift] += [8.0, 0.0, 0.0]
    labels = np.full(rows, -1, dtype=np.int8)
    labels[spikes[::2]] = 1
    normal = np.setdiff1d(np.arange(rows), spikes)
    labels[rng.choice(normal, size=rows // 25, replace=False)] = 0
    keys = ["a" if r < 0.6 else "b" for r in rng.random(rows)]
    ids: list[str | None] = [f"e{i}" for i in range(rows)]
    return Stream(X, labels, keys, ids)


def run(detector: Detector, stream: Stream, batch: int, *, keyed: bool) -> dict[str, Any]:
    """Feed ``stream`` in batches of ``batch`` events; concatenate the per-event results."""
    parts: dict[str, list[Any]] = {name: [] for name in FIELDS}
    contributions: dict[int, dict[str, float]] = {}
    for begin in range(0, len(stream), batch):
        part = slice(begin, begin + batch)
        out = detector.process(
            stream.X[part],
            stream.labels[part],
            stream.keys[part] if keyed else None,
            stream.ids[part],
        )
        for name in FIELDS:
            parts[name].append(getattr(out, name))
        contributions.update({begin + i: c for i, c in out.contributions.items()})
    result: dict[str, Any] = {name: np.concatenate(values) for name, values in parts.items()}
    result["contributions"] = contributions
    return result


def settings_for(
    policy: str, accept_after: int, keyed: bool, half_life: float | None, model: str
) -> DetectorSettings:
    """Fixed log epsilon, no re-tuning: the conditions the reference models."""
    return DetectorSettings(
        model=model,
        flagged=policy,
        accept_after=accept_after,
        key_field="host" if keyed else None,
        half_life=half_life,
        # log p of this stream sits near -5; the scale-free score near -3.
        log_epsilon=-9.0 if keyed else -12.0,
        min_samples=20,
        retune_every=0,
        retune_labels=0,
    )


_REFERENCE_CACHE: dict[tuple[DetectorSettings, int], ReferenceResult] = {}


def reference_for(settings: DetectorSettings, stream: Stream) -> ReferenceResult:
    """The reference's results, computed once per settings (the loop is slow)."""
    cache_key = (settings, id(stream))
    if cache_key not in _REFERENCE_CACHE:
        keys = stream.keys if settings.key_field is not None else None
        _REFERENCE_CACHE[cache_key] = reference_run(settings, stream.X, stream.labels, keys)
    return _REFERENCE_CACHE[cache_key]


def assert_matches_reference(
    result: dict[str, Any], settings: DetectorSettings, stream: Stream
) -> None:
    expected = reference_for(settings, stream)
    np.testing.assert_array_equal(result["n"], expected.n)
    np.testing.assert_array_equal(result["warmup"], expected.warmup)
    np.testing.assert_array_equal(result["alert"], expected.alert)
    # Earlier rows of a full model have near-singular covariances: their scores
    # are ill-conditioned and nothing may be decided on them (warm-up covers them).
    comparable = result["n"] >= (D + 1 if settings.model == "full" else 1)
    for name in ("log_p", "score"):
        np.testing.assert_allclose(
            result[name][comparable], getattr(expected, name)[comparable], rtol=1e-9, atol=1e-9
        )
    assert np.all(np.isnan(result["log_p"][result["n"] == 0]))
    assert np.all(result["log_epsilon"] == settings.log_epsilon), "epsilon must stay fixed"
    assert expected.alert.sum() >= 10, "the stream should raise alerts under every policy"


#: What is learned of a flagged event: excluded (with and without re-admitting
#: runs), clipped to the boundary, or learned.
POLICIES = [("exclude", 0), ("exclude", 10), ("clip", 10), ("learn", 0)]
CONFIGS = [
    (policy, after, keyed, half_life, model)
    for (policy, after), keyed, half_life, model in itertools.product(
        POLICIES, [False, True], [None, 300.0], ["diagonal", "full"]
    )
]


def config_id(config: tuple[Any, ...]) -> str:
    policy, after, keyed, half_life, model = config
    return f"{policy}{after or ''}-{'keyed' if keyed else 'single'}-hl{half_life}-{model}"


@pytest.fixture(scope="module")
def stream() -> Stream:
    return make_stream()


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
@pytest.mark.parametrize("batch", [7, 4096])
def test_detector_equals_the_per_event_reference(
    stream: Stream, batch: int, config: tuple[Any, ...]
) -> None:
    settings = settings_for(*config)
    detector = Detector(settings, FEATURES)
    result = run(detector, stream, batch, keyed=settings.key_field is not None)
    assert_matches_reference(result, settings, stream)
    if config[:2] == ("exclude", 10):
        assert detector.relearned > 0, "the level shift should be re-admitted as a run"


#: One event per call is slow, so it runs on a covering subset: every policy
#: with both models, both settings of keyed and of half_life; every model with
#: all four combinations of keyed and half_life.
ONE_AT_A_TIME = [
    ("exclude", 0, False, None, "diagonal"),
    ("exclude", 0, True, 300.0, "full"),
    ("exclude", 10, True, None, "diagonal"),
    ("exclude", 10, False, 300.0, "full"),
    ("clip", 10, False, 300.0, "diagonal"),
    ("clip", 10, True, None, "full"),
    ("learn", 0, True, 300.0, "diagonal"),
    ("learn", 0, False, None, "full"),
]


@pytest.mark.parametrize("config", ONE_AT_A_TIME, ids=config_id)
def test_detector_one_event_at_a_time_equals_the_per_event_reference(
    stream: Stream, config: tuple[Any, ...]
) -> None:
    settings = settings_for(*config)
    result = run(Detector(settings, FEATURES), stream, 1, keyed=settings.key_field is not None)
    assert_matches_reference(result, settings, stream)


@pytest.mark.parametrize(
    "config",
    [("exclude", 10, True, None, "diagonal"), ("clip", 10, False, 300.0, "full")],
    ids=config_id,
)
@pytest.mark.parametrize("batch", [1, 4096])
def test_learning_labelled_events_equals_the_per_event_reference(
    stream: Stream, batch: int, config: tuple[Any, ...]
) -> None:
    settings = replace(settings_for(*config), learn_labelled=True)
    result = run(Detector(settings, FEATURES), stream, batch, keyed=settings.key_field is not None)
    assert_matches_reference(result, settings, stream)


# ---------------------------------------------------------------- re-tuning is batch-independent


def retuning_settings(**overrides: Any) -> DetectorSettings:
    base = DetectorSettings(
        key_field="host",
        min_samples=20,
        log_epsilon=None,
        retune_every=60,
        retune_labels=4,
        min_positive_labels=2,
        min_negative_labels=5,
        flagged="exclude",
        accept_after=10,
    )
    return replace(base, **overrides)


@pytest.mark.parametrize("model", ["diagonal", "full"])
def test_retuning_gives_the_same_output_for_any_batch_size(stream: Stream, model: str) -> None:
    settings = retuning_settings(model=model)
    results = {}
    detectors = {}
    for batch in (1, 7, 4096):
        detectors[batch] = Detector(settings, FEATURES)
        results[batch] = run(detectors[batch], stream, batch, keyed=True)
    one = results[1]
    sources = {d.epsilon_source for d in detectors.values()}
    assert sources == {"f1"}, "the stream's labels should have tuned epsilon by F1"
    changes = np.flatnonzero(np.diff(np.nan_to_num(one["log_epsilon"], nan=1e300)) != 0)
    assert changes.size >= 5, "epsilon should have been re-chosen several times"
    for batch in (7, 4096):
        other = results[batch]
        for name in ("alert", "warmup", "n"):
            np.testing.assert_array_equal(other[name], one[name], err_msg=f"{name}, batch {batch}")
        # Prefix sums round differently from one-by-one updates: equal to ~1e-12,
        # except where a full covariance is still singular (warm-up covers those).
        comparable = one["n"] >= (D + 1 if model == "full" else 1)
        for name in ("log_p", "score"):
            np.testing.assert_allclose(
                other[name][comparable], one[name][comparable], rtol=1e-9, atol=1e-9
            )
        np.testing.assert_allclose(other["log_epsilon"], one["log_epsilon"], rtol=1e-9)
        # ... but epsilon is re-chosen at exactly the same events.
        other_changes = np.flatnonzero(np.diff(np.nan_to_num(other["log_epsilon"], nan=1e300)) != 0)
        np.testing.assert_array_equal(other_changes, changes)
        assert detectors[batch].retunes == detectors[1].retunes
        assert other["contributions"].keys() == one["contributions"].keys()


# ---------------------------------------------------------------- warm-up, labels, keys


def normal_rows(rows: int, seed: int, loc: float = 0.0, scale: float = 1.0) -> Array:
    return loc + scale * np.random.default_rng(seed).normal(size=(rows, D))


def unlabelled(rows: int) -> Labels:
    return np.full(rows, -1, dtype=np.int8)


def test_no_alert_before_min_samples_are_learned() -> None:
    X = normal_rows(120, 1)
    X[10] = X[40] = [50.0, 50.0, 50.0]  # absurd outliers, during and after warm-up
    settings = DetectorSettings(min_samples=30, log_epsilon=-15.0, retune_every=0)
    out = Detector(settings, FEATURES).process(X, unlabelled(120))
    assert not out.alert[10] and out.warmup[10] and np.isfinite(out.log_p[10])
    assert out.log_p[10] < -15.0, "scored as anomalous, yet not alerted"
    # The outlier at 10 was learned (no alerts in warm-up), so learned counts run on.
    np.testing.assert_array_equal(out.n[:31], np.arange(31))
    np.testing.assert_array_equal(out.warmup, out.n < 30)
    assert out.alert[40] and np.flatnonzero(out.alert).tolist() == [40]


def test_warm_up_is_per_key() -> None:
    X = normal_rows(200, 2)
    keys = ["a"] * 150 + ["b"] * 50
    X[160] = [40.0, 40.0, 40.0]  # key b's 11th event
    settings = DetectorSettings(key_field="host", min_samples=30, log_epsilon=-15.0, retune_every=0)
    out = Detector(settings, FEATURES).process(X, unlabelled(200), keys)
    assert not out.warmup[149] and out.warmup[150]
    assert out.n[150] == 0 and out.n[160] == 10
    assert not out.alert[160] and out.warmup[160]
    np.testing.assert_array_equal(out.warmup[150:], np.arange(50) < 30)


def test_a_full_model_warms_up_for_at_least_d_plus_one_events() -> None:
    X = normal_rows(40, 18)
    X[5] = [30.0, -30.0, 30.0]
    # 2 is the least min_samples a full model accepts; d + 1 = 4 is what it needs.
    settings = DetectorSettings(model="full", min_samples=2, log_epsilon=-15.0, retune_every=0)
    out = Detector(settings, FEATURES).process(X, unlabelled(40))
    np.testing.assert_array_equal(out.warmup, out.n < D + 1)
    assert out.alert[5] and not out.alert[:5].any()
    diagonal = Detector(replace(settings, model="diagonal"), FEATURES).process(X, unlabelled(40))
    np.testing.assert_array_equal(diagonal.warmup, diagonal.n < 2)


@pytest.mark.parametrize("learn_labelled", [False, True])
def test_labelled_events_are_held_out_unless_asked(learn_labelled: bool) -> None:
    X = normal_rows(300, 3, loc=5.0)
    labels = unlabelled(300)
    labels[::3] = 0
    labels[1::30] = 1
    X[1::30] += 3.0  # labelled anomalies: learning them would move the mean
    settings = DetectorSettings(
        log_epsilon=-1e9, learn_labelled=learn_labelled, retune_every=0, retune_labels=0
    )
    detector = Detector(settings, FEATURES)
    out = detector.process(X, labels)
    learned = np.ones(300, bool) if learn_labelled else labels < 0
    np.testing.assert_array_equal(out.n, np.concatenate(([0], np.cumsum(learned)[:-1])))
    state = detector.models[""]
    assert state.learned == learned.sum()
    stats = state.model.stats  # type: ignore[attr-defined]
    np.testing.assert_allclose(stats.mean, X[learned].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.var, X[learned].var(axis=0), rtol=1e-10)
    assert detector.validation.n_negative == 100 and detector.validation.n_positive == 10


def test_keyed_models_do_not_mix() -> None:
    quiet = normal_rows(300, 4, loc=1000.0, scale=1e-3)
    loud = normal_rows(300, 5, loc=0.0, scale=1.0)
    X = np.empty((600, D))
    X[0::2], X[1::2] = loud, quiet
    keys = ["loud", "quiet"] * 300
    settings = DetectorSettings(key_field="host", min_samples=20, log_epsilon=-20.0, retune_every=0)
    detector = Detector(settings, FEATURES)
    out = detector.process(X, unlabelled(600), keys)
    assert not out.alert.any()
    np.testing.assert_array_equal(out.n[0::2], np.arange(300))
    np.testing.assert_array_equal(out.n[1::2], np.arange(300))
    for key, rows in (("loud", loud), ("quiet", quiet)):
        stats = detector.models[key].model.stats  # type: ignore[attr-defined]
        np.testing.assert_allclose(stats.mean, rows.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(stats.var, rows.var(axis=0), rtol=1e-9)
    # An ordinary loud event: normal for "loud", absurd for "quiet".
    probe = np.array([[1000.5, 999.5, 1000.0]])
    probe_loud = np.array([[0.5, -0.5, 0.0]])
    first = detector.process(probe_loud, unlabelled(1), ["loud"])
    second = detector.process(probe_loud, unlabelled(1), ["quiet"])
    third = detector.process(probe, unlabelled(1), ["quiet"])
    assert not first.alert[0] and second.alert[0] and third.alert[0]
    assert first.n[0] == 300 and second.n[0] == 300


def test_the_least_recently_seen_key_is_evicted() -> None:
    settings = DetectorSettings(key_field="host", max_keys=2, min_samples=5, retune_every=0)
    detector = Detector(settings, FEATURES)
    X = normal_rows(40, 6)

    def feed(rows: slice, key: str) -> Any:
        count = rows.stop - rows.start
        return detector.process(X[rows], unlabelled(count), [key] * count)

    feed(slice(0, 10), "a")
    feed(slice(10, 20), "b")
    feed(slice(20, 25), "a")  # a is now the most recently seen
    feed(slice(25, 30), "c")
    assert list(detector.models) == ["a", "c"] and detector.evicted == 1
    again = feed(slice(30, 40), "b")  # b starts over, and a goes
    assert again.n.tolist() == list(range(10)) and again.warmup[:5].all()
    assert list(detector.models) == ["c", "b"] and detector.evicted == 2
    assert detector.summary()["evicted_models"] == 2
    # An evicted key has no model: it scores NaN until it is seen again.
    assert np.isnan(detector.score_rows(X[:1], ["a"])).all()


def lru_reference(keys: list[str], max_keys: int) -> tuple[list[str], int, list[int]]:
    """Event-by-event LRU of models: final keys (oldest first), evictions, and n per event."""
    models: OrderedDict[str, int] = OrderedDict()
    evicted = 0
    n = []
    for key in keys:
        if key in models:
            models.move_to_end(key)
        else:
            models[key] = 0
            while len(models) > max_keys:
                models.popitem(last=False)
                evicted += 1
        n.append(models[key])
        models[key] += 1
    return list(models), evicted, n


@pytest.mark.parametrize("batch", [1, 2, 5, 64])
def test_eviction_follows_the_event_order_whatever_the_batch_size(batch: int) -> None:
    rng = np.random.default_rng(15)
    keys = [str(k) for k in rng.choice(["a", "b", "c", "d"], size=64, p=[0.4, 0.3, 0.2, 0.1])]
    keys[:5] = ["b", "a", "c", "a", "b"]
    settings = DetectorSettings(key_field="host", max_keys=2, min_samples=3, retune_every=0)
    detector = Detector(settings, FEATURES)
    X = normal_rows(64, 16)
    stream = Stream(X, unlabelled(64), keys, [None] * 64)
    result = run(detector, stream, batch, keyed=True)
    final, evicted, n = lru_reference(keys, 2)
    assert evicted > 10, "the key sequence should force many evictions"
    assert list(detector.models) == final and detector.evicted == evicted
    np.testing.assert_array_equal(result["n"], n)


def test_eviction_in_one_batch_goes_by_the_last_appearance_of_each_key() -> None:
    keys = ["a", "b", "a", "c", "b"]
    settings = DetectorSettings(key_field="host", max_keys=2, retune_every=0)
    detector = Detector(settings, FEATURES)
    out = detector.process(normal_rows(5, 17), unlabelled(5), keys)
    # Event by event: c evicts b (a was seen after it), then b evicts a.
    assert detector.evicted == 2
    assert out.n.tolist() == [0, 0, 1, 0, 0]


# ---------------------------------------------------------------- drift: a step in the mean


def step_stream(before: int = 2000, after: int = 1500) -> Array:
    X = normal_rows(before + after, 8)
    X[before:] += 6.0  # every feature moves by six standard deviations, for good
    return X


def burst(settings: DetectorSettings, X: Array, before: int = 2000) -> NDArray[np.intp]:
    """Positions (after the step) of the alerts raised."""
    out = Detector(settings, FEATURES).process(X, unlabelled(X.shape[0]))
    assert not out.alert[:before].any()
    return np.flatnonzero(out.alert[before:])


# Flagged events excluded, a run of 25 accepted, a fixed log epsilon (no labels, so it
# stays): chi-square_3 > 24 is rare.
DEFAULTS = DetectorSettings(log_epsilon=-15.0, flagged="exclude", accept_after=25)


def test_a_step_change_gives_a_burst_of_alerts_that_ends_at_its_acceptance() -> None:
    alerts = burst(DEFAULTS, step_stream())
    # The 25 alerts that build the deviation up to acceptance, then silence: the
    # history is discounted before the accepted rows are learned, so the new level
    # is learned at once (without the discount: 324 alerts, the last one 627 events
    # after the step, as 2,000 events of the old level held the model back).
    assert alerts.min() == 0, "a real level shift must be reported at once"
    np.testing.assert_array_equal(alerts, np.arange(DEFAULTS.accept_after))


def test_without_relearning_a_step_change_alerts_forever() -> None:
    # The trade-off behind accept_after: excluding every flagged event means
    # the model never sees the new level, so every later event is an alert.
    alerts = burst(replace(DEFAULTS, accept_after=0), step_stream())
    assert alerts.size == 1500


def test_a_half_life_shortens_the_burst() -> None:
    X = step_stream()
    # Every alert learned as it is: nothing is accepted, the old level only weighs less.
    learning = replace(DEFAULTS, flagged="learn", accept_after=0)
    default = burst(learning, X)
    forgetting = burst(replace(learning, half_life=500.0), X)
    # Measured: 85 alerts, the last one 129 events after the step (258 and 553 without).
    assert forgetting.max() < 400 and forgetting.max() < default.max() / 2
    assert forgetting.size < default.size / 2


# ---------------------------------------------------------------- re-tuning epsilon


def labelled_validation(seed: int = 9) -> tuple[Array, Array, Labels]:
    """Normal training rows, then labelled normal rows and labelled anomalies."""
    rng = np.random.default_rng(seed)
    train = rng.normal(size=(600, D)) * [1.0, 2.0, 0.5] + [3.0, 0.0, -1.0]
    normal = rng.normal(size=(80, D)) * [1.0, 2.0, 0.5] + [3.0, 0.0, -1.0]
    odd = rng.normal(size=(12, D)) * [1.0, 2.0, 0.5] + [3.0, 0.0, -1.0]
    odd += rng.choice([-1.0, 1.0], size=(12, D)) * rng.uniform(1.5, 5.0, (12, D))
    X = np.concatenate([normal, odd])
    y = np.concatenate([np.zeros(80, np.int8), np.ones(12, np.int8)])
    order = rng.permutation(X.shape[0])
    return train, X[order], y[order]


def test_retune_sets_the_best_f1_threshold_of_the_rescored_validation_buffer() -> None:
    # The classic rule: a given log epsilon makes the score log p(x), and F1 re-tunes it.
    train, X_val, y_val = labelled_validation()
    settings = DetectorSettings(log_epsilon=-1e6, retune_every=0, retune_labels=0)
    detector = Detector(settings, FEATURES)
    first = detector.process(train, unlabelled(train.shape[0]))
    assert not first.alert.any() and detector.epsilon_source == "initial"
    detector.process(X_val, y_val)
    assert detector.retune()
    # Independently: the Gaussian of the (unlabelled) training rows, scored by SciPy.
    expected_scores = scipy.stats.norm.logpdf(
        X_val, train.mean(axis=0), train.std(axis=0, ddof=0)
    ).sum(axis=1)
    expected = best_log_threshold(y_val, expected_scores)
    assert detector.epsilon_source == "f1"
    assert detector.log_epsilon == pytest.approx(expected.log_epsilon, rel=1e-9)
    assert detector.last_choice is not None
    assert detector.last_choice.f1 == expected.f1 and expected.f1 > 0.5
    summary = detector.summary()
    assert summary["epsilon_source"] == "f1" and summary["f1"] == expected.f1


def test_without_a_given_epsilon_f1_retunes_the_log_tail() -> None:
    # No log epsilon given: the score is the prior's Student-t tails combined by
    # Fisher's method, and F1 re-tunes the threshold on that same score.
    train, X_val, y_val = labelled_validation()
    settings = DetectorSettings(retune_every=0, retune_labels=0)
    detector = Detector(settings, FEATURES)
    detector.process(train, unlabelled(train.shape[0]))
    detector.process(X_val, y_val)
    assert detector.retune()
    n = train.shape[0]
    kappa, alpha = 1e-3 + n, 1.0 + n / 2
    mean = n * train.mean(axis=0) / kappa
    beta = 1e-6 + 0.5 * n * train.var(axis=0) + 1e-3 * n * train.mean(axis=0) ** 2 / (2 * kappa)
    scale = np.sqrt(beta * (kappa + 1) / (alpha * kappa))
    t = np.abs(X_val - mean) / scale
    feature_log_p = np.log(2.0) + scipy.stats.t.logsf(t, 2 * alpha)
    expected_scores = scipy.stats.chi2.logsf(-2.0 * feature_log_p.sum(axis=1), 2 * D)
    expected = best_log_threshold(y_val, expected_scores)
    assert detector.epsilon_source == "f1"
    assert detector.log_epsilon == pytest.approx(expected.log_epsilon, rel=1e-6)
    assert detector.last_choice is not None and detector.last_choice.f1 == expected.f1


def test_labels_trigger_retuning_by_themselves() -> None:
    train, X_val, y_val = labelled_validation()
    settings = DetectorSettings(
        log_epsilon=-30.0, retune_every=0, retune_labels=10, min_negative_labels=5
    )
    detector = Detector(settings, FEATURES)
    detector.process(train, unlabelled(train.shape[0]))
    out = detector.process(X_val, y_val)
    assert detector.epsilon_source == "f1" and detector.log_epsilon != -30.0
    assert detector.retunes == X_val.shape[0] // 10
    # The rows before the first re-tune were judged with the initial epsilon.
    first_change = int(np.flatnonzero(out.log_epsilon != -30.0)[0])
    assert out.log_epsilon[0] == -30.0 and first_change >= 10


def test_too_few_labels_keep_the_fixed_tail_default() -> None:
    # The no-label rule: log_tail_epsilon on the log tail, from the first event, never
    # moved by the scores of the stream (so alerts cannot lower it).
    X = normal_rows(1000, 10)
    X[600:700] += 25.0  # an incident: a quantile of these scores would drop
    labels = unlabelled(1000)
    labels[500] = 1  # one positive label: too few to tune by F1
    settings = DetectorSettings(retune_every=100, min_samples=20, accept_after=0)
    detector = Detector(settings, FEATURES)
    out = detector.process(X, labels)
    assert detector.retune() is False
    assert detector.epsilon_source == "default"
    assert detector.log_epsilon == DEFAULT_LOG_TAIL_EPSILON
    assert np.all(out.log_epsilon == DEFAULT_LOG_TAIL_EPSILON)
    np.testing.assert_array_equal(out.score, out.log_tail)
    assert out.alert[600:700].all()


def test_too_few_labels_keep_an_explicit_epsilon() -> None:
    X = normal_rows(1000, 11)
    labels = unlabelled(1000)
    labels[[100, 200]] = [1, 0]
    settings = DetectorSettings(log_epsilon=-20.0, retune_every=100)
    detector = Detector(settings, FEATURES)
    out = detector.process(X, labels)
    assert detector.retune() is False
    assert detector.log_epsilon == -20.0 and detector.epsilon_source == "initial"
    assert np.all(out.log_epsilon == -20.0)
    assert detector.retunes >= 10


def test_a_model_without_a_tail_raises_nothing_until_labels_set_epsilon() -> None:
    X = normal_rows(300, 12)
    X[200] = 100.0
    settings = DetectorSettings(model="river:HalfSpaceTrees", min_samples=10)
    out = Detector(settings, FEATURES).process(X, unlabelled(300))
    assert not out.alert.any() and np.isnan(out.log_epsilon).all()


# ---------------------------------------------------------------- feedback labels


def test_feedback_labels_join_the_validation_buffer_by_id() -> None:
    train, X_val, y_val = labelled_validation()
    settings = DetectorSettings(
        log_epsilon=-40.0, retune_every=0, retune_labels=20, min_negative_labels=5, id_memory=200
    )
    detector = Detector(settings, FEATURES)
    detector.process(train, unlabelled(600), ids=[f"t{i}" for i in range(600)])
    ids: list[str | None] = [f"v{i}" for i in range(X_val.shape[0])]
    ids[0] = None  # events without an id are not remembered
    detector.process(X_val, unlabelled(X_val.shape[0]), ids=ids)
    assert detector.validation.n_positive == 0
    assert detector.label_event("no-such-id", 1) is None
    assert detector.label_event("t0", 0) is None, "only the last 200 ids are remembered"
    for given, i in enumerate(range(1, X_val.shape[0]), start=1):
        assert detector.label_event(f"v{i}", int(y_val[i])) is not None
        assert detector.retunes == given // 20, "every 20 labels re-tune"
    assert detector.validation.n_positive == int(y_val[1:].sum())
    assert detector.validation.n_negative == int((y_val[1:] == 0).sum())
    # The buffer holds the remembered vectors themselves, to be re-scored.
    X_buffer, _, _ = detector.validation.arrays()
    assert sorted(map(tuple, X_buffer.tolist())) == sorted(map(tuple, X_val[1:].tolist()))
    assert detector.retunes == (X_val.shape[0] - 1) // 20
    assert detector.epsilon_source == "f1"


def test_a_repeated_label_changes_nothing_and_a_different_one_corrects() -> None:
    # A second label for an event added a second row, and counted towards the next re-tune.
    settings = DetectorSettings(log_epsilon=-40.0, retune_every=0, retune_labels=3, id_memory=10)
    detector = Detector(settings, FEATURES)
    labels = unlabelled(5)
    labels[4] = 1  # an inline label, on an event with an id
    detector.process(normal_rows(5, 3), labels, ids=[f"e{i}" for i in range(5)])
    assert detector.label_event("e0", 1) == "new"
    assert [detector.label_event("e0", 1), detector.label_event("e4", 1)] == ["repeated"] * 2
    assert detector.tuner.labels_since_retune == 2 and detector.retunes == 0
    assert detector.label_event("e4", 0) == "corrected"
    assert detector.retunes == 1, "a correction is a new label for the re-tune schedule"
    assert (detector.validation.n_positive, detector.validation.n_negative) == (1, 1)
    assert detector.label_event("nowhere", 1) is None
    assert detector.label_event("e0", 0) is not None and detector.label_event("x", 0) is None


# ---------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("model", ["diagonal", "full"])
def test_a_restored_detector_continues_exactly_like_an_uninterrupted_one(
    stream: Stream, model: str
) -> None:
    settings = retuning_settings(model=model, half_life=200.0)
    split = 254  # inside the level shift: a run of alerts is pending acceptance
    first = slice(0, split)
    head = Stream(stream.X[first], stream.labels[first], stream.keys[first], stream.ids[first])
    rest = slice(split, None)
    tail = Stream(stream.X[rest], stream.labels[rest], stream.keys[rest], stream.ids[rest])

    uninterrupted = Detector(settings, FEATURES)
    run(uninterrupted, head, 50, keyed=True)
    interrupted = Detector(settings, FEATURES)
    run(interrupted, head, 50, keyed=True)
    assert any(state.pending for state in interrupted.models.values())
    assert interrupted.tuner.labels_since_retune > 0
    saved = orjson.dumps(interrupted.to_dict())
    restored = Detector(settings, FEATURES)
    restored.restore(orjson.loads(saved))
    assert orjson.dumps(restored.to_dict()) == saved
    assert restored.summary() == uninterrupted.summary()
    # Feedback on an event from before the checkpoint still finds it.
    assert restored.label_event("e10", 0) == uninterrupted.label_event("e10", 0) is not None

    expected = run(uninterrupted, tail, 50, keyed=True)
    actual = run(restored, tail, 50, keyed=True)
    for name in FIELDS:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
    assert actual["contributions"] == expected["contributions"]
    assert restored.summary() == uninterrupted.summary()
    assert orjson.dumps(restored.to_dict()) == orjson.dumps(uninterrupted.to_dict())


def test_restore_refuses_a_checkpoint_written_with_other_settings() -> None:
    detector = Detector(DetectorSettings(model="diagonal"), FEATURES)
    detector.process(normal_rows(10, 13), unlabelled(10))
    state = orjson.loads(orjson.dumps(detector.to_dict()))
    with pytest.raises(ModelError, match="model"):
        Detector(DetectorSettings(model="full"), FEATURES).restore(state)
    with pytest.raises(ModelError, match="features"):
        Detector(DetectorSettings(), ("x", "y")).restore(state)
    with pytest.raises(ModelError, match="half_life"):
        Detector(DetectorSettings(half_life=10.0), FEATURES).restore(state)


# ---------------------------------------------------------------- explanations


def test_an_alert_names_the_features_that_drove_it() -> None:
    X = normal_rows(300, 14)
    X[250] = [0.0, 9.0, 0.5]
    settings = DetectorSettings(log_epsilon=-15.0, top_contributions=2, retune_every=0)
    out = Detector(settings, FEATURES).process(X, unlabelled(300))
    assert np.flatnonzero(out.alert).tolist() == [250]
    explanation = out.contributions[250]
    assert list(explanation) == ["y", "z"] and explanation["y"] > 60


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"log_epsilon": -12.0},
        {"key_field": "host"},
        {"key_field": "host", "log_epsilon": -20.0},
        {"flagged": "exclude", "accept_after": 30},
        {"flagged": "learn", "half_life": 200.0},
        {"model": "full"},
    ],
)
def test_scoring_alerts_only_decides_and_learns_exactly_as_scoring_every_row(
    changes: dict[str, Any],
) -> None:
    rng = np.random.default_rng(11)
    X = rng.standard_t(4, size=(3000, 3))
    X[rng.random(3000) < 0.02] += 9.0
    X[2000:2100] += 6.0  # a level shift: a run of alerts, then acceptance
    keys = [f"h{k}" for k in rng.integers(0, 5, size=3000)] if "key_field" in changes else None
    settings = DetectorSettings(min_samples=20, **changes)
    every, alerts_only = Detector(settings, ("a", "b", "c")), Detector(settings, ("a", "b", "c"))
    alerts = 0
    for start in range(0, 3000, 700):
        rows = slice(start, start + 700)
        part = keys[rows] if keys is not None else None
        full = every.process(X[rows], keys=part)
        some = alerts_only.process(X[rows], keys=part, every_score=False)
        alerts += int(full.alert.sum())
        for name in ("alert", "warmup", "n", "log_p", "distance_sq", "log_epsilon"):
            np.testing.assert_array_equal(getattr(some, name), getattr(full, name))
        assert some.contributions == full.contributions
        for name in ("score", "log_tail"):
            written = getattr(some, name)[full.alert]
            np.testing.assert_array_equal(written, getattr(full, name)[full.alert])
        if settings.model != "full":
            # The tails of the rows that are not written are never computed.
            assert np.isnan(some.log_tail[~full.alert]).all()
    assert alerts > 20
    assert orjson.dumps(every.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY) == orjson.dumps(
        alerts_only.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY
    )
