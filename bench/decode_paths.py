"""The decode stage alone: the orjson and the msgspec bulk paths, against decode-only speed.

Decodes the same generated JSON lines (those of ``bench/run.py``: d normal
features with 1% spikes, plus three string key fields) batch by batch with
:class:`~stream_detect.records.RecordDecoder`, the features given, and prints
events per CPU second of each way side by side with a plain ``orjson.loads``
loop over the lines, in one run. The stages take turns within each round and
the best of ``--repeats`` rounds counts, so a machine busy with other work
slows them alike:

    python bench/decode_paths.py [--events 200000] [--features 8] [--batch-size 1024]

Stages, unkeyed and keyed (``key_field`` the key of 1,000 values):
  orjson.loads                the decode-only reference
  orjson bulk path            one dict per line, read in bulk (every record is a dict)
  msgspec path                one msgspec call per batch, no record read
  msgspec, 1% records read    ... and the records of one event in 100 (alerts only)
  msgspec, all records read   ... and every record (what ``--emit all`` would cost)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import orjson
from run import make_events

from stream_detect.records import RecordDecoder
from stream_detect.records.lazy_records import LazyRecords
from stream_detect.sources.base import RawBatch


def measured(stages: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Least CPU seconds of each stage over ``repeats`` rounds, the stages taking turns."""
    best = dict.fromkeys(stages, float("inf"))
    for _ in range(repeats):
        for label, work in stages.items():
            start = time.process_time()
            work()
            best[label] = min(best[label], time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5, help="rounds; the best of each counts")
    args = parser.parse_args()
    n, d, size = args.events, args.features, args.batch_size
    names = [f"f{j}" for j in range(d)]
    lines = [orjson.dumps(event) for event in make_events(n, d)]
    batches = [
        RawBatch(
            lines[i : i + size], [{"line": i + j + 1} for j in range(len(lines[i : i + size]))]
        )
        for i in range(0, n, size)
    ]

    def decode_only() -> None:
        for line in lines:
            orjson.loads(line)

    def decoding(key_field: str | None, lazy: bool, every: int = 0) -> Callable[[], None]:
        """Decode every batch; with ``every``, read the record of one event in ``every``."""

        def work() -> None:
            decoder = RecordDecoder("json", names, key_field=key_field, lazy_records=lazy)
            for batch in batches:
                decoded = decoder.decode(batch)
                # The path taken shows in the records: lazy only from the msgspec path.
                assert isinstance(decoded.records, LazyRecords) is lazy and not decoded.bad
                if every:
                    records = decoded.records
                    for i in range(0, len(records), every):
                        records[i]

        return work

    stages: dict[str, Callable[[], object]] = {"orjson.loads (decode only)": decode_only}
    for keyed, key_field in (("unkeyed", None), ("keyed", "k1000")):
        stages[f"{keyed}: orjson bulk path"] = decoding(key_field, lazy=False)
        stages[f"{keyed}: msgspec path"] = decoding(key_field, lazy=True)
        stages[f"{keyed}: msgspec, 1% records read"] = decoding(key_field, lazy=True, every=100)
        stages[f"{keyed}: msgspec, all records read"] = decoding(key_field, lazy=True, every=1)
    seconds = measured(stages, args.repeats)
    reference = seconds["orjson.loads (decode only)"]
    print(f"{n:,} events, {d} features + 3 string key fields, batch size {size}, events/CPU s")
    print(f"{'stage':36} {'events/s':>12} {'x decode only':>14} {'x orjson bulk':>14}")
    for label, spent in seconds.items():
        keyed = label.split(":")[0]
        bulk = seconds.get(f"{keyed}: orjson bulk path")
        versus = f"{bulk / spent:14.2f}" if bulk is not None else f"{'':14}"
        print(f"{label:36} {n / spent:12,.0f} {reference / spent:14.2f} {versus}")


if __name__ == "__main__":
    main()
