"""Speed of the full-covariance model against the diagonal one, and its growth with d.

Two tables, printed as markdown:

1. The model alone: ``GaussianModel.prequential`` then ``learn`` over
   1,024-event batches of correlated normal events (every event learned),
   in events per CPU second: diagonal, full by low-rank updates (the
   default from 16 features on; below that a factorisation per row is
   cheaper), and full by a factorisation of every row's covariance (the
   path the low-rank updates replace, run on fewer events where it is slow).
   The exponent column is the slope of log(CPU time per event) against log d
   from the previous row: 2 means cost per event growing as d², 3 as d³.
   Every model starts from 4 d learned events: until a full model has learned
   more events than features its covariance rests on the ridge, and each of
   those first events costs a factorisation (d³) of its own.
2. The real command line: ``stream-detect run`` over generated JSON lines
   (the default threshold, no re-tunes, 1% spikes), ``--model diagonal`` and ``--model
   full`` side by side, events per CPU second of the child process, at d = 8,
   32 and 128 (each run starts empty, so it includes those first events).

    python bench/full_covariance.py [--quick] [--large-d 512]

BLAS runs on one thread here (``OPENBLAS_NUM_THREADS=1`` unless set): on two
cores shared with other work, OpenBLAS threads that wait for each other made
128 x 128 factorisations twenty times slower in CPU time.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Before numpy is imported, and inherited by the command-line runs.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import orjson

from stream_detect.gaussian_model import GaussianModel

#: The detector's settings in every command-line row: the default threshold (an
#: event alerts when its tail probability is below 1e-6, at any d) never re-tuned,
#: so runs do equal work. A fixed log-density threshold would alert on every event
#: at d = 32 and beyond, where log p of a normal event is below -40.
FIXED = ["--retune-every", "0", "--no-summary", "--no-progress"]
BATCH = 1024


def correlated(events: int, d: int, seed: int = 0) -> np.ndarray:
    """Correlated normal events with 1% spikes."""
    rng = np.random.default_rng(seed)
    mixing = np.eye(d) + rng.normal(size=(d, d)) / math.sqrt(d)
    X = rng.normal(size=(events, d)) @ mixing
    spikes = rng.random(events) < 0.01
    X[spikes] += 8.0
    return X


def model_rate(d: int, full: bool, events: int, low_rank: bool = True) -> float:
    """Events per CPU second of prequential scoring and learning, after a warm-up of 4 d events."""
    X = correlated(events + 4 * d, d)
    model = GaussianModel(d, full=full, low_rank=low_rank)
    model.learn(X[: 4 * d])
    X = X[4 * d :]
    learn = np.ones(BATCH, dtype=bool)
    start = time.process_time()
    for begin in range(0, events, BATCH):
        rows = X[begin : begin + BATCH]
        model.prequential(rows, learn[: rows.shape[0]])
        model.learn(rows)
    return events / (time.process_time() - start)


def exponent(previous: tuple[int, float] | None, d: int, rate: float) -> str:
    """Slope of log(cost per event) against log d since the previous row."""
    if previous is None:
        return ""
    d0, rate0 = previous
    return f"{math.log(rate0 / rate) / math.log(d / d0):.2f}"


def write_lines(path: Path, events: int, d: int) -> None:
    names = [f"f{j}" for j in range(d)]
    X = correlated(events, d, seed=1).round(6)
    with path.open("wb") as handle:
        for row in X.tolist():
            handle.write(orjson.dumps(dict(zip(names, row, strict=True))) + b"\n")


def cli_seconds(path: Path, model: str) -> float:
    """CPU seconds (user + system) of ``stream-detect run`` over ``path``."""
    command = [sys.executable, "-m", "stream_detect", "run", "--source", f"file:{path}"]
    command += ["--sink", f"file:{os.devnull}", "--model", model, *FIXED]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed")
    return usage.ru_utime + usage.ru_stime


def cli_rate(path: Path, events: int, model: str, folder: str, d: int) -> float:
    """Events per CPU second of the command line, less its start-up on one event."""
    one = Path(folder, f"one-{d}.jsonl")
    write_lines(one, 1, d)
    startup = min(cli_seconds(one, model) for _ in range(2))
    return events / max(cli_seconds(path, model) - startup, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events (about a minute)")
    parser.add_argument("--large-d", type=int, default=512, help="the widest model measured")
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0
    dims = [8, 32, 128, args.large_d]

    def events_for(d: int, base: int) -> int:
        return max(BATCH, int(scale * base * 8 / max(d, 8)) // BATCH * BATCH)

    print(
        "| d | diagonal | full, low-rank updates | exponent | full, factorisation per row "
        "| exponent | default full × diagonal |"
    )
    print("|---|---|---|---|---|---|---|")
    low_previous: tuple[int, float] | None = None
    row_previous: tuple[int, float] | None = None
    for d in dims:
        events = events_for(d, 200_000)
        diagonal = model_rate(d, False, events)
        low_rank = model_rate(d, True, events)
        per_row_events = max(BATCH, events // (1 if d <= 8 else d // 4)) if d <= 128 else 0
        per_row = model_rate(d, True, per_row_events, low_rank=False) if per_row_events else 0.0
        per_row_text = f"{per_row:,.0f}" if per_row else "not run (hours)"
        default = low_rank if GaussianModel(d, full=True).low_rank else per_row
        print(
            f"| {d} | {diagonal:,.0f} | {low_rank:,.0f} | {exponent(low_previous, d, low_rank)} "
            f"| {per_row_text} | {exponent(row_previous, d, per_row) if per_row else ''} "
            f"| {default / diagonal:.2f} |",
            flush=True,
        )
        low_previous = (d, low_rank)
        if per_row:
            row_previous = (d, per_row)

    print()
    print("| d | `stream-detect run` diagonal | `--model full` | × diagonal |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for d in dims[:3]:
            events = events_for(d, 100_000)
            path = Path(folder, f"d{d}.jsonl")
            write_lines(path, events, d)
            diagonal = cli_rate(path, events, "diagonal", folder, d)
            full = cli_rate(path, events, "full", folder, d)
            print(f"| {d} | {diagonal:,.0f} | {full:,.0f} | {full / diagonal:.2f} |", flush=True)
    command = "python bench/full_covariance.py" + "".join(f" {a}" for a in sys.argv[1:])
    threads = os.environ["OPENBLAS_NUM_THREADS"]
    print(
        f"\n`{command}`, {os.cpu_count()} cores, OPENBLAS_NUM_THREADS={threads}, "
        "events per CPU second (the command line's less its start-up)."
    )


if __name__ == "__main__":
    main()
