"""Time-series features and the likelihood alert rule inside the streaming detector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stream_detect.assembly import run_stream
from stream_detect.config import settings_from_mapping
from stream_detect.errors import ConfigError
from stream_detect.likelihood import AnomalyLikelihood
from stream_detect.series import SeriesDetector, build_detector
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.testing import ListSink, ListSource

DERIVED = {
    "v_seasonal": {"of": "v", "kind": "seasonal", "season": "hour_of_day"},
    "v_mean": {"of": "v", "kind": "moving_mean", "k": 12},
    "v_std": {"of": "v", "kind": "rolling_std", "w": 48},
}


def _stream(rows: int, seed: int = 0) -> tuple[np.ndarray, list[str], list[str]]:
    rng = np.random.default_rng(seed)
    hours = np.arange(rows)
    values = 10 + 3 * np.sin(2 * np.pi * hours / 24) + rng.normal(size=rows)
    values[700:705] += 15.0
    stamps = [f"2014-04-{1 + h // 24:02d} {h % 24:02d}:00:00" for h in hours]
    keys = ["a" if i % 3 else "b" for i in range(rows)]
    return values[:, None], stamps, keys


def _settings(**extra: object) -> DetectorSettings:
    return DetectorSettings(
        timestamp_field="t", key_field="k", derived=DERIVED, likelihood=True, **extra
    )


def test_any_batch_size_and_a_checkpoint_give_identical_results() -> None:
    X, stamps, keys = _stream(720)
    whole = SeriesDetector(_settings(), ["v"]).process(X, keys=keys, timestamps=stamps)
    detector = SeriesDetector(_settings(), ["v"])
    parts = []
    for start in range(0, 720, 7):
        if start == 350:
            state = json.loads(json.dumps(detector.to_dict()))
            detector = SeriesDetector(_settings(), ["v"])
            detector.restore(state)
        stop = start + 7
        parts.append(
            detector.process(X[start:stop], keys=keys[start:stop], timestamps=stamps[start:stop])
        )
    score = np.concatenate([p.score for p in parts])
    alert = np.concatenate([p.alert for p in parts])
    np.testing.assert_array_equal(score, whole.score)
    np.testing.assert_array_equal(alert, whole.alert)
    assert whole.alert[700:705].any()


def test_alert_names_the_feature_that_drove_it() -> None:
    X, stamps, _ = _stream(720)
    detector = SeriesDetector(
        DetectorSettings(timestamp_field="t", derived=DERIVED, likelihood=True), ["v"]
    )
    out = detector.process(X, timestamps=stamps)
    first = int(np.flatnonzero(out.alert[690:])[0]) + 690
    assert 700 <= first < 705
    contributions = out.contributions[first]
    assert set(contributions) <= set(DERIVED)
    assert out.score[first] <= np.log(1e-5)
    assert all(v <= 0 for v in contributions.values())
    assert detector.summary()["epsilon_source"] == "likelihood"
    assert detector.log_epsilon == pytest.approx(np.log(1e-5))


def test_model_features_keep_fields_not_derived_from() -> None:
    settings = DetectorSettings(derived={"a_change": {"of": "a", "kind": "difference"}})
    detector = build_detector(settings, ["a", "b"])
    assert detector.features == ("b", "a_change")
    out = detector.process(np.array([[1.0, 5.0], [4.0, 5.0]]))
    assert out.n.tolist() == [0, 1]


def test_likelihood_small_batches_equal_one_batch() -> None:
    rng = np.random.default_rng(0)
    scores, values = np.abs(rng.normal(size=(300, 2))), rng.normal(size=(300, 2))
    whole = AnomalyLikelihood(2).update(scores, values).log_p
    layer = AnomalyLikelihood(2)
    parts = [layer.update(scores[a : a + 7], values[a : a + 7]).log_p for a in range(0, 300, 7)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_derived_table_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"derived\.m\.kind"):
        DetectorSettings(derived={"m": {"of": "v", "kind": "median"}})
    with pytest.raises(ConfigError, match=r"derived\.s.*timestamp_field"):
        DetectorSettings(derived={"s": {"of": "v", "kind": "seasonal", "season": "hour_of_day"}})
    with pytest.raises(ConfigError, match="time_zone"):
        DetectorSettings(time_zone="Mars/Olympus")
    with pytest.raises(ConfigError, match=r"derived\.m\.of"):
        build_detector(DetectorSettings(derived={"m": {"of": "w", "kind": "difference"}}), ["v"])


def test_derive_flags_extend_the_table() -> None:
    from stream_detect.cli import build_parser
    from stream_detect.flags import load_settings

    args = build_parser().parse_args(
        ["run", "--derive", "m=moving_mean:v:3", "--derive", "d=difference:v"]
    )
    _, detector = load_settings(args)
    assert detector.derived == {
        "m": {"of": "v", "kind": "moving_mean", "k": 3},
        "d": {"of": "v", "kind": "difference"},
    }
    with pytest.raises(ConfigError, match="--derive"):
        load_settings(build_parser().parse_args(["run", "--derive", "m=moving_mean"]))


def test_run_stream_reads_iso_timestamps_from_csv_rows() -> None:
    X, stamps, _ = _stream(720)
    lines = ["timestamp,v"] + [f"{s},{x:.6f}" for s, x in zip(stamps, X[:, 0], strict=True)]
    run, detector = settings_from_mapping(
        {
            "timestamp_field": "timestamp",
            "likelihood": True,
            "emit": "all",
            "format": "csv",
            "derived": DERIVED,
        }
    )
    sink = ListSink()
    run_stream(run, detector, source=ListSource(lines), sink=sink, dead_letter=ListSink())
    records = sink.records
    assert len(records) == 720
    assert any(r["alert"] for r in records[700:705])
    assert isinstance(run, RunSettings)


@pytest.mark.parametrize("batch_size", [1, 64, 4096])
def test_an_event_whose_timestamp_has_no_time_is_a_dead_letter_not_the_end(
    batch_size: int,
) -> None:
    # A missing, unreadable or out-of-range timestamp ended the run (exit 2, or a traceback
    # for epoch milliseconds), losing the events after it.
    X, stamps, _ = _stream(300)
    good = [{"t": s, "v": float(x)} for s, x in zip(stamps, X[:, 0], strict=True)]
    bad = [{"v": 1.0}, {"t": None, "v": 1.0}, {"t": "soon", "v": 1.0}, {"t": 1.7e12, "v": 1.0}]
    mixed = good[:100] + bad[:2] + good[100:200] + bad[2:] + good[200:]
    run = RunSettings(emit="all", batch_size=batch_size, summary=False)
    settings = DetectorSettings(timestamp_field="t", derived=DERIVED, retune_seconds=0.0)
    sink, dead = ListSink(), ListSink()
    run_stream(run, settings, source=ListSource(mixed), sink=sink, dead_letter=dead)
    alone = ListSink()
    run_stream(run, settings, source=ListSource(good), sink=alone, dead_letter=ListSink())
    assert [r["position"]["line"] for r in dead.records] == [101, 102, 203, 204]
    assert "missing or null" in dead.records[1]["reason"]
    assert "milliseconds" in dead.records[3]["reason"]
    # Bad events move the batch boundaries, so scores agree to rounding (see the README).
    assert [(r["alert"], r["n"]) for r in sink.records] == [
        (r["alert"], r["n"]) for r in alone.records
    ]
    scores = [r["score"] for r in sink.records]
    assert scores == pytest.approx([r["score"] for r in alone.records], rel=1e-12, abs=1e-12)


def test_a_checkpointed_restart_continues_the_derived_and_likelihood_state(tmp_path: Path) -> None:
    X, stamps, keys = _stream(720)
    events = [
        {"t": s, "k": k, "v": float(x)} for s, k, x in zip(stamps, keys, X[:, 0], strict=True)
    ]
    mapping = {
        "timestamp_field": "t",
        "key_field": "k",
        "likelihood": True,
        "derived": DERIVED,
        "emit": "all",
        "batch_size": 64,
    }
    run, detector = settings_from_mapping(mapping)
    whole = ListSink()
    run_stream(run, detector, source=ListSource(events), sink=whole, dead_letter=ListSink())
    restarted, _ = settings_from_mapping({**mapping, "checkpoint": str(tmp_path / "state.json")})
    first, second = ListSink(), ListSink()
    run_stream(
        restarted, detector, source=ListSource(events[:400]), sink=first, dead_letter=ListSink()
    )
    run_stream(restarted, detector, source=ListSource(events), sink=second, dead_letter=ListSink())
    scores = [r["score"] for r in first.records + second.records]
    assert scores == [r["score"] for r in whole.records]


def test_derived_state_is_evicted_with_the_keyed_models() -> None:
    rng = np.random.default_rng(11)
    rows = 400
    keys = [f"host{i}" for i in rng.integers(0, 12, size=rows)]
    stamps = [f"2014-04-{1 + (i // 24) % 28:02d} {i % 24:02d}:00:00" for i in range(rows)]
    X = rng.normal(size=(rows, 1))
    settings = DetectorSettings(
        timestamp_field="t", key_field="k", derived=DERIVED, max_keys=5, min_samples=3
    )
    whole = SeriesDetector(settings, ["v"])
    out = whole.process(X, keys=keys, timestamps=stamps)
    for feature in whole.derived.values():
        assert feature is not None
        # The same keys as the models, in the same recency order: bounded by max_keys.
        assert feature.keys == list(whole.models)
        assert len(feature.keys) == 5
    one_by_one = SeriesDetector(settings, ["v"])
    single = [
        one_by_one.process(X[i : i + 1], keys=keys[i : i + 1], timestamps=stamps[i : i + 1])
        for i in range(rows)
    ]
    # Scores as exact as the prequential batch (about 1e-12), alerts identical.
    np.testing.assert_allclose(np.concatenate([s.score for s in single]), out.score, rtol=1e-9)
    np.testing.assert_array_equal(np.concatenate([s.alert for s in single]), out.alert)
    restored = SeriesDetector(settings, ["v"])
    restored.restore(json.loads(json.dumps(whole.to_dict())))
    assert all(f is not None and f.keys == list(whole.models) for f in restored.derived.values())


@pytest.mark.parametrize(
    "spec", [{"kind": "difference"}, {"kind": "seasonal", "season": "hour_of_day"}]
)
def test_a_derived_value_beyond_the_model_bound_is_held_there_not_a_traceback(
    spec: dict[str, str],
) -> None:
    # Values of +-1e150 are admitted, but their change (or a seasonal residual) is 2e150,
    # which the model cannot take: the batch raised a ValueError from check_batch.
    derived = {"d": {"of": "v", **spec}}
    stamps = [f"2014-04-{1 + h // 24:02d} {h % 24:02d}:00:00" for h in range(60)]
    X = np.array([[1e150 if (h // 24 + h) % 2 else -1e150] for h in range(60)])
    detector = SeriesDetector(DetectorSettings(timestamp_field="t", derived=derived), ["v"])
    modelled = detector.derive(X, None, stamps)
    assert np.abs(modelled).max() == 1e150
    out = SeriesDetector(DetectorSettings(timestamp_field="t", derived=derived), ["v"]).process(
        X, timestamps=stamps
    )
    assert np.isfinite(out.score).all()
