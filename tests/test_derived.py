"""Derived time-series features against a per-row reference, for any batch split and key mix."""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict, deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect.derived import (
    DerivedFeature,
    Difference,
    MovingMean,
    RollingStd,
    SeasonalResidual,
)
from stream_detect.errors import ConfigError, InputError
from stream_detect.timestamps import season_bucket, wall_clock_seconds


def reference(kind: str, size: int, values: list[float], keys: list[str], hours: list[int]):
    """The features of the module's table, one row at a time, from plain lists."""
    recent: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=size))
    sums: dict[tuple[str, int], float] = defaultdict(float)
    counts: dict[tuple[str, int], int] = defaultdict(int)
    out = []
    for value, key, hour in zip(values, keys, hours, strict=True):
        window = recent[key]
        previous = window[-1] if window else None
        window.append(value)
        newest_first = list(reversed(window))
        total = 0.0
        for v in newest_first:
            total += v
        mean = total / len(window)
        if kind == "moving_mean":
            out.append(mean)
        elif kind == "rolling_std":
            squares = 0.0
            for v in newest_first:
                squares += (v - mean) ** 2
            out.append(math.sqrt(squares / len(window)))
        elif kind == "difference":
            out.append(0.0 if previous is None else value - previous)
        else:
            bucket = (key, hour % 24)
            seen = counts[bucket]
            out.append(value - sums[bucket] / seen if seen else 0.0)
            sums[bucket] += value
            counts[bucket] += 1
    return out


def _make(kind: str, size: int) -> DerivedFeature:
    if kind == "moving_mean":
        return MovingMean(size)
    if kind == "rolling_std":
        return RollingStd(size)
    if kind == "difference":
        return Difference()
    return SeasonalResidual("hour_of_day")


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["moving_mean", "rolling_std", "difference", "seasonal"]),
    size=st.integers(1, 50),
    values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=120),
    key_count=st.integers(1, 3),
    cuts=st.lists(st.integers(0, 120), max_size=5),
    seed=st.integers(0, 100),
)
def test_batches_equal_the_per_row_reference(
    kind: str, size: int, values: list[float], key_count: int, cuts: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    rows = len(values)
    keys = [f"k{i}" for i in rng.integers(0, key_count, size=rows)]
    hours = np.cumsum(rng.integers(0, 5, size=rows)).tolist()
    expected = reference(kind, 2 if kind == "difference" else size, values, keys, hours)

    feature = _make(kind, size)
    got: list[float] = []
    edges = [0, *sorted(c for c in cuts if c <= rows), rows]
    for start, stop in itertools.pairwise(edges):
        feature = DerivedFeature.from_dict(json.loads(json.dumps(feature.to_dict())))
        seconds = np.array(hours[start:stop], dtype=np.float64) * 3600.0
        batch = feature.update(np.array(values[start:stop]), keys[start:stop], seconds)
        got.extend(batch.tolist())
    assert got == expected  # exactly the same floats


def test_seasonal_buckets_never_mix() -> None:
    # Hour 3 is always 100, every other hour 0: residuals stay 0 in both groups.
    hours = np.arange(24 * 20)
    values = np.where(hours % 24 == 3, 100.0, 0.0)
    residual = SeasonalResidual("hour_of_day").update(values, ["a"] * hours.size, hours * 3600.0)
    assert np.all(residual == 0.0)
    week = SeasonalResidual("hour_of_week")
    values = np.where(hours % 168 == 3, 100.0, 0.0)
    assert np.all(week.update(values, ["a"] * hours.size, hours * 3600.0) == 0.0)


def test_state_stays_bounded() -> None:
    feature = RollingStd(48)
    feature.update(np.arange(10_000.0), ["a"] * 10_000)
    assert len(feature.to_dict()["recent"]["a"]) == 47
    seasonal = SeasonalResidual("hour_of_week")
    seasonal.update(np.arange(10_000.0), ["a"] * 10_000, np.arange(10_000.0) * 600)
    assert len(seasonal.to_dict()["counts"]["a"]) == 168


@pytest.mark.parametrize("kind", ["moving_mean", "rolling_std"])
def test_a_long_window_is_worked_in_pieces_with_the_floats_of_one_row_at_a_time(
    kind: str,
) -> None:
    # A window of w rows made (batch, w) matrices at once: w = 8640 took 900 MB for batches
    # of 4096 rows. Pieces of rows keep them bounded, with the same floats.
    import tracemalloc

    size, rows = 2000, 4096
    values = np.random.default_rng(5).normal(size=rows)
    tracemalloc.start()
    try:
        whole = _make(kind, size).update(values, ["a"] * rows)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20, f"{peak / 2**20:.0f} MiB"
    # Batches small enough to be one piece each give the same floats (as one row at a time).
    small = _make(kind, size)
    parts = [small.update(values[i : i + 512], ["a"] * 512) for i in range(0, rows, 512)]
    assert whole.tolist() == np.concatenate(parts).tolist()


@pytest.mark.parametrize("kind", ["moving_mean", "rolling_std"])
def test_a_long_window_works_only_on_the_values_a_key_has(kind: str) -> None:
    # Each row's window was as wide as the window's size, past the key's first value: a
    # window of 100,000 over a young series worked through 20 x 100,000 matrices (and a
    # Python loop of 100,000 lags) per 20 rows, about 50 rows a second.
    import tracemalloc

    values = np.random.default_rng(6).normal(size=300)
    tracemalloc.start()
    try:
        feature = _make(kind, 100_000)
        got = [feature.update(values[i : i + 100], ["a"] * 100) for i in range(0, 300, 100)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"{peak / 2**20:.1f} MiB"
    expected = reference(kind, 100_000, values.tolist(), ["a"] * 300, [0] * 300)
    assert np.concatenate(got).tolist() == expected


def test_a_window_longer_than_any_stream_needs_is_one_config_error() -> None:
    from stream_detect.derived_specs import MAX_WINDOW, check_derived_table

    check_derived_table({"m": {"of": "v", "kind": "moving_mean", "k": MAX_WINDOW}})
    with pytest.raises(ConfigError, match=r"derived.w.w: got 9223372036854775807, expected"):
        check_derived_table({"w": {"of": "v", "kind": "rolling_std", "w": 2**63 - 1}})


def test_timestamps_and_buckets() -> None:
    seconds = wall_clock_seconds(["2014-04-01 00:00:00", "2014-04-06 23:59:59"])
    assert season_bucket(seconds, "day_of_week").tolist() == [1, 6]  # Tuesday, Sunday
    assert season_bucket(seconds, "hour_of_week").tolist() == [24, 167]
    # An instant is shown on the wall clock of the time zone, daylight saving included.
    summer = wall_clock_seconds(["2014-07-01T00:00:00Z"], time_zone="Europe/Berlin")
    assert season_bucket(summer, "hour_of_day").tolist() == [2]
    epoch = wall_clock_seconds([1404172800.0, "1404172800"], time_zone="America/New_York")
    assert season_bucket(epoch, "hour_of_day").tolist() == [20, 20]


def test_bad_input_is_refused() -> None:
    with pytest.raises(InputError, match="neither ISO 8601 nor epoch"):
        wall_clock_seconds(["yesterday"])
    with pytest.raises(ConfigError, match="time_zone"):
        wall_clock_seconds(["0"], time_zone="Mars/Olympus")
    with pytest.raises(ConfigError, match="season"):
        SeasonalResidual("minute_of_hour")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="window"):
        MovingMean(0)


def reference_bounded(kind: str, size: int, values: list[float], keys: list[str], limit: int):
    """Row by row with at most ``limit`` keys held, least recently seen forgotten.

    Each row's value is an unbounded feature's over the history its key kept
    since it was last forgotten, so eviction is checked apart from the arithmetic.
    """
    out: list[float] = []
    held: list[str] = []  # least recently seen first
    history: dict[str, list[float]] = {}
    for value, key in zip(values, keys, strict=True):
        if key in held:
            held.remove(key)
        elif len(held) == limit:
            history.pop(held.pop(0))
        held.append(key)
        seen = history.setdefault(key, [])
        seen.append(value)
        out.append(float(_make(kind, size).update(np.array(seen), [key] * len(seen))[-1]))
    return out, held


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(["moving_mean", "rolling_std", "difference"]),
    values=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=80),
    key_count=st.integers(1, 6),
    limit=st.integers(1, 4),
    cuts=st.lists(st.integers(0, 80), max_size=4),
    seed=st.integers(0, 100),
)
def test_keys_beyond_max_keys_are_forgotten_least_recently_seen_first(
    kind: str, values: list[float], key_count: int, limit: int, cuts: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    keys = [f"k{i}" for i in rng.integers(0, key_count, size=len(values))]
    expected, held = reference_bounded(kind, 5, values, keys, limit)
    feature = _make(kind, 5)
    feature.max_keys = limit
    got: list[float] = []
    edges = [0, *sorted(c for c in cuts if c <= len(values)), len(values)]
    for start, stop in itertools.pairwise(edges):
        feature = DerivedFeature.from_dict(json.loads(json.dumps(feature.to_dict())))
        got.extend(feature.update(np.array(values[start:stop]), keys[start:stop]).tolist())
    assert got == expected
    assert feature.keys == held
    assert len(feature.to_dict()["recent"]) <= limit


def test_seasonal_state_is_bounded_in_keys() -> None:
    seasonal = SeasonalResidual("hour_of_day", max_keys=3)
    keys = [f"host{i}" for i in range(1000)]
    seasonal.update(np.ones(1000), keys, np.arange(1000.0) * 3600)
    state = seasonal.to_dict()
    assert sorted(state["counts"]) == ["host997", "host998", "host999"]
    assert seasonal.evicted == 997


def test_max_keys_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="max_keys"):
        MovingMean(3, max_keys=0)
