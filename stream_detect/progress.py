"""A progress reporter for long work that stays quiet in pipes and CI logs.

:class:`Progress` is a context manager; call :meth:`Progress.advance` (or
:meth:`Progress.advance_to` for an absolute position such as bytes read) as
work gets done. What it writes depends on where its stream goes:

* a terminal: one line, redrawn in place at most ``tty_interval`` seconds
  apart (10 times a second by default), with percent, rate and ETA when the
  total is known; the line is finished with a newline at the end;
* anything else (a pipe, a file, a CI log): one plain line at most every
  ``plain_interval`` seconds (5 by default) and a final summary line, so a log
  gets a handful of lines however long the work.

Work that ends within ``delay`` seconds (1 by default) writes nothing at all.
When the block ends with an exception, a terminal line is cleared and no final
line is written, so the error message stands alone.

The clock is passed in (``clock=time.monotonic`` by default), so tests drive
time by hand.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from stream_detect.stderr_lines import write_stderr

__all__ = ["Progress", "format_duration", "format_quantity"]

_BINARY_PREFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi")
_DECIMAL_PREFIXES = ("", "k", "M", "G", "T", "P")


def format_quantity(value: float, unit: str) -> str:
    """A short human form of ``value`` in ``unit``; bytes get binary prefixes.

    >>> format_quantity(1536, "bytes"), format_quantity(2_500_000, "rows")
    ('1.5 KiB', '2.5M rows')
    >>> format_quantity(0.25, "rows")
    '0.25 rows'
    """
    if unit in ("bytes", "B"):
        scaled, index = _scale(value, 1024.0)
        if index == 0:
            return f"{value:.0f} B"
        return f"{scaled:.1f} {_BINARY_PREFIXES[index]}B"
    return f"{_short_number(value)} {unit}"


def _short_number(value: float) -> str:
    """``42``, ``0.25``, ``12,345``, ``2.50M``: exact below a million, three digits above.

    >>> _short_number(0.25), _short_number(12345.6), _short_number(2_500_000)
    ('0.25', '12,346', '2.50M')
    """
    if abs(value) < 1e6:
        if value == int(value) or abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    scaled, index = _scale(value, 1000.0)
    return f"{scaled:.3g}{_DECIMAL_PREFIXES[index]}"


def _scale(value: float, base: float) -> tuple[float, int]:
    """``value`` divided by the largest power of ``base`` not above it, and that power."""
    index = 0
    while abs(value) >= base and index < len(_BINARY_PREFIXES) - 1:
        value /= base
        index += 1
    return value, index


def format_duration(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``; ``?`` when unknown.

    >>> format_duration(75.4), format_duration(3725), format_duration(math.inf)
    ('1:15', '1:02:05', '?')
    """
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


class Progress:
    """Report progress of work measured in ``unit`` towards ``total`` (None: unknown).

    ``stream`` defaults to ``sys.stderr`` as it is when the reporter is built.
    ``tty`` overrides the terminal detection (``stream.isatty()``). Below, a
    pipe-like stream gets a line after the first second (``delay``), the next
    one five seconds later (``plain_interval``), and the summary.

    >>> import io
    >>> now = [0.0]
    >>> out = io.StringIO()
    >>> with Progress(1000, "reading", stream=out, clock=lambda: now[0]) as progress:
    ...     for _ in range(10):
    ...         now[0] += 1.0
    ...         progress.advance(100)
    >>> print(out.getvalue(), end="")
    reading: 10.0% 100/1,000 rows, 100 rows/s, ETA 0:09
    reading: 60.0% 600/1,000 rows, 100 rows/s, ETA 0:04
    reading: done, 1,000 rows in 0:10 (100 rows/s)
    """

    def __init__(
        self,
        total: float | None,
        label: str,
        stream: TextIO | None = None,
        unit: str = "rows",
        *,
        clock: Callable[[], float] = time.monotonic,
        delay: float = 1.0,
        tty_interval: float = 0.1,
        plain_interval: float = 5.0,
        tty: bool | None = None,
    ) -> None:
        if total is not None and not total >= 0:
            raise ValueError(f"total must be >= 0 or None, got {total!r}")
        self.total = total
        self.label = label
        self.stream: TextIO = sys.stderr if stream is None else stream
        self.unit = unit
        self.clock = clock
        self.delay = delay
        self.tty = _isatty(self.stream) if tty is None else tty
        self.interval = tty_interval if self.tty else plain_interval
        self.done = 0.0
        self._start = math.nan
        self._last_draw = -math.inf
        self._drawn_width = 0
        self._wrote_any = False
        self._closed = False

    def __enter__(self) -> Progress:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(success=exc_type is None)

    def start(self) -> None:
        """Start the clock (entering the ``with`` block does this)."""
        self._start = self.clock()

    @property
    def elapsed(self) -> float:
        """Seconds since :meth:`start`."""
        if math.isnan(self._start):
            self.start()
        return max(0.0, self.clock() - self._start)

    def advance(self, amount: float) -> None:
        """Record ``amount`` more units of work done, and redraw if it is time to."""
        self.advance_to(self.done + amount)

    def advance_to(self, done: float) -> None:
        """Record that ``done`` units of work are done in all (e.g. bytes read so far)."""
        self.done = done
        now = self.elapsed
        if self._closed or now < self.delay or now - self._last_draw < self.interval:
            return
        self._last_draw = now
        self._draw(self._status(now))

    def close(self, success: bool = True) -> None:
        """Finish: the summary line on success, a cleared terminal line otherwise.

        Idempotent; leaving the ``with`` block calls it.
        """
        if self._closed:
            return
        self._closed = True
        now = self.elapsed
        if success and (now >= self.delay or self._wrote_any):
            self._draw(self._summary(now))
            if self.tty:
                self._write("\n")
        elif self.tty and self._drawn_width:
            self._write("\r" + " " * self._drawn_width + "\r")

    def _rate(self, elapsed: float) -> float:
        return self.done / elapsed if elapsed > 0 else math.nan

    def _status(self, elapsed: float) -> str:
        rate = self._rate(elapsed)
        speed = f"{self._quantity(rate)}/s" if math.isfinite(rate) else "?/s"
        if not self.total:
            return f"{self.label}: {self._quantity(self.done)}, {speed}"
        share = 100.0 * min(1.0, self.done / self.total)
        if self._bytes:
            amounts = f"{self._quantity(self.done)}/{self._quantity(self.total)}"
        else:
            amounts = f"{_short_number(self.done)}/{self._quantity(self.total)}"
        eta = max(0.0, self.total - self.done) / rate if rate > 0 else math.inf
        return f"{self.label}: {share:.1f}% {amounts}, {speed}, ETA {format_duration(eta)}"

    def _summary(self, elapsed: float) -> str:
        rate = self._rate(elapsed)
        speed = f" ({self._quantity(rate)}/s)" if math.isfinite(rate) else ""
        done = self._quantity(self.done)
        return f"{self.label}: done, {done} in {format_duration(elapsed)}{speed}"

    @property
    def _bytes(self) -> bool:
        return self.unit in ("bytes", "B")

    def _quantity(self, value: float) -> str:
        return format_quantity(value, self.unit)

    def _draw(self, line: str) -> None:
        if self.tty:
            padding = " " * max(0, self._drawn_width - len(line))
            self._write("\r" + line + padding)
            self._drawn_width = len(line)
        else:
            self._write(line + "\n")
        self._wrote_any = True

    def _write(self, text: str) -> None:
        try:
            write_stderr(text, self.stream)
        except (OSError, ValueError):
            # A closed or broken stderr must not stop the work it reports on.
            self._closed = True


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False
