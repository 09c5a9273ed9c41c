"""The results a restored partition's replay would write again: delivered before, withheld.

A partition restored from a checkpoint is read again from the offset its
state reflects, which may lie far below the offset the consumer group last
committed for it (a member killed between two checkpoints; a partition with
no checkpoint at all, read from its beginning). Those records are scored and
learned again, so the state ends as one uninterrupted run's, but their
results and dead letters were produced and acknowledged before that commit
(a batch's offsets are committed only after its results are flushed):
writing them again would only duplicate them.

:class:`DeliveredBefore` stands in for a partition's sink and dead-letter
sink while its replay lasts: it passes on everything of records at or after
the committed offset (and anything of other partitions or topics, such as
the dead letters of feedback labels) and counts the rest in the summary's
``already_delivered``. :class:`Replays` keeps track of which partitions are
being read again: the committed offset is asked for once per assignment of a
repositioned partition (one request), when its first records come.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from stream_detect.kafka.positions import Partition
from stream_detect.kafka.source import KafkaSource
from stream_detect.results import ResultBatch
from stream_detect.sinks.base import Sink
from stream_detect.summary import Summary

__all__ = ["DeliveredBefore", "Replays", "replay_line"]


def replay_line(partition: Partition, start: int, committed: int) -> str:
    """What stderr says once when ``partition`` is read again below its committed offset.

    >>> replay_line(("events", 2), 100, 250)
    'partition events/2: re-reading offsets 100..249 to rebuild its state; their results were delivered before and are not written again'
    """  # noqa: E501
    topic, number = partition
    return (
        f"partition {topic}/{number}: re-reading offsets {start}..{committed - 1} to rebuild "
        "its state; their results were delivered before and are not written again"
    )


class DeliveredBefore(Sink):
    """``sink`` less the records of ``partition`` below offset ``until``, counted in ``summary``.

    Parameters
    ----------
    sink
        The shared sink (results or dead letters); flushed and closed by its owner.
    partition
        The partition whose records are withheld.
    until
        The group's committed offset of that partition: records below it were delivered.
    summary
        The partition pipeline's summary; ``already_delivered`` counts what was withheld.

    >>> class Kept(Sink):
    ...     def __init__(self) -> None:
    ...         self.records: list[Mapping[str, Any]] = []
    ...     def write_batch(self, records: Sequence[Mapping[str, Any]]) -> None:
    ...         self.records += records
    ...     def flush(self) -> None: ...
    >>> shared, summary = Kept(), Summary()
    >>> sink = DeliveredBefore(shared, ("t", 0), 5, summary)
    >>> where = [{"topic": "t", "partition": 0, "offset": offset} for offset in (3, 5)]
    >>> sink.write_batch([{"position": position} for position in where])
    >>> [r["position"]["offset"] for r in shared.records], summary.already_delivered
    ([5], 1)
    """

    def __init__(self, sink: Sink, partition: Partition, until: int, summary: Summary) -> None:
        self.sink = sink
        self.uri = sink.uri
        self.partition = partition
        self.until = until
        self.summary = summary

    def write_batch(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Pass on the records not delivered before, in order; count the others."""
        kept = self._kept(records)
        withheld = len(records) - len(kept)
        if withheld:
            self.summary.already_delivered = (self.summary.already_delivered or 0) + withheld
        if len(kept):
            self.sink.write_batch(kept)

    def flush(self) -> None:
        """Flush the shared sink (what this partition wrote to it)."""
        self.sink.flush()

    def close(self) -> None:
        """Nothing: the shared sink is its owner's to close."""

    def _delivered(self, position: Any) -> bool:
        """True for a position of this partition below the committed offset."""
        if not isinstance(position, Mapping):
            return False
        where = (position.get("topic"), position.get("partition"))
        offset = position.get("offset")
        return where == self.partition and isinstance(offset, int) and offset < self.until

    def _kept(self, records: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
        if isinstance(records, ResultBatch):
            # Kept a result batch, so the sink still encodes it column by column.
            positions = records.decoded.positions
            rows = records.rows
            keep = np.array([not self._delivered(positions[i]) for i in rows.tolist()], dtype=bool)
            if keep.all():
                return records
            return ResultBatch(records.decoded, records.found, rows[keep])
        return [record for record in records if not self._delivered(record.get("position"))]


class Replays:
    """The partitions read again below their group's committed offset; see the module docstring.

    Parameters
    ----------
    source
        The Kafka source, asked for the committed offsets.
    say
        Writes one line on stderr (the start of each replay).
    """

    def __init__(self, source: KafkaSource, say: Callable[[str], None]) -> None:
        self.source = source
        self.say = say
        #: Partitions repositioned at their assignment (a restored checkpoint, or their
        #: beginning), whose committed offset is not known yet.
        self._unasked: set[Partition] = set()
        #: The committed offset of each partition being read again below it.
        self._until: dict[Partition, int] = {}

    def repositioned(self, partition: Partition) -> None:
        """Note that ``partition``, just assigned, is read from an offset of this run's choosing."""
        self._unasked.add(partition)
        self._until.pop(partition, None)

    def forget(self, partition: Partition) -> None:
        """``partition`` was revoked: a later assignment starts over."""
        self._unasked.discard(partition)
        self._until.pop(partition, None)

    def start(self, partition: Partition, first_offset: int) -> None:
        """Before ``partition``'s records from ``first_offset`` on are handed to its pipeline.

        The first call after a repositioning asks the broker for the committed
        offset, and when the records lie below it starts a replay (one line on
        stderr); later calls do nothing.
        """
        if partition not in self._unasked:
            return
        self._unasked.discard(partition)
        committed = self.source.committed(partition)
        if committed is not None and first_offset < committed:
            self._until[partition] = committed
            self.say(replay_line(partition, first_offset, committed))

    def sinks(
        self, partition: Partition, summary: Summary, sink: Sink, dead_letter: Sink
    ) -> tuple[Sink, Sink]:
        """The results and dead-letter sinks of ``partition``'s pipeline for its next batch."""
        until = self._until.get(partition)
        if until is None:
            return sink, dead_letter
        return (
            DeliveredBefore(sink, partition, until, summary),
            DeliveredBefore(dead_letter, partition, until, summary),
        )

    def read_to(self, partition: Partition, next_offset: int | None) -> None:
        """``partition`` was read up to ``next_offset``: its replay ends at the committed offset."""
        until = self._until.get(partition)
        if until is not None and next_offset is not None and next_offset >= until:
            del self._until[partition]

    def below_committed(self, partition: Partition, offset: int) -> bool:
        """True while committing ``offset`` would move the group's commit of ``partition`` back.

        A replay's own commits are held back: were the run to end mid-replay,
        the next one must still know what was delivered.
        """
        until = self._until.get(partition)
        return until is not None and offset < until
