"""The streaming Gaussian on the Numenta Anomaly Benchmark, one row per learning policy.

Streams the value column of each of NAB's 58 series (d = 1, one model per
series) through :class:`stream_detect.detector.Detector` and scores the result
with NAB's own rules (:mod:`stream_detect.nab`): a threshold per profile
optimised over the whole corpus, normalised so the null detector scores 0 and
the perfect one 100. Prints one row per policy for what a flagged event does
to the model, next to NAB's published windowedGaussian and the null detector:

    python bench/nab.py [--data NAB_DIR] [--alert-z 4] [--sweep z2|erf] [--jobs 2]
    python bench/nab.py --defaults [--accept-after N ...] [--accept-after-seconds S ...]

NAB_DIR is a copy of NAB v1.1's data/ and labels/ (default: $STREAM_DETECT_REFERENCE_DATA/nab,
else shared/data/nab beside the repository).

Anomaly score. With d = 1 the squared Mahalanobis distance is z², and NAB's
anomaly score is its chi-square(1) distribution function,
``erf(|z| / sqrt 2) = 1 - P(|Z| >= |z|)``, the two-sided Gaussian tail; warm-up
events score 0. That score reaches 1.0 in floating point from |z| of about 8.3
on, which merges every larger deviation into one threshold, so by default the
threshold sweep ranks events by z² itself: NAB's sweep depends only on the
order of the scores, and z² orders events as the erf score would in exact
arithmetic. ``--sweep erf`` ranks by the saturating score, as NAB would on a
results file. The chosen thresholds are printed as |z|.

The detector's own alerts only decide what it learns (NAB has no labels in the
stream): a fixed log ε on the scale-free score, equivalent to ``|z| > --alert-z``.

``--defaults`` runs ``stream-detect run``'s defaults instead: alerts compare the
log tail probability (the prior's Student-t tail) with the default
``log_tail_epsilon``, an alert is learned clipped at ``clip_sigma`` and a run of
``accept_after`` alerts is accepted; the sweep then ranks events by that same
log tail (warm-up events rank last). The defaults read NAB's timestamps, so a
persistent deviation is accepted after ``accept_after_seconds`` of event time
(600 s: two 5-minute rows). ``--accept-after-seconds`` adds rows of ``clip``
with other acceptance times, ``--accept-after`` rows that count events
(as on a stream without timestamps).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.detector import Detector
from stream_detect.nab import CostMatrix, FileLayout, file_layout, score_file
from stream_detect.nab_corpus import (
    normalised_score,
    null_score,
    perfect_score,
    sweep_thresholds,
)
from stream_detect.settings import DetectorSettings

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Timestamps = NDArray[np.datetime64]

#: NAB v1.1's folder: $STREAM_DETECT_REFERENCE_DATA/nab, else shared/data/nab beside the repository.
DEFAULT_DATA = (
    Path(
        os.environ.get("STREAM_DETECT_REFERENCE_DATA")
        or Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    / "nab"
)
#: Profiles in the order NAB's scoreboard lists them, with the short column names used here.
PROFILES = {"standard": "standard", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}
#: NAB's scoreboard entry for its windowedGaussian detector (results/final_results.json).
PUBLISHED_WINDOWED_GAUSSIAN = {
    "standard": 39.6495,
    "reward_low_FP_rate": 20.8680,
    "reward_low_FN_rate": 47.4100,
}
#: The key under which every series gets its own model (one series per detector anyway).
_KEY = "series"


# ------------------------------------------------------------------ corpus I/O


def read_table(path: Path) -> tuple[Timestamps, dict[str, Array]]:
    """A NAB CSV: its ``timestamp`` column and every other column as floats.

    Works for the data files (``timestamp,value``) and the result files
    (``timestamp,value,anomaly_score,label,...``).
    """
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    if not header or header[0] != "timestamp":
        raise ValueError(f"{path}: first column is {header[:1]}, expected 'timestamp'")
    timestamps = np.array([row[0] for row in rows], dtype="datetime64[us]")
    columns = {
        name: np.array([float(row[j]) for row in rows]) for j, name in enumerate(header) if j
    }
    return timestamps, columns


def read_windows(path: Path) -> dict[str, list[tuple[np.datetime64, np.datetime64]]]:
    """``labels/combined_windows.json``: each file's anomaly windows as timestamp pairs."""
    raw: dict[str, list[list[str]]] = json.loads(path.read_text())
    return {
        name: [(np.datetime64(start, "us"), np.datetime64(end, "us")) for start, end in limits]
        for name, limits in raw.items()
    }


def read_profiles(path: Path) -> dict[str, CostMatrix]:
    """``config/profiles.json``: each profile's cost matrix."""
    raw: dict[str, Any] = json.loads(path.read_text())
    return {name: CostMatrix.from_profile(profile) for name, profile in raw.items()}


@dataclass(frozen=True)
class Corpus:
    """NAB's series with their layouts (windows, probation) and the profiles' weights."""

    root: Path
    names: list[str]
    values: list[Array]
    layouts: list[FileLayout]
    profiles: dict[str, CostMatrix]
    timestamps: list[list[str]]

    @classmethod
    def load(cls, root: Path) -> Corpus:
        """Read ``data/``, ``labels/combined_windows.json`` and ``config/profiles.json``."""
        windows = read_windows(root / "labels" / "combined_windows.json")
        names = sorted(windows)
        values, layouts, stamps = [], [], []
        for name in names:
            timestamps, columns = read_table(root / "data" / name)
            values.append(columns["value"])
            layouts.append(file_layout(timestamps, windows[name]))
            stamps.append(np.datetime_as_string(timestamps, unit="s").tolist())
        profiles = read_profiles(root / "config" / "profiles.json")
        return cls(root, names, values, layouts, profiles, stamps)

    @property
    def events(self) -> int:
        """Rows over all series."""
        return sum(v.size for v in self.values)

    def normalised(self, sweep_values: Sequence[Array], profile: str) -> tuple[float, float]:
        """Best normalised score of one detector under a profile, and its threshold."""
        cost = self.profiles[profile]
        threshold, raw = sweep_thresholds(sweep_values, self.layouts, cost).best()
        null, perfect = null_score(self.layouts, cost), perfect_score(self.layouts, cost)
        return normalised_score(raw, null, perfect), threshold

    def normalised_at(
        self, anomaly_scores: Sequence[Array], profile: str, threshold: float
    ) -> float:
        """Normalised score of one detector under a profile at a fixed threshold."""
        cost = self.profiles[profile]
        raw = sum(
            score_file(scores, layout, cost, threshold).score
            for scores, layout in zip(anomaly_scores, self.layouts, strict=True)
        )
        null, perfect = null_score(self.layouts, cost), perfect_score(self.layouts, cost)
        return normalised_score(raw, null, perfect)


# -------------------------------------------------------------------- detector


def nab_anomaly_score(distance_sq: Array, warmup: BoolArray) -> Array:
    """NAB's anomaly score in [0, 1] of a d = 1 event: ``erf(|z| / sqrt 2)``, 0 during warm-up.

    >>> warmup = np.array([False, True, False, False, False])
    >>> nab_anomaly_score(np.array([0.0, 1.0, 1.0, 16.0, 100.0]), warmup).round(6).tolist()
    [0.0, 0.0, 0.682689, 0.999937, 1.0]
    """
    z_abs = np.sqrt(np.where(warmup | ~np.isfinite(distance_sq), 0.0, distance_sq))
    erf = np.frompyfunc(math.erf, 1, 1)
    scores: Array = np.asarray(erf(z_abs / math.sqrt(2.0)), dtype=np.float64)
    return scores


@dataclass(frozen=True)
class StreamResult:
    """What one pass of the detector over a series leaves for scoring."""

    distance_sq: Array
    warmup: BoolArray
    alerts: int
    relearned: int
    log_tail: Array

    @property
    def distance_values(self) -> Array:
        """z², 0 during warm-up: orders events as the NAB score does, without saturating."""
        values: Array = np.where(
            self.warmup | ~np.isfinite(self.distance_sq), 0.0, self.distance_sq
        )
        return values

    def sweep_values(self, on: str) -> Array:
        """What the sweep ranks: ``"z2"`` (exact order), ``"erf"`` (NAB's score) or ``"tail"``."""
        if on == "erf":
            return nab_anomaly_score(self.distance_sq, self.warmup)
        if on == "tail":
            values: Array = np.where(self.warmup | ~np.isfinite(self.log_tail), 0.0, -self.log_tail)
            return values
        return self.distance_values


def stream(
    values: Array,
    settings: DetectorSettings,
    batch_size: int,
    timestamps: Sequence[str] | None = None,
) -> StreamResult:
    """Run one series through a fresh detector, ``batch_size`` events at a time.

    ``timestamps`` reach the detector only when ``settings.timestamp_field`` is set.
    """
    if settings.timestamp_field is None:
        timestamps = None
    detector = Detector(settings, ("value",))
    rows = values.size
    X = values.reshape(rows, 1)
    labels = np.full(rows, -1, dtype=np.int8)
    keys = [_KEY] * rows
    distance_sq = np.empty(rows)
    log_tail = np.empty(rows)
    warmup = np.empty(rows, dtype=bool)
    for start in range(0, rows, batch_size):
        stop = min(rows, start + batch_size)
        stamps = None if timestamps is None else timestamps[start:stop]
        out = detector.process(X[start:stop], labels[start:stop], keys[start:stop], None, stamps)
        distance_sq[start:stop] = out.distance_sq
        log_tail[start:stop] = out.log_tail
        warmup[start:stop] = out.warmup
    return StreamResult(distance_sq, warmup, detector.alerts, detector.relearned, log_tail)


def _stream_task(
    task: tuple[int, Array, DetectorSettings, int, list[str]],
) -> tuple[int, StreamResult]:
    index, values, settings, batch_size, timestamps = task
    return index, stream(values, settings, batch_size, timestamps)


@dataclass(frozen=True)
class Policy:
    """A row of the table: a label and the detector settings it runs with."""

    label: str
    settings: DetectorSettings


def default_policies(
    base: DetectorSettings, accept_after: Sequence[int], accept_seconds: Sequence[float]
) -> list[Policy]:
    """``run``'s defaults with each learning policy, and ``clip`` with other acceptance times.

    The defaults read NAB's timestamps, so the acceptance time is
    ``accept_after_seconds`` of event time; ``accept_after`` rows count events
    instead, as a stream without timestamps does.
    """
    seconds = f"{base.accept_after_seconds:g} s"
    rows = [
        Policy(f"{flagged}, accept after {seconds}", replace(base, flagged=flagged))
        for flagged in ("exclude", "clip", "learn")
    ]
    rows += [
        Policy(f"clip, accept after {after:g} s", replace(base, accept_after_seconds=after))
        for after in accept_seconds
        if after != base.accept_after_seconds
    ]
    rows += [
        Policy(
            f"clip, accept after {after} events",
            replace(base, accept_after=after, accept_after_seconds=0.0),
        )
        for after in accept_after
    ]
    return rows


def policies(base: DetectorSettings, half_life: float) -> list[Policy]:
    """The learning policies compared: what a flagged event does to the model."""
    default_accept = 25
    return [
        Policy("exclude, accept off", replace(base, flagged="exclude", accept_after=0)),
        Policy(
            f"exclude, accept_after={default_accept}",
            replace(base, flagged="exclude", accept_after=default_accept),
        ),
        Policy("clip", replace(base, flagged="clip", accept_after=default_accept)),
        Policy("learn", replace(base, flagged="learn")),
        Policy(
            f"learn, half_life={half_life:g}", replace(base, flagged="learn", half_life=half_life)
        ),
    ]


# ----------------------------------------------------------------------- table


@dataclass(frozen=True)
class Row:
    """One line of the printed table."""

    label: str
    scores: dict[str, float]
    note: str = ""


def format_table(rows: Sequence[Row]) -> str:
    """The rows as aligned text, profiles as columns."""
    width = max(len(row.label) for row in rows)
    head = f"{'detector':<{width}}  " + "  ".join(f"{short:>8}" for short in PROFILES.values())
    lines = [head, "-" * (len(head) + 2)]
    for row in rows:
        cells = "  ".join(f"{row.scores[p]:8.2f}" for p in PROFILES)
        lines.append(f"{row.label:<{width}}  {cells}  {row.note}".rstrip())
    return "\n".join(lines)


def _threshold_note(thresholds: dict[str, float], on: str) -> str:
    """The chosen thresholds per profile, as |z| (inf: detecting nothing scored best)."""
    if on == "erf":
        cells = [f"{thresholds[p]:.6f}" for p in PROFILES]
        return "score >= " + " / ".join(cells)
    if on == "tail":
        return "log tail <= " + " / ".join(f"{-thresholds[p]:.2f}" for p in PROFILES)
    z = [math.sqrt(thresholds[p]) for p in PROFILES]
    return "|z| >= " + " / ".join(f"{v:.2f}" if v < 1e3 else f"{v:.3g}" for v in z)


def run(args: argparse.Namespace) -> int:
    """Load the corpus, stream every policy, print the table."""
    began = time.perf_counter()
    corpus = Corpus.load(args.data)
    missing = [p for p in PROFILES if p not in corpus.profiles]
    if missing:
        print(
            f"nab.py: profiles {missing} missing from {args.data}/config/profiles.json",
            file=sys.stderr,
        )
        return 2
    if args.defaults:
        base = DetectorSettings(
            key_field=_KEY,
            timestamp_field="timestamp",
            min_samples=args.min_samples,
            retune_every=0,
            retune_seconds=0.0,
        )
        chosen = default_policies(base, args.accept_after, args.accept_after_seconds)
        args.sweep = "tail"
    else:
        # log p of the standardised event at |z| = alert_z, so an alert means |z| > alert_z.
        log_epsilon = -0.5 * (args.alert_z**2 + math.log(2.0 * math.pi))
        base = DetectorSettings(
            key_field=_KEY,
            min_samples=args.min_samples,
            log_epsilon=log_epsilon,
            retune_every=0,
            retune_labels=0,
            retune_seconds=0.0,
        )
        chosen = policies(base, args.half_life)
    tasks = [
        (p * len(corpus.names) + f, values, policy.settings, args.batch_size, stamps)
        for p, policy in enumerate(chosen)
        for f, (values, stamps) in enumerate(zip(corpus.values, corpus.timestamps, strict=True))
    ]
    # Longest series first, so the last worker does not start the biggest job.
    tasks.sort(key=lambda task: -task[1].size)
    results: dict[int, StreamResult] = {}
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            results.update(pool.map(_stream_task, tasks, chunksize=4))
    else:
        results.update(map(_stream_task, tasks))
    streamed = time.perf_counter() - began

    rows = [Row("perfect", dict.fromkeys(PROFILES, 100.0))]
    n_files = len(corpus.names)
    for p, policy in enumerate(chosen):
        per_file = [results[p * n_files + f] for f in range(n_files)]
        sweep_values = [r.sweep_values(args.sweep) for r in per_file]
        scores, thresholds = {}, {}
        for profile in PROFILES:
            scores[profile], thresholds[profile] = corpus.normalised(sweep_values, profile)
        alerts = sum(r.alerts for r in per_file) / corpus.events
        relearned = sum(r.relearned for r in per_file)
        note = f"{_threshold_note(thresholds, args.sweep)}; alerts {alerts:.2%}"
        if relearned:
            note += f", relearned {relearned}"
        rows.append(Row(f"stream_detect flagged={policy.label}", scores, note))
    rows.append(Row("windowedGaussian (NAB published)", PUBLISHED_WINDOWED_GAUSSIAN, "NAB thr 1.0"))
    rows.extend(_windowed_gaussian_rows(corpus))
    rows.append(Row("null", dict.fromkeys(PROFILES, 0.0)))

    alerting = (
        f"log tail < {base.log_tail_epsilon:.2f} (run's defaults)"
        if args.defaults
        else f"|z| > {args.alert_z:g}"
    )
    ranked = {"z2": "z²", "erf": "the erf score", "tail": "the log tail"}[args.sweep]
    print(
        f"NAB v1.1 from {args.data}: {n_files} series, {corpus.events:,} events; "
        f"detector d=1, min_samples={args.min_samples}, alerts (for learning) at "
        f"{alerting}; NAB threshold optimised per profile over the corpus (sweep on {ranked})"
    )
    print(format_table(rows))
    print(
        f"time: {time.perf_counter() - began:.1f} s ({streamed:.1f} s loading and streaming "
        f"{len(chosen)} policies on {args.jobs} processes)"
    )
    return 0


def _windowed_gaussian_rows(corpus: Corpus) -> list[Row]:
    """NAB's own windowedGaussian result files re-scored here, if they are present."""
    folder = corpus.root / "results" / "windowedGaussian"
    if not folder.is_dir():
        return []
    scores = []
    for name in corpus.names:
        group, file_name = os.path.split(name)
        _, columns = read_table(folder / group / f"windowedGaussian_{file_name}")
        scores.append(columns["anomaly_score"])
    at_one = {p: corpus.normalised_at(scores, p, 1.0) for p in PROFILES}
    best, thresholds = {}, {}
    for profile in PROFILES:
        best[profile], thresholds[profile] = corpus.normalised(scores, profile)
    optimised = " / ".join(f"{thresholds[p]:.4f}" for p in PROFILES)
    return [
        Row("windowedGaussian (re-scored here, thr 1.0)", at_one, "checks the scorer"),
        Row("windowedGaussian (re-scored, optimised)", best, f"thr {optimised}"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help=f"NAB v1.1 folder (default {DEFAULT_DATA})"
    )
    parser.add_argument("--alert-z", type=float, default=4.0, help="|z| above which it alerts")
    parser.add_argument("--min-samples", type=int, default=DetectorSettings.min_samples)
    parser.add_argument("--half-life", type=float, default=1000.0, help="for the half-life row")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument(
        "--sweep",
        choices=("z2", "erf"),
        default="z2",
        help="rank events by z² (default) or by the erf score, which is 1.0 from |z| ~ 8.3 on",
    )
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="run's default thresholds and learning, ranked by the log tail",
    )
    parser.add_argument(
        "--accept-after",
        type=int,
        nargs="*",
        default=[],
        help="with --defaults: more clip rows with these acceptance times in events "
        "(timestamps ignored for acceptance, as on a stream without them)",
    )
    parser.add_argument(
        "--accept-after-seconds",
        type=float,
        nargs="*",
        default=[],
        help="with --defaults: more clip rows with these acceptance times in seconds",
    )
    args = parser.parse_args(argv)
    if not (args.data / "data").is_dir() or not (args.data / "labels").is_dir():
        print(
            f"nab.py: no NAB corpus at {args.data} (expected data/ and labels/ there; "
            "pass --data DIR or set STREAM_DETECT_REFERENCE_DATA)",
            file=sys.stderr,
        )
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
