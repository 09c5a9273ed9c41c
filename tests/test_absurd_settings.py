"""Absurd settings are refused with one line (exit 2) or run within bounded memory; no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_detect.cli import main

EVENTS = '{"a": 1, "b": 2}\n{"a": 2, "b": 3}\n'

#: Sizes that would allocate more than memory allows, refused before anything is allocated.
REFUSED = [
    ["--validation-size", "1000000000000"],
    ["--id-memory", "1000000000000"],
    ["--id-memory", "100000000"],
    ["--max-key-bytes", "0"],
    ["--checkpoint-every", "1e30"],
    ["--batch-size", "0"],
    ["--max-latency-ms", "nan"],
    ["--half-life", "-1"],
    # A walk per lag (averaging), a 64-bit row count (refractory), a (rows, w) window:
    # an endless loop, an OverflowError, a traceback or terabytes before these bounds.
    ["--likelihood-averaging", "100001", "--likelihood"],
    ["--likelihood-refractory", str(2**63 - 1), "--likelihood"],
    ["--likelihood-window", "1000001", "--likelihood"],
    ["--derive", f"w=rolling_std:a:{2**63 - 1}"],
]
#: Large but harmless: bounds nothing allocates up front.
ACCEPTED = [
    ["--max-keys", "1000000000000"],
    ["--batch-size", "1000000000000"],
    ["--max-line-bytes", "100000000000000"],
    ["--max-key-bytes", "100000000000000"],
    ["--accept-after", "100000000000000"],
    ["--retune-every", "100000000000000000000"],
    ["--top-contributions", "1000000000000"],
    ["--likelihood", "--likelihood-averaging", "100000", "--likelihood-refractory", "10000000"],
    ["--likelihood", "--likelihood-window", "1000000"],
    ["--derive", "w=rolling_std:a:100000"],
]


@pytest.fixture
def source(tmp_path: Path) -> str:
    path = tmp_path / "events.jsonl"
    path.write_text(EVENTS)
    return f"file:{path}"


@pytest.mark.parametrize("flags", REFUSED, ids=" ".join)
def test_sizes_beyond_memory_are_refused_with_one_line(
    flags: list[str], source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--source", source, *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flags[0] in err and "Traceback" not in err


@pytest.mark.parametrize("flags", ACCEPTED, ids=" ".join)
def test_large_harmless_bounds_run(
    flags: list[str], source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--source", source, "--no-summary", *flags]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_a_deeply_nested_config_is_one_line(
    tmp_path: Path, source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "deep.toml"
    config.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert main(["run", "--config", str(config), "--source", source]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nested" in err
