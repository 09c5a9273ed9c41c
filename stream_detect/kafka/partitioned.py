"""A Kafka source run with one detector per partition, its state checkpointed per partition.

State belongs to a partition: each assigned topic partition gets its own
:class:`~stream_detect.pipeline.Pipeline` (its own models, validation buffer
and ε), fed only that partition's records. Without a key field that is one
model per partition; with one, a key's events all sit on the partition the
producer's partitioner hashes it to, so its model lives there too.

The guarantees, per partition:

* **at-least-once results**: a batch is scored, its results and dead letters
  written and flushed (acknowledged), and only then its offsets committed;
  a partition restored below the group's committed offset learns those
  records again but does not write their results again
  (:mod:`~stream_detect.kafka.redelivery`), so a crash duplicates at most
  the results of the batch in flight (produced, not yet committed);
* **exactly-once learning**: with ``state_dir``, the partition's detector
  state is checkpointed (``TOPIC-PARTITION.json``, written atomically, JSON)
  with the next offset it reflects; when the group assigns the partition,
  here or to another process sharing the directory, the state is restored
  and the consumer continues at that offset, so no event is learned twice and
  none is skipped (a partition without a checkpoint starts at its beginning);
  the temporary files that writers killed while writing it left are removed
  then, but not one another member may still be writing
  (:func:`~stream_detect.atomic.remove_shared_leftovers`);
* **rebalances**: a revoked partition is checkpointed and committed before
  the group hands it on;
* **stop** (SIGTERM): the batch in hand is finished, every partition is
  checkpointed and committed, and the group is left. If the broker is
  unreachable the run still stops within a couple of seconds, leaving the
  checkpoints of what was delivered.

Scale-out is Kafka's consumer group: several processes with the same
``group`` split the partitions. What happens when the group assigns or
revokes a partition is :mod:`~stream_detect.kafka.partition_pipelines`'s.
"""

from __future__ import annotations

import threading
from typing import Any

from stream_detect.errors import InputError, OutputError, WriteInterrupted
from stream_detect.kafka.partition_pipelines import PartitionPipelines
from stream_detect.kafka.positions import Partition
from stream_detect.kafka.run_summary import (
    counted,
    detector_summary,
    features_read,
    most_common_reason,
    resumed_from,
)
from stream_detect.pipeline import Summary
from stream_detect.sources.base import RawBatch

__all__ = ["PartitionedRun"]

#: Longest a read waits for a first record before the timers are looked at again.
_POLL_S = 0.1
#: Longest a read may block, so a stop request is honoured within about this.
_MAX_WAIT_S = 1.0


class PartitionedRun(PartitionPipelines):
    """A Kafka source, a pipeline per assigned partition, shared sinks; see the module docstring.

    The caller owns the source and sinks passed in; :meth:`run` closes them.

    Feedback labels (``labels``) join the event they name in whichever
    partition's detector remembers it; a label whose event no partition has
    seen yet is held (bounded by ``id_memory``, shared by the partitions) and
    applied when the event arrives, as a single stream's pipeline does. Each
    partition's checkpoint saves the labels held then, held again when it is
    restored (:mod:`~stream_detect.kafka.partition_labels`); at the end of the
    run those still held go to the dead letters, so none is lost silently.

    The pipelines, made and let go as the group rebalances, are
    :class:`~stream_detect.kafka.partition_pipelines.PartitionPipelines`';
    this class runs them: records read, handed to their partitions, committed.
    """

    # ------------------------------------------------------------------ loop

    def run(self, stop: threading.Event | None = None) -> Summary:
        """Process until ``stop`` is set (or, with ``until=end``, the topics are read)."""
        stop = self.stop = stop or threading.Event()
        self.source.abandon = stop
        # A sink waiting on its destination (a broker retried, a pipe nobody reads)
        # gives up once the run is asked to stop.
        self.sink.interrupt_on(stop)
        self.dead_letter.interrupt_on(stop)
        started = self.clock()
        run = self.run_settings
        linger = run.max_latency_ms / 2000.0
        wait = min(max(_POLL_S, linger), _MAX_WAIT_S)
        delivered = True
        try:
            while not stop.is_set():
                batch = self.source.read_batch(run.batch_size, linger, wait)
                self._step(batch)
                if self.source.exhausted:
                    break
            else:
                self.summary.stopped_by = "signal"
            self._poll_labels()
            for pipeline in self.pipelines.values():
                pipeline.checkpoint()
            self._commit(list(self.feeds.values()))
            self.feedback.release_held()
        except WriteInterrupted:
            delivered = self._delivered = False
            self.summary.stopped_by = "signal, output stalled"
        except (OutputError, InputError):
            # What was not delivered must be neither committed nor checkpointed.
            delivered = self._delivered = False
            if not stop.is_set():
                raise
            self.summary.stopped_by = "signal (broker unreachable)"
        except BaseException:
            # Closing the consumer hands its partitions back (the revoke callback): after
            # an error mid-batch (a checkpoint that cannot be written) nothing more may be
            # checkpointed or committed there, nor may a second error hide the first.
            delivered = self._delivered = False
            raise
        finally:
            self._close(delivered)
        self.summary.seconds = round(self.clock() - started, 3)
        self._total()
        return self.summary

    def _step(self, batch: RawBatch) -> None:
        """Hand each partition its records (or nothing, for its timers), then commit."""
        by_partition: dict[Partition, tuple[list[bytes], list[dict[str, Any]]]] = {}
        for payload, position in zip(batch.payloads, batch.positions, strict=True):
            payloads, positions = by_partition.setdefault(
                (position["topic"], position["partition"]), ([], [])
            )
            payloads.append(payload)
            positions.append(position)
        replays = self.replays
        for partition, pipeline in list(self.pipelines.items()):
            part = RawBatch(*by_partition.get(partition, ([], [])))
            feed = self.feeds[partition]
            if len(part):
                replays.start(partition, int(part.positions[0]["offset"]))
                feed.advance(part)
            # Set each turn: a reload may have opened a new sink for the run meanwhile.
            pipeline.sink, pipeline.dead_letter = replays.sinks(
                partition, pipeline.summary, self.sink, self.dead_letter
            )
            pipeline.process_batch(part)
            replays.read_to(partition, feed.next_offset)
        self._commit(list(self.feeds.values()))
        self._poll_labels()
        if self.observer is not None:
            self.observer.after_step(self)

    def _poll_labels(self) -> None:
        """Give each waiting feedback label to the partition that remembers its event."""
        if self.labels is not None:
            self.feedback.apply_waiting(self.labels)

    def _close(self, delivered: bool) -> None:
        for closer in (self.sink.close, self.dead_letter.close):
            try:
                closer()
            except (OSError, OutputError):
                if delivered:
                    raise
        not_delivered = getattr(self.sink, "not_delivered", None)
        if isinstance(not_delivered, int):
            # A best-effort sink (Alertmanager) counts what it could not deliver, once closed.
            self.summary.alertmanager_not_delivered = not_delivered
        self.source.close()
        if self.labels is not None:
            self.labels.close()

    def totals(self) -> Summary:
        """The run's counts so far: its partitions' (revoked ones too) with its own feedback's."""
        parts = self._retired + [pipeline.summary for pipeline in self.pipelines.values()]
        return counted(self.summary, parts)

    def retunes(self) -> int:
        """Times ε was re-chosen by this member's partitions, revoked ones included."""
        current = [p.detector.retunes for p in self.pipelines.values() if p.detector is not None]
        return self._retired_retunes + sum(current)

    def _total(self) -> None:
        """Add up the partitions' summaries into this run's."""
        self.summary = self.totals()
        self.summary.features = features_read(self.latest)
        # A partition's dead letters after its last scored event; a partition handed
        # back to this member starts counting afresh (another may have scored since).
        self.summary.bad_reason = most_common_reason(
            self.latest[partition].watches.unusable.reasons for partition in sorted(self.latest)
        )
        self.summary.resumed_from = resumed_from(self._resumed_otherwise, self._resumed_offsets)
        # The partitions resumed_from lists: a rebalance that hands a partition back
        # restores this run's own state, which is no more a restore than not stopping.
        self.summary.detector = detector_summary(self.latest, len(self._resumed_offsets))
