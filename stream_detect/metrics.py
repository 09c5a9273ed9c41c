"""Prometheus metrics of one run, in a registry of its own.

:class:`RunMetrics` is fed once per loop turn by the pipeline's observer
(:mod:`stream_detect.sidecar`) and read by the HTTP server's ``/metrics``
(:mod:`stream_detect.server`). The registry is built per run and passed in,
never the process-global one, so two runs (or two tests) never share series.

What it exposes, all prefixed ``stream_detect_``:

* counters: ``events_total``, ``alerts_total``, ``bad_records_total``,
  ``feedback_labels_total``, ``corrected_feedback_total``,
  ``repeated_feedback_total``, ``bad_feedback_total``,
  ``unmatched_feedback_total``, ``retunes_total``, ``checkpoints_total``,
  ``evicted_models_total``, ``evicted_in_warmup_total``, for a Kafka run
  ``already_delivered_total``, and for an Alertmanager sink
  ``alertmanager_sent_total`` / ``alertmanager_dropped_total``;
* gauges: ``log_epsilon``, ``f1`` (of the last re-tune on labels),
  ``models_active``, ``learned_events``, ``validation_labels{class}``,
  ``feedback_held`` (labels waiting for the event they name),
  ``source_lag`` (where the source knows it), ``last_turn_timestamp_seconds``;
* a histogram ``scoring_seconds`` of the time to decode, score and write one batch;
* per key, for the ``top_keys`` keys with the most alerts (then the most
  recent): ``key_last_score{key}`` and ``key_last_alert_timestamp_seconds{key}``;
* for a Kafka run, whose state is per partition, the counters and gauges
  above are totals over the partitions (``log_epsilon`` and ``f1`` are left
  out: they differ per partition), and per assigned partition
  (``partition="TOPIC/N"``, as few as the topic's partitions):
  ``partition_events_total``, ``partition_alerts_total``,
  ``partition_log_epsilon``, ``partition_learned_events`` and
  ``partition_source_lag`` (end offset minus position); per Kafka client
  (``client`` = source, sink, dead_letter, labels)
  ``kafka_broker_reachable`` is 1 while its broker answers, 0 while it is
  retried;
* per client of a server (Kafka, Prometheus, Alertmanager):
  ``server_reachable{client,kind}`` and
  ``server_failed_attempts_total{client,kind}``
  (:mod:`stream_detect.reachability_metrics`, in :attr:`RunMetrics.servers`).

The loop thread writes a snapshot under a lock; the HTTP thread reads it, so a
scrape never walks the detector's models while the loop changes them.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> registry = CollectorRegistry()
>>> metrics = RunMetrics(registry, top_keys=2)
>>> metrics.observe_counts({"events": 3, "alerts": 1})
>>> metrics.observe_keys(["a", "b", "a"], [-1.0, -2.0, -30.0], [False, False, True], now=100.0)
>>> text = generate_latest(registry).decode()
>>> "stream_detect_events_total 3.0" in text
True
>>> 'stream_detect_key_last_score{key="a"} -30.0' in text
True
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stream_detect.reachability_metrics import ReachabilityMetrics

__all__ = ["COUNTERS", "GAUGES", "PARTITION_SERIES", "RunMetrics"]

#: Counter name (without ``_total``) -> help text; the values come from the run's summary.
COUNTERS: dict[str, str] = {
    "events": "events scored",
    "alerts": "events that raised an alert",
    "bad_records": "records of the source sent to the dead letters (not feedback labels)",
    "feedback_labels": "feedback labels joined to an earlier event",
    "corrected_feedback": "labels joined that replaced another label of their event",
    "repeated_feedback": "labels joined that their event had already (a redelivery, say)",
    "bad_feedback": "feedback labels sent to the dead letters as malformed",
    "unmatched_feedback": "feedback labels sent to the dead letters: their event never came",
    "retunes": "times log epsilon was re-chosen",
    "checkpoints": "checkpoints written",
    "evicted_models": "keyed models evicted to stay within max_keys",
    "evicted_in_warmup": "keyed models evicted before their warm-up ended (they never alerted)",
    "already_delivered": (
        "results and dead letters of a Kafka partition read again below the group's committed "
        "offset (to rebuild its state), not written again: they were delivered before"
    ),
    "alertmanager_sent": "alerts posted to Alertmanager",
    "alertmanager_dropped": (
        "alerts dropped: the queue was full while delivery failed, or they were refused for good"
    ),
}

#: Gauge name -> help text.
GAUGES: dict[str, str] = {
    "log_epsilon": "the log epsilon in force (NaN while unset)",
    "f1": "F1 on the validation buffer at the last re-tune on labels",
    "models_active": "models held (one per key)",
    "learned_events": "events learned by the models held",
    "feedback_held": "feedback labels held until the event they name arrives",
    "source_lag": "what the source still has to deliver: bytes of a file, records of Kafka",
    "last_turn_timestamp_seconds": "Unix time of the last loop turn",
}

#: Per-partition series of a Kafka run: name -> (kind, help text).
PARTITION_SERIES: dict[str, tuple[str, str]] = {
    "events": ("counter", "events of the partition scored by this member"),
    "alerts": ("counter", "alerts raised on the partition's events by this member"),
    "log_epsilon": ("gauge", "the log epsilon in force for the partition (NaN while unset)"),
    "learned_events": ("gauge", "events learned by the partition's models"),
    "source_lag": ("gauge", "records of the partition not read yet (end offset - position)"),
}

_PREFIX = "stream_detect_"
#: Keys remembered for the per-key series; the top ones are exposed.
_KEY_MEMORY = 10_000


@dataclass
class _KeySeries:
    last_score: float
    alerts: int = 0
    last_alert: float | None = None


class RunMetrics(Collector):
    """The metrics of one run, registered in ``registry``; see the module docstring.

    Parameters
    ----------
    registry
        Where the metrics are registered (one per run).
    top_keys
        Keys with per-key series at most; the rest are tracked but not exposed.
    """

    def __init__(self, registry: CollectorRegistry, *, top_keys: int = 20) -> None:
        self.registry = registry
        self.top_keys = top_keys
        self._lock = threading.Lock()
        self._counts: dict[str, float] = {}
        self._gauges: dict[str, float] = {}
        self._validation: dict[str, float] = {}
        self._keys: OrderedDict[str, _KeySeries] = OrderedDict()
        self._partitions: dict[str, dict[str, float]] = {}
        self._brokers: dict[str, float] = {}
        self.scoring_seconds = Histogram(
            _PREFIX + "scoring_seconds",
            "seconds to decode, score and write one batch",
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
        )
        registry.register(self)
        #: Whether the servers the run talks to answer, and their failed attempts.
        self.servers = ReachabilityMetrics(registry)

    # ------------------------------------------------------------- from the loop

    def observe_counts(self, counts: Mapping[str, float]) -> None:
        """Set the counters named in :data:`COUNTERS` to these running totals."""
        with self._lock:
            self._counts.update({k: float(v) for k, v in counts.items() if k in COUNTERS})

    def observe_gauges(
        self, gauges: Mapping[str, float | None], validation: Mapping[str, int] | None = None
    ) -> None:
        """Set gauges (None means not known: the series is left out)."""
        with self._lock:
            for name, value in gauges.items():
                if name not in GAUGES:
                    continue
                if value is None:
                    self._gauges.pop(name, None)
                else:
                    self._gauges[name] = float(value)
            if validation is not None:
                self._validation = {k: float(v) for k, v in validation.items()}

    def observe_partitions(self, rows: Mapping[str, Mapping[str, float | None]]) -> None:
        """Replace the per-partition series: partition name -> series of :data:`PARTITION_SERIES`.

        A partition no longer assigned is left out of ``rows``, and its series go.
        """
        with self._lock:
            self._partitions = {
                name: {
                    k: float(v) for k, v in row.items() if k in PARTITION_SERIES and v is not None
                }
                for name, row in rows.items()
            }

    def observe_brokers(self, reachable: Mapping[str, bool]) -> None:
        """Set whether each Kafka client (source, sink...) reaches its broker now."""
        with self._lock:
            self._brokers = {client: float(up) for client, up in reachable.items()}

    def observe_keys(
        self,
        keys: Sequence[str],
        scores: Iterable[float],
        alerts: Iterable[bool],
        *,
        now: float,
    ) -> None:
        """Remember each key's last score, and count and time its alerts."""
        with self._lock:
            for key, score, alert in zip(keys, scores, alerts, strict=True):
                series = self._keys.get(key)
                if series is None:
                    series = self._keys[key] = _KeySeries(float(score))
                else:
                    series.last_score = float(score)
                    self._keys.move_to_end(key)
                if alert:
                    series.alerts += 1
                    series.last_alert = now
            while len(self._keys) > _KEY_MEMORY:
                self._keys.popitem(last=False)

    # ---------------------------------------------------------- to the scraper

    def describe(self) -> Iterable[Metric]:
        """Nothing: the series depend on the run, so the registry must not cache them."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The current counters, gauges and bounded per-key series."""
        with self._lock:
            counts = dict(self._counts)
            gauges = dict(self._gauges)
            validation = dict(self._validation)
            recency = {key: rank for rank, key in enumerate(self._keys)}
            top = sorted(self._keys.items(), key=lambda kv: (-kv[1].alerts, -recency[kv[0]]))
            top = [(key, _KeySeries(s.last_score, s.alerts, s.last_alert)) for key, s in top]
            partitions = {name: dict(row) for name, row in self._partitions.items()}
            brokers = dict(self._brokers)
        for name, value in counts.items():
            yield CounterMetricFamily(_PREFIX + name, COUNTERS[name], value=value)
        for name, value in gauges.items():
            yield GaugeMetricFamily(_PREFIX + name, GAUGES[name], value=value)
        if validation:
            family = GaugeMetricFamily(
                _PREFIX + "validation_labels",
                "labelled events held for re-tuning, per class",
                labels=["class"],
            )
            for label_class, value in validation.items():
                family.add_metric([label_class], value)
            yield family
        score = GaugeMetricFamily(
            _PREFIX + "key_last_score", "the last decision score of a key", labels=["key"]
        )
        alert_time = GaugeMetricFamily(
            _PREFIX + "key_last_alert_timestamp_seconds",
            "Unix time of a key's last alert",
            labels=["key"],
        )
        for key, series in top[: self.top_keys]:
            score.add_metric([key], series.last_score)
            if series.last_alert is not None:
                alert_time.add_metric([key], series.last_alert)
        yield score
        yield alert_time
        yield from _partition_families(partitions)
        if brokers:
            family = GaugeMetricFamily(
                _PREFIX + "kafka_broker_reachable",
                "1 while the Kafka client's broker answers, 0 while it is retried",
                labels=["client"],
            )
            for client, value in sorted(brokers.items()):
                family.add_metric([client], value)
            yield family


def _partition_families(partitions: Mapping[str, Mapping[str, float]]) -> Iterator[Metric]:
    """The per-partition families (none when the run has no partitions)."""
    if not partitions:
        return
    for name, (kind, text) in PARTITION_SERIES.items():
        family_type = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        family = family_type(_PREFIX + "partition_" + name, text, labels=["partition"])
        for partition, row in sorted(partitions.items()):
            if name in row:
                family.add_metric([partition], row[name])
        yield family
