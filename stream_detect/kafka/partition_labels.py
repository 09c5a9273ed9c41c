"""Feedback labels of a partitioned Kafka run: joined in any partition, applied once per partition.

Every member reads the labels topic whole (feedback may name an event of any
partition) and gives each label to the partition whose detector remembers
its event. A partition's checkpoint keeps the labels position it had read to
when saved (``labels`` of :class:`~stream_detect.state.Checkpoint`), so the
labels it learned from are those before that position. When a partition is
restored, the labels topic is read again from its position (the earliest
among the partitions restored; a labels partition it does not name from 0:
:meth:`~stream_detect.kafka.labels_reader.LabelsReader.rewind`), whether the
reader has connected or not and whatever offset the labels group committed,
and each label read is offered only to the partitions that had not read it:
a label the restored partition learned after its checkpoint (lost with a
killed member) is learned again, one that another partition has is not
given to it twice. A label read again (by this run, or by a partition before
its checkpoint) that no partition that lacked it can join is held as on its
first reading, unless a partition that had it remembers its event (it was
applied there), so none is lost and none is held twice; and the labels
held when a partition's rewind starts that it reads again are let go of then,
so one whose event comes meanwhile is not applied from the hold and again as
read. Held labels saved with the checkpoint are held again on the same terms.

A partition whose state has read no label yet reads them all, from the
start of every labels partition: one restored from a checkpoint without a
labels position (saved before its member's reader had connected, or by an
earlier version), and one without a checkpoint that learns its events anew
from their beginning (``--state-dir``, ``from=earliest``). Either may have
had labels applied by a member killed before its next checkpoint, and
neither that member's reader start nor the labels' commit (which moves on
as the labels are read, checkpointed or not) says where those were. A
partition without a checkpoint read from the group's offset (``from=latest``,
or no state directory), which learns the events before it never, takes the
labels from where the reader is: a member killed before its first
checkpoint loses the labels it had applied there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stream_detect.kafka.labels_reader import LabelsReader
from stream_detect.kafka.positions import Partition, position_token, token_offsets
from stream_detect.label_feedback import FeedbackLabels, count_joined
from stream_detect.recent import Feedback, HeldFeedback
from stream_detect.sources.base import Source

if TYPE_CHECKING:
    from stream_detect.kafka.partition_pipelines import PartitionPipelines
    from stream_detect.pipeline import Pipeline

__all__ = ["PartitionLabels"]

#: Labels topic partition -> the next offset read.
LabelsPosition = dict[Partition, int]


def as_position(token: dict[str, Any] | None) -> LabelsPosition | None:
    """The offsets of a Kafka position token, or None if it is none.

    >>> as_position({"offsets": [{"topic": "l", "partition": 0, "offset": 4}]})
    {('l', 0): 4}
    >>> as_position({"line": 3}) is None
    True
    """
    try:
        return token_offsets(token or {})
    except (KeyError, TypeError, ValueError):
        return None


class PartitionLabels(FeedbackLabels):
    """The feedback labels of a :class:`~stream_detect.kafka.partitioned.PartitionedRun`.

    See the module docstring.
    """

    def __init__(self, run: PartitionPipelines) -> None:
        super().__init__(run)
        self.partitioned = run
        #: Event partition -> the labels position it has read to.
        self.read_to: dict[Partition, LabelsPosition] = {}
        #: The furthest labels position this run has read to: a label before it is read again.
        self.high: LabelsPosition = {}
        #: The reader's position the partitions' labels positions were last brought up to.
        self._told: LabelsPosition = {}

    def started(
        self, partition: Partition, pipeline: Pipeline, held: HeldFeedback, *, accountable: bool
    ) -> None:
        """Give ``partition`` (just assigned) its labels position; read again what it lacks.

        ``accountable``: it was restored from a checkpoint, or learns its events
        anew from their beginning; either way every label of its events must
        reach it, so without a labels position it reads the labels from their
        start. ``held`` are the labels its checkpoint held (restored into it):
        held again unless already held or applied to an event a partition remembers.
        """
        labels = self.partitioned.labels
        if not isinstance(labels, LabelsReader):
            return
        saved = as_position(pipeline.checkpoints.labels_position)
        if saved is None and accountable:
            # Its checkpoint, if any, was written before its member read a label, so the
            # labels that member applied since are in none; where its reader had started
            # is not known, and the labels' commit may have moved past them since.
            saved = {}
        position: LabelsPosition | None
        if saved is not None:
            # A labels partition the checkpoint does not name had not been read from at all.
            labels.rewind(saved)
            self._let_go_of_rereads(saved, labels)
            position = saved
        else:
            # Labels of events it never sees only: from where the reader is (once connected).
            position = labels.next_offsets()
        # Brought up to the reader's position at its next read, like every partition.
        self._told = {}
        # A labels partition missing here is one it lacks every label of.
        self.read_to[partition] = dict(position or {})
        pipeline.checkpoints.labels_position = (
            None if position is None else position_token(position)
        )
        for feedback in held.drain():
            if not self.partitioned.held_feedback.holds(feedback) and not any(
                self._remembers(p, feedback) for p in self.partitioned.pipelines.values()
            ):
                dropped = self.partitioned.held_feedback.hold(feedback)
                if dropped is not None:
                    self.write_dead([self.unmatched(dropped)])

    def _let_go_of_rereads(self, start: LabelsPosition, labels: LabelsReader) -> None:
        """Stop holding the labels the rewind to ``start`` reads again; they are held anew then.

        Held from their first reading, a label whose event then came would be
        applied from the hold, and once more (a repeat, counted twice) as read again.
        """
        held = self.partitioned.held_feedback
        if not len(held):
            return
        topics = set(labels.address.topics)
        kept = []
        for feedback in held.drain():
            lp, offset = _place(feedback.position)
            again = lp[0] in topics and isinstance(offset, int) and offset >= start.get(lp, 0)
            if not again:
                kept.append(feedback)
        for feedback in kept:
            held.hold(feedback)  # in their order, fewer than before: none dropped

    def forget(self, partition: Partition) -> None:
        """``partition`` was revoked: its labels position goes with its checkpoint."""
        self.read_to.pop(partition, None)

    def apply_waiting(self, labels: Source) -> bool:
        """As :meth:`FeedbackLabels.apply_waiting`; then every partition has read to its end."""
        applied = super().apply_waiting(labels)
        now = labels.next_offsets() if isinstance(labels, LabelsReader) else None
        if applied and now:
            for lp, offset in now.items():
                self.high[lp] = max(self.high.get(lp, offset), offset)
        if now and now != self._told:
            # Known once the reader connected, labels read or not: from then on every
            # partition's checkpoint names every labels partition.
            self._told = now
            for partition, pipeline in self.partitioned.pipelines.items():
                position = self.read_to.setdefault(partition, {})
                for lp, offset in now.items():
                    position[lp] = max(position.get(lp, offset), offset)
                pipeline.checkpoints.labels_position = position_token(position)
        return applied

    def join(self, feedback: Feedback) -> bool:
        """Label the event in a partition that lacks the label and remembers it; see the module."""
        where = feedback.position
        lp, offset = _place(where)
        pipelines = self.partitioned.pipelines
        lacking = [
            pipeline
            for partition, pipeline in pipelines.items()
            if not isinstance(offset, int)
            or offset >= self.read_to.get(partition, {}).get(lp, offset)
        ]
        had = [p for p in pipelines.values() if p not in lacking]
        # Read before: by this run, or by a partition in its life before its checkpoint
        # (a member that has just started has read nothing, yet restores what others read).
        reread = bool(had) or self.read_before(where)
        for pipeline in lacking:
            detector = pipeline.detector
            if detector is not None:
                outcome = detector.label_event(feedback.event_id, feedback.label)
                if outcome is not None:
                    count_joined(self.partitioned.summary, outcome)
                    if reread:
                        # Held at its first reading, before the partition was restored?
                        self.partitioned.held_feedback.take_at(feedback)
                    return True
        if not reread:
            return False  # held until its event comes
        # Read again: applied where its event is remembered, or held once already.
        return self.partitioned.held_feedback.holds(feedback) or any(
            self._remembers(p, feedback) for p in had
        )

    def read_before(self, position: dict[str, Any]) -> bool:
        """True if this run has read the labels record at ``position`` (a rewind reads it again).

        Then a record that is not feedback was counted and sent to the dead letters already.
        """
        lp, offset = _place(position)
        return isinstance(offset, int) and offset < self.high.get(lp, 0)

    @staticmethod
    def _remembers(pipeline: Pipeline, feedback: Feedback) -> bool:
        detector = pipeline.detector
        return detector is not None and detector.recent_events.get(feedback.event_id) is not None


def _place(position: dict[str, Any]) -> tuple[tuple[Any, Any], Any]:
    """The labels partition and offset a label was read at, as its position names them.

    >>> _place({"topic": "l", "partition": 0, "offset": 4})
    (('l', 0), 4)
    """
    return (position.get("topic"), position.get("partition")), position.get("offset")
