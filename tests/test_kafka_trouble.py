"""Broker trouble against a real broker: a paused broker, a stop during an outage, no broker."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from kafka_clients import QUICK, REPO, RUN, TopicReader, kafka_uri, kill_if_running, produce, stop
from monitoring import wait_for
from test_stop_under_backpressure import wait_until_stalled

from stream_detect.errors import WriteInterrupted
from stream_detect.kafka.address import client_options, parse_kafka_uri
from stream_detect.kafka.broker import EmbeddedBroker, free_port
from stream_detect.kafka.sink import KafkaSink
from stream_detect.kafka.status import BrokerLink
from stream_detect.sources import parse_uri

TIMEOUT_S = 120.0
#: A stop must not wait for the broker; this bounds "a couple of seconds" with room
#: for a loaded machine, and fails a run that would wait for the broker forever.
STOP_BOUND_S = 20.0


@pytest.fixture
def detector_log(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "detector.log"


def start_detector(log: Path, source: str, sink: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*RUN, "--source", source, "--sink", sink, "--emit", "all", "--id-field", "id"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        cwd=REPO,
    )


def events(start: int, count: int) -> list[dict[str, float]]:
    return [{"id": i, "x": float(i % 13)} for i in range(start, start + count)]


def test_a_broker_paused_for_ten_seconds_loses_nothing(
    own_kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], detector_log: Path
) -> None:
    broker = own_kafka_broker
    source, sink = fresh_topic(broker), fresh_topic(broker)
    produce(broker.bootstrap, source, events(0, 300))
    proc = start_detector(
        detector_log,
        kafka_uri(broker.bootstrap, source, group="pause"),
        kafka_uri(broker.bootstrap, sink),
    )
    try:
        reader = TopicReader(broker.bootstrap, sink)
        reader.until(lambda records: len(records) >= 300)
        # Events keep coming while the broker is paused: the producer holds them.
        feeding = threading.Thread(
            target=produce, args=(broker.bootstrap, source, events(300, 300))
        )
        assert broker.process is not None
        os.kill(broker.process.pid, signal.SIGSTOP)
        feeding.start()
        time.sleep(10)
        os.kill(broker.process.pid, signal.SIGCONT)
        feeding.join(timeout=TIMEOUT_S)
        results = reader.until(
            lambda records: {r["id"] for r in records} >= set(range(600)), timeout_s=TIMEOUT_S
        )
        reader.close()
        assert {r["id"] for r in results} == set(range(600))
        assert proc.poll() is None, "the detector gave up instead of waiting for the broker"
        stop(proc, TIMEOUT_S)
    finally:
        kill_if_running(proc)
    assert "Traceback" not in detector_log.read_text()


def test_a_stop_during_an_outage_is_prompt(
    own_kafka_broker: EmbeddedBroker,
    fresh_topic: Callable[..., str],
    detector_log: Path,
    tmp_path: Path,
) -> None:
    broker = own_kafka_broker
    source, sink = fresh_topic(broker), fresh_topic(broker)
    produce(broker.bootstrap, source, events(0, 200))
    state = tmp_path / "state"
    state.mkdir()
    proc = subprocess.Popen(
        [
            *RUN,
            "--source",
            kafka_uri(broker.bootstrap, source, group="outage"),
            "--sink",
            kafka_uri(broker.bootstrap, sink),
            "--emit",
            "all",
            "--state-dir",
            str(state),
        ],
        stdout=subprocess.DEVNULL,
        stderr=detector_log.open("wb"),
        cwd=REPO,
    )
    assert broker.process is not None
    try:
        TopicReader(broker.bootstrap, sink).until(lambda records: len(records) >= 200)
        os.kill(broker.process.pid, signal.SIGSTOP)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_BOUND_S) == 0, detector_log.read_text()[-3000:]
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)
        kill_if_running(proc)
    # What was delivered before the outage is in the partition's checkpoint.
    assert (state / f"{source}-0.json").exists()
    assert "Traceback" not in detector_log.read_text()


def test_an_unreachable_tls_endpoint_is_one_clear_line(detector_log: Path) -> None:
    port = free_port()
    uri = f"kafka://127.0.0.1:{port}/events?{QUICK}&security_protocol=SSL"
    proc = start_detector(detector_log, uri, "-")
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while "unreachable" not in detector_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3.0)  # more failed attempts, which must not add lines
        stop(proc, STOP_BOUND_S)
    finally:
        kill_if_running(proc)
    lines = [line for line in detector_log.read_text().splitlines() if "summary" not in line]
    assert len(lines) == 1, lines
    assert f"127.0.0.1:{port}" in lines[0] and "broker unreachable" in lines[0]


def test_security_settings_reach_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_KAFKA_SECRET", "hunter2")
    table = {
        "client_id": "detector-7",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "detector",
        "sasl_plain_password_env": "TEST_KAFKA_SECRET",
        "ssl_cafile": "ca.pem",
        "ssl_certfile": "client.pem",
        "ssl_keyfile": "client.key",
        "linger_ms": 20,
        "fetch_max_wait_ms": 50,
    }
    address = parse_kafka_uri(parse_uri("kafka://b:9092/t?client_id=override"))
    consumer = client_options(address, table, role="consumer")
    producer = client_options(address, table, role="producer")
    for options in (consumer, producer):
        assert options["client_id"] == "override"
        assert options["security_protocol"] == "SASL_SSL"
        assert options["sasl_plain_password"] == "hunter2"
        assert options["ssl_keyfile"] == "client.key"
    assert producer["linger_ms"] == 20 and "linger_ms" not in consumer
    assert consumer["fetch_max_wait_ms"] == 50 and "fetch_max_wait_ms" not in producer


def test_a_secret_is_never_shown_in_an_error() -> None:
    from stream_detect.errors import ConfigError

    address = parse_kafka_uri(parse_uri("kafka://b:9092/t"))
    with pytest.raises(ConfigError) as caught:
        client_options(address, {"sasl_plain_pasword": "hunter2"}, role="consumer")
    assert "hunter2" not in str(caught.value)
    assert "kafka.sasl_plain_pasword" in str(caught.value)


def test_an_unknown_option_in_the_uri_names_the_uri_not_a_config_key() -> None:
    from stream_detect.errors import ConfigError

    # It was named "config key kafka.sasl_plain_pasword", a key no file held.
    uri = "kafka://b:9092/t?sasl_plain_pasword=hunter2"
    address = parse_kafka_uri(parse_uri(uri, config_key="labels"))
    with pytest.raises(ConfigError) as caught:
        client_options(address, {"client_id": "d"}, role="consumer")
    assert caught.value.key == "labels" and "hunter2" not in str(caught.value)
    assert "?sasl_plain_pasword=" in str(caught.value)
    assert "did you mean 'sasl_plain_password'?" in str(caught.value)
    address = parse_kafka_uri(parse_uri("kafka://b:9092/t?group_id=g"))
    with pytest.raises(ConfigError) as caught:
        client_options(address, None, role="consumer")
    assert caught.value.key == "source" and "group=" in str(caught.value)


def test_an_illegal_topic_name_is_one_config_error(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str]
) -> None:
    bootstrap = kafka_broker.bootstrap
    source = fresh_topic(kafka_broker)
    produce(bootstrap, source, [b"not json", *events(0, 3)])
    for flag, topic in (("--sink", "alerts$"), ("--source", "x" * 250), ("--dead-letter", "..")):
        args = [*RUN, flag, f"kafka://{bootstrap}/{topic}", "--emit", "all"]
        if flag != "--source":
            args += ["--source", kafka_uri(bootstrap, source, group="names", until="end")]
        done = subprocess.run(args, capture_output=True, cwd=REPO, timeout=TIMEOUT_S)
        lines = done.stderr.decode().splitlines()
        assert done.returncode == 2 and len(lines) == 1, lines
        assert flag in lines[0] and "topic names" in lines[0]


def test_a_result_larger_than_the_producer_allows_is_one_line_and_loses_nothing(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], detector_log: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    source, sink = fresh_topic(kafka_broker), fresh_topic(kafka_broker)
    # Under the input's line limit (1 MiB); its result, with the scores, is over the
    # producer's default max_request_size (1 MiB).
    big = {"id": 3, "x": 1.0, "pad": "a" * (1_048_576 - 100)}
    produce(
        bootstrap,
        source,
        [*events(0, 3), big, *events(4, 3)],
        options={"message.max.bytes": 4_000_000},
    )

    def run(sink_uri: str) -> subprocess.CompletedProcess[bytes]:
        args = ["--source", kafka_uri(bootstrap, source, group="big", until="end")]
        args += ["--sink", sink_uri, "--emit", "all"]
        return subprocess.run([*RUN, *args], capture_output=True, cwd=REPO, timeout=TIMEOUT_S)

    refused = run(kafka_uri(bootstrap, sink))
    stderr = refused.stderr.decode()
    assert refused.returncode == 2 and "Traceback" not in stderr, stderr[-3000:]
    assert "max_request_size" in stderr.splitlines()[-1]
    # Nothing was committed past the refused batch: a run allowed larger records writes it.
    allowed = run(kafka_uri(bootstrap, sink, max_request_size="4000000"))
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    reader = TopicReader(bootstrap, sink)
    results = reader.until(lambda records: {r["id"] for r in records} >= set(range(7)))
    reader.close()
    assert len(next(r for r in results if r["id"] == 3)["pad"]) == len(big["pad"])


def test_a_broker_restarted_without_its_state_is_written_to_again(
    own_kafka_broker: EmbeddedBroker, detector_log: Path
) -> None:
    # The embedded broker keeps nothing over a restart: the producer's id, its
    # topics and the group's offsets are gone, as after a long quiet spell the
    # producer's id is on a real broker.
    broker = own_kafka_broker
    broker.create_topic("events", 1)
    broker.create_topic("results", 1)
    produce(broker.bootstrap, "events", events(0, 20))
    proc = start_detector(
        detector_log,
        kafka_uri(broker.bootstrap, "events", group="restart"),
        kafka_uri(broker.bootstrap, "results"),
    )
    try:
        reader = TopicReader(broker.bootstrap, "results")
        reader.until(lambda records: len(records) >= 20, timeout_s=TIMEOUT_S)
        reader.close()
        assert broker.process is not None
        broker.process.kill()
        broker.process.wait()
        broker.process = None
        broker.start()
        broker.create_topic("events", 1)
        broker.create_topic("results", 1)
        # The new log starts at offset 0 again; the detector's position is 20.
        produce(broker.bootstrap, "events", events(1000, 40))
        reader = TopicReader(broker.bootstrap, "results")
        results = reader.until(
            lambda records: {r["id"] for r in records} >= set(range(1020, 1040)),
            timeout_s=TIMEOUT_S,
        )
        reader.close()
        assert proc.poll() is None, detector_log.read_text()[-3000:]
        stop(proc, TIMEOUT_S)
    finally:
        kill_if_running(proc)
    assert "Traceback" not in detector_log.read_text()
    assert {r["id"] for r in results} >= set(range(1020, 1040))


def test_a_state_dir_of_other_features_is_one_line_not_broker_trouble(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = fresh_topic(kafka_broker)
    produce(kafka_broker.bootstrap, topic, [{"x": float(i % 7), "y": 1.0} for i in range(100)])
    source = kafka_uri(kafka_broker.bootstrap, topic, group="state", until="end")

    def run(features: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*RUN, "--source", source, "--state-dir", str(tmp_path), "--features", features],
            capture_output=True,
            timeout=TIMEOUT_S,
            cwd=REPO,
            check=False,
        )

    assert run("x,y").returncode == 0
    produce(kafka_broker.bootstrap, topic, [{"x": 1.0, "y": 1.0}])
    # The partition's checkpoint holds a model of x and y: it cannot be resumed with x alone.
    refused = run("x")
    assert refused.returncode == 2, refused.stderr[-2000:]
    (line,) = [line for line in refused.stderr.decode().splitlines() if "error" in line]
    assert "checkpoint" in line and "features" in line, line
    assert b"unreachable" not in refused.stderr and b"Traceback" not in refused.stderr


def test_a_stop_while_a_kafka_sink_retries_its_broker_ends_a_file_run(
    detector_log: Path, tmp_path: Path
) -> None:
    # Only a Kafka run told its Kafka sink of a stop: a file run whose sink retried
    # an unreachable broker ignored SIGTERM until the broker came back.
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"".join(b'{"x": %d}\n' % (i % 13) for i in range(500)))
    unreachable = f"kafka://127.0.0.1:{free_port()}/results"
    proc = subprocess.Popen(
        [*RUN, "--source", f"file:{source}", "--emit", "all", "--sink", unreachable],
        stdout=subprocess.DEVNULL,
        stderr=detector_log.open("wb"),
        cwd=REPO,
    )
    try:
        wait_for(lambda: "broker unreachable" in detector_log.read_text(), "a failed send")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_BOUND_S) == 0, detector_log.read_text()[-3000:]
    finally:
        kill_if_running(proc)
    log = detector_log.read_text()
    assert "Traceback" not in log
    summary = orjson.loads(log.splitlines()[-1])["summary"]
    assert summary["stopped_by"] == "signal, output stalled", summary


def test_a_stop_ends_a_kafka_run_while_nobody_reads_its_output(
    kafka_broker: EmbeddedBroker, fresh_topic: Callable[..., str], detector_log: Path
) -> None:
    # A Kafka run never told its other sinks of a stop: one writing to a pipe
    # nobody reads waited for a reader for ever, SIGTERM or not.
    topic = fresh_topic(kafka_broker)
    produce(kafka_broker.bootstrap, topic, events(0, 3000))
    uri = kafka_uri(kafka_broker.bootstrap, topic, group="stalled")
    proc = subprocess.Popen(
        [*RUN, "--source", uri, "--emit", "all"],
        stdout=subprocess.PIPE,
        stderr=detector_log.open("wb"),
        cwd=REPO,
    )
    try:
        wait_until_stalled(proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_BOUND_S) == 0, detector_log.read_text()[-3000:]
    finally:
        kill_if_running(proc)
        if proc.stdout is not None:
            proc.stdout.close()
    log = detector_log.read_text()
    assert "Traceback" not in log
    summary = orjson.loads(log.splitlines()[-1])["summary"]
    assert summary["stopped_by"] == "signal, output stalled", summary


def test_a_kafka_sink_says_why_its_broker_is_unreachable() -> None:
    # The sink's line gave only the error's class ("KafkaTimeoutError"), which does
    # not say which wait ran out; the source's line always gave the message too.
    port = free_port()
    uri = f"kafka://127.0.0.1:{port}/results"
    said = io.StringIO()
    stopping = threading.Event()
    stopping.set()  # the first failed attempt is reported, then the sink gives up
    sink = KafkaSink(
        parse_kafka_uri(parse_uri(uri)), abandon=stopping, link=BrokerLink(uri, stream=said)
    )
    with pytest.raises(WriteInterrupted):
        sink.write_batch([{"x": 1.0}])
    (line,) = said.getvalue().splitlines()
    assert line.startswith(f"stream-detect: {uri}: broker unreachable (KafkaTimeoutError: "), line
    assert f"127.0.0.1:{port}" in line.split("(", 1)[1], line


def test_a_kafka_sink_waits_for_a_topic_it_has_no_metadata_for(
    own_kafka_broker: EmbeddedBroker,
) -> None:
    # A send waits up to max_block_ms for its topic's metadata, then raised
    # KafkaTimeoutError, which no caller expected: a run whose broker went away (or
    # whose results topic was deleted where topics are not made on first use) ended
    # with a traceback. It is broker trouble: retried and reported, nothing lost.
    broker = own_kafka_broker
    assert broker.process is not None
    uri = f"kafka://{broker.bootstrap}/results?max_block_ms=300"
    said = io.StringIO()
    sink = KafkaSink(parse_kafka_uri(parse_uri(uri)), link=BrokerLink(uri, stream=said))
    sink._connect()  # the producer knows the broker, not yet the topic
    os.kill(broker.process.pid, signal.SIGSTOP)
    resume = threading.Timer(3.0, os.kill, (broker.process.pid, signal.SIGCONT))
    resume.start()
    try:
        sink.write_batch([{"x": 1.0}])
        sink.flush()
    finally:
        resume.join()
    # Flushed means acknowledged by the broker (acks=all), which is what the run's
    # commits rest on. Whether the record can then be read back is the broker's:
    # Tansu, which makes the topic on that first metadata request while it was
    # stopped, sometimes acknowledges the record and loses it (seen in 2 of 4 runs).
    assert sink._unacknowledged == []
    sink.close()
    lines = said.getvalue().splitlines()
    assert "broker unreachable (KafkaTimeoutError" in lines[0] and "metadata" in lines[0], lines
    assert lines[-1].endswith("broker reachable again"), lines
