"""Derived features, a Gaussian each, and the anomaly likelihood on NAB, without labels.

The pipeline, per series and causal row by row:

1. three derived features of the value (:mod:`stream_detect.derived`): the
   seasonal residual by hour of day, the moving mean of 12 and the rolling
   population std of 48;
2. per feature a Welford Gaussian (no forgetting) scores |z| from the rows
   before, then learns the row; an event with |z| > k (``--clip``, 6) is, by
   policy, learned clipped to μ ± kσ (``clip``), not learned (``exclude``) or
   learned as is (``learn``). Scores count from the first rows; while a
   feature has been constant its variance is floored by its resolution (the
   smallest change seen so far, current row included: (step)²/12);
3. :class:`stream_detect.likelihood.AnomalyLikelihood` per feature, smallest
   tail wins (times 3), the onset rule; the NAB threshold on ``p`` is swept
   over a log grid, with an alert suppressing others for the refractory
   period (30 rows) at each threshold, scored by :mod:`stream_detect.nab`.

Prints the configurations tried with their NAB standard / low-FP / low-FN
scores, and a split-half estimate of how much the best one owes to being the
best of those tried (choose config and threshold on a random half of the
files, score on the other half; ``--splits``, 50 by default):

    python bench/nab_unlabelled.py [NAB_DIR] [--jobs 2] [--grid] [--splits 200]

Without ``--grid`` it runs the three flagged-event policies (about a minute
on two cores); ``--grid`` adds the 25 variants tried (about 7 minutes).

NAB_DIR defaults to $STREAM_DETECT_REFERENCE_DATA/nab (else shared/data/nab
beside the repository).
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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from stream_detect.derived import DerivedFeature, MovingMean, RollingStd, SeasonalResidual
from stream_detect.likelihood import AnomalyLikelihood, refractory_alerts
from stream_detect.nab import CostMatrix, FileLayout, file_layout, score_file
from stream_detect.nab_corpus import normalised_score, null_score, perfect_score
from stream_detect.prior import NormalInverseGammaPrior
from stream_detect.tails import student_t_log_tail
from stream_detect.timestamps import wall_clock_seconds

Array = NDArray[np.float64]

DEFAULT_DATA = (
    Path(
        os.environ.get("STREAM_DETECT_REFERENCE_DATA")
        or Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    / "nab"
)
PROFILES = {"standard": "standard", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}
#: Candidate thresholds on p (an alert when p <= threshold): 1e-2 .. 1e-10.
LOG_THRESHOLDS = np.log(10.0 ** -np.arange(2.0, 10.01, 0.1))


@dataclass(frozen=True)
class Config:
    """One pipeline configuration."""

    policy: str = "clip"
    clip: float = 6.0
    season: str = "hour_of_day"
    moving_mean: int = 12
    rolling_std: int = 48
    averaging: int = 10
    window: int = 8640
    reestimate_every: int = 100
    refractory: int = 30
    learning_period: int = 0
    resolution_floor: bool = True
    floor_divisor: float = 12.0
    sample_variance: bool = False
    flat_variance: float = 1.5e-5
    raw_score: str = "z"

    def label(self) -> str:
        base = Config()
        changed = [f"{k}={v}" for k, v in asdict(self).items() if getattr(base, k) != v]
        return ", ".join(changed) or "as specified"


@dataclass(frozen=True)
class Series:
    name: str
    values: Array
    wall_seconds: Array
    layout: FileLayout


def load(root: Path) -> tuple[list[Series], dict[str, CostMatrix]]:
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    series = []
    for name in sorted(windows):
        with (root / "data" / name).open(newline="") as handle:
            rows = list(csv.reader(handle))[1:]
        stamps = [row[0] for row in rows]
        limits = [(np.datetime64(a, "us"), np.datetime64(b, "us")) for a, b in windows[name]]
        layout = file_layout(np.array(stamps, dtype="datetime64[us]"), limits)
        values = np.array([float(row[1]) for row in rows])
        series.append(Series(name, values, wall_clock_seconds(stamps), layout))
    raw = json.loads((root / "config" / "profiles.json").read_text())
    return series, {p: CostMatrix.from_profile(raw[p]) for p in PROFILES}


def gaussian_scores(values: Array, config: Config) -> Array:
    """|z| of each row against a Welford Gaussian of the rows before (see the docstring)."""
    out = np.zeros(values.size)
    # For raw_score "t": the Student-t predictive of the weak prior, as |z| of equal tail.
    prior = NormalInverseGammaPrior()
    t_ratio = np.zeros(values.size)
    dof = np.ones(values.size)
    count, mean, m2 = 0, 0.0, 0.0
    step = math.inf
    previous = math.nan
    for row, x in enumerate(values.tolist()):
        if count and x != previous and abs(x - previous) < step:
            step = abs(x - previous)
        previous = x
        if count:
            resolved = config.resolution_floor and math.isfinite(step)
            floor = step * step / config.floor_divisor if resolved else 0.0
            spread = m2 / (count - 1) if config.sample_variance and count > 1 else m2 / count
            var = max(spread, floor, 1e-300)
            std = math.sqrt(var)
            z = (x - mean) / std
            out[row] = abs(z) if config.raw_score == "z" else math.erf(abs(z) / math.sqrt(2.0))
            kappa = prior.kappa + count
            alpha = prior.alpha + count / 2.0
            beta = prior.beta + m2 / 2.0 + prior.kappa * count * mean * mean / (2.0 * kappa)
            location = count * mean / kappa
            t_ratio[row] = (x - location) / math.sqrt(beta * (kappa + 1.0) / (alpha * kappa))
            dof[row] = 2.0 * alpha
            if abs(z) > config.clip:
                if config.policy == "exclude":
                    continue
                if config.policy == "clip":
                    x = mean + math.copysign(config.clip * std, z)
        count += 1
        delta = x - mean
        mean += delta / count
        m2 += delta * (x - mean)
    if config.raw_score == "t":
        out = np.sqrt(-2.0 * student_t_log_tail(t_ratio, dof))
    return out


def run_series(task: tuple[int, Series, Config]) -> tuple[int, Array]:
    """log p per row of one series (after the onset rule, before the refractory period)."""
    index, series, config = task
    features: list[DerivedFeature] = [
        SeasonalResidual(config.season),  # type: ignore[arg-type]
        MovingMean(config.moving_mean),
        RollingStd(config.rolling_std),
    ]
    keys = ["series"] * series.values.size
    derived = np.column_stack(
        [f.update(series.values, keys, series.wall_seconds) for f in features]
    )
    scores = np.column_stack([gaussian_scores(derived[:, j], config) for j in range(3)])
    layer = AnomalyLikelihood(
        3,
        window=config.window,
        averaging=config.averaging,
        reestimate_every=config.reestimate_every,
        refractory=config.refractory,
        learning_period=config.learning_period,
        flat_variance=config.flat_variance,
    )
    return index, layer.update(scores, derived).log_p


def score_table(
    log_p: Sequence[Array], layouts: Sequence[FileLayout], cost: CostMatrix, refractory: int
) -> Array:
    """Raw NAB score of every candidate threshold, summed over the files given."""
    totals = np.zeros(LOG_THRESHOLDS.size)
    for series_log_p, layout in zip(log_p, layouts, strict=True):
        for t, log_threshold in enumerate(LOG_THRESHOLDS):
            alerts, _ = refractory_alerts(series_log_p, float(log_threshold), refractory, 10**9)
            totals[t] += score_file(alerts.astype(np.float64), layout, cost, 0.5).score
    return totals


def normalised(raw: Array, layouts: Sequence[FileLayout], cost: CostMatrix) -> Array:
    null, perfect = null_score(layouts, cost), perfect_score(layouts, cost)
    return np.array([normalised_score(float(r), null, perfect) for r in raw])


def configurations(grid: bool) -> list[Config]:
    base = Config()
    configs = [base, replace(base, policy="exclude"), replace(base, policy="learn")]
    if grid:
        configs += [
            replace(base, clip=4.0),
            replace(base, clip=8.0),
            replace(base, averaging=5),
            replace(base, moving_mean=6),
            replace(base, rolling_std=24),
            replace(base, season="hour_of_week"),
            replace(base, refractory=0),
            replace(base, refractory=60),
            replace(base, learning_period=288),
            replace(base, resolution_floor=False),
            replace(base, floor_divisor=1.0),
            replace(base, floor_divisor=48.0),
            replace(base, sample_variance=True),
            replace(base, flat_variance=0.0),
            replace(base, clip=7.0),
            replace(base, refractory=45),
            replace(base, raw_score="erf"),
            replace(base, raw_score="erf", policy="exclude"),
            replace(base, raw_score="erf", policy="learn"),
            replace(base, raw_score="t"),
            replace(base, raw_score="t", policy="exclude"),
            replace(base, policy="exclude", refractory=60),
            replace(base, policy="exclude", clip=8.0),
            replace(base, policy="exclude", refractory=60, clip=8.0),
            replace(base, policy="exclude", refractory=90),
        ]
    return configs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, nargs="?", default=DEFAULT_DATA)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--grid", action="store_true", help="also try the variants")
    parser.add_argument("--splits", type=int, default=50)
    args = parser.parse_args(argv)
    if not (args.data / "data").is_dir():
        print(f"nab_unlabelled.py: no NAB corpus at {args.data}", file=sys.stderr)
        return 2
    began = time.perf_counter()
    series, profiles = load(args.data)
    configs = configurations(args.grid)
    tasks = [
        (c * len(series) + f, s, cfg) for c, cfg in enumerate(configs) for f, s in enumerate(series)
    ]
    tasks.sort(key=lambda task: -task[1].values.size)
    results: dict[int, Array] = {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results.update(pool.map(run_series, tasks, chunksize=2))
    layouts = [s.layout for s in series]
    n = len(series)
    # tables[config][profile][file] = raw score per threshold
    tables = []
    for c, cfg in enumerate(configs):
        per_file = {
            p: np.array(
                [
                    score_table([results[c * n + f]], [layouts[f]], cost, cfg.refractory)
                    for f in range(n)
                ]
            )
            for p, cost in profiles.items()
        }
        tables.append(per_file)

    rows = sum(s.values.size for s in series)
    print(f"NAB v1.1: {n} series, {rows:,} rows; {len(configs)} configurations tried")
    print(
        f"{'configuration':<32}"
        + "".join(f"{short:>9}" for short in PROFILES.values())
        + "  p threshold (std)"
    )
    for c, cfg in enumerate(configs):
        cells, best_threshold = [], 0.0
        for p, cost in profiles.items():
            scores = normalised(tables[c][p].sum(axis=0), layouts, cost)
            best = int(np.flatnonzero(scores == scores.max())[-1])
            cells.append(scores[best])
            if p == "standard":
                best_threshold = math.exp(LOG_THRESHOLDS[best])
        print(
            f"{cfg.label():<32}" + "".join(f"{v:9.2f}" for v in cells) + f"  {best_threshold:.1e}"
        )

    # Split-half: choose config and threshold on half A, score them on half B.
    rng = np.random.default_rng(0)
    cost = profiles["standard"]
    chosen, in_sample = [], []
    for _ in range(args.splits):
        order = rng.permutation(n)
        a, b = order[: n // 2], order[n // 2 :]
        la, lb = [layouts[i] for i in a], [layouts[i] for i in b]
        score_a = [
            normalised(tables[c]["standard"][a].sum(axis=0), la, cost) for c in range(len(configs))
        ]
        score_b = [
            normalised(tables[c]["standard"][b].sum(axis=0), lb, cost) for c in range(len(configs))
        ]
        c_best = int(np.argmax([s.max() for s in score_a]))
        t_best = int(np.argmax(score_a[c_best]))
        chosen.append(score_b[c_best][t_best])
        in_sample.append(max(s.max() for s in score_b))
    gap = float(np.mean(in_sample) - np.mean(chosen))
    print(
        f"split-half ({args.splits} splits, standard): best-on-the-half {np.mean(in_sample):.2f}, "
        f"chosen on the other half {np.mean(chosen):.2f}; selection worth {gap:.2f} points"
    )
    print(f"time: {time.perf_counter() - began:.1f} s on {args.jobs} processes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
