"""Posting alerts to Alertmanager from a background thread: retries, refusals, and saying so.

:class:`AlertDelivery` holds the alerts waiting to be posted to
``/api/v2/alerts`` (one entry per alert, its newest version) and a thread
that posts them all together whenever it is woken or a retry is due. What
happens to a post that fails depends on why:

* no answer (connection refused, a timeout, an answer cut off), a 5xx, 408 or
  429: Alertmanager may take it later, so the post is retried with exponential
  backoff (0.1 s doubling up to ``max_backoff_s``); when the queue is full the
  oldest entry is dropped and counted in :attr:`~AlertDelivery.dropped`.
  Stderr gets one line when delivery starts failing (the URI, the reason,
  what happens meanwhile) and one when it works again, never one per attempt
  (:class:`~stream_detect.reachability.Reachability`).
* any other 4xx, or a redirect that cannot be followed (:func:`refused_for_good`):
  the same post would be refused again. Alertmanager answers 400 to a post
  with an alert it finds invalid (and may or may not have stored the valid
  ones), so the post is split in halves, and each half again, until every
  alert it refuses is alone; those are dropped and counted in
  :attr:`~AlertDelivery.rejected` as well as ``dropped``, and the others
  delivered. Stderr gets one line per distinct reason (Alertmanager's, or the
  redirect's address and target), naming the first alert refused for it.

:meth:`AlertDelivery.close` makes one last attempt and, if alerts were not
delivered (still queued then, or dropped during the run), says how many on
one line (:attr:`~AlertDelivery.not_delivered`).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import orjson

from stream_detect.http_exchange import read_within
from stream_detect.http_failure import failure_reason
from stream_detect.reachability import Reachability

__all__ = ["AlertDelivery", "Fingerprint", "refused_for_good", "shown_labels"]

_FIRST_BACKOFF_S = 0.1
#: Distinct refusal reasons said on stderr at most (later new ones are only counted).
_MAX_REASONS_SAID = 100

#: What identifies an alert to Alertmanager: its labels, sorted.
Fingerprint = tuple[tuple[str, str], ...]
_Entry = tuple[Fingerprint, dict[str, Any]]


def refused_for_good(status: int) -> bool:
    """True if a post answered ``status`` would get the same answer again.

    That is a 4xx but 408 and 429, and a 3xx: a post meets one only where its
    redirect is not followed (to another scheme than ``http://`` or ``https://``,
    a 301, 302 or 303 that would drop the alerts, a loop), a configuration
    that posting again does not change
    (:mod:`~stream_detect.http_exchange`).

    >>> [refused_for_good(s) for s in (302, 308, 400, 404, 408, 413, 422, 429, 500, 503)]
    [True, True, True, True, False, True, True, False, False, False]
    """
    return 300 <= status < 500 and status not in (408, 429)


@dataclass(frozen=True)
class _Failure:
    """Why a post failed, and whether posting it again can work."""

    reason: str
    final: bool


class AlertDelivery:
    """The queue of alerts to post and the thread that posts them; see the module docstring.

    Parameters
    ----------
    url
        Alertmanager's ``.../api/v2/alerts``.
    uri
        What the stderr lines name (the sink's URI as the user wrote it).
    max_pending, max_backoff_s, timeout_s
        The longest queue, the longest pause between retries, the longest request.
    idle_s
        How long the thread sleeps when nothing woke it and no retry is due.
    before_attempt
        Called with :attr:`lock` held before each look at the queue (the sink
        queues the re-sends that are due).
    stream
        Where the lines go (standard error by default).

    Call :meth:`start` once, :meth:`put` (with :attr:`lock` held) and
    :meth:`wake` any number of times, :meth:`close` once.
    """

    def __init__(
        self,
        url: str,
        *,
        uri: str,
        max_pending: int,
        max_backoff_s: float,
        timeout_s: float,
        idle_s: float,
        before_attempt: Callable[[], None],
        stream: TextIO | None = None,
    ) -> None:
        self.url = url
        self.max_pending = max_pending
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.idle_s = idle_s
        self.before_attempt = before_attempt
        #: Held by whoever touches the queue; notified to wake the sender.
        self.lock = threading.Condition()
        #: Alerts Alertmanager accepted; alerts dropped (from a full queue, or refused).
        self.sent = 0
        self.dropped = 0
        #: Alerts dropped because they were refused for good (part of ``dropped``).
        self.rejected = 0
        #: Alerts still queued when delivery closed (0 until then).
        self.unsent = 0
        #: The last delivery error, None once a delivery succeeds.
        self.last_error: str | None = None
        #: Whether Alertmanager takes posts; says on stderr when that changes.
        self.link = Reachability(
            uri,
            lost="alerts not delivered",
            back="alerts delivered again",
            stream=stream,
            first_pause_s=_FIRST_BACKOFF_S,
            max_pause_s=max_backoff_s,
        )
        self._pending: OrderedDict[Fingerprint, dict[str, Any]] = OrderedDict()
        self._overflowed = 0
        self._overflowed_before_outage = 0
        self._reasons_said: set[str] = set()
        self._closing = False
        self._closed = False
        #: Set by :meth:`wake` until the sender looks at the queue.
        self._woken = False
        self._thread = threading.Thread(target=self._send_loop, daemon=True)

    def start(self) -> None:
        """Start the sender thread."""
        self._thread.start()

    def put(self, fingerprint: Fingerprint, alert: dict[str, Any]) -> None:
        """Queue ``alert``, replacing an older version of it (call with :attr:`lock` held)."""
        self._pending.pop(fingerprint, None)
        self._pending[fingerprint] = alert
        while len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)
            self.dropped += 1
            self._overflowed += 1

    def wake(self) -> None:
        """Have the sender look at the queue now (call with :attr:`lock` held)."""
        # Remembered, not only notified: a sender busy posting is not waiting, and
        # would otherwise sleep through this alert until its idle timeout.
        self._woken = True
        self.lock.notify()

    @property
    def not_delivered(self) -> int:
        """Alerts that did not reach Alertmanager: dropped, and (once closed) still queued."""
        return self.dropped + self.unsent

    def close(self, wait_s: float) -> None:
        """Stop the sender after one last attempt; say how many alerts were not delivered."""
        if self._closed:
            return
        self._closed = True
        with self.lock:
            self._closing = True
            self.lock.notify()
        self._thread.join(wait_s)
        with self.lock:
            self.unsent = len(self._pending)
        if not self.not_delivered:
            return
        parts = []
        if self.unsent:
            parts.append(f"{self.unsent} still queued at the end (last error: {self.last_error})")
        if self._overflowed:
            parts.append(f"{self._overflowed} dropped from the full queue")
        if self.rejected:
            parts.append(f"{self.rejected} refused for good")
        self.link.say(f"{_alerts(self.not_delivered)} not delivered: " + ", ".join(parts))

    # ---------------------------------------------------------------- sender

    def _send_loop(self) -> None:
        retry_at = 0.0
        while True:
            with self.lock:
                if not self._closing and not self._woken:
                    self.lock.wait(self.link.pause_s or self.idle_s)
                self._woken = False
                closing = self._closing
                self.before_attempt()
                batch = list(self._pending.items())
            # New alerts wake the sender, but while Alertmanager is down only the backoff may.
            if batch and (closing or time.monotonic() >= retry_at):
                failure = self._deliver(batch)
                if failure is None:
                    self._delivered()
                elif not closing:  # when closing, the last line says what was not delivered
                    self._failed(failure)
                    retry_at = time.monotonic() + self.link.pause_s
            if closing:
                return

    def _deliver(self, batch: list[_Entry]) -> str | None:
        """Post ``batch``, split where refused for good; return why the rest must be retried.

        The halves of a post refused for good are posted in turn, so each
        alert refused is isolated in about log2(len(batch)) posts and every
        other one delivered. Posting again an alert Alertmanager already
        stored is harmless: it merges alerts by their labels.
        """
        parts = [batch]
        while parts:
            part = parts.pop()
            failure = self._post([alert for _, alert in part])
            if failure is None:
                self._settle(part, refusal=None)
            elif not failure.final:
                return failure.reason
            elif len(part) == 1:
                self._settle(part, refusal=failure.reason)
            else:
                middle = len(part) // 2
                parts += [part[middle:], part[:middle]]
        return None

    def _settle(self, part: list[_Entry], refusal: str | None) -> None:
        """Take ``part`` out of the queue: delivered, or refused for ``refusal``."""
        with self.lock:
            for fingerprint, alert in part:
                # A newer version queued meanwhile still has to go.
                if self._pending.get(fingerprint) is alert:
                    del self._pending[fingerprint]
            if refusal is None:
                self.sent += len(part)
                return
            self.dropped += len(part)
            self.rejected += len(part)
        if refusal not in self._reasons_said and len(self._reasons_said) < _MAX_REASONS_SAID:
            self._reasons_said.add(refusal)
            self.link.say(
                f"an alert was refused for good ({refusal}); dropped it, not retried: "
                f"{shown_labels(part[0][1]['labels'])} (later alerts refused for this reason "
                "are counted, not shown)"
            )

    def _failed(self, reason: str) -> None:
        if self.link.reachable:
            self._overflowed_before_outage = self._overflowed
        self.link.failed(
            reason,
            f"retrying with backoff up to {self.max_backoff_s:g} s; "
            f"{_alerts(len(self._pending))} queued (at most {self.max_pending}, "
            "then the oldest are dropped)",
        )

    def _delivered(self) -> None:
        if self.link.reachable:
            self.link.ok()
            return
        note = f"after {self.link.failures} failed attempts"
        lost = self._overflowed - self._overflowed_before_outage
        if lost:
            note += f"; {_alerts(lost)} dropped from the full queue meanwhile"
        self.link.ok(note)

    def _post(self, alerts: list[dict[str, Any]]) -> _Failure | None:
        """Post ``alerts`` once; None if Alertmanager took them, else why not."""
        try:
            data = orjson.dumps(alerts)
        except orjson.JSONEncodeError as exc:
            # Text JSON cannot carry (a lone surrogate): no attempt would post it.
            return _Failure(f"not encodable as JSON: {exc}", final=True)
        request = urllib.request.Request(
            self.url, data=data, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            # Bounded as a whole: a server that answers a byte at a time would hold the
            # sender, and every later alert, without a failed attempt ever being said.
            read_within(request, self.timeout_s)
        except urllib.error.HTTPError as exc:
            self.last_error = failure_reason(exc)
            return _Failure(self.last_error, final=refused_for_good(exc.code))
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            # An answer cut off halfway (IncompleteRead) is a failed attempt like any other:
            # escaping, it would end the sender thread and every later alert with it.
            self.last_error = failure_reason(exc)
            return _Failure(self.last_error, final=False)
        self.last_error = None
        return None


def shown_labels(labels: Mapping[str, str], limit: int = 100) -> str:
    """An alert's labels for a line on stderr: one line, each value cut at ``limit`` characters.

    JSON, so a line break or a quote in a value (an event's key is any string) cannot
    break the line or read as another label, and a lone surrogate is escaped:

    >>> print(shown_labels({"alertname": "A", "key": 'web\\n"1"', "feature": "x" * 150}, limit=10))
    {"alertname":"A","key":"web\\n\\"1\\"","feature":"xxxxxxxxxx...(150 characters)"}
    >>> print(shown_labels({"key": "\\ud800"}))
    {"key":"\\ud800"}
    """
    cut = {
        name: value if len(value) <= limit else f"{value[:limit]}...({len(value)} characters)"
        for name, value in labels.items()
    }
    try:
        return orjson.dumps(cut).decode()
    except orjson.JSONEncodeError:  # a lone surrogate (the alert was refused for it)
        return json.dumps(cut, separators=(",", ":"))


def _alerts(count: int) -> str:
    """``count`` alerts, in words.

    >>> _alerts(1), _alerts(3)
    ('1 alert', '3 alerts')
    """
    return f"{count} alert" if count == 1 else f"{count} alerts"
