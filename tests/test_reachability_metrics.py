"""The servers a run talks to, on its /metrics: reached at the last attempt, and failed attempts.

Local HTTP servers stand in for an exporter (or Prometheus's query API) and
for Alertmanager; each fails (503) until the test lets it work, and counts the
failures it served, which the counters must equal.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from local_http import LocalServer
from monitoring import free_port, http_get, wait_for
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream_detect.assembly import run_stream
from stream_detect.pipeline import Summary
from stream_detect.reachability import Reachability
from stream_detect.reachability_metrics import ReachabilityMetrics
from stream_detect.server import QuietHandler
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.testing import ListSink

TIMEOUT_S = 60.0


class Flaky:
    """A server that answers 503 until :attr:`working` is set; :attr:`failures` counts those."""

    def __init__(self, kind: str) -> None:
        self.working = threading.Event()
        self.failures = 0
        self.answers = 0
        flaky = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self.answer()

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self.answer()

            def answer(self) -> None:
                if not flaky.working.is_set():
                    flaky.failures += 1
                    self.reply(503, b"down for maintenance\n")
                    return
                flaky.answers += 1
                self.reply(200, flaky.body(kind), "application/json")

        self.served = LocalServer(Handler)
        self.address = self.served.address

    def body(self, kind: str) -> bytes:
        """A working answer: an exposition, a query result, or Alertmanager's nothing."""
        value = self.answers % 5
        if kind == "prometheus":
            return f"# TYPE queue_depth gauge\nqueue_depth {value}\n".encode()
        if kind == "promql":
            result = [{"metric": {"__name__": "queue_depth"}, "value": [0, str(value)]}]
            data = {"resultType": "vector", "result": result}
            return orjson.dumps({"status": "success", "data": data})
        return b""

    def close(self) -> None:
        self.served.close()


@pytest.fixture
def alertmanager() -> Iterator[Flaky]:
    served = Flaky("alertmanager")
    yield served
    served.close()


def servers(port: int) -> dict[tuple[str, str, str], float]:
    """The detector's server series: (name, client, kind) -> value."""
    text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
    return {
        (sample.name, sample.labels["client"], sample.labels["kind"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("stream_detect_server_")
    }


REACHABLE = "stream_detect_server_reachable"
FAILED = "stream_detect_server_failed_attempts_total"


@pytest.mark.parametrize("kind", ["prometheus", "promql"])
def test_a_scrape_target_and_alertmanager_that_fail_then_work_show_on_metrics(
    kind: str, alertmanager: Flaky
) -> None:
    target = Flaky(kind)
    port = free_port()
    run = RunSettings(
        source=f"prometheus://{target.address}/metrics?every=200ms"
        if kind == "prometheus"
        else f"promql://{target.address}?query=queue_depth&every=200ms",
        sink=f"alertmanager://{alertmanager.address}?max_backoff=100ms",
        http=f"127.0.0.1:{port}",
    )
    # Every event past the warm-up alerts, so the sink has something to post.
    detector = DetectorSettings(min_samples=2, log_epsilon=50.0)
    stop = threading.Event()
    result: list[Summary] = []
    runner = threading.Thread(
        target=lambda: result.append(run_stream(run, detector, dead_letter=ListSink(), stop=stop))
    )
    runner.start()
    try:
        # The target fails: not reachable, its failures counted; the sink has tried nothing.
        failing = wait_for(
            lambda: (s := servers(port)).get((FAILED, "source", kind), 0) >= 3 and s,
            "failed scrapes on /metrics",
            TIMEOUT_S,
        )
        assert failing[(REACHABLE, "source", kind)] == 0
        assert failing[(FAILED, "sink", "alertmanager")] == 0
        assert (REACHABLE, "sink", "alertmanager") not in failing

        # The target works: events come, alerts are posted, and Alertmanager fails.
        target.working.set()
        # Reachable is the last scrape's outcome, and a scrape's deadline is its period:
        # 200 ms, so that a loaded machine does not make a working target miss it.
        both = wait_for(
            lambda: (
                (s := servers(port)).get((FAILED, "sink", "alertmanager"), 0) >= 3
                and s.get((REACHABLE, "source", kind)) == 1
                and s
            ),
            "failed posts to Alertmanager and a working scrape on /metrics",
            TIMEOUT_S,
        )
        assert both[(FAILED, "source", kind)] == target.failures
        assert both[(REACHABLE, "sink", "alertmanager")] == 0

        # Alertmanager works: reachable again, and the counter keeps every failure it served.
        alertmanager.working.set()
        settled = wait_for(
            lambda: (s := servers(port)).get((REACHABLE, "sink", "alertmanager")) == 1 and s,
            "Alertmanager reachable again on /metrics",
            TIMEOUT_S,
        )
        assert settled[(FAILED, "sink", "alertmanager")] == alertmanager.failures >= 3
        assert settled[(FAILED, "source", kind)] == target.failures
    finally:
        stop.set()
        runner.join()
        target.close()
    assert result[0].alertmanager_not_delivered == 0


def exposed(registry: CollectorRegistry) -> dict[tuple[str, str, str], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, sample.labels["client"], sample.labels["kind"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def link(uri: str) -> Reachability:
    return Reachability(uri, stream=io.StringIO())


def test_a_new_client_of_the_same_kind_carries_the_count_on() -> None:
    registry = CollectorRegistry()
    metrics = ReachabilityMetrics(registry)
    first = link("alertmanager://a:9093")
    metrics.observe({"sink": first, "source": object()})
    # No attempt yet: the counter is there at 0, whether it is reachable is not known.
    assert exposed(registry) == {(FAILED, "sink", "alertmanager"): 0.0}
    for _ in range(3):
        first.failed("refused")
    metrics.observe({"sink": first})
    # A reload opens a new sink: its own count starts at 0, the series' does not.
    second = link("alertmanager://b:9093")
    second.failed("refused")
    second.ok()
    metrics.observe({"sink": second})
    assert exposed(registry) == {
        (REACHABLE, "sink", "alertmanager"): 1.0,
        (FAILED, "sink", "alertmanager"): 4.0,
    }
    # A sink that talks to no server any more: its series go.
    metrics.observe({"sink": None})
    assert exposed(registry) == {}


def test_each_client_has_its_own_series() -> None:
    registry = CollectorRegistry()
    metrics = ReachabilityMetrics(registry)
    source, labels = link("kafka://b:9092/events"), link("alertmanager-silences://a:9093")
    source.ok()
    labels.failed("timed out")
    parts: dict[str, Any] = {"source": source, "labels": labels, "dead_letter": None}
    metrics.observe(parts)
    assert exposed(registry) == {
        (REACHABLE, "source", "kafka"): 1.0,
        (FAILED, "source", "kafka"): 0.0,
        (REACHABLE, "labels", "alertmanager-silences"): 0.0,
        (FAILED, "labels", "alertmanager-silences"): 1.0,
    }
