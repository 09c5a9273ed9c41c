"""CPU seconds a command costs before it does any work, against the interpreter and numpy alone.

Each row is a fresh process, run ``--repeats`` times (the rows take turns, so
a busy machine slows them alike); the least user + system CPU counts. The
bytecode is compiled once, up front, into a temporary cache, as an installed
package has it (an environment with ``PYTHONDONTWRITEBYTECODE`` would
otherwise recompile every module at every start):

    python bench/startup.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile

#: ``run`` sets this before it imports numpy: OpenBLAS then starts no worker threads.
ONE_BLAS_THREAD = "import os; os.environ['OPENBLAS_NUM_THREADS'] = '1'; "


def cpu_seconds(command: list[str], stdin: bytes, env: dict[str, str]) -> float:
    """User + system CPU seconds of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        command,
        input=stdin,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as cache:
        python = [sys.executable, "-X", f"pycache_prefix={cache}"]
        rows = {
            "python -c pass": ([*python, "-c", "pass"], b""),
            "import numpy": ([*python, "-c", "import numpy"], b""),
            "import numpy, one BLAS thread (as `run` does)": (
                [*python, "-c", ONE_BLAS_THREAD + "import numpy"],
                b"",
            ),
            "import stream_detect.cli": ([*python, "-c", "import stream_detect.cli"], b""),
            "stream-detect run --help": ([*python, "-m", "stream_detect", "run", "--help"], b""),
            "stream-detect run, one event": (
                [*python, "-m", "stream_detect", "run", "--no-summary"],
                b'{"a": 1}\n',
            ),
        }
        for command, stdin in rows.values():
            cpu_seconds(command, stdin, env)  # compiles the bytecode
        best = dict.fromkeys(rows, float("inf"))
        for _ in range(args.repeats):
            for label, (command, stdin) in rows.items():
                best[label] = min(best[label], cpu_seconds(command, stdin, env))
    print(f"`python bench/startup.py --repeats {args.repeats}` (least CPU seconds of a process)\n")
    print("| process | CPU s |")
    print("|---|---:|")
    for label, seconds in best.items():
        print(f"| {label} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
