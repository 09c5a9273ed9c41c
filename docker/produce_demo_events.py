"""Demo events for the compose stack: the demo's synthetic hosts, sent to Kafka at a steady rate.

Run by the ``producer`` service of ``docker/compose.yaml`` with the detector's
own image (which holds the package and kafka-python):

    python /demo/produce_demo_events.py kafka:9092 events 50
"""

from __future__ import annotations

import sys
import time

import orjson
from kafka import KafkaProducer

from stream_detect.synthetic import generate_events


def main(bootstrap: str, topic: str, per_second: float) -> None:
    """Send the demo stream to ``topic``, ``per_second`` events a second, forever."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    seed = 0
    while True:
        for event in generate_events(20_000, seed).events:
            event["event_id"] = f"{seed}-{event.pop('id')}"
            producer.send(topic, orjson.dumps(event))
            time.sleep(1.0 / per_second)
        seed += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
