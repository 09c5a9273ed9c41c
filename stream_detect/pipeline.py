"""The streaming loop: read a batch, decode, detect, write, flush, then commit and checkpoint.

This is the only place that loops over time. Each turn:

1. reads a batch from the source (waiting at most ``max_latency_ms / 2`` for it
   to fill, so a slow producer's events are not held back);
2. decodes it; bad records go to the dead-letter sink with their position and
   reason, never dropped silently;
3. transforms, scores and learns the good events (:class:`Detector`);
4. writes the results and flushes the sink and the dead letters;
5. only then commits the source position and, when due, checkpoints the
   detector state *with* that position, so a restart learns each event once
   and re-delivers at most what came after the checkpoint.

A stop request (``stop`` set, e.g. by SIGTERM) ends the loop after the batch in
hand; the end of the input does the same. Either way the last results are
flushed, a final checkpoint is written and a summary is returned. Lines read
ahead are still processed after a stop only when nothing could replay them
(a pipe, or no checkpoint); a checkpointed file resumes at them instead. A
stop that finds the output stalled (a pipe nobody reads) gives up the write
in hand (:class:`~stream_detect.errors.WriteInterrupted`) and writes no final
checkpoint, since the detector has learned events whose results were not
delivered: the last checkpoint stands, and a restart re-delivers from there.

How one batch is decoded, detected and written (steps 2 to 4) is
:func:`stream_detect.pipeline_batch.handle_batch`; what a checkpoint holds,
when one is due and how a run resumes from it is
:mod:`stream_detect.pipeline_checkpoint`; opening what the settings name and
running a pipeline over it is :func:`stream_detect.assembly.run_stream`; what
a run warns about its stream as a whole (nothing usable, recurring values, a
skewed feature, missing times, evictions in warm-up) is
:mod:`stream_detect.stream_watches`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from stream_detect.errors import ConfigError, OutputError, WriteInterrupted
from stream_detect.feedback import parse_feedback, unmatched_feedback_reason
from stream_detect.label_feedback import FeedbackLabels
from stream_detect.pipeline_batch import handle_batch
from stream_detect.pipeline_checkpoint import PipelineCheckpoints, make_checkpoint_folder
from stream_detect.recent import HeldFeedback
from stream_detect.records import Decoded, RecordDecoder
from stream_detect.settings import DetectorSettings, RunSettings, check_run_with_detector
from stream_detect.sinks.base import Sink
from stream_detect.sources.base import RawBatch, Source
from stream_detect.stream_watches import StreamWatches, warn_on_stderr
from stream_detect.summary import Summary

if TYPE_CHECKING:
    from stream_detect.detector import Detections, Detector
    from stream_detect.fitted_model import FittedModel

__all__ = [
    "Pipeline",
    "Summary",
    "parse_feedback",
    "unmatched_feedback_reason",
]


class TurnObserver(Protocol):
    """Told after each loop turn what it did (see :mod:`stream_detect.sidecar`)."""

    @property
    def reads_scores(self) -> bool:
        """True if :meth:`after_turn` reads every event's score, not only the alerts'."""

    def after_turn(
        self, pipeline: Pipeline, found: tuple[Decoded, Detections] | None, seconds: float
    ) -> None:
        """``found``: the events scored this turn and their results (None if none came)."""


#: Longest a read waits for a first record before the loop looks at its timers again.
_POLL_S = 0.1
#: Longest a read may block, so a stop request is honoured within about this.
_MAX_WAIT_S = 1.0


class Pipeline:
    """One source, one detector, one sink, one dead-letter sink; see the module docstring.

    The caller owns the source and sinks passed in; :meth:`run` closes them.
    """

    def __init__(
        self,
        run_settings: RunSettings,
        detector_settings: DetectorSettings,
        *,
        source: Source,
        sink: Sink,
        dead_letter: Sink,
        labels: Source | None = None,
        on_progress: Callable[[int], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
        on_features: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        run = run_settings
        detector = detector_settings
        check_run_with_detector(run, detector)
        if labels is not None and (detector.id_field is None or detector.label_field is None):
            raise ConfigError(
                "labels", run.labels, "an id_field and a label_field too (feedback names events)"
            )
        make_checkpoint_folder(run)
        self.initial_model: FittedModel | None = None
        if run.initial_model is not None:
            from stream_detect.initial_model import detector_settings_for
            from stream_detect.modelfile import load_model

            self.initial_model = load_model(run.initial_model)
            detector = detector_settings_for(detector, self.initial_model, run.initial_model)
        self.run_settings = run
        self.detector_settings = detector
        self.source = source
        self.sink = sink
        self.dead_letter = dead_letter
        self.labels = labels
        self.on_progress = on_progress
        self.watches = StreamWatches(detector, on_warning or warn_on_stderr)
        self.on_features = on_features
        self.clock = clock
        # A format the user names wins over what the file name suggests.
        self.format = run.format if run.format != "auto" else source.format_hint or "auto"
        self.decoder = self.decoder_for(list(detector.features) if detector.features else None)
        self.detector: Detector | None = None
        self.summary = Summary()
        # Features the user named are the ones read from the start: the summary names them
        # even if no event turns out usable. Inferred ones are known with the first good event.
        self.summary.features = self.decoder.features
        #: The stop request of the running loop (None until :meth:`run`).
        self.stop: threading.Event | None = None
        # Feedback labels read before their event arrived (a labels file read ahead of the events).
        self.held_feedback = HeldFeedback(detector.id_memory)
        self.feedback = FeedbackLabels(self)
        self.checkpoints = PipelineCheckpoints(self)
        #: Told after every loop turn what it did (metrics, health, reloads); None: nobody.
        self.observer: TurnObserver | None = None

    # ------------------------------------------------------------------ state

    def restore(self) -> bool:
        """Resume from the checkpoint file, if one is configured and exists.

        A source that can be repositioned (a file) continues after the saved
        position, so every event is learned once across the restart. One that
        cannot (stdin) keeps the learned model and reads on from wherever the
        new stream starts; the summary's ``resumed_from`` says which.
        """
        return self.checkpoints.restore()

    def features_known(self, features: list[str]) -> None:
        """Put the features in the summary, make their watches and announce them (one JSON line)."""
        self.summary.features = list(features)
        self.watches.features_known(features, self.detector_settings)
        if self.on_features is None:
            return
        announcement: dict[str, Any] = {"features": features}
        notes = []
        left_out = self.decoder.left_out
        if left_out:
            names = ", ".join(left_out)
            notes.append(
                f"left out {names}: they only rise over the first batch (a counter or a clock); "
                "name them in --features to include them"
            )
        if self.decoder.label_note is not None:
            notes.append(self.decoder.label_note)
        if notes:
            announcement["note"] = "; ".join(notes)
        self.on_features(orjson.dumps(announcement).decode())

    def decoder_for(self, features: list[str] | None) -> RecordDecoder:
        """A record decoder for ``features`` (None: inferred from the first records)."""
        settings = self.detector_settings
        return RecordDecoder(
            self.format,
            features,
            label_field=settings.label_field,
            key_field=settings.key_field,
            id_field=settings.id_field,
            timestamp_field=settings.timestamp_field,
            max_record_bytes=self.run_settings.max_line_bytes,
            max_key_bytes=self.run_settings.max_key_bytes,
            # Unless every event is written, few records are read: parse them only then.
            lazy_records=self.run_settings.emit != "all",
            source_fields=self.source.source_fields,
            # A CSV header the stream cannot be read with is refused naming the input.
            source=self.source.name or self.source.uri or None,
        )

    def checkpoint(self) -> None:
        """Write the detector state with the position it reflects (needs a checkpoint path)."""
        self.checkpoints.write()

    # ------------------------------------------------------------------- loop

    def run(self, stop: threading.Event | None = None) -> Summary:
        """Process until the input ends or ``stop`` is set; return the summary.

        On a stop request, the records the source has already read are still
        processed (nothing read from a pipe is lost), then everything is
        flushed, checkpointed and closed.
        """
        stop = self.stop = stop or threading.Event()
        started = self.clock()
        run = self.run_settings
        linger = run.max_latency_ms / 2000.0
        # The wait for a first record is also the longest a batch can fill for;
        # it is capped so a stop request is honoured within about a second.
        wait = min(max(_POLL_S, linger), _MAX_WAIT_S)
        delivered = True
        self.sink.interrupt_on(stop)
        self.dead_letter.interrupt_on(stop)
        try:
            while not stop.is_set():
                batch = self.source.read_batch(run.batch_size, linger, wait)
                self._step(batch)
                if self.source.exhausted:
                    self._finish_decoding()
                    self.feedback.drain()
                    self.feedback.release_held()
                    break
            else:
                self.summary.stopped_by = "signal"
                replayable = self.source.resumable and run.checkpoint is not None
                while not replayable and len(batch := self.source.take_buffered(run.batch_size)):
                    self._step(batch)
                # The input ends here for this run, as at its end: its position is past
                # a first line still held, which would otherwise be neither counted nor kept.
                self._finish_decoding()
                if run.checkpoint is None:
                    # Nothing will keep the labels still held: say so rather than lose them.
                    self.feedback.release_held()
            self.checkpoint()
        except BrokenPipeError:
            delivered = False
            self.summary.stopped_by = "output closed"
        except WriteInterrupted:
            delivered = False
            self.summary.stopped_by = "signal, output stalled"
        except OutputError:
            # Nothing after the last delivered batch may be committed or checkpointed.
            delivered = False
            raise
        finally:
            self._close(delivered)
        self.summary.seconds = round(self.clock() - started, 3)
        if self.detector is not None:
            self.summary.detector = self.detector.summary()
        return self.summary

    def _finish_decoding(self) -> None:
        """Read a first line still waiting for a second to decide the format as a CSV header.

        Nothing follows it in this run: it is counted in ``header_lines`` and
        kept by the checkpoint, as at the end of the input.
        """
        self.summary.header_lines += self.decoder.finish().n_header

    def _step(self, batch: RawBatch) -> None:
        """Handle one batch, commit its position, then feedback and timers."""
        started = self.clock()
        found = None
        if len(batch):
            found = handle_batch(self, batch)
            self.source.commit(self.source.resume_token())
        seconds = self.clock() - started
        # After the batch, so feedback may name events it just delivered.
        self.feedback.poll()
        self._timers()
        if self.observer is not None:
            self.observer.after_turn(self, found, seconds)

    def process_batch(self, batch: RawBatch) -> None:
        """Handle one batch as :meth:`run` does: score, write, flush, commit, then timers.

        For a caller that reads the source itself (one pipeline per Kafka
        partition); an empty batch only runs the timers (re-tune, checkpoint).
        """
        self._step(batch)

    def _timers(self) -> None:
        now = self.clock()
        if self.detector is not None:
            # The detector keeps its own re-tune schedule; this only lets it look at the clock.
            self.detector.tick()
        if self.checkpoints.due(now):
            self.checkpoint()

    def _close(self, delivered: bool) -> None:
        for closer in (self.sink.close, self.dead_letter.close):
            try:
                closer()
            except (BrokenPipeError, OSError, OutputError):
                # A failure while closing must not hide the error that ended the run.
                if closer is self.sink.close and delivered:
                    self.summary.stopped_by = "output closed"
        not_delivered = getattr(self.sink, "not_delivered", None)
        if isinstance(not_delivered, int):
            # A best-effort sink (Alertmanager) counts what it could not deliver, once closed.
            self.summary.alertmanager_not_delivered = not_delivered
        self.source.close()
        if self.labels is not None:
            self.labels.close()
