"""The streaming loop in-process: exact scores, bad records, labels, keys, drift, state, shutdown.

Everything here runs on :class:`ListSource` / :class:`ListSink`, so it is fast and
needs no processes; ``test_cli_run.py`` drives the same behaviour through real pipes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from reference import reference_run
from streams import assert_same_state, column, labelled_stream, model_state

from stream_detect.assembly import run_stream
from stream_detect.confusion import confusion_counts
from stream_detect.errors import ConfigError, ModelError
from stream_detect.keyed_columns import decode, entries
from stream_detect.pipeline import Pipeline, Summary
from stream_detect.settings import DEFAULT_LOG_TAIL_EPSILON, DetectorSettings, RunSettings
from stream_detect.sources.base import RawBatch, Source
from stream_detect.state import load_checkpoint
from stream_detect.testing import ListSink, ListSource
from stream_detect.threshold import best_log_threshold

Array = NDArray[np.float64]

#: Settings that leave log epsilon where it was put, so scores can be compared with the reference.
FIXED = {"log_epsilon": -12.0, "retune_every": 0, "retune_labels": 0, "retune_seconds": 0.0}
FEATURES = ("a", "b", "c")
#: Label counts that allow tuning by F1, spelled out so the tests do not hang on the defaults.
FEW_LABELS = {"min_positive_labels": 2, "min_negative_labels": 10}


def scored(
    events: list[Any],
    detector: DetectorSettings,
    *,
    feedback: Source | None = None,
    **run: Any,
) -> tuple[Summary, list[dict[str, Any]], list[dict[str, Any]]]:
    """Run ``events`` through a pipeline; return the summary, the results and the dead letters."""
    sink, dead = ListSink(), ListSink()
    settings = RunSettings(**{"emit": "all", **run})
    if feedback is None:
        summary = run_stream(
            settings, detector, source=ListSource(events), sink=sink, dead_letter=dead
        )
    else:
        pipeline = Pipeline(
            settings,
            detector,
            source=ListSource(events),
            sink=sink,
            dead_letter=dead,
            labels=feedback,
        )
        summary = pipeline.run()
    assert sink.closed and dead.closed
    return summary, sink.records, dead.records


def flags(results: list[dict[str, Any]], name: str) -> NDArray[np.bool_]:
    return np.array([r[name] for r in results], dtype=bool)


def mixed_stream(count: int = 300, seed: int = 7) -> tuple[Array, NDArray[np.int8], list[str]]:
    """Features of very different scales, point spikes, a level shift, some labels, three hosts."""
    rng = np.random.default_rng(seed)
    hosts = rng.choice(["h1", "h2", "h3"], size=count)
    noise = rng.normal(size=(count, 3)) * np.where(hosts == "h2", 3.0, 1.0)[:, None]
    X = noise * [1.0, 100.0, 0.01] + [5.0, -300.0, 0.5]
    spikes = rng.choice(np.arange(100, count), size=12, replace=False)
    X[spikes, 0] += 12.0
    # A sustained shift: long runs of alerts, so the relearn rule takes part.
    X[2 * count // 3 :, 1] += 1500.0
    labels = np.full(count, -1, dtype=np.int8)
    labelled = rng.choice(np.arange(count), size=30, replace=False)
    labels[labelled] = (rng.random(30) < 0.3).astype(np.int8)
    labels[spikes[:4]] = 1
    return X, labels, hosts.tolist()


def as_events(
    X: Array, labels: NDArray[np.int8] | None = None, hosts: list[str] | None = None
) -> list[dict[str, Any]]:
    out = []
    for i, row in enumerate(X.tolist()):
        event: dict[str, Any] = dict(zip(FEATURES, row, strict=False))
        if hosts is not None:
            event["host"] = hosts[i]
        if labels is not None and labels[i] >= 0:
            event["label"] = int(labels[i])
        out.append(event)
    return out


def assert_close(actual: Array, expected: Array, rtol: float = 1e-9) -> None:
    """Equal to ``rtol`` relative (absolute near zero), NaN exactly where expected is NaN."""
    assert np.array_equal(np.isnan(actual), np.isnan(expected))
    finite = ~np.isnan(expected)
    error = np.abs(actual[finite] - expected[finite]) / np.maximum(1.0, np.abs(expected[finite]))
    assert error.max(initial=0.0) <= rtol, f"largest relative difference {error.max()}"


# -- exact prequential scores ------------------------------------------------------------------

POLICIES = {
    "exclude": {},
    "clip": {"flagged": "clip"},
    "learn": {"flagged": "learn"},
    "no-relearn": {"accept_after": 0},
    "learn-labelled": {"learn_labelled": True},
    "half-life": {"half_life": 200.0},
    "full": {"model": "full"},
    "keyed": {"key_field": "host"},
    "keyed-full-clip": {"key_field": "host", "model": "full", "flagged": "clip"},
}


@pytest.mark.parametrize("policy", POLICIES.values(), ids=list(POLICIES))
def test_scores_equal_the_per_event_reference_for_any_batch_size(policy: dict[str, Any]) -> None:
    X, labels, hosts = mixed_stream()
    detector = DetectorSettings(**FIXED, **policy)
    expected = reference_run(detector, X, labels, hosts)
    # The reference must see the policy at work, or agreeing with it proves little.
    assert 10 < expected.alert.sum() < len(X) // 2
    outputs = []
    for batch_size in (1, 7, 4096):
        summary, results, dead = scored(
            as_events(X, labels, hosts), detector, batch_size=batch_size
        )
        assert dead == [] and summary.events == len(X)
        assert [r["position"]["line"] for r in results] == list(range(1, len(X) + 1))
        log_p, n = column(results, "log_p"), column(results, "n")
        if detector.model == "full":
            # Until a key has more events than features its covariance is singular and the
            # floor's ridge decides the score; agreement there is as good as the conditioning.
            settled = n > len(FEATURES)
            assert_close(log_p[settled], expected.log_p[settled])
            assert_close(log_p[~settled], expected.log_p[~settled], rtol=1e-5)
        else:
            assert_close(log_p, expected.log_p)
            assert_close(column(results, "score"), expected.score)
        assert np.array_equal(flags(results, "alert"), expected.alert)
        assert np.array_equal(flags(results, "warmup"), expected.warmup)
        assert np.array_equal(n, expected.n)
        outputs.append(results)
    for other in outputs[1:]:
        for mine, theirs in zip(outputs[0], other, strict=True):
            assert mine.keys() == theirs.keys()
            for name, value in mine.items():
                if isinstance(value, float):
                    assert value == pytest.approx(theirs[name], rel=1e-9, abs=1e-12)
                elif name != "contributions":
                    assert value == theirs[name], name


def test_output_fields_and_contributions() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3)) * [1.0, 10.0, 0.1]
    X[250] = [0.0, 0.0, 2.5]  # 25 sigma in c only
    detector = DetectorSettings(**{**FIXED, "log_epsilon": -40.0})
    summary, results, _ = scored(as_events(X), detector, emit="alerts")
    assert summary.alerts == len(results) == 1
    (alert,) = results
    assert alert["position"] == {"line": 251, "offset": alert["position"]["offset"]}
    assert alert["alert"] is True and alert["warmup"] is False and alert["n"] == 250
    assert alert["key"] is None and alert["log_epsilon"] == -40.0
    assert alert["log_p"] < -40.0 and alert["mahalanobis_sq"] > 600
    assert next(iter(alert["contributions"])) == "c"
    assert len(alert["contributions"]) == DetectorSettings().top_contributions
    assert {"a", "b", "c"} <= alert.keys()


def test_warm_up_raises_no_alert() -> None:
    X = np.zeros((80, 1))
    X[::2] = 1.0
    X[10] = 1000.0  # absurd, but the model has learned ten events only
    _, results, _ = scored(as_events(X), DetectorSettings(**{**FIXED, "min_samples": 50}))
    warm = flags(results, "warmup")
    assert warm[:50].all() and not warm[50:].any()
    assert not flags(results, "alert").any()
    assert column(results, "log_p")[10] < -1e6


def test_a_constant_feature_neither_crashes_nor_alerts() -> None:
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.normal(size=400), np.full(400, 3.0)])
    summary, results, _ = scored(as_events(X), DetectorSettings(**FIXED))
    log_p = column(results, "log_p")
    assert np.isfinite(log_p[1:]).all()
    assert summary.alerts == 0


# -- bad input ----------------------------------------------------------------------------------

GOOD = [{"x": float(i % 5), "y": float(i % 3)} for i in range(60)]
BAD_JSON: list[tuple[bytes, str]] = [
    (b'{"x": 1, "y":', "invalid JSON"),
    (b"[1, 2]", "array"),
    (b'"just text"', "string"),
    (b'{"x": 1}', "missing feature 'y'"),
    (b'{"x": "a lot", "y": 1}', "'x'"),
    (b'{"x": "1.5", "y": 1}', "quoted"),
    (b'{"x": null, "y": 1}', "null"),
    (b'{"x": true, "y": 1}', "boolean"),
    (b'{"x": NaN, "y": 1}', "invalid JSON"),
    (b'{"x": Infinity, "y": 1}', "invalid JSON"),
    (b'{"x": 1e999, "y": 1}', "infinity"),
    (b'{"x": 1, "y": 2, "label": "maybe"}', "label"),
    (b'{"x": 1, "y": \xff\xfe}', "UTF-8"),
    (b'{"x": 1, "y": 2, "pad": "' + b"z" * 300 + b'"}', "exceeds"),
]


def test_every_kind_of_bad_json_record_goes_to_dead_letters_with_its_line() -> None:
    payloads: list[Any] = [*GOOD[:30], *(raw for raw, _ in BAD_JSON), b"", b"  ", *GOOD[30:]]
    summary, results, dead = scored(payloads, DetectorSettings(**FIXED), max_line_bytes=256)
    assert [entry["position"]["line"] for entry in dead] == list(range(31, 31 + len(BAD_JSON)))
    for entry, (_, words) in zip(dead, BAD_JSON, strict=True):
        assert words in entry["reason"], entry
        assert entry["raw"], entry
    assert summary.events == len(results) == len(GOOD)
    assert summary.bad_records == len(BAD_JSON) and summary.blank_lines == 2
    assert summary.events + summary.bad_records + summary.blank_lines == len(payloads)
    # The stream went on: the good events after the bad ones were scored and learned.
    assert [r["n"] for r in results][-1] == len(GOOD) - 1
    assert [r["position"]["line"] for r in results][30] == 31 + len(BAD_JSON) + 2


def test_every_kind_of_bad_csv_row_goes_to_dead_letters_with_its_line() -> None:
    good = [f"{i % 5},{i % 3}," for i in range(40)]
    bad = [
        ("nan,1,", "not a finite number"),
        ("1,inf,", "not a finite number"),
        ("1,2", "columns"),
        ("1,2,0,4", "columns"),
        ("abc,1,", "not a number"),
        (",1,", "empty"),
        ("1,2,maybe", "label"),
        (b"1,\xff,", "UTF-8"),
    ]
    lines: list[Any] = ["x,y,label", *good[:20], *(row for row, _ in bad), *good[20:]]
    summary, results, dead = scored(lines, DetectorSettings(**FIXED), format="csv")
    assert [entry["position"]["line"] for entry in dead] == list(range(22, 22 + len(bad)))
    for entry, (_, words) in zip(dead, bad, strict=True):
        assert words in entry["reason"], entry
    assert summary.events == len(results) == len(good)
    # The header is a line too; it is neither an event nor a bad record.
    assert summary.events + summary.bad_records + summary.blank_lines + 1 == len(lines)
    assert isinstance(results[0]["x"], float)


def test_a_value_outside_a_transforms_domain_is_a_dead_letter() -> None:
    events = [{"x": float(i % 7 + 1), "y": float(i % 3)} for i in range(100)]
    events[60] = {"x": -2.0, "y": 1.0}
    events[70] = {"x": 0.0, "y": 1.0}
    detector = DetectorSettings(**FIXED, transforms={"x": "log"})
    summary, results, dead = scored(events, detector)
    assert [entry["position"]["line"] for entry in dead] == [61, 71]
    assert all("'x'" in entry["reason"] and "log" in entry["reason"] for entry in dead)
    assert summary.events == 98 and summary.bad_records == 2
    # The output keeps the value as sent; the model sees its logarithm.
    assert results[0]["x"] == 1.0


# -- thresholds and labels ------------------------------------------------------------------------


def diagonal_log_p(X: Array, learned: Array) -> Array:
    """log p of rows of X under the Gaussian fitted to ``learned`` (population variance)."""
    mean = learned.mean(axis=0)
    var = learned.var(axis=0)
    result: Array = np.sum(-0.5 * np.log(2 * np.pi * var) - (X - mean) ** 2 / (2 * var), axis=1)
    return result


def test_retuning_moves_epsilon_to_the_best_f1_of_the_labels() -> None:
    X, labels = labelled_stream(count=1190)
    n_labels = int(np.count_nonzero(labels >= 0))
    retune_labels = 15
    assert n_labels % retune_labels == 0, "the last label must trigger the last re-tune"
    initial = -40.0
    detector = DetectorSettings(
        log_epsilon=initial,
        flagged="exclude",
        accept_after=25,
        retune_every=0,
        retune_seconds=0.0,
        retune_labels=retune_labels,
        **FEW_LABELS,
    )
    summary, results, _ = scored(as_events(X, labels), detector, batch_size=64)
    epsilons = column(results, "log_epsilon")
    labelled = np.flatnonzero(labels >= 0)
    first_retune = labelled[retune_labels - 1]
    assert (epsilons[: first_retune + 1] == initial).all()
    assert (epsilons[first_retune + 1 :] != initial).all()
    assert len(set(epsilons.tolist())) > 2, "epsilon should move again as labels keep coming"

    detail = summary.to_dict()
    assert detail["epsilon_source"] == "f1"
    assert detail["validation_positive"] == np.count_nonzero(labels == 1)
    assert detail["validation_negative"] == np.count_nonzero(labels == 0)
    # Labelled events are held out and alerts are not learned: the final model is the
    # Gaussian of the unlabelled events that did not alert (no run reached accept_after).
    assert detail["relearned_events"] == 0
    learned = X[(labels < 0) & ~flags(results, "alert")]
    scores = diagonal_log_p(X[labelled], learned)
    y = labels[labelled]
    best = best_log_threshold(y, scores)
    assert detail["log_epsilon"] == pytest.approx(best.log_epsilon, rel=1e-9)
    assert detail["f1"] == pytest.approx(best.f1)
    tuned_f1 = confusion_counts(y, scores < detail["log_epsilon"]).f1
    initial_f1 = confusion_counts(y, scores < initial).f1
    assert tuned_f1 == pytest.approx(best.f1) and tuned_f1 > initial_f1
    assert tuned_f1 > 0.8


def test_with_labels_of_one_class_only_epsilon_stays() -> None:
    X, labels = labelled_stream()
    labels[labels == 1] = 0
    detector = DetectorSettings(
        log_epsilon=-9.0, retune_every=100, retune_labels=5, retune_seconds=0.0, **FEW_LABELS
    )
    summary, results, _ = scored(as_events(X, labels), detector)
    assert set(column(results, "log_epsilon").tolist()) == {-9.0}
    assert summary.to_dict()["epsilon_source"] == "initial"
    assert summary.to_dict()["retunes"] > 0


def test_without_labels_the_fixed_tail_default_holds() -> None:
    # The no-label rule: the log tail against log_tail_epsilon, from the first event,
    # so pure noise raises (about) one false alert per million events, not a quota.
    rng = np.random.default_rng(8)
    X = rng.normal(size=(3000, 2))
    X[2000] = [9.0, 0.0]
    detector = DetectorSettings(retune_seconds=0.0)
    summary, results, _ = scored(as_events(X), detector)
    assert summary.to_dict()["epsilon_source"] == "default"
    assert set(column(results, "log_epsilon").tolist()) == {DEFAULT_LOG_TAIL_EPSILON}
    assert np.array_equal(column(results, "score"), column(results, "log_tail"))
    assert np.flatnonzero(flags(results, "alert")).tolist() == [2000]


class LabelsAfter(Source):
    """Feedback labels that show up only once the event source has gone past ``line``."""

    def __init__(self, labels: list[Any], events: ListSource, line: int) -> None:
        self.labels = ListSource(labels, uri="labels")
        self.events = events
        self.line = line
        self.uri = "labels"

    def read_batch(self, max_records: int, linger_s: float, timeout_s: float) -> RawBatch:
        if self.events.resume_token()["line"] <= self.line:
            return RawBatch()
        return self.labels.read_batch(max_records, linger_s, timeout_s)

    @property
    def exhausted(self) -> bool:
        return self.labels.exhausted

    def resume_token(self) -> dict[str, Any]:
        return self.labels.resume_token()


def test_feedback_labels_join_earlier_events_by_id() -> None:
    X, labels = labelled_stream(count=1200)
    events = as_events(X)  # no inline labels: they all come as feedback
    for i, event in enumerate(events):
        event["id"] = f"ev-{i}"
    early = np.flatnonzero(labels[:600] >= 0)
    feedback: list[Any] = [{"id": f"ev-{i}", "label": int(labels[i])} for i in early]
    feedback += [
        {"id": "ev-never-seen", "label": 1},
        {"id": "ev-5", "label": 7},
        b"not json",
    ]
    source = ListSource(events)
    sink, dead_letters = ListSink(), ListSink()
    detector = DetectorSettings(
        id_field="id",
        log_epsilon=-40.0,
        retune_every=0,
        retune_seconds=0.0,
        retune_labels=10,
        **FEW_LABELS,
    )
    pipeline = Pipeline(
        RunSettings(emit="all", batch_size=50, labels="list:"),
        detector,
        source=source,
        sink=sink,
        dead_letter=dead_letters,
        labels=LabelsAfter(feedback, source, line=700),
    )
    summary = pipeline.run()
    assert summary.feedback_labels == early.size
    assert summary.unmatched_feedback == 1
    assert summary.bad_feedback == 2 and summary.bad_records == 0
    # Bad feedback leaves at once; a label for an unknown id is held for its event
    # until the end of the input, so it leaves last.
    not_binary, garbage, unknown = dead_letters.records
    assert "ev-never-seen" in unknown["reason"]
    assert unknown["position"]["line"] == early.size + 1
    assert "7" in not_binary["reason"] and garbage["raw"] == "not json"
    detail = summary.to_dict()
    assert detail["validation_positive"] + detail["validation_negative"] == early.size
    assert detail["epsilon_source"] == "f1"
    epsilons = column(sink.records, "log_epsilon")
    assert (epsilons[:600] == -40.0).all() and epsilons[-1] != -40.0


def test_feedback_labels_of_a_finished_stream_are_all_applied() -> None:
    events = [{"id": f"e{i}", "x": float(i % 7), "y": float(i % 3)} for i in range(300)]
    feedback = [{"id": f"e{i}", "label": int(i % 50 == 0)} for i in range(0, 300, 3)]
    summary, _, dead = scored(
        events,
        DetectorSettings(id_field="id", retune_seconds=0.0),
        feedback=ListSource(feedback),
        labels="list:",
    )
    assert dead == []
    assert summary.feedback_labels == len(feedback)


def test_feedback_needs_an_id_field() -> None:
    with pytest.raises(ConfigError, match="id_field"):
        Pipeline(
            RunSettings(labels="file:labels.jsonl"),
            DetectorSettings(),
            source=ListSource([]),
            sink=ListSink(),
            dead_letter=ListSink(),
            labels=ListSource([]),
        )


# -- keyed models -------------------------------------------------------------------------------


def two_hosts(count: int = 400, seed: int = 5) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    events = []
    for _ in range(count):
        events.append({"host": "quiet", "cpu": 0.5 + 0.01 * rng.normal()})
        events.append({"host": "noisy", "cpu": 0.5 + 1.0 * rng.normal()})
    return events


def test_per_key_models_do_not_mix() -> None:
    events = two_hosts()
    # 1.5 is a one-sigma event for the noisy host and a hundred sigmas for the quiet one.
    events += [{"host": "quiet", "cpu": 1.5}, {"host": "noisy", "cpu": 1.5}]
    detector = DetectorSettings(key_field="host", **FIXED)
    summary, results, _ = scored(events, detector, batch_size=33)
    for host in ("quiet", "noisy"):
        mine = [r for r in results if r["host"] == host]
        assert [r["n"] for r in mine] == list(range(len(mine)))
        assert all(r["key"] == host for r in mine)
        assert sum(r["warmup"] for r in mine) == detector.min_samples
    quiet, noisy = results[-2:]
    assert quiet["alert"] and not noisy["alert"]
    assert summary.alerts == 1 and summary.to_dict()["models"] == 2
    # One model over both hosts would call the noisy host's normal events anomalous.
    assert quiet["score"] < -1000 and noisy["score"] > -5


EVICTING = [{"host": f"h{i % 3}", "x": float(i % 4)} for i in range(90)] + [
    {"host": "h3", "x": 1.0},
    {"host": "h0", "x": 1.0},
]


def test_keys_beyond_max_keys_evict_the_least_recently_seen() -> None:
    detector = DetectorSettings(key_field="host", max_keys=3, **FIXED)
    summary, results, _ = scored(EVICTING, detector, batch_size=1)
    detail = summary.to_dict()
    assert detail["models"] == 3 and detail["evicted_models"] == 2
    # h3 evicted h0 (least recently seen); h0 then evicted h1 and starts from scratch.
    assert results[-2]["n"] == 0 and results[-1]["n"] == 0 and results[-1]["warmup"]


def test_eviction_does_not_depend_on_the_batch_size() -> None:
    detector = DetectorSettings(key_field="host", max_keys=3, **FIXED)
    one, by_one, _ = scored(EVICTING, detector, batch_size=1)
    whole, at_once, _ = scored(EVICTING, detector, batch_size=1024)
    assert [r["n"] for r in at_once] == [r["n"] for r in by_one]
    assert whole.to_dict()["evicted_models"] == one.to_dict()["evicted_models"]


def test_an_event_without_its_key_is_a_dead_letter() -> None:
    events = [
        {"host": "a", "x": 1.0},
        {"x": 2.0},
        {"host": None, "x": 3.0},
        {"host": [1], "x": 4.0},
    ]
    _, results, dead = scored(events, DetectorSettings(key_field="host", **FIXED))
    assert len(results) == 1 and [d["position"]["line"] for d in dead] == [2, 3, 4]
    assert all("'host'" in d["reason"] for d in dead)


# -- drift ----------------------------------------------------------------------------------------


def step_stream(count: int = 2000, step: int = 1000, seed: int = 9) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=count)
    x[step:] += 8.0
    return [{"x": value} for value in x.tolist()]


#: Flagged events excluded, a run of 25 alerts accepted as the new normal.
EXCLUDE_25 = {"flagged": "exclude", "accept_after": 25}


def test_the_alert_burst_after_a_step_ends_by_itself() -> None:
    detector = DetectorSettings(log_epsilon=-12.0, **EXCLUDE_25)
    summary, results, _ = scored(step_stream(), detector)
    alerts = np.flatnonzero(flags(results, "alert"))
    assert alerts.size >= 25, "the step itself must alert"
    assert alerts.min() >= 1000 and alerts.max() < 1000 + 300
    assert summary.to_dict()["relearned_events"] >= 25


def test_without_relearning_the_burst_never_ends() -> None:
    # The counterpart of the test above: what the acceptance rule protects from.
    detector = DetectorSettings(log_epsilon=-12.0, flagged="exclude", accept_after=0)
    _, results, _ = scored(step_stream(), detector)
    assert flags(results, "alert")[-500:].mean() > 0.95


def test_forgetting_ends_a_burst_without_relearning() -> None:
    detector = DetectorSettings(log_epsilon=-12.0, accept_after=0, flagged="clip", half_life=50.0)
    _, results, _ = scored(step_stream(), detector)
    alerts = np.flatnonzero(flags(results, "alert"))
    assert alerts.max() < 1000 + 500


# -- river models -------------------------------------------------------------------------------


def test_a_river_model_runs_through_the_same_pipeline() -> None:
    pytest.importorskip("river")
    rng = np.random.default_rng(6)
    X = rng.normal(size=(400, 2)) * [1.0, 50.0]
    X[350] = [30.0, 3000.0]
    # A river score has no calibrated tail: the threshold is given on its own score
    # (the negated anomaly score; with this seed row 350 scores -0.99534, the next -0.99310).
    detector = DetectorSettings(
        model="river:HalfSpaceTrees",
        model_params={"seed": 1},
        log_epsilon=-0.994,
        retune_seconds=0.0,
    )
    summary, results, dead = scored(as_events(X), detector)
    assert dead == [] and summary.events == 400 == len(results)
    assert summary.to_dict()["epsilon_source"] == "initial"
    assert np.flatnonzero(flags(results, "alert")).tolist() == [350]
    for result in results:
        assert {"log_p", "log_epsilon", "alert", "warmup", "n", "position"} <= result.keys()
    assert all(r["contributions"] == {} for r in results if r["alert"])
    assert results[350]["alert"] and results[-1]["log_epsilon"] is not None


# -- state and shutdown -------------------------------------------------------------------------


def test_a_restart_from_the_checkpoint_learns_each_event_once(tmp_path: Path) -> None:
    X, labels = labelled_stream(count=1200)
    events = as_events(X, labels)
    detector = DetectorSettings(log_epsilon=-9.0, retune_every=250, retune_seconds=0.0)
    whole = tmp_path / "whole.json"
    _, straight, _ = scored(events, detector, checkpoint=str(whole))

    parts = tmp_path / "parts.json"
    first, before, _ = scored(events[:500], detector, checkpoint=str(parts))
    second, after, _ = scored(events, detector, checkpoint=str(parts))
    assert first.stopped_by == "end of input" and first.checkpoints == 1
    assert second.resumed_from is not None and second.resumed_from["line"] == 501
    assert [r["position"]["line"] for r in after] == list(range(501, 1201))
    assert_same_state(model_state(parts), model_state(whole))
    # Threshold, validation buffer and counters came back too: the results are the same.
    assert len(before) + len(after) == len(straight)
    for mine, theirs in zip(before + after, straight, strict=True):
        assert mine["log_epsilon"] == theirs["log_epsilon"]
        if theirs["log_p"] is None:
            assert mine["log_p"] is None
        else:
            assert mine["log_p"] == pytest.approx(theirs["log_p"], rel=1e-9)
        assert (mine["alert"], mine["n"]) == (theirs["alert"], theirs["n"])


def test_a_log_epsilon_given_at_restart_wins_over_the_checkpoint(tmp_path: Path) -> None:
    X, labels = labelled_stream(count=800)
    events = as_events(X, labels)
    path = str(tmp_path / "state.json")
    tuned = DetectorSettings(log_epsilon=-40.0, retune_every=100, retune_seconds=0.0, **FEW_LABELS)
    first, _, _ = scored(events[:400], tuned, checkpoint=path)
    assert first.to_dict()["epsilon_source"] == "f1"
    saved = load_checkpoint(path)
    assert saved is not None and saved.detector["log_epsilon"] != -5.0

    mine = DetectorSettings(log_epsilon=-5.0, retune_every=0, retune_labels=0, retune_seconds=0.0)
    second, results, _ = scored(events, mine, checkpoint=path)
    assert second.resumed_from is not None and second.resumed_from["line"] == 401
    assert {r["log_epsilon"] for r in results} == {-5.0}
    detail = second.to_dict()
    assert (detail["log_epsilon"], detail["epsilon_source"]) == (-5.0, "initial")
    assert detail["f1"] is None, "the saved threshold's F1 is not reported for the user's"
    # The models learned before the restart are kept: only the threshold is the user's.
    assert results[0]["n"] > 0


RESTARTS = {
    "keyed": {"key_field": "host"},
    "half-life": {"half_life": 100.0},
    "keyed-full-forgetting-evicting": {
        "key_field": "host",
        "model": "full",
        "half_life": 300.0,
        "max_keys": 3,
    },
}


@pytest.mark.parametrize("extra", RESTARTS.values(), ids=list(RESTARTS))
def test_every_model_kind_resumes_exactly(tmp_path: Path, extra: dict[str, Any]) -> None:
    rng = np.random.default_rng(0)
    events = [
        {"host": f"h{i % 4}", "x": (1 + i % 4) * float(rng.normal()), "y": float(rng.normal())}
        for i in range(800)
    ]
    detector = DetectorSettings(log_epsilon=-10.0, retune_seconds=0.0, **extra)
    whole, parts = tmp_path / "whole.json", tmp_path / "parts.json"
    _, straight, _ = scored(events, detector, checkpoint=str(whole))
    _, before, _ = scored(events[:333], detector, checkpoint=str(parts), batch_size=50)
    _, after, _ = scored(events, detector, checkpoint=str(parts), batch_size=7)
    assert len(before) + len(after) == len(straight)
    for mine, theirs in zip(before + after, straight, strict=True):
        assert (mine["alert"], mine["warmup"], mine["n"]) == (
            theirs["alert"],
            theirs["warmup"],
            theirs["n"],
        )
    assert_close(column(before + after, "log_p"), column(straight, "log_p"))

    def models(path: Path) -> dict[str, dict[str, Any]]:
        checkpoint = load_checkpoint(path)
        assert checkpoint is not None
        saved = checkpoint.detector["models"]
        if isinstance(saved, dict):  # keyed diagonal models are saved as columns
            saved = entries(decode(saved, 2), saved["half_life"])
        return {m["key"]: m["state"]["stats"] for m in saved}

    resumed, uninterrupted = models(parts), models(whole)
    assert resumed.keys() == uninterrupted.keys()
    for key, state in resumed.items():
        assert state["n"] == pytest.approx(uninterrupted[key]["n"], rel=1e-12)
        assert np.allclose(state["mean"], uninterrupted[key]["mean"], rtol=1e-10, atol=1e-12)
        assert np.allclose(state["second"], uninterrupted[key]["second"], rtol=1e-10, atol=1e-12)


def test_feedback_labels_resume_where_they_were(tmp_path: Path) -> None:
    X, labels = labelled_stream(count=1000)
    events = as_events(X)
    for i, event in enumerate(events):
        event["id"] = f"ev{i}"
    feedback = [{"id": f"ev{i}", "label": int(labels[i])} for i in np.flatnonzero(labels >= 0)]
    detector = DetectorSettings(
        id_field="id",
        log_epsilon=-40.0,
        retune_every=0,
        retune_seconds=0.0,
        retune_labels=5,
        **FEW_LABELS,
    )
    run = RunSettings(emit="all", checkpoint=str(tmp_path / "state.json"), labels="list:")
    counts = []
    for stream, given in ((events[:500], feedback[:20]), (events, feedback)):
        pipeline = Pipeline(
            run,
            detector,
            source=ListSource(stream),
            sink=ListSink(),
            dead_letter=(dead := ListSink()),
            labels=ListSource(given),
        )
        pipeline.restore()
        summary = pipeline.run()
        assert dead.records == [] and summary.unmatched_feedback == 0
        counts.append(summary.feedback_labels)
    # The second run skipped the 20 labels the checkpoint said were applied.
    assert counts == [20, len(feedback) - 20]
    detail = summary.to_dict()
    assert detail["validation_positive"] + detail["validation_negative"] == len(feedback)


class CrashingSink(ListSink):
    """A sink whose process dies (an exception that is not a broken pipe) after some records."""

    def __init__(self, crash_after: int) -> None:
        super().__init__()
        self.crash_after = crash_after

    def write_batch(self, records: Any) -> None:
        if len(self.records) + len(records) > self.crash_after:
            raise MemoryError("simulated crash")
        super().write_batch(records)


def test_after_a_crash_every_event_comes_out_at_least_once(tmp_path: Path) -> None:
    X, labels = labelled_stream(count=1000)
    events = as_events(X, labels)
    detector = DetectorSettings(log_epsilon=-9.0, retune_every=100, retune_seconds=0.0)
    path = tmp_path / "state.json"
    crashing = CrashingSink(crash_after=640)
    run = RunSettings(emit="all", batch_size=64, checkpoint=str(path), checkpoint_every=150)
    with pytest.raises(MemoryError):
        run_stream(run, detector, source=ListSource(events), sink=crashing, dead_letter=ListSink())
    saved = load_checkpoint(path)
    assert saved is not None and 1 < saved.source["line"] <= 641
    restarted = ListSink()
    run_stream(run, detector, source=ListSource(events), sink=restarted, dead_letter=ListSink())
    lines = [r["position"]["line"] for r in crashing.records + restarted.records]
    assert set(lines) == set(range(1, 1001))
    assert len(lines) > 1000, "what came after the checkpoint is delivered again"
    whole = tmp_path / "whole.json"
    scored(events, detector, checkpoint=str(whole))
    assert_same_state(model_state(path), model_state(whole))


def test_a_csv_stream_resumes_after_its_header(tmp_path: Path) -> None:
    rows = ["x,y,note"] + [f"{i % 7},{(i * 3) % 5},n{i}" for i in range(200)]
    path = tmp_path / "state.json"
    detector = DetectorSettings(**FIXED)
    scored(rows[:120], detector, checkpoint=str(path), format="csv")
    summary, results, dead = scored(rows, detector, checkpoint=str(path), format="csv")
    assert dead == [] and summary.events == 81
    assert results[0]["note"] == "n119" and results[0]["n"] == 119
    whole = tmp_path / "whole.json"
    scored(rows, detector, checkpoint=str(whole), format="csv")
    assert_same_state(model_state(path), model_state(whole))


def test_a_stop_request_drains_flushes_and_checkpoints(tmp_path: Path) -> None:
    stop = threading.Event()
    seen: list[int] = []

    def progress(count: int) -> None:
        seen.append(count)
        if sum(seen) >= 300:
            stop.set()

    path = tmp_path / "state.json"
    sink = ListSink()
    summary = run_stream(
        RunSettings(emit="all", batch_size=100, checkpoint=str(path)),
        DetectorSettings(**FIXED),
        source=ListSource(as_events(np.random.default_rng(0).normal(size=(1000, 2)))),
        sink=sink,
        dead_letter=ListSink(),
        on_progress=progress,
        stop=stop,
    )
    assert summary.stopped_by == "signal" and summary.events == 300
    assert sink.flushed_records == sink.records and len(sink.records) == 300
    saved = load_checkpoint(path)
    assert saved is not None and saved.source["line"] == 301


def test_a_closed_output_stops_the_stream_quietly(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    source = ListSource(as_events(np.random.default_rng(0).normal(size=(500, 2))))
    summary = run_stream(
        RunSettings(emit="all", batch_size=50, checkpoint=str(path), checkpoint_every=50),
        DetectorSettings(**FIXED),
        source=source,
        sink=ListSink(broken_pipe_after=120),
        dead_letter=ListSink(),
    )
    assert summary.stopped_by == "output closed"
    assert source.closed
    # Undelivered results are neither committed nor checkpointed as done.
    assert source.commits[-1]["line"] <= 101
    saved = load_checkpoint(path)
    assert saved is not None and saved.source["line"] <= 101


def test_timers_run_on_the_pipelines_clock(tmp_path: Path) -> None:
    now = [0.0]

    def one_second_per_batch(count: int) -> None:
        now[0] += 1.0

    pipeline = Pipeline(
        RunSettings(
            batch_size=10,
            checkpoint=str(tmp_path / "state.json"),
            checkpoint_every=0,
            checkpoint_seconds=30.0,
        ),
        DetectorSettings(log_epsilon=-9.0, retune_every=0, retune_labels=0, retune_seconds=20.0),
        source=ListSource(as_events(np.random.default_rng(0).normal(size=(1000, 2)))),
        sink=ListSink(),
        dead_letter=ListSink(),
        on_progress=one_second_per_batch,
        clock=lambda: now[0],
    )
    summary = pipeline.run()
    # 100 batches, 100 seconds: checkpoints at 30, 60, 90 and at the end; re-tunes every 20.
    assert summary.checkpoints == 4
    assert summary.to_dict()["retunes"] == 5
    assert summary.seconds == 100.0


def test_a_checkpoint_of_a_run_with_log_epsilon_refused_without_it_names_the_flag(
    tmp_path: Path,
) -> None:
    # Given or not, --log-epsilon chooses what alerts compare; the refusal named an
    # internal "score_rule = 'log_p'", which no user can set.
    X, labels = labelled_stream(count=200)
    events = as_events(X, labels)
    path = str(tmp_path / "state.json")
    scored(events[:100], DetectorSettings(log_epsilon=-20.0), checkpoint=path)
    with pytest.raises(ModelError) as refused:
        scored(events, DetectorSettings(), checkpoint=path)
    message = str(refused.value)
    assert "--log-epsilon" in message and "score_rule" not in message
    assert "written by a run with --log-epsilon" in message and "this run is without it" in message


def test_a_keyed_checkpoint_refused_without_a_key_field_names_key_field(tmp_path: Path) -> None:
    events = [{"host": f"h{i % 3}", "x": float(i % 7)} for i in range(200)]
    path = str(tmp_path / "state.json")
    scored(events[:100], DetectorSettings(key_field="host", features=("x",)), checkpoint=path)
    with pytest.raises(ModelError, match="key_field = 'host', this run has None"):
        scored(events, DetectorSettings(features=("x",)), checkpoint=path)
