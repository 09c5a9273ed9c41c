"""What a run did: the counters the pipeline keeps and prints as JSON on stderr at exit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Summary"]

#: Fields :meth:`Summary.to_dict` leaves out: the detector's counters stand in their place.
_NOT_SHOWN = frozenset({"detector", "evicted_models", "evicted_in_warmup"})


@dataclass
class Summary:
    """What a run did; printed as JSON on stderr at exit."""

    events: int = 0
    alerts: int = 0
    bad_records: int = 0
    bad_feedback: int = 0
    blank_lines: int = 0
    #: CSV header lines read (a stream's first line, or a partition's).
    header_lines: int = 0
    feedback_labels: int = 0
    #: Of ``feedback_labels``, those the event had already (nothing changed: a label
    #: delivered again) and those that replaced its other label (a correction).
    repeated_feedback: int = 0
    corrected_feedback: int = 0
    unmatched_feedback: int = 0
    checkpoints: int = 0
    #: Models this run evicted to stay within ``max_keys``, and of those the ones still in
    #: warm-up: for the metrics, left out of :meth:`to_dict`, which shows the detector's
    #: (a restored run's included) where the other model counts are.
    evicted_models: int = 0
    evicted_in_warmup: int = 0
    resumed_from: dict[str, Any] | None = None
    #: The most common reason among the dead letters since the last scored event.
    bad_reason: str | None = None
    stopped_by: str = "end of input"
    seconds: float = 0.0
    #: The features read: those given from the start, those chosen from the first good
    #: event (None until it comes); a Kafka run whose partitions read different ones maps each
    #: ``"TOPIC/N"`` to its own.
    features: list[str] | dict[str, list[str]] | None = None
    #: Alertmanager alerts not delivered (dropped, refused, still queued at the end);
    #: None without an Alertmanager sink.
    alertmanager_not_delivered: int | None = None
    detector: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view, the detector's own counters flattened in.

        ``alertmanager_not_delivered`` is left out when the sink does not count it, and
        so are this run's own eviction counts (the detector's are in its counters).

        >>> "alertmanager_not_delivered" in Summary().to_dict()
        False
        >>> Summary(alertmanager_not_delivered=2).to_dict()["alertmanager_not_delivered"]
        2
        """
        out = {
            k: v
            for k, v in vars(self).items()
            if k not in _NOT_SHOWN and not (k == "alertmanager_not_delivered" and v is None)
        }
        out.update({k: v for k, v in self.detector.items() if k not in ("events", "alerts")})
        return out
