"""Feedback labels that race with their events: held by id, and a labels file that comes later."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stream_detect.cli import main
from stream_detect.recent import Feedback, HeldFeedback, RecentEvents
from stream_detect.sources.awaited import AwaitedFileSource

RUN = [sys.executable, "-m", "stream_detect", "run"]
TIMEOUT_S = 90.0


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


def summary_of(stderr: str) -> dict[str, Any]:
    lines = [line for line in stderr.splitlines() if line.startswith('{"summary"')]
    assert lines, stderr[-2000:]
    summary: dict[str, Any] = json.loads(lines[-1])["summary"]
    return summary


def events(count: int) -> list[dict[str, Any]]:
    return [{"id": f"e{i}", "x": float(i % 7), "y": float(i % 3)} for i in range(count)]


def feedback(count: int) -> list[dict[str, Any]]:
    return [{"id": f"e{i}", "label": int(i % 50 == 0)} for i in range(count)]


# -- the held labels -------------------------------------------------------------------------------


def held(event_id: str, label: int = 1, line: int = 1) -> Feedback:
    return Feedback(event_id, label, {"line": line, "offset": 0}, b"{}")


def test_held_labels_are_bounded_and_the_oldest_is_dropped_first() -> None:
    memory = HeldFeedback(capacity=2)
    assert memory.hold(held("a")) is None and memory.hold(held("b")) is None
    dropped = memory.hold(held("c"))
    assert dropped is not None and dropped.event_id == "a"
    assert [f.event_id for f in memory.take(["c", None, "a", "b"])] == ["c", "b"]
    assert len(memory) == 0


def test_every_label_for_an_id_is_held_and_given_in_the_order_read() -> None:
    # A second label replaced the first and sent it to the dead letters as unmatched (its
    # event had not come yet): now the event gets both, in order, as if it had come first.
    memory = HeldFeedback(capacity=5)
    assert memory.hold(held("a", label=0, line=1)) is None
    assert memory.hold(held("b", label=1, line=2)) is None
    assert memory.hold(held("a", label=1, line=3)) is None
    taken = memory.take(["a"])
    assert [(f.label, f.position["line"]) for f in taken] == [(0, 1), (1, 3)]
    assert [f.event_id for f in memory.drain()] == ["b"]


def test_the_oldest_label_held_is_dropped_first_whatever_its_id() -> None:
    memory = HeldFeedback(capacity=2)
    memory.hold(held("a", line=1))
    memory.hold(held("b", line=2))
    assert memory.hold(held("a", line=3)).position["line"] == 1  # type: ignore[union-attr]
    assert memory.hold(held("c", line=4)).position["line"] == 2  # type: ignore[union-attr]
    assert [f.position["line"] for f in memory.take(["a", "b", "c"])] == [3, 4]


def test_held_labels_survive_their_json_form() -> None:
    memory = HeldFeedback(capacity=5)
    memory.hold(held("a", line=3))
    memory.hold(held("b", label=0, line=4))
    again = HeldFeedback(capacity=5)
    again.restore(json.loads(json.dumps(memory.to_list())))
    assert again.to_list() == memory.to_list()


def test_nothing_is_held_without_room() -> None:
    memory = HeldFeedback(capacity=0)
    label = held("a")
    assert memory.hold(label) is label and len(memory) == 0


# -- a labels file read ahead of the events --------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 7, 1024, 4096])
def test_the_labels_matched_do_not_depend_on_the_batch_size(
    batch_size: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, labels = tmp_path / "events.jsonl", tmp_path / "fb.jsonl"
    source.write_bytes(jsonl(events(300)))
    labels.write_bytes(jsonl(feedback(300)))
    dead = tmp_path / "dead.jsonl"
    args = ["run", "--source", f"file:{source}", "--sink", f"file:{tmp_path / 'out.jsonl'}"]
    args += ["--labels", f"file:{labels}", "--id-field", "id", "--dead-letter", f"file:{dead}"]
    assert main([*args, "--batch-size", str(batch_size), "--retune-seconds", "0"]) == 0
    summary = summary_of(capsys.readouterr().err)
    assert (summary["feedback_labels"], summary["unmatched_feedback"]) == (300, 0)
    assert summary["validation_positive"] == 6 and summary["validation_negative"] == 294
    assert dead.read_bytes() == b""


def test_a_label_whose_event_never_comes_is_a_dead_letter_at_the_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, labels = tmp_path / "events.jsonl", tmp_path / "fb.jsonl"
    source.write_bytes(jsonl(events(100)))
    labels.write_bytes(jsonl([{"id": "nowhere", "label": 1}, *feedback(100)]))
    dead = tmp_path / "dead.jsonl"
    args = ["run", "--source", f"file:{source}", "--sink", f"file:{tmp_path / 'out.jsonl'}"]
    args += ["--labels", f"file:{labels}", "--id-field", "id", "--dead-letter", f"file:{dead}"]
    assert main([*args, "--batch-size", "1"]) == 0
    summary = summary_of(capsys.readouterr().err)
    assert (summary["feedback_labels"], summary["unmatched_feedback"]) == (100, 1)
    (letter,) = [json.loads(line) for line in dead.read_bytes().splitlines()]
    assert letter["position"]["line"] == 1 and "nowhere" in letter["reason"]


def test_a_held_label_whose_event_is_forgotten_on_arrival_is_feedback_not_a_bad_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Counted in unmatched_feedback alone: events + bad_records still add up to the records."""
    source, labels = tmp_path / "events.jsonl", tmp_path / "fb.jsonl"
    source.write_bytes(jsonl(events(20)))
    # Held after the first batch (e0..e9); e15 arrives in the second, which remembers
    # only its last two ids by the time held labels are applied.
    labels.write_bytes(jsonl([{"id": "e15", "label": 1}]))
    dead = tmp_path / "dead.jsonl"
    args = ["run", "--source", f"file:{source}", "--sink", f"file:{tmp_path / 'out.jsonl'}"]
    args += ["--labels", f"file:{labels}", "--id-field", "id", "--dead-letter", f"file:{dead}"]
    assert main([*args, "--batch-size", "10", "--id-memory", "2"]) == 0
    summary = summary_of(capsys.readouterr().err)
    assert (summary["events"], summary["unmatched_feedback"]) == (20, 1)
    assert summary["bad_records"] == 0 and summary["bad_reason"] is None
    (letter,) = [json.loads(line) for line in dead.read_bytes().splitlines()]
    assert "e15" in letter["reason"]


def test_a_labels_file_written_after_the_start_is_read(tmp_path: Path) -> None:
    labels = tmp_path / "feedback" / "labels.jsonl"
    command = [*RUN, "--labels", f"file:{labels}", "--id-field", "id", "--emit", "all"]
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        stream = events(400)
        proc.stdin.write(jsonl(stream[:200]))
        proc.stdin.flush()
        for _ in range(200):  # the run has started and scored these: the file is still missing
            assert proc.stdout.readline()
        assert not labels.exists()
        labels.parent.mkdir()
        written = tmp_path / "feedback" / ".labels.jsonl.tmp"
        written.write_bytes(jsonl(feedback(400)))
        os.replace(written, labels)
        proc.stdin.write(jsonl(stream[200:]))
        proc.stdin.close()
        proc.stdout.read()
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=TIMEOUT_S) == 0, stderr[-2000:]
    summary = summary_of(stderr)
    assert (summary["feedback_labels"], summary["unmatched_feedback"]) == (400, 0)


def test_an_awaited_file_resumes_at_a_saved_position_once_it_appears(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    source = AwaitedFileSource(path)
    source.seek({"line": 2, "offset": 6})
    assert source.resume_token() == {"line": 2, "offset": 6}
    assert len(source.read_batch(10, 0.0, 0.0)) == 0 and not source.exhausted
    path.write_bytes(b'"one"\n"two"\n')
    batch = source.read_batch(10, 0.0, 0.0)
    assert batch.payloads == [b'"two"'] and batch.positions == [{"line": 2, "offset": 6}]
    source.close()


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc/self/statm")
def test_remembering_no_id_holds_no_memory() -> None:
    # The id memory wrote zeros into all of its id_memory x d floats at start: one event of
    # 20,000 fields, without any --id-field, made a run hold 1.6 GB.
    before = _resident_bytes()
    recent = RecentEvents(capacity=10_000, d=5_000)  # 400 MB if every page were written
    recent.add([None, None], None, np.ones((2, 5_000)))
    assert _resident_bytes() - before < 100 * 2**20
    recent.add(["a"], None, np.full((1, 5_000), 2.0))
    assert recent.get("a")[1].tolist() == [2.0] * 5_000


# -- a second label for an event ----------------------------------------------------------------


def run_with_labels(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    stream: list[dict[str, Any]],
    labels: list[dict[str, Any]],
    *flags: str,
) -> dict[str, Any]:
    """Run ``stream`` with the feedback ``labels`` (appended to the labels file); the summary."""
    source, labels_file = tmp_path / "events.jsonl", tmp_path / "fb.jsonl"
    source.write_bytes(jsonl(stream))
    with labels_file.open("ab") as appended:
        appended.write(jsonl(labels))
    args = ["run", "--source", f"file:{source}", "--sink", f"file:{tmp_path / 'out.jsonl'}"]
    args += ["--labels", f"file:{labels_file}", "--id-field", "id", *flags]
    capsys.readouterr()
    assert main(args) == 0
    return summary_of(capsys.readouterr().err)


@pytest.mark.parametrize("batch_size", [1, 4096])
def test_a_second_label_corrects_the_first_and_a_repeat_changes_nothing(
    batch_size: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A second label for a remembered event added a second row to the validation buffer:
    # 1 then 0 for e0 gave one positive and one negative row of the same event. With batches
    # of 1 the labels of e0 join it (read after it) and those of e5 are held until it comes;
    # with 4096 every label is read after its event: the counts are the same.
    labels = [
        {"id": "e0", "label": 1},
        {"id": "e0", "label": 0},
        {"id": "e5", "label": 1},
        {"id": "e5", "label": 1},
    ]
    summary = run_with_labels(tmp_path, capsys, events(20), labels, "--batch-size", str(batch_size))
    assert (summary["validation_positive"], summary["validation_negative"]) == (1, 1)
    assert summary["feedback_labels"] == 4 and summary["unmatched_feedback"] == 0
    assert (summary["corrected_feedback"], summary["repeated_feedback"]) == (1, 1)


def test_feedback_corrects_an_inline_label_and_repeats_it_without_a_second_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = events(20)
    stream[3]["label"], stream[4]["label"] = 1, 0
    labels = [{"id": "e3", "label": 0}, {"id": "e4", "label": 0}]
    summary = run_with_labels(tmp_path, capsys, stream, labels)
    assert (summary["validation_positive"], summary["validation_negative"]) == (0, 2)
    assert (summary["corrected_feedback"], summary["repeated_feedback"]) == (1, 1)


def test_a_label_delivered_again_after_a_restart_counts_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Kafka delivers at least once: a label applied before the checkpoint may come again
    # after the restart. The checkpoint keeps which event each validation row is, so the
    # repeat changes nothing and a different label still corrects the first.
    checkpoint = ["--checkpoint", str(tmp_path / "ck.json")]
    stream = events(20)
    first = run_with_labels(tmp_path, capsys, stream, [{"id": "e1", "label": 1}], *checkpoint)
    assert (first["validation_positive"], first["feedback_labels"]) == (1, 1)
    again = run_with_labels(tmp_path, capsys, stream, [{"id": "e1", "label": 1}], *checkpoint)
    assert again["resumed_from"] is not None and again["feedback_labels"] == 1
    assert (again["validation_positive"], again["validation_negative"]) == (1, 0)
    assert (again["repeated_feedback"], again["corrected_feedback"]) == (1, 0)
    other = run_with_labels(tmp_path, capsys, stream, [{"id": "e1", "label": 0}], *checkpoint)
    assert (other["validation_positive"], other["validation_negative"]) == (0, 1)
    assert (other["repeated_feedback"], other["corrected_feedback"]) == (0, 1)


# -- held labels and the labels position across restarts -------------------------------------------


def _with_held(checkpoint: Path, ids: list[str]) -> None:
    """Put labels held for events not seen yet into a checkpoint, as a run stopped early does."""
    document = json.loads(checkpoint.read_text())
    document["held_feedback"] = [
        {"id": i, "label": 1, "position": {"line": n + 1, "offset": 0}, "payload": "{}"}
        for n, i in enumerate(ids)
    ]
    checkpoint.write_text(json.dumps(document))


@pytest.mark.parametrize(
    "flags",
    [["--id-memory", "1"], []],
    ids=["less room for held labels", "no labels read"],
)
def test_held_labels_a_restart_cannot_keep_are_dead_letters(
    flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # They were dropped without a word: the held labels beyond a smaller --id-memory, and
    # all of them when the restart read no labels.
    source, labels = tmp_path / "events.jsonl", tmp_path / "fb.jsonl"
    source.write_bytes(jsonl(events(60)))
    labels.write_bytes(jsonl(feedback(60)))
    checkpoint, dead = tmp_path / "ck.json", tmp_path / "dead.jsonl"
    args = ["run", "--source", f"file:{source}", "--sink", f"file:{tmp_path / 'out.jsonl'}"]
    args += ["--checkpoint", str(checkpoint), "--id-field", "id", "--dead-letter", f"file:{dead}"]
    assert main([*args, "--labels", f"file:{labels}"]) == 0
    _with_held(checkpoint, ["later1", "later2", "later3"])
    capsys.readouterr()
    restart = args if not flags else [*args, "--labels", f"file:{labels}", *flags]
    assert main(restart) == 0
    summary = summary_of(capsys.readouterr().err)
    assert summary["unmatched_feedback"] == 3
    letters = [json.loads(line) for line in dead.read_bytes().splitlines()]
    assert sorted(letter["position"]["line"] for letter in letters) == [1, 2, 3]


def test_a_restart_without_labels_keeps_their_position_so_none_is_joined_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A restart without --labels wrote no labels position, so the next one with --labels read
    # the labels file from its start and joined every label a second time.
    source, labels = tmp_path / "events.jsonl", tmp_path / "fb.jsonl"
    source.write_bytes(jsonl(events(100)))
    labels.write_bytes(jsonl(feedback(100)))
    checkpoint = tmp_path / "ck.json"
    args = ["run", "--source", f"file:{source}", "--sink", f"file:{tmp_path / 'out.jsonl'}"]
    args += ["--checkpoint", str(checkpoint), "--id-field", "id", "--no-summary"]
    assert main([*args, "--labels", f"file:{labels}"]) == 0
    with source.open("ab") as grown:
        grown.write(jsonl(events(150)[100:]))
    assert main(args) == 0
    with source.open("ab") as grown:
        grown.write(jsonl(events(200)[150:]))
    assert main([*args, "--labels", f"file:{labels}"]) == 0
    validation = json.loads(checkpoint.read_text())["detector"]["validation"]
    assert (sum(validation["labels"]), len(validation["labels"])) == (2, 100)
