"""Feedback labels of a run: read them, join them to the events they name, dead-letter the rest.

A feedback record names an earlier event by id and gives its label (an
operator confirming or rejecting an alert). :class:`FeedbackLabels` reads
them from the run's labels source after each batch and hands each one to the
detector, which labels the event if it still remembers it. A label that comes
before its event (a labels file read ahead of the events) is held
(:class:`~stream_detect.recent.HeldFeedback`) and applied when the event
arrives, so what is matched does not depend on how the events are batched.
An event keeps its latest label: a second label for it corrects the first,
and one it has already (a label delivered again, as Kafka may after a
restart) changes nothing.
A record that is not feedback (a Kafka tombstone included), or whose event
never comes, goes to the dead letters with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from stream_detect.feedback import parse_feedback, unmatched_feedback_reason
from stream_detect.recent import Feedback, HeldFeedback
from stream_detect.records import BadRecord
from stream_detect.records.tombstones import TOMBSTONE_REASON, is_tombstone
from stream_detect.settings import DetectorSettings
from stream_detect.sinks.base import Sink
from stream_detect.sources import open_source
from stream_detect.sources.base import Source
from stream_detect.uris import parse_uri

if TYPE_CHECKING:
    from stream_detect.detector import Detector
    from stream_detect.summary import Summary
    from stream_detect.validation_buffer import LabelOutcome

__all__ = ["FeedbackLabels", "count_joined", "open_labels"]

#: Feedback label records read per loop turn at most.
LABELS_PER_TURN = 10_000


class LabelledRun(Protocol):
    """What feedback labels need of the pipeline they belong to, read at each call."""

    detector: Detector | None
    detector_settings: DetectorSettings
    summary: Summary
    dead_letter: Sink
    labels: Source | None
    held_feedback: HeldFeedback


class FeedbackLabels:
    """The feedback labels of ``run``; see the module docstring.

    The counters go to ``run.summary``: ``feedback_labels`` (joined), among them
    ``repeated_feedback`` (a label the event had: nothing changed) and
    ``corrected_feedback`` (it replaced the event's other label), then
    ``bad_feedback`` (not feedback) and ``unmatched_feedback`` (event never found).
    """

    def __init__(self, run: LabelledRun) -> None:
        self.run = run

    def poll(self) -> bool:
        """Apply the feedback labels waiting now; return True if there were any."""
        run = self.run
        labels = run.labels
        if labels is None or labels.exhausted or run.detector is None:
            return False
        return self.apply_waiting(labels)

    def apply_waiting(self, labels: Source) -> bool:
        """Read the records waiting in ``labels`` now and apply them; False if there were none.

        Each label is joined (:meth:`join`) or held for its event; a record that is
        not feedback, or a label dropped from the held ones, goes to the dead letters.
        The labels source's position is committed after them.
        """
        run = self.run
        batch = labels.read_batch(LABELS_PER_TURN, 0.0, 0.0)
        if not len(batch):
            return False
        settings = run.detector_settings
        dead: list[BadRecord] = []
        for payload, position in zip(batch.payloads, batch.positions, strict=True):
            parsed: tuple[str, int] | str
            if is_tombstone(position):
                parsed = TOMBSTONE_REASON
            elif not payload.strip():
                continue
            else:
                parsed = parse_feedback(
                    payload, settings.id_field or "", settings.label_field or ""
                )
            if isinstance(parsed, str):
                if self.read_before(position):
                    continue  # counted and sent to the dead letters when first read
                run.summary.bad_feedback += 1
                dead.append(BadRecord(position, parsed, payload))
                continue
            feedback = Feedback(parsed[0], parsed[1], position, payload)
            if not self.join(feedback):
                dropped = run.held_feedback.hold(feedback)
                if dropped is not None:
                    dead.append(self.unmatched(dropped))
        self.write_dead(dead)
        labels.commit(labels.resume_token())
        return True

    def read_before(self, position: dict[str, Any]) -> bool:
        """True if this run has read the labels record at ``position`` before (never, here)."""
        return False

    def drain(self) -> None:
        """At the end of the input, apply the feedback that is already there."""
        while self.poll():
            pass

    def apply_held(self, ids: list[str | None]) -> list[BadRecord]:
        """Apply the held labels of the events ``ids`` that just arrived; return the unmatched."""
        return [
            self.unmatched(feedback)
            for feedback in self.run.held_feedback.take(ids)
            if not self.join(feedback)
        ]

    def release_held(self) -> None:
        """Send the labels still held to the dead letters: their events will not come now."""
        self.write_dead([self.unmatched(f) for f in self.run.held_feedback.drain()])

    def join(self, feedback: Feedback) -> bool:
        """Label the remembered event ``feedback`` names; False if it is not remembered."""
        run = self.run
        assert run.detector is not None
        outcome = run.detector.label_event(feedback.event_id, feedback.label)
        if outcome is None:
            return False
        count_joined(run.summary, outcome)
        return True

    def unmatched(self, feedback: Feedback) -> BadRecord:
        """The dead letter of a label whose event was never found."""
        run = self.run
        run.summary.unmatched_feedback += 1
        reason = unmatched_feedback_reason(feedback.event_id, run.detector_settings.id_memory)
        return BadRecord(feedback.position, reason, feedback.payload)

    def write_dead(self, dead: list[BadRecord]) -> None:
        """Write ``dead`` to the run's dead letters and flush them (nothing if empty)."""
        if dead:
            self.run.dead_letter.write_batch([record.to_dict() for record in dead])
            self.run.dead_letter.flush()


def count_joined(summary: Summary, outcome: LabelOutcome) -> None:
    """Count a feedback label joined to its event in ``summary``, by what it did."""
    summary.feedback_labels += 1
    if outcome == "repeated":
        summary.repeated_feedback += 1
    elif outcome == "corrected":
        summary.corrected_feedback += 1


def open_labels(
    uri: str, max_line_bytes: int, client_table: Mapping[str, Any] | None = None
) -> Source:
    """Open the feedback labels; a labels file that does not exist yet is read once it appears."""
    parsed = parse_uri(uri, config_key="labels")
    if parsed.scheme == "file" and parsed.target and not Path(parsed.target).exists():
        parsed.check_params(["follow"])
        from stream_detect.sources.awaited import AwaitedFileSource  # only a file not there yet

        return AwaitedFileSource(
            parsed.target,
            follow=parsed.flag("follow"),
            max_line_bytes=max_line_bytes,
            uri=uri,
        )
    return open_source(
        uri, max_line_bytes=max_line_bytes, config_key="labels", client_table=client_table
    )
