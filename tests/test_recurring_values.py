"""Tests of stream_detect.recurring_values: ordinary values that a Gaussian calls anomalies."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from stream_detect.recurring_values import MIN_RUNS, RecurringValuesWatch

LOG_EPSILON = float(np.log(1e-6))


def flags(rate: float, n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < rate).astype(np.float64)


def test_a_rare_value_that_keeps_coming_back_is_said_once() -> None:
    lines: list[str] = []
    watch = RecurringValuesWatch(["errors", "cpu"], LOG_EPSILON, lines.append)
    rng = np.random.default_rng(1)
    for _ in range(10):
        # Five at a time: one error would stand within √12 σ (the integer features' floor).
        errors = 5.0 * flags(0.003, 1000, rng.integers(1 << 30))
        watch.observe(np.column_stack([errors, rng.normal(size=1000)]))
    assert len(lines) == 1
    assert lines[0].startswith("feature 'errors' has taken 2 distinct values in ")
    assert "leave the feature out with --features" in lines[0]


def test_a_single_step_of_an_integer_feature_is_not_said_but_of_another_feature_is() -> None:
    def said(offset: float) -> list[str]:
        lines: list[str] = []
        watch = RecurringValuesWatch(["flag"], LOG_EPSILON, lines.append)
        watch.observe(offset + flags(0.003, 10_000, seed=6)[:, None])
        return lines

    # The models floor an integer feature's variance at 1/12: a 1 among 0s is 3.5 σ out.
    assert said(0.0) == []
    assert len(said(0.5)) == 1


def test_continuous_and_common_values_are_never_said() -> None:
    lines: list[str] = []
    watch = RecurringValuesWatch(["x", "coin", "count"], LOG_EPSILON, lines.append)
    rng = np.random.default_rng(2)
    for _ in range(50):
        rows = np.column_stack(
            [
                rng.normal(size=1000),
                flags(0.5, 1000, rng.integers(1 << 30)),
                np.minimum(rng.poisson(1.5, 1000), 5).astype(np.float64),
            ]
        )
        watch.observe(rows)
    assert lines == []
    # The continuous feature is no longer followed after its first batch.
    assert sorted(watch._counts) == [1, 2]


def test_an_incident_stuck_on_one_value_is_not_a_recurring_value() -> None:
    def said(copies: int) -> list[str]:
        lines: list[str] = []
        watch = RecurringValuesWatch(["queue"], LOG_EPSILON, lines.append)
        queue = np.random.default_rng(3).integers(2, 5, 20_000).astype(np.float64)
        queue[10_000:10_600] = 40.0  # stuck for 600 events: one run
        queue[15_000 : 15_000 + 2 * copies : 2] = 40.0  # and isolated copies, a run each
        for start in range(0, len(queue), 1000):
            watch.observe(queue[start : start + 1000, None])
        return lines

    assert said(MIN_RUNS - 2) == []
    (line,) = said(MIN_RUNS - 1)
    assert f"and 40, seen {600 + MIN_RUNS - 1} times in {MIN_RUNS} separate runs" in line


def test_runs_are_counted_across_batches_whatever_their_size() -> None:
    values = flags(0.01, 20_000, seed=4)[:, None]
    results = []
    for size in (1, 7, 1000, 20_000):
        lines: list[str] = []
        watch = RecurringValuesWatch(["flag"], LOG_EPSILON, lines.append, every=10**9)
        for start in range(0, len(values), size):
            watch.observe(values[start : start + size])
        results.append((dict(watch._counts[0]), dict(watch._runs[0])))
    assert all(result == results[0] for result in results)


def test_the_run_command_says_it_on_stderr() -> None:
    events = 5.0 * flags(0.002, 6000, seed=5)
    lines = b"".join(b'{"errors": %d}\n' % value for value in events.astype(int))
    done = subprocess.run(
        [sys.executable, "-m", "stream_detect", "run", "--no-summary"],
        input=lines,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    warned = [line for line in done.stderr.decode().splitlines() if "distinct values" in line]
    assert len(warned) == 1 and "feature 'errors'" in warned[0]
    quiet = subprocess.run(
        [sys.executable, "-m", "stream_detect", "run", "--no-summary", "--log-epsilon", "-30"],
        input=lines,
        capture_output=True,
        timeout=120,
    )
    assert b"distinct values" not in quiet.stderr
