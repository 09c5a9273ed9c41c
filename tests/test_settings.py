"""Settings check themselves: the Python API, flags and config files share one rule set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stream_detect.assembly import run_stream
from stream_detect.cli import main
from stream_detect.density import SMALLEST_VARIANCE_FLOOR
from stream_detect.errors import ConfigError
from stream_detect.river_params import river_detectors
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.testing import ListSink, ListSource
from stream_detect.validation import MEMORY_LIMIT


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """Exit status and stderr lines of ``stream-detect ARGV`` run in this process."""
    status = main(argv)
    return status, capsys.readouterr().err.splitlines()


# -- the Python API ---------------------------------------------------------------------------


def test_a_value_outside_its_choices_is_refused_when_built() -> None:
    with pytest.raises(ConfigError) as caught:
        DetectorSettings(flagged="bogus")
    error = caught.value
    assert (error.key, error.value) == ("flagged", "bogus")
    assert "'exclude', 'clip', 'learn'" in error.expected


def test_a_size_below_its_minimum_is_refused_when_built() -> None:
    with pytest.raises(ConfigError, match="config key batch_size: got 0, expected an integer >= 1"):
        RunSettings(batch_size=0)


def test_values_are_normalised_as_a_config_file_would_be() -> None:
    detector = DetectorSettings(features=["a", "b"], clip_sigma=6, transforms={"a": "root:2"})  # type: ignore[arg-type]
    assert detector.features == ("a", "b")
    assert detector.clip_sigma == 6.0 and isinstance(detector.clip_sigma, float)
    assert detector.transforms == {"a": "sqrt"}
    assert RunSettings(checkpoint="none").checkpoint is None


def test_numpy_numbers_are_taken_as_the_python_numbers_they_hold() -> None:
    # np.int64(3) was refused as "expected an integer", np.float32(-5) as "expected a number".
    detector = DetectorSettings(min_samples=np.int64(3), log_epsilon=np.float32(-5))  # type: ignore[arg-type]
    assert detector.min_samples == 3 and type(detector.min_samples) is int
    assert detector.log_epsilon == -5.0 and type(detector.log_epsilon) is float
    assert RunSettings(batch_size=np.uint16(7)).batch_size == 7  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"min_samples: got np\.True_, expected an integer"):
        DetectorSettings(min_samples=np.bool_(True))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="log_epsilon: got nan, expected a finite number"):
        DetectorSettings(log_epsilon=np.float64("nan"))


def test_rules_between_fields_hold_in_code() -> None:
    with pytest.raises(ConfigError, match="config key min_samples: got 1"):
        DetectorSettings(model="full", min_samples=1)
    with pytest.raises(ConfigError, match="config key features"):
        DetectorSettings(features=("cpu", "label"))
    with pytest.raises(ConfigError, match="config key validation_size"):
        DetectorSettings(validation_size=10)


def test_rules_between_run_and_detector_settings_hold_in_run_stream(tmp_path: Path) -> None:
    checkpoint = tmp_path / "state" / "state.json"
    with pytest.raises(ConfigError, match="config key checkpoint"):
        run_stream(
            RunSettings(checkpoint=str(checkpoint)),
            DetectorSettings(model="river:LODA"),
            source=ListSource([{"x": 1.0}]),
            sink=ListSink(),
            dead_letter=ListSink(),
        )
    # Refused before the checkpoint's folder or lock file was made: no trace left.
    assert not checkpoint.parent.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("id_memory", 100_000_000), ("id_memory", 10**12), ("validation_size", 10**12)],
)
def test_sizes_that_would_not_fit_in_memory_are_refused_with_their_cost(
    field: str, value: int
) -> None:
    with pytest.raises(ConfigError) as caught:
        DetectorSettings(**{field: value})
    assert caught.value.key == field and caught.value.value == value
    assert "GiB" in caught.value.expected and "would take at least" in caught.value.expected
    # The limit is shown exactly, as the file size limits are (it said "1.0 GiB").
    assert "that needs at most 1 GiB at start" in caught.value.expected


def test_sizes_within_the_memory_limit_are_accepted() -> None:
    assert DetectorSettings(id_memory=1_000_000).id_memory == 1_000_000
    assert DetectorSettings(validation_size=1_000_000).validation_size < MEMORY_LIMIT // 48


# -- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--validation-size", "1000000000000"],
        ["--id-memory", "100000000"],
    ],
)
def test_absurd_sizes_on_the_command_line_get_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines = run_cli(["run", *argv], capsys)
    assert status == 2
    assert len(lines) == 1 and lines[0].startswith(f"stream-detect run: error: option {argv[0]}:")
    assert "would take at least" in lines[0]


def test_absurd_sizes_in_a_config_file_get_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "big.toml"
    config.write_text("id_memory = 1000000000000\n", encoding="utf-8")
    status, lines = run_cli(["run", "--config", str(config)], capsys)
    assert status == 2 and len(lines) == 1
    assert f"config key id_memory in {config}: got 1000000000000" in lines[0]
    config.write_text("id_memory = 1e12\n", encoding="utf-8")
    status, lines = run_cli(["run", "--config", str(config)], capsys)
    assert status == 2 and len(lines) == 1 and "expected an integer" in lines[0]


def test_a_deeply_nested_config_file_gets_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "deep.toml"
    config.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    status, lines = run_cli(["run", "--config", str(config)], capsys)
    assert status == 2 and len(lines) == 1
    assert lines[0].startswith("stream-detect run: error: option --config:")
    assert "nested" in lines[0]


def test_an_error_names_the_flag_or_the_key_and_file_it_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines = run_cli(["run", "--source", "nowhere:x"], capsys)
    assert status == 2
    assert lines == [lines[0]] and lines[0].startswith(
        "stream-detect run: error: option --source: got 'nowhere:x'"
    )
    config = tmp_path / "run.toml"
    config.write_text('source = "nowhere:y"\n', encoding="utf-8")
    status, lines = run_cli(["run", "--config", str(config)], capsys)
    assert status == 2
    assert lines[0].startswith(f"stream-detect run: error: config key source in {config}: got")
    config.write_text('model = "full"\nmin_samples = 1\n', encoding="utf-8")
    status, lines = run_cli(["run", "--config", str(config)], capsys)
    assert lines[0].startswith(f"stream-detect run: error: config key min_samples in {config}:")
    status, lines = run_cli(["run", "--transform", "x"], capsys)
    assert lines[0].startswith("stream-detect run: error: option --transform: got 'x'")


def test_an_unknown_model_lists_the_choices_in_words(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run_cli(["run", "--model", "gaussian"], capsys)
    assert status == 2 and len(lines) == 1
    assert "expected diagonal, full, or river:NAME with NAME one of " in lines[0]
    assert ", ".join(river_detectors()) in lines[0]
    assert "^(" not in lines[0] and "[A-Za-z" not in lines[0]
    _, lines = run_cli(["run", "--model", "river:HalfSpaceTree"], capsys)
    assert "did you mean 'HalfSpaceTrees'?" in lines[0]


@pytest.mark.parametrize(
    ("argv", "second"),
    [
        (["--features", "a", "--features", "b"], "--features"),
        (["--summary", "--no-summary"], "--no-summary"),
        (["--batch-size", "5", "--batch-size", "5"], "--batch-size"),
    ],
)
def test_a_repeated_flag_is_refused(
    argv: list[str], second: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines = run_cli(["run", *argv], capsys)
    assert status == 2 and len(lines) == 1
    # The second occurrence is named.
    assert lines[0].startswith(f"stream-detect run: error: option {second}: got ")
    assert "once" in lines[0]


@pytest.mark.parametrize("command", ["fit", "inspect"])
def test_repeated_features_are_refused_by_every_command(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines = run_cli([command, "train.csv", "--features", "a", "--features", "b"], capsys)
    assert status == 2
    assert lines == [
        f"stream-detect {command}: error: option --features: got 'b', expected --features once "
        "(it was given before; give every value in one flag rather than have one silently "
        "dropped)"
    ]


def test_transform_may_repeat(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps({"a": i + 1, "b": i + 2}) + "\n" for i in range(60)))
    argv = ["run", "--source", f"file:{events}", "--features", "a,b", "--no-summary"]
    status = main([*argv, "--transform", "a=log", "--transform", "b=sqrt"])
    assert status == 0, capsys.readouterr().err


def test_help_documents_fsync_the_transforms_table_and_the_exit_status() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stream_detect", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    text = " ".join(done.stdout.split())
    assert "file:PATH[?fsync=true]" in text and "?fsync=true" in text
    assert "[transforms] table" in text
    assert (
        "exit status: 0" in text and "3 records were read but every one was a dead letter" in text
    )


# -- the variance floor ---------------------------------------------------------------------------

#: The smallest normal double: the smallest variance floor a run accepts.
SMALLEST_FLOOR = SMALLEST_VARIANCE_FLOOR


@pytest.mark.parametrize("floor", ["0", "-0", "1e-320", "5e-324", "-1"])
def test_a_variance_floor_below_the_smallest_normal_double_is_one_line_naming_it(
    floor: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines = run_cli(["run", "--variance-floor", floor], capsys)
    assert status == 2 and len(lines) == 1
    assert lines[0].startswith("stream-detect run: error: option --variance-floor: got ")
    assert f">= {SMALLEST_FLOOR!r}" in lines[0]


def test_the_smallest_variance_floor_is_accepted_and_zero_is_refused_in_code() -> None:
    assert DetectorSettings(variance_floor=SMALLEST_FLOOR).variance_floor == SMALLEST_FLOOR
    with pytest.raises(ConfigError) as caught:
        DetectorSettings(variance_floor=0.0)
    assert (caught.value.key, caught.value.value) == ("variance_floor", 0.0)
    assert caught.value.expected == f"a number >= {SMALLEST_FLOOR!r}"
