"""Typed settings of the streaming detector and of ``stream-detect run``.

Each field carries its help text and its rule in ``metadata``, so the command
line flags, the TOML keys and the validation all come from this one place:
flag ``--max-latency-ms`` is key ``max_latency_ms`` is field ``max_latency_ms``.
The classes check themselves when built (:mod:`stream_detect.validation`), so
settings made in Python meet the same rules, and the same errors, as flags and
config files:

>>> RunSettings(batch_size=0)
Traceback (most recent call last):
...
stream_detect.errors.ConfigError: config key batch_size: got 0, expected an integer >= 1

The ``[transforms]`` table has no flag of its name: ``--transform FEATURE=SPEC``
adds one entry; ``[model_params]`` is a config table only.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

from stream_detect.model_kinds import MODEL_PATTERN
from stream_detect.setting_combinations import check_detector, check_run_with_detector
from stream_detect.validation import check_fields

__all__ = [
    "DEFAULT_ACCEPT_AFTER",
    "DEFAULT_ACCEPT_AFTER_SECONDS",
    "DEFAULT_LOG_TAIL_EPSILON",
    "DetectorSettings",
    "RunSettings",
    "check_run_with_detector",
]

#: log 1e-6: one false alert per million normal events, on any stream and key.
DEFAULT_LOG_TAIL_EPSILON = math.log(1e-6)
#: Consecutive alerts after which a persistent deviation is the new normal.
DEFAULT_ACCEPT_AFTER = 600
#: The same in seconds of event time, for streams whose events carry timestamps.
DEFAULT_ACCEPT_AFTER_SECONDS = 600.0


def _opt(default: Any, help_text: str, **rules: Any) -> Any:
    """A dataclass field with its help text and validation rules as metadata."""
    return field(default=default, metadata={"help": help_text, **rules})


@dataclass(frozen=True)
class DetectorSettings:
    """How events are scored, thresholded and learned.

    >>> DetectorSettings().log_tail_epsilon == DEFAULT_LOG_TAIL_EPSILON
    True
    """

    features: tuple[str, ...] | None = _opt(
        None,
        "features to model, comma-separated (default: the numeric fields that most "
        "events of the first batch carry)",
    )
    key_field: str | None = _opt(None, "field whose value selects a separate model per key")
    id_field: str | None = _opt(None, "field that identifies an event (for feedback labels)")
    label_field: str | None = _opt(
        "label", "field holding an inline label: 1 anomaly, 0 normal (none: events carry no labels)"
    )
    timestamp_field: str | None = _opt(None, "field holding the event time, copied to alerts")
    model: str = _opt(
        "diagonal",
        "diagonal | full | river:NAME, NAME an unsupervised river.anomaly detector "
        "(HalfSpaceTrees, LODA, OneClassSVM, ...; a bad name lists them all)",
        pattern=MODEL_PATTERN,
        words="diagonal, full, or river:NAME",
    )
    model_params: dict[str, Any] | None = _opt(
        None, "parameters of a river model (config table [model_params] only)", cli=False
    )
    river_scaler: str = _opt(
        "minmax",
        "scaler in front of a river model: minmax | standard | none",
        choices=("minmax", "standard", "none"),
    )
    transforms: dict[str, str] | None = _opt(
        None, "per-feature transforms FEATURE=SPEC (log, log:C, sqrt, root:K)", cli=False
    )
    min_samples: int = _opt(50, "events a model learns before it may raise alerts", min=1)
    log_epsilon: float | None = _opt(
        None,
        "threshold on the classic score: log p(x) with one model, the scale-free log density "
        "with a model per key (default: none; alerts compare the log tail with --log-tail-epsilon)",
    )
    log_tail_epsilon: float = _opt(
        DEFAULT_LOG_TAIL_EPSILON,
        "without --log-epsilon, alert when the log tail probability is below this "
        "(log 1e-6: about one false alert per million normal events)",
        max=0.0,
    )
    alerts_per_day: float | None = _opt(
        None,
        "budget mode: re-tune --log-tail-epsilon so that about N alerts a day are raised, from "
        "the scores of events that did not alert (needs --timestamp-field or --events-per-day)",
        min=1e-9,
    )
    events_per_day: float | None = _opt(
        None,
        "events a day that --alerts-per-day assumes (default: measured from --timestamp-field)",
        min=1e-9,
    )
    prior: bool = _opt(
        True,
        "score a diagonal model's tail with a weak Normal-Inverse-Gamma prior per feature "
        "(Student-t predictive; off: the chi-squared tail of the floored Gaussian)",
    )
    direction: dict[str, str] | None = _opt(
        None,
        "per-feature direction FEATURE=high|low|both: a deviation the other way scores as the mean",
        cli=False,
    )
    flagged: str | None = _opt(
        None,
        "what an alert teaches the model: exclude | clip (learned at most --clip-sigma from "
        "the mean) | learn (default: clip; exclude for a river model)",
        choices=("exclude", "clip", "learn"),
    )
    clip_sigma: float = _opt(
        6.0, "with --flagged clip, an alert is learned pulled to this many sigma", min=0.0
    )
    learn_labelled: bool = _opt(False, "also learn labelled events (default: hold them out)")
    accept_after: int = _opt(
        DEFAULT_ACCEPT_AFTER,
        "events a persistent deviation takes to be accepted as the new normal: alerts of a "
        "key count up, calm events down; at this count its alerts are learned, the key's "
        "history first discounted to their weight or --min-samples if larger (0: never)",
        min=0,
    )
    accept_after_seconds: float = _opt(
        DEFAULT_ACCEPT_AFTER_SECONDS,
        "with --timestamp-field, --accept-after as a duration of event time: converted to "
        "events of a key at its measured event rate (600 s: 600 events at 1 Hz, 2 events of "
        "5-minute metrics; with --key-field, the stream's rate divided by the keys held); "
        "0: --accept-after events whatever the rate",
        min=0.0,
    )
    half_life: float | None = _opt(
        None, "forget exponentially with this half-life in learned events (default: off)", min=1.0
    )
    retune_every: int = _opt(
        1000,
        "re-tune epsilon every N events (0: off; while no epsilon is set, every 100 "
        "events or N if fewer, even with 0)",
        min=0,
    )
    retune_labels: int = _opt(10, "re-tune epsilon after K new labels (0 turns it off)", min=0)
    retune_seconds: float = _opt(60.0, "re-tune epsilon every T seconds (0 turns it off)", min=0.0)
    min_positive_labels: int = _opt(5, "anomaly labels needed to tune epsilon by F1", min=1)
    min_negative_labels: int = _opt(50, "normal labels needed to tune epsilon by F1", min=1)
    validation_size: int = _opt(
        2000, "labelled events kept for re-tuning, per class", min=1, bytes_each=48
    )
    max_keys: int = _opt(10000, "models kept at once; the least recently seen is evicted", min=1)
    id_memory: int = _opt(
        10000, "recent events remembered by id for feedback labels", min=0, bytes_each=24
    )
    # The smallest normal double (density.SMALLEST_VARIANCE_FLOOR, whose note says why;
    # not imported, since the command line starts without numpy).
    variance_floor: float = _opt(
        1e-12,
        "absolute lower bound on a variance, at least 2.2250738585072014e-308 (the smallest "
        "normal double; 0 would leave a feature constant at 0 without a density)",
        min=sys.float_info.min,
    )
    top_contributions: int = _opt(3, "features listed in an alert's contributions", min=1)
    derived: dict[str, Any] | None = _opt(
        None,
        "time-series features NAME = {of = FIELD, kind = seasonal | moving_mean | rolling_std | "
        "difference | value, ...} (config table [derived]; --derive NAME=KIND:FIELD[:ARG])",
        cli=False,
    )
    time_zone: str = _opt("UTC", "IANA time zone of the wall clock seasonal features use")
    likelihood: bool = _opt(
        False, "alert on the anomaly likelihood of each feature's |z| (score: its log p)"
    )
    # Kept per feature (and key) as the stream goes: a bound keeps memory from growing for ever.
    likelihood_window: int = _opt(
        8640, "rows the likelihood's Gaussian is estimated on", min=1, max=1_000_000
    )
    # Each batch walks the averaged scores one lag at a time: a bound keeps that finite.
    likelihood_averaging: int = _opt(
        10, "raw scores averaged by the likelihood", min=1, max=100_000
    )
    likelihood_reestimate_every: int = _opt(
        100, "rows between re-estimations of the likelihood's Gaussian", min=1
    )
    # Counted in 64-bit row numbers: a bound far beyond any stream keeps the count exact.
    likelihood_refractory: int = _opt(
        30, "rows after a likelihood alert with no alert", min=0, max=10**15
    )
    likelihood_alert_p: float = _opt(
        1e-5, "likelihood tail p at or below which an event alerts", min=1e-300, max=0.5
    )
    likelihood_clip: float = _opt(
        6.0, "|z| past which the likelihood's Gaussians treat a value as flagged", min=0.5
    )
    likelihood_flagged: str = _opt(
        "clip",
        "what a flagged value teaches the likelihood's Gaussians: clip (to likelihood_clip "
        "sigma) | exclude | learn",
        choices=("clip", "exclude", "learn"),
    )

    def __post_init__(self) -> None:
        check_fields(self)
        check_detector(self)


@dataclass(frozen=True)
class RunSettings:
    """Where events come from and go, batching, checkpoints and output."""

    source: str = _opt(
        "-",
        "input URI: - (stdin), file:PATH[?follow=true], kafka://HOST:PORT/TOPIC?group=G, "
        "prometheus://HOST:PORT/metrics?every=15s, promql://HOST:PORT?query=EXPR",
    )
    sink: str = _opt(
        "-",
        "output URI: - (stdout), stderr, file:PATH[?fsync=true], kafka://HOST:PORT/TOPIC, "
        "alertmanager://HOST:PORT (fsync=true: every flush also syncs the file to disk, so "
        "results survive a power cut)",
    )
    dead_letter: str = _opt(
        "stderr", "URI for bad records: stderr, -, file:PATH[?fsync=true], kafka://HOST:PORT/TOPIC"
    )
    labels: str | None = _opt(
        None,
        "URI of feedback labels: JSON lines naming an earlier event by its --id-field, "
        "with its --label-field",
    )
    format: str = _opt(
        "auto",
        "input format when the source does not say: auto | json | csv",
        choices=("auto", "json", "csv"),
    )
    emit: str = _opt("alerts", "what to write: alerts | all", choices=("alerts", "all"))
    checkpoint: str | None = _opt(None, "checkpoint file (JSON), restored at start if present")
    initial_model: str | None = _opt(
        None,
        "model file written by `stream-detect fit --out` to start from: no warm-up, its "
        "features, transforms and log epsilon; it keeps learning (a checkpoint, if present, wins)",
    )
    state_dir: str | None = _opt(
        None,
        "directory of per-partition checkpoints of a kafka:// source, restored on "
        "assignment (made if missing)",
    )
    kafka: dict[str, Any] | None = _opt(
        None,
        "kafka-python client options (config table [kafka] only; NAME_env reads $VALUE)",
        cli=False,
    )
    checkpoint_every: int = _opt(100000, "checkpoint every N events (0: off)", min=0)
    checkpoint_seconds: float = _opt(
        30.0, "checkpoint every T seconds (0: off; with both off, only at exit)", min=0.0
    )
    # A batch's numpy work is fixed cost per call: up to a few thousand rows it shrinks
    # per event; max_latency_ms bounds the wait when events come slowly.
    batch_size: int = _opt(
        4096, "events scored together (the scores agree to about 1e-12 for any size)", min=1
    )
    max_latency_ms: float = _opt(
        100.0, "longest an event waits before its result is written", min=1.0
    )
    max_line_bytes: int = _opt(1 << 20, "longer input lines go to dead letters", min=64)
    max_key_bytes: int = _opt(
        256, "events whose key or id is longer (UTF-8 bytes) go to dead letters", min=1
    )
    summary: bool = _opt(True, "print a JSON summary to stderr at exit")
    progress: bool = _opt(True, "show events/s on stderr while it is a terminal")
    http: str | None = _opt(
        None, "serve /metrics, /healthz and /readyz on HOST:PORT, 127.0.0.1:9464 (default off)"
    )
    metrics_top_keys: int = _opt(20, "keys with their own score series on /metrics at most", min=0)

    def __post_init__(self) -> None:
        check_fields(self)
