"""Alerts to a real Alertmanager, and operators' silences back as feedback labels."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from local_http import LocalServer
from monitoring import free_port, http_get, http_json, start_alertmanager, wait_for
from prometheus_client.parser import text_string_to_metric_families

from stream_detect.assembly import run_stream
from stream_detect.cli import main
from stream_detect.pipeline import Summary
from stream_detect.server import QuietHandler
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sinks.alertmanager import AlertmanagerSink
from stream_detect.sinks.base import Sink
from stream_detect.testing import ListSink, ListSource


def ours(alertmanager_url: str) -> list[dict[str, Any]]:
    alerts = http_json(alertmanager_url + "/api/v2/alerts")
    return [a for a in alerts if a["labels"].get("alertname") == "StreamDetectAnomaly"]


def hosts_stream(n: int, anomalies: dict[int, float], seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    events: list[dict[str, Any]] = []
    for i in range(n):
        cpu = anomalies.get(i, float(rng.normal(0.5, 0.05)))
        events.append(
            {"id": f"e{i}", "host": "web-1", "cpu": cpu, "mem": float(rng.normal(2, 0.1))}
        )
    return events


def test_an_alert_reaches_alertmanager_and_resolves_after_the_quiet_period(
    tmp_path: Path,
) -> None:
    alertmanager = start_alertmanager(tmp_path / "am")
    try:
        sink = AlertmanagerSink(alertmanager.url, resend_s=0.5, resolve_after_s=2.0)
        summary = run_stream(
            RunSettings(),
            DetectorSettings(key_field="host", id_field="id", log_epsilon=-15.0, min_samples=50),
            source=ListSource(hosts_stream(300, {200: 9.0, 201: 9.5})),
            sink=sink,
            dead_letter=ListSink(),
        )
        assert summary.alerts == 2
        # run_stream closed the sink after a last delivery attempt: the alert is there.
        (alert,) = wait_for(lambda: ours(alertmanager.url), "the alert in Alertmanager")
        assert sink.sent >= 1
        assert alert["labels"] == {
            "alertname": "StreamDetectAnomaly",
            "key": "web-1",
            "feature": "cpu",
            "event_id": "e200",
        }
        annotations = alert["annotations"]
        assert annotations["events"] == "2"
        assert float(annotations["log_epsilon"]) == -15.0
        assert float(annotations["score"]) < -15.0
        assert next(iter(orjson.loads(annotations["contributions"]))) == "cpu"
        assert alert["status"]["state"] == "active"
        # Two quiet seconds later its endsAt has passed: Alertmanager lists it no more.
        wait_for(lambda: not ours(alertmanager.url), "the alert to resolve", timeout_s=30)
    finally:
        alertmanager.stop()


def test_detection_goes_on_while_alertmanager_is_down_and_the_alert_arrives_later(
    tmp_path: Path,
) -> None:
    port = free_port()
    sink = AlertmanagerSink(
        f"http://127.0.0.1:{port}", resend_s=0.5, resolve_after_s=600.0, max_backoff_s=0.5
    )
    summary = run_stream(
        RunSettings(),
        DetectorSettings(key_field="host", id_field="id", log_epsilon=-15.0, min_samples=50),
        source=ListSource(hosts_stream(3000, {2500: 9.0})),
        sink=_KeepOpen(sink),
        dead_letter=ListSink(),
    )
    # Every event was scored although nothing could be delivered.
    assert summary.events == 3000 and summary.alerts == 1
    wait_for(lambda: sink.last_error, "a delivery attempt to fail")
    assert sink.sent == 0
    alertmanager = start_alertmanager(tmp_path / "am", port=port)
    try:
        (alert,) = wait_for(lambda: ours(alertmanager.url), "the alert once Alertmanager is up")
        assert alert["labels"]["event_id"] == "e2500"
        assert sink.sent >= 1 and sink.dropped == 0
    finally:
        sink.close()
        alertmanager.stop()


def test_a_full_queue_drops_the_oldest_and_counts_it() -> None:
    sink = AlertmanagerSink(
        f"http://127.0.0.1:{free_port()}", max_pending=2, resend_s=600.0, timeout_s=0.2
    )
    try:
        sink.write_batch(
            [
                {"alert": True, "key": k, "score": -50.0, "contributions": {"x": 9.0}}
                for k in ("a", "b", "c", "d")
            ]
        )
        assert sink.dropped == 2
    finally:
        sink.close(wait_s=1.0)


class _KeepOpen(Sink):
    """Hands records to a sink that outlives the run (closing it is the test's job)."""

    def __init__(self, inner: AlertmanagerSink) -> None:
        self.inner = inner
        self.uri = inner.uri

    def bind_fields(self, *, id_field: str | None, label_field: str | None) -> None:
        self.inner.bind_fields(id_field=id_field, label_field=label_field)

    def write_batch(self, records: Sequence[Mapping[str, Any]]) -> None:
        self.inner.write_batch(records)

    def flush(self) -> None:
        self.inner.flush()


def metric(url: str, name: str) -> float | None:
    for family in text_string_to_metric_families(http_get(url).decode()):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return None


@pytest.mark.parametrize("route_prefix", ["", "/ops/am"])
def test_a_silence_on_an_alert_comes_back_as_a_negative_label(
    tmp_path: Path, route_prefix: str
) -> None:
    # With a route prefix, both URIs name it; the alerts were refused (404) for want of it.
    alertmanager = start_alertmanager(tmp_path / "am", route_prefix=route_prefix)
    address = f"127.0.0.1:{alertmanager.port}{route_prefix}"
    events = tmp_path / "events.jsonl"
    stream = hosts_stream(400, {300: 9.0})
    events.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in stream))
    http_port = free_port()
    run = RunSettings(
        source=f"file:{events}?follow=true",
        sink=f"alertmanager://{address}/?resend=1s&resolve_after=1m",
        labels=f"alertmanager-silences://{address}?every=200ms",
        dead_letter=f"file:{tmp_path / 'dead.jsonl'}",
        http=f"127.0.0.1:{http_port}",
    )
    detector = DetectorSettings(key_field="host", id_field="id", log_epsilon=-15.0, min_samples=50)
    stop = threading.Event()
    result: list[Summary] = []
    runner = threading.Thread(target=lambda: result.append(run_stream(run, detector, stop=stop)))
    runner.start()
    try:
        (alert,) = wait_for(lambda: ours(alertmanager.url), "the alert in Alertmanager")
        now = datetime.now(UTC)
        http_json(
            alertmanager.url + "/api/v2/silences",
            {
                "matchers": [
                    {"name": "event_id", "value": alert["labels"]["event_id"], "isRegex": False}
                ],
                "startsAt": now.isoformat(),
                "endsAt": (now + timedelta(hours=1)).isoformat(),
                "createdBy": "operator",
                "comment": "a batch job, not an anomaly",
            },
            method="POST",
        )
        wait_for(
            lambda: (
                metric(
                    f"http://127.0.0.1:{http_port}/metrics", "stream_detect_feedback_labels_total"
                )
                == 1
            ),
            "the silence to come back as a feedback label",
        )
    finally:
        stop.set()
        runner.join()
        alertmanager.stop()
    (summary,) = result
    assert summary.feedback_labels == 1 and summary.unmatched_feedback == 0
    assert summary.alerts == 1
    # The rejected event now sits in the validation buffer as a normal one.
    assert summary.detector["validation_negative"] == 1


def _forward(handler: QuietHandler, alertmanager_url: str, body: bytes) -> None:
    """Pass a proxy's POST on to Alertmanager and its answer back."""
    request = urllib.request.Request(
        alertmanager_url + handler.path,
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        handler.reply(200, reply.read(), "application/json")


class _CutsOffFirstAnswer:
    """A proxy before Alertmanager that hangs up on its first answer halfway (a crash, a
    load balancer's reset) and passes every later request through."""

    def __init__(self, alertmanager_url: str) -> None:
        self.posts = 0
        proxy = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy.posts += 1
                if proxy.posts == 1:
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    self.wfile.write(b"{")
                    self.close_connection = True
                    return
                _forward(self, alertmanager_url, body)

        self.served = LocalServer(Handler)
        self.url = self.served.url

    def close(self) -> None:
        self.served.close()


class _HoldsFirstPost:
    """A proxy before Alertmanager that holds its first post until :attr:`release` is set."""

    def __init__(self, alertmanager_url: str) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not proxy.arrived.is_set():
                    proxy.arrived.set()
                    proxy.release.wait(30.0)
                _forward(self, alertmanager_url, body)

        self.served = LocalServer(Handler)
        self.url = self.served.url

    def close(self) -> None:
        self.release.set()
        self.served.close()


def test_an_alert_written_while_a_post_is_on_its_way_goes_next(tmp_path: Path) -> None:
    # The sender was woken by a notify only: one that came while it was posting was
    # lost, and the alert waited for the idle timeout (150 s here) before it went.
    alertmanager = start_alertmanager(tmp_path / "am")
    proxy = _HoldsFirstPost(alertmanager.url)
    sink = AlertmanagerSink(proxy.url, resend_s=600.0, timeout_s=30.0)
    try:
        sink.write_batch([{"alert": True, "key": "a", "score": -50.0, "contributions": {"x": 9.0}}])
        assert proxy.arrived.wait(30.0)
        sink.write_batch([{"alert": True, "key": "b", "score": -60.0, "contributions": {"y": 9.0}}])
        proxy.release.set()
        wait_for(lambda: sink.sent >= 2, "the second alert posted after the first", 60.0)
        assert {alert["labels"]["key"] for alert in ours(alertmanager.url)} == {"a", "b"}
    finally:
        sink.close(wait_s=1.0)
        proxy.close()
        alertmanager.stop()


def test_an_answer_cut_off_halfway_is_retried_and_delivery_goes_on(tmp_path: Path) -> None:
    alertmanager = start_alertmanager(tmp_path / "am")
    proxy = _CutsOffFirstAnswer(alertmanager.url)
    sink = AlertmanagerSink(proxy.url, resend_s=600.0, timeout_s=2.0)
    try:
        sink.write_batch([{"alert": True, "key": "a", "score": -50.0, "contributions": {"x": 9.0}}])
        wait_for(lambda: proxy.posts >= 1, "the first post")
        sink.write_batch([{"alert": True, "key": "b", "score": -60.0, "contributions": {"y": 9.0}}])
        wait_for(lambda: sink.sent >= 2, "both alerts delivered after the cut-off answer")
        keys = {alert["labels"]["key"] for alert in ours(alertmanager.url)}
        assert keys == {"a", "b"}
    finally:
        sink.close(wait_s=1.0)
        proxy.close()
        alertmanager.stop()


@pytest.mark.parametrize(
    ("uri", "refused"),
    [
        ("alertmanager://127.0.0.1:9093/am#top", "(not '/am#top')"),
        ("alertmanager://127.0.0.1:9093/a b", "(not '/a b')"),
        ("alertmanager://127.0.0.1:9093/am//v2", "(not '/am//v2')"),
        ("alertmanager://127.0.0.1:9093/am/../x", "(not '/am/../x')"),
        ("alertmanager://127.0.0.1:9093/am%zz", "(not '/am%zz')"),
        ("alertmanager://127.0.0.1:9093/am?token=x", "(unknown: 'token')"),
    ],
)
def test_a_prefix_no_request_could_carry_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], uri: str, refused: str
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b'{"x": 1.0}\n')
    assert main(["run", "--source", f"file:{events}", "--sink", uri]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"stream-detect run: error: option --sink: got {uri!r}, expected ")
    assert line.endswith(refused)
    labels = uri.replace("alertmanager:", "alertmanager-silences:")
    assert main(["run", "--source", f"file:{events}", "--labels", labels]) == 2
    assert capsys.readouterr().err.strip().endswith(refused)
