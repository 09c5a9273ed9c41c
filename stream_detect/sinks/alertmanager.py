"""Alerts to Prometheus Alertmanager (``alertmanager://HOST:PORT``), without blocking detection.

``alertmanager://HOST:PORT?resend=30s&resolve_after=5m&max_pending=1000``

An anomaly of one key is one Alertmanager alert while it lasts: the first
alerting event of the key starts it, and its labels stay fixed so
Alertmanager sees one alert, not one per event:

* ``alertname`` (``StreamDetectAnomaly``, or ``?alertname=``),
* ``key`` (the model's key, when there is one),
* ``feature`` (the feature that contributed most to the first event's alert),
* ``event_id`` (that event's id, when the detector has an ``id_field``), which
  lets an operator's silence name the event (see
  :mod:`stream_detect.sources.silences`).

Its annotations carry the latest alerting event's ``score``, ``log_epsilon``,
``contributions`` (JSON) and the number of alerting ``events`` so far.
Every alerting event re-sends it, and it is re-sent every ``resend`` while it
lasts; its ``endsAt`` is always the last alert plus ``resolve_after``, so once
the key is quiet that long Alertmanager resolves it (a last post says so).

Delivery happens in a background thread: :meth:`AlertmanagerSink.write_batch`
and :meth:`~AlertmanagerSink.flush` only hand alerts over, so a slow or absent
Alertmanager never holds up the stream. Unsent alerts wait in a queue of at
most ``max_pending`` (one entry per alert, the newest version of it); the
sender retries with exponential backoff (0.1 s doubling up to ``max_backoff``),
and when the queue is full the oldest entry is dropped and counted in
:attr:`~AlertmanagerSink.dropped`. Unlike the file and Kafka sinks, this
delivery is best effort: flushing does not wait for Alertmanager.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from stream_detect.durations import duration_param
from stream_detect.errors import ConfigError
from stream_detect.sinks.base import Sink

__all__ = ["AlertmanagerSink", "alert_labels", "rfc3339"]

_FIRST_BACKOFF_S = 0.1


def rfc3339(seconds: float) -> str:
    """Unix time as the RFC 3339 text Alertmanager reads.

    >>> rfc3339(0.0)
    '1970-01-01T00:00:00+00:00'
    """
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def alert_labels(
    record: Mapping[str, Any], *, alertname: str, id_field: str | None
) -> dict[str, str]:
    """The labels that identify an anomaly started by ``record`` (an alert output record).

    >>> alert_labels({"key": "web-1", "id": 7, "contributions": {"cpu": 9.0, "mem": 1.0}},
    ...              alertname="StreamDetectAnomaly", id_field="id")
    {'alertname': 'StreamDetectAnomaly', 'key': 'web-1', 'feature': 'cpu', 'event_id': '7'}
    """
    labels = {"alertname": alertname}
    if record.get("key") is not None:
        labels["key"] = str(record["key"])
    contributions = record.get("contributions") or {}
    if contributions:
        labels["feature"] = str(next(iter(contributions)))
    if id_field is not None and record.get(id_field) is not None:
        value = record[id_field]
        labels["event_id"] = value if isinstance(value, str) else orjson.dumps(value).decode()
    return labels


@dataclass
class _Anomaly:
    labels: dict[str, str]
    starts_at: float
    last_alert: float
    events: int = 0
    annotations: dict[str, str] = field(default_factory=dict)
    last_sent: float = float("-inf")


class AlertmanagerSink(Sink):
    """Posts alerts to ``{base_url}/api/v2/alerts``; see the module docstring.

    Parameters
    ----------
    base_url
        ``http://HOST:PORT`` of Alertmanager.
    resend_s
        Re-send an ongoing anomaly this often.
    resolve_after_s
        An anomaly whose key raised no alert for this long is resolved.
    max_pending
        Alerts waiting for delivery at most; beyond, the oldest is dropped.
    max_backoff_s
        Longest wait between two attempts while Alertmanager is unreachable.
    timeout_s
        Longest one HTTP request may take.
    """

    def __init__(
        self,
        base_url: str,
        *,
        resend_s: float = 30.0,
        resolve_after_s: float = 300.0,
        max_pending: int = 1000,
        max_backoff_s: float = 30.0,
        timeout_s: float = 5.0,
        alertname: str = "StreamDetectAnomaly",
        uri: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = base_url.rstrip("/") + "/api/v2/alerts"
        self.uri = uri or base_url
        self.resend_s = resend_s
        self.resolve_after_s = resolve_after_s
        self.max_pending = max_pending
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.alertname = alertname
        self.clock = clock
        self.id_field: str | None = None
        #: Alerts Alertmanager accepted, and alerts dropped from a full queue.
        self.sent = 0
        self.dropped = 0
        #: The last delivery error, None once a delivery succeeds.
        self.last_error: str | None = None
        self._anomalies: dict[str, _Anomaly] = {}
        self._pending: OrderedDict[tuple[tuple[str, str], ...], dict[str, Any]] = OrderedDict()
        self._wake = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._send_loop, daemon=True)
        self._thread.start()

    def bind_fields(self, *, id_field: str | None, label_field: str | None) -> None:
        """Take the detector's id field, so each anomaly's labels name its first event."""
        self.id_field = id_field

    def write_batch(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Start or extend an anomaly per alerting record (others are ignored)."""
        now = self.clock()
        with self._wake:
            for record in records:
                if record.get("alert"):
                    self._extend(record, now)
            self._wake.notify()

    def _extend(self, record: Mapping[str, Any], now: float) -> None:
        key = "" if record.get("key") is None else str(record["key"])
        anomaly = self._anomalies.get(key)
        if anomaly is None:
            labels = alert_labels(record, alertname=self.alertname, id_field=self.id_field)
            anomaly = self._anomalies[key] = _Anomaly(labels, starts_at=now, last_alert=now)
        anomaly.events += 1
        anomaly.last_alert = now
        anomaly.annotations = {
            "score": str(record.get("score")),
            "log_epsilon": str(record.get("log_epsilon")),
            "contributions": orjson.dumps(record.get("contributions") or {}).decode(),
            "events": str(anomaly.events),
            "summary": f"stream-detect anomaly on key {key!r}" if key else "stream-detect anomaly",
        }
        self._queue(anomaly, now)

    def _queue(self, anomaly: _Anomaly, now: float) -> None:
        """Put the anomaly's current state in the send queue (called with the lock held)."""
        anomaly.last_sent = now
        fingerprint = tuple(sorted(anomaly.labels.items()))
        self._pending.pop(fingerprint, None)
        self._pending[fingerprint] = {
            "labels": anomaly.labels,
            "annotations": anomaly.annotations,
            "startsAt": rfc3339(anomaly.starts_at),
            "endsAt": rfc3339(anomaly.last_alert + self.resolve_after_s),
        }
        while len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)
            self.dropped += 1

    def flush(self) -> None:
        """Wake the sender; never waits for Alertmanager."""
        with self._wake:
            self._wake.notify()

    def close(self, wait_s: float | None = None) -> None:
        """Stop the sender after one last attempt to deliver what is queued."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(self.timeout_s + 1.0 if wait_s is None else wait_s)

    # ---------------------------------------------------------------- sender

    def _due(self, now: float) -> None:
        """Queue re-sends and resolutions that are due (called with the lock held)."""
        for key, anomaly in list(self._anomalies.items()):
            if now - anomaly.last_alert >= self.resolve_after_s:
                self._queue(anomaly, now)
                del self._anomalies[key]
            elif now - anomaly.last_sent >= self.resend_s:
                self._queue(anomaly, now)

    def _send_loop(self) -> None:
        backoff = 0.0
        retry_at = 0.0
        while True:
            with self._wake:
                timeout = backoff if backoff else min(self.resend_s, self.resolve_after_s) / 4
                if not self._closing:
                    self._wake.wait(timeout)
                closing = self._closing
                self._due(self.clock())
                batch = list(self._pending.items())
            # New alerts wake the sender, but while Alertmanager is down only the backoff may.
            if batch and (closing or time.monotonic() >= retry_at):
                delivered = self._post([alert for _, alert in batch])
                if delivered:
                    backoff = 0.0
                    with self._wake:
                        for fingerprint, alert in batch:
                            # A newer version queued meanwhile still has to go.
                            if self._pending.get(fingerprint) is alert:
                                del self._pending[fingerprint]
                        self.sent += len(batch)
                else:
                    backoff = min(max(backoff * 2, _FIRST_BACKOFF_S), self.max_backoff_s)
                    retry_at = time.monotonic() + backoff
            if closing:
                return

    def _post(self, alerts: list[dict[str, Any]]) -> bool:
        request = urllib.request.Request(
            self.url,
            data=orjson.dumps(alerts),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                reply.read()
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            # An answer cut off halfway (IncompleteRead) is a failed attempt like any other:
            # escaping, it would end the sender thread and every later alert with it.
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        self.last_error = None
        return True


def open_alertmanager(
    target: str, params: Mapping[str, str], *, uri: str, config_key: str
) -> AlertmanagerSink:
    """Build the sink from a URI's target (``HOST:PORT``) and query parameters.

    >>> sink = open_alertmanager("localhost:9093", {"resend": "10s"}, uri="u", config_key="sink")
    >>> sink.url, sink.resend_s
    ('http://localhost:9093/api/v2/alerts', 10.0)
    >>> sink.close()
    """
    host = target.strip("/")
    if not host or "/" in host:
        raise ConfigError(config_key, uri, "alertmanager://HOST:PORT")

    def seconds(name: str, default: float) -> float:
        return duration_param(params, name, default, uri=uri, config_key=config_key, minimum=0.01)

    max_pending = params.get("max_pending", "1000")
    if not max_pending.isdigit() or int(max_pending) < 1:
        raise ConfigError(config_key, uri, "max_pending=N with N >= 1")
    return AlertmanagerSink(
        f"http://{host}",
        resend_s=seconds("resend", 30.0),
        resolve_after_s=seconds("resolve_after", 300.0),
        max_pending=int(max_pending),
        max_backoff_s=seconds("max_backoff", 30.0),
        timeout_s=seconds("timeout", 5.0),
        alertname=params.get("alertname", "StreamDetectAnomaly"),
        uri=uri,
    )


#: Query parameters the URI accepts.
ALERTMANAGER_PARAMS = (
    "resend",
    "resolve_after",
    "max_pending",
    "max_backoff",
    "timeout",
    "alertname",
)
