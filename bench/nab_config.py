"""configs/nab.toml over the whole NAB corpus, through `stream-detect replay`'s own path.

Each NAB file is replayed as it would stream (``stream_detect.commands.replay.replay``:
``run_stream`` over ``file:DATA`` with the config's settings), and its alerts are
scored with NAB's scorer over the corpus (raw scores summed, then normalised),
for NAB's three profiles. ``--variants`` also runs a few changes of the config
(each one replay of the corpus) and a split-half estimate of how much choosing
the best of them is worth (choose on a random half of the files, score on the
other half):

    python bench/nab_config.py [NAB_DIR] [--config configs/nab.toml] [--jobs 2] [--variants]

NAB_DIR defaults to $STREAM_DETECT_REFERENCE_DATA/nab (else shared/data/nab
beside the repository).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from stream_detect.commands.replay import replay
from stream_detect.config import read_config_file, settings_from_mapping
from stream_detect.nab import FileLayout, file_layout, score_file
from stream_detect.nab_corpus import normalised_score, null_score, perfect_score
from stream_detect.replay import NAB_PROFILES

DEFAULT_DATA = (
    Path(
        os.environ.get("STREAM_DETECT_REFERENCE_DATA")
        or Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    / "nab"
)
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "nab.toml"


def _variant(alert_p: float, flagged: str, refractory: int) -> dict[str, Any]:
    return {
        "likelihood_alert_p": alert_p,
        "likelihood_flagged": flagged,
        "likelihood_refractory": refractory,
    }


#: The configurations tried with --variants: the config as it is, then the config with
#: these likelihood settings (the first is the issue's recipe).
VARIANTS: list[dict[str, Any]] = [
    {},
    _variant(1e-5, "clip", 30),
    _variant(1e-4, "clip", 30),
    _variant(1e-6, "clip", 30),
    _variant(1e-5, "clip", 90),
    _variant(1e-5, "exclude", 30),
    _variant(1e-5, "exclude", 90),
    _variant(3e-5, "clip", 30),
    _variant(5e-5, "exclude", 90),
    _variant(3e-5, "exclude", 60),
]


def replay_file(task: tuple[int, int, str, str, dict[str, Any]]) -> tuple[int, int, list[bool]]:
    variant, index, data, config, change = task
    run, detector = settings_from_mapping(read_config_file(config))
    detector = replace(detector, **change)
    _, records = replay(data, run, detector)
    return variant, index, [bool(r["alert"]) for r in records]


def layout_of(path: Path, windows: list[list[str]]) -> FileLayout:
    with path.open(newline="") as handle:
        stamps = [row[0] for row in list(csv.reader(handle))[1:]]
    limits = [(np.datetime64(a, "us"), np.datetime64(b, "us")) for a, b in windows]
    return file_layout(np.array(stamps, dtype="datetime64[us]"), limits)


def raw_scores(alerts: Sequence[list[bool]], layouts: Sequence[FileLayout]) -> dict[str, Any]:
    """Raw NAB score per profile and file."""
    return {
        name: np.array(
            [
                score_file(np.array(found, dtype=np.float64), layout, cost, 0.5).score
                for found, layout in zip(alerts, layouts, strict=True)
            ]
        )
        for name, cost in NAB_PROFILES.items()
    }


def normalised(raw: Any, layouts: Sequence[FileLayout], files: Sequence[int], name: str) -> float:
    """The normalised NAB score of the files given under one profile."""
    total = float(np.sum(raw[name][list(files)]))
    null = sum(_bounds(layouts[f], name)[0] for f in files)
    perfect = sum(_bounds(layouts[f], name)[1] for f in files)
    return normalised_score(total, null, perfect)


_BOUNDS: dict[tuple[int, str], tuple[float, float]] = {}


def _bounds(layout: FileLayout, name: str) -> tuple[float, float]:
    """Null and perfect raw scores of one file (cached: the split-half asks often)."""
    key = (id(layout), name)
    if key not in _BOUNDS:
        cost = NAB_PROFILES[name]
        _BOUNDS[key] = (null_score([layout], cost), perfect_score([layout], cost))
    return _BOUNDS[key]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, nargs="?", default=DEFAULT_DATA)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--variants", action="store_true")
    parser.add_argument("--splits", type=int, default=200)
    args = parser.parse_args(argv)
    if not (args.data / "data").is_dir():
        print(f"nab_config.py: no NAB corpus at {args.data}", file=sys.stderr)
        return 2
    began = time.perf_counter()
    windows = json.loads((args.data / "labels" / "combined_windows.json").read_text())
    names = sorted(windows)
    paths = [args.data / "data" / name for name in names]
    layouts = [layout_of(path, windows[name]) for name, path in zip(names, paths, strict=True)]
    variants = VARIANTS if args.variants else VARIANTS[:1]
    tasks = [
        (v, f, str(paths[f]), str(args.config), change)
        for v, change in enumerate(variants)
        for f in range(len(names))
    ]
    tasks.sort(key=lambda task: -paths[task[1]].stat().st_size)
    alerts: dict[int, list[list[bool]]] = {v: [[] for _ in names] for v in range(len(variants))}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for v, f, found in pool.map(replay_file, tasks, chunksize=1):
            alerts[v][f] = found
    every = list(range(len(names)))
    print(f"NAB v1.1: {len(names)} files; config {args.config.name}")
    print(f"{'configuration':<44}{'standard':>10}{'low FP':>10}{'low FN':>10}")
    raws = [raw_scores(alerts[v], layouts) for v in range(len(variants))]
    for v, change in enumerate(variants):
        scores = [normalised(raws[v], layouts, every, name) for name in NAB_PROFILES]
        label = ", ".join(f"{k.removeprefix('likelihood_')}={val}" for k, val in change.items())
        print(f"{label or 'as shipped':<44}" + "".join(f"{s:10.2f}" for s in scores))
    if len(variants) > 1:
        rng = np.random.default_rng(0)
        chosen, best = [], []
        for _ in range(args.splits):
            order = rng.permutation(len(names))
            half_a, half_b = order[: len(names) // 2].tolist(), order[len(names) // 2 :].tolist()
            on_a = [normalised(raw, layouts, half_a, "standard") for raw in raws]
            on_b = [normalised(raw, layouts, half_b, "standard") for raw in raws]
            chosen.append(on_b[int(np.argmax(on_a))])
            best.append(max(on_b))
        print(
            f"split-half ({args.splits} splits, standard): best on the half {np.mean(best):.2f}, "
            f"chosen on the other half {np.mean(chosen):.2f}; "
            f"selection worth {np.mean(best) - np.mean(chosen):.2f} points"
        )
    print(f"time: {time.perf_counter() - began:.1f} s on {args.jobs} processes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
