"""The README's commands and examples stay true."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
CI_SCRIPT = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")


def test_the_python_example_runs_and_finds_the_alert() -> None:
    section = README.split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code.group(1), "README.md", "exec"), {})
    assert printed.getvalue().startswith("1 {'cpu':")


def test_ci_runs_exactly_the_readme_test_command() -> None:
    commands = re.findall(r"^((?:bash \.ci/programs && )?python3 -m venv .*)$", README, re.M)
    test_command = [c for c in commands if "pytest" in c]
    assert len(test_command) == 1
    assert test_command[0] in CI_SCRIPT.splitlines()


def test_the_readme_names_every_subcommand() -> None:
    from stream_detect.cli import COMMANDS

    for name in COMMANDS:
        assert f"stream-detect {name}" in README


def test_the_config_excerpt_is_taken_from_the_real_file() -> None:
    excerpt = re.search(r"```toml\n# (configs/\S+) \(abridged\)\n(.*?)```", README, re.S)
    assert excerpt is not None
    real = (Path(__file__).resolve().parents[1] / excerpt.group(1)).read_text(encoding="utf-8")
    for line in excerpt.group(2).splitlines():
        assert line in real.splitlines()


def test_the_organisation_section_names_every_module_and_only_real_ones() -> None:
    package = Path(__file__).resolve().parents[1] / "stream_detect"
    section = README.split("## How the code is organised", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(?:[a-z_]+/)?([a-z_]+\.py)`", section))
    modules = {
        path.name
        for path in package.rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py") and path.parent.name != "commands"
    }
    assert modules - named == set(), "modules the README's organisation section does not name"
    assert named - modules == set(), "names in the organisation section that are not modules"
    commands = {path.stem for path in (package / "commands").glob("*.py")} - {"__init__"}
    for command in commands:
        assert f"`{command}`" in section


def test_the_output_table_names_every_result_field_in_order() -> None:
    from stream_detect.results import RESULT_FIELDS

    section = README.split("### Output", 1)[1].split("\n### ", 1)[0]
    named = re.findall(r"^\| `([a-z_]+)` \|", section, re.M)
    assert tuple(named) == RESULT_FIELDS
