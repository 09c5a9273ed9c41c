"""Speed of the tail probabilities on the blocks ``stream-detect run`` scores, old beside new.

    python bench/tails.py [--events 100000] [--block 1024] [--repeat 3]

Builds the inputs the default model hands to the tails: ``d = 8`` normal
features with 1% spikes (8σ to 40σ), their running moments, the Normal–Inverse-
Gamma prior's per-row Student-t arguments (ν from 2 up to ``--events``), the
Fisher statistic over the features (χ² with 16 degrees of freedom) and the
squared Mahalanobis distance (χ² with 8). Then, per block of ``--block`` rows,
it times :func:`student_t_log_tail` and :func:`chi2_log_sf` against the
implementation they replaced (``bench/tails_before.py``), prints the seconds of
each for the whole stream, the speed-up, and the largest difference of the
results, relative to the new value and absolute.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from stream_detect.prior import NormalInverseGammaPrior
from stream_detect.stats import RunningMoments
from stream_detect.tails import chi2_log_sf, student_t_log_tail

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tails_before

Array = NDArray[np.float64]


def blocks(events: int, block: int, d: int = 8) -> list[tuple[Array, Array, Array, Array]]:
    """Per block: the t values and ν (B, d), the Fisher statistic and r² (B,)."""
    rng = np.random.default_rng(12)
    X = rng.normal(size=(events, d))
    spikes = rng.random(events) < 0.01
    X[spikes, rng.integers(0, d, spikes.sum())] += rng.choice([-1, 1], spikes.sum()) * (
        rng.uniform(8.0, 40.0, spikes.sum())
    )
    prior, moments, out = NormalInverseGammaPrior(), RunningMoments(d), []
    for start in range(0, events, block):
        rows = X[start : start + block]
        before = moments.prequential(rows)
        location, scale, dof = prior.predictive(before)
        t = (rows - location) / scale
        fisher = -2.0 * student_t_log_tail(t, dof).sum(axis=1)
        spread = np.maximum(before.spread, 1e-12)
        r2 = np.sum(np.square((rows - before.mean) / np.sqrt(spread)), axis=1)
        out.append((t, np.array(dof), fisher, r2))
        moments.learn(rows)
    return out


def timed(function: Callable[[], list[Array]], repeat: int) -> tuple[float, list[Array]]:
    """The best of ``repeat`` CPU seconds (steadier than wall-clock), and the results."""
    best, results = float("inf"), []
    for _ in range(repeat):
        start = time.process_time()
        results = function()
        best = min(best, time.process_time() - start)
    return best, results


def difference(new: list[Array], old: list[Array]) -> tuple[float, float]:
    """The largest relative (to the new value, where it is not 0) and absolute difference."""
    a, b = np.concatenate([x.ravel() for x in new]), np.concatenate([x.ravel() for x in old])
    absolute = np.abs(a - b)
    relative = absolute[a != 0.0] / np.abs(a[a != 0.0])
    return float(relative.max(initial=0.0)), float(absolute.max(initial=0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--block", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = blocks(args.events, args.block)
    cases: dict[str, tuple[Callable[[], list[Array]], Callable[[], list[Array]]]] = {
        "student_t_log_tail (B, 8)": (
            lambda: [student_t_log_tail(t, nu) for t, nu, _, _ in data],
            lambda: [tails_before.student_t_log_tail(t, nu) for t, nu, _, _ in data],
        ),
        "chi2_log_sf Fisher, 16 dof": (
            lambda: [chi2_log_sf(f, 16) for _, _, f, _ in data],
            lambda: [tails_before.chi2_log_sf(f, 16) for _, _, f, _ in data],
        ),
        "chi2_log_sf r², 8 dof": (
            lambda: [chi2_log_sf(r2, 8) for _, _, _, r2 in data],
            lambda: [tails_before.chi2_log_sf(r2, 8) for _, _, _, r2 in data],
        ),
        "chi2_log_sf r², 7 dof": (
            lambda: [chi2_log_sf(r2, 7) for _, _, _, r2 in data],
            lambda: [tails_before.chi2_log_sf(r2, 7) for _, _, _, r2 in data],
        ),
    }
    print(f"{args.events} events, blocks of {args.block}, d = 8; best of {args.repeat}")
    print(
        f"{'function':28} {'old s':>8} {'new s':>8} {'speed-up':>9} {'max rel':>9} {'max abs':>9}"
    )
    for name, (new, old) in cases.items():
        new_seconds, new_values = timed(new, args.repeat)
        old_seconds, old_values = timed(old, args.repeat)
        relative, absolute = difference(new_values, old_values)
        print(
            f"{name:28} {old_seconds:8.3f} {new_seconds:8.3f} {old_seconds / new_seconds:8.1f}× "
            f"{relative:9.1e} {absolute:9.1e}"
        )


if __name__ == "__main__":
    main()
