"""Tests of stream_detect.config: flags and keys from the settings fields, precedence, errors.

The per-field tests are parametrized over ``dataclasses.fields`` of every
settings class, so a new field is tested (and must work as a flag and as a
key) without anyone remembering to add it here. The example configs are
globbed, so a new example is loaded and checked automatically.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from stream_detect.config import ALL_SETTINGS, read_config_file, settings_from_mapping
from stream_detect.errors import ConfigError
from stream_detect.flags import add_settings_arguments, load_settings
from stream_detect.settings import DetectorSettings, RunSettings, check_run_with_detector
from stream_detect.validation import specs_by_name

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXAMPLES = sorted(CONFIGS.glob("*.toml"))

FIELDS = [(cls, field) for cls in ALL_SETTINGS for field in dataclasses.fields(cls)]
FIELD_IDS = [f"{cls.__name__}.{field.name}" for cls, field in FIELDS]

#: Samples that cannot be derived from the default and the rules: (value, other keys it needs).
SPECIAL_SAMPLES: dict[str, tuple[Any, dict[str, Any]]] = {
    "model": ("full", {}),
    "model_params": ({"n_trees": 3, "seed": 1}, {"model": "river:HalfSpaceTrees"}),
    "transforms": ({"bytes": "root:2", "cpu": "log:1"}, {}),
    "direction": ({"cpu": "high", "free": "low"}, {}),
    "features": (("cpu", "bytes"), {}),
    "kafka": ({"client_id": "detector-1", "security_protocol": "SSL"}, {}),
    "derived": ({"cpu_mean": {"of": "cpu", "kind": "moving_mean", "k": 12}}, {}),
    "time_zone": ("Europe/Berlin", {}),
    "alerts_per_day": (5.0, {"events_per_day": 1440.0}),
}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="test")
    add_settings_arguments(parser)
    return parser


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def is_cli(field: dataclasses.Field[Any]) -> bool:
    return bool(field.metadata.get("cli", True))


def sample(cls: type[Any], field: dataclasses.Field[Any]) -> tuple[Any, dict[str, Any]]:
    """A valid value other than the default, and other keys it needs to be valid."""
    if field.name in SPECIAL_SAMPLES:
        return SPECIAL_SAMPLES[field.name]
    rules, default = field.metadata, field.default
    assert "pattern" not in rules, f"add a sample for {field.name} to SPECIAL_SAMPLES"
    if "choices" in rules:
        return next(c for c in rules["choices"] if c != default), {}
    if isinstance(default, bool):
        return not default, {}
    hint = typing.get_type_hints(cls)[field.name]
    members = [m for m in typing.get_args(hint) if m is not type(None)] or [hint]
    kind = members[0]
    if kind is int:
        value = default + 1
    elif kind is float:
        value = 2.0 * default if default else float(rules.get("min", 0.0)) + 2.5
    elif kind is str:
        return f"sample-{field.name}", {}
    else:
        raise AssertionError(f"add a sample for {field.name} ({hint}) to SPECIAL_SAMPLES")
    if "max" in rules:
        value = min(value, rules["max"])
    assert value != default
    return value, {}


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return json.dumps(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_text(values: dict[str, Any]) -> str:
    """A TOML document for flat keys and one level of tables."""
    lines = [f"{k} = {toml_value(v)}" for k, v in values.items() if not isinstance(v, dict)]
    for key, table in values.items():
        if isinstance(table, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def load(
    tmp_path: Path, toml: str | None = None, cli: Sequence[str] = ()
) -> tuple[RunSettings, DetectorSettings]:
    argv = list(cli)
    if toml is not None:
        path = tmp_path / "settings.toml"
        path.write_text(toml, encoding="utf-8")
        argv = ["--config", str(path), *argv]
    return load_settings(make_parser().parse_args(argv))


def effective(settings: tuple[Any, ...], name: str) -> Any:
    for instance in settings:
        if hasattr(instance, name):
            return getattr(instance, name)
    raise AttributeError(name)


def expected_value(name: str, value: Any) -> Any:
    if name == "transforms":
        from stream_detect.transforms import parse_transform

        return {feature: parse_transform(spec).spec for feature, spec in value.items()}
    return value


# -- every field is a flag and a key --------------------------------------------------------


def test_field_names_are_unique_across_settings_classes() -> None:
    names = [field.name for _, field in FIELDS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(("cls", "field"), FIELDS, ids=FIELD_IDS)
def test_every_field_is_a_config_key(
    tmp_path: Path, cls: type[Any], field: dataclasses.Field[Any]
) -> None:
    value, needs = sample(cls, field)
    settings = load(tmp_path, toml_text({**needs, field.name: value}))
    assert effective(settings, field.name) == expected_value(field.name, value)
    assert effective(load(tmp_path), field.name) == field.default


@pytest.mark.parametrize(("cls", "field"), FIELDS, ids=FIELD_IDS)
def test_every_field_but_tables_is_a_flag(
    tmp_path: Path, cls: type[Any], field: dataclasses.Field[Any]
) -> None:
    value, needs = sample(cls, field)
    parser = make_parser()
    if not is_cli(field):
        if field.name == "direction":
            # A table whose flag adds one FEATURE=WORD entry at a time, like --transform.
            assert parser._option_string_actions["--direction"].dest == "direction"
            assert isinstance(parser._option_string_actions["--direction"], argparse._AppendAction)
            return
        assert flag(field.name) not in parser._option_string_actions
        return
    action = parser._option_string_actions[flag(field.name)]
    assert action.default is None  # "not given" must be told apart from "given"
    assert action.help is not None and "default" in action.help
    if isinstance(value, bool):
        argv = [flag(field.name) if value else "--no-" + flag(field.name)[2:]]
    elif isinstance(value, tuple):
        argv = [flag(field.name), ",".join(value)]
    else:
        argv = [flag(field.name), str(value)]
    cli_needs = [a for k, v in needs.items() for a in (flag(k), str(v))]
    settings = load(tmp_path, cli=[*cli_needs, *argv])
    assert effective(settings, field.name) == value


def test_the_parser_has_no_flag_without_a_field() -> None:
    cli_fields = {field.name for _, field in FIELDS if is_cli(field)}
    bools = {field.name for _, field in FIELDS if isinstance(field.default, bool)}
    expected = {flag(name) for name in cli_fields} | {"--no-" + flag(n)[2:] for n in bools}
    expected |= {"-h", "--help", "--config", "--transform", "--derive", "--direction"}
    # Removed settings keep a hidden flag that says what replaced them.
    expected |= {"--contamination", "--relearn-after"}
    assert set(make_parser()._option_string_actions) == expected


def test_help_shows_the_dataclass_defaults() -> None:
    text = " ".join(make_parser().format_help().split())
    assert "--batch-size N events scored together" in text
    assert "(default: 4096)" in text
    assert "--summary, --no-summary print a JSON summary to stderr at exit (default: true)" in text
    assert "--checkpoint CHECKPOINT checkpoint file (JSON), restored at start if present" in text
    assert "(default: none)" in text


def test_flags_for_one_class_only() -> None:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, RunSettings)
    assert "--batch-size" in parser._option_string_actions
    assert "--model" not in parser._option_string_actions
    assert "--transform" not in parser._option_string_actions


# -- precedence: command line > file > default --------------------------------------------------


def test_precedence_cli_over_file_over_default(tmp_path: Path) -> None:
    toml = 'batch_size = 512\nmodel = "full"\nsummary = false\n'
    run, detector = load(tmp_path, toml, ["--batch-size", "7"])
    assert run.batch_size == 7  # flag beats file
    assert detector.model == "full"  # file beats default
    assert run.summary is False
    assert run.max_latency_ms == 100.0  # default
    run, _ = load(tmp_path, toml, ["--summary"])
    assert run.summary is True


def test_transform_flags_add_to_and_override_the_table(tmp_path: Path) -> None:
    toml = '[transforms]\nbytes = "log"\nlatency = "sqrt"\n'
    _, detector = load(tmp_path, toml, ["--transform", "latency=log:1", "--transform", "q=root:3"])
    assert detector.transforms == {"bytes": "log", "latency": "log:1", "q": "root:3"}


def test_none_on_the_command_line_unsets_a_file_value(tmp_path: Path) -> None:
    toml = 'checkpoint = "state/x.json"\nlog_epsilon = -12.5\n'
    run, detector = load(tmp_path, toml)
    assert (run.checkpoint, detector.log_epsilon) == ("state/x.json", -12.5)
    run, detector = load(tmp_path, toml, ["--checkpoint", "none", "--log-epsilon", "None"])
    assert (run.checkpoint, detector.log_epsilon) == (None, None)


def test_integers_are_numbers_and_features_may_be_a_string(tmp_path: Path) -> None:
    run, detector = load(tmp_path, 'max_latency_ms = 50\nfeatures = "cpu, mem"\n')
    assert run.max_latency_ms == 50.0 and isinstance(run.max_latency_ms, float)
    assert detector.features == ("cpu", "mem")


def test_a_config_serves_commands_that_load_one_class(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('batch_size = 9\nmodel = "full"\n', encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, DetectorSettings)
    (detector,) = load_settings(parser.parse_args(["--config", str(path)]), (DetectorSettings,))
    assert detector.model == "full"
    path.write_text("batch_size = 0\n", encoding="utf-8")  # still checked
    with pytest.raises(ConfigError, match="batch_size"):
        load_settings(parser.parse_args(["--config", str(path)]), (DetectorSettings,))


def test_a_namespace_may_hold_values_that_are_not_text() -> None:
    args = argparse.Namespace(config=None, batch_size=7, summary=False, features=["a", "b"])
    run, detector = load_settings(args)
    assert (run.batch_size, run.summary, detector.features) == (7, False, ("a", "b"))


# -- errors name the key, the value and what was expected -----------------------------------------

# fmt: off
ERRORS: list[tuple[str, str | None, list[str], str, Any, str]] = [
    # (id, toml, cli, key, value, part of the expectation)
    ("unknown-key", "batch_sise = 5\n", [], "batch_sise", 5, "did you mean 'batch_size'?"),
    ("unknown-dashed-key", "max-keys = 5\n", [], "max-keys", 5, "did you mean 'max_keys'?"),
    ("unknown-table", "[run]\nbatch_size = 5\n", [], "run", {"batch_size": 5},
     "settings are top-level keys: write batch_size above any [table]"),
    ("table-of-other-keys", "[run]\nbatch = 5\n", [], "run", {"batch": 5}, "known keys:"),
    ("text-for-int", 'batch_size = "7"\n', [], "batch_size", "7", "an integer >= 1"),
    ("float-for-int", "batch_size = 7.5\n", [], "batch_size", 7.5, "an integer >= 1"),
    ("bool-for-int", "min_samples = true\n", [], "min_samples", True, "an integer >= 1"),
    ("bool-for-float", "log_epsilon = false\n", [], "log_epsilon", False, "a number"),
    ("int-for-bool", "summary = 1\n", [], "summary", 1, "true or false"),
    ("nan", "log_epsilon = nan\n", [], "log_epsilon", math.nan, "a finite number"),
    ("not-a-list", "features = 5\n", [], "features", 5, "feature names"),
    ("empty-name", 'features = "a,,b"\n', [], "features", "a,,b", "no empty names"),
    ("repeated", 'features = ["a", "a"]\n', [], "features", ["a", "a"], "'a' is repeated"),
    ("empty-string", 'key_field = ""\n', [], "key_field", "", "a non-empty string"),
    ("below-min", "batch_size = 0\n", [], "batch_size", 0, "an integer >= 1"),
    ("above-max", "log_tail_epsilon = 0.6\n", [], "log_tail_epsilon", 0.6, "a number <= 0.0"),
    ("removed-key", "contamination = 0.01\n", [], "contamination", 0.01, "log_tail_epsilon"),
    ("renamed-key", "relearn_after = 25\n", [], "relearn_after", 25, "now accept_after"),
    ("bad-direction", '[direction]\ncpu = "up"\n', [], "direction.cpu", "up", "high, low"),
    ("direction-no-eq", None, ["--direction", "cpu"], "direction", "cpu", "FEATURE=high"),
    ("removed-flag", None, ["--contamination", "0.01"], "contamination", "0.01",
     "log_tail_epsilon"),
    ("half-life", "half_life = 0.5\n", [], "half_life", 0.5, "a number >= 1.0, or none"),
    ("choice", 'flagged = "drop"\n', [], "flagged", "drop", "'exclude', 'clip', 'learn'"),
    ("choice-typo", 'emit = "alert"\n', [], "emit", "alert", "did you mean 'alerts'?"),
    ("pattern", 'model = "gauss"\n', [], "model", "gauss",
     "diagonal, full, or river:NAME with NAME one of HalfSpaceTrees, LODA"),
    ("table-not-table", 'transforms = "x=log"\n', [], "transforms", "x=log", "a table"),
    ("spec-not-text", "[transforms]\nx = 5\n", [], "transforms.x", 5, "text in quotes"),
    ("bad-spec", '[transforms]\nx = "cube"\n', [], "transforms.x", "cube", "sqrt"),
    ("datetime-param", "[model_params]\nt = 1979-05-27\n", [], "model_params.t", None, "a table"),
    ("cli-not-a-number", None, ["--batch-size", "seven"], "batch_size", "seven", "an integer"),
    ("cli-below-min", None, ["--min-samples", "0"], "min_samples", 0, "an integer >= 1"),
    ("cli-choice", None, ["--format", "xml"], "format", "xml", "'auto', 'json', 'csv'"),
    ("transform-no-eq", None, ["--transform", "bytes"], "transform", "bytes", "FEATURE=SPEC"),
    ("transform-no-name", None, ["--transform", "=log"], "transform", "=log", "FEATURE=SPEC"),
    ("transform-twice", None, ["--transform", "x=log", "--transform", "x=sqrt"], "transform",
     "x=sqrt", "'x' is repeated"),
    ("transform-bad-spec", None, ["--transform", "x=log:e"], "transforms.x", "log:e", "log:C"),
    ("full-min-samples", None, ["--model", "full", "--min-samples", "1"], "min_samples", 1,
     "d + 1 for d features is enforced once the features are known"),
    ("river-checkpoint", None, ["--model", "river:HalfSpaceTrees", "--checkpoint", "s.json"],
     "checkpoint", "s.json",
     "no checkpoint with a river:* model (river models cannot be saved without pickle)"),
    ("river-clip", None, ["--model", "river:HalfSpaceTrees", "--flagged", "clip"], "flagged",
     "clip", "exclude or learn with a river:* model"),
    ("river-unknown", None, ["--model", "river:HalfSpaceTree"], "model", "river:HalfSpaceTree",
     "did you mean 'HalfSpaceTrees'?"),
    ("river-not-a-detector", None, ["--model", "river:QuantileFilter"], "model",
     "river:QuantileFilter", "unsupervised river.anomaly detector"),
    ("river-param", 'model = "river:HalfSpaceTrees"\n[model_params]\nn_tree = 3\n', [],
     "model_params.n_tree", 3, "did you mean 'n_trees'?"),
    ("river-param-kind", 'model = "river:LODA"\n[model_params]\nn_bins = "ten"\n', [],
     "model_params.n_bins", "ten", "a value like the default 10 of river.anomaly.LODA"),
    ("river-param-value", 'model = "river:HalfSpaceTrees"\n[model_params]\nlimits = 5\n', [],
     "model_params", {"limits": 5}, "parameters that river.anomaly.HalfSpaceTrees accepts"),
    ("params-without-river", "[model_params]\nn_trees = 3\n", [], "model_params",
     {"n_trees": 3}, 'no [model_params] table with model = "diagonal"'),
    ("label-as-feature", None, ["--features", "cpu,label"], "features", "cpu,label",
     "features other than 'label', the label_field"),
    ("key-as-feature", None, ["--features", "cpu,host", "--key-field", "host"], "features",
     "cpu,host", "the key_field"),
    ("transform-of-no-feature", '[transforms]\ncpus = "log"\n', ["--features", "cpu,mem"],
     "transforms.cpus", "cpus", "a feature named in features (cpu, mem) (did you mean 'cpu'?)"),
    ("small-buffer", "validation_size = 5\n", [], "validation_size", 5,
     f"an integer >= min_negative_labels = {DetectorSettings().min_negative_labels}"),
    ("labels-on-stdin", None, ["--labels", "-"], "labels", "-", "stdin carries one stream"),
]
# fmt: on


@pytest.mark.parametrize(
    ("toml", "cli", "key", "value", "expected"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_errors_name_the_key_the_value_and_the_expectation(
    tmp_path: Path, toml: str | None, cli: list[str], key: str, value: Any, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, toml, cli)
    error = caught.value
    assert error.key == key
    assert expected in error.expected
    message = str(error)
    # The message says where the value was given: the flag, or the key and the file.
    root = key.partition(".")[0]
    flag = "--transform" if root == "transforms" else "--" + root.replace("_", "-")
    if flag in cli:
        assert error.flag == flag and message.startswith(f"option {flag}: ")
    else:
        path = str(tmp_path / "settings.toml")
        assert error.source == path and message.startswith(f"config key {key} in {path}: ")
    assert expected in message
    if value is None:
        return  # a value that has no short literal (a TOML date)
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(error.value)
    else:
        assert error.value == value
        assert repr(value) in message


def test_a_missing_config_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError) as caught:
        load_settings(make_parser().parse_args(["--config", missing]))
    assert (caught.value.key, caught.value.value) == ("config", missing)
    assert caught.value.expected == "an existing TOML file"


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, 'model = "full"\nbatch_size = \n')
    assert caught.value.key == "config"
    assert caught.value.value == str(tmp_path / "settings.toml")
    assert "valid TOML" in caught.value.expected and "line 2" in caught.value.expected


def test_a_directory_or_bad_encoding_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config key config: .*a readable TOML file"):
        read_config_file(tmp_path)
    path = tmp_path / "latin1.toml"
    path.write_bytes('label_field = "état"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="a UTF-8 encoded TOML file"):
        read_config_file(path)


def test_a_bad_file_value_is_reported_even_when_a_flag_overrides_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        load(tmp_path, "batch_size = 0\n", ["--batch-size", "5"])


def test_settings_built_in_code_check_themselves() -> None:
    RunSettings()
    DetectorSettings()
    with pytest.raises(ConfigError, match="config key min_samples: got 0"):
        DetectorSettings(min_samples=0)
    with pytest.raises(ConfigError, match="config key checkpoint"):
        check_run_with_detector(
            RunSettings(checkpoint="s.json"), DetectorSettings(model="river:LODA")
        )


# -- settings as data ------------------------------------------------------------------------


def settings_dict(*instances: Any) -> dict[str, Any]:
    """All fields of ``instances`` in one dict, keyed as in a config file."""
    out: dict[str, Any] = {}
    for instance in instances:
        out.update(dataclasses.asdict(instance))
    return out


def test_settings_as_json_build_the_same_settings() -> None:
    run = RunSettings(batch_size=7, labels="file:l.jsonl")
    detector = DetectorSettings(
        features=("a", "b"),
        model="river:HalfSpaceTrees",
        model_params={"n_trees": 3, "limits": {"a": [0.0, 1.0]}},
        transforms={"a": "log"},
    )
    data = json.loads(json.dumps(settings_dict(run, detector)))
    assert data["features"] == ["a", "b"] and data["checkpoint"] is None
    assert set(data) == {field.name for _, field in FIELDS}
    assert settings_from_mapping(data) == (run, detector)


def test_a_field_name_in_two_settings_classes_is_refused() -> None:
    with pytest.raises(TypeError, match="both RunSettings and _Other"):
        specs_by_name([RunSettings, _Other])


@dataclasses.dataclass(frozen=True)
class _Other:
    batch_size: int = dataclasses.field(default=1, metadata={"help": "clash"})


# -- the example configs ---------------------------------------------------------------------------


def test_the_documented_examples_exist() -> None:
    names = {path.name for path in EXAMPLES}
    assert {
        "stdin-json.toml",
        "keyed-hosts.toml",
        "full-covariance.toml",
        "river-halfspacetrees.toml",
        "drift.toml",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_every_example_config_loads(path: Path) -> None:
    settings = load_settings(make_parser().parse_args(["--config", str(path)]))
    data = settings_dict(*settings)
    # Examples are copied and run anywhere: every path in them stays below the working directory.
    for key in ("source", "sink", "dead_letter", "labels", "checkpoint"):
        value = data[key]
        if value is None or value in ("-", "stderr"):
            continue
        location = Path(value.removeprefix("file:").partition("?")[0])
        assert not location.is_absolute() and ".." not in location.parts, (key, value)


def test_the_minimal_example_spells_out_every_default() -> None:
    path = CONFIGS / "stdin-json.toml"
    assert load_settings(make_parser().parse_args(["--config", str(path)])) == (
        RunSettings(),
        DetectorSettings(),
    )
    text = path.read_text(encoding="utf-8")
    for _, field in FIELDS:
        assert field.name in text, f"{path.name} does not mention {field.name}"


def test_the_examples_show_what_they_are_named_for() -> None:
    def settings(name: str) -> dict[str, Any]:
        args = make_parser().parse_args(["--config", str(CONFIGS / name)])
        return settings_dict(*load_settings(args))

    keyed = settings("keyed-hosts.toml")
    assert keyed["key_field"] and keyed["id_field"] and keyed["labels"] and keyed["checkpoint"]
    full = settings("full-covariance.toml")
    assert full["model"] == "full" and full["transforms"]
    drift = settings("drift.toml")
    assert drift["half_life"] and drift["accept_after"] and drift["flagged"] == "clip"


def test_the_river_example_builds_its_river_model() -> None:
    river_anomaly = pytest.importorskip("river.anomaly")
    args = make_parser().parse_args(["--config", str(CONFIGS / "river-halfspacetrees.toml")])
    _, detector = load_settings(args)
    assert detector.model == "river:HalfSpaceTrees" and detector.model_params is not None
    assert set(detector.model_params) == {"n_trees", "height", "window_size", "seed"}
    name = detector.model.removeprefix("river:")
    model = getattr(river_anomaly, name)(**detector.model_params)
    assert model.n_trees == detector.model_params["n_trees"]
    for i in range(30):
        model.learn_one({"cpu": (i % 10) / 10, "mem": 0.5})
    assert math.isfinite(model.score_one({"cpu": 0.5, "mem": 0.5}))
