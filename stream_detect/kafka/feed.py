"""One partition of a Kafka source, as the pipeline of that partition sees its source."""

from __future__ import annotations

from typing import Any

from stream_detect.errors import ModelError
from stream_detect.kafka.positions import Partition, position_token
from stream_detect.kafka.source import KafkaSource
from stream_detect.records.batch import BadRecord
from stream_detect.sources.base import RawBatch, Source

__all__ = ["PartitionFeed", "state_file_name"]


def state_file_name(partition: Partition) -> str:
    """The checkpoint file of one topic partition in the state directory.

    >>> state_file_name(("events", 3))
    'events-3.json'
    """
    topic, number = partition
    return f"{topic}-{number}.json"


class PartitionFeed(Source):
    """The position of one partition, as that partition's pipeline sees its source.

    The runner reads from Kafka and hands each partition's records to its
    pipeline; the pipeline's calls come back here: :meth:`seek` (a restored
    checkpoint) tells the consumer where to continue, :meth:`commit` queues
    the partition's offset for the runner's next commit.
    """

    resumable = True

    def __init__(self, kafka_source: KafkaSource, partition: Partition) -> None:
        self.uri = f"{kafka_source.uri}#{partition[0]}/{partition[1]}"
        self.kafka_source = kafka_source
        self.partition = partition
        self.next_offset: int | None = None
        self.to_commit: int | None = None

    def read_batch(self, max_records: int, linger_s: float, timeout_s: float) -> RawBatch:
        """Nothing: the runner hands this partition's records to its pipeline."""
        return RawBatch()

    @property
    def exhausted(self) -> bool:
        """Never: the runner decides when the topic has ended."""
        return False

    def advance(self, batch: RawBatch) -> None:
        """Note that ``batch``, this partition's next records, is being processed."""
        self.next_offset = int(batch.positions[-1]["offset"]) + 1

    def resume_token(self) -> dict[str, Any]:
        """This partition's next offset, as :class:`KafkaSource` tokens hold it."""
        if self.next_offset is None:
            return position_token({})
        return position_token({self.partition: self.next_offset})

    def identity(self) -> dict[str, Any]:
        """The consumer group reading this partition, kept beside its offset in a checkpoint."""
        return {"group": self.kafka_source.address.group}

    def seek(self, token: dict[str, Any]) -> None:
        """Continue this partition at the offset of ``token`` (a restored checkpoint).

        Raises
        ------
        ModelError
            The checkpoint was written by another consumer group. Two groups
            sharing a state directory would each resume at the other's offset,
            and one of them never see what came before it. (A checkpoint that
            names no group, written before groups were kept, is taken.)
        """
        group = self.kafka_source.address.group
        written_by = token.get("group", group)
        if written_by != group:
            raise ModelError(
                f"checkpoint {state_file_name(self.partition)} in the state directory was "
                f"written by consumer group {written_by!r}, and this run's group is {group!r}: "
                "a state directory belongs to one group (give each group its own --state-dir)"
            )
        mine = [
            entry
            for entry in token.get("offsets", [])
            if (entry.get("topic"), entry.get("partition")) == self.partition
        ]
        if mine:
            self.next_offset = int(mine[0]["offset"])
            self.kafka_source.seek({"offsets": mine})

    def told_bad(self, bad: list[BadRecord]) -> list[BadRecord]:
        """``bad`` as the Kafka source tells them (each value as it was sent)."""
        return self.kafka_source.told_bad(bad)

    def commit(self, token: dict[str, Any]) -> None:
        """Queue this partition's offset in ``token`` for the runner's next commit."""
        for entry in token.get("offsets", []):
            self.to_commit = int(entry["offset"])
