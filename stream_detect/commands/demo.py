"""``stream-detect demo``: the detector on a generated, labelled stream, scored against the truth.

The stream comes from :func:`stream_detect.synthetic.generate_events`: server
metrics from three hosts with skewed features, correlated pairs, about 1 %
point, contextual and burst anomalies, and inline labels on 3 % of the events.
It runs through the same pipeline as ``stream-detect run``
(:func:`stream_detect.assembly.run_stream`, every event in, every result out),
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
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import orjson

from stream_detect.assembly import run_stream
from stream_detect.commands.demo_report import (
    ID_FIELD,
    KEY_FIELD,
    DemoReport,
    evaluate,
    format_report,
)
from stream_detect.distinct_files import same_file
from stream_detect.errors import ConfigError
from stream_detect.flags import StoreOnce, file_name
from stream_detect.progress import Progress
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sinks.json_encoding import encode_json_line
from stream_detect.synthetic import SyntheticStream, generate_events
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``demo``."""
    parser.add_argument(
        "--events",
        action=StoreOnce,
        type=int,
        default=20_000,
        metavar="N",
        help=f"length of the generated stream (default: 20000, at least {MIN_EVENTS}, "
        f"at most {MAX_EVENTS}: the demo holds every event in memory, about 6 kB each)",
    )
    parser.add_argument(
        "--seed",
        action=StoreOnce,
        type=int,
        default=0,
        help="seed of the generator, an integer >= 0 (default: 0)",
    )
    parser.add_argument(
        "--model",
        action=StoreOnce,
        choices=("diagonal", "full"),
        default="full",
        help="full covariance (default: the stream has correlated pairs) "
        "or independent features (diagonal)",
    )
    parser.add_argument(
        "--transform",
        action=StoreOnce,
        choices=("auto", "none"),
        default="auto",
        help="auto: log or root transforms of skewed features, suggested from the first "
        f"{TRANSFORM_SAMPLE} events (default); none: model the raw values",
    )
    parser.add_argument(
        "--emit-alerts",
        type=file_name,
        action=StoreOnce,
        metavar="FILE",
        help="also write the alerts as JSON lines to FILE (replaced if it exists)",
    )
    parser.add_argument(
        "--save-events",
        type=file_name,
        action=StoreOnce,
        metavar="FILE",
        help="also write the generated events as JSON lines to FILE, to replay them "
        "with stream-detect run (replaced if it exists)",
    )
    parser.add_argument(
        "--kafka",
        action=StoreOnce,
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
    if args.kafka:
        from stream_detect.kafka.address import brokers

        # An address no client can dial is said now, not after the 10 s bootstrap wait.
        brokers(args.kafka, config_key="--kafka", value=args.kafka)
    if (
        args.emit_alerts is not None
        and args.save_events is not None
        and same_file(args.emit_alerts, args.save_events)
    ):
        # Both replace their file: the alerts written last would destroy the saved events.
        raise ConfigError(
            "--emit-alerts",
            args.emit_alerts,
            f"a file other than the one --save-events writes ({args.save_events!r})",
        )
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
        key_field=KEY_FIELD,
        id_field=ID_FIELD,
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


def _write_lines(path: str, records: list[dict[str, Any]], option: str) -> None:
    """Replace ``path`` with ``records`` as JSON lines; ConfigError naming ``option`` on failure."""
    try:
        Path(path).write_bytes(b"".join(encode_json_line(record) for record in records))
    except OSError as exc:
        raise ConfigError(option, path, f"a writable file path ({exc.strerror})") from None
