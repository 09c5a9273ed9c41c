"""Running out of memory is one line on stderr, not a traceback."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _limit_address_space() -> None:
    # 2 GB: enough for the interpreter and numpy, not for a 20,000² covariance (3.2 GB).
    resource.setrlimit(resource.RLIMIT_AS, (2_000_000_000, 2_000_000_000))


def test_a_full_model_too_large_for_memory_is_one_line(tmp_path: Path) -> None:
    # fit: run refuses a full model of this many features before allocating (full_size.py).
    source = tmp_path / "wide.csv"
    names = [f"f{j}" for j in range(20_000)]
    rows = [",".join(str(j * 0.5 + r) for j in range(20_000)) for r in range(3)]
    source.write_text("\n".join([",".join(names), *rows]) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "stream_detect", "fit", str(source), "--model", "full"],
        capture_output=True,
        cwd=REPO,
        timeout=120,
        preexec_fn=_limit_address_space,
        env={"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1"},
    )
    assert done.returncode == 1, done.stderr[-2000:]
    lines = done.stderr.decode().splitlines()
    assert "Traceback" not in done.stderr.decode()
    assert lines[-1].startswith("stream-detect fit: error: out of memory: Unable to allocate")
    assert lines[-1].endswith(
        "; fewer features or the diagonal model instead of the full one need less"
    )
