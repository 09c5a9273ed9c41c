"""Alerts to Prometheus Alertmanager (``alertmanager://HOST:PORT``), without blocking detection.

``alertmanager://HOST:PORT/PREFIX?resend=30s&resolve_after=5m&max_pending=1000``

``/PREFIX`` (optional) is the path Alertmanager serves its API under (run
with ``--web.route-prefix=/PREFIX``, or behind a reverse proxy at a path):
alerts are posted to ``/PREFIX/api/v2/alerts``.

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

Delivery happens in a background thread
(:mod:`stream_detect.sinks.alert_delivery`): :meth:`AlertmanagerSink.write_batch`
and :meth:`~AlertmanagerSink.flush` only hand alerts over, so a slow or absent
Alertmanager never holds up the stream. Unsent alerts wait in a queue of at
most ``max_pending`` (one entry per alert, the newest version of it); an
outage, a 5xx, 408 or 429 is retried with exponential backoff (0.1 s doubling
up to ``max_backoff``), and when the queue is full the oldest entry is dropped
and counted in :attr:`~AlertmanagerSink.dropped`; an alert refused for good
(any other 4xx, or a redirect the post cannot follow: to another scheme than
``http://`` or ``https://``, or a 301, 302 or 303, which would make it a GET
without the alerts; a 307 or 308 is followed) is dropped alone, counted in
:attr:`~AlertmanagerSink.rejected` too, and never holds up the others.
Stderr hears of each: when delivery starts failing and when it works again,
each distinct refusal, and at close how many alerts were not delivered.
Unlike the file and Kafka sinks, this delivery is best effort: flushing does
not wait for Alertmanager, and what it did not deliver does not fail the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from stream_detect.durations import duration_param
from stream_detect.errors import ConfigError
from stream_detect.reachability import Reachability
from stream_detect.sinks.alert_delivery import AlertDelivery
from stream_detect.sinks.base import Sink
from stream_detect.sinks.json_encoding import encode_json
from stream_detect.uris import http_base_url

__all__ = ["AlertmanagerSink", "alert_labels", "rfc3339"]


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
        labels["event_id"] = value if isinstance(value, str) else encode_json(value).decode()
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
        ``http://HOST:PORT`` of Alertmanager, or ``http://HOST:PORT/PREFIX`` where its
        API is served under a path.
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
    stream
        Where the lines about delivery go (standard error by default).
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
        stream: TextIO | None = None,
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
        self._anomalies: dict[str, _Anomaly] = {}
        self.delivery = AlertDelivery(
            self.url,
            uri=self.uri,
            max_pending=max_pending,
            max_backoff_s=max_backoff_s,
            timeout_s=timeout_s,
            idle_s=min(resend_s, resolve_after_s) / 4,
            before_attempt=lambda: self._due(self.clock()),
            stream=stream,
        )
        self.delivery.start()

    @property
    def sent(self) -> int:
        """Alerts Alertmanager accepted."""
        return self.delivery.sent

    @property
    def dropped(self) -> int:
        """Alerts dropped: from a full queue, or refused for good."""
        return self.delivery.dropped

    @property
    def rejected(self) -> int:
        """Alerts dropped because they were refused for good (part of ``dropped``)."""
        return self.delivery.rejected

    @property
    def not_delivered(self) -> int:
        """Alerts that did not reach Alertmanager: dropped, and (once closed) still queued."""
        return self.delivery.not_delivered

    @property
    def last_error(self) -> str | None:
        """The last delivery error, None once a delivery succeeds."""
        return self.delivery.last_error

    @property
    def link(self) -> Reachability:
        """Whether Alertmanager takes posts (it says on stderr when that changes)."""
        return self.delivery.link

    def bind_fields(self, *, id_field: str | None, label_field: str | None) -> None:
        """Take the detector's id field, so each anomaly's labels name its first event."""
        self.id_field = id_field

    def write_batch(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Start or extend an anomaly per alerting record (others are ignored)."""
        now = self.clock()
        with self.delivery.lock:
            for record in records:
                if record.get("alert"):
                    self._extend(record, now)
            self.delivery.wake()

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
        alert = {
            "labels": anomaly.labels,
            "annotations": anomaly.annotations,
            "startsAt": rfc3339(anomaly.starts_at),
            "endsAt": rfc3339(anomaly.last_alert + self.resolve_after_s),
        }
        self.delivery.put(tuple(sorted(anomaly.labels.items())), alert)

    def flush(self) -> None:
        """Wake the sender; never waits for Alertmanager."""
        with self.delivery.lock:
            self.delivery.wake()

    def close(self, wait_s: float | None = None) -> None:
        """Stop the sender after one last attempt to deliver what is queued.

        If alerts were not delivered (still queued then, or dropped during
        the run), one line on stderr says how many and why.
        """
        self.delivery.close(self.timeout_s + 1.0 if wait_s is None else wait_s)

    # ------------------------------------------------------------- re-sends

    def _due(self, now: float) -> None:
        """Queue re-sends and resolutions that are due (called with the lock held)."""
        for key, anomaly in list(self._anomalies.items()):
            if now - anomaly.last_alert >= self.resolve_after_s:
                self._queue(anomaly, now)
                del self._anomalies[key]
            elif now - anomaly.last_sent >= self.resend_s:
                self._queue(anomaly, now)


def open_alertmanager(
    target: str, params: Mapping[str, str], *, uri: str, config_key: str
) -> AlertmanagerSink:
    """Build the sink from a URI's target (``HOST:PORT[/PREFIX]``) and query parameters.

    >>> sink = open_alertmanager("localhost:9093", {"resend": "10s"}, uri="u", config_key="sink")
    >>> sink.url, sink.resend_s
    ('http://localhost:9093/api/v2/alerts', 10.0)
    >>> sink.close()

    With a prefix (Alertmanager run with ``--web.route-prefix=/am``), every
    request goes under it:

    >>> sink = open_alertmanager("localhost:9093/am", {}, uri="u", config_key="sink")
    >>> sink.url
    'http://localhost:9093/am/api/v2/alerts'
    >>> sink.close()
    """
    base_url = http_base_url(
        target, uri=uri, config_key=config_key, expected="alertmanager://HOST:PORT[/PREFIX]"
    )

    def seconds(name: str, default: float) -> float:
        return duration_param(params, name, default, uri=uri, config_key=config_key, minimum=0.01)

    max_pending = params.get("max_pending", "1000")
    if not max_pending.isdigit() or int(max_pending) < 1:
        raise ConfigError(config_key, uri, "max_pending=N with N >= 1")
    return AlertmanagerSink(
        base_url,
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
