"""The feedback labels reader of a Kafka run: every partition of the topics, rewound on demand.

Feedback may name an event of any partition, so every member of the group
reads the labels topics whole: :class:`LabelsReader` is assigned all their
partitions instead of joining the group for a share of them. Where it reads
each one from is decided when it connects, in this order:

* the earliest offset a rewind (:meth:`LabelsReader.rewind`, a restored
  events partition's labels position) asked for before then; a rewind reads
  a labels partition it does not name from offset 0, since the events
  partition restored had read nothing of it;
* else the group's committed offset (else where ``from=`` says).

The reader commits outside any group's membership (it is assigned, it does
not join), and a broker takes such commits for a group only while the group
has no members. So the labels are never committed under the events' group,
which the run's members have joined: :func:`labels_address` gives them a
group of their own.

Once connected it knows every partition's next offset
(:meth:`LabelsReader.next_offsets`), before any label was read, and a
rewind repositions it at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import kafka
from kafka import errors as kafka_errors

from stream_detect.kafka.address import KafkaAddress
from stream_detect.kafka.positions import Partition
from stream_detect.kafka.source import KafkaSource
from stream_detect.kafka.status import error_reason

__all__ = ["LabelsReader", "labels_address"]

#: How long connecting waits for the broker to say where a partition's reading starts.
_POSITION_MS = 5000


def labels_address(labels: KafkaAddress, events: KafkaAddress) -> KafkaAddress:
    """``labels``, committing under ``GROUP-labels`` if its group is the events' ``GROUP``.

    Both groups are ``stream-detect`` unless the URIs name them; the events'
    group has members, so a broker would refuse every labels commit made in it.

    >>> from stream_detect.kafka.address import parse_kafka_uri
    >>> from stream_detect.sources import parse_uri
    >>> def address(uri: str) -> KafkaAddress:
    ...     return parse_kafka_uri(parse_uri(uri))
    >>> events = address("kafka://b:9092/events?group=detectors")
    >>> labels_address(address("kafka://b:9092/feedback?group=detectors"), events).group
    'detectors-labels'
    >>> labels_address(address("kafka://b:9092/feedback?group=mine"), events).group
    'mine'
    """
    if labels.group != events.group:
        return labels
    return dataclasses.replace(labels, group=f"{labels.group}-labels")


class LabelsReader(KafkaSource):
    """Every partition of the address's topics, read from where rewinds or commits say.

    Offsets are still committed for the group; see the module docstring for
    where a reader starts.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Before connecting: the offset the partitions no seek names start at (None:
        #: at the group's committed offset).
        self._rest: int | None = None

    def _start_reading(self, consumer: kafka.KafkaConsumer) -> bool:
        """Assign every partition of the topics and learn where each is read from."""
        partitions = [
            kafka.TopicPartition(topic, number)
            for topic in self.address.topics
            for number in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            self.link.failed(f"no partitions of {', '.join(self.address.topics)} yet")
            return False
        consumer.assign(partitions)
        starts: dict[Partition, int] = {}
        try:
            for tp in partitions:
                key = (tp.topic, tp.partition)
                start = self._seeks.get(key, self._rest)
                if start is None:
                    # The committed offset (or from=): asked now, so the start is known.
                    start = consumer.position(tp, timeout_ms=_POSITION_MS)
                if start is None:
                    self.link.failed(f"where to read {tp.topic}/{tp.partition} from is not known")
                    return False
                starts[key] = int(start)
        except kafka_errors.KafkaError as exc:
            self.link.failed(error_reason(exc))
            return False
        for key, start in starts.items():
            self._place(consumer, key, start)
        self._seeks.clear()
        self._rest = None
        return True

    def next_offsets(self) -> dict[Partition, int] | None:
        """The next offset of every partition, or None before the reader has connected."""
        return None if self._consumer is None else dict(self._next)

    def seek(self, token: dict[str, Any]) -> None:
        """Continue each partition of ``token`` at its offset: at once once connected."""
        if self._consumer is None:
            super().seek(token)
            return
        for partition, offset in self._offsets(token).items():
            self._place(self._consumer, partition, offset)

    def rewind(self, position: Mapping[Partition, int]) -> None:
        """Read each partition again from no later than ``position``; one it does not name from 0.

        A partition already read from (or due to be read from) an earlier
        offset keeps it: a rewind never moves the reader forward.

        >>> from stream_detect.kafka.address import parse_kafka_uri
        >>> from stream_detect.sources import parse_uri
        >>> reader = LabelsReader(parse_kafka_uri(parse_uri("kafka://127.0.0.1:9/l")))
        >>> reader.rewind({("l", 0): 7, ("l", 1): 3})
        >>> reader.rewind({("l", 0): 9})
        >>> reader._seeks, reader._rest
        ({('l', 0): 7}, 0)
        """
        if self._consumer is not None:
            for partition, next_offset in list(self._next.items()):
                start = position.get(partition, 0)
                if start < next_offset:
                    self._place(self._consumer, partition, start)
            return
        seeks = {}
        for partition, start in position.items():
            earlier = self._seeks.get(partition, self._rest)
            seeks[partition] = start if earlier is None else min(start, earlier)
        # Every partition not named here is read from 0: an earlier seek of one is later.
        self._seeks = seeks
        self._rest = 0
