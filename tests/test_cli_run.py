"""``stream-detect run`` as a real process behind real pipes.

Every test here starts ``python -m stream_detect run`` and talks to it the way a
producer and a consumer would: through pipes and files, with signals. Waits are
bounded (nothing can hang the suite) and generous (CI machines are noisy);
every process started is killed at teardown if it is still running.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from reference import reference_run
from streams import assert_same_state, column, labelled_stream, model_state

from stream_detect.assembly import run_stream
from stream_detect.cli import build_parser, main
from stream_detect.confusion import confusion_counts
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.state import load_checkpoint
from stream_detect.testing import ListSink, ListSource
from stream_detect.threshold import best_log_threshold

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.toml"))
RUN = [sys.executable, "-m", "stream_detect", "run"]
#: Longest any one process may take; far above what they need, so only a hang trips it.
TIMEOUT_S = 90.0
#: How late a result may come after its line was written: --max-latency-ms plus slack
#: for a loaded machine (scheduling, pipe wake-ups), still far below "waits for EOF".
LATENCY_SLACK_S = 0.6
#: Settings that keep log epsilon where it was put.
FIXED = ["--retune-every", "0", "--retune-labels", "0", "--retune-seconds", "0"]

Array = NDArray[np.float64]


# -- plumbing -------------------------------------------------------------------------------------


def jsonl(events: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(event).encode() + b"\n" for event in events)


def parse_lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def summary_of(stderr: bytes) -> dict[str, Any]:
    """The summary a run prints as its last stderr line."""
    lines = [line for line in stderr.splitlines() if line.startswith(b'{"summary"')]
    assert lines, f"no summary on stderr: {stderr[-2000:]!r}"
    summary: dict[str, Any] = json.loads(lines[-1])["summary"]
    return summary


def cli(
    *args: str, input: bytes = b"", cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``stream-detect run ARGS`` to its end with ``input`` on a stdin pipe."""
    return subprocess.run(
        [*RUN, *args], input=input, capture_output=True, cwd=cwd or REPO, timeout=TIMEOUT_S
    )


def ok(done: subprocess.CompletedProcess[bytes]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Results and summary of a run that must have succeeded."""
    assert done.returncode == 0, done.stderr[-3000:]
    assert b"Traceback" not in done.stderr
    return parse_lines(done.stdout), summary_of(done.stderr)


class LineReader:
    """Lines from a pipe as they come, with a deadline on every wait."""

    def __init__(self, stream: Any) -> None:
        self.fd = stream.fileno()
        self.buffer = b""
        self.eof = False

    def line(self, timeout_s: float) -> bytes | None:
        """The next line, or None if none was complete within ``timeout_s`` (or at EOF)."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 1 << 16)
                self.eof = not chunk
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def results(self, count: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """``count`` JSON lines, failing the test if they do not all come in time."""
        deadline = time.monotonic() + timeout_s
        out = []
        while len(out) < count:
            line = self.line(max(0.0, deadline - time.monotonic()))
            assert line is not None, f"only {len(out)} of {count} results came"
            out.append(json.loads(line))
        return out


class Processes:
    """Processes a test started; whatever still runs at teardown is killed."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        kwargs.setdefault("cwd", REPO)
        proc = subprocess.Popen(command, **kwargs)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=TIMEOUT_S)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def processes() -> Iterator[Processes]:
    started = Processes()
    try:
        yield started
    finally:
        started.stop_all()


def finish(proc: subprocess.Popen[bytes], stderr_file: Path) -> dict[str, Any]:
    """Wait for a process to end by itself; return its summary (exit status must be 0)."""
    status = proc.wait(timeout=TIMEOUT_S)
    stderr = stderr_file.read_bytes()
    assert status == 0, stderr[-3000:]
    assert b"Traceback" not in stderr
    return summary_of(stderr)


def uninterrupted_state(
    events: list[dict[str, Any]], detector: DetectorSettings, path: Path
) -> Any:
    """Model state after one straight in-process run over ``events``."""
    run_stream(
        RunSettings(checkpoint=str(path)),
        detector,
        source=ListSource(events),
        sink=ListSink(),
        dead_letter=ListSink(),
    )
    return model_state(path)


# -- streams --------------------------------------------------------------------------------------


def noisy_events(count: int, seed: int) -> tuple[list[dict[str, Any]], Array, NDArray[np.int8]]:
    """Three features of very different scales, spikes, a level shift and inline labels."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(count, 3)) * [1.0, 100.0, 0.01] + [5.0, -300.0, 0.5]
    spikes = rng.choice(np.arange(100, count), size=count // 60, replace=False)
    X[spikes, 0] += 12.0
    X[3 * count // 4 :, 1] += 1500.0
    labels = np.full(count, -1, dtype=np.int8)
    labelled = rng.choice(np.arange(count), size=count // 25, replace=False)
    labels[labelled] = 0
    labels[spikes[: spikes.size // 3]] = 1
    events = []
    for i, (a, b, c) in enumerate(X.tolist()):
        event: dict[str, Any] = {"id": f"e{i}", "a": a, "b": b, "c": c}
        if labels[i] >= 0:
            event["label"] = int(labels[i])
        events.append(event)
    return events, X, labels


# -- 1. exact scores, whatever the batch size -----------------------------------------------------


EXACT_EVENTS = 800


@pytest.fixture(scope="module")
def exact_runs() -> dict[int, list[dict[str, Any]]]:
    events, _, _ = noisy_events(EXACT_EVENTS, seed=3)
    runs = {}
    for batch_size in (1, 7, 4096):
        flags = f"--emit all --log-epsilon -14 --batch-size {batch_size}".split()
        done = cli(*flags, *FIXED, input=jsonl(events))
        results, summary = ok(done)
        assert summary["events"] == len(events) == len(results)
        runs[batch_size] = results
    return runs


@pytest.mark.parametrize("batch_size", [1, 7, 4096])
def test_cli_scores_equal_the_per_event_reference(
    exact_runs: dict[int, list[dict[str, Any]]], batch_size: int
) -> None:
    _, X, labels = noisy_events(EXACT_EVENTS, seed=3)
    settings = DetectorSettings(log_epsilon=-14.0, retune_every=0, retune_labels=0)
    expected = reference_run(settings, X, labels)
    assert 15 < expected.alert.sum() < EXACT_EVENTS // 2
    results = exact_runs[batch_size]
    log_p = column(results, "log_p")
    assert np.array_equal(np.isnan(log_p), np.isnan(expected.log_p))
    finite = ~np.isnan(expected.log_p)
    relative = np.abs(log_p[finite] - expected.log_p[finite]) / np.abs(expected.log_p[finite])
    assert relative.max() < 1e-9
    assert [r["alert"] for r in results] == expected.alert.tolist()
    assert [r["warmup"] for r in results] == expected.warmup.tolist()
    assert [r["n"] for r in results] == expected.n.tolist()
    assert [r["position"]["line"] for r in results] == list(range(1, len(X) + 1))


def test_cli_outputs_of_all_batch_sizes_are_the_same(
    exact_runs: dict[int, list[dict[str, Any]]],
) -> None:
    first, *others = exact_runs.values()
    for other in others:
        for mine, theirs in zip(first, other, strict=True):
            assert mine.keys() == theirs.keys()
            for name, value in mine.items():
                if isinstance(value, float):
                    assert value == pytest.approx(theirs[name], rel=1e-9, abs=1e-12), name
                elif name != "contributions":
                    assert value == theirs[name], name
                else:
                    assert list(value) == list(theirs[name])


# -- 2. latency -----------------------------------------------------------------------------------

PRODUCER = r"""
import json, sys, time
count, interval = int(sys.argv[1]), float(sys.argv[2])
def send(i):
    sys.stdout.write(json.dumps({"x": float(i % 3), "seq": i, "sent": time.time()}) + "\n")
    sys.stdout.flush()
send(0)
sys.stdin.readline()  # the test saw the first result: the detector is up
for i in range(1, count + 1):
    time.sleep(interval)
    send(i)
sys.stdin.read()  # keep the pipe open until the test is done with it
"""


def test_a_slow_producer_is_not_held_back(processes: Processes, tmp_path: Path) -> None:
    count, interval = 5, 0.5
    producer = processes.start(
        [sys.executable, "-c", PRODUCER, str(count), str(interval)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as errors:
        detector = processes.start(
            [*RUN, "--emit", "all", "--features", "x"],
            stdin=producer.stdout,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    assert producer.stdout is not None and producer.stdin is not None
    producer.stdout.close()  # the detector holds the read end now
    reader = LineReader(detector.stdout)
    (first,) = reader.results(1, timeout_s=TIMEOUT_S)
    assert first["seq"] == 0
    producer.stdin.write(b"go\n")
    producer.stdin.flush()
    max_latency_s = RunSettings().max_latency_ms / 1000.0
    for seq in range(1, count + 1):
        line = reader.line(timeout_s=interval + 10.0)
        arrived = time.time()
        assert line is not None, f"no result for line {seq}"
        result = json.loads(line)
        assert result["seq"] == seq
        assert arrived - result["sent"] <= max_latency_s + LATENCY_SLACK_S
        # Written while the input is still open: the detector is not waiting for EOF.
        assert detector.poll() is None
    # SIGTERM while waiting on an open, idle pipe: no EOF needed to stop cleanly.
    detector.send_signal(signal.SIGTERM)
    summary = finish(detector, stderr)
    assert summary["events"] == count + 1 and summary["stopped_by"] == "signal"


# -- 3. SIGTERM, SIGKILL and restarts from a checkpoint -------------------------------------------


def follow_command(source: Path, checkpoint: Path, *extra: str) -> list[str]:
    flags = ["--emit", "all", "--log-epsilon", "-14", "--retune-seconds", "0"]
    return [
        *RUN,
        "--source",
        f"file:{source}?follow=true",
        "--checkpoint",
        str(checkpoint),
        *flags,
        *extra,
    ]


def append(path: Path, events: list[dict[str, Any]]) -> None:
    with path.open("ab") as stream:
        stream.write(jsonl(events))


def test_sigterm_then_restart_learns_each_event_once(processes: Processes, tmp_path: Path) -> None:
    events, _, _ = noisy_events(500, seed=5)
    first_part, second_part = events[:300], events[300:]
    source, checkpoint = tmp_path / "events.jsonl", tmp_path / "state.json"
    append(source, first_part)
    command = follow_command(source, checkpoint)

    outputs, summaries = [], []
    for part in (first_part, second_part):
        stderr = tmp_path / f"stderr-{len(outputs)}"
        with stderr.open("wb") as errors:
            proc = processes.start(command, stdout=subprocess.PIPE, stderr=errors)
        outputs.append(LineReader(proc.stdout).results(len(part)))
        assert proc.poll() is None, "a followed file does not end"
        proc.send_signal(signal.SIGTERM)
        summaries.append(finish(proc, stderr))
        assert checkpoint.exists()
        if part is first_part:
            append(source, second_part)

    before, after = summaries
    assert before["stopped_by"] == after["stopped_by"] == "signal"
    assert before["events"] == 300 and after["events"] == 200
    assert before["resumed_from"] is None and after["resumed_from"]["line"] == 301
    lines = [r["position"]["line"] for r in outputs[0] + outputs[1]]
    assert lines == list(range(1, 501)), "only the new events come out, positions continue"
    straight = uninterrupted_state(
        events, DetectorSettings(log_epsilon=-14.0, retune_seconds=0.0), tmp_path / "whole.json"
    )
    assert_same_state(model_state(checkpoint), straight)


def test_kill_9_then_restart_loses_nothing(processes: Processes, tmp_path: Path) -> None:
    events, _, _ = noisy_events(250, seed=6)
    first_part, second_part = events[:150], events[150:]
    source, checkpoint = tmp_path / "events.jsonl", tmp_path / "state.json"
    append(source, first_part)
    command = follow_command(source, checkpoint, "--batch-size", "7", "--checkpoint-every", "20")

    proc = processes.start(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    killed = LineReader(proc.stdout).results(len(first_part))
    deadline = time.monotonic() + 30
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert checkpoint.exists(), "checkpoint-every 20 wrote nothing"
    proc.kill()
    assert proc.wait(timeout=TIMEOUT_S) == -signal.SIGKILL
    saved = load_checkpoint(checkpoint)
    # Batches of 7, a checkpoint every 20 events: the last few results were not covered.
    assert saved is not None and 1 < saved.source["line"] <= len(first_part)

    append(source, second_part)
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as errors:
        proc = processes.start(command, stdout=subprocess.PIPE, stderr=errors)
    reader = LineReader(proc.stdout)
    resumed: list[dict[str, Any]] = []
    while not resumed or resumed[-1]["position"]["line"] < len(events):
        resumed += reader.results(1)
    proc.send_signal(signal.SIGINT)
    summary = finish(proc, stderr)

    assert summary["resumed_from"] == saved.source
    resumed_lines = [r["position"]["line"] for r in resumed]
    # At-least-once: what came after the checkpoint comes again, nothing is missing.
    assert resumed_lines == list(range(saved.source["line"], len(events) + 1))
    killed_lines = [r["position"]["line"] for r in killed]
    assert sorted(set(killed_lines + resumed_lines)) == list(range(1, len(events) + 1))
    straight = uninterrupted_state(
        events, DetectorSettings(log_epsilon=-14.0, retune_seconds=0.0), tmp_path / "whole.json"
    )
    assert_same_state(model_state(checkpoint), straight)


# -- 4. bad input ---------------------------------------------------------------------------------

BAD_JSON: list[tuple[bytes, str]] = [
    (b'{"x": 1, "y":', "invalid JSON"),
    (b"[1.0, 2.0]", "array"),
    (b'{"x": 1}', "missing feature 'y'"),
    (b'{"x": "high", "y": 1}', "not a number"),
    (b'{"x": null, "y": 1}', "null"),
    (b'{"x": NaN, "y": 1}', "invalid JSON"),
    (b'{"x": Infinity, "y": 1}', "invalid JSON"),
    (b'{"x": 1e999, "y": 1}', "infinity"),
    (b'{"x": 1, "y": \xff\xfe}', "UTF-8"),
    (b'{"x": 1, "y": 2, "pad": "' + b"z" * 200_000 + b'"}', "exceeds"),
    (b'{"x": -3.0, "y": 1}', "domain"),
]


def test_every_bad_json_line_lands_in_the_dead_letters(tmp_path: Path) -> None:
    config = tmp_path / "log-x.toml"
    # A negative x is outside log's domain: a dead letter too, not a crash and not a NaN.
    config.write_text('[transforms]\nx = "log"\n')
    good = [json.dumps({"x": 1.0 + i % 5, "y": float(i % 3)}).encode() for i in range(80)]
    lines = [*good[:40], *(raw for raw, _ in BAD_JSON), b"", b"   ", *good[40:]]
    dead = tmp_path / "dead.jsonl"
    flags = ["--config", str(config), "--dead-letter", f"file:{dead}", "--emit", "all"]
    results, summary = ok(cli(*flags, "--max-line-bytes", "4096", input=b"\n".join(lines) + b"\n"))
    letters = parse_lines(dead.read_bytes())
    assert [entry["position"]["line"] for entry in letters] == list(range(41, 41 + len(BAD_JSON)))
    for entry, (_, words) in zip(letters, BAD_JSON, strict=True):
        assert words in entry["reason"], entry
        assert len(entry["raw"]) < 5000, "an enormous line is cut in the dead letter"
    assert summary["events"] == len(results) == len(good)
    assert summary["bad_records"] == len(BAD_JSON) and summary["blank_lines"] == 2
    assert summary["events"] + summary["bad_records"] + summary["blank_lines"] == len(lines)
    assert results[-1]["n"] == len(good) - 1, "the good events after the bad ones were learned"


def test_every_bad_csv_row_lands_in_the_dead_letters(tmp_path: Path) -> None:
    good = [f"{i % 5},{i % 3},," for i in range(50)]
    bad = [
        ("nan,1,,", "not a finite number"),
        ("1,-inf,,", "not a finite number"),
        ("1,2", "columns"),
        ("1,2,,,5", "columns"),
        ("abc,1,,", "not a number"),
        ("1,2,7,", "label"),
    ]
    rows = ["x,y,label,note", *good[:25], *(row for row, _ in bad), *good[25:]]
    source, dead = tmp_path / "events.csv", tmp_path / "dead.jsonl"
    source.write_bytes("\n".join(rows).encode() + b"\n1,\xff,,\n")
    results, summary = ok(
        cli("--source", f"file:{source}", "--dead-letter", f"file:{dead}", "--emit", "all")
    )
    letters = parse_lines(dead.read_bytes())
    expected_lines = [*range(27, 27 + len(bad)), len(rows) + 1]
    assert [entry["position"]["line"] for entry in letters] == expected_lines
    for entry, (_, words) in zip(letters, [*bad, ("", "UTF-8")], strict=True):
        assert words in entry["reason"], entry
    assert summary["events"] == len(results) == len(good)
    # Every line is accounted for: the header, the events, the bad rows.
    assert 1 + summary["events"] + summary["bad_records"] + summary["blank_lines"] == len(rows) + 1


# -- 5. re-tuning and labels ----------------------------------------------------------------------


LABEL_SETTINGS = ["--min-positive-labels", "2", "--min-negative-labels", "10"]


def test_retuning_moves_epsilon_to_the_best_f1(tmp_path: Path) -> None:
    X, labels = labelled_stream(1190, seed=4)
    events = []
    for i, (x, y) in enumerate(X.tolist()):
        event: dict[str, Any] = {"x": x, "y": y}
        if labels[i] >= 0:
            event["label"] = int(labels[i])
        events.append(event)
    flags = "--emit all --log-epsilon -40 --flagged exclude --retune-labels 15 --batch-size 64"
    retune = "--retune-every 0 --retune-seconds 0"
    results, summary = ok(
        cli(*flags.split(), *retune.split(), *LABEL_SETTINGS, input=jsonl(events))
    )
    epsilons = column(results, "log_epsilon")
    assert epsilons[0] == -40.0 and epsilons[-1] != -40.0
    assert summary["epsilon_source"] == "f1" and summary["f1"] is not None
    # Labelled events are held out and alerts excluded: the final model is the Gaussian
    # of the unlabelled events that did not alert.
    assert summary["relearned_events"] == 0
    alerts = np.array([r["alert"] for r in results])
    learned = X[(labels < 0) & ~alerts]
    mean, var = learned.mean(axis=0), learned.var(axis=0)
    labelled = labels >= 0
    scores = np.sum(-0.5 * np.log(2 * np.pi * var) - (X[labelled] - mean) ** 2 / (2 * var), axis=1)
    y = labels[labelled]
    best = best_log_threshold(y, scores)
    assert summary["log_epsilon"] == pytest.approx(best.log_epsilon, rel=1e-9)
    assert summary["f1"] == pytest.approx(best.f1)
    assert confusion_counts(y, scores < summary["log_epsilon"]).f1 > (
        confusion_counts(y, scores < -40.0).f1
    )


def feedback_read(checkpoint: Path) -> int:
    """Line number of the next feedback label the run will read, as its checkpoint says."""
    saved = load_checkpoint(checkpoint)
    if saved is None or saved.labels is None:
        return 1
    return int(saved.labels["line"])


def test_feedback_labels_join_earlier_events(processes: Processes, tmp_path: Path) -> None:
    X, labels = labelled_stream(600, seed=12)
    events = [{"id": f"ev{i}", "x": x, "y": y} for i, (x, y) in enumerate(X.tolist())]
    feedback_file, dead = tmp_path / "labels.jsonl", tmp_path / "dead.jsonl"
    feedback_file.touch()
    checkpoint = tmp_path / "state.json"
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as errors:
        command = [*RUN, "--labels", f"file:{feedback_file}?follow=true"]
        command += ["--dead-letter", f"file:{dead}", "--id-field", "id", "--emit", "all"]
        command += ["--log-epsilon", "-40", "--retune-labels", "10", *LABEL_SETTINGS]
        command += ["--retune-every", "0", "--retune-seconds", "0"]
        command += ["--checkpoint", str(checkpoint), "--checkpoint-seconds", "0.05"]
        proc = processes.start(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors
        )
    assert proc.stdin is not None
    reader = LineReader(proc.stdout)
    proc.stdin.write(jsonl(events[:400]))
    proc.stdin.flush()
    before = reader.results(400)
    known = [i for i in range(400) if labels[i] >= 0]
    append(
        feedback_file,
        [{"id": f"ev{i}", "label": int(labels[i])} for i in known]
        + [{"id": "ev-unknown", "label": 1}],
    )
    # A label for an id not seen yet is held for its event, so the unknown id leaves
    # the dead letters only at the end: the checkpoint's labels position says when all
    # feedback was read.
    deadline = time.monotonic() + 30
    while feedback_read(checkpoint) <= len(known) + 1:
        assert time.monotonic() < deadline, "the feedback labels were not read"
        time.sleep(0.05)
    proc.stdin.write(jsonl(events[400:]))
    proc.stdin.close()
    after = reader.results(200)
    summary = finish(proc, stderr)

    assert summary["feedback_labels"] == len(known) and summary["unmatched_feedback"] == 1
    assert summary["validation_positive"] == int(np.count_nonzero(labels[:400] == 1))
    assert summary["epsilon_source"] == "f1"
    (letter,) = parse_lines(dead.read_bytes())
    assert letter["position"]["line"] == len(known) + 1 and "ev-unknown" in letter["reason"]
    assert {r["log_epsilon"] for r in before} == {-40.0}
    assert {r["log_epsilon"] for r in after} == {summary["log_epsilon"]} != {-40.0}


def test_feedback_labels_from_a_file_are_read(tmp_path: Path) -> None:
    events = [{"id": f"e{i}", "x": float(i % 7), "y": float(i % 3)} for i in range(300)]
    feedback_file = tmp_path / "labels.jsonl"
    feedback_file.write_bytes(
        jsonl([{"id": f"e{i}", "label": int(i % 50 == 0)} for i in range(0, 300, 5)])
    )
    source = tmp_path / "events.jsonl"
    source.write_bytes(jsonl(events))
    _, summary = ok(
        cli("--source", f"file:{source}", "--labels", f"file:{feedback_file}", "--id-field", "id")
    )
    assert summary["feedback_labels"] == 60


# -- 6. keyed models, 7. drift, 8. river ----------------------------------------------------------


def test_per_key_models_do_not_mix() -> None:
    rng = np.random.default_rng(5)
    events = []
    for _ in range(300):
        events.append({"host": "quiet", "cpu": 0.5 + 0.01 * rng.normal()})
        events.append({"host": "noisy", "cpu": 0.5 + 1.0 * rng.normal()})
    # One sigma for the noisy host, a hundred for the quiet one.
    events += [{"host": "noisy", "cpu": 1.5}, {"host": "quiet", "cpu": 1.5}]
    flags = ["--key-field", "host", "--emit", "all", "--log-epsilon", "-12"]
    results, summary = ok(cli(*flags, *FIXED, input=jsonl(events)))
    for host in ("quiet", "noisy"):
        mine = [r for r in results if r["host"] == host]
        assert [r["n"] for r in mine] == list(range(len(mine))), host
        assert {r["key"] for r in mine} == {host}
    noisy, quiet = results[-2:]
    assert quiet["alert"] and not noisy["alert"]
    assert summary["alerts"] == 1 and summary["models"] == 2


def test_the_alert_burst_after_a_step_ends_by_itself() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=2000)
    x[1000:] += 8.0
    results, summary = ok(
        cli(
            *("--emit", "all", "--log-epsilon", "-12", "--flagged", "exclude"),
            *("--accept-after", "25"),
            input=jsonl([{"x": v} for v in x.tolist()]),
        )
    )
    alerts = np.flatnonzero([r["alert"] for r in results])
    assert alerts.size >= 10 and alerts.min() >= 1000
    assert alerts.max() < 1000 + 300, "the burst goes on"
    assert summary["relearned_events"] > 0


def run_in_process(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, events: list[dict[str, Any]], *args: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``main(["run", ...])`` in this process over ``events``: results and summary.

    For behaviour that does not need a separate process, this saves the start-up of one.
    """
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(jsonl(events))
    status = main(["run", "--source", f"file:{source}", "--sink", f"file:{out}", *args])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return parse_lines(out.read_bytes()), summary_of(captured.err.encode())


def test_a_field_named_blank_is_no_feature_so_the_run_resumes_from_its_checkpoint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    events = [{"": 1, "x": 1}, {"": 2, "x": 3}]
    checkpoint = str(tmp_path / "state.json")
    _, first = run_in_process(capsys, tmp_path, events, "--checkpoint", checkpoint)
    assert first["features"] == ["x"]
    # The second run refused the checkpoint the first wrote (features ['', 'x']).
    _, second = run_in_process(capsys, tmp_path, events, "--checkpoint", checkpoint)
    assert second["resumed_from"]["line"] == 3 and second["features"] == ["x"]
    assert main(["run", "--source", "-", "--features", " ,x"]) == 2
    assert "no empty names" in capsys.readouterr().err


def test_log_epsilon_on_the_command_line_wins_over_the_checkpoint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    events = [{"x": float(v)} for v in np.random.default_rng(9).normal(size=400)]
    checkpoint = str(tmp_path / "state.json")
    common = ["--emit", "all", "--checkpoint", checkpoint, "--retune-seconds", "0"]
    before, _ = run_in_process(capsys, tmp_path, events[:200], *common, "--log-epsilon", "-40")
    assert {r["log_epsilon"] for r in before} == {-40.0}
    # The same file, grown: the restart resumes after line 200 with this run's threshold.
    output, second = run_in_process(capsys, tmp_path, events, *common, "--log-epsilon", "-3")
    # The sink file is appended to: the restart's results follow the first run's.
    after = output[len(before) :]
    assert second["resumed_from"]["line"] == 201
    assert [r["position"]["line"] for r in after] == list(range(201, 401))
    assert {r["log_epsilon"] for r in after} == {-3.0}
    assert (second["log_epsilon"], second["epsilon_source"]) == (-3.0, "initial")
    assert any(r["alert"] for r in after), "-3 flags what -40 did not"


def test_a_river_model_runs_in_the_same_pipeline(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("river")
    rng = np.random.default_rng(6)
    X = rng.normal(size=(500, 2))
    X[450] = [40.0, -40.0]
    events = [{"a": a, "b": b, "label": None} for a, b in X.tolist()]
    for i in range(300, 500, 10):
        events[i]["label"] = int(i == 450)
    flags = ["--model", "river:HalfSpaceTrees", "--emit", "all", "--retune-seconds", "0"]
    results, summary = run_in_process(capsys, tmp_path, events, *flags)
    assert summary["events"] == len(results) == 500
    for result in results:
        assert {"log_p", "log_epsilon", "alert", "warmup", "n", "key", "position"} <= result.keys()
    # A river score has no calibrated tail: with too few labels to tune ε (one anomaly),
    # no threshold is made up, so nothing alerts.
    assert results[-1]["log_epsilon"] is None and summary["epsilon_source"] == "unset"
    assert not any(r["alert"] for r in results)


# -- 9. every example config ----------------------------------------------------------------------


def config_events(count: int = 600) -> list[dict[str, Any]]:
    """Events with every field the example configs name, all inside their transforms' domains."""
    rng = np.random.default_rng(21)
    events = []
    for i in range(count):
        requests = float(rng.gamma(20.0, 5.0))
        events.append(
            {
                "event_id": f"ev{i}",
                "host": f"web-{i % 3}",
                "cpu": float(np.clip(0.004 * requests + 0.05 * rng.normal(), 0.0, 1.0)),
                "mem": float(rng.uniform(0.3, 0.9)),
                "load1": float(rng.gamma(2.0, 0.5)),
                "net_in_kbps": float(rng.lognormal(6.0, 1.0)),
                "requests_per_s": requests,
                "latency_ms": float(rng.lognormal(3.0, 0.5)),
                "bytes_out": float(rng.poisson(3.0)),
                "timestamp": f"2014-04-{1 + i // 288:02d} {i % 288 // 12:02d}:{i % 12 * 5:02d}:00",
                "value": requests,
            }
        )
    return events


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_example_config_runs(config: Path, tmp_path: Path) -> None:
    settings = tomllib.loads(config.read_text())
    if str(settings.get("model", "")).startswith("river:"):
        pytest.importorskip("river")
    events = config_events()
    source, out, dead = tmp_path / "events.jsonl", tmp_path / "out.jsonl", tmp_path / "dead.jsonl"
    source.write_bytes(jsonl(events))
    # Relative paths in a config are relative to the working directory: an empty one,
    # without the labels file or the checkpoint directory a config names.
    workdir = tmp_path / "empty"
    workdir.mkdir()
    files = ["--source", f"file:{source}", "--sink", f"file:{out}", "--dead-letter", f"file:{dead}"]
    flags = ["--emit", "all", "--retune-seconds", "0"]
    done = cli("--config", str(config), *files, *flags, cwd=workdir)
    _, summary = ok(done)
    results = parse_lines(out.read_bytes())
    assert dead.read_bytes() == b""
    # The flags won over the file (--emit all, where some configs say "alerts").
    assert summary["events"] == len(results) == len(events)
    for result in results:
        assert {"log_p", "log_epsilon", "alert", "warmup", "n", "position"} <= result.keys()
    key_field = settings.get("key_field")
    if key_field is not None:
        assert all(r["key"] == r[key_field] for r in results)
        assert summary["models"] == 3
    features = settings.get("features")
    if features is not None and settings.get("model") != "full":
        for result in results:
            if result["alert"] and result["contributions"]:
                assert set(result["contributions"]) <= set(features)
    checkpoint = settings.get("checkpoint")
    if checkpoint is not None:
        assert (workdir / checkpoint).exists()


def test_flags_override_the_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text('emit = "alerts"\nlog_epsilon = -1e9\nfeatures = ["x", "y"]\n')
    events = [{"x": float(i % 7), "y": float(i % 3), "z": 1.0} for i in range(100)]
    results, summary = run_in_process(
        capsys, tmp_path, events, "--config", str(config), "--emit", "all", "--log-epsilon", "-30"
    )
    assert len(results) == 100 and summary["log_epsilon"] == -30.0
    assert "z" in results[0]  # kept in the output, not modelled: features came from the file


# -- 10. errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--emit", "sometimes"], "emit"),
        (["--batch-size", "0"], "option --batch-size: got 0,"),
        (["--model", "gaussian"], "model"),
        (["--log-epsilon", "low"], "option --log-epsilon: got 'low'"),
        (["--flagged", "ignore"], "flagged"),
        (["--transform", "x=cube"], "option --transform: got 'cube'"),
        (["--source", "file:/no/such/events.jsonl"], "no such file"),
        (["--source", "kafka://broker:9092"], "source"),
        (["--source", "kafka://broker:9092/events?linger=5"], "did you mean 'linger_ms'"),
        (["--sink", "file:/no/such/dir/out.jsonl"], "sink"),
        # A labels file that does not exist yet is waited for; a directory is refused.
        (["--labels", "file:/", "--id-field", "id"], "directory"),
        (["--config", "/no/such/config.toml"], "config"),
        (["--model", "river:NoSuchDetector"], "model"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    assert main(["run", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("stream-detect run: error:") and words in line


def test_a_bad_config_key_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("batch_sise = 5\n")
    done = cli("--config", str(config))
    assert done.returncode == 2 and done.stdout == b""
    (line,) = done.stderr.decode().splitlines()
    assert "batch_sise" in line and "batch_size" in line and "Traceback" not in line


def test_a_missing_source_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = cli("--source", f"file:{tmp_path / 'absent.jsonl'}")
    assert done.returncode == 2
    (line,) = done.stderr.decode().splitlines()
    assert "absent.jsonl" in line and "Traceback" not in line


def test_a_label_field_missing_from_a_csv_header_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "events.csv"
    source.write_text("x,label\n1,0\n2,1\n3,0\n")
    assert main(["run", "--source", f"file:{source}", "--label-field", "is_bad"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line == (
        f"stream-detect run: error: {source}:1: label field 'is_bad' is not a column of the "
        "CSV header (columns: x, label)"
    )


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (b"x,x,label", "the CSV header names column 'x' twice"),
        (b"x,\xffy,label", "the CSV header is not valid UTF-8 (byte 2)"),
    ],
)
def test_a_csv_header_that_cannot_be_read_names_its_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, header: bytes, problem: str
) -> None:
    source = tmp_path / "events.csv"
    source.write_bytes(b"\n" + header + b"\n1,2,0\n")
    assert main(["run", "--source", f"file:{source}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    # The header is line 2: the blank line before it counts.
    assert captured.err.splitlines() == [f"stream-detect run: error: {source}:2: {problem}"]


def test_a_csv_file_with_lone_carriage_return_line_ends_is_refused_not_read_as_empty(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Split at \n only, the whole file is one line: its "header" ran on into every row,
    # and the run ended with no event and no word of why.
    source = tmp_path / "events.csv"
    source.write_bytes(b"x,y\r1,2\r3,4\r5,6\r")
    assert main(["run", "--source", f"file:{source}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"stream-detect run: error: {source}:1: the CSV header is not one line: a carriage "
        "return (\\r) at character 3 does not end a record: only \\n or \\r\\n ends one "
        "(tr '\\r' '\\n' converts a file with lone \\r line ends)"
    ]


def test_json_lines_read_as_csv_are_refused_at_the_header_not_row_by_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The first object became the header and every other line a dead letter saying only
    # "no numeric cell to take the features from".
    events = tmp_path / "events.jsonl"
    events.write_bytes(b'{"x": 1}\n{"x": 2}\n{"x": 3}\n')
    for options in (["--format", "csv"], []):
        source = events if options else events.rename(tmp_path / "events.csv")
        assert main(["run", "--source", f"file:{source}", *options]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.splitlines() == [
            f"stream-detect run: error: {source}:1: the CSV header looks like a JSON object "
            """('{"x": 1}'): the input looks like JSON lines, read as CSV by --format csv or """
            "a .csv name"
        ]


def test_a_csv_header_without_the_default_label_column_is_announced_not_silent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A mistyped or differently named label column would be learned as a feature.
    source = tmp_path / "events.csv"
    source.write_text("x,Label\n" + "".join(f"{i % 5},{int(i == 7)}\n" for i in range(20)))
    assert main(["run", "--source", f"file:{source}", "--no-summary"]) == 0
    (announcement,) = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert announcement == {
        "features": ["x", "Label"],
        "note": "the CSV header has no 'label' column: every row is unlabelled (--label-field "
        "NAME reads labels from column NAME; --label-field none says there are none)",
    }
    # Said to have none, or given its column, the stream has nothing to note.
    for options in (["--label-field", "none"], ["--label-field", "Label"]):
        assert main(["run", "--source", f"file:{source}", "--no-summary", *options]) == 0
        (announcement,) = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        assert "note" not in announcement


def test_a_missing_checkpoint_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "no" / "state.json"
    ok(cli("--checkpoint", str(path), input=b'{"x": 1.0}\n'))
    assert load_checkpoint(path) is not None


def test_a_checkpoint_directory_that_cannot_be_made_is_one_line_and_exit_2(
    tmp_path: Path,
) -> None:
    (tmp_path / "plain").write_text("a file")
    done = cli("--checkpoint", str(tmp_path / "plain" / "state.json"), input=b'{"x": 1.0}\n')
    assert b"Traceback" not in done.stderr
    assert done.returncode == 2
    (line,) = done.stderr.decode().splitlines()
    assert "checkpoint" in line


@pytest.mark.parametrize(
    ("state_dir", "expected"),
    [
        ("plain/state", "a directory that exists or can be made"),
        ("/proc/state", "a directory that exists or can be made"),
        ("/proc", "a directory this process can write to"),
        ("plain", "a directory (it exists and is not one)"),
    ],
)
def test_a_state_dir_that_cannot_be_made_or_written_is_one_line_and_exit_2(
    tmp_path: Path, state_dir: str, expected: str
) -> None:
    # Refused before the Kafka source is used: nothing listens on the broker's port.
    (tmp_path / "plain").write_text("a file")
    source = "kafka://127.0.0.1:1/events?until=end"
    done = cli("--source", source, "--state-dir", state_dir, cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.decode().splitlines()
    assert f"option --state-dir: got {state_dir!r}, expected {expected}" in line


def test_a_checkpoint_that_could_never_be_written_is_refused_before_any_result() -> None:
    # /proc exists, and root's permission bits would allow it, but no file can be made
    # there: the run stops at the start, not after its first results.
    done = cli("--checkpoint", "/proc/state.json", "--emit", "all", input=b'{"x": 1.0}\n' * 300)
    assert done.returncode == 2
    assert done.stdout == b""
    (line,) = done.stderr.decode().splitlines()
    assert "can write to" in line


def test_a_checkpoint_of_another_model_is_refused_at_restart(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    checkpoint = tmp_path / "state.json"
    events = [{"x": float(i % 7), "y": float(i % 3)} for i in range(100)]
    run_in_process(capsys, tmp_path, events, "--checkpoint", str(checkpoint))
    saved = checkpoint.read_bytes()
    source = tmp_path / "in.jsonl"
    restart = ["run", "--source", f"file:{source}", "--checkpoint", str(checkpoint)]
    assert main([*restart, "--model", "full"]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert "model" in line and "'diagonal'" in line and "'full'" in line
    assert captured.out == "" and checkpoint.read_bytes() == saved


def test_a_closed_consumer_ends_the_run_quietly(processes: Processes, tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(jsonl([{"x": float(i % 11), "y": float(i % 7)} for i in range(20000)]))
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as errors:
        detector = processes.start(
            [*RUN, "--source", f"file:{source}", "--emit", "all"],
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    assert detector.stdout is not None
    head = processes.start(["head", "-n", "1"], stdin=detector.stdout, stdout=subprocess.PIPE)
    detector.stdout.close()  # only head reads the results now
    first, _ = head.communicate(timeout=TIMEOUT_S)
    assert json.loads(first)["position"]["line"] == 1
    summary = finish(detector, stderr)
    assert summary["stopped_by"] == "output closed"


# -- a stream whose records are all unusable ------------------------------------------------------


def test_a_run_that_dead_letters_every_record_exits_3_and_says_why_early() -> None:
    events = [{"a": float(i)} for i in range(2000)]
    done = cli(
        "--features", "a,nope", "--batch-size", "100", "--dead-letter", "-", input=jsonl(events)
    )
    assert done.returncode == 3, done.stderr[-2000:]
    lines = done.stderr.decode().splitlines()
    warnings = [line for line in lines if line.startswith("stream-detect run: warning:")]
    # Said once, as soon as 500 dead letters came in a row, long before the end of the stream.
    assert warnings == [
        "stream-detect run: warning: the last 500 records were all dead letters and no event "
        "has been scored yet; the most common reason: missing feature 'nope' (500 times)"
    ]
    summary = summary_of(done.stderr)
    assert summary["events"] == 0 and summary["bad_records"] == 2000
    assert summary["bad_reason"] == "missing feature 'nope'"
    assert lines[-1] == (
        "stream-detect run: error: no event was usable: all 2000 records were dead letters "
        "(most common reason: missing feature 'nope')"
    )
    assert len(parse_lines(done.stdout)) == 2000  # the dead letters, on stdout as asked


def test_features_given_are_in_the_summary_even_when_no_event_was_usable() -> None:
    # The summary's features are the fields read from each event: named by the user,
    # they are known before any event, as they are when some events are usable.
    events = [{"b": float(i)} for i in range(5)]
    for given in ("a", "a,b"):
        done = cli("--features", given, "--dead-letter", "file:/dev/null", input=jsonl(events))
        assert done.returncode == 3, done.stderr[-2000:]
        assert summary_of(done.stderr)["features"] == given.split(",")
    # Chosen from the first good event, there are none to name when no event is good.
    done = cli("--dead-letter", "file:/dev/null", input=jsonl([{"s": "text"}] * 3))
    assert done.returncode == 3, done.stderr[-2000:]
    assert summary_of(done.stderr)["features"] is None


def test_a_pretty_printed_json_file_ends_saying_json_lines_hold_one_object_per_line() -> None:
    # Its members are its most common lines: their reason is the one quoted.
    pretty = b"".join(b'{\n  "x": %d,\n  "y": 1,\n  "z": 2\n}\n' % i for i in range(5))
    done = cli(input=pretty)
    assert done.returncode == 3, done.stderr[-2000:]
    last = done.stderr.decode().splitlines()[-1]
    assert last.startswith("stream-detect run: error: no event was usable: all 25 records")
    assert "JSON lines hold one whole object per line" in last


def test_a_csv_header_alone_is_counted_in_the_summary_and_exits_0(tmp_path: Path) -> None:
    # A header is no record: nothing was unusable, so the run exits 0 as for an empty
    # stream; the summary says the header was read rather than nothing at all.
    source = tmp_path / "events.csv"
    source.write_bytes(b"x,y\n")
    for done in (cli(input=b"x\n"), cli(input=b"\nx,y\n\n"), cli("--source", f"file:{source}")):
        assert done.returncode == 0, done.stderr[-2000:]
        summary = summary_of(done.stderr)
        assert (summary["events"], summary["bad_records"], summary["header_lines"]) == (0, 0, 1)
    # Read as a header, a lone first line is refused as any header may be.
    done = cli("--label-field", "is_bad", input=b"x\n")
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        "stream-detect run: error: <stdin>:1: label field 'is_bad' is not a column of the CSV "
        "header (columns: x)"
    ]


def unread_bytes(pipe: Any) -> int:
    """Bytes written to ``pipe`` that its reader has not taken yet (FIONREAD)."""
    import fcntl
    import termios

    count = bytearray(4)
    fcntl.ioctl(pipe.fileno(), termios.FIONREAD, count)
    return int.from_bytes(count, sys.byteorder)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_by_signal_reads_a_lone_first_line_as_the_end_of_input_does(
    signum: int, processes: Processes, tmp_path: Path
) -> None:
    # `(printf 'x\n'; sleep 5) | stream-detect run`, stopped during the sleep: the line
    # waited for a second one to decide the format and was neither counted nor kept.
    checkpoint, stderr = tmp_path / "state.json", tmp_path / "stderr"
    # A model to keep: a checkpoint holds a detector's state, the CSV header with it.
    ok(cli("--checkpoint", str(checkpoint), input=jsonl([{"x": 1.0}, {"x": 2.0}])))
    with stderr.open("wb") as errors:
        proc = processes.start(
            [*RUN, "--checkpoint", str(checkpoint)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    assert proc.stdin is not None
    proc.stdin.write(b"x\n")
    proc.stdin.flush()
    # Taken by the run (its signal handlers are in place before it reads); the pipe stays open.
    deadline = time.monotonic() + TIMEOUT_S
    while unread_bytes(proc.stdin) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert unread_bytes(proc.stdin) == 0, "the run never read its input"
    proc.send_signal(signum)
    summary = finish(proc, stderr)
    assert summary["stopped_by"] == "signal" and summary["resumed_from"] == {"model_only": True}
    assert (summary["events"], summary["bad_records"], summary["header_lines"]) == (0, 0, 1)
    saved = load_checkpoint(checkpoint)
    assert saved is not None and saved.header == "x"


def test_a_run_with_some_usable_events_exits_0() -> None:
    events = [{"a": float(i)} for i in range(600)] + [{"a": 1.0, "b": 2.0}]
    done = cli("--features", "a,b", "--dead-letter", "-", input=jsonl(events[::-1]))
    assert done.returncode == 0, done.stderr[-2000:]
    assert summary_of(done.stderr)["events"] == 1
    assert b"warning" in done.stderr  # 600 dead letters in a row after the one good event


# -- what the first lines decide ------------------------------------------------------------------


@pytest.mark.parametrize("first", [b"garbage", b"[1,2]"])
def test_a_bad_first_line_on_stdin_does_not_lose_the_json_stream(first: bytes) -> None:
    events = [{"x": float(i % 7), "y": float(i % 3)} for i in range(1000)]
    done = cli("--format", "auto", "--emit", "all", input=first + b"\n" + jsonl(events))
    results, summary = ok(done)
    assert summary["events"] == len(results) == 1000
    assert summary["bad_records"] == 1
    letters = [
        json.loads(line) for line in done.stderr.splitlines() if line.startswith(b'{"position"')
    ]
    assert [(letter["position"]["line"], letter["raw"]) for letter in letters] == [
        (1, first.decode())
    ]


def test_counters_and_clocks_are_not_chosen_as_features_and_the_choice_is_announced() -> None:
    rng = np.random.default_rng(7)
    events = [
        {
            "ts": 1_700_000_000 + 1.5 * i,
            "seq": i,
            "cpu": float(rng.normal(50.0, 5.0)),
            "mem": float(rng.normal(2.0, 0.3)),
        }
        for i in range(5000)
    ]
    done = cli(input=jsonl(events))
    _, summary = ok(done)
    assert summary["features"] == ["cpu", "mem"]
    assert summary["alerts"] <= 1, "5,000 noise events: the default is one per million"
    (announcement,) = [
        json.loads(line) for line in done.stderr.splitlines() if line.startswith(b'{"features"')
    ]
    assert announcement["features"] == ["cpu", "mem"]
    assert "ts, seq" in announcement["note"] and "--features" in announcement["note"]
    # Named, they are features.
    _, named = ok(cli("--features", "cpu,mem,ts,seq", input=jsonl(events)))
    assert named["features"] == ["cpu", "mem", "ts", "seq"]


def test_role_fields_are_never_chosen_as_features() -> None:
    events = [{"id": i, "when": i % 5, "host": i % 2, "x": float(i % 7)} for i in range(300)]
    roles = ["--id-field", "id", "--timestamp-field", "when", "--key-field", "host"]
    _, summary = ok(cli(*roles, input=jsonl(events)))
    assert summary["features"] == ["x"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["run", "--key-field"], "stream-detect run: error: argument --key-field: expected one"),
        (["run", "--no-such-flag"], "stream-detect: error: unrecognized arguments: --no-such"),
        (["no-such-command"], "stream-detect: error: argument COMMAND: invalid choice"),
        ([], "stream-detect: error: the following arguments are required: COMMAND"),
    ],
)
def test_a_malformed_command_line_is_one_line_and_status_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(says) and "--help)" in err


@pytest.mark.parametrize(
    ("value", "expected"), [("-1e5", -1e5), ("-2.5E-1", -0.25), ("-.5", -0.5), ("-20", -20.0)]
)
def test_a_negative_number_in_any_notation_is_a_value_not_an_option(
    value: str, expected: float
) -> None:
    # argparse alone takes "-1e5" for an unknown option and says "expected one argument".
    args = build_parser("run").parse_args(
        ["run", "--log-epsilon", value, "--log-tail-epsilon", value]
    )
    assert float(args.log_epsilon) == expected
    assert float(args.log_tail_epsilon) == expected


def test_minus_infinity_is_refused_as_a_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--log-epsilon", "-inf"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        "stream-detect run: error: option --log-epsilon: "
        "got -inf, expected a finite number, or none"
    )


def floor_stream(count: int = 160) -> bytes:
    """Two hosts; ``c`` is 0 and ``k`` is 5 for 100 events, then both move, ``c`` by up to 1e150."""
    rng = np.random.default_rng(5)
    jumps = [1.0, 1e150, -1e150, 3.0]
    events = [
        {
            "host": f"h{i % 2}",
            "a": float(rng.normal()),
            "b": float(rng.normal(10.0, 2.0)),
            "c": 0.0 if i < 100 else jumps[i % 4],
            "k": 5.0 if i < 100 else float(5.0 + rng.normal()),
        }
        for i in range(count)
    ]
    return jsonl(events)


@pytest.mark.parametrize(
    "path",
    [[], ["--no-prior"], ["--model", "full"], ["--key-field", "host"], ["--log-epsilon", "-20"]],
    ids=lambda path: " ".join(path) or "defaults",
)
@pytest.mark.parametrize("floor", [repr(sys.float_info.min), "1e300"])
def test_any_accepted_variance_floor_scores_numbers_without_a_warning(
    path: list[str], floor: str
) -> None:
    done = cli(
        "--emit",
        "all",
        "--variance-floor",
        floor,
        "--min-samples",
        "20",
        *path,
        input=floor_stream(),
    )
    results, _ = ok(done)
    assert b"Warning" not in done.stderr, done.stderr.decode()[-2000:]
    scored = [r for r in results if r["n"] > 0]
    assert len(scored) >= len(results) - 2
    for field in ("log_p", "score", "mahalanobis_sq", "log_tail"):
        assert all(isinstance(r[field], float) for r in scored), field
    if floor != "1e300":  # under a floor that large, nothing is far
        assert all(r["alert"] for r in results if abs(r["c"]) == 1e150)


def test_a_state_dir_without_kafka_is_said_to_keep_no_state(tmp_path: Path) -> None:
    # A single stream resumes from --checkpoint; the state directory of a Kafka config
    # replayed on a file is not used, which the run says instead of starting afresh silently.
    source = tmp_path / "events.jsonl"
    source.write_text('{"x": 1}\n')
    warnings: list[str] = []
    settings = RunSettings(source=f"file:{source}", state_dir=str(tmp_path))
    run_stream(settings, DetectorSettings(), sink=ListSink(), on_warning=warnings.append)
    assert warnings == [
        f"state_dir {str(tmp_path)!r} is only used with a kafka:// source: this run keeps "
        "no state (a single stream resumes from --checkpoint)"
    ]


def test_the_help_names_every_flag_that_may_repeat() -> None:
    """``run --help`` says which flags repeat; one it leaves out reads as refused when repeated."""
    import argparse

    from stream_detect.commands import run as run_command

    parser = argparse.ArgumentParser()
    run_command.add_arguments(parser)
    repeating = {
        action.option_strings[0]
        for action in parser._actions
        if isinstance(action, argparse._AppendAction)
    }
    assert repeating == {"--transform", "--direction", "--derive"}
    said = run_command.EPILOG.split("(only ", 1)[1].split(")", 1)[0]
    assert {flag for flag in repeating if flag in said} == repeating


def test_a_timestamp_field_no_event_carries_is_said_once() -> None:
    # Named wrong, the field left the budget, timed acceptance and seasonal features
    # waiting for a first time all run long, without a word.
    events = b"".join(b'{"x": %d, "time": %d}\n' % (i % 7, 1_700_000_000 + i) for i in range(300))
    done = cli("--timestamp-field", "ts", "--no-summary", input=events)
    assert done.returncode == 0
    warned = [line for line in done.stderr.decode().splitlines() if "timestamp field" in line]
    assert warned == [
        "stream-detect run: warning: no event of the first 300 had a value in the timestamp field "
        "'ts': events a day, --accept-after-seconds and seasonal features wait for one "
        "(is the field named right?)"
    ]
    named_right = cli("--timestamp-field", "time", "--no-summary", input=events)
    assert named_right.returncode == 0 and b"timestamp field" not in named_right.stderr
