"""What runs beside the loop: metrics, health, field binding and config reloads.

A :class:`Sidecar` is the pipeline's one observer. After every loop turn it

1. applies a config reload that was asked for (SIGHUP), on the loop's own
   thread, so the detector never changes under a batch
   (:func:`stream_detect.reload.apply_reload` says what may change);
2. updates the run's metrics and health for the HTTP endpoint, if one was
   asked for (``--http HOST:PORT``), the state of the servers its sources
   and sinks talk to included.

When attached it also tells the sink and the labels source that want them the
detector's id and label field names (an Alertmanager sink puts the event's id
in its alert's labels; the Alertmanager silences source writes feedback in
the fields the detector reads).

>>> from stream_detect.settings import DetectorSettings, RunSettings
>>> sidecar = Sidecar(RunSettings(), DetectorSettings())
>>> sidecar.server is None
True
>>> sidecar.close()
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TextIO

from stream_detect.errors import StreamDetectError
from stream_detect.health import Health
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sources.files import FileSource
from stream_detect.stderr_lines import write_stderr

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from stream_detect.detector import Detections, Detector
    from stream_detect.metrics import RunMetrics
    from stream_detect.pipeline import Pipeline
    from stream_detect.records import Decoded
    from stream_detect.server import MetricsServer
    from stream_detect.summary import Summary

__all__ = [
    "Sidecar",
    "bind_fields",
    "detector_warm",
    "pipeline_counts",
    "pipeline_gauges",
    "source_lag",
    "summary_counts",
]

#: Seconds between refreshes of the gauges that walk every model.
_GAUGE_EVERY_S = 1.0

SettingsLoader = Callable[[], tuple[RunSettings, DetectorSettings]]


def source_lag(source: object) -> float | None:
    """What ``source`` still has to deliver, when it can tell; None otherwise.

    A source with a ``lag()`` method answers for itself (Kafka: records behind
    the end of its partitions); a regular file that is read says how many
    bytes follow the position reached.
    """
    lag = getattr(source, "lag", None)
    if callable(lag):
        value = lag()
        return None if value is None else float(value)
    if isinstance(source, FileSource) and source.resumable:
        try:
            size = os.stat(source.name).st_size
        except OSError:
            return None
        return float(max(size - int(source.resume_token()["offset"]), 0))
    return None


def bind_fields(part: object, settings: DetectorSettings) -> None:
    """Give ``part`` (a sink or source) the detector's id and label fields, if it wants them."""
    bind = getattr(part, "bind_fields", None)
    if callable(bind):
        bind(id_field=settings.id_field, label_field=settings.label_field)


def detector_warm(detector: Detector) -> bool:
    """True once one of ``detector``'s models is past its warm-up."""
    return detector.warm


def pipeline_counts(pipeline: Pipeline) -> dict[str, float]:
    """The running totals of ``pipeline`` shown by the counters of :mod:`~stream_detect.metrics`."""
    retunes = 0 if pipeline.detector is None else pipeline.detector.retunes
    return summary_counts(pipeline.summary, retunes, pipeline.sink)


def summary_counts(summary: Summary, retunes: int, sink: object) -> dict[str, float]:
    """The counters of :mod:`~stream_detect.metrics` for a run's ``summary`` and ``sink``."""
    counts: dict[str, float] = {
        "events": summary.events,
        "alerts": summary.alerts,
        "bad_records": summary.bad_records,
        "feedback_labels": summary.feedback_labels,
        "corrected_feedback": summary.corrected_feedback,
        "repeated_feedback": summary.repeated_feedback,
        "bad_feedback": summary.bad_feedback,
        "unmatched_feedback": summary.unmatched_feedback,
        "checkpoints": summary.checkpoints,
        "retunes": retunes,
        "evicted_models": summary.evicted_models,
        "evicted_in_warmup": summary.evicted_in_warmup,
    }
    if summary.already_delivered is not None:
        counts["already_delivered"] = summary.already_delivered
    for name in ("sent", "dropped"):
        value = getattr(sink, name, None)
        if isinstance(value, int):
            counts[f"alertmanager_{name}"] = value
    return counts


def pipeline_gauges(
    pipeline: Pipeline,
) -> tuple[dict[str, float | None], dict[str, int] | None]:
    """The gauges of ``pipeline`` (None: not known) and its validation buffer's sizes."""
    detector = pipeline.detector
    gauges: dict[str, float | None] = {
        "source_lag": source_lag(pipeline.source),
        "feedback_held": len(pipeline.held_feedback),
    }
    if detector is None:
        return gauges, None
    log_epsilon = detector.log_epsilon
    choice = detector.last_choice
    gauges.update(
        log_epsilon=math.nan if log_epsilon is None else log_epsilon,
        f1=None if choice is None else choice.f1,
        models_active=len(detector.models),
        learned_events=detector.learned_events,
    )
    validation = {
        "anomaly": detector.validation.n_positive,
        "normal": detector.validation.n_negative,
    }
    return gauges, validation


class Sidecar:
    """The pipeline's observer; see the module docstring.

    Parameters
    ----------
    run, detector
        The run's settings; ``run.http`` starts the HTTP endpoint.
    wall_clock
        Unix time, for the per-key alert times and the last turn.
    errors
        Where a reload's one-line refusals go (default: stderr).

    Raises
    ------
    ConfigError
        ``run.http`` cannot be listened on.
    """

    def __init__(
        self,
        run: RunSettings,
        detector: DetectorSettings,
        *,
        wall_clock: Callable[[], float] = time.time,
        errors: TextIO | None = None,
    ) -> None:
        self.run_settings = run
        self.detector_settings = detector
        self.wall_clock = wall_clock
        self.errors = errors
        self.health = Health()
        self._metrics: RunMetrics | None = None
        self.server: MetricsServer | None = None
        if run.http is not None:
            from stream_detect.server import MetricsServer

            self.server = MetricsServer(run.http, self.registry, self.health)
        self._pending: SettingsLoader | None = None
        self._warm = False
        self._gauges_at = -math.inf
        self.reloads = 0

    @property
    def metrics(self) -> RunMetrics:
        """The run's metrics, in a registry of their own; made when first asked for.

        A run without an HTTP endpoint never asks, so it never loads the
        Prometheus client.
        """
        if self._metrics is None:
            from prometheus_client import CollectorRegistry

            from stream_detect.metrics import RunMetrics

            registry = CollectorRegistry(auto_describe=False)
            self._metrics = RunMetrics(registry, top_keys=self.run_settings.metrics_top_keys)
        return self._metrics

    @property
    def registry(self) -> CollectorRegistry:
        """The registry :attr:`metrics` are in."""
        return self.metrics.registry

    def attach(self, pipeline: Pipeline) -> None:
        """Observe ``pipeline`` from now on and bind the field names its parts want."""
        pipeline.observer = self
        bind_fields(pipeline.sink, pipeline.detector_settings)
        if pipeline.labels is not None:
            bind_fields(pipeline.labels, pipeline.detector_settings)

    @property
    def reads_scores(self) -> bool:
        """True if every event's score goes to the metrics (the last score of each key)."""
        return self.server is not None

    def request_reload(self, loader: SettingsLoader) -> None:
        """Reload settings with ``loader`` at the end of the current turn (signal-safe)."""
        self._pending = loader

    def after_turn(
        self, pipeline: Pipeline, found: tuple[Decoded, Detections] | None, seconds: float
    ) -> None:
        """Apply a pending reload, then refresh metrics and health."""
        loader = self.take_reload()
        if loader is not None:
            self._reload(pipeline, loader)
        if self.server is None:
            return
        self.observe_turn(found, seconds)
        self.refresh(pipeline, force=False)

    def take_reload(self) -> SettingsLoader | None:
        """The reload asked for since the last call, if any (it is then no longer pending)."""
        loader, self._pending = self._pending, None
        return loader

    def observe_turn(self, found: tuple[Decoded, Detections] | None, seconds: float) -> None:
        """Count one batch's scoring time and its keys' scores and alerts."""
        if found is None:
            return
        self.metrics.scoring_seconds.observe(seconds)
        decoded, detections = found
        keys = decoded.keys if decoded.keys is not None else [""] * len(decoded)
        self.metrics.observe_keys(
            keys, detections.score.tolist(), detections.alert.tolist(), now=self.wall_clock()
        )

    def refresh(self, pipeline: Pipeline, *, force: bool = True) -> None:
        """Copy the pipeline's counters (and, at most once a second, its gauges) to the metrics."""
        detector = pipeline.detector
        self.publish(
            pipeline_counts(pipeline),
            warm=detector is not None and detector_warm(detector),
            connected=bool(getattr(pipeline.source, "connected", True)),
            gauges=lambda: pipeline_gauges(pipeline),
            parts={
                "source": pipeline.source,
                "sink": pipeline.sink,
                "dead_letter": pipeline.dead_letter,
                "labels": pipeline.labels,
            },
            force=force,
        )

    def publish(
        self,
        counts: dict[str, float],
        *,
        warm: bool,
        connected: bool,
        gauges: Callable[[], tuple[dict[str, float | None], dict[str, int] | None]],
        parts: Mapping[str, object],
        force: bool,
    ) -> bool:
        """Set the counters, health and servers' state; the gauges too when due.

        Return True if the gauges were set. ``gauges`` is only called when due
        (at most once a second unless ``force``): it may walk every model.
        ``parts`` names the run's sources and sinks by role (``source``,
        ``sink``, ``dead_letter``, ``labels``), for the state of the servers
        they talk to.
        """
        self.metrics.observe_counts(counts)
        self.metrics.servers.observe(parts)
        self._warm = self._warm or warm
        self.health.turned(ready=self._warm and connected)
        now = self.health.clock()
        if not force and now - self._gauges_at < _GAUGE_EVERY_S:
            return False
        self._gauges_at = now
        values, validation = gauges()
        values["last_turn_timestamp_seconds"] = self.wall_clock()
        self.metrics.observe_gauges(values, validation)
        return True

    def report_reload(
        self, refused: list[str] | StreamDetectError, applied: str | None = None
    ) -> None:
        """Say on one line what a reload changed (``applied``, from
        :func:`~stream_detect.reload.describe_changes`), and on another what it
        refused (a whole reload, or settings it kept).
        """
        lines = ""
        if applied is not None:
            lines += f"stream-detect: reload applied: {applied}\n"
        if isinstance(refused, StreamDetectError):
            lines += f"stream-detect: config reload refused: {refused}\n"
        elif refused:
            lines += (
                "stream-detect: config reload: "
                + ", ".join(refused)
                + " cannot change while running (kept as they were; restart to change them)\n"
            )
        write_stderr(lines, self.errors)

    def _reload(self, pipeline: Pipeline, loader: SettingsLoader) -> None:
        from stream_detect.reload import apply_reload, describe_changes

        before = (pipeline.run_settings, pipeline.detector_settings)
        try:
            run, detector = loader()
            refused = apply_reload(pipeline, run, detector)
        except StreamDetectError as exc:
            self.report_reload(exc)
            return
        self.reloads += 1
        if self._metrics is not None:
            self._metrics.top_keys = pipeline.run_settings.metrics_top_keys
        bind_fields(pipeline.sink, pipeline.detector_settings)
        applied = describe_changes(before, (pipeline.run_settings, pipeline.detector_settings))
        self.report_reload(refused, applied)

    def close(self) -> None:
        """Stop the HTTP endpoint."""
        if self.server is not None:
            self.server.close()
            self.server = None
