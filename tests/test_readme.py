"""The README's commands and examples stay true."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

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


def test_every_test_the_readme_names_exists() -> None:
    root = Path(__file__).resolve().parents[1]
    current = None
    named = 0
    for match in re.finditer(r"`(tests/[a-z_]+\.py)?(?:::([a-z0-9_]+))?`", README):
        path, test = match.groups()
        if path:
            current = root / path
            assert current.is_file(), path
        if test:
            assert current is not None and f"def {test}(" in current.read_text(encoding="utf-8")
            named += 1
    assert named > 10


def _run_flag_table() -> list[tuple[str, str]]:
    section = README.split("## Streaming: `stream-detect run`", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| (`--[^|]*) \| ([^|]*) \|", section, re.M)
    assert len(rows) > 20
    return rows


def test_the_run_flag_table_names_real_flags_with_their_defaults() -> None:
    from stream_detect.settings import DetectorSettings, RunSettings

    defaults = {**vars(RunSettings()), **vars(DetectorSettings())}
    checked = 0
    for flags_cell, default_cell in _run_flag_table():
        flags = re.findall(r"`--([a-z-]+)", flags_cell)
        values = [value.strip() for value in default_cell.split(" / ")]
        if len(values) != len(flags):
            values = [default_cell.strip()] * len(flags)
        for flag, value in zip(flags, values, strict=True):
            name = flag.replace("-", "_")
            if name.startswith("no_"):
                continue
            assert name in defaults, f"--{flag} is not a setting"
            word = re.fullmatch(r"`([a-z]+)`", value)
            if word:
                assert defaults[name] == word.group(1), flag
                checked += 1
            elif re.fullmatch(r"[0-9.e-]+", value):
                assert defaults[name] == float(value), flag
                checked += 1
            elif value in ("none", "off"):
                assert defaults[name] is None, flag
                checked += 1
    assert checked > 15


def test_the_run_flag_table_says_how_often_a_retune_is_tried_while_no_epsilon_is_set() -> None:
    from stream_detect.tuning import UNSET_RETUNE_EVERY

    (description,) = [
        row for row in re.findall(r"^\| `--retune-every`.*$", README, re.M) if "|" in row
    ]
    # tests/test_tuning.py pins the schedule this sentence describes.
    assert (
        f"While no ε is set (a river model before labels set one), the re-tune by events "
        f"comes every {UNSET_RETUNE_EVERY} events, or every N if fewer, even with "
        "`--retune-every 0`"
    ) in description


def test_the_derived_features_example_is_a_valid_config(tmp_path: Path) -> None:
    from stream_detect.config import read_config_file, settings_from_mapping

    section = README.split("### Derived features", 1)[1]
    example = re.search(r"```toml\n(.*?)```", section, re.S)
    assert example is not None
    path = tmp_path / "derived.toml"
    path.write_text(example.group(1), encoding="utf-8")
    _, detector = settings_from_mapping(read_config_file(path))
    assert detector.derived is not None and len(detector.derived) == 4


def test_the_errors_quoted_for_bad_settings_are_the_ones_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stream_detect.cli import main

    flag_error = "option --batch-size: got 0, expected an integer >= 1"
    key_error = "config key batch_size in run.toml: got 0, "
    assert f"`{flag_error}`" in README and f"`{key_error}...`" in README
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.toml").write_text("batch_size = 0\n", encoding="utf-8")
    assert main(["run", "--batch-size", "0"]) == 2
    assert capsys.readouterr().err == f"stream-detect run: error: {flag_error}\n"
    assert main(["run", "--config", "run.toml"]) == 2
    assert capsys.readouterr().err.startswith(f"stream-detect run: error: {key_error}expected")


def test_the_reloading_paragraph_names_exactly_what_a_reload_changes() -> None:
    from stream_detect.reload import RELOADABLE

    paragraph = README.split("**Reloading.**", 1)[1].split("Anything else", 1)[0]
    assert set(re.findall(r"`([a-z_]+)`", paragraph)) == RELOADABLE


def _commands_in_code_blocks(command: str) -> list[list[str]]:
    """The argument lists of every ``stream-detect COMMAND`` line in a plain code block."""
    import shlex

    found = []
    fence = None
    text = ""
    for line in README.splitlines():
        if line.lstrip().startswith("```"):
            fence = line.strip() if fence is None else None
            continue
        if fence != "```":
            continue
        text += line.removesuffix("\\")
        if line.endswith("\\"):
            continue
        if f"stream-detect {command}" not in text:
            text = ""
            continue
        words = shlex.split(text)
        text = ""
        start = words.index("stream-detect") + 1
        tail = words[start:]
        ends = [i for i, word in enumerate(tail) if word in ("|", ">")]
        args = tail[: ends[0]] if ends else tail
        if not any(word.startswith("[") for word in args):  # a synopsis, not a command
            found.append(args)
    return found


def test_every_run_command_shown_gives_valid_settings() -> None:
    from stream_detect.cli import build_parser
    from stream_detect.flags import load_settings
    from stream_detect.uris import parse_uri

    root = Path(__file__).resolve().parents[1]
    commands = _commands_in_code_blocks("run")
    assert len(commands) >= 4
    for args in commands:
        if "--config" in args:
            at = args.index("--config")
            if (root / args[at + 1]).is_file():
                args = [*args[: at + 1], str(root / args[at + 1]), *args[at + 2 :]]
            else:  # a file of the user's own (kafka.toml)
                args = args[:at] + args[at + 2 :]
        run, _ = load_settings(build_parser("run").parse_args(args))
        for key in ("source", "sink", "dead_letter", "labels"):
            value = getattr(run, key)
            if value is not None and value not in ("-", "stderr"):
                parse_uri(value, config_key=key)


def test_the_dependencies_section_names_every_dependency() -> None:
    import tomllib

    project = tomllib.loads(
        (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    )["project"]
    section = README.split("## Dependencies", 1)[1].split("\n## ", 1)[0].lower()
    table = set(re.findall(r"^\| ([a-z0-9-]+)", section, re.M))
    dev = section.split("the `dev` extra adds", 1)[1]

    def name(requirement: str) -> str:
        found = re.match(r"[A-Za-z0-9_.-]+", requirement)
        assert found is not None
        return found.group(0).lower()

    for requirement in project["dependencies"]:
        assert name(requirement) in table, requirement
    for extra, requirements in project["optional-dependencies"].items():
        for requirement in requirements:
            if extra == "dev":
                assert name(requirement) in dev, requirement
            else:
                assert name(requirement) in table, requirement


def test_the_classic_api_example_runs() -> None:
    import numpy as np

    from stream_detect import select_log_threshold

    section = README.split("## The classic API", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    rng = np.random.default_rng(0)
    y_val = np.zeros(300, dtype=int)
    y_val[:10] = 1
    X_val = rng.normal(size=(300, 2))
    X_val[:10] += 6.0
    names = {"X": rng.normal(size=(500, 2)), "X_val": X_val, "y_val": y_val}
    exec(compile(code.group(1), "README.md", "exec"), names)
    assert names["f1"] > 0.8 and 0 < names["epsilon"] < 1
    log_p = np.log(names["p_val"])
    for method in ("exact", "grid"):
        assert select_log_threshold(y_val, log_p, method=method) is not None


def test_the_percent_decoding_example_names_the_path_it_says() -> None:
    from stream_detect.uris import parse_uri

    example = re.search(r"`(file:[^`]+)` names `([^`]+)`", README)
    assert example is not None
    assert parse_uri(example.group(1)).target == example.group(2)


def test_the_feedback_label_example_joins_its_event() -> None:
    import json

    from stream_detect import DetectorSettings, Pipeline, RunSettings
    from stream_detect.testing import ListSink, ListSource

    line = re.search(r"reads JSON lines `(\{[^`]*\})`", README)
    assert line is not None
    label = json.loads(line.group(1))
    events = [{"id": f"evt-{i}", "x": float(i % 5)} for i in range(60)]
    summary = Pipeline(
        RunSettings(),
        DetectorSettings(id_field="id"),
        source=ListSource(events),
        sink=ListSink(),
        dead_letter=ListSink(),
        labels=ListSource([label]),
    ).run()
    assert summary.feedback_labels == 1 and summary.unmatched_feedback == 0


def test_the_synopses_and_the_demo_name_only_real_flags() -> None:
    from stream_detect.cli import build_parser

    section = README.split("## Batch tools", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block is not None
    replay = re.search(r"`stream-detect replay ([^`]*)`", README)
    assert replay is not None
    demo = README.split("## The demo", 1)[1].split("\n## ", 1)[0]
    synopses: dict[str, str] = {"replay": replay.group(1), "demo": demo}
    command = ""
    for line in block.group(1).splitlines():
        found = re.match(r"stream-detect (\w+)", line)
        command = found.group(1) if found else command
        synopses[command] = synopses.get(command, "") + line
    assert set(synopses) == {"fit", "evaluate", "inspect", "replay", "demo"}
    for name, synopsis in synopses.items():
        parser = build_parser(name)
        sub = next(a for a in parser._actions if a.dest == "command").choices[name]  # type: ignore[union-attr]
        known = {option for action in sub._actions for option in action.option_strings}
        for flag in re.findall(r"(--[a-z-]+)", synopsis):
            assert flag in known, f"stream-detect {name} has no {flag}"


def test_the_count_of_bad_json_kinds_is_the_tests_own() -> None:
    from hostile import BAD_JSON

    said = re.search(r"mixing (\d+) kinds of bad JSON", README)
    assert said is not None and int(said.group(1)) == len(BAD_JSON)


def test_a_csv_row_comes_back_as_the_output_section_says(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import json

    from stream_detect.cli import main

    assert "its features as the\nnumbers read: `1` comes back as `1.0`" in README
    data = tmp_path / "rows.csv"
    data.write_text("id,a,b\n0012,1,2e0\n", encoding="utf-8")
    args = ["run", "--source", f"file:{data}", "--features", "a", "--emit", "all", "--no-summary"]
    assert main(args) == 0
    (line,) = capfd.readouterr().out.splitlines()
    result = json.loads(line)
    assert (result["id"], result["a"], result["b"]) == ("0012", 1.0, "2e0")
    assert '"a":1.0' in line


def test_detector_on_arrays_scores_only_alerts_when_asked() -> None:
    import numpy as np

    from stream_detect import Detector, DetectorSettings

    assert "with\n`every_score=False` only the alerts get their `score` and `log_tail`" in README
    X = np.random.default_rng(0).normal(size=(300, 2))
    X[250] += 30.0
    some = Detector(DetectorSettings(), ("a", "b")).process(X, every_score=False)
    every = Detector(DetectorSettings(), ("a", "b")).process(X)
    np.testing.assert_array_equal(some.alert, every.alert)
    assert some.alert.sum() == 1
    unset = np.isnan(some.score)
    np.testing.assert_array_equal(unset, ~some.alert)
    np.testing.assert_array_equal(np.isnan(some.log_tail), ~some.alert)
    assert some.score[250] == every.score[250]


def test_the_alertmanager_section_names_every_option_of_its_uri() -> None:
    from stream_detect.sinks.alertmanager import ALERTMANAGER_PARAMS

    section = README.split("**Alerts to Alertmanager.**", 1)[1].split("**Operator feedback", 1)[0]
    named = set(re.findall(r"`([a-z_]+)`", section))
    assert set(ALERTMANAGER_PARAMS) <= named, set(ALERTMANAGER_PARAMS) - named


def _exposed_metric_names() -> set[str]:
    """The names /metrics shows once every series has a value, ``stream_detect_`` cut off."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from stream_detect.metrics import COUNTERS, GAUGES, PARTITION_SERIES, RunMetrics
    from stream_detect.reachability import Reachability

    registry = CollectorRegistry()
    metrics = RunMetrics(registry)
    metrics.observe_counts(dict.fromkeys(COUNTERS, 1))
    metrics.observe_gauges(dict.fromkeys(GAUGES, 1.0), {"anomaly": 1, "normal": 2})
    metrics.observe_keys(["a"], [-1.0], [True], now=1.0)
    metrics.observe_partitions({"t/0": dict.fromkeys(PARTITION_SERIES, 1.0)})
    metrics.observe_brokers({"source": True})
    sink = Reachability("alertmanager://a:9093", stream=io.StringIO())
    sink.ok()
    metrics.servers.observe({"sink": sink})
    text = generate_latest(registry).decode()
    return {
        sample.name.removeprefix("stream_detect_")
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith(("_created", "_bucket", "_count", "_sum"))
    }


def test_every_metric_the_readme_names_is_exposed() -> None:
    section = README.split("**Metrics** (`--http", 1)[1].split("**Alerts to Alertmanager.**", 1)[0]
    # The labels and their values, which the same paragraphs name.
    labels = {"client", "kind", "source", "sink", "dead_letter", "labels", "partition"}
    labels |= {"prometheus", "promql", "alertmanager", "kafka"}
    named = {
        name
        for name in re.findall(r"`([a-z][a-z0-9_]*)(?:\{[^`]*\})?`", section)
        if name not in labels and name != "stream_detect_"
    }
    named |= set(re.findall(r"`([a-z][a-z0-9_]*_total)`", README))
    assert len(named) > 20
    assert named - _exposed_metric_names() == set()


def test_fit_and_evaluate_print_the_fields_the_readme_lists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import numpy as np

    from stream_detect.cli import main

    section = README.split("## Batch tools", 1)[1].split("\n## ", 1)[0]
    fit_said = re.split(r"`fit` prints one JSON\s+object", section)[1].split("…", 1)[0]
    evaluate_said = re.split(r"`evaluate` prints", section)[1].split(";", 1)[0]
    rng = np.random.default_rng(0)
    for name in ("train", "val"):
        rows = rng.normal(size=(200, 2))
        labels = np.zeros(200, dtype=int)
        labels[:5] = 1
        rows[:5] += 8.0
        lines = ["a,b,label", *(f"{a},{b},{y}" for (a, b), y in zip(rows, labels, strict=True))]
        (tmp_path / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = tmp_path / "model.json"
    train, val = str(tmp_path / "train.csv"), str(tmp_path / "val.csv")
    assert main(["fit", train, "--val", val, "--model", "full", "--out", str(model)]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(model), val]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    for said, printed in ((fit_said, fitted), (evaluate_said, evaluated)):
        fields = re.findall(r"`([a-z_0-9]+)`", said)
        assert len(fields) >= 8
        assert set(fields) - set(printed) == set()


def test_replay_refuses_exactly_the_run_flags_the_readme_lists() -> None:
    from stream_detect.commands.replay import NOT_USED
    from stream_detect.settings import RunSettings

    section = re.split(r"so the `run` flags that say so are\s+refused", README)[1]
    listed = section.split("The same keys in a `--config` file", 1)[0]
    run_flags = {"--" + name.replace("_", "-") for name in vars(RunSettings())}
    named = set(re.findall(r"`(--[a-z-]+)`", listed)) & run_flags
    assert named == {"--" + name.replace("_", "-") for name in NOT_USED}


def test_every_bench_command_the_readme_names_exists_with_its_flags() -> None:
    root = Path(__file__).resolve().parents[1]
    commands = re.findall(r"python (bench/[a-z_]+\.py)((?: --[a-z-]+(?: [0-9]+)?)*)", README)
    assert len(commands) >= 12
    for path, flags in commands:
        source = (root / path).read_text(encoding="utf-8")
        for flag in re.findall(r"--[a-z-]+", flags):
            assert f'"{flag}"' in source, f"{path} has no {flag}"


def test_the_summary_fields_the_readme_names_are_in_a_run_summary() -> None:
    from stream_detect import DetectorSettings, Pipeline, RunSettings
    from stream_detect.summary import Summary
    from stream_detect.testing import ListSink, ListSource

    events = [{"x": float(i % 5)} for i in range(60)]
    summary = Pipeline(
        RunSettings(),
        DetectorSettings(),
        source=ListSource(events),
        sink=ListSink(),
        dead_letter=ListSink(),
    ).run()
    optional = Summary(alertmanager_not_delivered=0, already_delivered=0)
    printed = set(summary.to_dict()) | set(optional.to_dict())
    run = [
        "events",
        "bad_records",
        "blank_lines",
        "header_lines",
        "feedback_labels",
        "corrected_feedback",
        "repeated_feedback",
        "bad_feedback",
        "unmatched_feedback",
        "resumed_from",
        "bad_reason",
        "features",
        "epsilon_source",
        "evicted_in_warmup",
        "evicted_models",
        "log_epsilon",
        "f1",
        "alertmanager_not_delivered",
        "already_delivered",
    ]
    kafka = ["partitions", "partitions_restored", "by_partition"]
    for name in run + kafka:
        assert f"`{name}`" in README, name
    assert set(run) - printed == set()
    # A Kafka run's summary needs a broker; its fields are the keys run_summary.py writes.
    kafka_code = (Path(__file__).resolve().parents[1] / "stream_detect" / "kafka").joinpath(
        "run_summary.py"
    )
    written = kafka_code.read_text(encoding="utf-8")
    for name in kafka:
        assert f'"{name}"' in written, name


def test_every_flag_the_readme_names_is_a_real_one() -> None:
    from stream_detect.cli import COMMANDS, build_parser

    known = set()
    for name in COMMANDS:
        parser = build_parser(name)
        sub = next(a for a in parser._actions if a.dest == "command").choices[name]  # type: ignore[union-attr]
        known |= {option for action in sub._actions for option in action.option_strings}
    bench = Path(__file__).resolve().parents[1] / "bench"
    for script in bench.glob("*.py"):
        known |= set(re.findall(r'"(--[a-z-]+)"', script.read_text(encoding="utf-8")))
    # Other programs' flags: amtool, docker, ruff, valgrind, alertmanager (--web.route-prefix).
    known |= {"--alertmanager", "--comment", "--build", "--rm", "--check", "--tool", "--web"}
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", README))
    assert len(named) > 60
    assert named - known == set()


def test_the_summary_table_names_every_summary_field_in_order() -> None:
    from stream_detect import DetectorSettings, Pipeline, RunSettings
    from stream_detect.summary import Summary
    from stream_detect.testing import ListSink, ListSource

    section = README.split("### Summary", 1)[1].split("\n### ", 1)[0]
    named = [
        name
        for cell in re.findall(r"^\| (`[^|]*) \|", section, re.M)
        for name in re.findall(r"`([a-z_0-9]+)`", cell)
    ]
    summary = Pipeline(
        RunSettings(),
        DetectorSettings(),
        source=ListSource([{"x": float(i % 5)} for i in range(60)]),
        sink=ListSink(),
        dead_letter=ListSink(),
    ).run()
    printed = list(summary.to_dict())
    # The two fields a run has only with an Alertmanager sink or a Kafka source, in place.
    at = printed.index("features") + 1
    printed[at:at] = list(Summary(alertmanager_not_delivered=0, already_delivered=0).to_dict())[
        at : at + 2
    ]
    assert named == printed
    package = Path(__file__).resolve().parents[1] / "stream_detect"
    code = "".join(
        (package / name).read_text(encoding="utf-8")
        for name in ("summary.py", "pipeline.py", "kafka/partitioned.py")
    )
    row = section.split("| `stopped_by` |", 1)[1].split("\n", 1)[0]
    values = re.findall(r"`([a-z ,()]+)`", row)
    assert len(values) == 5
    for value in values:
        assert f'"{value}"' in code, value


def test_the_kafka_client_options_the_readme_names_are_real() -> None:
    import kafka

    known = set(kafka.KafkaConsumer.DEFAULT_CONFIG) | set(kafka.KafkaProducer.DEFAULT_CONFIG)
    table = README.split("- **The `[kafka]` table**", 1)[1].split("any other kafka-python", 1)[0]
    fetch = README.split("Consumer fetch settings", 1)[1].split("go through the", 1)[0]
    elsewhere = ["max_request_size", "max_block_ms", "metadata_max_age_ms", "max_poll_interval_ms"]
    named = re.findall(r"`([a-z_]+)`", table + fetch) + elsewhere
    assert len(named) >= 15
    for name in elsewhere:
        assert f"`{name}" in README, name
    assert set(named) - known == set()


def test_every_replay_command_shown_gives_valid_settings() -> None:
    from stream_detect.cli import build_parser
    from stream_detect.flags import load_settings

    root = Path(__file__).resolve().parents[1]
    commands = _commands_in_code_blocks("replay")
    assert len(commands) >= 1
    for args in commands:
        at = args.index("--config")
        args = [*args[: at + 1], str(root / args[at + 1]), *args[at + 2 :]]
        parsed = build_parser("replay").parse_args(args)
        _, detector = load_settings(parsed)
        # NAB's windows need the event times.
        assert parsed.windows is None or detector.timestamp_field is not None
