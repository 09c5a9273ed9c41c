"""Running out of memory is one line on stderr, not a traceback."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]


def _limit_address_space() -> None:
    # 2 GB: enough for the interpreter and numpy, not for a 20,000² covariance (3.2 GB).
    resource.setrlimit(resource.RLIMIT_AS, (2_000_000_000, 2_000_000_000))


def test_a_full_model_too_large_for_memory_is_one_line(tmp_path: Path) -> None:
    source = tmp_path / "wide.jsonl"
    source.write_bytes(orjson.dumps({f"f{j}": j * 0.5 for j in range(20_000)}) + b"\n")
    done = subprocess.run(
        [sys.executable, "-m", "stream_detect", "run", "--model", "full", "--no-progress"],
        stdin=source.open("rb"),
        capture_output=True,
        cwd=REPO,
        timeout=120,
        preexec_fn=_limit_address_space,
        env={"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1"},
    )
    assert done.returncode == 1, done.stderr[-2000:]
    lines = done.stderr.decode().splitlines()
    assert "Traceback" not in done.stderr.decode()
    assert lines[-1].startswith("stream-detect run: error: out of memory: Unable to allocate")
    assert "the diagonal model" in lines[-1]
