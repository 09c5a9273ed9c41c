"""Standard output or error closed by the caller (``>&-``, ``2>&-``), or refusing writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "stream_detect", "run"]
EVENTS = b'{"a": 1, "b": 2}\nnot json\n{"a": 2, "b": 3}\n'


def run_with_closed(fd: int, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run over a stream with one bad line, descriptor ``fd`` closed in the child."""
    source = tmp_path / "events.jsonl"
    source.write_bytes(EVENTS)
    return subprocess.run(
        [*RUN, "--source", f"file:{source}", "--emit", "all", *args]
        if fd != 0
        else [*RUN, "--emit", "all", *args],
        capture_output=True,
        preexec_fn=lambda: os.close(fd),
        cwd=REPO,
        timeout=60,
    )


def test_dead_letters_to_a_closed_stderr_are_refused_with_exit_2(tmp_path: Path) -> None:
    done = run_with_closed(2, tmp_path)
    # Nothing can carry a message when stderr is closed: the status says it, not 1.
    assert done.returncode == 2
    assert done.stdout == b"", "refused before anything was scored"


def test_a_closed_stderr_does_not_matter_when_nothing_goes_there(tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    done = run_with_closed(2, tmp_path, "--dead-letter", f"file:{dead}")
    assert done.returncode == 0
    assert [json.loads(line)["position"]["line"] for line in done.stdout.splitlines()] == [1, 3]
    assert json.loads(dead.read_bytes())["position"]["line"] == 2


def test_results_to_a_closed_stdout_are_refused_with_one_line(tmp_path: Path) -> None:
    done = run_with_closed(1, tmp_path)
    assert done.returncode == 2
    # The default sink: the line names no config key the user never set, and the way out.
    assert done.stderr == (
        b"stream-detect run: error: cannot send results to standard output: it is closed; "
        b"redirect it, or choose another sink with --sink file:PATH\n"
    )


def test_results_to_a_closed_stdout_named_as_the_sink_get_the_same_line(tmp_path: Path) -> None:
    done = run_with_closed(1, tmp_path, "--sink", "-")
    assert done.returncode == 2
    assert done.stderr.startswith(b"stream-detect run: error: cannot send results to standard")


def test_a_closed_stdin_is_refused_with_one_line(tmp_path: Path) -> None:
    done = run_with_closed(0, tmp_path)
    assert done.returncode == 2
    assert done.stderr.count(b"\n") == 1 and b"stdin is closed" in done.stderr


#: A device every write to fails with "No space left on device".
FULL = Path("/dev/full")
needs_full = pytest.mark.skipif(not FULL.exists(), reason="no /dev/full on this system")


def run_with_full_stderr(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``stream-detect ARGS`` with stderr on a device that refuses every write."""
    source = tmp_path / "events.jsonl"
    source.write_bytes(EVENTS)
    with FULL.open("wb") as full:
        return subprocess.run(
            [sys.executable, "-m", "stream_detect", *args],
            stdout=subprocess.PIPE,
            stderr=full,
            cwd=tmp_path,
            timeout=60,
        )


@needs_full
def test_a_stderr_that_refuses_writes_loses_messages_not_results(tmp_path: Path) -> None:
    # The features line raised: no result was written and the run exited 1.
    done = run_with_full_stderr(
        tmp_path, "run", "--source", "file:events.jsonl", "--emit", "all",
        "--dead-letter", "file:dead.jsonl",
    )  # fmt: skip
    assert done.returncode == 0
    assert [json.loads(line)["position"]["line"] for line in done.stdout.splitlines()] == [1, 3]
    assert json.loads((tmp_path / "dead.jsonl").read_bytes())["position"]["line"] == 2


@needs_full
def test_dead_letters_that_cannot_be_written_to_stderr_stop_the_run_with_exit_2(
    tmp_path: Path,
) -> None:
    done = run_with_full_stderr(tmp_path, "run", "--source", "file:events.jsonl")
    assert done.returncode == 2


@needs_full
def test_an_error_that_cannot_be_shown_still_exits_2(tmp_path: Path) -> None:
    # Printing the error raised again, and the status was 1.
    assert run_with_full_stderr(tmp_path, "fit", "absent.jsonl").returncode == 2
    assert run_with_full_stderr(tmp_path, "run", "--batch-size", "0").returncode == 2


def report_command(tmp_path: Path) -> list[str]:
    """``stream-detect inspect`` over a small file: a command whose report goes to stdout."""
    data = tmp_path / "data.csv"
    data.write_text("a,b\n" + "".join(f"{i % 7},{i % 5}\n" for i in range(50)))
    return [sys.executable, "-m", "stream_detect", "inspect", str(data), "--label-field", "none"]


@needs_full
def test_a_report_that_stdout_refuses_is_one_line_and_exit_2(tmp_path: Path) -> None:
    # The print raised: a traceback and exit 1.
    with FULL.open("wb") as full:
        done = subprocess.run(
            report_command(tmp_path), stdout=full, stderr=subprocess.PIPE, cwd=REPO, timeout=60
        )
    assert done.returncode == 2
    assert (
        done.stderr
        == b"stream-detect inspect: error: cannot write to stdout: No space left on device\n"
    )


def test_a_report_to_a_closed_stdout_is_refused_with_one_line(tmp_path: Path) -> None:
    # The report went to the /dev/null standing in for descriptor 1, and the exit status was 0.
    done = subprocess.run(
        report_command(tmp_path),
        capture_output=True,
        preexec_fn=lambda: os.close(1),
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count(b"\n") == 1 and b"cannot write to stdout: it is closed" in done.stderr


def test_a_report_that_the_stdout_encoding_cannot_carry_is_one_line(tmp_path: Path) -> None:
    # A feature named outside ASCII made the table's print raise UnicodeEncodeError: a traceback.
    data = tmp_path / "data.jsonl"
    data.write_text("".join(f'{{"\\u00e9": {i % 7}}}\n' for i in range(50)))
    done = subprocess.run(
        [sys.executable, "-m", "stream_detect", "inspect", str(data), "--label-field", "none"],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count(b"\n") == 1 and b"encoding (ascii)" in done.stderr


def test_the_features_line_is_json_whatever_the_stderr_encoding(tmp_path: Path) -> None:
    # Python writes what an ASCII stderr cannot carry as \xe9, which is not JSON.
    done = subprocess.run(
        [sys.executable, "-m", "stream_detect", "run", "--no-summary", "--no-progress"],
        input="".join(f'{{"temp\\u00e9rature": {i % 7}}}\n' for i in range(20)).encode(),
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert json.loads(first) == {"features": ["température"]}
