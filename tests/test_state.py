"""Checkpoints: round trip, atomic writes, refusal of files that are not ours or do not fit."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from stream_detect import state as state_module
from stream_detect.assembly import run_stream
from stream_detect.errors import ModelError, StreamDetectError
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.state import FORMAT, VERSION, Checkpoint, load_checkpoint, save_checkpoint
from stream_detect.testing import ListSink, ListSource

SAMPLE = Checkpoint(
    detector={"features": ["a", "b"], "n": 3, "mean": [0.1, 1e-300], "nested": {"x": [1, 2]}},
    source={"line": 41, "offset": 1234},
    labels={"line": 7, "offset": 99},
    header="a,b,label",
    held_feedback=[{"id": "e9", "label": 1, "position": {"line": 3, "offset": 40}, "payload": "x"}],
    written_at=1700000000.25,
)


def leftovers(directory: Path, keep: str) -> list[str]:
    """Files in ``directory`` other than ``keep``: temp files a write left behind."""
    return sorted(p.name for p in directory.iterdir() if p.name != keep)


def write_document(path: Path, **changes: Any) -> None:
    """A checkpoint file as save_checkpoint writes it, with some fields changed or dropped."""
    save_checkpoint(path, SAMPLE)
    document = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            document.pop(key)
        else:
            document[key] = value
    path.write_text(json.dumps(document))


# -- round trip and atomic writes -------------------------------------------------------------


def test_round_trip_keeps_every_field_exactly(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_checkpoint(path, SAMPLE)
    assert load_checkpoint(path) == SAMPLE
    document = json.loads(path.read_text())
    assert document["format"] == FORMAT and document["version"] == VERSION


def test_numpy_values_are_saved_as_data(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    values = np.array([0.1, 2.0 / 3.0, -1e-17])
    save_checkpoint(path, Checkpoint({"mean": values}, {"line": 1, "offset": 0}))
    loaded = load_checkpoint(path)
    assert loaded is not None
    # Floats round-trip bit for bit: restored models continue exactly.
    assert np.array_equal(np.asarray(loaded.detector["mean"]), values)
    assert path.read_bytes().startswith(b"{")


def test_written_at_defaults_to_now(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_checkpoint(path, Checkpoint({}, {"line": 1, "offset": 0}))
    loaded = load_checkpoint(path)
    assert loaded is not None and loaded.written_at > 1.6e9


def test_a_missing_file_means_no_checkpoint(tmp_path: Path) -> None:
    assert load_checkpoint(tmp_path / "absent.json") is None


def test_writes_leave_no_temp_files_and_replace_the_old_state(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    for line in range(1, 6):
        save_checkpoint(path, Checkpoint({"n": line}, {"line": line, "offset": 10 * line}))
    loaded = load_checkpoint(path)
    assert loaded is not None and loaded.detector == {"n": 5}
    assert leftovers(tmp_path, "state.json") == []


def test_a_checkpoint_path_that_is_not_a_regular_file_is_refused_and_left_in_place(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "state.json"
    os.mkfifo(fifo)
    with pytest.raises(ModelError, match="not a regular file"):
        save_checkpoint(fifo, Checkpoint({"n": 1}, {"line": 1, "offset": 0}))
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert leftovers(tmp_path, "state.json") == []
    # Nor is it read: opening a FIFO without a writer would wait for one.
    with pytest.raises(ModelError, match="cannot be read \\(not a regular file\\)"):
        load_checkpoint(fifo)


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failing_write_keeps_the_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "state.json"
    save_checkpoint(path, SAMPLE)
    before = path.read_bytes()

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(state_module.os, failing, fail)
    with pytest.raises(ModelError, match="cannot be written"):
        save_checkpoint(path, Checkpoint({"n": 999}, {"line": 1000, "offset": 0}))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path) == SAMPLE
    assert leftovers(tmp_path, "state.json") == []


def test_an_unencodable_state_keeps_the_old_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_checkpoint(path, SAMPLE)
    with pytest.raises(TypeError):
        save_checkpoint(path, Checkpoint({"model": object()}, {"line": 1, "offset": 0}))
    assert load_checkpoint(path) == SAMPLE
    assert leftovers(tmp_path, "state.json") == []


# -- files that are not usable checkpoints -----------------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "not valid JSON"),
        (b'{"format": "stream-detect-checkpoint", "vers', "not valid JSON"),
        (b"\x80\x81 binary junk", "not UTF-8 text (at byte 0)"),
        (b"[1, 2, 3]", "not a stream-detect checkpoint"),
        (b'{"model": {"mu": [0.0]}}', "not a stream-detect checkpoint"),
        (b'{"format": "something-else", "version": 1}', "not a stream-detect checkpoint"),
    ],
    ids=["empty", "truncated", "binary", "array", "foreign-json", "foreign-format"],
)
def test_corrupt_and_foreign_files_are_refused_by_name(
    tmp_path: Path, content: bytes, words: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(ModelError) as caught:
        load_checkpoint(path)
    assert str(path) in str(caught.value)
    assert words in str(caught.value)


def test_a_checkpoint_opened_and_saved_by_an_editor_with_a_byte_order_mark_still_loads(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    save_checkpoint(path, SAMPLE)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_checkpoint(path) == SAMPLE


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_another_version_is_refused_by_name(tmp_path: Path, version: Any) -> None:
    path = tmp_path / "state.json"
    save_checkpoint(path, SAMPLE)
    document = orjson.loads(path.read_bytes())
    document["version"] = version
    path.write_bytes(orjson.dumps(document))
    with pytest.raises(ModelError, match="version") as caught:
        load_checkpoint(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("dropped", ["detector", "source"])
def test_a_checkpoint_missing_a_part_is_refused_by_name(tmp_path: Path, dropped: str) -> None:
    path = tmp_path / "state.json"
    write_document(path, **{dropped: None})
    with pytest.raises(ModelError) as caught:
        load_checkpoint(path)
    assert str(path) in str(caught.value)
    assert dropped in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"labels": 7}, "the field 'labels' is 7, expected a table (the labels input's position)"),
        ({"header": [1]}, "the field 'header' is [1], expected a string (the CSV header line)"),
        ({"held_feedback": {}}, "the field 'held_feedback' is {}, expected a list of held"),
        ({"source": "x"}, "the field 'source' is 'x', expected a table (the input's position)"),
        ({"written_at": "soon"}, "the field 'written_at' is 'soon', expected a time in seconds"),
        ({"written_at": []}, "the field 'written_at' is [], expected a time in seconds"),
        ({"version": True}, "version True, this build reads 1"),
    ],
)
def test_a_part_of_the_wrong_type_is_refused_saying_what_was_expected(
    tmp_path: Path, changes: dict[str, Any], words: str
) -> None:
    # These said only "the field 'labels' is malformed"; a list as written_at, and true as
    # the version, were taken.
    path = tmp_path / "state.json"
    write_document(path, **changes)
    with pytest.raises(ModelError) as caught:
        load_checkpoint(path)
    assert words in str(caught.value)


def test_an_unreadable_path_is_a_model_error(tmp_path: Path) -> None:
    directory = tmp_path / "state.json"
    directory.mkdir()
    with pytest.raises(ModelError, match="cannot be read") as caught:
        load_checkpoint(directory)
    assert str(directory) in str(caught.value)


# -- a checkpoint meets the run that restores it -----------------------------------------------


def events(count: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(11)
    values = rng.normal(size=(count, 3))
    return [{"a": a, "b": b, "c": c} for a, b, c in values.tolist()]


def checkpoint_run(path: Path, detector: DetectorSettings, count: int = 120) -> None:
    run_stream(
        RunSettings(checkpoint=str(path)),
        detector,
        source=ListSource(events(count)),
        sink=ListSink(),
        dead_letter=ListSink(),
    )


def restart(path: Path, detector: DetectorSettings, count: int = 200) -> None:
    """The same stream grown to ``count`` events, resumed from the checkpoint at ``path``."""
    checkpoint_run(path, detector, count)


@pytest.mark.parametrize(
    ("first", "second", "words"),
    [
        (DetectorSettings(), DetectorSettings(model="full"), ["model", "'diagonal'", "'full'"]),
        (DetectorSettings(model="full"), DetectorSettings(), ["model", "'full'", "'diagonal'"]),
        (DetectorSettings(), DetectorSettings(half_life=500.0), ["half_life", "None", "500.0"]),
        (DetectorSettings(), DetectorSettings(key_field="host"), ["key_field", "None", "'host'"]),
    ],
    ids=["diagonal-to-full", "full-to-diagonal", "half-life", "keyed"],
)
def test_a_checkpoint_of_another_model_is_refused(
    tmp_path: Path, first: DetectorSettings, second: DetectorSettings, words: list[str]
) -> None:
    path = tmp_path / "state.json"
    checkpoint_run(path, first)
    before = path.read_bytes()
    with pytest.raises(ModelError) as caught:
        restart(path, second)
    message = str(caught.value)
    for word in words:
        assert word in message
    # The refused checkpoint is left as it was, for the run it belongs to.
    assert path.read_bytes() == before


def test_a_checkpoint_of_other_features_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    checkpoint_run(path, DetectorSettings(features=("a", "b")))
    with pytest.raises(ModelError, match="features"):
        restart(path, DetectorSettings(features=("a", "c")))


def test_a_refused_checkpoint_is_named_in_the_message(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    checkpoint_run(path, DetectorSettings())
    with pytest.raises(ModelError) as caught:
        restart(path, DetectorSettings(model="full"))
    assert str(path) in str(caught.value)


def test_restoring_the_same_settings_continues(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    checkpoint_run(path, DetectorSettings(), count=120)
    restart(path, DetectorSettings(), count=200)
    loaded = load_checkpoint(path)
    assert loaded is not None
    assert loaded.source == {"line": 201, "offset": loaded.source["offset"]}
    (model,) = loaded.detector["models"]
    assert model["state"]["stats"]["n"] == 200.0


def test_a_missing_checkpoint_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "state.json"
    run_stream(
        RunSettings(checkpoint=str(path)),
        DetectorSettings(),
        source=ListSource(events(50)),
        sink=ListSink(),
        dead_letter=ListSink(),
    )
    loaded = load_checkpoint(path)
    assert loaded is not None and loaded.detector["counters"]["events"] == 50


def test_a_checkpoint_directory_that_cannot_be_made_is_refused_before_the_run(
    tmp_path: Path,
) -> None:
    (tmp_path / "plain").write_text("a file, not a directory")
    sink = ListSink()
    with pytest.raises(StreamDetectError, match="checkpoint"):
        run_stream(
            RunSettings(checkpoint=str(tmp_path / "plain" / "state.json")),
            DetectorSettings(),
            source=ListSource(events(50)),
            sink=sink,
            dead_letter=ListSink(),
        )
    assert sink.records == [], "refused before anything was processed"
    assert os.listdir(tmp_path) == ["plain"]


def test_the_validation_count_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    rows = [{"a": float(i % 5), "b": float(i % 3), "label": int(i % 40 == 0)} for i in range(300)]
    settings = DetectorSettings(validation_size=20, min_negative_labels=20)
    run_stream(
        RunSettings(checkpoint=str(path)),
        settings,
        source=ListSource(rows),
        sink=ListSink(),
        dead_letter=ListSink(),
    )
    saved = load_checkpoint(path)
    assert saved is not None and saved.detector["validation"]["n_seen"] == 300
    restart = RunSettings(checkpoint=str(path), checkpoint_every=0, checkpoint_seconds=0.0)
    run_stream(restart, settings, source=ListSource(rows), sink=ListSink(), dead_letter=ListSink())
    again = load_checkpoint(path)
    assert again is not None and again.detector["validation"]["n_seen"] == 300


def test_saving_into_a_missing_directory_is_a_model_error_naming_the_file(tmp_path: Path) -> None:
    target = tmp_path / "gone" / "state.json"
    with pytest.raises(ModelError) as caught:
        save_checkpoint(target, SAMPLE)
    assert str(target) in str(caught.value)


def test_a_checkpoint_through_a_link_is_written_and_cleaned_beside_its_file(
    tmp_path: Path,
) -> None:
    # The link stays a link (it was replaced by the new checkpoint), and the leftovers of
    # killed writes, made beside the file the link leads to, are found there.
    from stream_detect.atomic import remove_leftovers

    real = tmp_path / "disk" / "state.json"
    real.parent.mkdir()
    link = tmp_path / "state.json"
    link.symlink_to(real)
    save_checkpoint(link, Checkpoint({"n": 1}, {"line": 3, "offset": 20}))
    assert link.is_symlink()
    loaded = load_checkpoint(real)
    assert loaded is not None and loaded.source == {"line": 3, "offset": 20}
    (real.parent / ".state.json.k3_9ab0z.tmp").write_bytes(b"{}")
    assert remove_leftovers(link) == 1
