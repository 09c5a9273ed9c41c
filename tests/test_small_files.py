"""Small files read whole (config, windows, model) are read no further than their limit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stream_detect.config import read_config_file
from stream_detect.errors import ConfigError, ModelError
from stream_detect.modelfile import load_model
from stream_detect.small_files import (
    CONFIG_FILE_LIMIT,
    MODEL_FILE_LIMIT,
    WINDOWS_FILE_LIMIT,
    FileTooLarge,
    read_small_file,
)

needs_dev_zero = pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")


def in_4_gib(*argv: str) -> subprocess.CompletedProcess[str]:
    """``stream-detect ARGV`` in a fresh interpreter with 4 GiB of address space.

    A read without end fails there with MemoryError instead of filling the machine.
    """
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
        "from stream_detect.cli import main\n"
        f"sys.exit(main({list(argv)!r}))\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@needs_dev_zero
def test_replay_windows_that_never_end_are_refused_with_the_limit(tmp_path: Path) -> None:
    # Read whole, /dev/zero ran out of memory (exit 1 in 4 GiB; without a limit, the machine's).
    data = tmp_path / "series.csv"
    data.write_text("x\n1\n2\n")
    done = in_4_gib("replay", str(data), "--windows", "/dev/zero")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "stream-detect replay: error: /dev/zero: holds more than 64 MiB, "
        "the limit for a windows file\n"
    )


@needs_dev_zero
@pytest.mark.parametrize("command", ["run", "replay"])
def test_a_config_that_never_ends_is_refused_with_the_limit(command: str, tmp_path: Path) -> None:
    data = tmp_path / "series.csv"
    data.write_text("x\n1\n2\n")
    args = ["run", "--source", f"file:{data}"] if command == "run" else ["replay", str(data)]
    done = in_4_gib(*args, "--config", "/dev/zero")
    assert done.returncode == 2
    assert done.stderr == (
        f"stream-detect {command}: error: option --config: got '/dev/zero', "
        "expected a TOML file of at most 1 MiB (it holds more)\n"
    )


def test_a_config_file_one_byte_over_the_limit_is_refused_and_one_at_it_is_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.toml"
    # Comments and white space: valid TOML of any length.
    line = "# " + "x" * 97 + "\n"
    text = "batch_size = 7\n" + line * ((CONFIG_FILE_LIMIT - 15) // len(line))
    path.write_text(text + " " * (CONFIG_FILE_LIMIT - len(text)))
    assert read_config_file(path) == {"batch_size": 7}
    with path.open("a") as grown:
        grown.write(" ")
    with pytest.raises(ConfigError, match=r"expected a TOML file of at most 1 MiB \(it holds"):
        read_config_file(path)


def test_a_model_file_past_the_limit_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    # A JSON start, then more than the limit (a sparse file: no disk used). It was read
    # whole and then parsed, whatever its length.
    path = tmp_path / "m.json"
    with path.open("wb") as model:
        model.write(b'{"format": "stream_detect.model", "x": "')
        model.truncate(MODEL_FILE_LIMIT + 1)
    with pytest.raises(ModelError) as refused:
        load_model(path)
    assert str(refused.value) == (
        f"model file {path} holds more than 256 MiB, the limit for a model file"
    )


def test_the_limits_are_the_documented_ones() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert (CONFIG_FILE_LIMIT, WINDOWS_FILE_LIMIT, MODEL_FILE_LIMIT) == (
        1 << 20,
        64 << 20,
        256 << 20,
    )
    for words in ("`--config` file (1 MiB)", "`--windows` file (64 MiB)", "model file (256 MiB"):
        assert words in readme


def test_a_file_at_the_limit_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"a" * 10)
    assert read_small_file(path, 10, "windows file") == b"a" * 10
    with pytest.raises(FileTooLarge, match="holds more than 9 bytes, the limit for a windows file"):
        read_small_file(path, 9, "windows file")
