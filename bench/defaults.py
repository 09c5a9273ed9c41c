"""What the defaults of ``stream-detect run`` do on unlabelled data, measured.

    python bench/defaults.py [--events 1000000] [--data REFERENCE_DIR] [--skip-odds]

Prints four tables:

* false alerts per million events of pure Gaussian noise (d = 1 and d = 3,
  independent features), with the defaults: the log tail against
  ``log_tail_epsilon``;
* a synthetic equipment fault: 1 Hz, four independent sensors N(50, 3), an hour
  of normal running, then one sensor stuck 8σ off for ten minutes, then 30
  minutes of normal running again; the share of the fault's rows that alert and
  the false alerts before and after it, for several ``accept_after``;
* correlated sensors: the 1 Hz scenario of ``tests/test_metrics_config.py``
  (four sensors following one load, a stuck or a decoupled sensor for ten
  minutes after an hour; seeds 0-3) under the default tail threshold with
  ``min_samples = 300``, ``flagged = "exclude"`` and ``accept_after = 1800``
  (as ``configs/metrics.toml``), for the diagonal model (Fisher's combination
  of per-feature tails, which assumes independent features) and the full one
  (the chi-squared tail of the Mahalanobis distance);
* ODDS ROC AUC (each set shuffled with seed 7, streamed once, ranked by the log
  tail) for ``--flagged exclude``, ``clip`` and ``learn``, beside the batch
  Gaussian's published AUC. Needs the reference data (``odds/*.mat``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from stream_detect.detections import Detections
from stream_detect.detector import Detector
from stream_detect.settings import DetectorSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.test_metrics_config import FAULT, HOUR, _sensors
from tests.test_reference_data import PUBLISHED_AUC, load_odds, roc_auc

Array = NDArray[np.float64]

#: The reference data: $STREAM_DETECT_REFERENCE_DATA, else shared/data beside the repository.
DEFAULT_DATA = Path(
    os.environ.get("STREAM_DETECT_REFERENCE_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data"
)
#: The per-event fields of :class:`Detections` (all but the contributions).
_FIELDS = ("log_p", "score", "distance_sq", "log_tail", "log_epsilon", "alert", "warmup", "n")
#: Acceptance times compared on the equipment fault, in events.
ACCEPT_AFTER = (0, 25, 100, 300, 600, 1200)


def stream(X: Array, settings: DetectorSettings, batch: int = 4096) -> Detections:
    """One pass of a fresh detector over ``X``; the per-event results, concatenated."""
    detector = Detector(settings, tuple(f"f{j}" for j in range(X.shape[1])))
    parts = [detector.process(X[i : i + batch]) for i in range(0, X.shape[0], batch)]
    return Detections(
        **{name: np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS}
    )


def noise_table(events: int) -> list[str]:
    """False alerts per million events of N(0, 1) noise under the defaults."""
    lines = ["| features | events | alerts | per million |", "|---|---|---|---|"]
    for d in (1, 3):
        X = np.random.default_rng(d).normal(size=(events, d))
        alerts = int(np.count_nonzero(stream(X, DetectorSettings()).alert))
        lines.append(f"| {d} | {events:,} | {alerts} | {alerts * 1e6 / events:.1f} |")
    return lines


def fault_stream(seed: int = 0) -> Array:
    """An hour of four sensors at 1 Hz, ten minutes of one stuck 8σ off, 30 minutes more."""
    X = 50.0 + 3.0 * np.random.default_rng(seed).normal(size=(3600 + 600 + 1800, 4))
    X[3600:4200, 1] = 50.0 + 8 * 3.0
    return X


def fault_table() -> list[str]:
    """Share of the fault's rows that alert, and false alerts around it, per accept_after."""
    X = fault_stream()
    lines = [
        "| `accept_after` | fault rows alerting | alerts in the hour before | alerts after |",
        "|---|---|---|---|",
    ]
    for after in ACCEPT_AFTER:
        alert = stream(X, DetectorSettings(accept_after=after)).alert
        lines.append(
            f"| {after} | {alert[3600:4200].mean():.1%} | {int(alert[:3600].sum())} | "
            f"{int(alert[4200:].sum())} |"
        )
    return lines


def correlated_table() -> list[str]:
    """False alerts in the hour before and fault rows alerting, diagonal against full."""
    lines = [
        "| model | fault | alerts in the hour before (4 seeds) | fault rows alerting |",
        "|---|---|---|---|",
    ]
    for model in ("diagonal", "full"):
        settings = DetectorSettings(
            model=model, min_samples=300, flagged="exclude", accept_after=1800
        )
        for fault in ("stuck", "decoupled"):
            before, during = [], []
            for seed in range(4):
                alert = stream(_sensors(fault, seed), settings).alert
                before.append(int(alert[:HOUR].sum()))
                during.append(float(alert[HOUR : HOUR + FAULT].mean()))
            lines.append(
                f"| {model} | {fault} | {', '.join(map(str, before))} | "
                f"{min(during):.0%} to {max(during):.0%} |"
            )
    return lines


def odds_table(data: Path) -> list[str]:
    """Stream ROC AUC on the ODDS sets for each learning policy under the defaults."""
    lines = [
        "| set | exclude | clip (default) | learn | batch Gaussian (published) |",
        "|---|---|---|---|---|",
    ]
    for name in sorted(PUBLISHED_AUC):
        X, y = load_odds(data, name)
        order = np.random.default_rng(7).permutation(len(X))
        X, y = X[order], y[order]
        cells = []
        for flagged in ("exclude", "clip", "learn"):
            tail = stream(X, replace(DetectorSettings(), flagged=flagged)).log_tail
            cells.append(f"{roc_auc(y, -tail):.4f}")
        lines.append(f"| {name} | {' | '.join(cells)} | {PUBLISHED_AUC[name]:.4f} |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="noise events per row")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="reference data folder")
    parser.add_argument("--skip-odds", action="store_true", help="leave out the ODDS table")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    print("\n".join(noise_table(args.events)), end="\n\n")
    print("\n".join(fault_table()), end="\n\n")
    print("\n".join(correlated_table()), end="\n\n")
    if not args.skip_odds:
        if not (args.data / "odds").is_dir():
            print(f"defaults.py: no ODDS data under {args.data}/odds", file=sys.stderr)
            return 2
        print("\n".join(odds_table(args.data)), end="\n\n")
    print(f"time: {time.perf_counter() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
