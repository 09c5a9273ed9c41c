"""Soak: millions of events through the whole pipeline, checking that memory stays flat.

Generates JSON events on the fly (nothing is held but the current batch):
every event has a unique id (so the id memory is always full), with ``--keys
N`` a key from a pool of N (above ``--max-keys``, models are evicted all the
time), a label now and then (so the validation buffer fills), and the odd
spike. Every
``--report-every`` events it prints the resident set size; at the end it
compares the last reading with the one taken once every bound had filled
(after the first ``--warm`` events) and exits 1 if memory grew by more than
``--tolerance-mib``:

    python bench/soak.py [--events 10000000] [--keys 1000] [--max-keys 10000]

It is a benchmark, not a test: it takes minutes (about a minute per million
events on a small machine) and its numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from typing import Any

import numpy as np

from stream_detect.assembly import run_stream
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sinks.base import Sink
from stream_detect.sources.base import RawBatch, Source


def resident_mib() -> float:
    """The current resident set size, in MiB (from /proc; the peak where there is none)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class GeneratedSource(Source):
    """``total`` JSON events made batch by batch from a seeded generator."""

    format_hint = "json"

    def __init__(self, total: int, keys: int, seed: int = 0) -> None:
        self.total = total
        self.keys = keys
        self.made = 0
        self.rng = np.random.default_rng(seed)

    @property
    def exhausted(self) -> bool:
        return self.made >= self.total

    def read_batch(self, max_records: int, linger_s: float, timeout_s: float) -> RawBatch:
        n = min(max_records, self.total - self.made)
        values = self.rng.normal(size=(n, 3))
        values[self.rng.random(n) < 0.001, 0] += 12.0
        keys = self.rng.integers(0, max(self.keys, 1), size=n).tolist()
        labels = self.rng.random(n)
        payloads = []
        for i, (row, key, label) in enumerate(zip(values.tolist(), keys, labels, strict=True)):
            event = self.made + i
            text = f'{{"id":"e{event}","k":"host-{key}","a":{row[0]},"b":{row[1]},"c":{row[2]}'
            if label < 0.01:
                text += ',"label":' + ("1" if row[0] > 6 else "0")
            payloads.append((text + "}").encode())
        positions = [{"line": self.made + i + 1} for i in range(n)]
        self.made += n
        return RawBatch(payloads, positions)

    def resume_token(self) -> dict[str, Any]:
        return {"line": self.made + 1}


class CountingSink(Sink):
    """Counts what it is given and keeps nothing."""

    def __init__(self) -> None:
        self.records = 0

    def write_batch(self, records: Any) -> None:
        self.records += len(records)

    def flush(self) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument(
        "--keys", type=int, default=0, help="distinct keys in the stream (0: one model)"
    )
    parser.add_argument("--max-keys", type=int, default=10_000)
    parser.add_argument("--report-every", type=int, default=1_000_000)
    parser.add_argument("--warm", type=int, default=1_000_000, help="events before the baseline")
    parser.add_argument("--tolerance-mib", type=float, default=16.0)
    args = parser.parse_args()

    readings: list[tuple[int, float]] = []
    started = time.monotonic()
    next_report = [args.report_every]
    source = GeneratedSource(args.events, args.keys)

    def progress(_: int) -> None:
        if source.made >= next_report[0]:
            next_report[0] += args.report_every
            rss = resident_mib()
            readings.append((source.made, rss))
            rate = source.made / (time.monotonic() - started)
            print(f"{source.made:>11,} events  {rss:8.1f} MiB  {rate:9,.0f} events/s", flush=True)

    summary = run_stream(
        RunSettings(emit="all", checkpoint=None),
        DetectorSettings(
            key_field="k" if args.keys else None,
            id_field="id",
            max_keys=args.max_keys,
            retune_seconds=0.0,
        ),
        source=source,
        sink=CountingSink(),
        dead_letter=CountingSink(),
        on_progress=progress,
    )
    baseline = next((rss for made, rss in readings if made >= args.warm), None)
    final = resident_mib()
    print(
        f"events {summary.events:,}, bad {summary.bad_records}, "
        f"models evicted {summary.detector.get('evicted_models')}"
    )
    if baseline is None:
        print("too few events to take a baseline after --warm")
        return 1
    grown = final - baseline
    verdict = "flat" if grown <= args.tolerance_mib else "GREW"
    print(
        f"memory after {args.warm:,} events: {baseline:.1f} MiB; at the end: {final:.1f} MiB "
        f"({grown:+.1f} MiB): {verdict}"
    )
    return 0 if grown <= args.tolerance_mib else 1


if __name__ == "__main__":
    sys.exit(main())
