"""The sidecar of a Kafka run: metrics over its partitions, health, and reloads for each.

A Kafka run keeps a pipeline per assigned partition
(:mod:`stream_detect.kafka.partitioned`), so the one-pipeline view of
:class:`~stream_detect.sidecar.Sidecar` does not fit it as it is.
:class:`PartitionedSidecar` puts the same sidecar over the whole run:

* each partition's pipeline reports its turns here (scoring time, per-key
  scores and alerts go to the one registry);
* after each turn of the run the counters are the run's totals (revoked
  partitions included, so they never go down), the gauges are summed over
  the partitions, and each assigned partition has its own few series, with
  the lag of the partition from Kafka's offsets
  (:mod:`stream_detect.metrics` lists them);
* every Kafka client says whether its broker answers
  (``kafka_broker_reachable{client}``);
* a reload (SIGHUP) is applied to the run's settings, so partitions assigned
  later get them, and to every partition's pipeline; a new sink is opened
  once and shared, as the old one was.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from stream_detect.errors import StreamDetectError
from stream_detect.kafka.address import message_fields
from stream_detect.kafka.status import BrokerLink
from stream_detect.reload import apply_reload, describe_changes
from stream_detect.sidecar import (
    SettingsLoader,
    Sidecar,
    bind_fields,
    detector_warm,
    summary_counts,
)

if TYPE_CHECKING:
    from stream_detect.detector import Detections
    from stream_detect.kafka.partitioned import PartitionedRun
    from stream_detect.pipeline import Pipeline
    from stream_detect.records import Decoded

__all__ = ["PartitionedSidecar", "broker_states"]


def broker_states(parts: dict[str, object]) -> dict[str, bool]:
    """Whether each Kafka client among ``parts`` (name -> source or sink) reaches its broker.

    Parts that are not Kafka clients (a file; Alertmanager and the HTTP sources,
    whose state is in ``server_reachable`` with the brokers') are left out.

    >>> broker_states({"sink": object()})
    {}
    """
    states = {}
    for name, part in parts.items():
        link = getattr(part, "link", None)
        if isinstance(link, BrokerLink):
            states[name] = link.reachable
    return states


class PartitionedSidecar:
    """A :class:`~stream_detect.sidecar.Sidecar` over a partitioned run; see the module docstring.

    Each partition's pipeline has this as its ``observer``; the run calls
    :meth:`after_step` once per turn, after every partition had its batch.
    """

    def __init__(self, sidecar: Sidecar) -> None:
        self.sidecar = sidecar

    def attach(self, run: PartitionedRun) -> None:
        """Bind the field names the run's sink and labels source want."""
        bind_fields(run.sink, run.detector_settings)
        if run.labels is not None:
            bind_fields(run.labels, run.detector_settings)

    @property
    def reads_scores(self) -> bool:
        """True if every event's score goes to the metrics (the last score of each key)."""
        return self.sidecar.reads_scores

    def after_turn(
        self, pipeline: Pipeline, found: tuple[Decoded, Detections] | None, seconds: float
    ) -> None:
        """One partition's turn: its scoring time and its keys' scores go to the metrics."""
        if self.sidecar.server is not None:
            self.sidecar.observe_turn(found, seconds)

    def after_step(self, run: PartitionedRun) -> None:
        """Apply a pending reload to every partition, then refresh metrics and health."""
        loader = self.sidecar.take_reload()
        if loader is not None:
            self._reload(run, loader)
        if self.sidecar.server is not None:
            self.refresh(run, force=False)

    def refresh(self, run: PartitionedRun, *, force: bool = True) -> None:
        """Copy the run's totals, and when due its gauges and partitions, to the metrics."""
        counts = summary_counts(run.totals(), run.retunes(), run.sink)
        detectors = [p.detector for p in run.pipelines.values() if p.detector is not None]
        parts: dict[str, object] = {
            "source": run.source,
            "sink": run.sink,
            "dead_letter": run.dead_letter,
            "labels": run.labels,
        }
        published = self.sidecar.publish(
            counts,
            warm=any(detector_warm(detector) for detector in detectors),
            connected=run.source.connected,
            gauges=lambda: self._gauges(run),
            parts=parts,
            force=force,
        )
        if published:
            self.sidecar.metrics.observe_brokers(broker_states(parts))

    def _gauges(self, run: PartitionedRun) -> tuple[dict[str, float | None], dict[str, int] | None]:
        """The run's summed gauges and validation sizes; the partitions' own series meanwhile."""
        lags = run.source.lag_by_partition()
        rows: dict[str, dict[str, float | None]] = {}
        validation = {"anomaly": 0, "normal": 0}
        models = learned = 0
        for (topic, number), pipeline in sorted(run.pipelines.items()):
            detector = pipeline.detector
            row: dict[str, float | None] = {
                "events": pipeline.summary.events,
                "alerts": pipeline.summary.alerts,
                "source_lag": lags.get((topic, number)),
            }
            if detector is not None:
                partition_learned = detector.learned_events
                log_epsilon = detector.log_epsilon
                row.update(
                    log_epsilon=float("nan") if log_epsilon is None else log_epsilon,
                    learned_events=partition_learned,
                )
                models += len(detector.models)
                learned += partition_learned
                validation["anomaly"] += detector.validation.n_positive
                validation["normal"] += detector.validation.n_negative
            rows[f"{topic}/{number}"] = row
        self.sidecar.metrics.observe_partitions(rows)
        gauges: dict[str, float | None] = {
            "source_lag": sum(lags.values()) if lags else None,
            "models_active": models,
            "learned_events": learned,
            "feedback_held": len(run.held_feedback),
        }
        return gauges, validation

    def _reload(self, run: PartitionedRun, loader: SettingsLoader) -> None:
        """Apply re-read settings to the run, then to each partition's pipeline."""
        sidecar = self.sidecar
        before = (run.run_settings, run.detector_settings)
        try:
            run_settings, detector_settings = loader()
            # Fields key=message fills are set as the run set them, not refused as changes.
            detector_settings = message_fields(detector_settings, run.source.address)
            refused = apply_reload(run, run_settings, detector_settings)
        except StreamDetectError as exc:
            sidecar.report_reload(exc)
            return
        for pipeline in run.pipelines.values():
            # The sink is the run's, shared: opened once above, not once per partition.
            pipeline.sink = run.sink
            kept = dataclasses.replace(pipeline.run_settings, sink=run.run_settings.sink)
            pipeline.run_settings = kept
            apply_reload(
                pipeline,
                dataclasses.replace(run.run_settings, checkpoint=kept.checkpoint),
                run.detector_settings,
            )
        sidecar.reloads += 1
        sidecar.metrics.top_keys = run.run_settings.metrics_top_keys
        bind_fields(run.sink, run.detector_settings)
        sidecar.report_reload(
            refused, describe_changes(before, (run.run_settings, run.detector_settings))
        )
