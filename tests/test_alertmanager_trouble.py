"""Alertmanager trouble against a real Alertmanager: outages, errors and refused alerts.

An outage or a retryable error answer is one stderr line when delivery starts
failing and one when it works again; an alert Alertmanager refuses (a 4xx
other than 408 and 429) is dropped alone, said once, and never blocks the
others; a run that ends with alerts not delivered says how many.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from local_http import LocalServer
from monitoring import free_port, http_json, start_alertmanager, wait_for

from stream_detect.server import QuietHandler
from stream_detect.sinks.alertmanager import AlertmanagerSink

RUN = [sys.executable, "-m", "stream_detect", "run"]


def ours(alertmanager_url: str) -> set[str]:
    """The keys of our alerts Alertmanager holds."""
    alerts = http_json(alertmanager_url + "/api/v2/alerts")
    return {
        a["labels"]["key"] for a in alerts if a["labels"].get("alertname") == "StreamDetectAnomaly"
    }


def alert(key: str) -> dict[str, Any]:
    return {"alert": True, "key": key, "score": -50.0, "contributions": {"x": 9.0}}


class Proxy:
    """A proxy before a real Alertmanager: it can answer the first posts itself with an
    error status, and can alter each alert before passing the post on (so that the real
    Alertmanager refuses it); Alertmanager's answer goes back as it was."""

    def __init__(self, alertmanager_url: str) -> None:
        self.posts = 0
        self.fail_first = 0
        self.fail_status = 503
        self.alter: Callable[[dict[str, Any]], None] = lambda alert: None
        proxy = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy.posts += 1
                if proxy.posts <= proxy.fail_first:
                    self.reply(proxy.fail_status, b'"not now"', "application/json")
                    return
                alerts = orjson.loads(body)
                for each in alerts:
                    proxy.alter(each)
                request = urllib.request.Request(
                    alertmanager_url + self.path,
                    data=orjson.dumps(alerts),
                    headers={"Content-Type": "application/json"},
                    method="POST",
                )
                try:
                    with urllib.request.urlopen(request, timeout=5) as reply:
                        self.reply(reply.status, reply.read(), "application/json")
                except urllib.error.HTTPError as refused:
                    self.reply(refused.code, refused.read(), "application/json")

        self.served = LocalServer(Handler)
        self.url = self.served.url

    def close(self) -> None:
        self.served.close()


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_an_outage_is_one_line_when_it_starts_and_one_when_it_ends(tmp_path: Path) -> None:
    alertmanager = start_alertmanager(tmp_path / "am")
    stream = io.StringIO()
    sink = AlertmanagerSink(
        alertmanager.url,
        resend_s=600.0,
        max_backoff_s=0.2,
        uri=f"alertmanager://127.0.0.1:{alertmanager.port}",
        stream=stream,
    )
    try:
        sink.write_batch([alert("a")])
        wait_for(lambda: sink.sent >= 1, "the first alert delivered")
        assert lines(stream) == []
        alertmanager.stop()
        sink.write_batch([alert("b")])
        wait_for(lambda: sink.link.failures >= 3, "several failed attempts")
        (lost,) = lines(stream)
        assert f"alertmanager://127.0.0.1:{alertmanager.port}" in lost
        assert "Connection refused" in lost and "retrying" in lost, lost
        alertmanager = start_alertmanager(tmp_path / "am", port=alertmanager.port)
        wait_for(lambda: sink.sent >= 2, "the queued alert delivered once Alertmanager is back")
        # Alertmanager keeps alerts in memory: the restarted one only has the queued alert.
        assert ours(alertmanager.url) == {"b"}
        assert len(lines(stream)) == 2
        assert "delivered again" in lines(stream)[1], lines(stream)
        assert sink.dropped == 0
    finally:
        sink.close(wait_s=1.0)
        alertmanager.stop()


@pytest.mark.parametrize("status", [503, 429, 408])
def test_a_retryable_error_answer_is_retried_and_said_once(tmp_path: Path, status: int) -> None:
    alertmanager = start_alertmanager(tmp_path / "am")
    proxy = Proxy(alertmanager.url)
    proxy.fail_first, proxy.fail_status = 4, status
    stream = io.StringIO()
    sink = AlertmanagerSink(proxy.url, resend_s=600.0, max_backoff_s=0.1, stream=stream)
    try:
        sink.write_batch([alert("a"), alert("b")])
        wait_for(lambda: sink.sent >= 2, f"delivery after {status} answers")
        assert ours(alertmanager.url) == {"a", "b"}
        lost, back = lines(stream)
        assert proxy.url in lost and f"HTTP {status}" in lost and "retrying" in lost, lost
        assert "delivered again" in back
        assert sink.dropped == 0
    finally:
        sink.close(wait_s=1.0)
        proxy.close()
        alertmanager.stop()


def start_after_end(alert: dict[str, Any]) -> None:
    """Alertmanager refuses this alert alone and stores the others of its post."""
    if alert["labels"].get("key") == "poison":
        alert["startsAt"] = "2100-01-01T00:00:00+00:00"


def unreadable_start(alert: dict[str, Any]) -> None:
    """Alertmanager refuses the whole post, storing none of its alerts."""
    if alert["labels"].get("key") == "poison":
        alert["startsAt"] = "yesterday"


@pytest.mark.parametrize(
    ("alter", "reason"),
    [
        (start_after_end, "start time must be before end time"),
        (unreadable_start, 'parsing time "yesterday"'),
    ],
)
def test_a_refused_alert_is_dropped_alone_and_the_others_are_delivered(
    tmp_path: Path, alter: Callable[[dict[str, Any]], None], reason: str
) -> None:
    alertmanager = start_alertmanager(tmp_path / "am")
    proxy = Proxy(alertmanager.url)
    proxy.alter = alter
    stream = io.StringIO()
    sink = AlertmanagerSink(proxy.url, resend_s=600.0, max_backoff_s=0.1, stream=stream)
    try:
        sink.write_batch([alert("a"), alert("poison"), alert("b"), alert("c")])
        wait_for(lambda: sink.sent >= 3, "the alerts Alertmanager accepts delivered", 20)
        assert ours(alertmanager.url) == {"a", "b", "c"}
        wait_for(lambda: sink.dropped >= 1, "the refused alert dropped", 20)
        assert sink.dropped == sink.rejected == 1
        (refused,) = lines(stream)
        assert "HTTP 400" in refused and reason in refused, refused
        assert "poison" in refused and "dropped" in refused
        # The queue is not blocked: later alerts go through, and the same refusal
        # again is counted, not said again.
        sink.write_batch([alert("d"), alert("poison")])
        wait_for(lambda: sink.sent >= 4 and sink.dropped >= 2, "the next post", 20)
        assert ours(alertmanager.url) == {"a", "b", "c", "d"}
        assert len(lines(stream)) == 1
    finally:
        sink.close(wait_s=1.0)
        proxy.close()
        alertmanager.stop()


def test_alerts_posted_to_a_wrong_path_are_dropped_not_retried_forever(tmp_path: Path) -> None:
    alertmanager = start_alertmanager(tmp_path / "am")
    stream = io.StringIO()
    # Alertmanager answers 404 under a path prefix it does not serve.
    sink = AlertmanagerSink(alertmanager.url + "/nowhere", resend_s=600.0, stream=stream)
    try:
        sink.write_batch([alert("a"), alert("b")])
        wait_for(lambda: sink.dropped >= 2, "both alerts dropped", 20)
        assert sink.rejected == 2 and sink.sent == 0
        (refused,) = lines(stream)
        assert "HTTP 404" in refused and "dropped" in refused, refused
    finally:
        sink.close(wait_s=1.0)
        alertmanager.stop()


class Redirector:
    """A server that answers every post with ``status`` and ``Location: target``."""

    def __init__(self, status: int, target: str) -> None:
        self.posts = 0
        redirector = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                redirector.posts += 1
                self.send_response(status)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.served = LocalServer(Handler)
        self.url = self.served.url

    def close(self) -> None:
        self.served.close()


@pytest.mark.parametrize(
    ("status", "target"),
    [
        (302, "ftp://127.0.0.1:{ftp}/api/v2/alerts"),
        (301, "file:///etc/passwd"),
        (307, "file:///etc/passwd"),
        # A post redirected to Alertmanager itself: urllib made it a GET there, without
        # the alerts, whose answer (200, the alerts Alertmanager holds) counted them sent.
        (302, "{alertmanager}/api/v2/alerts"),
        (303, "{alertmanager}/api/v2/alerts"),
    ],
)
def test_a_redirect_a_post_cannot_follow_drops_its_alerts_and_says_where_to(
    tmp_path: Path, status: int, target: str
) -> None:
    # A redirect to another scheme was retried for ever, as if Alertmanager were
    # down; it is a wrong address, which no retry puts right: dropped and said, as
    # a 4xx is. Something listens where ftp:// points, to see that nobody came.
    alertmanager = start_alertmanager(tmp_path / "am")
    with socket.create_server(("127.0.0.1", 0)) as ftp:
        ftp.setblocking(False)
        target = target.format(ftp=ftp.getsockname()[1], alertmanager=alertmanager.url)
        redirector = Redirector(status, target)
        stream = io.StringIO()
        uri = f"alertmanager://{redirector.url.removeprefix('http://')}"
        sink = AlertmanagerSink(
            redirector.url, resend_s=600.0, max_backoff_s=0.1, uri=uri, stream=stream
        )
        try:
            sink.write_batch([alert("a"), alert("b")])
            wait_for(lambda: sink.dropped >= 2, "both alerts dropped", 20)
            assert sink.rejected == 2 and sink.sent == 0 and sink.link.failures == 0
            (refused,) = lines(stream)
            assert refused.startswith(f"stream-detect: {uri}: an alert was refused for good")
            assert f"HTTP {status}" in refused and f"{redirector.url}/api/v2/alerts" in refused
            assert f"redirects to {target!r}" in refused and "dropped" in refused, refused
            with pytest.raises(BlockingIOError):
                ftp.accept()
            assert ours(alertmanager.url) == set()
        finally:
            sink.close(wait_s=1.0)
            redirector.close()
            alertmanager.stop()
    said = stream.getvalue().splitlines()[-1]
    assert "2 alerts not delivered: 2 refused for good" in said, said


@pytest.mark.parametrize("status", [307, 308])
def test_a_post_redirected_with_307_or_308_is_delivered_there(tmp_path: Path, status: int) -> None:
    # urllib refuses to follow these for a POST: the alerts were retried for ever.
    alertmanager = start_alertmanager(tmp_path / "am")
    redirector = Redirector(status, f"{alertmanager.url}/api/v2/alerts")
    stream = io.StringIO()
    sink = AlertmanagerSink(redirector.url, resend_s=600.0, max_backoff_s=0.1, stream=stream)
    try:
        sink.write_batch([alert("a"), alert("b")])
        wait_for(lambda: sink.sent >= 2, "both alerts delivered through the redirect", 20)
        assert ours(alertmanager.url) == {"a", "b"}
        assert redirector.posts == 1 and sink.dropped == 0 and lines(stream) == []
    finally:
        sink.close(wait_s=1.0)
        redirector.close()
        alertmanager.stop()


def test_a_refused_alert_with_a_line_break_or_a_long_key_is_said_on_one_short_line(
    tmp_path: Path,
) -> None:
    # The labels were written as they were: a key holding a line break broke the
    # line in two, and a long key made a line as long.
    alertmanager = start_alertmanager(tmp_path / "am")
    stream = io.StringIO()
    sink = AlertmanagerSink(alertmanager.url + "/nowhere", resend_s=600.0, stream=stream)
    try:
        sink.write_batch([alert('web\n1 "east"' + "é" * 10_000)])
        wait_for(lambda: sink.dropped >= 1, "the alert dropped", 20)
        (refused,) = lines(stream)
        assert "HTTP 404" in refused and len(refused) < 500, refused[:600]
        assert '"key":"web\\n1 \\"east\\"éé' in refused, refused
        assert "(10012 characters)" in refused, refused
    finally:
        sink.close(wait_s=1.0)
        alertmanager.stop()


def events_file(tmp_path: Path) -> Path:
    events = [{"host": "web-1", "x": float(i % 7)} for i in range(200)]
    events += [{"host": "web-1", "x": 90.0}, {"host": "web-2", "x": 1.0}]
    events += [{"host": "web-2", "x": float(i % 5)} for i in range(200)] + [
        {"host": "web-2", "x": 70.0}
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
    return path


def finite_run(tmp_path: Path, sink: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            *RUN,
            "--source",
            f"file:{events_file(tmp_path)}",
            "--sink",
            sink,
            "--key-field",
            "host",
            "--log-epsilon",
            "-20",
            "--min-samples",
            "50",
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )


def summary_of(stderr: bytes) -> dict[str, Any]:
    (line,) = [line for line in stderr.splitlines() if line.startswith(b'{"summary"')]
    summary: dict[str, Any] = orjson.loads(line)["summary"]
    return summary


def test_a_finite_run_says_how_many_alerts_were_not_delivered(tmp_path: Path) -> None:
    port = free_port()
    done = finite_run(tmp_path, f"alertmanager://127.0.0.1:{port}?max_backoff=200ms")
    assert done.returncode == 0, done.stderr.decode()
    summary = summary_of(done.stderr)
    assert summary["alerts"] == 2
    assert summary["alertmanager_not_delivered"] == 2
    text = done.stderr.decode()
    said = [line for line in text.splitlines() if f"127.0.0.1:{port}" in line]
    # A line when delivery started failing, if the sender tried before the run ended
    # (a short run may end first), and a last one with the count and the reason.
    assert 1 <= len(said) <= 2, text
    if len(said) == 2:
        assert "Connection refused" in said[0] and "retrying" in said[0], said[0]
    assert "2 alerts not delivered" in said[-1] and "Connection refused" in said[-1], said[-1]


def test_a_finite_run_that_delivered_everything_says_nothing_more(tmp_path: Path) -> None:
    alertmanager = start_alertmanager(tmp_path / "am")
    try:
        done = finite_run(tmp_path, f"alertmanager://127.0.0.1:{alertmanager.port}")
        assert done.returncode == 0, done.stderr.decode()
        assert summary_of(done.stderr)["alertmanager_not_delivered"] == 0
        assert f"127.0.0.1:{alertmanager.port}" not in done.stderr.decode()
        assert ours(alertmanager.url) == {"web-1", "web-2"}
    finally:
        alertmanager.stop()


def test_an_answer_that_never_ends_is_a_failed_attempt_said_once() -> None:
    closing = threading.Event()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            # Each read of the socket gets a byte in time; the headers never end.
            with contextlib.suppress(OSError):
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not closing.wait(0.1):
                    self.wfile.write(b"z")
                    self.wfile.flush()
            self.close_connection = True

    slow = LocalServer(Handler)
    stream = io.StringIO()
    sink = AlertmanagerSink(slow.url, resend_s=600.0, timeout_s=0.5, stream=stream)
    try:
        sink.write_batch([alert("a")])
        wait_for(lambda: sink.link.failures >= 2, "two attempts that timed out")
        (lost,) = lines(stream)
        assert "did not finish its answer in 0.5 s" in lost and "retrying" in lost, lost
        assert sink.sent == 0
    finally:
        closing.set()
        sink.close(wait_s=1.0)
        slow.close()


class _Announcing:
    """``sys.stderr`` as the sender thread sees it: its line waits until a batch of dead
    letters is being written, and says when it went through."""

    def __init__(self, stream: Any, inside: threading.Event, said: threading.Event) -> None:
        self.stream, self.inside, self.said = stream, inside, said

    def write(self, text: str) -> int:
        self.inside.wait(10)
        written: int = self.stream.write(text)
        self.stream.flush()
        self.said.set()
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def test_the_sender_s_lines_never_land_inside_dead_letters_on_stderr(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sender said "alerts not delivered" from its own thread while the loop wrote
    # dead letters to stderr: between two pieces of a write (a pipe whose reader takes
    # a little at a time), the line landed inside a dead letter, breaking both.
    from stream_detect.sinks.streams import StderrSink

    inside, said = threading.Event(), threading.Event()
    real_write = os.write

    def piecemeal(fd: int, data: Any) -> int:
        if fd != 2:
            return real_write(fd, data)
        written = real_write(fd, bytes(data[:16]))
        if not inside.is_set():
            inside.set()
            said.wait(2)  # room for another thread's line between two pieces
        return written

    monkeypatch.setattr(sys, "stderr", _Announcing(sys.stderr, inside, said))
    monkeypatch.setattr(os, "write", piecemeal)
    uri = f"alertmanager://127.0.0.1:{free_port()}"
    sink = AlertmanagerSink(f"http://{uri.split('//')[1]}", uri=uri, max_backoff_s=0.1)
    dead = StderrSink()
    letters = [
        {"reason": f"missing feature 'cpu' ({n})", "position": {"line": n}} for n in range(20)
    ]
    try:
        sink.write_batch([alert("web-1")])  # the sender fails to post it, and says so
        dead.write_batch(letters)
        dead.flush()
        assert said.wait(10)
        # Then both at once, many times over.
        saying = threading.Thread(target=lambda: [sink.link.say(f"line {n}") for n in range(200)])
        saying.start()
        for _ in range(20):
            dead.write_batch(letters)
            dead.flush()
        saying.join()
    finally:
        sink.close(wait_s=1.0)
        monkeypatch.undo()
    text = capfd.readouterr().err
    ours = [line for line in text.splitlines() if line.startswith("stream-detect: ")]
    others = [line for line in text.splitlines() if not line.startswith("stream-detect: ")]
    broken = [line for line in others if not _json_object(line)]
    assert broken == []
    assert [orjson.loads(line) for line in others] == letters * 21
    assert ours[0].startswith(f"stream-detect: {uri}: alerts not delivered (")
    assert ours[1:201] == [f"stream-detect: {uri}: line {n}" for n in range(200)]


def _json_object(line: str) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False
