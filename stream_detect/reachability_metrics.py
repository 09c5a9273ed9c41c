"""Prometheus series of the servers a run talks to: reached at the last attempt, failures.

Every client of a server keeps a :class:`~stream_detect.reachability.Reachability`
link: the Kafka source and sinks, the ``prometheus://`` and ``promql://``
sources, the Alertmanager sink and the ``alertmanager-silences://`` labels
source. Stderr hears when a link is lost and when it is back;
:class:`ReachabilityMetrics` shows the same on ``/metrics``, prefixed
``stream_detect_``:

* ``server_reachable{client,kind}``: 1 if the last attempt to reach the
  server worked, 0 if it failed (no series before the first attempt);
* ``server_failed_attempts_total{client,kind}``: attempts that failed since
  the run started (no answer, an error status, an answer that could not be
  read). A reload that opens a new client of the same kind carries the count
  on, so the counter never goes down.

``client`` is the part's role (``source``, ``sink``, ``dead_letter``,
``labels``); ``kind`` the scheme of its URI (``prometheus``, ``promql``,
``alertmanager``, ``alertmanager-silences``, ``kafka``). The loop thread
calls :meth:`ReachabilityMetrics.observe` once a turn; a scrape reads the
snapshot it left.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> from stream_detect.reachability import Reachability
>>> registry = CollectorRegistry()
>>> servers = ReachabilityMetrics(registry)
>>> link = Reachability("promql://h:9090?query=up", stream=__import__("io").StringIO())
>>> link.failed("HTTP 503"); link.failed("HTTP 503")
>>> servers.observe({"source": link, "sink": None})
>>> text = generate_latest(registry).decode()
>>> 'stream_detect_server_reachable{client="source",kind="promql"} 0.0' in text
True
>>> 'stream_detect_server_failed_attempts_total{client="source",kind="promql"} 2.0' in text
True
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from stream_detect.reachability import Reachability

__all__ = ["ReachabilityMetrics", "link_of", "server_kind"]

_PREFIX = "stream_detect_"

#: A series' labels: the client's role and the kind of server.
_Series = tuple[str, str]


def server_kind(uri: str) -> str:
    """The kind of server a URI names: its scheme.

    >>> server_kind("prometheus://h:9100/metrics?every=5s"), server_kind("kafka://b:9092/t")
    ('prometheus', 'kafka')
    """
    scheme, separator, _ = uri.partition("://")
    return scheme if separator else "unknown"


def link_of(part: object) -> Reachability | None:
    """The link of a source or sink that talks to a server (or the link itself); None otherwise.

    >>> link_of(object()) is None
    True
    """
    if isinstance(part, Reachability):
        return part
    link = getattr(part, "link", None)
    return link if isinstance(link, Reachability) else None


@dataclass
class _Count:
    """The failed attempts of one series: the link counting now, and those before it."""

    link: Reachability
    earlier: int = 0

    def total(self) -> int:
        return self.earlier + self.link.failed_attempts


class ReachabilityMetrics(Collector):
    """The servers' series of one run, registered in ``registry``; see the module docstring."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._lock = threading.Lock()
        self._counts: dict[_Series, _Count] = {}
        self._reachable: dict[_Series, float] = {}
        self._failed: dict[_Series, float] = {}
        registry.register(self)

    def observe(self, parts: Mapping[str, object]) -> None:
        """Take the state of each part's link (client role -> source, sink or link).

        Parts that talk to no server (a file, stdout, None) are left out; so
        are the series of a role whose part no longer does.
        """
        reachable: dict[_Series, float] = {}
        failed: dict[_Series, float] = {}
        for client, part in parts.items():
            link = link_of(part)
            if link is None:
                continue
            series = (client, server_kind(link.uri))
            count = self._counts.get(series)
            if count is None:
                count = self._counts[series] = _Count(link)
            elif count.link is not link:
                # A reload opened a new client: its count starts where the old one ended.
                count.earlier, count.link = count.total(), link
            failed[series] = float(count.total())
            if link.tried:
                reachable[series] = float(link.reachable)
        with self._lock:
            self._reachable, self._failed = reachable, failed

    def describe(self) -> Iterable[Metric]:
        """Nothing: the series depend on the run, so the registry must not cache them."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The two families, as the last :meth:`observe` left them (none without a server)."""
        with self._lock:
            reachable, failed = dict(self._reachable), dict(self._failed)
        if not failed:
            return
        gauge = GaugeMetricFamily(
            _PREFIX + "server_reachable",
            "1 if the last attempt to reach the server worked, 0 if it failed",
            labels=["client", "kind"],
        )
        for series, value in sorted(reachable.items()):
            gauge.add_metric(list(series), value)
        yield gauge
        counter = CounterMetricFamily(
            _PREFIX + "server_failed_attempts",
            "attempts to reach the server that failed",
            labels=["client", "kind"],
        )
        for series, value in sorted(failed.items()):
            counter.add_metric(list(series), value)
        yield counter
