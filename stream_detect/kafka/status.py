"""Broker reachability as a state, reported once per change, with the retry backoff.

Kafka trouble (a broker that is not up yet, restarts, or stops answering) is
not an error of the run: clients retry with a growing pause and say so on
stderr once when the broker is lost and once when it is back, never once per
attempt.

>>> import io
>>> stream = io.StringIO()
>>> link = BrokerLink("kafka://b:9092/t", stream=stream)
>>> link.failed("no broker answered"); link.failed("no broker answered"); link.ok()
>>> print(stream.getvalue(), end="")
stream-detect: kafka://b:9092/t: broker unreachable (no broker answered); retrying
stream-detect: kafka://b:9092/t: broker reachable again
"""

from __future__ import annotations

import sys
from typing import TextIO

__all__ = ["BrokerLink"]


class BrokerLink:
    """Whether the last broker operation of one client worked, and how long to wait now.

    Parameters
    ----------
    uri
        What the lines name (the URI as the user wrote it).
    stream
        Where the lines go (standard error by default).
    first_pause_s, max_pause_s
        The backoff: each consecutive failure doubles the pause, up to the maximum.
    """

    def __init__(
        self,
        uri: str,
        *,
        stream: TextIO | None = None,
        first_pause_s: float = 0.1,
        max_pause_s: float = 2.0,
    ) -> None:
        self.uri = uri
        self.stream = stream
        self.first_pause_s = first_pause_s
        self.max_pause_s = max_pause_s
        self.reachable = True
        self.failures = 0

    def failed(self, reason: str) -> None:
        """Note a failed attempt; the first of a run of them is reported."""
        self.failures += 1
        if self.reachable:
            self.reachable = False
            self._say(f"broker unreachable ({reason}); retrying")

    def ok(self) -> None:
        """Note a successful operation; reported if the broker was unreachable."""
        self.failures = 0
        if not self.reachable:
            self.reachable = True
            self._say("broker reachable again")

    @property
    def pause_s(self) -> float:
        """How long to wait before the next attempt (0 while nothing failed).

        >>> link = BrokerLink("u", stream=__import__("io").StringIO())
        >>> [link.failed("x") or link.pause_s for _ in range(6)]
        [0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
        """
        if not self.failures:
            return 0.0
        return float(min(self.max_pause_s, self.first_pause_s * 2 ** (self.failures - 1)))

    def _say(self, text: str) -> None:
        stream = self.stream or sys.stderr
        stream.write(f"stream-detect: {self.uri}: {text}\n")
        stream.flush()
