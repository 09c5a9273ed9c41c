"""Checkpoint values are validated on load: refused with one line and exit 2, never used."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stream_detect.cli import main

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
}


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
    source, good = saved
    edit, expected = EDITS[name]
    document = json.loads(good)
    edit(document["detector"])
    checkpoint = tmp_path / "ck.json"
    written = json.dumps(document).encode()
    checkpoint.write_bytes(written)
    capsys.readouterr()
    status = main(["run", "--source", f"file:{source}", "--checkpoint", str(checkpoint)])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert status == 2
    assert len(errors) == 1 and expected in errors[0], errors
    assert checkpoint.read_bytes() == written, "a refused checkpoint is not rewritten"


def test_the_unedited_checkpoint_is_accepted(saved: tuple[Path, bytes], tmp_path: Path) -> None:
    source, good = saved
    checkpoint = tmp_path / "ck.json"
    checkpoint.write_bytes(good)
    assert main(["run", "--source", f"file:{source}", "--checkpoint", str(checkpoint)]) == 0
