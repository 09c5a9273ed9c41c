"""The demo's report: its alerts compared with the generated stream's truth, as data and as text.

:func:`evaluate` matches the pipeline's output records to the events by id and
counts, on the events that could have alerted and whose labels the detector
did not see, the alerts against the truth, the recall of each anomaly kind
and the F1 of flagging as many events at random; :func:`format_report`
writes it for a terminal, :meth:`DemoReport.to_dict` for ``--json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stream_detect.confusion import ConfusionCounts, confusion_counts
from stream_detect.synthetic import SyntheticStream
from stream_detect.synthetic_anomalies import ANOMALY_KINDS

__all__ = ["ID_FIELD", "KEY_FIELD", "DemoReport", "evaluate", "format_report"]

#: One model per host, because the hosts differ in scale (a single model would see a mixture).
KEY_FIELD = "host"
#: Results are matched to the truth by the event id.
ID_FIELD = "id"
#: Example alerts shown in the report.
_EXAMPLES = 4


@dataclass(frozen=True)
class DemoReport:
    """What a demo run did and how it compares with the ground truth.

    ``counts`` compare the alerts with the truth on the ``evaluated`` events:
    past their model's warm-up, and unlabelled (the detector tuned ε on the
    labelled ones). ``recall_by_kind`` maps each anomaly kind to (detected,
    present) among them. ``chance_f1`` is the expected F1 of flagging as many
    of those events at random. ``second_half`` counts only the evaluated events
    of the stream's second half, when ε has had labels to settle on.
    ``summary`` is the pipeline's summary.
    """

    stream: SyntheticStream
    counts: ConfusionCounts
    second_half: ConfusionCounts
    evaluated: int
    warmup: int
    recall_by_kind: dict[str, tuple[int, int]]
    chance_f1: float
    examples: list[dict[str, Any]]
    seed: int = 0
    model: str = "full"
    transforms: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    seconds_generate: float = math.nan
    seconds_detect: float = math.nan
    alert_records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        """Throughput of the detection pipeline (generation not counted); NaN if not timed."""
        if not self.seconds_detect > 0:
            return math.nan
        return len(self.stream) / self.seconds_detect

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data (what ``--json`` prints)."""
        stream = self.stream
        return {
            "events": len(stream),
            "seed": self.seed,
            "hosts": sorted(set(stream.hosts)),
            "features": list(stream.features),
            "anomalies": int(stream.truth.sum()),
            "anomalies_by_kind": stream.kind_counts(),
            "labelled": int(stream.labelled.sum()),
            "labelled_anomalies": int(stream.truth[stream.labelled].sum()),
            "model": self.model,
            "key_field": KEY_FIELD,
            "transforms": self.transforms,
            "alerts": int(self.summary.get("alerts", self.counts.n_flagged)),
            "bad_records": int(self.summary.get("bad_records", 0)),
            "log_epsilon": self.summary.get("log_epsilon"),
            "epsilon_source": self.summary.get("epsilon_source"),
            "ground_truth": {
                "evaluated": self.evaluated,
                "warmup": self.warmup,
                **self.counts.to_dict(),
                "chance_f1": self.chance_f1,
                "second_half": self.second_half.to_dict(),
                "recall_by_kind": {
                    kind: {"detected": hit, "present": total, "recall": _ratio(hit, total)}
                    for kind, (hit, total) in self.recall_by_kind.items()
                },
            },
            "examples": self.examples,
            "seconds": {
                "generate": _finite_or_none(round(self.seconds_generate, 3)),
                "detect": _finite_or_none(round(self.seconds_detect, 3)),
            },
            "events_per_second": _finite_or_none(self.events_per_second),
            "summary": self.summary,
        }


def evaluate(stream: SyntheticStream, records: list[dict[str, Any]]) -> DemoReport:
    """Compare the pipeline's output records (``emit="all"``) with the stream's truth.

    Records are matched to events by their ``id``; an event without a record
    (it went to dead letters) counts as not flagged.
    """
    n = len(stream)
    index = {event_id: i for i, event_id in enumerate(stream.ids)}
    alert = np.zeros(n, dtype=bool)
    warmup = np.ones(n, dtype=bool)
    by_row: dict[int, dict[str, Any]] = {}
    for record in records:
        row = index.get(str(record.get(ID_FIELD)))
        if row is None:
            continue
        alert[row] = bool(record.get("alert"))
        warmup[row] = bool(record.get("warmup"))
        by_row[row] = record
    evaluated = ~warmup & ~stream.labelled
    truth = stream.truth[evaluated]
    counts = confusion_counts(truth, alert[evaluated])
    late = evaluated & (np.arange(n) >= n // 2)
    kinds = np.asarray(stream.kinds)
    recall_by_kind = {
        kind: (
            int(np.count_nonzero(alert & evaluated & (kinds == kind))),
            int(np.count_nonzero(evaluated & (kinds == kind))),
        )
        for kind in ANOMALY_KINDS
    }
    return DemoReport(
        stream=stream,
        counts=counts,
        second_half=confusion_counts(stream.truth[late], alert[late]),
        evaluated=int(np.count_nonzero(evaluated)),
        warmup=int(np.count_nonzero(warmup)),
        recall_by_kind=recall_by_kind,
        chance_f1=_chance_f1(int(truth.sum()), counts.n_flagged, truth.size),
        examples=_examples(stream, by_row, np.flatnonzero(alert & evaluated)),
    )


def _chance_f1(positives: int, flagged: int, total: int) -> float:
    """Expected F1 of flagging ``flagged`` of ``total`` events at random.

    Precision is then the positive share, recall the flagged share, whatever
    the detector: the bar a detector has to clear to have learned anything.

    >>> round(_chance_f1(10, 10, 1000), 3)
    0.01
    """
    if positives + flagged == 0 or total == 0:
        return 0.0
    return 2.0 * positives * flagged / (total * (positives + flagged))


def _examples(
    stream: SyntheticStream, by_row: dict[int, dict[str, Any]], alert_rows: np.ndarray[Any, Any]
) -> list[dict[str, Any]]:
    """A few alerts to show: the first of each anomaly kind caught, then a false alarm."""
    chosen: list[int] = []
    wanted = [*ANOMALY_KINDS, "normal"]
    for kind in wanted:
        for row in alert_rows.tolist():
            if stream.kinds[row] == kind:
                chosen.append(row)
                break
    for row in alert_rows.tolist():
        if len(chosen) >= _EXAMPLES:
            break
        if row not in chosen:
            chosen.append(row)
    examples = []
    for row in sorted(chosen[:_EXAMPLES]):
        record = by_row[row]
        contributions = _contributions(record.get("contributions"))
        examples.append(
            {
                "id": stream.ids[row],
                "host": stream.hosts[row],
                "truth": stream.kinds[row] if stream.truth[row] else "false alarm",
                "score": record.get("score"),
                "log_p": record.get("log_p"),
                "contributions": contributions,
                "values": {name: stream.events[row][name] for name in contributions},
            }
        )
    return examples


def _contributions(value: Any) -> dict[str, float]:
    """An alert's contributions (the pipeline's ``{feature: contribution}``, largest first)."""
    if isinstance(value, dict):
        return {str(name): float(c) for name, c in value.items()}
    return {}


def format_report(
    report: DemoReport, *, emit_alerts: str | None = None, save_events: str | None = None
) -> str:
    """The human-readable report."""
    data = report.to_dict()
    stream = report.stream
    truth = data["ground_truth"]
    half = truth["second_half"]
    kinds = ", ".join(f"{count} {kind}" for kind, count in data["anomalies_by_kind"].items())
    transforms = ", ".join(f"{name}={spec}" for name, spec in report.transforms.items()) or "none"
    model = "full covariance" if report.model == "full" else "diagonal (independent features)"
    lines = [
        f"stream-detect demo: {len(stream):,} generated events from "
        f"{len(data['hosts'])} hosts (seed {data['seed']})",
        f"  features    {', '.join(stream.features)}",
        f"  anomalies   {data['anomalies']:,} ({data['anomalies'] / len(stream):.1%}): {kinds}",
        f"  labels      on {data['labelled']:,} events, {data['labelled_anomalies']} of them "
        "anomalies; the rest unlabelled",
        f"  model       {model}, one per {KEY_FIELD}; transforms: {transforms}",
        "",
        f"Detection     {data['alerts']:,} alerts, {data['bad_records']} bad records, "
        f"{report.seconds_detect:.2f} s ({_rate(report.events_per_second)})",
        f"  epsilon     {_epsilon_sentence(data)}",
        "",
        f"Against the ground truth ({truth['evaluated']:,} events: past warm-up, unlabelled)",
        f"  precision {truth['precision']:.3f}   recall {truth['recall']:.3f}   "
        f"F1 {truth['f1']:.3f}   (tp {truth['tp']}, fp {truth['fp']}, fn {truth['fn']})",
        f"  second half precision {half['precision']:.3f}   recall {half['recall']:.3f}   "
        f"F1 {half['f1']:.3f}   {_second_half_note(data['epsilon_source'])}",
        f"  flagging as many events at random would give F1 {report.chance_f1:.3f}",
        "  recall by kind: "
        + ", ".join(
            f"{kind} {entry['detected']}/{entry['present']}"
            for kind, entry in truth["recall_by_kind"].items()
        ),
    ]
    if report.model == "diagonal" and report.recall_by_kind["contextual"][1]:
        lines.append(
            "  (contextual anomalies break a correlated pair with every value in range: "
            "try --model full)"
        )
    if report.examples:
        lines += ["", "Example alerts (score, then the top contributions to the squared distance):"]
        for example in report.examples:
            drivers = ", ".join(
                f"{name}={example['values'][name]} ({contribution:.1f})"
                for name, contribution in example["contributions"].items()
            )
            lines.append(
                f"  {example['id']} {example['host']:<6} {example['truth']:<11} "
                f"{_number(example['score'])}: {drivers}"
            )
    written = [
        f"{what} in {path}"
        for what, path in (("alerts", emit_alerts), ("events", save_events))
        if path is not None
    ]
    if written:
        lines += ["", "Wrote " + " and ".join(written) + "."]
    source = f"--source file:{save_events}" if save_events else "--source file:EVENTS.jsonl"
    transform_flags = "".join(
        f" --transform {name}={spec}" for name, spec in report.transforms.items()
    )
    lines += [
        "",
        f"Your own events: stream-detect run {source} --model {report.model} "
        f"--key-field {KEY_FIELD} --id-field {ID_FIELD}{transform_flags} "
        "(stream-detect run --help lists every option).",
    ]
    return "\n".join(lines)


def _second_half_note(epsilon_source: str | None) -> str:
    """Why the second half may differ, which depends on how ε was chosen.

    >>> _second_half_note("f1"), _second_half_note("default")
    ('(epsilon tuned on more labels by then)', '(the models have learned more events by then)')
    """
    if epsilon_source == "f1":
        return "(epsilon tuned on more labels by then)"
    return "(the models have learned more events by then)"


def _epsilon_sentence(data: dict[str, Any]) -> str:
    """How the final threshold was chosen, in words."""
    log_epsilon = data["log_epsilon"]
    if log_epsilon is None:
        return "never set (too few events and labels): no alerts"
    summary = data["summary"]
    scale = "on the log tail probability of each event, one model per host"
    source = data["epsilon_source"]
    if source == "f1":
        labels = (summary.get("validation_positive"), summary.get("validation_negative"))
        tuned = f"best F1 on the labelled events ({labels[0]} anomalies, {labels[1]} normal"
        f1 = summary.get("f1")
        tuned += f"; F1 {f1:.3f} on them)" if isinstance(f1, float) else ")"
        how = tuned
    elif source == "default":
        how = "the default tail (too few labels to tune by F1)"
    else:
        how = f"{source}"
    retunes = summary.get("retunes")
    suffix = f", re-tuned {retunes} times" if retunes else ""
    return f"log epsilon {log_epsilon:.2f} {scale};\n              chosen by {how}{suffix}"


def _ratio(hit: int, total: int) -> float | None:
    return hit / total if total else None


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _rate(events_per_second: float) -> str:
    if not math.isfinite(events_per_second):
        return "? events/s"
    return f"{events_per_second:,.0f} events/s"


def _number(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "?"
