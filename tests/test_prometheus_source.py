"""Events from Prometheus: rates and features, a real Prometheus scraped and queried."""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from local_http import LocalServer
from monitoring import running_prometheus, wait_for
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from stream_detect.assembly import run_stream
from stream_detect.errors import ConfigError
from stream_detect.pipeline import Summary
from stream_detect.records.batch import BadRecord
from stream_detect.server import QuietHandler
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sources import open_source
from stream_detect.sources.exposition import Cumulative, Series, parse_exposition, read_exposition
from stream_detect.sources.polled import MAX_BODY_BYTES
from stream_detect.sources.prometheus import PrometheusSource
from stream_detect.sources.prometheus_uris import open_promql, open_scrape
from stream_detect.testing import ListSink

RUN = [sys.executable, "-m", "stream_detect", "run"]


class Exporter:
    """A tiny exporter: ``render(n)`` writes the text of the n-th scrape (from 1)."""

    def __init__(self) -> None:
        self.render: Callable[[int], str] = lambda n: ""
        #: When set, answers each scrape itself (a misbehaving exporter).
        self.answer: Callable[[BaseHTTPRequestHandler], None] | None = None
        self.scrapes = 0
        self.closing = threading.Event()
        exporter = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                exporter.scrapes += 1
                if exporter.answer is not None:
                    exporter.answer(self)
                    return
                data = exporter.render(exporter.scrapes).encode()
                self.reply(200, data, "text/plain; version=0.0.4")

        self.served = LocalServer(Handler)
        self.address = self.served.address

    def close(self) -> None:
        self.closing.set()
        self.served.close()


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    served = Exporter()
    yield served
    served.close()


def clocks(times: list[float]) -> dict[str, Callable[[], float]]:
    """A wall clock and an interval clock that both read ``times``, one per scrape."""
    walls, ticks = iter(times), iter(times)
    return {"clock": lambda: next(walls), "interval_clock": lambda: next(ticks)}


def events_of(source: PrometheusSource) -> list[dict[str, Any]]:
    # Long enough for any one scrape (which runs in a thread): returns once it is done.
    events = [orjson.loads(p) for p in source.read_batch(100, 0.0, 60.0).payloads]
    return sorted(events, key=lambda event: str(event.get("queue")))


def test_counters_become_rates_and_gauges_stay_values() -> None:
    scrapes: list[tuple[list[Series], Cumulative]] = []
    text = (
        '# TYPE jobs_total counter\njobs_total{queue="a"} {a}\njobs_total{queue="b"} {b}\n'
        '# TYPE depth gauge\ndepth{queue="a"} {d}\n'
    )
    for a, b, d in [(10, 5, 1.5), (30, 6, 2.5), (20, 10, 3.5)]:
        body = text.replace("{a}", str(a)).replace("{b}", str(b)).replace("{d}", str(d))
        scrapes.append(parse_exposition(body, re.compile(".*")))
    source = PrometheusSource(
        "u", lambda: scrapes.pop(0), every_s=0.0, key_label="queue", **clocks([100.0, 102.0, 104.0])
    )
    assert events_of(source) == []  # the first scrape only primes the rates
    assert events_of(source) == [
        {"timestamp": 102.0, "queue": "a", "jobs_total": 10.0, "depth": 2.5},
        {"timestamp": 102.0, "queue": "b", "jobs_total": 0.5},
    ]
    # queue a's counter went down (a restart): no rate for it this time.
    assert events_of(source) == [
        {"timestamp": 104.0, "queue": "a", "depth": 3.5},
        {"timestamp": 104.0, "queue": "b", "jobs_total": 2.0},
    ]


def test_a_scrape_after_one_without_the_counters_still_yields_its_event(
    exporter: Exporter,
) -> None:
    # Scrape 3 lacks the counter (a collector that failed once); scrape 4 then
    # looked like a first scrape and yielded nothing, its gauge lost without a trace.
    def render(scrape: int) -> str:
        counter = f"# TYPE jobs_total counter\njobs_total {scrape * 10}\n" if scrape != 3 else ""
        return f"# TYPE temp gauge\ntemp {scrape}\n{counter}"

    exporter.render = render
    source = open_scrape(f"{exporter.address}/metrics", {"every": "1s"}, uri="u", config_key="s")
    scrapes = []
    for _ in range(5):
        source._next_at = 0.0  # due now
        scrapes.append([sorted(event) for event in events_of(source)])
    assert scrapes == [
        [],  # the first scrape only primes the rate
        [["jobs_total", "temp", "timestamp"]],
        [["temp", "timestamp"]],  # no counter: a dead letter for the run
        [["temp", "timestamp"]],  # no rate yet: the same
        [["jobs_total", "temp", "timestamp"]],
    ]


def test_a_series_repeated_in_a_scrape_keeps_its_first_value_and_is_said_once(
    exporter: Exporter,
) -> None:
    # The last value silently won, and a repeated counter's rate came out 0 for ever.
    def render(scrape: int) -> str:
        return (
            f"# TYPE jobs_total counter\njobs_total {scrape * 10}\njobs_total 1000\n"
            f'# TYPE temp gauge\ntemp{{room="a"}} {scrape}\ntemp{{room="a"}} -1\n'
        )

    exporter.render = render
    uri = f"prometheus://{exporter.address}/metrics"
    source = open_scrape(f"{exporter.address}/metrics", {"every": "1s"}, uri=uri, config_key="s")
    source.link.stream = stream = io.StringIO()
    events = []
    for _ in range(3):
        source._next_at = 0.0  # due now
        events += events_of(source)
    assert [event['temp{room="a"}'] for event in events] == [2.0, 3.0]
    assert all(event["jobs_total"] > 0 for event in events), events
    assert source.repeated_series == 6
    (said,) = stream.getvalue().splitlines()
    assert said.startswith(f"stream-detect: {uri}: the scrape holds a series more than once")
    assert "jobs_total, 2 in all" in said and "first value" in said, said


def test_label_sets_that_would_print_alike_stay_two_features() -> None:
    text = (
        '# TYPE m gauge\nm{a="x\\",b=\\"y"} 1\nm{a="x",b="y"} 2\n'
        'm{a="line\\nbreak",b="back\\\\slash"} 3\n'
    )
    scrape = parse_exposition(text, re.compile(".*"))
    source = PrometheusSource("u", lambda: scrape, every_s=0.0, clock=lambda: 1.0)
    (event,) = events_of(source)
    values = {name: value for name, value in event.items() if name != "timestamp"}
    assert sorted(values.values()) == [1.0, 2.0, 3.0]
    assert not any("\n" in name for name in values), values


def test_counters_of_an_openmetrics_page_become_rates_too() -> None:
    # OpenMetrics types a counter without its _total (`# TYPE jobs counter`, then
    # `jobs_total 3`): its samples were read as a gauge, a total that only rises.
    registry = CollectorRegistry()
    jobs = Counter("jobs", "jobs done", ["queue"], registry=registry)
    temp = Gauge("temp", "temperature", registry=registry)
    pages = []
    for done, degrees in [(10, 20.0), (20, 21.0)]:  # 10 jobs, then 20 more in 2 s
        jobs.labels("a").inc(done)
        temp.set(degrees)
        pages.append(openmetrics_latest(registry).decode())
    assert "# TYPE jobs counter" in pages[0] and pages[0].endswith("# EOF\n")
    source = PrometheusSource(
        "u",
        lambda: parse_exposition(pages.pop(0), re.compile(".*")),
        every_s=0.0,
        **clocks([100.0, 102.0]),
    )
    assert events_of(source) == []  # the first scrape only primes the rate
    assert events_of(source) == [{"timestamp": 102.0, 'jobs_total{queue="a"}': 10.0, "temp": 21.0}]


@pytest.mark.parametrize(
    ("key", "page", "left_out"),
    [
        (None, "# TYPE timestamp gauge\ntimestamp 7\nup 1\n", "timestamp"),
        ("host", 'timestamp{host="a"} 7\nup{host="a"} 1\n', "timestamp"),
        ("host", 'host{host="a"} 7\nup{host="a"} 1\n', "host"),
    ],
)
def test_a_series_named_like_a_field_of_its_event_is_left_out_and_said_once(
    key: str | None, page: str, left_out: str
) -> None:
    # Written over the field: the scrape's time became 7, or the event's key became 7.0
    # (its events went to another key's model), and the series was lost without a word.
    uri = "prometheus://h:9100/metrics"
    params = {} if key is None else {"key": key}
    source = PrometheusSource(
        "u",
        lambda: parse_exposition(page, re.compile(".*")),
        every_s=0.0,
        key_label=params.get("key"),
        uri=uri,
        clock=lambda: 100.0,
    )
    source.link.stream = stream = io.StringIO()
    expected = {"timestamp": 100.0, "up": 1.0} | ({} if key is None else {key: "a"})
    assert events_of(source) == [expected]
    assert events_of(source) == [expected]
    assert source.clashing_series == 2
    (said,) = stream.getvalue().splitlines()
    assert said.startswith(f"stream-detect: {uri}: the scrape holds 1 series named like a field")
    assert f"{left_out}" in said and "left out" in said, said


def test_a_failed_scrape_yields_nothing_and_the_stream_goes_on() -> None:
    def fail() -> tuple[list[Series], Cumulative]:
        raise OSError("connection refused")

    source = PrometheusSource("u", fail, every_s=0.0)
    assert events_of(source) == [] and not source.connected and source.scrape_errors == 1
    assert not source.exhausted


def test_a_slow_scrape_does_not_hold_up_the_read_that_started_it(exporter: Exporter) -> None:
    # The loop waited for a scrape the exporter took its time over (up to `every`, 10 s
    # at most), past the read's timeout: /healthz said "loop stalled" and a stop waited.
    release = threading.Event()

    def answer(handler: BaseHTTPRequestHandler) -> None:
        release.wait(60)
        handler.reply(200, b"# TYPE up gauge\nup 1\n", "text/plain")  # type: ignore[attr-defined]

    exporter.answer = answer
    source = open_scrape(f"{exporter.address}/metrics", {"every": "60s"}, uri="u", config_key="s")
    try:
        assert len(source.read_batch(100, 0.0, 0.2)) == 0
        # Still on its way: not failed, and nothing of it handed out yet.
        assert source.scrape_errors == 0 and len(source.take_buffered(100)) == 0
    finally:
        release.set()
    [event] = events_of(source)
    assert event["up"] == 1.0 and source.connected and source.scrape_errors == 0
    assert exporter.scrapes == 1


def test_what_a_scrape_says_is_written_by_the_thread_that_reads() -> None:
    # Not from the scrape's own thread: there, a line could land inside a large write
    # of dead letters to the same stderr pipe.
    writers: list[threading.Thread] = []

    class Stream(io.StringIO):
        def write(self, text: str) -> int:
            writers.append(threading.current_thread())
            return super().write(text)

    def fail() -> tuple[list[Series], Cumulative]:
        raise OSError("connection refused")

    source = PrometheusSource("u", fail, every_s=0.0)
    source.link.stream = stream = Stream()
    assert events_of(source) == []
    assert "scrape failed (connection refused)" in stream.getvalue()
    assert writers and set(writers) == {threading.current_thread()}


def test_a_stop_takes_the_events_of_a_scrape_that_ended_unseen() -> None:
    # A stop drains the source with take_buffered, never read_batch: a scrape that had
    # ended since the last read kept its events to itself, lost.
    release = threading.Event()

    def slow() -> tuple[list[Series], Cumulative]:
        release.wait(60)
        return [("up", {}, 1.0)], {}

    source = PrometheusSource("u", slow, every_s=0.0, clock=lambda: 5.0)
    assert len(source.read_batch(100, 0.0, 0.05)) == 0  # on its way
    release.set()
    payloads = wait_for(lambda: source.take_buffered(100).payloads, "the scrape's event", 10.0)
    assert [orjson.loads(payload) for payload in payloads] == [{"timestamp": 5.0, "up": 1.0}]


def test_a_fault_in_a_scrape_reaches_the_loop() -> None:
    def broken() -> tuple[list[Series], Cumulative]:
        raise RuntimeError("a bug, not a failed scrape")

    source = PrometheusSource("u", broken, every_s=0.0)
    with pytest.raises(RuntimeError, match="a bug"):
        events_of(source)


def cut_off(handler: BaseHTTPRequestHandler) -> None:
    """Promise 1000 bytes, send a few, hang up (an exporter that crashed mid-answer)."""
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b"up 1\n")
    handler.close_connection = True


def too_large(handler: BaseHTTPRequestHandler) -> None:
    """An answer bigger than any scrape should be, all comments."""
    line = b"#" + b" " * 65534 + b"\n"
    count = MAX_BODY_BYTES // len(line) + 2
    handler.send_response(200)
    handler.send_header("Content-Length", str(count * len(line)))
    handler.end_headers()
    with contextlib.suppress(OSError):
        for _ in range(count):
            handler.wfile.write(line)


def never_ending(exporter: Exporter) -> Callable[[BaseHTTPRequestHandler], None]:
    """A comment line now and then for a minute: an answer that a reader waiting for its
    end never sees end (a minute, so that such a reader fails the test, not hangs it)."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        with contextlib.suppress(OSError):
            for _ in range(300):
                if exporter.closing.wait(0.2):
                    break
                handler.wfile.write(b"# still here\n")
                handler.wfile.flush()

    return answer


def never_ending_headers(exporter: Exporter) -> Callable[[BaseHTTPRequestHandler], None]:
    """A byte of a header now and then for a minute: each read of the socket gets
    something in time, but the headers never end (a minute, as above)."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        with contextlib.suppress(OSError):
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(300):
                if exporter.closing.wait(0.2):
                    break
                handler.wfile.write(b"z")
                handler.wfile.flush()
        handler.close_connection = True

    return answer


def test_an_answer_cut_off_too_large_or_never_ending_is_a_failed_scrape(
    exporter: Exporter,
) -> None:
    source = open_scrape(f"{exporter.address}/metrics", {"every": "1s"}, uri="u", config_key="s")
    for answer in (cut_off, too_large, never_ending(exporter), never_ending_headers(exporter)):
        exporter.answer = answer
        before = source.scrape_errors
        source._next_at = 0.0  # due now
        assert events_of(source) == [], answer
        assert source.scrape_errors == before + 1 and not source.connected, answer


def test_the_reason_of_a_failed_scrape_is_one_line(exporter: Exporter) -> None:
    def redirect_loop(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", "/metrics")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    exporter.answer = redirect_loop
    source = open_scrape(f"{exporter.address}/metrics", {"every": "1s"}, uri="u", config_key="s")
    assert events_of(source) == [] and source.scrape_errors == 1
    assert source.last_error is not None and source.last_error.startswith("HTTP 302")
    assert "\n" not in source.last_error, source.last_error


@pytest.mark.parametrize("target", ["ftp://127.0.0.1:{ftp}/metrics", "file:///etc/passwd"])
def test_a_redirect_to_anything_but_http_is_a_failed_scrape_naming_it(
    exporter: Exporter, target: str
) -> None:
    # urllib follows a redirect to ftp:// too, over a connection the scrape's
    # deadline does not bound. Something listens there, to see that nobody came.
    with socket.create_server(("127.0.0.1", 0)) as ftp:
        ftp.setblocking(False)
        target = target.format(ftp=ftp.getsockname()[1])

        def redirect(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(302)
            handler.send_header("Location", target)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        exporter.answer = redirect
        source = open_scrape(
            f"{exporter.address}/metrics", {"every": "1s"}, uri="u", config_key="s"
        )
        assert events_of(source) == [] and source.scrape_errors == 1
        with pytest.raises(BlockingIOError):
            ftp.accept()
    assert source.last_error is not None and target in source.last_error, source.last_error
    assert "only redirects to http:// and https://" in source.last_error


def test_a_page_that_is_not_the_text_format_is_a_failed_scrape_naming_its_line(
    exporter: Exporter,
) -> None:
    # A label without a name made the parser raise IndexError, which ended the run
    # with a traceback; a page of one long line was repeated whole on stderr.
    pages = {
        'up 1\nm{a="x", ="y"} 1\n': 'line 2 \'m{a="x", ="y"} 1\'',
        '{"status": "ok", "padding": "' + "x" * 100_000 + '"}': 'line 1 \'{"status"',
        "# TYPE\n": "line 1 '# TYPE': malformed",
    }
    uri = f"prometheus://{exporter.address}/metrics"
    source = open_scrape(f"{exporter.address}/metrics", {"every": "1s"}, uri=uri, config_key="s")
    source.link.stream = stream = io.StringIO()
    for page, named in pages.items():
        exporter.render = lambda n, page=page: page
        before = source.scrape_errors
        source._next_at = 0.0  # due now
        assert events_of(source) == [], page[:40]
        assert source.scrape_errors == before + 1 and not source.connected, page[:40]
        assert source.last_error is not None and named in source.last_error, source.last_error
        assert len(source.last_error) < 200, source.last_error[:300]
    exporter.render = lambda n: "# TYPE up gauge\nup 1\n"
    source._next_at = 0.0
    assert [event["up"] for event in events_of(source)] == [1.0] and source.connected
    lost, back = stream.getvalue().splitlines()
    assert lost.startswith(f"stream-detect: {uri}: scrape failed (not the Prometheus text format")
    assert back.startswith(f"stream-detect: {uri}: scrape works again")


def test_a_promql_answer_that_is_not_a_query_result_is_a_failed_query(
    exporter: Exporter,
) -> None:
    source = open_promql(exporter.address, {"query": "up", "every": "1s"}, uri="u", config_key="s")
    answers = [
        "[]",
        '{"status": "success", "data": []}',
        '{"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, "2"]}]}}',
        '{"status": "success", "data": {"resultType": "vector", "result": [7]}}',
        '{"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}}',
    ]
    for answer in answers:
        exporter.render = lambda n, answer=answer: answer
        before = source.scrape_errors
        source._next_at = 0.0
        assert events_of(source) == [], answer
        assert source.scrape_errors == before + 1, answer
    exporter.render = lambda n: (
        '{"status": "success", "data": {"resultType": "vector", '
        + ('"result": [{"metric": {"__name__": "up"}, "value": [1, "1"]}]}}')
    )
    source._next_at = 0.0
    assert [event["up"] for event in events_of(source)] == [1.0]


def test_a_series_repeated_in_a_query_answer_is_said_once_in_a_query_s_words(
    exporter: Exporter,
) -> None:
    # It said "not at every scrape" of a PromQL source, whose other notices say "query".
    answer = (
        '{"status": "success", "data": {"resultType": "vector", "result": ['
        '{"metric": {"__name__": "up"}, "value": [1, "1"]}, '
        '{"metric": {"__name__": "up"}, "value": [1, "0"]}]}}'
    )
    exporter.render = lambda n: answer
    source = open_promql(exporter.address, {"query": "up", "every": "1s"}, uri="u", config_key="s")
    source.link.stream = stream = io.StringIO()
    for _ in range(2):
        source._next_at = 0.0  # due now
        assert [event["up"] for event in events_of(source)] == [1.0]
    (said,) = stream.getvalue().splitlines()
    assert "the query holds a series more than once (up, 1 in all)" in said, said
    assert said.endswith("(said once, not at every query)"), said


def test_a_stop_is_honoured_while_an_exporter_never_ends_its_answer(exporter: Exporter) -> None:
    exporter.answer = never_ending(exporter)
    proc = subprocess.Popen(
        [*RUN, "--source", f"prometheus://{exporter.address}/metrics?every=2s"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: exporter.scrapes >= 1, "a first scrape")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and b"Traceback" not in stderr, stderr[-3000:]


def run_until(
    run: RunSettings,
    detector: DetectorSettings,
    sink: ListSink,
    done: Any,
    what: str,
    source: PrometheusSource | None = None,
) -> Summary:
    stop = threading.Event()
    result: list[Summary] = []
    runner = threading.Thread(
        target=lambda: result.append(
            run_stream(run, detector, source=source, sink=sink, dead_letter=ListSink(), stop=stop)
        )
    )
    runner.start()
    try:
        wait_for(lambda: done(sink.records), what)
    finally:
        stop.set()
        runner.join()
    return result[0]


def test_the_scrape_time_is_not_a_feature_so_a_pause_in_scrapes_is_no_anomaly() -> None:
    rng = np.random.default_rng(1)
    scrapes = itertools.count()

    def clock() -> float:
        # Scrapes a second apart, then the exporter was away for a day.
        scrape = next(scrapes)
        return 1_000.0 + scrape + (86_400.0 if scrape >= 60 else 0.0)

    def fetch() -> tuple[list[Series], Cumulative]:
        return [("temp", {}, float(rng.normal(20.0, 1.0)))], {}

    summary = run_until(
        RunSettings(emit="all"),
        DetectorSettings(min_samples=30, log_epsilon=-12.0, flagged="learn"),
        sink := ListSink(),
        lambda records: len(records) >= 80,
        "scrapes on both sides of the pause",
        source=PrometheusSource("u", fetch, every_s=0.0, clock=clock),
    )
    assert summary.features == ["temp"]
    assert [record["alert"] for record in sink.records] == [False] * len(sink.records)
    assert sink.records[70]["timestamp"] > 87_000  # kept in the events, only not a feature


def test_the_scrape_time_is_a_feature_when_named() -> None:
    times = itertools.count(1_000.0)
    summary = run_until(
        RunSettings(emit="all"),
        DetectorSettings(features=("timestamp", "temp")),
        ListSink(),
        lambda records: len(records) >= 3,
        "three scrapes",
        source=PrometheusSource(
            "u", lambda: ([("temp", {}, 1.0)], {}), every_s=0.0, clock=lambda: next(times)
        ),
    )
    assert summary.features == ["timestamp", "temp"]


def test_prometheus_own_metrics_scraped_become_events(tmp_path: Path) -> None:
    with running_prometheus(tmp_path / "prometheus", []) as prometheus:
        run = RunSettings(
            source=f"prometheus://127.0.0.1:{prometheus.port}/metrics?every=200ms"
            "&match=go_goroutines|process_.*|prometheus_tsdb_head_series",
            emit="all",
        )
        summary = run_until(
            run,
            DetectorSettings(min_samples=2, log_epsilon=-1e6),
            sink := ListSink(),
            lambda records: len(records) >= 3,
            "three scrapes of Prometheus's own metrics",
        )
    assert summary.events >= 3 and summary.bad_records == 0
    first = sink.records[0]
    assert first["go_goroutines"] > 0
    # process_cpu_seconds_total is a counter: it arrives as a rate.
    assert first["process_cpu_seconds_total"] >= 0.0
    assert first["position"]["url"].endswith("/metrics")


def test_promql_reads_a_query_result(tmp_path: Path) -> None:
    with running_prometheus(tmp_path / "prometheus", []) as prometheus:
        run = RunSettings(
            source=f"promql://127.0.0.1:{prometheus.port}?query=vector(3)&every=200ms", emit="all"
        )
        run_until(
            run,
            DetectorSettings(min_samples=2, log_epsilon=-1e6),
            sink := ListSink(),
            lambda records: len(records) >= 2,
            "two query results",
        )
    assert sink.records[0]["value"] == 3.0


def test_a_prometheus_server_s_federate_page_is_a_source(
    tmp_path: Path, exporter: Exporter
) -> None:
    # match[] was refused as an unknown parameter (and the query dropped from the
    # scrape). The page types every series untyped and stamps every sample.
    exporter.render = lambda n: f"# TYPE temp gauge\ntemp {20 + n % 3}\njobs_total {10 * n}\n"
    with running_prometheus(tmp_path / "prometheus", [exporter.address]) as prometheus:
        # Written as is: the `+` stays a `+` (as a space, the regex would keep only `up`).
        selector = '{job="detector",__name__=~"te.+|up"}'
        run = RunSettings(
            source=f"prometheus://127.0.0.1:{prometheus.port}/federate?match[]={selector}"
            "&every=200ms&key=instance",
            emit="all",
        )
        summary = run_until(
            run,
            DetectorSettings(min_samples=2, log_epsilon=-1e6),
            sink := ListSink(),
            lambda records: len(records) >= 3,
            "three events from /federate",
        )
    assert summary.bad_records == 0
    first = sink.records[0]
    assert first["instance"] == exporter.address
    assert first['temp{job="detector"}'] in (20.0, 21.0, 22.0)
    assert first['up{job="detector"}'] == 1.0
    assert not [name for name in first if name.startswith(("jobs_total", "scrape_"))]
    assert "/federate?match%5B%5D=" in first["position"]["url"]


def test_federate_selectors_are_sent_in_order_and_an_empty_one_is_refused() -> None:
    source = open_source('prometheus://h:9090/federate?match[]={job="a"}&every=5s&match[]=up')
    assert isinstance(source, PrometheusSource)
    assert source.url.endswith("/federate?match%5B%5D=%7Bjob%3D%22a%22%7D&match%5B%5D=up")
    with pytest.raises(ConfigError, match=r"expected match\[\]=SELECTOR with a series selector"):
        open_source("prometheus://h:9090/federate?match[]=up&match[]=")


def test_an_anomaly_injected_into_an_exporter_raises_an_alert(exporter: Exporter) -> None:
    rng = np.random.default_rng(0)

    def render(scrape: int) -> str:
        a, b = rng.normal(10.0, 1.0), rng.normal(50.0, 2.0)
        if scrape > 60:  # past warm-up, host b's queue suddenly runs deep
            b = 500.0
        return (
            f'# TYPE queue_depth gauge\nqueue_depth{{host="a"}} {a}\nqueue_depth{{host="b"}} {b}\n'
        )

    exporter.render = render
    summary = run_until(
        RunSettings(source=f"prometheus://{exporter.address}/metrics?every=50ms&key=host"),
        DetectorSettings(key_field="host", min_samples=30, log_epsilon=-15.0),
        sink := ListSink(),
        lambda records: len(records) >= 1,
        "an alert for the injected anomaly",
    )
    assert summary.alerts >= 1
    alert = sink.records[0]
    assert alert["host"] == "b" and alert["queue_depth"] == 500.0 and alert["alert"]
    # The source numbers the scrapes that worked; on a busy machine one of the 50 ms
    # scrapes can time out, so its number may lag the exporter's count of requests.
    assert 30 < alert["position"]["scrape"] <= exporter.scrapes
    assert next(iter(alert["contributions"])) == "queue_depth"


def test_a_failing_exporter_is_one_line_when_it_fails_and_one_when_it_recovers(
    exporter: Exporter,
) -> None:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        broken = 3 <= exporter.scrapes <= 5
        body = b"collector broke\n" if broken else b"# TYPE up gauge\nup 1\n"
        handler.send_response(500 if broken else 200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    exporter.answer = answer
    # A scrape must finish within `every`: 50 ms was missed on a loaded machine (a 4th error).
    uri = f"prometheus://{exporter.address}/metrics?every=250ms"
    source = open_scrape(f"{exporter.address}/metrics", {"every": "250ms"}, uri=uri, config_key="s")
    source.link.stream = stream = io.StringIO()
    events = 0
    while exporter.scrapes < 8:
        events += len(source.read_batch(100, 0.0, 1.0))
    assert events >= 4 and source.scrape_errors == 3
    lost, back = stream.getvalue().splitlines()
    assert lost.startswith(f"stream-detect: {uri}: ") and "HTTP 500" in lost, lost
    assert "collector broke" in lost and "no events" in lost, lost
    assert back.startswith(f"stream-detect: {uri}: ") and "again" in back, back
    assert source.connected


def test_a_query_prometheus_refuses_is_said_once_with_its_reason(tmp_path: Path) -> None:
    with running_prometheus(tmp_path / "prometheus", []) as prometheus:
        uri = f"promql://127.0.0.1:{prometheus.port}?query=rate(up&every=50ms"
        source = open_promql(
            f"127.0.0.1:{prometheus.port}",
            {"query": "rate(up", "every": "50ms"},
            uri=uri,
            config_key="source",
        )
        source.link.stream = stream = io.StringIO()
        while source.scrape_errors < 4:
            assert not source.read_batch(100, 0.0, 1.0)
    (lost,) = stream.getvalue().splitlines()
    assert lost.startswith(f"stream-detect: {uri}: ") and "HTTP 400" in lost, lost
    # Prometheus's own words on what is wrong with the query.
    assert "parse error" in lost, lost


def test_a_sample_that_is_not_finite_is_a_dead_letter_saying_so(exporter: Exporter) -> None:
    # Such a sample is left out of its event, whose dead letter said only
    # "missing feature 'g'", as if the exporter had not sent the series.
    values = ["1.5", "NaN", "+Inf", "-Inf"]

    def render(scrape: int) -> str:
        g = values[scrape % 4] if scrape > 1 else "1.5"
        return f'g{{host="a"}} {g}\nh{{host="a"}} 3.5\ng{{host="b"}} 2.5\nh{{host="b"}} 4.5\n'

    exporter.render = render
    dead = ListSink()
    stop = threading.Event()
    uri = f"prometheus://{exporter.address}/metrics?every=50ms&key=host"
    runner = threading.Thread(
        target=run_stream,
        args=(RunSettings(source=uri), DetectorSettings(key_field="host")),
        kwargs={"sink": ListSink(), "dead_letter": dead, "stop": stop},
    )
    runner.start()
    try:
        wait_for(
            lambda: len({r["reason"] for r in dead.records}) >= 3, "three kinds of dead letter"
        )
    finally:
        stop.set()
        runner.join()
    assert {(r["position"]["key"], r["reason"]) for r in dead.records} == {
        ("a", f"feature 'g' is {value} in the scrape") for value in values[1:]
    }


def test_an_event_none_of_whose_samples_is_finite_is_a_dead_letter_saying_so(
    exporter: Exporter,
) -> None:
    # Host a's event was left out of the scrape without a trace when all its
    # samples were NaN or infinite: no event, no dead letter, nothing counted.
    hosts_a = {1: ("NaN", "NaN"), 3: ("+Inf", "NaN")}

    def answer(handler: BaseHTTPRequestHandler) -> None:
        if exporter.scrapes > 4:  # then failed scrapes only, so the counts below are exact
            handler.send_error(503)
            return
        g, h = hosts_a.get(exporter.scrapes, ("1.5", "3.5"))
        body = f'g{{host="a"}} {g}\nh{{host="a"}} {h}\n'
        if exporter.scrapes > 1:  # the run's first scrape holds host a's event alone
            body += 'g{host="b"} 2.5\nh{host="b"} 4.5\n'
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body.encode())

    exporter.answer = answer
    sink, dead = ListSink(), ListSink()
    stop = threading.Event()
    result: list[Summary] = []
    uri = f"prometheus://{exporter.address}/metrics?every=50ms&key=host"
    runner = threading.Thread(
        target=lambda: result.append(
            run_stream(
                RunSettings(source=uri, emit="all"),
                DetectorSettings(key_field="host"),
                sink=sink,
                dead_letter=dead,
                stop=stop,
            )
        )
    )
    runner.start()
    try:
        wait_for(lambda: exporter.scrapes > 5, "four scrapes and a failed one")
    finally:
        stop.set()
        runner.join()
    (summary,) = result
    assert [(r["position"]["scrape"], r["position"]["key"]) for r in dead.records] == [
        (1, "a"),
        (3, "a"),
    ]
    first, third = (r["reason"] for r in dead.records)
    # The run's first event: no feature to infer from, and why.
    assert first.startswith("feature 'g' is NaN in the scrape; no numeric field"), first
    assert third == "feature 'g' is +Inf in the scrape"
    assert summary.bad_records == 2 and summary.events == len(sink.records) == 5
    assert summary.features == ["g", "h"]


@pytest.mark.parametrize(
    "wall",
    [
        [100.0, 102.0, 101.0, 103.0],  # set back a second at the third scrape
        [100.0, 102.0, 3_702.0, 3_704.0],  # set an hour forward
    ],
)
def test_a_step_of_the_wall_clock_changes_no_rate(exporter: Exporter, wall: list[float]) -> None:
    # Rates were timed on the wall clock: set back, the scrape's counter had no
    # rate; set forward, its rate was a 1800th of the true one.
    exporter.render = lambda n: f"# TYPE jobs_total counter\njobs_total {n * 10}\n"
    source = open_scrape(f"{exporter.address}/metrics", {"every": "1s"}, uri="u", config_key="s")
    walls, ticks = iter(wall), itertools.count(0.0, 2.0)  # scrapes 2 s apart
    source.clock, source.interval_clock = lambda: next(walls), lambda: next(ticks)
    events = []
    for _ in wall:
        source._next_at = 0.0  # due now
        events += events_of(source)
    assert events == [{"timestamp": t, "jobs_total": 5.0} for t in wall[1:]]


def test_a_counter_sample_with_its_own_timestamp_is_timed_by_it(exporter: Exporter) -> None:
    # Samples refreshed every 60 s (their timestamp says when), scraped every 15 s.
    # Timed by the scrape, the rates came out 0, 0, 0, then 4 times the true rate
    # (10/s), an anomaly every fourth scrape.
    def render(scrape: int) -> str:
        refresh = (scrape - 1) // 4
        stamp_ms = 1_700_000_000_000 + 60_000 * refresh
        return f"# TYPE jobs_total counter\njobs_total {600 * refresh} {stamp_ms}\ntemp 20\n"

    exporter.render = render
    source = open_scrape(f"{exporter.address}/metrics", {"every": "1s"}, uri="u", config_key="s")
    ticks = itertools.count(0.0, 15.0)
    source.clock = source.interval_clock = lambda: next(ticks)
    rates, reasons = [], []
    for scrape in range(1, 10):
        source._next_at = 0.0  # due now
        rates += [event.get("jobs_total") for event in events_of(source)]
        missing = BadRecord({"scrape": scrape}, "missing feature 'jobs_total'", b"")
        reasons.append(source.told_bad([missing])[0].reason)
    # No rate while the sample is not refreshed: left out, never a false 0.
    assert rates == [None, None, None, 10.0, None, None, None, 10.0]
    assert reasons[1] == (
        "feature 'jobs_total' has no rate in this scrape: its sample's timestamp "
        "did not advance since the scrape before (not refreshed yet)"
    )
    assert reasons[4] == "missing feature 'jobs_total'"  # it had its rate


def test_a_gauge_whose_timestamp_did_not_advance_is_not_learned_again(
    exporter: Exporter,
) -> None:
    # An exporter serving cached samples (refreshed every third scrape) with their
    # timestamps: each in-between scrape was the same observation learned again.
    # Host a is refreshed at every scrape, host b every third; c's samples carry
    # no timestamp, so each scrape is new for it.
    def render(scrape: int) -> str:
        slow = (scrape - 1) // 3
        stamp_ms = 1_700_000_000_000
        return (
            f'temp{{host="a"}} {scrape} {stamp_ms + 1000 * scrape}\n'
            f'load{{host="a"}} {slow} {stamp_ms + 3000 * slow}\n'
            f'temp{{host="b"}} {slow} {stamp_ms + 3000 * slow}\n'
            f'temp{{host="c"}} {scrape}\n'
        )

    address = f"{exporter.address}/metrics"
    whole = open_scrape(address, {"every": "1s"}, uri="u", config_key="s")
    keyed = open_scrape(address, {"every": "1s", "key": "host"}, uri="u", config_key="s")
    seen: dict[str, list[list[dict[str, Any]]]] = {"whole": [], "keyed": []}
    exporter.render = lambda n: render((n + 1) // 2)  # both sources see each page once
    for _ in range(6):
        for name, source in (("whole", whole), ("keyed", keyed)):
            source._next_at = 0.0  # due now
            seen[name].append(events_of(source))
    # Some samples advanced at every scrape: each is a new observation, taken whole
    # (the gauges not refreshed keep their value).
    assert [len(events) for events in seen["whole"]] == [1] * 6
    assert [events[0]['load{host="a"}'] for events in seen["whole"]] == [0, 0, 0, 1, 1, 1]
    # By key: b's event only when its sample was refreshed; a's and c's every time.
    hosts = [sorted(event["host"] for event in events) for events in seen["keyed"]]
    assert hosts == [
        ["a", "b", "c"],
        ["a", "c"],
        ["a", "c"],
        ["a", "b", "c"],
        ["a", "c"],
        ["a", "c"],
    ]
    assert keyed.unchanged_events == 4
    assert whole.unchanged_events == 0


def test_a_scrape_whose_every_timestamp_is_unchanged_yields_no_event() -> None:
    pages = [
        "# TYPE up untyped\nup 1 1700000000000\n# TYPE temp gauge\ntemp 20 1700000000000\n",
        "# TYPE up untyped\nup 1 1700000000000\n# TYPE temp gauge\ntemp 20 1700000000000\n",
        "# TYPE up untyped\nup 1 1700000015000\n# TYPE temp gauge\ntemp 21 1700000015000\n",
        "# TYPE up untyped\nup 1 1700000015000\n# TYPE temp gauge\ntemp 21 1700000015000\n",
    ]
    source = PrometheusSource(
        "u",
        lambda: read_exposition(pages.pop(0), re.compile(".*")),
        every_s=0.0,
        **clocks([0.0, 5.0, 10.0, 15.0]),
    )
    events = [events_of(source) for _ in range(4)]
    assert events == [
        [{"timestamp": 0.0, "up": 1.0, "temp": 20.0}],
        [],
        [{"timestamp": 10.0, "up": 1.0, "temp": 21.0}],
        [],
    ]
    assert source.unchanged_events == 2 and source.empty_scrapes == 0


def test_an_openmetrics_timestamp_is_in_seconds() -> None:
    # The parser, written for the classic format, reads every timestamp as milliseconds.
    pages = [
        f"# TYPE jobs counter\njobs_total {value} {stamp}\n# EOF\n"
        for value, stamp in [(10, 1_700_000_000), (30, 1_700_000_010)]
    ]
    scrapes = [parse_exposition(page, re.compile(".*")) for page in pages]
    assert [cumulative for _, cumulative in scrapes] == [
        {"jobs_total": 1_700_000_000.0},
        {"jobs_total": 1_700_000_010.0},
    ]
    source = PrometheusSource("u", lambda: scrapes.pop(0), every_s=0.0, **clocks([0.0, 15.0]))
    assert events_of(source) == []
    assert events_of(source) == [{"timestamp": 15.0, "jobs_total": 2.0}]


def test_a_counter_with_no_rate_is_a_dead_letter_saying_why() -> None:
    # Its dead letter said "missing feature 'jobs_total'", though the scrape held it.
    pages = [
        "# TYPE jobs_total counter\njobs_total 10\ntemp 1\n",
        "# TYPE jobs_total counter\njobs_total 20\ntemp 1.5\n",
        "# TYPE jobs_total counter\njobs_total 5\ntemp 1.2\n",  # a restart
        "temp 2\n",  # the counter not there
        "# TYPE jobs_total counter\njobs_total 30\ntemp 1\n",  # back
    ]
    times = itertools.count(100.0, 2.0)
    ticks = itertools.count(100.0, 2.0)
    source = PrometheusSource(
        "u",
        lambda: parse_exposition(pages.pop(0), re.compile(".*")) if pages else ([], {}),
        every_s=0.0,
        clock=lambda: next(times),
        interval_clock=lambda: next(ticks),
    )
    source.link.stream = io.StringIO()
    dead = ListSink()
    stop = threading.Event()
    runner = threading.Thread(
        target=run_stream,
        args=(RunSettings(), DetectorSettings()),
        kwargs={"source": source, "sink": ListSink(), "dead_letter": dead, "stop": stop},
    )
    runner.start()
    try:
        wait_for(lambda: len(dead.records) >= 3, "three dead letters")
    finally:
        stop.set()
        runner.join()
    assert [(r["position"]["scrape"], r["reason"]) for r in dead.records] == [
        (
            3,
            "feature 'jobs_total' has no rate in this scrape: "
            "the counter went down since the scrape before (a restart)",
        ),
        (4, "missing feature 'jobs_total'"),
        (5, "feature 'jobs_total' has no rate in this scrape: the scrape before did not hold it"),
    ]


def test_a_counter_without_a_value_for_one_scrape_has_its_rate_at_the_next() -> None:
    # The NaN sample replaced the counter's last one, so the next scrape had no rate
    # either (a dead letter saying only "missing feature"); and a key whose only
    # series had no rate (a restart) had no event at all.
    scrapes = [
        [("jobs_total", {"q": "a"}, 10.0), ("jobs_total", {"q": "b"}, 5.0)],
        [("jobs_total", {"q": "a"}, 20.0), ("jobs_total", {"q": "b"}, 7.0)],
        [("jobs_total", {"q": "a"}, float("nan")), ("jobs_total", {"q": "b"}, 1.0)],
        [("jobs_total", {"q": "a"}, 40.0), ("jobs_total", {"q": "b"}, 3.0)],
    ]
    cumulative = dict.fromkeys(['jobs_total{q="a"}', 'jobs_total{q="b"}'])
    source = PrometheusSource(
        "u",
        lambda: (scrapes.pop(0), cumulative),
        every_s=0.0,
        key_label="q",
        **clocks([100.0, 102.0, 104.0, 106.0]),
    )
    seen = [events_of(source) for _ in range(4)]
    assert seen == [
        [],  # the first scrape only primes the rates
        [
            {"timestamp": 102.0, "q": "a", "jobs_total": 5.0},
            {"timestamp": 102.0, "q": "b", "jobs_total": 1.0},
        ],
        # Each event still there, a dead letter for its missing rate.
        [{"timestamp": 104.0, "q": "a"}, {"timestamp": 104.0, "q": "b"}],
        # a's rate from its last finite sample; b restarted at scrape 3.
        [
            {"timestamp": 106.0, "q": "a", "jobs_total": 5.0},
            {"timestamp": 106.0, "q": "b", "jobs_total": 1.0},
        ],
    ]


def test_a_scrape_with_no_series_or_series_without_the_key_label_is_said_once(
    exporter: Exporter,
) -> None:
    # A page of metric families without samples (or a match= that keeps none), and
    # series that lack the key= label, yielded nothing, every scrape, without a word.
    pages = [
        "# HELP g a gauge no series has yet\n# TYPE g gauge\n",
        "",
        'g{host="a"} 1\nup 1\ng{host="b"} 2\n',
        'g{host="a"} 3\nup 1\n',
    ]
    exporter.render = lambda n: pages[n - 1]
    uri = f"prometheus://{exporter.address}/metrics?match=g|up&key=host"
    source = open_scrape(
        f"{exporter.address}/metrics",
        {"every": "1s", "match": "g|up", "key": "host"},
        uri=uri,
        config_key="s",
    )
    source.link.stream = stream = io.StringIO()
    seen = []
    for _ in pages:
        source._next_at = 0.0  # due now
        seen.append([(event["host"], event["g"]) for event in events_of(source)])
    assert seen == [[], [], [("a", 1.0), ("b", 2.0)], [("a", 3.0)]]
    assert source.empty_scrapes == 2 and source.keyless_series == 2
    assert source.scrape_errors == 0
    empty, keyless = stream.getvalue().splitlines()
    assert empty == (
        f"stream-detect: {uri}: the scrape holds no series whose name matches 'g|up': "
        "no events until one does (said once, not at every scrape)"
    )
    assert keyless.startswith(
        f"stream-detect: {uri}: the scrape holds 1 series without the label 'host' (up, ...)"
    ), keyless


def test_a_label_with_an_empty_value_is_no_label(exporter: Exporter) -> None:
    # m{a=""} and m were two features, and with key=host up{host=""} was the
    # event of a key "": to Prometheus an empty label value is the label absent.
    pages = [
        '# TYPE m gauge\nm{a=""} 1\nm 5\nm{a="x",b=""} 2\n',
        'up{host=""} 1\nup{host="a",job=""} 1\n',
    ]
    exporter.render = lambda n: pages[n - 1]
    address = f"{exporter.address}/metrics"
    source = open_scrape(address, {"every": "1s"}, uri="u", config_key="s")
    source.link.stream = io.StringIO()
    (event,) = events_of(source)
    assert sorted(event) == ["m", 'm{a="x"}', "timestamp"]
    assert (event["m"], event['m{a="x"}']) == (1.0, 2.0)
    assert source.repeated_series == 1  # `m` is `m{a=""}` again
    keyed = open_scrape(address, {"every": "1s", "key": "host"}, uri="u", config_key="s")
    keyed.link.stream = io.StringIO()
    assert [(e["host"], sorted(e)) for e in events_of(keyed)] == [
        ("a", ["host", "timestamp", "up"])
    ]
    assert keyed.keyless_series == 1


def test_a_gzip_answer_is_read_decompressed_within_the_size_limit(exporter: Exporter) -> None:
    # Compressed without being asked (a proxy, say), the page was read as it came
    # and every scrape failed as "not the Prometheus text format" of binary noise.
    page = gzip.compress(b"# TYPE temp gauge\ntemp 21.5\n")
    bomb = gzip.compress(b"#" * (MAX_BODY_BYTES + 1) + b"\n", compresslevel=1)
    answers: list[tuple[bytes, str, str | None]] = [
        (page, "gzip", None),
        (bomb, "gzip", f"answered more than {MAX_BODY_BYTES} bytes (gzip, decompressed)"),
        (page[:-8], "gzip", "ends before the end of its data"),
        (page, "br", "answered in Content-Encoding 'br', which is not read (only gzip)"),
    ]

    def answer(handler: BaseHTTPRequestHandler) -> None:
        body, encoding, _ = answers[exporter.scrapes - 1]
        handler.send_response(200)
        handler.send_header("Content-Encoding", encoding)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        with contextlib.suppress(OSError):
            handler.wfile.write(body)

    exporter.answer = answer
    source = open_scrape(f"{exporter.address}/metrics", {"every": "1s"}, uri="u", config_key="s")
    for _, _, failure in answers:
        source._next_at = 0.0  # due now
        events = events_of(source)
        if failure is None:
            assert [event["temp"] for event in events] == [21.5] and source.connected
        else:
            assert events == [] and not source.connected, failure
            assert source.last_error is not None and failure in source.last_error
    assert source.scrape_errors == 3


def test_a_page_not_in_utf8_is_a_failed_scrape_and_a_byte_order_mark_is_read_past(
    exporter: Exporter,
) -> None:
    # Read with replacement characters, latin-1 label values were changed in silence (two
    # of them could become one feature); a byte-order mark failed every scrape.
    page = b""
    exporter.answer = lambda handler: handler.reply(200, page, "text/plain")  # type: ignore[attr-defined]
    uri = f"prometheus://{exporter.address}/metrics"
    source = open_scrape(f"{exporter.address}/metrics", {"every": "1s"}, uri=uri, config_key="s")
    source.link.stream = io.StringIO()
    page = '# TYPE t gauge\nt{room="küche"} 1\n'.encode("latin-1")
    assert events_of(source) == [] and not source.connected
    assert source.last_error is not None
    assert "not UTF-8, the text format's encoding: byte 0xfc on line 2" in source.last_error
    page = '\ufeff# TYPE t gauge\nt{room="küche"} 1\n'.encode()
    source._next_at = 0.0  # due now
    [event] = events_of(source)
    assert event['t{room="küche"}'] == 1.0 and source.connected
