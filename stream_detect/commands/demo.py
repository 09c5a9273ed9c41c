"""``stream-detect demo``: the detector on a generated, labelled stream, scored against the truth.

The stream comes from :func:`stream_detect.synthetic.generate_events`: server
metrics from three hosts with skewed features, correlated pairs, about 1 %
point, contextual and burst anomalies, and inline labels on 3 % of the events.
It runs through the same pipeline as ``stream-detect run``
(:func:`stream_detect.pipeline.run_stream`, every event in, every result out),
with one model per host (key field ``host``) and ε re-tuned on the labels as
they arrive. Then the results are compared with the ground truth the
generator knows.

The comparison is honest on purpose:

* only events after their model's warm-up count (no alert is possible before);
* labelled events do not count either: the detector saw their labels and tuned
  ε on them, so they would flatter the score;
* the report puts the F1 of flagging as many events at random next to the
  detector's, and the recall of each kind of anomaly, so a good total cannot
  hide a kind the model does not see (the diagonal model misses the contextual
  anomalies: try ``--model diagonal``).

Transforms (``--transform auto``) are suggested from the skewness of the first
events of each host (:data:`TRANSFORM_SAMPLE` events in all) and a feature is
transformed only when every host agrees: pooled over hosts, the gaps between
the hosts' levels would look like skew. Time-based re-tuning is off, so the same
arguments give the same report, apart from the timings.

The report goes to stdout (``--json``: one JSON object), the progress bar to stderr.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import orjson

from stream_detect.confusion import ConfusionCounts, confusion_counts
from stream_detect.errors import ConfigError
from stream_detect.pipeline import run_stream
from stream_detect.progress import Progress
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sinks.streams import encode_json_line
from stream_detect.synthetic import ANOMALY_KINDS, SyntheticStream, generate_events
from stream_detect.testing import ListSink, ListSource
from stream_detect.transform_suggestions import suggest_transform

__all__ = [
    "MAX_EVENTS",
    "MIN_EVENTS",
    "TRANSFORM_SAMPLE",
    "DemoReport",
    "add_arguments",
    "choose_transforms",
    "evaluate",
    "format_report",
    "run",
    "run_demo",
]

#: Fewest events the demo accepts: below this the models barely leave warm-up.
MIN_EVENTS = 500
#: Most events the demo accepts. It holds every event and every result in memory,
#: about 6 kB per event (measured: 200,000 events, 1.3 GB, 9 s), so this is ~6 GB.
MAX_EVENTS = 1_000_000
#: Events at the start of the stream the transform suggestions look at.
TRANSFORM_SAMPLE = 1000
#: A host's sample needs this many events for its skewness to be worth a vote.
_MIN_HOST_SAMPLE = 30
#: Example alerts shown in the report.
_EXAMPLES = 4
#: One model per host, because the hosts differ in scale (a single model would see a mixture).
_KEY_FIELD = "host"
#: Results are matched to the truth by the event id.
_ID_FIELD = "id"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``demo``."""
    parser.add_argument(
        "--events",
        type=int,
        default=20_000,
        metavar="N",
        help=f"length of the generated stream (default: 20000, at least {MIN_EVENTS}, "
        f"at most {MAX_EVENTS}: the demo holds every event in memory, about 6 kB each)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the generator, an integer >= 0 (default: 0)"
    )
    parser.add_argument(
        "--model",
        choices=("diagonal", "full"),
        default="full",
        help="full covariance (default: the stream has correlated pairs) "
        "or independent features (diagonal)",
    )
    parser.add_argument(
        "--transform",
        choices=("auto", "none"),
        default="auto",
        help="auto: log or root transforms of skewed features, suggested from the first "
        f"{TRANSFORM_SAMPLE} events (default); none: model the raw values",
    )
    parser.add_argument(
        "--emit-alerts",
        metavar="FILE",
        help="also write the alerts as JSON lines to FILE (replaced if it exists)",
    )
    parser.add_argument(
        "--save-events",
        metavar="FILE",
        help="also write the generated events as JSON lines to FILE, to replay them "
        "with stream-detect run (replaced if it exists)",
    )
    parser.add_argument(
        "--kafka",
        nargs="?",
        const="",
        metavar="HOST:PORT",
        help="run the stream through Kafka: events to a topic, the detector from it to a "
        "results topic, read back; without HOST:PORT an embedded broker is started on a "
        "free loopback port (pip install 'stream-detect[kafka-demo]')",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the report as one JSON object instead of text",
    )


def run(args: argparse.Namespace) -> int:
    """Generate, detect, compare with the truth, print the report."""
    if args.events < MIN_EVENTS:
        raise ConfigError(
            "--events", args.events, f"an integer >= {MIN_EVENTS} (the models need a warm-up)"
        )
    if args.events > MAX_EVENTS:
        raise ConfigError(
            "--events",
            args.events,
            f"an integer <= {MAX_EVENTS} (the demo holds every event in memory, about 6 kB "
            "each; run stream-detect run on a file for longer streams)",
        )
    if args.seed < 0:
        raise ConfigError("--seed", args.seed, "an integer >= 0")
    # Fail on an unwritable path now, not after the work is done.
    for option, path in (("--emit-alerts", args.emit_alerts), ("--save-events", args.save_events)):
        if path is not None:
            _write_lines(path, [], option)
    report = run_demo(
        args.events,
        args.seed,
        model=args.model,
        transform=args.transform,
        progress_stream=sys.stderr,
        keep_records=args.emit_alerts is not None or args.save_events is not None,
        kafka=args.kafka,
    )
    if args.save_events is not None:
        _write_lines(args.save_events, report.stream.events, "--save-events")
    if args.emit_alerts is not None:
        _write_lines(args.emit_alerts, report.alert_records, "--emit-alerts")
    if args.json:
        print(orjson.dumps(report.to_dict()).decode())
    else:
        print(format_report(report, emit_alerts=args.emit_alerts, save_events=args.save_events))
    return 0


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
            "key_field": _KEY_FIELD,
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


def run_demo(
    n_events: int = 20_000,
    seed: int = 0,
    *,
    model: str = "full",
    transform: str = "auto",
    progress_stream: TextIO | None = None,
    keep_records: bool = False,
    kafka: str | None = None,
) -> DemoReport:
    """Generate a stream, run it through the pipeline, compare the alerts with the truth.

    ``progress_stream`` receives the progress bar (None: no bar).
    ``keep_records`` keeps the alerts' output records in
    :attr:`DemoReport.alert_records` (for ``--emit-alerts``). ``kafka``, when
    not None, runs the stream through Kafka (:mod:`stream_detect.kafka.demo`):
    ``""`` with an embedded broker, else at the ``HOST:PORT`` it names.

    >>> report = run_demo(2000, seed=1)
    >>> report.counts.f1 > 5 * report.chance_f1
    True
    """
    if model not in ("diagonal", "full"):
        raise ConfigError("model", model, "diagonal or full")
    if transform not in ("auto", "none"):
        raise ConfigError("transform", transform, "auto or none")
    started = time.perf_counter()
    stream = generate_events(n_events, seed)
    transforms = choose_transforms(stream) if transform == "auto" else {}
    generated = time.perf_counter()

    detector = DetectorSettings(
        features=stream.features,
        key_field=_KEY_FIELD,
        id_field=_ID_FIELD,
        model=model,
        transforms=transforms or None,
        # Re-tuning by the clock would make the report depend on the machine's speed.
        retune_seconds=0.0,
    )
    settings = RunSettings(emit="all", summary=False)
    sink = ListSink(check_json=False)
    dead_letter = ListSink(check_json=False)
    source = ListSource(stream.events)
    if kafka is not None:
        from stream_detect.kafka.demo import detect_through_kafka

        records, summary = detect_through_kafka(
            stream.events, settings, detector, bootstrap=kafka or None
        )
        sink.write_batch(records)
    elif progress_stream is None:
        summary = run_stream(settings, detector, source=source, sink=sink, dead_letter=dead_letter)
    else:
        with Progress(
            len(stream), "detecting", stream=progress_stream, unit="events", delay=0.25
        ) as progress:
            summary = run_stream(
                settings,
                detector,
                source=source,
                sink=sink,
                dead_letter=dead_letter,
                on_progress=progress.advance,
            )
    detected = time.perf_counter()

    return replace(
        evaluate(stream, sink.records),
        seed=seed,
        model=model,
        transforms=transforms,
        summary=summary.to_dict(),
        seconds_generate=generated - started,
        seconds_detect=detected - generated,
        alert_records=[r for r in sink.records if r.get("alert")] if keep_records else [],
    )


def choose_transforms(stream: SyntheticStream, sample: int = TRANSFORM_SAMPLE) -> dict[str, str]:
    """Transforms for ``--transform auto``: suggested per host, kept where all hosts agree.

    Each host's events among the first ``sample`` of the stream get a
    suggestion per feature from :func:`~stream_detect.transform_suggestions.suggest_transform`,
    which looks at the central 99 % of the values, so that the anomalies in the
    sample do not decide the transform. A feature is transformed only when
    every host with enough events suggests a transform, and then by the
    suggestion most hosts make (ties go to the host with more events).

    >>> choose_transforms(generate_events(3000, seed=0))
    {'latency_ms': 'log', 'error_rate': 'log'}
    """
    head = min(sample, len(stream))
    X = stream.X[:head]
    hosts = np.asarray(stream.hosts[:head])
    votes: dict[str, list[str]] = {name: [] for name in stream.features}
    by_size = sorted(Counter(hosts.tolist()).items(), key=lambda item: -item[1])
    for host, size in by_size:
        if size < _MIN_HOST_SAMPLE:
            continue
        rows = X[hosts == host]
        for j, name in enumerate(stream.features):
            votes[name].append(suggest_transform(rows[:, j]).transform.spec)
    return {
        name: Counter(specs).most_common(1)[0][0]
        for name, specs in votes.items()
        if specs and all(spec != "none" for spec in specs)
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
        row = index.get(str(record.get(_ID_FIELD)))
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
        f"  model       {model}, one per {_KEY_FIELD}; transforms: {transforms}",
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
        f"--key-field {_KEY_FIELD} --id-field {_ID_FIELD}{transform_flags} "
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


def _write_lines(path: str, records: list[dict[str, Any]], option: str) -> None:
    """Replace ``path`` with ``records`` as JSON lines; ConfigError naming ``option`` on failure."""
    try:
        Path(path).write_bytes(b"".join(encode_json_line(record) for record in records))
    except OSError as exc:
        raise ConfigError(option, path, f"a writable file path ({exc.strerror})") from None


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
