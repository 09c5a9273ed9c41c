"""An output named on a file that is read is refused before anything is opened.

Results appended to the file a run reads were read again and appended again
until the disk was full; ``fit --out`` on its training data replaced the data
by the model. Each case here is one line, exit 2, and the file untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stream_detect.cli import main

RUN = [sys.executable, "-m", "stream_detect", "run"]
TIMEOUT_S = 90.0


def events(path: Path, count: int = 300) -> bytes:
    """Write ``count`` events of features a, b to ``path``; return its bytes."""
    data = b"".join(
        json.dumps({"a": float(i % 7), "b": float(i % 5) + 0.5 * (i % 3)}).encode() + b"\n"
        for i in range(count)
    )
    path.write_bytes(data)
    return data


def refused(done: subprocess.CompletedProcess[bytes], option: str) -> str:
    """The one stderr line of a run refused with exit 2 before it wrote anything."""
    assert b"Traceback" not in done.stderr
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout == b""
    (line,) = done.stderr.decode().splitlines()
    assert line.startswith("stream-detect run: error: option " + option), line
    return line


@pytest.mark.parametrize("option", ["--sink", "--dead-letter", "--checkpoint"])
@pytest.mark.parametrize("spelling", ["same", "dot", "symlink", "hard link"])
def test_an_output_on_the_source_file_is_refused_and_the_file_kept(
    tmp_path: Path, option: str, spelling: str
) -> None:
    source = tmp_path / "events.jsonl"
    data = events(source)
    target = {
        "same": source,
        "dot": tmp_path / "." / "events.jsonl",
        "symlink": tmp_path / "link.jsonl",
        "hard link": tmp_path / "hard.jsonl",
    }[spelling]
    if spelling == "symlink":
        target.symlink_to(source)
    elif spelling == "hard link":
        os.link(source, target)
    value = str(target) if option == "--checkpoint" else f"file:{target}"
    # A small batch: before this was refused, the run read its own output back forever.
    done = subprocess.run(
        [*RUN, "--source", f"file:{source}", option, value, "--emit", "all", "--batch-size", "10"],
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    line = refused(done, option)
    assert "the one source reads" in line
    assert source.read_bytes() == data


def test_a_sink_on_the_checkpoint_or_the_initial_model_is_refused(tmp_path: Path) -> None:
    stream = events(tmp_path / "events.jsonl")
    model = tmp_path / "model.json"
    assert main(["fit", str(tmp_path / "events.jsonl"), "--out", str(model)]) == 0
    saved = model.read_bytes()
    done = subprocess.run(
        [*RUN, "--initial-model", str(model), "--sink", f"file:{model}", "--emit", "all"],
        input=stream,
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    assert "the one initial_model reads" in refused(done, "--sink")
    assert model.read_bytes() == saved
    checkpoint = tmp_path / "state.json"
    done = subprocess.run(
        [*RUN, "--checkpoint", str(checkpoint), "--dead-letter", f"file:{checkpoint}"],
        input=stream,
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    assert "the one checkpoint reads" in refused(done, "--dead-letter")
    assert not checkpoint.exists()


def test_an_output_on_the_config_file_is_refused_and_the_config_kept(tmp_path: Path) -> None:
    stream = events(tmp_path / "events.jsonl")
    config = tmp_path / "run.toml"
    config.write_text('emit = "all"\n')
    done = subprocess.run(
        [*RUN, "--config", str(config), "--sink", f"file:{config}"],
        input=stream,
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    # The old code appended the results to the config: the run's next reload or start failed.
    assert "the one --config reads" in refused(done, "--sink")
    config.write_text(f'emit = "all"\ndead_letter = "file:{tmp_path / "." / "run.toml"}"\n')
    written = config.read_bytes()
    done = subprocess.run(
        [*RUN, "--config", str(config)], input=stream, capture_output=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 2 and done.stdout == b""
    (line,) = done.stderr.decode().splitlines()
    assert line.startswith(f"stream-detect run: error: config key dead_letter in {config}: "), line
    assert "the one --config reads" in line
    assert config.read_bytes() == written


def test_results_and_dead_letters_may_share_one_file(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    good = events(source, 500).splitlines()
    mixed = [line for i, line in enumerate(good) if i % 3] + [b"{bad"] * 40
    source.write_bytes(b"\n".join(mixed) + b"\n")
    out = tmp_path / "out.jsonl"
    done = subprocess.run(
        [
            *RUN,
            "--source",
            f"file:{source}",
            "--emit",
            "all",
            "--batch-size",
            "16",
            "--sink",
            f"file:{out}",
            "--dead-letter",
            f"file:{out}",
        ],
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    written = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert sum("reason" in record for record in written) == 40
    assert len(written) == len(mixed)


def test_fit_refuses_to_write_its_model_over_the_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = tmp_path / "train.jsonl"
    data = events(train)
    assert main(["fit", str(train), "--out", str(tmp_path / "." / "train.jsonl")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("stream-detect fit: error: option --out:") and "TRAIN" in line
    assert train.read_bytes() == data
    val = tmp_path / "val.jsonl"
    events(val)
    assert main(["fit", str(train), "--val", str(val), "--out", str(val)]) == 2
    assert "--val" in capsys.readouterr().err


def test_replay_refuses_dead_letters_into_its_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_file = tmp_path / "events.jsonl"
    data = events(data_file)
    assert main(["replay", str(data_file), "--dead-letter", f"file:{data_file}"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("stream-detect replay: error: option --dead-letter:")
    assert data_file.read_bytes() == data
