"""Tests of stream_detect.unusable: a stream none of whose records can be used is reported."""

from __future__ import annotations

from stream_detect.unusable import UnusableStreamWatch


def test_warns_once_after_enough_dead_letters_in_a_row() -> None:
    lines: list[str] = []
    watch = UnusableStreamWatch(lines.append, after=500)
    for _ in range(4):
        watch.observe(0, ["missing feature 'nope'"] * 100)
    assert lines == []
    watch.observe(0, ["missing feature 'nope'"] * 99 + ["invalid JSON"])
    assert len(lines) == 1
    assert "the last 500 records were all dead letters and no event has been scored yet" in lines[0]
    assert "missing feature 'nope' (499 times)" in lines[0]
    watch.observe(0, ["missing feature 'nope'"] * 1000)
    assert len(lines) == 1


def test_a_scored_event_ends_the_run_and_rearms_the_warning() -> None:
    lines: list[str] = []
    watch = UnusableStreamWatch(lines.append, after=3)
    watch.observe(0, ["a", "a"])
    watch.observe(1, ["b"])
    assert lines == [] and watch.most_common_reason == "b"
    watch.observe(0, ["b", "b"])
    assert lines == []
    watch.observe(0, ["b"])
    assert len(lines) == 1 and "none was scored" in lines[0]
    watch.observe(5, [])
    assert watch.most_common_reason is None and watch.in_a_row == 0


def test_dead_letters_among_scored_events_are_not_a_run() -> None:
    # One event in seven lacks a feature: every batch of 4,096 holds about 580
    # dead letters, more than the warning's 500, yet every batch scored thousands.
    lines: list[str] = []
    watch = UnusableStreamWatch(lines.append, after=500)
    for _ in range(10):
        watch.observe(3_516, ["missing feature 'a'"] * 580)
    assert lines == [] and watch.in_a_row == 0
    assert watch.most_common_reason == "missing feature 'a'"


def test_distinct_reasons_are_bounded() -> None:
    watch = UnusableStreamWatch(lambda line: None, after=10**9)
    watch.observe(0, [f"invalid JSON at line {i}" for i in range(10_000)])
    assert len(watch.reasons) <= 100 and watch.in_a_row == 10_000
