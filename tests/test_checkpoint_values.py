"""Checkpoint values are validated on load: refused with one line and exit 2, never used."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stream_detect.cli import main
from stream_detect.settings import DetectorSettings

Edit = Callable[[dict[str, Any]], None]


def model(state: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = state["models"][0]
    return found


def stats(state: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = model(state)["state"]["stats"]
    return found


EDITS: dict[str, tuple[Edit, str]] = {
    "log_epsilon text": (lambda s: s.update(log_epsilon="x"), "log_epsilon is 'x'"),
    "huge mean": (lambda s: stats(s).update(mean=[1e308, 1e308]), "magnitude at most"),
    "negative count": (lambda s: stats(s).update(n=-5.0), "a count >= 0"),
    "negative second moment": (lambda s: stats(s).update(second=[-1.0, 2.0]), ">= 0"),
    "mean of the wrong shape": (lambda s: stats(s).update(mean=[1.0]), "a list of 2 numbers"),
    "no models": (lambda s: s.update(models=[]), "at least one model"),
    "pickle state": (lambda s: model(s)["state"].update(type="pickle"), "one of ['gaussian']"),
    "unknown epsilon source": (lambda s: s.update(epsilon_source="magic"), "epsilon_source"),
    "negative counter": (lambda s: s["counters"].update(alerts=-1), "counters.alerts"),
    "learned as text": (lambda s: model(s).update(learned="many"), "learned"),
    "bad recent score": (lambda s: s.update(recent_scores=["x"]), "recent_scores[0]"),
    # Each of these was refused with Python's words (KeyError('alerts'), "'NoneType' object is
    # not subscriptable", ...) or, for a model type that is a list, a traceback.
    "a counter missing": (
        lambda s: s["counters"].pop("alerts"),
        "counters.alerts is missing, expected an integer >= 0",
    ),
    "threshold missing": (
        lambda s: s.pop("log_epsilon"),
        "log_epsilon is missing, expected a finite number or null",
    ),
    "remembered events null": (
        lambda s: s.update(recent_events=None),
        "recent_events is None, expected a table of ids, keys and rows",
    ),
    "validation buffer a number": (
        lambda s: s.update(validation=7),
        "validation is 7, expected a table",
    ),
    "validation rows text": (
        lambda s: s["validation"].update(rows="x"),
        "validation.rows is 'x', expected a list of rows of 2 numbers",
    ),
    "validation ids not one per row": (
        lambda s: s["validation"].update(ids=[7]),
        "validation.ids is [7], expected a list of 0 event ids (strings or null)",
    ),
    "model type a list": (
        lambda s: model(s)["state"].update(type=[]),
        "models[0].state.type is [], expected one of ['gaussian']",
    ),
    "model key missing": (
        lambda s: model(s).pop("key"),
        "models[0].key is missing, expected a string",
    ),
    # The second model of a key replaced the first without a word.
    "a model key twice": (
        lambda s: s["models"].append(s["models"][0]),
        "models[1].key is '', expected a key no other model has (models[0])",
    ),
    # These two were reported as "config key features", not as the checkpoint's.
    "a feature named twice": (
        lambda s: s.update(features=["a", "a"]),
        "features is ['a', 'a'], expected feature names, each at most once",
    ),
    "a feature that is the label field": (
        lambda s: s.update(features=["a", "label"]),
        "features is ['a', 'label'], expected features other than 'label', the label_field",
    ),
    "statistics of no kind": (
        lambda s: stats(s).pop("kind"),
        "models[0].state.stats.kind is missing, expected one of ['diagonal', 'full']",
    ),
}

#: Python's own words, which a message about a checkpoint must not quote.
PYTHON_WORDS = ("Error(", "object", "subscriptable", "iterable", "int()", "float()", "unhashable")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """An events file and a good checkpoint of a run over its first part."""
    folder = tmp_path_factory.mktemp("ck")
    source = folder / "events.jsonl"
    rng = np.random.default_rng(2)
    source.write_text(
        "".join(json.dumps({"a": a, "b": b}) + "\n" for a, b in rng.normal(size=(400, 2)).tolist())
    )
    checkpoint = folder / "ck.json"
    assert (
        main(["run", "--source", f"file:{source}", "--checkpoint", str(checkpoint), "--no-summary"])
        == 0
    )
    return source, checkpoint.read_bytes()


@pytest.mark.parametrize("name", sorted(EDITS))
def test_a_checkpoint_with_unusable_values_is_refused(
    name: str, saved: tuple[Path, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused(saved, *EDITS[name], tmp_path, capsys, [])


def assert_refused(
    saved: tuple[Path, bytes],
    edit: Edit,
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
) -> None:
    """Resuming from the saved checkpoint, edited, is one error line naming ``expected``."""
    source, good = saved
    document = json.loads(good)
    edit(document["detector"])
    error = refused_line(source, document, tmp_path, capsys, flags)
    assert expected in error, error


def refused_line(
    source: Path,
    document: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
) -> str:
    """Resuming from ``document`` as the checkpoint is one error line, exit 2; that line.

    The line names the checkpoint, no Python internals, and the file is not rewritten.
    """
    checkpoint = tmp_path / "ck.json"
    written = json.dumps(document).encode()
    checkpoint.write_bytes(written)
    capsys.readouterr()
    status = main(["run", "--source", f"file:{source}", "--checkpoint", str(checkpoint), *flags])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert status == 2
    assert len(errors) == 1, errors
    assert f"checkpoint {checkpoint}: " in errors[0], errors
    assert not [words for words in PYTHON_WORDS if words in errors[0]], errors
    assert checkpoint.read_bytes() == written, "a refused checkpoint is not rewritten"
    return errors[0]


def test_the_unedited_checkpoint_is_accepted(saved: tuple[Path, bytes], tmp_path: Path) -> None:
    assert_accepted(saved, tmp_path, [])


def test_a_huge_saved_validation_capacity_costs_no_memory(
    saved: tuple[Path, bytes], tmp_path: Path
) -> None:
    # The buffer was allocated at the saved capacity before this run's was taken: a hand-edited
    # 10**12 ended the run with "out of memory" and exit 1. This run's validation_size holds.
    source, good = saved
    document = json.loads(good)
    document["detector"]["validation"]["capacity_per_class"] = 10**12
    checkpoint = tmp_path / "ck.json"
    checkpoint.write_text(json.dumps(document))
    run = ["run", "--source", f"file:{source}", "--checkpoint", str(checkpoint), "--no-summary"]
    assert main(run) == 0
    written = json.loads(checkpoint.read_bytes())["detector"]["validation"]
    assert written["capacity_per_class"] == DetectorSettings().validation_size


def assert_accepted(saved: tuple[Path, bytes], tmp_path: Path, flags: list[str]) -> None:
    """Resuming from the saved checkpoint as it was written runs to the end."""
    source, good = saved
    checkpoint = tmp_path / "ck.json"
    checkpoint.write_bytes(good)
    run = ["run", "--source", f"file:{source}", "--checkpoint", str(checkpoint), "--no-summary"]
    assert main([*run, *flags]) == 0


# The parts of a checkpoint written only by a run with timestamps, ids, labels and an
# alert budget: each was restored without a check, and the run then stopped with a
# traceback (or wrote a checkpoint it could not read back) instead of one line.
TIMED_EDITS: dict[str, tuple[Edit, str]] = {
    "event count beyond 64 bits": (
        lambda s: s["rate"].update(timed_events=1e308),
        "rate.timed_events",
    ),
    "event rate seconds as text": (lambda s: s["rate"].update(first_second="x"), "first_second"),
    "rate re-read beyond 64 bits": (lambda s: s.update(next_rate_at=1e30), "next_rate_at"),
    "negative acceptance count": (lambda s: s.update(accept_after=-1), "accept_after"),
    "budget scores not a list": (lambda s: s["budget"].update(scores=1.5), "budget.scores"),
    "recent keys shorter than ids": (lambda s: s["recent_events"].update(keys=[]), "recent_events"),
    "recent rows missing": (lambda s: s["recent_events"].update(rows=[]), "recent_events"),
    "pending not a list": (lambda s: model(s).update(pending=None), "pending"),
    "count beyond any stream": (lambda s: stats(s).update(n=1e308), "stats.n"),
    "epsilon source a list": (lambda s: s.update(epsilon_source=[]), "epsilon_source"),
    "last choice f1 as text": (lambda s: s["last_choice"].update(f1="x"), "last_choice.f1"),
    "validation label text": (
        lambda s: s["validation"].update(labels=["x"] * len(s["validation"]["rows"])),
        "validation.labels[0] is 'x', expected 0 or 1",
    ),
    "last choice with a field of another program": (
        lambda s: s["last_choice"].update(weight=1.0),
        "last_choice is \"a field 'weight'\", expected only log_epsilon, f1",
    ),
}

TIMED_FLAGS = ["--timestamp-field", "t", "--id-field", "id", "--alerts-per-day", "5"]


@pytest.fixture(scope="module")
def saved_timed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A checkpoint holding an event rate, a budget, remembered ids and a threshold choice."""
    folder = tmp_path_factory.mktemp("ck-timed")
    source = folder / "events.jsonl"
    rng = np.random.default_rng(3)
    lines = []
    for i, (a, b) in enumerate(rng.normal(size=(400, 2)).tolist()):
        event: dict[str, Any] = {"t": 1_700_000_000 + i, "id": f"e{i}", "a": a, "b": b}
        if i % 3 == 0:
            event["label"] = int(i % 15 == 0)
            event["a"] += 8.0 * event["label"]
        lines.append(json.dumps(event) + "\n")
    source.write_text("".join(lines[:300]))
    checkpoint = folder / "ck.json"
    run = ["run", "--source", f"file:{source}", "--checkpoint", str(checkpoint), "--no-summary"]
    assert main([*run, *TIMED_FLAGS]) == 0
    # The file grows after the checkpoint, so a resumed run uses the state on new events.
    with source.open("a") as grown:
        grown.writelines(lines[300:])
    state = json.loads(checkpoint.read_bytes())["detector"]
    assert state["rate"] and state["budget"] and state["recent_events"]["ids"]
    assert state["last_choice"], "the fixture's labels choose a threshold"
    return source, checkpoint.read_bytes()


@pytest.mark.parametrize("name", sorted(TIMED_EDITS))
def test_unusable_rate_budget_and_memory_values_are_refused(
    name: str, saved_timed: tuple[Path, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused(saved_timed, *TIMED_EDITS[name], tmp_path, capsys, TIMED_FLAGS)


def test_the_unedited_timed_checkpoint_is_accepted(
    saved_timed: tuple[Path, bytes], tmp_path: Path
) -> None:
    assert_accepted(saved_timed, tmp_path, TIMED_FLAGS)


def likelihood(state: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(iter(state["likelihood_state"].values()))["likelihood"]
    return found


# The state of derived features and of the likelihood layer was restored unchecked: a wrong
# type there was quoted as Python's TypeError or KeyError, or ended the run with a traceback.
SERIES_EDITS: dict[str, tuple[Edit, str]] = {
    "derived state a number": (
        lambda s: s.update(derived_state=7),
        "derived_state is 7, expected a table of derived features by name",
    ),
    "derived kind unknown": (
        lambda s: s["derived_state"]["mean5"].update(kind="x"),
        "derived_state['mean5'].kind is 'x', expected one of",
    ),
    "window size text": (
        lambda s: s["derived_state"]["mean5"].update(size="x"),
        "derived_state['mean5'].size is 'x', expected an integer >= 1",
    ),
    "recent values a number": (
        lambda s: s["derived_state"]["mean5"].update(recent=7),
        "derived_state['mean5'].recent is 7, expected a table of lists of recent values by key",
    ),
    "likelihood state null": (
        lambda s: s.update(likelihood_state=None),
        "likelihood_state is None, expected a table of likelihood states by key",
    ),
    "likelihood parameters a number": (
        lambda s: likelihood(s).update(parameters=7),
        "likelihood_state[''].likelihood.parameters is 7, expected a table",
    ),
    "likelihood threshold text": (
        lambda s: likelihood(s)["parameters"].update(alert_p="x"),
        "likelihood_state[''].likelihood.parameters.alert_p is 'x', expected a number",
    ),
    "likelihood threshold out of range": (
        lambda s: likelihood(s)["parameters"].update(alert_p=2.0),
        "parameters.alert_p is 2.0, expected a probability strictly between 0 and 1",
    ),
    "likelihood rows of another width": (
        lambda s: likelihood(s)["parameters"].update(n_features=7),
        "likelihood_state[''].likelihood.recent_raw[0] is",
    ),
    "deviation counts missing": (
        lambda s: next(iter(s["likelihood_state"].values()))["deviations"].pop("counts"),
        "likelihood_state[''].deviations.counts is missing, expected a list of 1 counts",
    ),
}

SERIES_FLAGS = ["--derive", "mean5=moving_mean:a:5", "--likelihood", "--features", "a"]


@pytest.fixture(scope="module")
def saved_series(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A checkpoint holding a derived feature's state and a likelihood layer's."""
    folder = tmp_path_factory.mktemp("ck-series")
    source = folder / "events.jsonl"
    rng = np.random.default_rng(5)
    source.write_text("".join(json.dumps({"a": a}) + "\n" for a in rng.normal(size=200).tolist()))
    checkpoint = folder / "ck.json"
    run = ["run", "--source", f"file:{source}", "--checkpoint", str(checkpoint), "--no-summary"]
    assert main([*run, *SERIES_FLAGS]) == 0
    state = json.loads(checkpoint.read_bytes())["detector"]
    assert state["derived_state"]["mean5"]["recent"] and state["likelihood_state"]
    return source, checkpoint.read_bytes()


@pytest.mark.parametrize("name", sorted(SERIES_EDITS))
def test_unusable_derived_and_likelihood_values_are_refused(
    name: str, saved_series: tuple[Path, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused(saved_series, *SERIES_EDITS[name], tmp_path, capsys, SERIES_FLAGS)


def test_the_unedited_series_checkpoint_is_accepted(
    saved_series: tuple[Path, bytes], tmp_path: Path
) -> None:
    assert_accepted(saved_series, tmp_path, SERIES_FLAGS)


# Held feedback labels were restored unchecked: a hand-edited entry (text for a label, no
# position, a string for the entry) ended the run with a traceback.
GOOD_HELD = {"id": "e1", "label": 1, "position": {"line": 3, "offset": 40}, "payload": "{}"}
HELD_EDITS: dict[str, tuple[Any, str]] = {
    "an entry that is text": ("x", "'held_feedback[0]' is 'x', expected a table"),
    "a label that is text": ({**GOOD_HELD, "label": "x"}, "'held_feedback[0].label' is 'x'"),
    "a label of 2": ({**GOOD_HELD, "label": 2}, "'held_feedback[0].label' is 2, expected 0 or 1"),
    "a label missing": (
        {k: v for k, v in GOOD_HELD.items() if k != "label"},
        "'held_feedback[0].label' is missing, expected 0 or 1",
    ),
    "a position that is a list": (
        {**GOOD_HELD, "position": [1]},
        "'held_feedback[0].position' is [1], expected a table",
    ),
    "an id that is a number": ({**GOOD_HELD, "id": 7}, "'held_feedback[0].id' is 7"),
}


@pytest.mark.parametrize("name", sorted(HELD_EDITS))
def test_unusable_held_feedback_is_refused(
    name: str, saved: tuple[Path, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, good = saved
    labels = tmp_path / "labels.jsonl"
    labels.write_text("")
    document = json.loads(good)
    item, expected = HELD_EDITS[name]
    document["labels"] = {"line": 1, "offset": 0}
    document["held_feedback"] = [item]
    flags = ["--labels", f"file:{labels}", "--id-field", "id"]
    error = refused_line(source, document, tmp_path, capsys, flags)
    assert expected in error, error
    # The same checkpoint holding a good held label resumes.
    checkpoint = tmp_path / "ck.json"
    document["held_feedback"] = [GOOD_HELD]
    checkpoint.write_bytes(json.dumps(document).encode())
    assert main(["run", "--source", f"file:{source}", "--checkpoint", str(checkpoint), *flags]) == 0
