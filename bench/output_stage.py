"""Cost of the output stage alone (results to JSON lines on /dev/null), against decode-only.

The detector's speed changes from release to release; this isolates what
happens after it: building the records of a batch and writing them. The
events are decoded and scored once, untimed (a fixed epsilon); then every
batch's results are written again and again, ``--emit all`` and alerts only,
through the real file sink. Events per CPU second, with the ratio to a plain
``orjson.loads`` loop over the same lines, and the page faults per 100,000
events of each stage:

    python bench/output_stage.py [--events 100000] [--features 8] [--batch-size 1024]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable

import numpy as np
import orjson

from stream_detect.allocator import hold_freed_memory
from stream_detect.detections import Detections
from stream_detect.records import Decoded, RecordDecoder
from stream_detect.results import ResultBatch
from stream_detect.series import build_detector
from stream_detect.settings import DetectorSettings
from stream_detect.sinks import FileSink
from stream_detect.sources.base import RawBatch


def make_lines(events: int, d: int) -> list[bytes]:
    """JSON lines of normal events with 1% spikes and a host field."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(events, d)).round(6)
    X[rng.random(events) < 0.01] += 8.0
    names = [f"f{j}" for j in range(d)]
    return [
        orjson.dumps({**dict(zip(names, row, strict=True)), "host": f"h{i % 10}"})
        for i, row in enumerate(X.tolist())
    ]


def measured(
    stages: dict[str, Callable[[], object]], repeats: int
) -> dict[str, tuple[float, float]]:
    """Least CPU seconds of each stage over ``repeats`` rounds, and its page faults.

    The stages take turns within each round, so a machine busy with other
    work slows them alike.
    """
    best = dict.fromkeys(stages, float("inf"))
    faults = dict.fromkeys(stages, 0.0)
    for _ in range(repeats):
        for label, work in stages.items():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.process_time()
            work()
            best[label] = min(best[label], time.process_time() - start)
            faults[label] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return {label: (best[label], faults[label]) for label in stages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    hold_freed_memory()  # as `stream-detect run` does
    lines = make_lines(args.events, args.features)
    decoder = RecordDecoder("json")
    settings = DetectorSettings(log_epsilon=-40.0, retune_every=0)
    scored: list[tuple[Decoded, Detections]] = []
    detector = None
    for start in range(0, len(lines), args.batch_size):
        chunk = lines[start : start + args.batch_size]
        decoded = decoder.decode(
            RawBatch(chunk, [{"line": start + i + 1} for i in range(len(chunk))])
        )
        if detector is None:
            detector = build_detector(settings, decoder.features or [])
        values, _ = detector.transform(decoded.values)
        scored.append((decoded, detector.process(values, decoded.labels, decoded.keys)))

    def decode_only() -> None:
        for line in lines:
            orjson.loads(line)

    def output(emit: str) -> Callable[[], None]:
        def work() -> None:
            sink = FileSink(os.devnull)
            for decoded, found in scored:
                sink.write_batch(ResultBatch.of(decoded, found, emit=emit))
                sink.flush()
            sink.close()

        return work

    n = len(lines)
    alerts = sum(int(found.alert.sum()) for _, found in scored)
    print(f"{n:,} events, d = {args.features}, batch size {args.batch_size}, {alerts:,} alerts")
    print(f"{'stage':28} {'events/s':>12} {'x decode':>9} {'faults/100k':>12}")
    results = measured(
        {
            "orjson.loads (decode only)": decode_only,
            "output, --emit all": output("all"),
            "output, alerts only": output("alerts"),
        },
        args.repeats,
    )
    decode_seconds = results["orjson.loads (decode only)"][0]
    for label, (seconds, faults) in results.items():
        print(
            f"{label:28} {n / seconds:12,.0f} {decode_seconds / seconds:9.2f} "
            f"{faults * 100_000 / n:12,.0f}"
        )


if __name__ == "__main__":
    main()
