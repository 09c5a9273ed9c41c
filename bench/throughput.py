"""Throughput of the read -> decode -> score -> write path against decode-only speed.

Runs every stage on the same generated JSON lines in one process and prints
events per second and the ratio to orjson decoding alone, side by side, so the
numbers are comparable on whatever machine runs it (each stage runs
``--repeats`` times and its best run counts):

    python bench/throughput.py [--events 200000] [--features 8] [--batch-size 4096]

Stages:
  orjson.loads          decode only: the floor every JSON pipeline pays
  RecordDecoder         decode + validation + arrays
  Detector (numpy)      exact prequential scoring of ready arrays
  per-event loop        the same scores from Welford updates one event at a time
  river GaussianScorer  river's per-event scorers, one per feature
  end to end            file source -> decode -> detect -> JSON sink (to /dev/null),
                        writing only the alerts, then every event
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable

import numpy as np
import orjson

from stream_detect.assembly import run_stream
from stream_detect.density import diagonal_log_pdf, floor_variance
from stream_detect.detector import Detector
from stream_detect.records import RecordDecoder
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sources.base import RawBatch
from stream_detect.stats import RunningMoments


def _timed(label: str, events: int, work: Callable[[], object], repeats: int) -> tuple[str, float]:
    """Best rate of ``repeats`` runs: the least disturbed by whatever else the machine does."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return label, events / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=8)
    # What `stream-detect run` uses unless told otherwise: the batches users get.
    parser.add_argument("--batch-size", type=int, default=RunSettings().batch_size)
    parser.add_argument("--loop-events", type=int, default=20_000, help="events for slow loops")
    parser.add_argument("--repeats", type=int, default=3, help="runs per stage; the best counts")
    args = parser.parse_args()
    n, d, batch = args.events, args.features, args.batch_size
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    names = [f"f{j}" for j in range(d)]
    lines = [orjson.dumps(dict(zip(names, row.tolist(), strict=True))) for row in X]
    positions = [{"line": i + 1, "offset": 0} for i in range(n)]
    labels = np.full(n, -1, dtype=np.int8)
    settings = DetectorSettings(log_epsilon=-40.0, retune_every=0, retune_labels=0)

    def decode_only() -> None:
        for line in lines:
            orjson.loads(line)

    def record_decoder() -> None:
        decoder = RecordDecoder("json", names)
        for i in range(0, n, batch):
            decoder.decode(RawBatch(lines[i : i + batch], positions[i : i + batch]))

    def detector_numpy() -> None:
        detector = Detector(settings, names)
        for i in range(0, n, batch):
            detector.process(X[i : i + batch], labels[i : i + batch])

    loop_n = min(n, args.loop_events)

    def per_event_loop() -> None:
        state = RunningMoments(d)
        for x in X[:loop_n]:
            if state.n:
                var = floor_variance(state.var, state.mean)
                diagonal_log_pdf(x[None, :], state.mean, var)
            state.update(x)

    def river_scorers() -> None:
        from river import anomaly

        scorers = [anomaly.GaussianScorer() for _ in range(d)]
        for row in X[:loop_n].tolist():
            for scorer, value in zip(scorers, row, strict=True):
                scorer.score_one(None, value)
                scorer.learn_one(None, value)

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "events.jsonl")
        with open(path, "wb") as handle:
            handle.write(b"\n".join(lines) + b"\n")

        def end_to_end(emit: str) -> Callable[[], None]:
            def work() -> None:
                run = RunSettings(
                    source=f"file:{path}",
                    sink=f"file:{os.devnull}",
                    batch_size=batch,
                    emit=emit,
                    summary=False,
                )
                run_stream(run, settings)

            return work

        repeats = args.repeats
        results = [
            _timed("orjson.loads (decode only)", n, decode_only, repeats),
            _timed("RecordDecoder", n, record_decoder, repeats),
            _timed("Detector, exact numpy", n, detector_numpy, repeats),
            _timed("per-event Welford loop", loop_n, per_event_loop, repeats),
            _timed(f"river GaussianScorer x{d}", loop_n, river_scorers, repeats),
            _timed("end to end, --emit alerts", n, end_to_end("alerts"), repeats),
            _timed("end to end, --emit all", n, end_to_end("all"), repeats),
        ]
    reference = results[0][1]
    print(f"{n} events, {d} features, batch size {batch}")
    print(f"{'stage':32} {'events/s':>12} {'vs decode only':>15}")
    for label, rate in results:
        print(f"{label:32} {rate:12,.0f} {rate / reference:14.2f}x")
    for label, rate in results[-2:]:
        print(f"{label} runs at 1/{reference / rate:.1f} of decode-only speed")


if __name__ == "__main__":
    main()
