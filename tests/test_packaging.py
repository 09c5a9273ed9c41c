"""What ``pip install .`` (and so the container image) ships: every module and the type marker."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_module_and_the_type_marker(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("stream_detect-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "stream_detect").rglob("*.py")}
    assert modules <= names
    assert "stream_detect/py.typed" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "stream-detect = stream_detect.cli:main"
        in zipfile.ZipFile(wheel).read(entry_points).decode()
    )


def test_the_dockerfile_copies_what_the_package_needs() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    for needed in ("pyproject.toml", "README.md", "stream_detect"):
        assert needed in dockerfile
        assert (ROOT / needed).exists()
