"""The container image and the compose stack, checked without a Docker engine.

The compose file and the configs it mounts must agree (files exist, ports and
URLs match, the detector's flags load); the Dockerfile's layers are rebuilt
the same way in a fresh virtual environment, whose ``stream-detect`` must run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from stream_detect.cli import build_parser
from stream_detect.flags import load_settings
from stream_detect.kafka.address import parse_kafka_uri
from stream_detect.kafka.partitioned import PartitionedRun
from stream_detect.kafka.source import KafkaSource
from stream_detect.metrics import RunMetrics
from stream_detect.sources import open_source, parse_uri
from stream_detect.testing import ListSink

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
DOCKERFILE = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
COMPOSE: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
#: Where the Dockerfile puts configs/ in the image.
IMAGE_CONFIGS = "/etc/stream-detect/"


def detector_flags() -> dict[str, str]:
    command = SERVICES["detector"]["command"]
    assert command[0] == "run"
    return dict(zip(command[1::2], command[2::2], strict=True))


def test_every_file_the_stack_mounts_or_builds_from_exists() -> None:
    named = set(COMPOSE.get("volumes") or {})
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (DOCKER / source).is_file(), f"{name} mounts {source}, which is missing"
            else:
                # A named volume, never a bind-mounted folder Docker would create as root.
                assert source in named, f"{name} uses volume {source}, not declared"
        build = service.get("build")
        if build is not None:
            assert (DOCKER / build["context"] / build["dockerfile"]).is_file()


def test_the_detector_flags_and_config_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    flags = detector_flags()
    config = flags["--config"]
    assert config.startswith(IMAGE_CONFIGS)
    local = ROOT / "configs" / config.removeprefix(IMAGE_CONFIGS)
    assert local.is_file()
    args = [arg for pair in flags.items() for arg in pair]
    args[args.index(config)] = str(local)
    run, detector = load_settings(build_parser().parse_args(["run", *args]))
    assert run.http == "0.0.0.0:9464"
    assert detector.id_field is not None and run.labels is not None
    # A Kafka source keeps its state per partition in state_dir (a checkpoint file is
    # refused), relative to the working directory: the state volume of the image.
    assert run.checkpoint is None and run.state_dir == "state"
    (state,) = SERVICES["detector"]["volumes"]
    assert state.split(":")[1] == "/home/detector/state"
    assert "WORKDIR /home/detector\n" in DOCKERFILE
    # The run the container starts accepts these settings (in a folder like the image's).
    monkeypatch.chdir(tmp_path)
    (tmp_path / "state").mkdir()
    source = open_source(run.source, client_table=run.kafka)
    assert isinstance(source, KafkaSource) and source.address.group == "detector"
    PartitionedRun(run, detector, source=source, sink=ListSink(), dead_letter=ListSink())
    source.close()


def host_port(uri: str) -> tuple[str, int]:
    target = parse_uri(uri).target.split("/")[0]
    host, _, port = target.partition(":")
    return host, int(port)


def published(service: str) -> set[int]:
    return {int(mapping.split(":")[-1]) for mapping in SERVICES[service].get("ports", [])}


def test_ports_and_urls_agree() -> None:
    flags = detector_flags()
    http_port = int(flags["--http"].rpartition(":")[2])
    assert http_port in published("detector")
    assert f"EXPOSE {http_port}" in DOCKERFILE and f"127.0.0.1:{http_port}/healthz" in DOCKERFILE
    prometheus = yaml.safe_load((ROOT / "configs" / "prometheus.yml").read_text())
    targets = [
        t
        for job in prometheus["scrape_configs"]
        for s in job["static_configs"]
        for t in s["targets"]
    ]
    assert targets == [f"detector:{http_port}"]
    for flag in ("--sink", "--labels"):
        host, port = host_port(flags[flag])
        assert host == "alertmanager" and port in published("alertmanager") and port == 9093
    kafka_host, kafka_port = host_port(flags["--source"])
    assert kafka_host == "kafka"
    broker = SERVICES["kafka"]["environment"]
    assert f"PLAINTEXT://kafka:{kafka_port}" in broker["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert f"PLAINTEXT://:{kafka_port}" in broker["KAFKA_LISTENERS"].split(",")
    assert parse_kafka_uri(parse_uri(flags["--source"])).group == "detector"
    assert "kafka" in SERVICES["detector"]["depends_on"]
    topic = parse_uri(flags["--source"]).target.split("/")[1]
    assert SERVICES["producer"]["command"][:2] == [f"kafka:{kafka_port}", topic]
    mounted = {
        v.split(":")[1] for s in ("prometheus", "alertmanager") for v in SERVICES[s]["volumes"]
    }
    for service in ("prometheus", "alertmanager"):
        (config_flag,) = SERVICES[service]["command"]
        assert config_flag.partition("=")[2] in mounted


def test_the_dockerfile_is_multi_stage_pinned_non_root_and_healthchecked() -> None:
    images = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert len(images) == 2
    for image in images:
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", image), image
    assert re.search(r"^USER detector$", DOCKERFILE, re.M)
    assert 'ENTRYPOINT ["stream-detect"]' in DOCKERFILE
    assert "COPY configs /etc/stream-detect" in DOCKERFILE
    # Dependencies are installed before the source is copied in.
    assert DOCKERFILE.index("-r requirements.txt") < DOCKERFILE.index("COPY stream_detect")
    assert "HEALTHCHECK" in DOCKERFILE
    for copied in re.findall(r"^COPY (?!--)(\S+)", DOCKERFILE, re.M):
        assert (ROOT / copied).exists(), copied


def test_the_dashboard_plots_only_metrics_the_detector_exports() -> None:
    registry = CollectorRegistry()
    metrics = RunMetrics(registry)
    metrics.observe_counts(
        {
            name: 1
            for name in (
                "events",
                "alerts",
                "bad_records",
                "feedback_labels",
                "retunes",
                "checkpoints",
                "alertmanager_sent",
                "alertmanager_dropped",
            )
        }
    )
    metrics.observe_gauges(
        {
            name: 1.0
            for name in (
                "log_epsilon",
                "f1",
                "models_active",
                "learned_events",
                "source_lag",
                "last_turn_timestamp_seconds",
            )
        },
        {"anomaly": 1, "normal": 2},
    )
    metrics.observe_keys(["a"], [1.0], [True], now=1.0)
    exported = set(re.findall(r"^(stream_detect_\w+)", generate_latest(registry).decode(), re.M))
    dashboard = json.loads((ROOT / "configs" / "grafana-dashboard.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"stream_detect_\w+", target["expr"])
    }
    assert used and used <= exported, used - exported


@pytest.mark.slow
def test_the_image_layers_install_into_a_fresh_environment(tmp_path: Path) -> None:
    """The Dockerfile's steps, in a fresh venv: dependencies, then the wheel, then the command."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        # Byte-compiling the dependencies (scipy above all) is most of an install's time,
        # and is not what is checked: that the layers resolve, install and run.
        "--no-compile",
    ]
    requirements = tmp_path / "requirements.txt"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements.write_text("\n".join(project["dependencies"]) + "\n")
    subprocess.run([*pip, "-r", str(requirements)], check=True, capture_output=True, timeout=900)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("stream_detect-*.whl")
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, capture_output=True, timeout=300)
    shown = subprocess.run(
        [str(venv / "bin" / "stream-detect"), "run", "--help"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert "--http" in shown.stdout
    # The producer of the compose stack imports what the image holds.
    subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import kafka, stream_detect.sidecar"],
        check=True,
        timeout=120,
        cwd=tmp_path,
    )
