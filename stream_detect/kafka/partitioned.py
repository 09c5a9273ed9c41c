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
``group`` split the partitions.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stream_detect.atomic import remove_shared_leftovers
from stream_detect.errors import ConfigError, InputError, OutputError, WriteInterrupted
from stream_detect.kafka.feed import PartitionFeed, state_file_name
from stream_detect.kafka.observed import PartitionedSidecar
from stream_detect.kafka.partition_labels import PartitionLabels
from stream_detect.kafka.positions import Partition, position_token
from stream_detect.kafka.redelivery import Replays
from stream_detect.kafka.run_summary import (
    counted,
    detector_summary,
    features_read,
    most_common_reason,
    resumed_from,
)
from stream_detect.kafka.source import KafkaSource
from stream_detect.pipeline import Pipeline, Summary
from stream_detect.pipeline_checkpoint import make_state_folder
from stream_detect.recent import HeldFeedback
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sinks.base import Sink
from stream_detect.sources.base import RawBatch, Source
from stream_detect.stderr_lines import write_stderr

if TYPE_CHECKING:
    from stream_detect.detector import Detector

__all__ = ["PartitionFeed", "PartitionedRun", "state_file_name"]

#: Longest a read waits for a first record before the timers are looked at again.
_POLL_S = 0.1
#: Longest a read may block, so a stop request is honoured within about this.
_MAX_WAIT_S = 1.0


class PartitionedRun:
    """A Kafka source, a pipeline per assigned partition, shared sinks; see the module docstring.

    The caller owns the source and sinks passed in; :meth:`run` closes them.

    Feedback labels (``labels``) join the event they name in whichever
    partition's detector remembers it; a label whose event no partition has
    seen yet is held (bounded by ``id_memory``, shared by the partitions) and
    applied when the event arrives, as a single stream's pipeline does. Each
    partition's checkpoint saves the labels held then, held again when it is
    restored (:mod:`~stream_detect.kafka.partition_labels`); at the end of the
    run those still held go to the dead letters, so none is lost silently.
    """

    #: No detector of its own (each partition's pipeline has one); a reload sees None.
    detector: Detector | None = None

    def __init__(
        self,
        run: RunSettings,
        detector: DetectorSettings,
        *,
        source: KafkaSource,
        sink: Sink,
        dead_letter: Sink,
        labels: Source | None = None,
        observer: PartitionedSidecar | None = None,
        on_warning: Callable[[str], None] | None = None,
        on_features: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if run.checkpoint is not None:
            raise ConfigError(
                "checkpoint", run.checkpoint, "state_dir instead with a kafka:// source"
            )
        if labels is not None and (detector.id_field is None or detector.label_field is None):
            raise ConfigError(
                "labels", run.labels, "an id_field and a label_field too (feedback names events)"
            )
        make_state_folder(run)
        self.run_settings = run
        self.detector_settings = detector
        self.source = source
        self.sink = sink
        self.dead_letter = dead_letter
        self.labels = labels
        self.clock = clock
        self.pipelines: dict[Partition, Pipeline] = {}
        self.feeds: dict[Partition, PartitionFeed] = {}
        self.summary = Summary()
        self._retired: list[Summary] = []
        # Assignments restored from a checkpoint, this run's own included: the
        # assignment lines on stderr count these.
        self.restores = 0
        self.latest: dict[Partition, Pipeline] = {}
        # What the summary's resumed_from names: the position each partition was first
        # restored at from a checkpoint this run did not write, and what else a
        # partition started from (an initial model).
        self._resumed_offsets: dict[Partition, dict[str, Any]] = {}
        self._resumed_otherwise: dict[str, Any] = {}
        # The next offset of this run's last checkpoint of each revoked partition: an
        # eager rebalance hands partitions back, restored from this run's own state.
        self._saved_at: dict[Partition, int] = {}
        self.observer = observer
        self.on_warning = on_warning
        self.on_features = _once_each(on_features)
        # Labels whose event no partition has seen yet; every partition's pipeline
        # looks here for its new events' ids.
        self.held_feedback = HeldFeedback(detector.id_memory)
        self.feedback = PartitionLabels(self)
        self._retired_retunes = 0
        self.stop: threading.Event | None = None
        # False once a result could not be delivered: from then on nothing may be
        # checkpointed or committed (the state would claim undelivered results).
        self._delivered = True
        # Partitions read again below their committed offset: results not written again.
        self.replays = Replays(source, self._say)
        source.on_assigned = self._assign
        source.on_revoked = self._revoke

    # ------------------------------------------------------------ rebalances

    def _assign(self, partitions: list[Partition]) -> None:
        """Build each new partition's pipeline and restore its checkpoint, if any."""
        restored = self.restores
        if self.run_settings.state_dir is not None:
            # The group hands these files to this member now: what killed writers of them
            # left is removed, but not a write another member may still be finishing.
            handed = [state_file_name(p) for p in partitions if p not in self.pipelines]
            remove_shared_leftovers(self.run_settings.state_dir, handed)
        for partition in partitions:
            if partition in self.pipelines:
                continue
            feed = PartitionFeed(self.source, partition)
            checkpoint = None
            if self.run_settings.state_dir is not None:
                checkpoint = str(Path(self.run_settings.state_dir) / state_file_name(partition))
            settings = dataclasses.replace(self.run_settings, checkpoint=checkpoint)
            pipeline = Pipeline(
                settings,
                self.detector_settings,
                source=feed,
                sink=self.sink,
                dead_letter=self.dead_letter,
                on_warning=self.on_warning,
                on_features=self.on_features,
                clock=self.clock,
            )
            pipeline.observer = self.observer
            # What the checkpoint held is held again only if not held or applied since.
            saved_held = pipeline.held_feedback
            from_checkpoint = pipeline.restore()
            # No state yet means nothing learned yet: with a state directory, a partition
            # without a checkpoint learns its events (and their labels) from its start.
            anew = (
                not from_checkpoint
                and checkpoint is not None
                and self.source.address.start == "earliest"
            )
            pipeline.held_feedback = self.held_feedback
            self.feedback.started(
                partition, pipeline, saved_held, accountable=from_checkpoint or anew
            )
            if from_checkpoint:
                self.restores += 1
                self.replays.repositioned(partition)
            elif anew:
                # Not at an offset committed by a member that died before its first
                # checkpoint, or those events would never be learned.
                self.source.seek(position_token({partition: 0}))
                self.replays.repositioned(partition)
            self._note_start(partition, pipeline.summary.resumed_from)
            self.feeds[partition] = feed
            self.pipelines[partition] = pipeline
            self.latest[partition] = pipeline
        names = " ".join(f"{topic}/{number}" for topic, number in sorted(self.pipelines))
        self._say(
            f"partitions assigned: {names or 'none'} "
            f"({self.restores - restored} restored from checkpoints)"
        )

    def _note_start(self, partition: Partition, started: dict[str, Any] | None) -> None:
        """Remember where ``partition``'s pipeline started, unless from this run's own state."""
        if started is None:
            return
        for entry in started.get("offsets", []):
            if entry.get("offset") != self._saved_at.get(partition):
                self._resumed_offsets.setdefault(partition, entry)
        # The group that wrote the checkpoint is this run's (another's is refused).
        others = {k: v for k, v in started.items() if k not in ("offsets", "group")}
        self._resumed_otherwise.update(others)

    def _say(self, text: str) -> None:
        """One line on stderr about the group (rebalances are rare, and worth a line)."""
        write_stderr(f"stream-detect: {self.source.uri}: {text}\n")

    def _revoke(self, partitions: list[Partition]) -> None:
        """Checkpoint and commit each revoked partition, then let it go."""
        for partition in partitions:
            pipeline = self.pipelines.pop(partition, None)
            feed = self.feeds.pop(partition, None)
            if pipeline is None or feed is None:
                continue
            self._retired.append(pipeline.summary)
            if pipeline.detector is not None:
                self._retired_retunes += pipeline.detector.retunes
            if self._delivered:
                written = pipeline.summary.checkpoints
                pipeline.checkpoint()
                if pipeline.summary.checkpoints > written and feed.next_offset is not None:
                    self._saved_at[partition] = feed.next_offset
                self._commit([feed])
            self.replays.forget(partition)
            self.feedback.forget(partition)

    def _commit(self, feeds: list[PartitionFeed]) -> None:
        """Commit the queued offsets of ``feeds`` in one request."""
        offsets = []
        for feed in feeds:
            offset, feed.to_commit = feed.to_commit, None
            if offset is not None and not self.replays.below_committed(feed.partition, offset):
                topic, number = feed.partition
                offsets.append({"topic": topic, "partition": number, "offset": offset})
        if offsets:
            self.source.commit({"offsets": offsets})

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


def _once_each(announce: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """``announce``, called once per distinct line: every partition announces the same features."""
    if announce is None:
        return None
    said: set[str] = set()

    def once(line: str) -> None:
        if line not in said:
            said.add(line)
            announce(line)

    return once
