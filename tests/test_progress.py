"""Tests of stream_detect.progress with a hand-driven clock."""

from __future__ import annotations

import io
import itertools

import pytest

from stream_detect.progress import Progress, format_duration, format_quantity


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


class TerminalBuffer(io.StringIO):
    """A StringIO that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class BrokenStream(io.StringIO):
    """A stream whose reader went away; it counts the writes tried on it."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    def write(self, text: str) -> int:
        self.attempts += 1
        raise BrokenPipeError("gone")


def run_work(
    progress: Progress, clock: FakeClock, steps: int, seconds_per_step: float, amount: float
) -> None:
    with progress:
        for _ in range(steps):
            clock.tick(seconds_per_step)
            progress.advance(amount)


def test_plain_stream_gets_a_line_every_few_seconds_and_a_summary() -> None:
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(10_000, "reading", stream=out, clock=clock)
    run_work(progress, clock, steps=80, seconds_per_step=0.25, amount=125)  # 20 s of work
    lines = out.getvalue().splitlines()
    # first line after the 1 s delay, then every 5 s (at 1, 6, 11, 16 s), then the summary
    assert lines == [
        "reading: 5.0% 500/10,000 rows, 500 rows/s, ETA 0:19",
        "reading: 30.0% 3,000/10,000 rows, 500 rows/s, ETA 0:14",
        "reading: 55.0% 5,500/10,000 rows, 500 rows/s, ETA 0:09",
        "reading: 80.0% 8,000/10,000 rows, 500 rows/s, ETA 0:04",
        "reading: done, 10,000 rows in 0:20 (500 rows/s)",
    ]
    assert "\r" not in out.getvalue()


def test_plain_stream_is_not_flooded_by_long_work() -> None:
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(None, "scoring", stream=out, clock=clock, unit="events")
    run_work(progress, clock, steps=100_000, seconds_per_step=0.01, amount=1)  # 1000 s
    lines = out.getvalue().splitlines()
    assert len(lines) <= 1000 / 5 + 2
    assert lines[-1] == "scoring: done, 100,000 events in 16:40 (100 events/s)"
    # no total: no percent and no ETA
    assert lines[0] == "scoring: 100 events, 100 events/s"


def test_quick_work_writes_nothing() -> None:
    clock, out = FakeClock(), io.StringIO()
    run_work(Progress(100, "x", stream=out, clock=clock), clock, 10, 0.05, 10)
    assert out.getvalue() == ""
    run_work(Progress(100, "x", stream=out, clock=clock, delay=0.0), clock, 10, 0.05, 10)
    assert (
        out.getvalue()
        == "x: 10.0% 10/100 rows, 200 rows/s, ETA 0:00\nx: done, 100 rows in 0:00 (200 rows/s)\n"
    )


def test_terminal_line_is_redrawn_in_place_at_most_ten_times_a_second() -> None:
    clock, out = FakeClock(), TerminalBuffer()
    progress = Progress(1280, "reading", stream=out, clock=clock, delay=0.0)
    run_work(progress, clock, steps=1280, seconds_per_step=1 / 128, amount=1)  # 10 s
    text = out.getvalue()
    redraws = text.count("\r")
    assert 90 <= redraws <= 10 * 10 + 2
    assert text.endswith("\n")
    assert text.rstrip().endswith("\rreading: done, 1,280 rows in 0:10 (128 rows/s)")
    assert text.count("\n") == 1
    # every redraw covers the previous line completely
    frames = text.rstrip("\n").split("\r")[1:]
    assert all(len(later) >= len(earlier) for earlier, later in itertools.pairwise(frames))


def test_terminal_detection_can_be_overridden() -> None:
    assert Progress(1, "x", stream=TerminalBuffer()).tty
    assert not Progress(1, "x", stream=io.StringIO()).tty
    assert Progress(1, "x", stream=io.StringIO(), tty=True).tty


def test_an_exception_clears_the_terminal_line_and_skips_the_summary() -> None:
    clock, out = FakeClock(), TerminalBuffer()
    with (
        pytest.raises(RuntimeError),
        Progress(100, "reading", stream=out, clock=clock, delay=0) as p,
    ):
        clock.tick(1.0)
        p.advance(50)
        raise RuntimeError("bad row")
    text = out.getvalue()
    assert text.endswith("\r")
    assert "done" not in text
    assert text.split("\r")[-2].strip() == ""

    clock, plain = FakeClock(), io.StringIO()
    with pytest.raises(RuntimeError), Progress(100, "reading", stream=plain, clock=clock) as p:
        clock.tick(0.5)
        p.advance(50)
        raise RuntimeError("bad row")
    assert plain.getvalue() == ""


def test_bytes_are_shown_with_binary_prefixes() -> None:
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(10 * 2**20, "inspect data.csv", stream=out, clock=clock, unit="bytes")
    with progress:
        clock.tick(2.0)
        progress.advance_to(2**20)
        clock.tick(2.0)
        progress.advance_to(10 * 2**20)
    assert out.getvalue().splitlines() == [
        "inspect data.csv: 10.0% 1.0 MiB/10.0 MiB, 512.0 KiB/s, ETA 0:18",
        "inspect data.csv: done, 10.0 MiB in 0:04 (2.5 MiB/s)",
    ]


def test_a_broken_stream_does_not_stop_the_work() -> None:
    clock = FakeClock()
    stream = BrokenStream()
    progress = Progress(10, "x", stream=stream, clock=clock, delay=0.0)
    run_work(progress, clock, 10, 1.0, 1)
    progress.close()  # idempotent
    # The work was all counted, and after the first failed write no more were tried.
    assert progress.done == 10
    assert stream.attempts == 1


def test_close_is_idempotent_and_advance_after_close_is_silent() -> None:
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(10, "x", stream=out, clock=clock, delay=0.0)
    with progress:
        clock.tick(1.0)
    before = out.getvalue()
    progress.close()
    clock.tick(100.0)
    progress.advance(5)
    assert out.getvalue() == before
    assert before.count("done") == 1


def test_invalid_total() -> None:
    with pytest.raises(ValueError):
        Progress(-1, "x")
    with pytest.raises(ValueError):
        Progress(float("nan"), "x")


def test_zero_total_and_overshoot() -> None:
    clock, out = FakeClock(), io.StringIO()
    run_work(Progress(0, "x", stream=out, clock=clock, delay=0), clock, 1, 1.0, 5)
    assert "%" not in out.getvalue()
    out = io.StringIO()
    run_work(Progress(10, "x", stream=out, clock=clock, delay=0), clock, 1, 1.0, 50)
    assert out.getvalue().startswith("x: 100.0% 50/10 rows")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (59.4, "0:59"), (61, "1:01"), (3600, "1:00:00"), (-1, "?"), (float("nan"), "?")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0, "bytes", "0 B"),
        (1023, "bytes", "1023 B"),
        (1024, "bytes", "1.0 KiB"),
        (3 * 2**30, "B", "3.0 GiB"),
        (999, "rows", "999 rows"),
        (123456, "rows", "123,456 rows"),
        (2.5e9, "rows", "2.5G rows"),
        (0.5, "rows", "0.5 rows"),
    ],
)
def test_format_quantity(value: float, unit: str, text: str) -> None:
    assert format_quantity(value, unit) == text
