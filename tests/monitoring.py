"""Real Prometheus and Alertmanager for the tests, started on free loopback ports.

The programs come from Debian's ``prometheus`` and ``prometheus-alertmanager``
packages; tests that need one skip with the reason when it is not installed.
Each is started with its own temporary config and data folder and stopped by
the pid it was started with.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def need(program: str | None, package: str) -> str:
    """The program's path, or skip the test naming the package to install."""
    if program is None:
        pytest.skip(f"{package} is not installed (apt-get install -y {package}); .ci/programs does")
    return program


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = check()
        except (urllib.error.URLError, OSError, ValueError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.2)


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as reply:
        body: bytes = reply.read()
    return body


def http_json(url: str, data: Any = None, method: str | None = None) -> Any:
    body = None if data is None else orjson.dumps(data)
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        return orjson.loads(reply.read() or b"null")


class Program:
    """A started program: its port, and a stop that ends exactly its pid.

    ``url`` ends with ``prefix``, the path the program serves everything under.
    """

    def __init__(self, args: list[str], port: int, log: Path, prefix: str = "") -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}{prefix}"
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        wait_for(self._ready, f"{args[0]} to be ready on port {port} (log: {log})")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"{self.process.args[0]} exited: {self.log.read_text()[-2000:]}")
        return http_get(self.url + "/-/ready") is not None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def running_prometheus(folder: Path, targets: list[str]) -> Iterator[Program]:
    """Prometheus scraping ``targets`` (``HOST:PORT``) every second."""
    binary = need(PROMETHEUS, "prometheus")
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    target_list = ", ".join(f'"{target}"' for target in targets)
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: detector\n"
        f"    static_configs:\n      - targets: [{target_list}]\n"
    )
    port = free_port()
    program = Program(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        port,
        folder / "prometheus.log",
    )
    try:
        yield program
    finally:
        program.stop()


def start_alertmanager(folder: Path, port: int | None = None, route_prefix: str = "") -> Program:
    """Alertmanager with one receiver that goes nowhere; clustering off.

    With ``route_prefix`` (``/am``), it serves its API and UI under that path.
    """
    binary = need(ALERTMANAGER, "prometheus-alertmanager")
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: nowhere\n  group_wait: 1s\n  group_interval: 1s\n"
        "receivers:\n  - name: nowhere\n"
    )
    port = port or free_port()
    return Program(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            *([f"--web.route-prefix={route_prefix}"] if route_prefix else []),
        ],
        port,
        folder / "alertmanager.log",
        route_prefix,
    )


def prometheus_value(prometheus: Program, query: str) -> float | None:
    """The single value an instant query returns, or None while it returns none."""
    url = prometheus.url + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    result = http_json(url)["data"]["result"]
    return float(result[0]["value"][1]) if result else None
