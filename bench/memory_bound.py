"""Worst-case memory of the keyed state under the default bounds, measured.

Feeds ``max_keys`` distinct keys and ``id_memory`` distinct ids, each of the
longest accepted length (``max_key_bytes``, 256 by default), through the
pipeline, then ``--extra`` more events with new keys and ids (so every bound
is full and evicting), and reports the Python heap held (tracemalloc) with
all of it in memory, and what that is per key:

    python bench/memory_bound.py [--features 3] [--extra 20000]
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from typing import Any

import numpy as np

from stream_detect.pipeline import Pipeline
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sinks.base import Sink
from stream_detect.testing import ListSource


class CountingSink(Sink):
    """Keeps nothing of what it is given."""

    def write_batch(self, records: Any) -> None:
        pass

    def flush(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, default=3)
    parser.add_argument("--extra", type=int, default=20_000)
    args = parser.parse_args()
    run, detector = RunSettings(), DetectorSettings(key_field="k", id_field="id")
    limit, keys, ids = run.max_key_bytes, detector.max_keys, detector.id_memory
    count = max(keys, ids) + args.extra
    rng = np.random.default_rng(0)
    names = [f"f{j}" for j in range(args.features)]
    events = [
        {
            "k": f"{i:0{limit}d}",
            "id": f"{i:0{limit}d}"[::-1],
            **dict(zip(names, row, strict=True)),
        }
        for i, row in enumerate(rng.normal(size=(count, args.features)).tolist())
    ]
    source = ListSource(events)
    del events
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    pipeline = Pipeline(
        run, detector, source=source, sink=CountingSink(), dead_letter=CountingSink()
    )
    summary = pipeline.run()
    gc.collect()
    # The pipeline (and its detector, keyed models, id memory) is still alive here.
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    print(
        f"{summary.events:,} events, {keys:,} keys and {ids:,} ids of {limit} bytes, "
        f"{args.features} features"
    )
    print(f"state held: {held / 2**20:.1f} MiB, {held / keys:,.0f} bytes per key")


if __name__ == "__main__":
    main()
