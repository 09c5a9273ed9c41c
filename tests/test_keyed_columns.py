"""Keyed diagonal models are checkpointed as columns, restored bit for bit, and checked on load.

The list of one table per model that checkpoints held before still restores;
a table of columns restores the same bank, and what follows it is the same,
bit for bit; an edited table is refused with one line naming the column, the
entry and the rule.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from test_checkpoint_values import refused_line

from stream_detect.cli import main
from stream_detect.detector import Detector
from stream_detect.errors import ModelError
from stream_detect.keyed_arrays import KeyedArrays
from stream_detect.keyed_columns import decode
from stream_detect.settings import DetectorSettings

FEATURES = ("a", "b", "c")
SETTINGS = DetectorSettings(
    key_field="host", max_keys=6, accept_after=3, min_samples=5, retune_every=0, log_epsilon=-7.0
)
REPO = Path(__file__).resolve().parents[1]


def stream(count: int = 400) -> tuple[np.ndarray[Any, Any], list[str]]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(count, 3))
    X[::37] += 9.0
    X[190:200] += 20.0  # deviations still pending when the state is saved
    keys = [f"k{k}" for k in rng.integers(0, 5, count)]
    keys[::9] = [f"k{5 + i % 3}" for i in range(len(keys[::9]))]  # more keys than max_keys
    keys[190:200] = ["k0", "k3", "k4", "k0", "k3", "k4", "k0", "k1", "k2", "k1"]
    return X * [1.0, 30.0, 0.01], keys


def restored(state: dict[str, Any], settings: DetectorSettings = SETTINGS) -> Detector:
    detector = Detector(settings, FEATURES)
    detector.restore(state)
    return detector


def bank(detector: Detector) -> KeyedArrays:
    assert isinstance(detector.models, KeyedArrays)
    return detector.models


def saved_both_ways(first: Detector) -> tuple[dict[str, Any], dict[str, Any]]:
    """``first``'s state as a checkpoint file has it, and the same with models as a list."""
    written = orjson.dumps(first.to_dict(arrays=True), option=orjson.OPT_SERIALIZE_NUMPY)
    columns = orjson.loads(written)
    return columns, {**columns, "models": bank(first).to_list()}


def test_columns_restore_the_bank_the_list_restores_bit_for_bit() -> None:
    X, keys = stream()
    first = Detector(SETTINGS, FEATURES)
    first.process(X[:200], keys=keys[:200])
    columns, listed = saved_both_ways(first)
    assert columns["models"]["layout"] == "columns" and columns["models"]["pending"]
    mine, theirs = restored(columns), restored(listed)
    for name in ("n", "mean", "second", "learned", "run_length"):
        # Whole arrays, free rows too: the same slots, the same table size.
        assert getattr(bank(mine), name).tobytes() == getattr(bank(theirs), name).tobytes()
    assert bank(mine).recency.stamps.tobytes() == bank(theirs).recency.stamps.tobytes()
    assert bank(mine).to_list() == bank(theirs).to_list() == bank(first).to_list()
    for start in range(200, 400, 50):
        batch, batch_keys = X[start : start + 50], keys[start : start + 50]
        outputs = [d.process(batch, keys=batch_keys) for d in (mine, theirs, first)]
        for name in ("score", "log_p", "alert"):
            mine_out, theirs_out, first_out = (getattr(o, name).tobytes() for o in outputs)
            assert mine_out == theirs_out == first_out, name
    assert orjson.dumps(mine.to_dict()) == orjson.dumps(theirs.to_dict())
    assert orjson.dumps(mine.to_dict()) == orjson.dumps(first.to_dict())


def test_columns_past_a_lowered_max_keys_evict_as_the_list_does() -> None:
    X, keys = stream()
    first = Detector(SETTINGS, FEATURES)
    first.process(X[:200], keys=keys[:200])
    columns, listed = saved_both_ways(first)
    fewer = DetectorSettings(**{**SETTINGS.__dict__, "max_keys": 3})
    mine, theirs = restored(columns, fewer), restored(listed, fewer)
    assert len(mine.models) == 3 and mine.models.evicted == first.models.evicted + 3
    assert mine.models.evicted_in_warmup == theirs.models.evicted_in_warmup
    assert bank(mine).to_list() == bank(theirs).to_list()
    assert orjson.dumps(mine.to_dict()) == orjson.dumps(theirs.to_dict())
    np.testing.assert_array_equal(
        mine.process(X[200:], keys=keys[200:]).score, theirs.process(X[200:], keys=keys[200:]).score
    )


def test_a_checkpoint_of_models_as_a_list_still_restores(tmp_path: Path) -> None:
    # As every checkpoint of a keyed run was written before models were saved as columns.
    source, checkpoint = tmp_path / "events.jsonl", tmp_path / "ck.json"
    X, keys = stream()
    events = [
        {"host": k, **dict(zip(FEATURES, row, strict=True))}
        for k, row in zip(keys, X.tolist(), strict=True)
    ]
    source.write_text("".join(json.dumps(e) + "\n" for e in events[:200]))
    flags = ["--key-field", "host", "--max-keys", "6", "--emit", "all", "--no-summary"]
    assert main(["run", "--source", f"file:{source}", "--checkpoint", str(checkpoint), *flags]) == 0
    document = json.loads(checkpoint.read_bytes())
    detector = restored_for_cli(document["detector"])
    document["detector"]["models"] = bank(detector).to_list()
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(document))
    new.write_bytes(checkpoint.read_bytes())
    with source.open("a") as more:
        more.write("".join(json.dumps(e) + "\n" for e in events[200:]))
    outputs = []
    for state in (old, new):
        out = tmp_path / f"{state.stem}.jsonl"
        run = ["run", "--source", f"file:{source}", "--checkpoint", str(state)]
        assert main([*run, "--sink", f"file:{out}", *flags]) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] and outputs[0].count(b"\n") == 200
    assert json.loads(old.read_bytes())["detector"] == json.loads(new.read_bytes())["detector"]


def restored_for_cli(state: dict[str, Any]) -> Detector:
    """A detector as ``run --key-field host --max-keys 6`` restores ``state``."""
    settings = DetectorSettings(key_field="host", max_keys=6)
    detector = Detector(settings, tuple(state["features"]))
    detector.restore(state)
    return detector


def test_a_keyed_run_resumed_in_another_process_writes_what_one_run_writes(
    tmp_path: Path,
) -> None:
    X, keys = stream(600)
    lines = [
        json.dumps({"host": k, **dict(zip(FEATURES, row, strict=True))}) + "\n"
        for k, row in zip(keys, X.tolist(), strict=True)
    ]
    whole, parts = tmp_path / "whole.jsonl", tmp_path / "parts.jsonl"
    whole.write_text("".join(lines))
    flags = ["--key-field", "host", "--max-keys", "6", "--emit", "all", "--batch-size", "32"]

    def run(source: Path, checkpoint: Path, out: Path) -> None:
        command = [sys.executable, "-m", "stream_detect", "run", "--source", f"file:{source}"]
        command += ["--checkpoint", str(checkpoint), "--sink", f"file:{out}", *flags]
        done = subprocess.run(command, capture_output=True, cwd=REPO, timeout=120)
        assert done.returncode == 0, done.stderr

    run(whole, tmp_path / "whole.json", tmp_path / "whole.out")
    written = []
    for part, end in enumerate((224, 416, 600)):  # batch boundaries kept
        parts.write_text("".join(lines[:end]))
        run(parts, tmp_path / "parts.json", tmp_path / f"part{part}.out")
        written.append((tmp_path / f"part{part}.out").read_bytes())
    straight = (tmp_path / "whole.out").read_bytes()
    assert b"".join(written).replace(b"parts.jsonl", b"whole.jsonl") == straight
    resumed, uninterrupted = (
        json.loads((tmp_path / name).read_bytes())["detector"]
        for name in ("parts.json", "whole.json")
    )
    assert resumed["models"]["layout"] == "columns"
    assert resumed["models"] == uninterrupted["models"]


Edit = Callable[[dict[str, Any]], None]


def models(state: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = state["models"]
    return found


def setting(name: str, value: Any) -> Edit:
    return lambda state: models(state).update({name: value})


def entry(name: str, at: tuple[Any, ...], value: Any) -> Edit:
    def edit(state: dict[str, Any]) -> None:
        column = models(state)[name]
        for i in at[:-1]:
            column = column[i]
        column[at[-1]] = value

    return edit


COUNT = "9223372036854775807"
EDITS: dict[str, tuple[Edit, str]] = {
    "unknown layout": (setting("layout", "rows"), "models.layout is 'rows', expected 'columns'"),
    "full covariance": (
        setting("kind", "full"),
        "models.kind is 'full', expected 'diagonal': columns hold keyed diagonal models only",
    ),
    "models a number": (
        lambda s: s.update(models=7),
        "models is 7, expected a list of models or a table of columns",
    ),
    "column missing": (
        lambda s: models(s).pop("second"),
        "models.second is missing, expected a list of feature vectors, one per key",
    ),
    "keys text": (setting("keys", "abc"), "models.keys is 'abc', expected a list of keys"),
    "key a number": (entry("keys", (1,), 5), "models.keys[1] is 5, expected a string"),
    "no keys for learned events": (
        lambda s: models(s).update(
            {name: [] for name in ("keys", "n", "mean", "second", "learned", "run_length")}
        ),
        "expected at least one model for a state that learned events",
    ),
    "a count short": (
        lambda s: models(s)["n"].pop(),
        "expected a list of 6 numbers, one per key",
    ),
    "negative count": (
        entry("n", (1,), -1.0),
        f"models.n[1] is -1.0, expected a finite count >= 0 and at most {COUNT}",
    ),
    "count too large": (entry("n", (4,), 1e19), "models.n[4] is 1e+19, expected a finite count"),
    "count text": (entry("n", (0,), "5"), "models.n[0] is '5', expected a number"),
    "count true": (entry("n", (0,), True), "models.n[0] is True, expected a number"),
    "mean row short": (
        entry("mean", (1,), [1.0]),
        "models.mean[1] is [1.0], expected a list of 3 numbers",
    ),
    "mean rows flat": (setting("mean", [1.0] * 6), "models.mean[0] is 1.0, expected a list of 3"),
    "huge mean": (
        entry("mean", (5, 2), 1e300),
        "models.mean[5][2] is 1e+300, expected a finite number of magnitude at most 1e+154",
    ),
    "null mean": (entry("mean", (0, 0), None), "models.mean[0][0] is None, expected a number"),
    "negative second moment": (
        entry("second", (3, 1), -0.5),
        "models.second[3][1] is -0.5, expected a finite sum of squared deviations >= 0",
    ),
    "learned a fraction": (
        entry("learned", (0,), 2.5),
        "models.learned[0] is 2.5, expected an integer >= 0",
    ),
    "learned negative": (
        entry("learned", (2,), -3),
        "models.learned[2] is -3, expected an integer >= 0",
    ),
    "run length beyond 64 bits": (
        entry("run_length", (0,), 2**63),
        f"models.run_length[0] is {2**63}, expected an integer at most {COUNT}",
    ),
    "pending a list": (
        setting("pending", []),
        "models.pending is [], expected a table of pending feature vectors by key index",
    ),
    "pending of a key not held": (
        setting("pending", {"6": [[1.0, 2.0, 3.0]]}),
        "models.pending is \"a field '6'\", expected fields named by key indexes below 6",
    ),
    "pending index not a number": (
        setting("pending", {"01": [[1.0, 2.0, 3.0]]}),
        "models.pending is \"a field '01'\", expected fields named by key indexes",
    ),
    "pending row short": (
        setting("pending", {"0": [[1.0, 2.0]]}),
        "models.pending['0'][0] is [1.0, 2.0], expected a list of 3 numbers",
    ),
    "half-life negative": (
        setting("half_life", -4),
        "models.half_life is -4, expected a positive number of events or null",
    ),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """An events file and a good checkpoint of a keyed run over it (six keys held)."""
    folder = tmp_path_factory.mktemp("columns")
    source = folder / "events.jsonl"
    X, keys = stream()
    source.write_text(
        "".join(
            json.dumps({"host": k, **dict(zip(FEATURES, row, strict=True))}) + "\n"
            for k, row in zip(keys, X.tolist(), strict=True)
        )
    )
    checkpoint = folder / "ck.json"
    run = ["run", "--source", f"file:{source}", "--checkpoint", str(checkpoint), "--no-summary"]
    assert main([*run, *KEYED]) == 0
    return source, checkpoint.read_bytes()


KEYED = ["--key-field", "host", "--max-keys", "6"]


def refusal(
    saved: tuple[Path, bytes],
    edit: Edit,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
) -> str:
    """The one error line of resuming from the saved checkpoint, edited (exit 2, not rewritten)."""
    source, good = saved
    document = json.loads(good)
    assert len(document["detector"]["models"]["keys"]) == 6
    edit(document["detector"])
    return refused_line(source, document, tmp_path, capsys, flags)


@pytest.mark.parametrize("name", sorted(EDITS))
def test_an_edited_table_of_columns_is_refused(
    name: str, saved: tuple[Path, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit, expected = EDITS[name]
    assert expected in refusal(saved, edit, tmp_path, capsys, KEYED)


def test_a_key_named_twice_is_named_with_its_first_place(
    saved: tuple[Path, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def twice(state: dict[str, Any]) -> None:
        models(state)["keys"][4] = models(state)["keys"][1]

    error = refusal(saved, twice, tmp_path, capsys, KEYED)
    assert "expected a key no other model has (models.keys[1])" in error


def test_columns_are_refused_by_a_run_of_other_models(
    saved: tuple[Path, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = [*KEYED, "--model", "full"]
    unchanged = refusal(saved, lambda state: None, tmp_path, capsys, full)
    assert "written with model = 'diagonal', this run has 'full'" in unchanged
    # Settings edited to pass for a full-covariance run's: the columns still cannot be its models.
    relabelled = refusal(saved, lambda state: state.update(model="full"), tmp_path, capsys, full)
    assert "models are saved as columns, which hold keyed diagonal models only" in relabelled
    assert "model = 'full'" in relabelled


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_a_value_that_no_json_holds_is_refused_too(bad: float) -> None:
    # A state handed over in memory can hold what a JSON file cannot.
    X, keys = stream()
    first = Detector(SETTINGS, FEATURES)
    first.process(X[:200], keys=keys[:200])
    state = first.to_dict(arrays=True)
    state["models"]["mean"][3, 1] = bad
    with pytest.raises(ModelError, match=r"^models\.mean\[3\]\[1\] is (inf|-inf|nan), expected"):
        decode(state["models"], 3)
    with pytest.raises(ModelError, match=r"models\.mean\[3\]\[1\]"):
        restored(state)
