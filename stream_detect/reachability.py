"""Whether a server the run talks to answers, as a state reported once per change.

Trouble with a server (a Kafka broker, an exporter, Prometheus, Alertmanager)
is not an error of the run: the client tries again, and stderr gets one line
when the link goes from working to failing (what failed, why, and what
happens meanwhile) and one when it works again, never a line per attempt.
Clients that retry at once wait :attr:`Reachability.pause_s`, a backoff that
doubles with each consecutive failure. The state and the count of failed
attempts are also the run's metrics
(:mod:`~stream_detect.reachability_metrics`).

>>> import io
>>> stream = io.StringIO()
>>> link = Reachability("prometheus://h:9100/metrics", lost="scrape failed",
...                     back="scrapes work again", stream=stream)
>>> link.failed("HTTP 500", "no events until one works")
>>> link.failed("HTTP 500", "no events until one works")
>>> link.ok(note="after 2 failed")
>>> print(stream.getvalue(), end="")
stream-detect: prometheus://h:9100/metrics: scrape failed (HTTP 500); no events until one works
stream-detect: prometheus://h:9100/metrics: scrapes work again (after 2 failed)
>>> link.reachable, link.failures, link.failed_attempts
(True, 0, 2)
"""

from __future__ import annotations

from typing import TextIO

from stream_detect.stderr_lines import write_stderr

__all__ = ["Reachability"]


class Reachability:
    """Whether the last exchange of one client with its server worked; see the module docstring.

    Parameters
    ----------
    uri
        What the lines name (the URI as the user wrote it).
    lost, back
        What the line says when the link fails, and when it works again.
    stream
        Where the lines go (standard error by default, looked up when written).
    first_pause_s, max_pause_s
        The backoff: each consecutive failure doubles the pause, up to the maximum.
    """

    def __init__(
        self,
        uri: str,
        *,
        lost: str = "unreachable",
        back: str = "reachable again",
        stream: TextIO | None = None,
        first_pause_s: float = 0.1,
        max_pause_s: float = 2.0,
    ) -> None:
        self.uri = uri
        self.lost = lost
        self.back = back
        self.stream = stream
        self.first_pause_s = first_pause_s
        self.max_pause_s = max_pause_s
        #: False from a failed attempt until one works.
        self.reachable = True
        #: Failed attempts since the last one that worked.
        self.failures = 0
        #: Failed attempts in all, since the link was made (never goes down).
        self.failed_attempts = 0
        #: True once an attempt was made (``reachable`` says more than a guess).
        self.tried = False

    def failed(self, reason: str, then: str = "retrying") -> None:
        """Note a failed attempt; the first of a run of them is said, with ``then``."""
        self.tried = True
        self.failures += 1
        self.failed_attempts += 1
        if self.reachable:
            self.reachable = False
            self.say(f"{self.lost} ({reason}); {then}")

    def ok(self, note: str = "") -> None:
        """Note an attempt that worked; said (with ``note``) if the last one had failed."""
        self.tried = True
        self.failures = 0
        if not self.reachable:
            self.reachable = True
            self.say(f"{self.back} ({note})" if note else self.back)

    @property
    def pause_s(self) -> float:
        """How long to wait before the next attempt (0 while nothing failed).

        >>> link = Reachability("u", stream=__import__("io").StringIO())
        >>> [link.failed("x") or link.pause_s for _ in range(6)]
        [0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
        """
        if not self.failures:
            return 0.0
        return float(min(self.max_pause_s, self.first_pause_s * 2 ** (self.failures - 1)))

    def say(self, text: str) -> None:
        """Write one line about this client: ``stream-detect: URI: text``."""
        # The sender of alerts says its lines from its own thread: whole, never
        # inside a dead letter the loop is writing to the same stderr.
        write_stderr(f"stream-detect: {self.uri}: {text}\n", self.stream)
