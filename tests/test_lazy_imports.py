"""Start-up loads only what the command at hand needs: heavy optional packages stay unloaded.

Each check runs a fresh interpreter, since this test process has long
imported everything; it looks at ``sys.modules`` after the command, so it
fails as soon as a module-level import of one of these packages creeps back.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Needed only by some models, plots, sources, sinks or the HTTP endpoint.
HEAVY = (
    "river",
    "matplotlib",
    "scipy",
    "kafka",
    "prometheus_client",
    "http.server",
    "stream_detect.server",
    "stream_detect.metrics",
)

_PROBE = """
import json, runpy, sys
sys.argv = ["stream-detect", *{argv!r}]
try:
    {body}
except SystemExit:
    pass
sys.__stdout__.flush()
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def loaded_modules(body: str, argv: list[str], stdin: bytes = b"") -> set[str]:
    """The modules a fresh interpreter holds after running ``body``."""
    code = _PROBE.format(argv=argv, body=body)
    done = subprocess.run(
        [sys.executable, "-c", code], input=stdin, capture_output=True, check=True, timeout=120
    )
    return set(json.loads(done.stderr.decode().strip().splitlines()[-1]))


def heavy_in(modules: set[str]) -> list[str]:
    """The packages of :data:`HEAVY` that ``modules`` holds (or holds a submodule of)."""
    return [
        name
        for name in HEAVY
        if any(module == name or module.startswith(f"{name}.") for module in modules)
    ]


def test_importing_the_command_line_loads_neither_heavy_packages_nor_numpy() -> None:
    modules = loaded_modules("import stream_detect.cli", [])
    assert heavy_in(modules) == []
    assert "numpy" not in modules
    assert "stream_detect.pipeline" not in modules


@pytest.mark.parametrize(
    "argv", [["run", "--help"], ["fit", "--help"], ["inspect", "--help"], ["--version"]]
)
def test_help_loads_no_heavy_package(argv: list[str]) -> None:
    body = "runpy.run_module('stream_detect', run_name='__main__')"
    modules = loaded_modules(body, argv)
    assert heavy_in(modules) == []


def test_a_run_without_an_http_endpoint_loads_no_heavy_package() -> None:
    body = "runpy.run_module('stream_detect', run_name='__main__')"
    modules = loaded_modules(body, ["run", "--no-summary"], stdin=b'{"a": 1}\n{"a": 2}\n')
    assert "stream_detect.pipeline" in modules  # the run did happen
    assert heavy_in(modules) == []


#: What only some runs use: a plain run from stdin with the defaults imports none of them.
RARE = (
    "csv",  # CSV streams
    "difflib",  # a misspelt setting
    "stream_detect.records.csv_rows",
    "stream_detect.keyed_bank",  # --key-field
    "stream_detect.keyed_arrays",
    "stream_detect.key_slots",
    "stream_detect.keyed_foresight",
    "stream_detect.keyed_teaching",
    "stream_detect.likelihood",  # likelihood = true
    "stream_detect.likelihood_layer",
    "stream_detect.transform_suggestions",  # a skewed feature's check, after 2,000 events
    "stream_detect.skewness",
    "stream_detect.derived",  # [derived]
    "stream_detect.derived_specs",
    "stream_detect.timestamps",  # timestamps, seasonal features, a named time zone
    "stream_detect.event_rate",
    "stream_detect.budget",  # --alerts-per-day
    "stream_detect.fitted_model",  # --initial-model
    "stream_detect.model_dict",
    "stream_detect.row_transforms",
    "stream_detect.threshold_choice",  # labels
    "stream_detect.threshold",
    "stream_detect.confusion",
    "stream_detect.state",  # --checkpoint
    "stream_detect.detector_state",
    "stream_detect.checkpoint_rules",
    "stream_detect.series_state_rules",
    "stream_detect.checkpoint_lock",
    "stream_detect.atomic",
    "stream_detect.river_params",  # river:* models
    "stream_detect.precision",  # the full model
    "stream_detect.tails",  # the first row in doubt
    "stream_detect.progress",  # --progress on a terminal
    "stream_detect.sources.awaited",  # a labels file not there yet
    "stream_detect.missing_times",  # --timestamp-field
    "stream_detect.refused_rows",  # rows a transform refuses
    "stream_detect.warmup_evictions",  # keyed runs
)


def test_a_plain_run_loads_none_of_what_only_some_runs_use() -> None:
    # Start-up CPU: each of these was once imported by every run.
    body = "runpy.run_module('stream_detect', run_name='__main__')"
    modules = loaded_modules(body, ["run", "--no-summary"], stdin=b'{"a": 1}\n{"a": 2}\n')
    assert "stream_detect.pipeline" in modules  # the run did happen
    assert [name for name in RARE if name in modules] == []


def test_a_keyed_run_does_load_the_keyed_bank() -> None:
    # The other side of the coin: the run that needs the bank imports it when it makes it.
    body = "runpy.run_module('stream_detect', run_name='__main__')"
    argv = ["run", "--no-summary", "--key-field", "k"]
    modules = loaded_modules(body, argv, stdin=b'{"k": "x", "a": 1}\n')
    assert "stream_detect.keyed_bank" in modules


def test_run_help_loads_no_numpy() -> None:
    body = "runpy.run_module('stream_detect', run_name='__main__')"
    modules = loaded_modules(body, ["run", "--help"])
    assert "numpy" not in modules


def test_a_run_with_an_http_endpoint_does_load_the_metrics() -> None:
    # The other side of the coin: the probe sees a lazily imported package once it is needed.
    body = "runpy.run_module('stream_detect', run_name='__main__')"
    argv = ["run", "--no-summary", "--http", "127.0.0.1:0"]
    modules = loaded_modules(body, argv, stdin=b'{"a": 1}\n')
    assert "prometheus_client" in modules
    assert "stream_detect.server" in modules


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("2", "2")])
def test_the_command_line_runs_blas_on_one_thread_unless_told_otherwise(
    given: str | None, expected: str
) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    probe = "import os, stream_detect.cli; print(os.environ['OPENBLAS_NUM_THREADS'])"
    shown = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == expected
