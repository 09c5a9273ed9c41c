"""The pipelines of a consumer group member's partitions, one per partition, made as assigned.

:class:`PartitionPipelines` is what a
:class:`~stream_detect.kafka.partitioned.PartitionedRun` holds, and how it
follows the group's rebalances:

* when the group assigns a partition, its pipeline is made, fed by a
  :class:`~stream_detect.kafka.feed.PartitionFeed` of its records, and its
  state restored from the partition's checkpoint in ``state_dir`` (the
  temporary files killed writers left are removed first, but not one another
  member may still be writing); with a ``state_dir``, a partition without a
  checkpoint, read from ``earliest``, learns its events from offset 0;
* when the group revokes a partition, its pipeline is checkpointed and its
  offsets committed (unless a result could not be delivered), then let go;
  its counts stay in the run's.

The feedback labels of the partitions are
:mod:`~stream_detect.kafka.partition_labels`'s, results read again below the
committed offset :mod:`~stream_detect.kafka.redelivery`'s.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stream_detect.atomic import remove_shared_leftovers
from stream_detect.errors import ConfigError
from stream_detect.kafka.feed import PartitionFeed, state_file_name
from stream_detect.kafka.observed import PartitionedSidecar
from stream_detect.kafka.partition_labels import PartitionLabels
from stream_detect.kafka.positions import Partition, position_token
from stream_detect.kafka.redelivery import Replays
from stream_detect.kafka.source import KafkaSource
from stream_detect.pipeline import Pipeline, Summary
from stream_detect.pipeline_checkpoint import make_state_folder
from stream_detect.recent import HeldFeedback
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sinks.base import Sink
from stream_detect.sources.base import Source
from stream_detect.stderr_lines import write_stderr

if TYPE_CHECKING:
    from stream_detect.detector import Detector

__all__ = ["PartitionPipelines"]


class PartitionPipelines:
    """The assigned partitions' pipelines, and the source and sinks they share (see the module).

    How the records are read and handed to the pipelines is the subclass's
    (:class:`~stream_detect.kafka.partitioned.PartitionedRun`).
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
