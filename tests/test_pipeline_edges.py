"""Shutdown, restarts and odd inputs at the edges of the pipeline."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream_detect.assembly import run_stream
from stream_detect.config import settings_from_mapping
from stream_detect.errors import ConfigError, ModelError
from stream_detect.pipeline import Pipeline
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sources import open_source
from stream_detect.state import load_checkpoint, save_checkpoint
from stream_detect.testing import ListSink, ListSource


def write_lines(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
    return path


def normal_events(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"x": float((i * 7919) % 13) / 13.0} for i in range(start, start + count)]


def test_a_stop_request_still_scores_what_was_already_read(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "events.jsonl", normal_events(3000))
    stop = threading.Event()
    sink = ListSink()
    pipeline = Pipeline(
        RunSettings(emit="all", batch_size=100),
        DetectorSettings(),
        source=open_source(f"file:{path}"),
        sink=sink,
        dead_letter=ListSink(),
        on_progress=lambda _: stop.set(),
    )
    summary = pipeline.run(stop)
    assert summary.stopped_by == "signal"
    # The first read took the whole (small) file into the source's buffer.
    assert summary.events == 3000 and len(sink.records) == 3000


class PipeLike(ListSource):
    """A source that, like stdin, cannot be repositioned."""

    resumable = False


def test_a_restart_on_a_pipe_keeps_the_model_and_reads_the_new_stream(tmp_path: Path) -> None:
    checkpoint = tmp_path / "state.json"
    run = RunSettings(emit="all", checkpoint=str(checkpoint))
    first = run_stream(
        run,
        DetectorSettings(),
        source=PipeLike(normal_events(200)),
        sink=ListSink(),
        dead_letter=ListSink(),
    )
    assert first.events == 200
    sink = ListSink()
    second = run_stream(
        run,
        DetectorSettings(),
        source=PipeLike(normal_events(50, 200)),
        sink=sink,
        dead_letter=ListSink(),
    )
    assert second.resumed_from == {"model_only": True}
    assert [r["n"] for r in sink.records[:2]] == [200, 201]


def test_a_checkpoint_made_under_other_transforms_is_refused(tmp_path: Path) -> None:
    checkpoint = tmp_path / "state.json"
    events = [{"x": 1.0 + (i % 5)} for i in range(100)]
    run = RunSettings(checkpoint=str(checkpoint))
    run_stream(
        run,
        DetectorSettings(transforms={"x": "log"}),
        source=ListSource(events),
        sink=ListSink(),
        dead_letter=ListSink(),
    )
    with pytest.raises(ModelError, match=r"state\.json.*transforms"):
        run_stream(
            run,
            DetectorSettings(),
            source=ListSource(events),
            sink=ListSink(),
            dead_letter=ListSink(),
        )


def test_dead_letters_keep_arrival_order_and_raw_text() -> None:
    events: list[Any] = [{"x": -1.0}, "not json", {"x": 2.0}, {"x": -3.0}]
    dead = ListSink()
    run_stream(
        RunSettings(),
        DetectorSettings(transforms={"x": "log"}, features=("x",)),
        source=ListSource(events),
        sink=ListSink(),
        dead_letter=dead,
    )
    assert [r["position"]["line"] for r in dead.records] == [1, 2, 4]
    assert dead.records[0]["raw"] == '{"x":-1.0}'
    assert "outside the domain of transform log" in dead.records[0]["reason"]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"detector": [], "source": {}}, "detector"),
        ({"detector": {}, "source": {}, "header": 5}, "header"),
        ({"detector": {}}, "source"),
    ],
)
def test_a_malformed_checkpoint_names_the_field(
    tmp_path: Path, document: dict[str, Any], field: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(orjson.dumps({"format": "stream-detect-checkpoint", "version": 1, **document}))
    with pytest.raises(ModelError, match=f"'{field}'"):
        load_checkpoint(path)


def test_a_checkpoint_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    from stream_detect.state import Checkpoint

    with pytest.raises(ModelError, match="cannot be written"):
        save_checkpoint("/dev/full/state.json", Checkpoint({}, {}))


def test_a_named_format_wins_over_the_file_extension(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text("x,y\n" + "".join(f"{i % 3},{i % 5}\n" for i in range(60)))
    summary = run_stream(
        RunSettings(source=f"file:{path}", format="csv", summary=False),
        DetectorSettings(),
        sink=ListSink(),
        dead_letter=ListSink(),
    )
    assert summary.events == 60 and summary.bad_records == 0


def test_without_a_label_field_a_field_named_label_is_just_data() -> None:
    events = [{"label": "web", "x": float(i % 4)} for i in range(60)]
    summary = run_stream(
        RunSettings(),
        DetectorSettings(label_field=None),
        source=ListSource(events),
        sink=ListSink(),
        dead_letter=ListSink(),
    )
    assert summary.events == 60 and summary.bad_records == 0


def test_stdin_cannot_carry_both_events_and_labels() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"labels": "stdin", "source": "-", "id_field": "id"})
    assert caught.value.key == "labels"


@pytest.mark.parametrize(
    ("run", "detector", "key"),
    [
        (RunSettings(labels="file:labels.jsonl"), DetectorSettings(), "labels"),
        (
            RunSettings(labels="file:labels.jsonl"),
            DetectorSettings(id_field="id", label_field=None),
            "labels",
        ),
        # A missing checkpoint directory is made; one under a plain file cannot be.
        (RunSettings(checkpoint="labels.jsonl/state.json"), DetectorSettings(), "checkpoint"),
    ],
)
def test_settings_that_cannot_work_together_are_refused_before_reading(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run: RunSettings,
    detector: DetectorSettings,
    key: str,
) -> None:
    (tmp_path / "labels.jsonl").write_text("")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        run_stream(run, detector, source=ListSource([]), sink=ListSink(), dead_letter=ListSink())
    assert caught.value.key == key


def test_what_run_stream_opened_is_closed_when_setting_up_fails(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "events.jsonl", normal_events(10))
    checkpoint = tmp_path / "state.json"
    checkpoint.write_text("not a checkpoint")
    run = RunSettings(
        source=f"file:{path}", sink=f"file:{tmp_path / 'out.jsonl'}", checkpoint=str(checkpoint)
    )
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with pytest.raises(ModelError):
            run_stream(run, DetectorSettings())
    assert len(os.listdir("/proc/self/fd")) == before
