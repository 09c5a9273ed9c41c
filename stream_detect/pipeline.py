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
flushed, a final checkpoint is written and a summary is returned.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson

from stream_detect.detector import Detections, Detector
from stream_detect.errors import ConfigError, ModelError, OutputError
from stream_detect.records import BadRecord, Decoded, RecordDecoder
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sinks import open_sink
from stream_detect.sinks.base import Sink
from stream_detect.sources import open_source
from stream_detect.sources.base import RawBatch, Source
from stream_detect.state import Checkpoint, load_checkpoint, save_checkpoint

__all__ = [
    "Pipeline",
    "Summary",
    "parse_feedback",
    "run_stream",
    "unmatched_feedback_reason",
]


class _Closable(Protocol):
    def close(self) -> None: ...


#: Longest a read waits for a first record before the loop looks at its timers again.
_POLL_S = 0.1
#: Longest a read may block, so a stop request is honoured within about this.
_MAX_WAIT_S = 1.0
#: Feedback label records read per loop turn at most.
_LABELS_PER_TURN = 10_000


@dataclass
class Summary:
    """What a run did; printed as JSON on stderr at exit."""

    events: int = 0
    alerts: int = 0
    bad_records: int = 0
    bad_feedback: int = 0
    blank_lines: int = 0
    feedback_labels: int = 0
    unmatched_feedback: int = 0
    checkpoints: int = 0
    resumed_from: dict[str, Any] | None = None
    stopped_by: str = "end of input"
    seconds: float = 0.0
    detector: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view, the detector's own counters flattened in."""
        out = {k: v for k, v in vars(self).items() if k != "detector"}
        out.update({k: v for k, v in self.detector.items() if k not in ("events", "alerts")})
        return out


class Pipeline:
    """One source, one detector, one sink, one dead-letter sink; see the module docstring.

    The caller owns the source and sinks passed in; :meth:`run` closes them.
    """

    def __init__(
        self,
        run: RunSettings,
        detector: DetectorSettings,
        *,
        source: Source,
        sink: Sink,
        dead_letter: Sink,
        labels: Source | None = None,
        on_progress: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if labels is not None and (detector.id_field is None or detector.label_field is None):
            raise ConfigError(
                "labels", run.labels, "an id_field and a label_field too (feedback names events)"
            )
        if run.checkpoint is not None:
            folder = Path(run.checkpoint).parent
            if not folder.is_dir():
                raise ConfigError(
                    "checkpoint",
                    run.checkpoint,
                    f"a file in an existing directory; {folder} is not one",
                )
        self.run_settings = run
        self.detector_settings = detector
        self.source = source
        self.sink = sink
        self.dead_letter = dead_letter
        self.labels = labels
        self.on_progress = on_progress
        self.clock = clock
        # A format the user names wins over what the file name suggests.
        self.format = run.format if run.format != "auto" else source.format_hint or "auto"
        self.decoder = self._decoder(list(detector.features) if detector.features else None)
        self.detector: Detector | None = None
        self.summary = Summary()
        self._events_at_checkpoint = 0
        self._checkpoint_clock = clock()
        self._retune_clock = clock()

    # ------------------------------------------------------------------ state

    def restore(self) -> bool:
        """Resume from the checkpoint file, if one is configured and exists.

        A source that can be repositioned (a file) continues after the saved
        position, so every event is learned once across the restart. One that
        cannot (stdin) keeps the learned model and reads on from wherever the
        new stream starts; the summary's ``resumed_from`` says which.
        """
        path = self.run_settings.checkpoint
        checkpoint = None if path is None else load_checkpoint(path)
        if checkpoint is None:
            return False
        features = checkpoint.detector.get("features")
        if not isinstance(features, list) or not features:
            raise ModelError(f"checkpoint {path}: it names no features")
        wanted = self.detector_settings.features
        if wanted is not None and list(wanted) != features:
            raise ModelError(
                f"checkpoint {path}: written for features {features}, this run asks for "
                f"{list(wanted)}; use a new checkpoint file or the same features"
            )
        self.decoder = self._decoder(features)
        if checkpoint.header is not None:
            self.decoder.decode(RawBatch([checkpoint.header.encode()], [{"line": 1, "offset": 0}]))
        self.detector = Detector(self.detector_settings, features)
        try:
            self.detector.restore(checkpoint.detector)
        except ModelError as exc:
            raise ModelError(f"checkpoint {path}: {exc}") from exc
        if self.source.resumable:
            self.source.seek(checkpoint.source)
            self.summary.resumed_from = checkpoint.source
        else:
            # A pipe cannot be rewound: keep what the model learned, read the new stream.
            self.summary.resumed_from = {"model_only": True}
        if self.labels is not None and checkpoint.labels is not None and self.labels.resumable:
            self.labels.seek(checkpoint.labels)
        return True

    def _decoder(self, features: list[str] | None) -> RecordDecoder:
        settings = self.detector_settings
        return RecordDecoder(
            self.format,
            features,
            label_field=settings.label_field,
            key_field=settings.key_field,
            id_field=settings.id_field,
            timestamp_field=settings.timestamp_field,
            max_record_bytes=self.run_settings.max_line_bytes,
        )

    def checkpoint(self) -> None:
        """Write the detector state with the position it reflects (needs a checkpoint path)."""
        path = self.run_settings.checkpoint
        if path is None or self.detector is None:
            return
        columns = self.decoder.columns
        header = None
        if columns is not None:
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="").writerow(columns)
            header = buffer.getvalue()
        save_checkpoint(
            path,
            Checkpoint(
                detector=self.detector.to_dict(),
                source=self.source.resume_token(),
                labels=None if self.labels is None else self.labels.resume_token(),
                header=header,
                settings={"model": self.detector_settings.model},
            ),
        )
        self.summary.checkpoints += 1
        self._events_at_checkpoint = self.summary.events
        self._checkpoint_clock = self.clock()

    # ------------------------------------------------------------------- loop

    def run(self, stop: threading.Event | None = None) -> Summary:
        """Process until the input ends or ``stop`` is set; return the summary.

        On a stop request, the records the source has already read are still
        processed (nothing read from a pipe is lost), then everything is
        flushed, checkpointed and closed.
        """
        stop = stop or threading.Event()
        started = self.clock()
        run = self.run_settings
        linger = run.max_latency_ms / 2000.0
        # The wait for a first record is also the longest a batch can fill for;
        # it is capped so a stop request is honoured within about a second.
        wait = min(max(_POLL_S, linger), _MAX_WAIT_S)
        delivered = True
        try:
            while not stop.is_set():
                batch = self.source.read_batch(run.batch_size, linger, wait)
                self._step(batch)
                if self.source.exhausted:
                    self._drain_labels()
                    break
            else:
                self.summary.stopped_by = "signal"
                while len(batch := self.source.take_buffered(run.batch_size)):
                    self._step(batch)
            self.checkpoint()
        except BrokenPipeError:
            delivered = False
            self.summary.stopped_by = "output closed"
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

    def _step(self, batch: RawBatch) -> None:
        """Handle one batch, commit its position, then feedback and timers."""
        if len(batch):
            self._handle(batch)
            self.source.commit(self.source.resume_token())
        # After the batch, so feedback may name events it just delivered.
        self._poll_labels()
        self._timers()

    def _handle(self, batch: RawBatch) -> None:
        decoded = self.decoder.decode(batch)
        self.summary.blank_lines += decoded.n_blank
        bad = list(decoded.bad)
        results: list[dict[str, Any]] = []
        if len(decoded):
            if self.detector is None:
                self.detector = Detector(self.detector_settings, self.decoder.features or [])
            values, reasons = self.detector.transform(decoded.values)
            unusable = [i for i, reason in enumerate(reasons) if reason is not None]
            if unusable:
                payloads = {
                    id(position): payload
                    for payload, position in zip(batch.payloads, batch.positions, strict=True)
                }
                for i in unusable:
                    position = decoded.positions[i]
                    bad.append(BadRecord(position, str(reasons[i]), payloads[id(position)]))
                # Dead letters leave in arrival order, whichever step refused them.
                arrival = {id(position): n for n, position in enumerate(batch.positions)}
                bad.sort(key=lambda record: arrival.get(id(record.position), len(arrival)))
                keep = np.ones(len(decoded), dtype=bool)
                keep[unusable] = False
                decoded = _subset(decoded, keep)
                values = values[keep]
            detections = self.detector.process(values, decoded.labels, decoded.keys, decoded.ids)
            results = self._results(decoded, detections)
            self.summary.events += len(decoded)
            self.summary.alerts += int(np.count_nonzero(detections.alert))
        dead = [record.to_dict() for record in bad]
        self.summary.bad_records += len(dead)
        if results:
            self.sink.write_batch(results)
        self.sink.flush()
        if dead:
            self.dead_letter.write_batch(dead)
            self.dead_letter.flush()
        if self.on_progress is not None:
            self.on_progress(len(batch))

    def _results(self, decoded: Decoded, found: Detections) -> list[dict[str, Any]]:
        """Output records: the event's fields plus what the detector found."""
        emit_all = self.run_settings.emit == "all"
        rows = range(len(decoded)) if emit_all else np.flatnonzero(found.alert).tolist()
        if not rows:
            return []
        log_p = _floats(found.log_p)
        score = _floats(found.score)
        distance = _floats(found.distance_sq)
        log_epsilon = _floats(found.log_epsilon)
        alert = found.alert.tolist()
        warmup = found.warmup.tolist()
        n = found.n.tolist()
        keys = decoded.keys
        out = []
        for i in rows:
            record = dict(decoded.records[i])
            record.update(
                log_p=log_p[i],
                score=score[i],
                mahalanobis_sq=distance[i],
                log_epsilon=log_epsilon[i],
                alert=alert[i],
                warmup=warmup[i],
                n=n[i],
                key=None if keys is None else keys[i],
                position=decoded.positions[i],
            )
            if alert[i]:
                record["contributions"] = found.contributions.get(i, {})
            out.append(record)
        return out

    def _drain_labels(self) -> None:
        """At the end of the input, apply the feedback that is already there."""
        while self._poll_labels():
            pass

    def _poll_labels(self) -> bool:
        """Apply the feedback labels waiting now; return True if there were any."""
        if self.labels is None or self.labels.exhausted or self.detector is None:
            return False
        batch = self.labels.read_batch(_LABELS_PER_TURN, 0.0, 0.0)
        if not len(batch):
            return False
        dead: list[BadRecord] = []
        for payload, position in zip(batch.payloads, batch.positions, strict=True):
            if not payload.strip():
                continue
            reason = self._apply_feedback(payload)
            if reason is not None:
                dead.append(BadRecord(position, reason, payload))
        if dead:
            self.dead_letter.write_batch([record.to_dict() for record in dead])
            self.dead_letter.flush()
        self.labels.commit(self.labels.resume_token())
        return True

    def _apply_feedback(self, payload: bytes) -> str | None:
        """Join one feedback label to its event; return why it could not be, or None."""
        assert self.detector is not None
        settings = self.detector_settings
        parsed = parse_feedback(payload, settings.id_field or "", settings.label_field or "")
        if isinstance(parsed, str):
            self.summary.bad_feedback += 1
            return parsed
        if self.detector.add_feedback(*parsed):
            self.summary.feedback_labels += 1
            return None
        self.summary.unmatched_feedback += 1
        return unmatched_feedback_reason(parsed[0], settings.id_memory)

    def process_batch(self, batch: RawBatch) -> None:
        """Handle one batch as :meth:`run` does: score, write, flush, commit, then timers.

        For a caller that reads the source itself (one pipeline per Kafka
        partition); an empty batch only runs the timers (re-tune, checkpoint).
        """
        self._step(batch)

    def _timers(self) -> None:
        run = self.run_settings
        now = self.clock()
        seconds = self.detector_settings.retune_seconds
        if self.detector is not None and seconds and now - self._retune_clock >= seconds:
            self.detector.retune()
            self._retune_clock = now
        due_events = run.checkpoint_every and (
            self.summary.events - self._events_at_checkpoint >= run.checkpoint_every
        )
        due_time = run.checkpoint_seconds and now - self._checkpoint_clock >= run.checkpoint_seconds
        if due_events or due_time:
            self.checkpoint()

    def _close(self, delivered: bool) -> None:
        for closer in (self.sink.close, self.dead_letter.close):
            try:
                closer()
            except (BrokenPipeError, OSError, OutputError):
                # A failure while closing must not hide the error that ended the run.
                if closer is self.sink.close and delivered:
                    self.summary.stopped_by = "output closed"
        self.source.close()
        if self.labels is not None:
            self.labels.close()


def _floats(values: np.ndarray[Any, Any]) -> list[float | None]:
    """Python floats with NaN as None (JSON has no NaN)."""
    return [v if math.isfinite(v) else None for v in values.tolist()]


def _subset(decoded: Decoded, keep: np.ndarray[Any, Any]) -> Decoded:
    """The rows of ``decoded`` where ``keep`` is true."""
    rows = np.flatnonzero(keep).tolist()

    def pick(items: list[Any] | None) -> list[Any] | None:
        return None if items is None else [items[i] for i in rows]

    return Decoded(
        values=decoded.values[keep],
        records=[decoded.records[i] for i in rows],
        positions=[decoded.positions[i] for i in rows],
        labels=decoded.labels[keep],
        keys=pick(decoded.keys),
        ids=pick(decoded.ids),
        timestamps=pick(decoded.timestamps),
        bad=decoded.bad,
        n_blank=decoded.n_blank,
        n_header=decoded.n_header,
    )


def parse_feedback(payload: bytes, id_field: str, label_field: str) -> tuple[str, int] | str:
    """The event id and label a feedback record names, or why it names none.

    Ids are matched as the decoder writes them: strings as they are, others as JSON.

    >>> parse_feedback(b'{"id": 7, "label": true}', "id", "label")
    ('7', 1)
    >>> parse_feedback(b'{"id": "a", "label": 2}', "id", "label")
    'label 2 is not 0, 1, true or false'
    """
    try:
        entry = orjson.loads(payload)
        event_id = entry[id_field]
        label = entry[label_field]
    except (orjson.JSONDecodeError, KeyError, TypeError, IndexError):
        return f"a feedback label must be a JSON object with {id_field!r} and {label_field!r}"
    if label not in (0, 1):  # true and false count, as in the events
        return f"label {label!r} is not 0, 1, true or false"
    key = event_id if isinstance(event_id, str) else orjson.dumps(event_id).decode()
    return key, int(label)


def unmatched_feedback_reason(event_id: str, id_memory: int) -> str:
    """Why a feedback label joined no event (its dead letter's reason)."""
    return f"no event with id {event_id!r} among the last {id_memory} remembered (id_memory)"


def run_stream(
    run: RunSettings,
    detector: DetectorSettings,
    *,
    source: Source | None = None,
    sink: Sink | None = None,
    dead_letter: Sink | None = None,
    on_progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> Summary:
    """Open what the settings name (unless given), resume from any checkpoint, run to the end.

    Everything is closed at the end, what was passed in included. If setting
    up fails (a bad checkpoint, say), what this function opened is closed again.

    >>> from stream_detect.testing import ListSource, ListSink
    >>> events = [{"x": float(i % 7)} for i in range(300)] + [{"x": 40.0}]
    >>> sink = ListSink()
    >>> summary = run_stream(RunSettings(), DetectorSettings(log_epsilon=-10.0),
    ...                      source=ListSource(events), sink=sink, dead_letter=ListSink())
    >>> summary.events, [r["x"] for r in sink.records]
    (301, [40.0])
    """
    if source is None and run.source.lower().startswith("kafka:"):
        # State per partition: a pipeline per partition the group assigns.
        from stream_detect.kafka.partitioned import run_partitioned

        return run_partitioned(run, detector, sink=sink, dead_letter=dead_letter, stop=stop)
    table = run.kafka
    with contextlib.ExitStack() as opened:

        def own(resource: _Closable) -> Any:
            opened.callback(resource.close)
            return resource

        pipeline = Pipeline(
            run,
            detector,
            source=source
            or own(open_source(run.source, max_line_bytes=run.max_line_bytes, client_table=table)),
            sink=sink or own(open_sink(run.sink, client_table=table)),
            dead_letter=dead_letter
            or own(open_sink(run.dead_letter, config_key="dead_letter", client_table=table)),
            labels=None
            if run.labels is None
            else own(
                open_source(
                    run.labels,
                    max_line_bytes=run.max_line_bytes,
                    config_key="labels",
                    client_table=table,
                )
            ),
            on_progress=on_progress,
        )
        pipeline.restore()
        # From here on, Pipeline.run closes everything, however it ends.
        opened.pop_all()
    return pipeline.run(stop)
