"""Tests of stream_detect.skewed_features: a long tail said once, anomalies never."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import orjson
import pytest

from stream_detect.skewed_features import (
    MIN_QUARTILE_SKEW,
    SAMPLE,
    SkewedFeaturesWatch,
    quartile_skewness,
)

LOG_EPSILON = float(np.log(1e-6))


def said(columns: dict[str, np.ndarray], batch: int = 4096) -> list[str]:
    lines: list[str] = []
    watch = SkewedFeaturesWatch(list(columns), LOG_EPSILON, lines.append)
    rows = np.column_stack(list(columns.values()))
    for start in range(0, len(rows), batch):
        watch.observe(rows[start : start + batch])
    assert watch.done
    return lines


def spiked(rng: np.random.Generator, share: float, both_sides: bool = False) -> np.ndarray:
    values = rng.normal(size=SAMPLE)
    chosen = rng.choice(SAMPLE, int(share * SAMPLE), replace=False)
    values[chosen] += 8.0 * (rng.choice([-1.0, 1.0], len(chosen)) if both_sides else 1.0)
    return values


@pytest.mark.parametrize("seed", range(5))
def test_long_tails_are_said_once_each_with_a_transform_that_helps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lines = said(
        {
            "latency": rng.lognormal(3.0, 1.0, 3 * SAMPLE),
            "cpu": rng.normal(50.0, 5.0, 3 * SAMPLE),
            "wait": rng.exponential(2.0, 3 * SAMPLE),
        }
    )
    assert [line.split("'")[1] for line in lines] == ["latency", "wait"]
    assert "--transform latency=log brings its skewness to" in lines[0]
    assert "(it takes values above 0 only: any other becomes a dead letter)" in lines[0]


@pytest.mark.parametrize("seed", range(5))
def test_anomalies_far_out_and_symmetric_or_discrete_shapes_are_never_said(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    columns = {
        "spikes_1": spiked(rng, 0.01),
        "spikes_3": spiked(rng, 0.03),
        "spikes_10": spiked(rng, 0.10),
        "spikes_both": spiked(rng, 0.05, both_sides=True),
        "normal": rng.normal(size=SAMPLE),
        "student_3": rng.standard_t(3, SAMPLE),
        "uniform": rng.random(SAMPLE),
        "errors": (rng.random(SAMPLE) < 0.003).astype(np.float64),  # recurring_values' case
    }
    assert said(columns, batch=333) == []


def test_only_the_first_sample_is_looked_at() -> None:
    rng = np.random.default_rng(7)
    normal_first = np.r_[rng.normal(10.0, 1.0, SAMPLE), rng.lognormal(3.0, 1.0, SAMPLE)]
    assert said({"x": normal_first}, batch=500) == []


def test_quartile_skewness_is_zero_for_symmetric_values_and_ignores_a_far_tenth() -> None:
    assert quartile_skewness(np.array([1.0, 2.0, 3.0, 4.0, 5.0])) == 0.0
    values = np.random.default_rng(8).normal(size=10_000)
    values[:1000] = 1e6
    assert abs(quartile_skewness(values)) < 0.15
    assert np.isnan(quartile_skewness(np.ones(10)))


def test_gaussian_samples_stay_well_below_the_quartile_skewness_asked_for() -> None:
    # The README's figure: 2,000 Gaussian values stay within 0.12 of 0 in 2,000 tries.
    rng = np.random.default_rng(0)
    worst = max(abs(quartile_skewness(rng.normal(size=2000))) for _ in range(2000))
    assert worst < 0.12 < MIN_QUARTILE_SKEW


def run_lines(events: list[dict[str, float]], *flags: str) -> tuple[list[str], dict[str, object]]:
    """Stderr of ``stream-detect run FLAGS`` over ``events``, less its last line: the summary."""
    done = subprocess.run(
        [sys.executable, "-m", "stream_detect", "run", "--no-progress", *flags],
        input=b"".join(orjson.dumps(event) + b"\n" for event in events),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stderr.decode().splitlines()
    return lines[:-1], orjson.loads(lines[-1])["summary"]


def test_the_run_command_says_it_and_the_transform_it_names_ends_the_false_alerts() -> None:
    rng = np.random.default_rng(9)
    events = [
        {"latency": float(a), "cpu": float(b)}
        for a, b in zip(rng.lognormal(3.0, 1.0, 20_000), rng.normal(50, 5, 20_000), strict=True)
    ]
    lines, summary = run_lines(events)
    (line,) = [line for line in lines if "is skewed" in line]
    assert line.startswith("stream-detect run: warning: feature 'latency' is skewed")
    assert int(summary["alerts"]) > 50  # type: ignore[call-overload]
    spec = line.split("--transform ")[1].split()[0]
    lines, summary = run_lines(events, "--transform", spec)
    assert not [line for line in lines if "is skewed" in line]
    assert summary["alerts"] == 0
    # Keyed: keys on different scales pool into a skewed mixture, so nothing is said.
    lines, _ = run_lines(
        [dict(event, host=i % 3) for i, event in enumerate(events)], "--key-field", "host"
    )
    assert not [line for line in lines if "is skewed" in line]
