"""Loading a table for ``fit``: CPU and peak memory, against the old-style readline loop.

Generates the events of ``bench/run.py`` (d normal features with 1% spikes;
the JSON lines also carry three string key fields) as CSV and as JSON lines,
and loads each file in a child process per run, so that each peak is its own:

    python bench/tables.py [--events 200000] [--features 8] [--repeats 3]

Ways, each side by side with its reference (the ratio column):
  readline loop, lines only   the old reader: one ``readline`` per line, 65,536 at a time
  blocks, lines only          :class:`~stream_detect.table_lines.TableLines`, 1 MiB reads
  old-style load              readline loop, a ``{"line": n}`` dict per row, the decoder
                              on 65,536 lines at a time, every chunk joined at the end
                              (the old ``load_table`` without its checks, so a floor)
  load_table                  what ``fit`` runs

CPU is the least of ``--repeats`` runs of the load alone (imports not
counted); peak is the child's peak RSS, and "above start" what the load added
to the RSS of the imports. Ratios, not seconds, are what carries to another
machine.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from run import write_csv, write_json

#: Lines the old reader decoded at a time.
OLD_CHUNK = 65536
#: The longest line a table may have, in bytes (the decoder's default).
LIMIT = 1 << 20
WAYS = ("readline loop, lines only", "blocks, lines only", "old-style load", "load_table")
#: The way each one is compared with.
REFERENCE = {
    "readline loop, lines only": "readline loop, lines only",
    "blocks, lines only": "readline loop, lines only",
    "old-style load": "old-style load",
    "load_table": "old-style load",
}


def readline_lines(handle: BinaryIO, count: int) -> list[bytes]:
    """Up to ``count`` lines, as the old reader read them: a ``readline`` and a check per line."""
    most = LIMIT + 3
    lines: list[bytes] = []
    for line in islice(iter(functools.partial(handle.readline, most), b""), count):
        if len(line) == most and not line.endswith(b"\n"):
            raise ValueError("line too long")
        lines.append(line)
    return lines


def readline_loop(path: str) -> int:
    """Every line, read as the old reader read them; returns how many."""
    count = 0
    with open(path, "rb") as handle:
        while lines := readline_lines(handle, OLD_CHUNK):
            count += len(lines)
            # Let go before the next chunk is read, as the blocks below do.
            del lines
    return count


def blocks(path: str) -> int:
    """Every line, read in blocks; returns how many."""
    from stream_detect.table_lines import TableLines

    count = 0
    with open(path, "rb") as handle:
        reader = TableLines(handle, LIMIT)
        while lines := reader.read(OLD_CHUNK)[0]:
            count += len(lines)
            del lines
    return count


def old_style_load(path: str) -> int:
    """The old load's shape: readline loop, a dict per row, chunks joined at the end."""
    import numpy as np

    from stream_detect.records import RecordDecoder
    from stream_detect.sources.base import RawBatch

    fmt = "csv" if path.endswith(".csv") else "json"
    decoder = RecordDecoder(
        fmt, None, keep_records=fmt != "csv", leave_out_rising=False, infer_from_most=False
    )
    parts = []
    before = 0
    with open(path, "rb") as handle:
        while True:
            lines = readline_lines(handle, OLD_CHUNK)
            if not lines:
                break
            positions = [{"line": n} for n in range(before + 1, before + len(lines) + 1)]
            before += len(lines)
            decoded = decoder.decode(RawBatch(lines, positions))
            if fmt == "csv":
                decoder.keep_records = False
            parts.append((decoded.values, decoded.labels))
    X = np.concatenate([values for values, _ in parts])
    np.concatenate([labels for _, labels in parts])
    return len(X)


def load(path: str) -> int:
    from stream_detect.tables import load_table

    return len(load_table(path).X)


def child(way: str, path: str) -> None:
    """Run one way once; print its CPU seconds, peak and starting RSS (MB) as JSON."""
    work = {
        "readline loop, lines only": readline_loop,
        "blocks, lines only": blocks,
        "old-style load": old_style_load,
        "load_table": load,
    }[way]
    # What every way imports, before the start is measured.
    import numpy  # noqa: F401

    import stream_detect.commands.fit
    import stream_detect.tables  # noqa: F401

    # The RSS now, not the peak so far: the imports' own passing peak is no part of the start.
    with open("/proc/self/statm") as statm:
        start_rss = int(statm.read().split()[1]) * resource.getpagesize() / (1 << 20)
    start = time.process_time()
    rows = work(path)
    cpu = time.process_time() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"cpu": cpu, "peak": peak, "start": start_rss, "rows": rows}))


def ratio(value: float, reference: float) -> str:
    """``value / reference``, or a dash where the reference is nothing."""
    return f"{value / reference:.2f}" if reference > 0 else "-"


def measure(way: str, path: Path, repeats: int) -> dict[str, Any]:
    """The least CPU and least peak of ``repeats`` child runs."""
    runs = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, __file__, "--child", way, str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(done.stdout))
    best = min(runs, key=lambda run: run["cpu"])
    peak = min(runs, key=lambda run: run["peak"])
    return {"cpu": best["cpu"], "peak": peak["peak"], "above": peak["peak"] - peak["start"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="runs; the least CPU counts")
    parser.add_argument("--child", nargs=2, metavar=("WAY", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    n, d = args.events, args.features
    with tempfile.TemporaryDirectory() as folder:
        files = {"CSV": Path(folder) / "events.csv", "JSON lines": Path(folder) / "events.jsonl"}
        write_csv(files["CSV"], n, d)
        write_json(files["JSON lines"], n, d)
        print(f"{n:,} events of {d} features; CPU: least of {args.repeats} runs; peak RSS\n")
        print("| file | way | CPU s | x reference | peak MB | above start MB | x reference |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for kind, path in files.items():
            results: dict[str, dict[str, Any]] = {}
            for way in WAYS:
                results[way] = result = measure(way, path, args.repeats)
                reference = results[REFERENCE[way]]
                print(
                    f"| {kind} | {way} | {result['cpu']:.3f} "
                    f"| {ratio(result['cpu'], reference['cpu'])} | {result['peak']:.0f} "
                    f"| {result['above']:.0f} | {ratio(result['above'], reference['above'])} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
