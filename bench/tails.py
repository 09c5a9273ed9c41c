"""Speed of the tail probabilities on the blocks ``stream-detect run`` scores, old beside new.

    python bench/tails.py [--events 100000] [--block 1024] [--repeat 3]

Builds the inputs the default model hands to the tails: ``d = 8`` normal
features with 1% spikes (8σ to 40σ), their running moments, the Normal–Inverse-
Gamma prior's per-row Student-t arguments (ν from 2 up to ``--events``), the
Fisher statistic over the features (χ² with 16 degrees of freedom) and the
squared Mahalanobis distance (χ² with 8). Then, per block of ``--block`` rows,
it times :func:`student_t_log_tail` and :func:`chi2_log_sf` against the
implementation they replaced (``stream_detect/tails.py`` as of
:data:`REFERENCE_COMMIT`, read from the project's git history), prints the seconds of
each for the whole stream, the speed-up, and the largest difference of the
results, relative to the new value and absolute.

Then :func:`student_t_log_tail` alone on ``--blocks`` blocks of (``--rows``, 8)
values, ν one per row (as the prior passes it): t ~ N(0, 1) with ν from 1e3 to
1e4 (a model that has seen thousands of events), from 2 to 50 (a young one) and
from 1e6 to 1e9; |t| up to 40 (the continued fraction); t² within 10% of the
switch between series and fraction, min(12, ν/3). The same columns, and the
nanoseconds per element of each.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from stream_detect.prior import NormalInverseGammaPrior
from stream_detect.stats import RunningMoments
from stream_detect.tails import chi2_log_sf, student_t_log_tail

Array = NDArray[np.float64]

#: The commit whose ``stream_detect/tails.py`` is the reference: the tails before
#: the incomplete beta's continued fraction was evaluated bottom-up (Lentz's
#: algorithm only), in one module with no imports from the package.
REFERENCE_COMMIT = "9e4bd45e49499489697ca8d8dae240c099525a1b"


def reference_tails() -> types.ModuleType:
    """``stream_detect/tails.py`` as of :data:`REFERENCE_COMMIT`, loaded from git as a module."""
    root = Path(__file__).resolve().parent.parent
    command = ["git", "-C", str(root), "show", f"{REFERENCE_COMMIT}:stream_detect/tails.py"]
    try:
        source = subprocess.run(command, check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        reason = exc.stderr.decode(errors="replace").strip() if hasattr(exc, "stderr") else exc
        raise SystemExit(f"the reference needs the project's git history: {reason}") from None
    module = types.ModuleType("tails_before")
    exec(compile(source, "tails_before.py", "exec"), module.__dict__)
    return module


tails_before = reference_tails()


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


def workloads(rows: int, count: int, d: int = 8) -> dict[str, list[tuple[Array, Array]]]:
    """Per workload, ``count`` blocks of (t, ν), both (rows, d), ν one per row."""
    rng = np.random.default_rng(13)

    def per_row(values: Array) -> Array:
        return np.repeat(values[:, None], d, axis=1)

    def log_uniform(low: float, high: float) -> Array:
        return per_row(10.0 ** rng.uniform(math.log10(low), math.log10(high), rows))

    def normal() -> Array:
        return rng.normal(size=(rows, d))

    def near_switch() -> tuple[Array, Array]:
        nu = log_uniform(2.0, 1e4)
        bound = np.minimum(12.0, nu / 3.0)
        return np.sqrt(bound * rng.uniform(0.9, 1.1, (rows, d))), nu

    makers: dict[str, Callable[[], tuple[Array, Array]]] = {
        "t ~ N(0,1), ν 1e3–1e4": lambda: (normal(), log_uniform(1e3, 1e4)),
        "t ~ N(0,1), ν 2–50": lambda: (normal(), per_row(rng.uniform(2.0, 50.0, rows))),
        "t ~ N(0,1), ν 1e6–1e9": lambda: (normal(), log_uniform(1e6, 1e9)),
        "|t| ≤ 40, ν 1e3–1e4": lambda: (rng.uniform(-40.0, 40.0, (rows, d)), log_uniform(1e3, 1e4)),
        "t² near the switch": near_switch,
    }
    return {name: [make() for _ in range(count)] for name, make in makers.items()}


def timed(
    new: Callable[[], list[Array]], old: Callable[[], list[Array]], repeat: int
) -> tuple[float, list[Array], float, list[Array]]:
    """The best of ``repeat`` CPU seconds of each (steadier than wall-clock), and the results.

    The two run in turn, so that a machine whose speed drifts (shared cores)
    slows both alike.
    """
    best = {new: float("inf"), old: float("inf")}
    results: dict[Callable[[], list[Array]], list[Array]] = {}
    for _ in range(repeat):
        for function in (new, old):
            start = time.process_time()
            results[function] = function()
            best[function] = min(best[function], time.process_time() - start)
    return best[new], results[new], best[old], results[old]


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
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--blocks", type=int, default=10)
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
        new_seconds, new_values, old_seconds, old_values = timed(new, old, args.repeat)
        relative, absolute = difference(new_values, old_values)
        print(
            f"{name:28} {old_seconds:8.3f} {new_seconds:8.3f} {old_seconds / new_seconds:8.1f}× "
            f"{relative:9.1e} {absolute:9.1e}"
        )
    elements = args.blocks * args.rows * 8
    print(f"\nstudent_t_log_tail, {args.blocks} blocks of ({args.rows}, 8); best of {args.repeat}")
    print(
        f"{'workload':28} {'old s':>8} {'new s':>8} {'speed-up':>9} {'max rel':>9} {'max abs':>9}"
        f" {'old ns':>7} {'new ns':>7}"
    )
    for name, pairs in workloads(args.rows, args.blocks).items():
        new, old = over(student_t_log_tail, pairs), over(tails_before.student_t_log_tail, pairs)
        new_seconds, new_values, old_seconds, old_values = timed(new, old, args.repeat)
        relative, absolute = difference(new_values, old_values)
        print(
            f"{name:28} {old_seconds:8.3f} {new_seconds:8.3f} {old_seconds / new_seconds:8.1f}× "
            f"{relative:9.1e} {absolute:9.1e} {old_seconds / elements * 1e9:7.0f}"
            f" {new_seconds / elements * 1e9:7.0f}"
        )


def over(
    function: Callable[[Array, Array], Array], pairs: list[tuple[Array, Array]]
) -> Callable[[], list[Array]]:
    """``function`` applied to every (t, ν) of ``pairs``, as one thing to time."""
    return lambda: [function(t, nu) for t, nu in pairs]


if __name__ == "__main__":
    main()
