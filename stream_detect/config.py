"""Settings from the command line and TOML files, validated in one place.

Every field of the settings dataclasses (:mod:`stream_detect.settings`) is at
once a command-line flag and a key of a ``--config`` TOML file: flag
``--max-latency-ms`` is key ``max_latency_ms`` is field ``max_latency_ms``.
Fields marked ``cli=False`` in their metadata are config-only tables
(``[model_params]``, ``[transforms]``); ``--transform FEATURE=SPEC`` adds to
or overrides entries of the ``[transforms]`` table.

Where a value comes from, strongest first:

1. a flag given on the command line,
2. a key of the ``--config`` file,
3. the dataclass default.

A config file looks like this (every key is optional)::

    batch_size = 512
    features = ["cpu", "bytes_in"]     # or "cpu,bytes_in"
    model = "full"

    [transforms]
    bytes_in = "log:1"

Rules a user may rely on:

* Every value, from the file or from a flag, is checked by
  :func:`settings_from_mapping` before anything runs; the first problem raises
  :class:`~stream_detect.errors.ConfigError` naming the key, the value and
  what was expected. A bad value in the file is reported even when a flag
  overrides it: a broken file stays broken.
* An integer is accepted where a number is expected; a boolean is never a number.
* TOML has no null: for a field whose default may be unset (``checkpoint``,
  ``log_epsilon``, ...), the string ``"none"`` (any case) means unset, in the
  file and on the command line (``--checkpoint none`` disables a checkpoint the
  file asked for).
* Relative paths and ``file:`` URIs are relative to the working directory of
  the process, not to the config file.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import math
import re
import tomllib
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

from stream_detect.errors import ConfigError
from stream_detect.field_names import check_feature_names
from stream_detect.settings import DetectorSettings, RunSettings

__all__ = [
    "ALL_SETTINGS",
    "add_settings_arguments",
    "load_settings",
    "read_config_file",
    "settings_from_mapping",
    "settings_to_dict",
    "validate_settings",
]

#: Every settings class; a config file may hold the keys of all of them, whichever a command uses.
ALL_SETTINGS: tuple[type[Any], ...] = (RunSettings, DetectorSettings)

_T1 = TypeVar("_T1")
_T2 = TypeVar("_T2")

#: The text that means "unset" for a field whose value may be None (TOML has no null).
_NONE_TEXT = "none"
#: Fields whose "role" in an event excludes them from being a feature.
_ROLE_FIELDS = ("label_field", "key_field", "id_field", "timestamp_field")


@dataclasses.dataclass(frozen=True)
class _FieldSpec:
    """What the config machinery needs to know about one settings field."""

    name: str
    owner: str
    kind: type[Any]  # bool, int, float, str, tuple (of str) or dict
    optional: bool
    str_values: bool  # for dicts: values must be strings
    default: Any
    help: str
    rules: Mapping[str, Any]
    cli: bool

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


_SPECS: dict[type[Any], tuple[_FieldSpec, ...]] = {}


def _field_specs(cls: type[Any]) -> tuple[_FieldSpec, ...]:
    """Describe every field of a settings dataclass; TypeError for a type no parser exists for.

    >>> [s.flag for s in _field_specs(RunSettings)][:3]
    ['--source', '--sink', '--dead-letter']
    """
    if cls not in _SPECS:
        _SPECS[cls] = _describe_fields(cls)
    return _SPECS[cls]


def _describe_fields(cls: type[Any]) -> tuple[_FieldSpec, ...]:
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r} is not a settings dataclass")
    hints = typing.get_type_hints(cls)
    specs = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        optional = False
        if typing.get_origin(hint) in (types.UnionType, typing.Union):
            members = [a for a in typing.get_args(hint) if a is not type(None)]
            optional = len(members) < len(typing.get_args(hint))
            if len(members) != 1:
                raise TypeError(f"{cls.__name__}.{field.name}: cannot configure a {hint}")
            hint = members[0]
        origin = typing.get_origin(hint)
        str_values = False
        if hint in (bool, int, float, str):
            kind: type[Any] = hint
        elif origin is tuple and typing.get_args(hint) == (str, ...):
            kind = tuple
        elif origin is dict and typing.get_args(hint)[0] is str:
            kind = dict
            str_values = typing.get_args(hint)[1] is str
        else:
            raise TypeError(f"{cls.__name__}.{field.name}: cannot configure a {hint}")
        metadata = dict(field.metadata)
        specs.append(
            _FieldSpec(
                name=field.name,
                owner=cls.__name__,
                kind=kind,
                optional=optional,
                str_values=str_values,
                default=field.default,
                help=str(metadata.pop("help", "")),
                cli=bool(metadata.pop("cli", True)),
                rules=metadata,
            )
        )
    return tuple(specs)


def _specs_by_name(classes: Iterable[type[Any]]) -> dict[str, _FieldSpec]:
    """Field specs of several classes by name; a name in two classes is a programming error."""
    out: dict[str, _FieldSpec] = {}
    for cls in classes:
        for spec in _field_specs(cls):
            other = out.get(spec.name)
            if other is not None and other.owner != spec.owner:
                raise TypeError(f"field {spec.name!r} is in both {other.owner} and {spec.owner}")
            out[spec.name] = spec
    return out


def _unique_classes(classes: Iterable[type[Any]]) -> tuple[type[Any], ...]:
    return tuple(dict.fromkeys(classes))


# -- what a field expects, in words ---------------------------------------------------------


def _expected(spec: _FieldSpec) -> str:
    """A description of the values ``spec`` accepts, for error messages.

    >>> _expected(_specs_by_name(ALL_SETTINGS)["contamination"])
    'a number between 0.0 and 0.5, or none'
    >>> _expected(_specs_by_name(ALL_SETTINGS)["batch_size"])
    'an integer >= 1'
    """
    rules = spec.rules
    if "choices" in rules:
        text = "one of " + ", ".join(repr(c) for c in rules["choices"])
    elif spec.kind is bool:
        text = "true or false"
    elif spec.kind in (int, float):
        text = "an integer" if spec.kind is int else "a number"
        low, high = rules.get("min"), rules.get("max")
        if low is not None and high is not None:
            text += f" between {low!r} and {high!r}"
        elif low is not None:
            text += f" >= {low!r}"
        elif high is not None:
            text += f" <= {high!r}"
    elif spec.kind is tuple:
        text = "feature names, as a list or a comma-separated string, each named once"
    elif spec.kind is dict:
        text = f"a table [{spec.name}]" + (' of NAME = "TEXT" entries' if spec.str_values else "")
    elif "pattern" in rules:
        text = f"text matching {rules['pattern']} ({spec.help})"
    else:
        text = "a non-empty string"
    if spec.optional:
        text += f", or {_NONE_TEXT}"
    return text


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest choice, or nothing when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- one value -------------------------------------------------------------------------------


def _from_text(spec: _FieldSpec, value: Any) -> Any:
    """Turn command-line text into the value a config file would hold; non-text passes through.

    >>> specs = _specs_by_name(ALL_SETTINGS)
    >>> _from_text(specs["batch_size"], "7"), _from_text(specs["log_epsilon"], "none")
    (7, None)
    """
    if not isinstance(value, str):
        return value
    if spec.optional and value.strip().lower() == _NONE_TEXT:
        return None
    try:
        if spec.kind is int:
            return int(value)
        if spec.kind is float:
            return float(value)
    except ValueError:
        raise ConfigError(spec.name, value, _expected(spec)) from None
    if spec.kind is bool:
        word = value.strip().lower()
        if word not in ("true", "false"):
            raise ConfigError(spec.name, value, _expected(spec))
        return word == "true"
    return value


def _check_value(spec: _FieldSpec, value: Any) -> Any:
    """Check one value as a config file gives it; return it normalised.

    Integers become floats where a number is expected, lists become tuples.

    >>> specs = _specs_by_name(ALL_SETTINGS)
    >>> _check_value(specs["features"], "cpu, bytes_in")
    ('cpu', 'bytes_in')
    >>> _check_value(specs["min_samples"], True)
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key min_samples: got True, expected an integer >= 1
    """
    name = spec.name
    if spec.optional and (
        value is None or (isinstance(value, str) and value.strip().lower() == _NONE_TEXT)
    ):
        return None
    wrong = ConfigError(name, value, _expected(spec))
    if spec.kind is bool:
        if not isinstance(value, bool):
            raise wrong
    elif spec.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
    elif spec.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong
        try:
            value = float(value)
        except OverflowError:
            raise wrong from None
        if not math.isfinite(value):
            raise ConfigError(name, value, "a finite " + _expected(spec).removeprefix("a "))
    elif spec.kind is str:
        if not isinstance(value, str) or not value.strip():
            raise wrong
    elif spec.kind is tuple:
        value = _check_names(spec, value)
    elif spec.kind is dict:
        value = _check_table(spec, value)
    _check_rules(spec, value)
    hook = _FIELD_HOOKS.get(name)
    return value if hook is None else hook(value)


def _check_rules(spec: _FieldSpec, value: Any) -> None:
    """The metadata rules: min, max, choices, pattern."""
    rules = spec.rules
    if "min" in rules and value < rules["min"]:
        raise ConfigError(spec.name, value, _expected(spec))
    if "max" in rules and value > rules["max"]:
        raise ConfigError(spec.name, value, _expected(spec))
    if "choices" in rules and value not in rules["choices"]:
        raise ConfigError(
            spec.name, value, _expected(spec) + _did_you_mean(value, rules["choices"])
        )
    if "pattern" in rules and re.fullmatch(rules["pattern"], value) is None:
        raise ConfigError(spec.name, value, _expected(spec))


def _check_names(spec: _FieldSpec, value: Any) -> tuple[str, ...]:
    """A list of names, or a comma-separated string of them (spaces around names dropped)."""
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        names = list(value)
    else:
        raise ConfigError(spec.name, value, _expected(spec))
    if not names or any(not n.strip() for n in names):
        raise ConfigError(spec.name, value, "at least one name and no empty names, e.g. cpu,mem")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(spec.name, value, f"each name once ({repeated[0]!r} is repeated)")
    return tuple(names)


def _check_table(spec: _FieldSpec, value: Any) -> dict[str, Any] | None:
    """A TOML table with JSON-able contents (settings are recorded in checkpoints as JSON)."""
    if not isinstance(value, Mapping):
        raise ConfigError(spec.name, value, _expected(spec))
    table: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{spec.name}.{key}"
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(spec.name, key, "non-empty names as keys")
        if spec.str_values and not isinstance(item, str):
            raise ConfigError(where, item, "text in quotes")
        table[key] = _json_value(where, item)
    return table or None


def _json_value(key: str, value: Any) -> Any:
    """A copy of ``value`` if it is JSON-able (finite numbers, text, booleans, arrays, tables)."""
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(key, v) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _json_value(f"{key}.{k}", v) for k, v in value.items()}
    raise ConfigError(key, value, "a finite number, text, true/false, an array or a table")


def _check_transforms(table: dict[str, str] | None) -> dict[str, str] | None:
    """Every spec parses; return the table with canonical specs (``root:2`` becomes ``sqrt``)."""
    if table is None:
        return None
    try:
        from stream_detect.transforms import parse_transform
    except ImportError:  # pragma: no cover - the transforms module is optional for this one
        return {feature: spec.strip() for feature, spec in table.items()}
    return {
        feature: parse_transform(spec, key=f"transforms.{feature}").spec
        for feature, spec in table.items()
    }


#: Checks that only make sense for one field, run after the generic ones.
_FIELD_HOOKS: dict[str, Callable[[Any], Any]] = {"transforms": _check_transforms}


# -- several values together -------------------------------------------------------------------


def _river_model_name(model: Any) -> str | None:
    """``"HalfSpaceTrees"`` for ``"river:HalfSpaceTrees"``, None for the built-in models."""
    if isinstance(model, str) and model.startswith("river:"):
        return model.removeprefix("river:")
    return None


def _check_together(values: Mapping[str, Any]) -> None:
    """Rules that involve several fields; each applies only when all its fields are loaded."""
    model = values.get("model")
    river_name = _river_model_name(model)

    min_samples = values.get("min_samples")
    if model == "full" and min_samples is not None and min_samples < 2:
        raise ConfigError(
            "min_samples",
            min_samples,
            'an integer >= 2 with model = "full" (a covariance needs two events; '
            "d + 1 for d features is enforced once the features are known)",
        )
    if river_name is not None:
        if values.get("checkpoint") is not None:
            raise ConfigError(
                "checkpoint",
                values["checkpoint"],
                "no checkpoint with a river:* model (river models cannot be saved without pickle)",
            )
        if values.get("flagged") == "clip":
            raise ConfigError(
                "flagged",
                "clip",
                "exclude or learn with a river:* model (clipping to the alert boundary "
                "needs a Gaussian model)",
            )
        _check_river_model(river_name, values.get("model_params"))
    elif values.get("model_params") is not None and "model" in values:
        raise ConfigError(
            "model_params",
            values["model_params"],
            f'no [model_params] table with model = "{model}" (only river:NAME models take '
            "parameters)",
        )

    features = values.get("features")
    if features is not None:
        check_feature_names(features, roles={role: values.get(role) for role in _ROLE_FIELDS})
        for feature in values.get("transforms") or {}:
            if feature not in features:
                raise ConfigError(
                    f"transforms.{feature}",
                    feature,
                    "a feature named in features ("
                    + ", ".join(features)
                    + ")"
                    + _did_you_mean(feature, features),
                )

    size = values.get("validation_size")
    for needed in ("min_positive_labels", "min_negative_labels"):
        if size is not None and values.get(needed) is not None and size < values[needed]:
            raise ConfigError(
                "validation_size",
                size,
                f"an integer >= {needed} = {values[needed]} (the buffer must hold enough labels "
                "to tune epsilon)",
            )

    stdin = ("-", "stdin")
    if values.get("labels") in stdin and values.get("source") in stdin:
        raise ConfigError(
            "labels",
            values["labels"],
            "a URI other than stdin while the source is stdin (stdin carries one stream)",
        )


def _check_river_model(name: str, params: Mapping[str, Any] | None) -> None:
    """The detector exists in ``river.anomaly``, takes these parameters, and can be built."""
    import river.anomaly
    import river.base

    detectors = sorted(
        attribute
        for attribute in dir(river.anomaly)
        if isinstance(getattr(river.anomaly, attribute), type)
        and issubclass(getattr(river.anomaly, attribute), river.base.AnomalyDetector)
    )
    if name not in detectors:
        raise ConfigError(
            "model",
            f"river:{name}",
            "river:NAME with NAME an unsupervised river.anomaly detector: "
            + ", ".join(detectors)
            + _did_you_mean(name, detectors),
        )
    detector = getattr(river.anomaly, name)
    parameters = inspect.signature(detector).parameters.values()
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    known = [
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    defaults = {p.name: p.default for p in parameters}
    for key, value in (params or {}).items():
        if key not in known and not takes_any:
            raise ConfigError(
                f"model_params.{key}",
                value,
                f"a parameter of river.anomaly.{name}: "
                + ", ".join(known)
                + _did_you_mean(key, known),
            )
        # river checks few parameters when a model is built; a value of another kind than
        # the default (n_trees = "ten") would only fail on the first event.
        default = defaults.get(key)
        if not _same_kind(value, default):
            raise ConfigError(
                f"model_params.{key}",
                value,
                f"a value like the default {default!r} of river.anomaly.{name}",
            )
    try:
        detector(**(params or {}))
    except Exception as exc:  # river checks little itself; whatever it raises, say which table
        raise ConfigError(
            "model_params",
            dict(params or {}),
            f"parameters that river.anomaly.{name} accepts ({type(exc).__name__}: {exc})",
        ) from exc


def _same_kind(value: Any, default: Any) -> bool:
    """Whether ``value`` is of the kind of a scalar ``default`` (any value if it has none).

    >>> _same_kind(3, 2.5), _same_kind(True, 10), _same_kind("x", None)
    (True, False, True)
    """
    if isinstance(default, bool) or isinstance(value, bool):
        return not isinstance(default, (bool, int, float, str)) or (
            isinstance(default, bool) and isinstance(value, bool)
        )
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (int, str)):
        return isinstance(value, type(default))
    return True


# -- public API ---------------------------------------------------------------------------------


def add_settings_arguments(parser: argparse.ArgumentParser, *classes: type[Any]) -> None:
    """Add ``--config``, one flag per field of ``classes``, and ``--transform``.

    ``classes`` defaults to :data:`ALL_SETTINGS`. Flags leave ``None`` in the
    namespace when not given, so :func:`load_settings` can tell "not given"
    from "given"; values stay text until :func:`load_settings` checks them.
    Boolean fields get ``--x/--no-x``. The help shows each dataclass default.

    >>> parser = argparse.ArgumentParser(prog="run")
    >>> add_settings_arguments(parser)
    >>> args = parser.parse_args(["--batch-size", "7", "--no-summary", "--features", "a,b"])
    >>> args.batch_size, args.summary, args.features, args.min_samples, args.config
    ('7', False, 'a,b', None, None)
    >>> "(default: 1024)" in parser.format_help()
    True
    """
    parser.add_argument(
        "--config",
        metavar="FILE.toml",
        default=None,
        help="TOML file of settings: keys named like the flags with underscores "
        "(batch_size = 512), tables [model_params] and [transforms]; flags override it",
    )
    for cls in _unique_classes(classes or ALL_SETTINGS):
        doc = (inspect.getdoc(cls) or cls.__name__).splitlines()[0]
        group = parser.add_argument_group(
            f"{cls.__name__} (config keys named like the flags)", description=doc
        )
        for spec in _field_specs(cls):
            if spec.name == "transforms":
                group.add_argument(
                    "--transform",
                    action="append",
                    metavar="FEATURE=SPEC",
                    default=None,
                    help=_escape(
                        "transform a feature before modelling: log, log:C, sqrt, root:K "
                        "(repeat for several; adds to and overrides the [transforms] table)"
                    ),
                )
            if not spec.cli:
                continue
            help_text = spec.help
            if "default" not in help_text:
                help_text += f" (default: {_default_text(spec.default)})"
            if spec.kind is bool:
                group.add_argument(
                    spec.flag,
                    dest=spec.name,
                    action=argparse.BooleanOptionalAction,
                    default=None,
                    help=_escape(help_text),
                )
            else:
                group.add_argument(
                    spec.flag,
                    dest=spec.name,
                    metavar=_metavar(spec),
                    default=None,
                    help=_escape(help_text),
                )


def _escape(text: str) -> str:
    """Help text is a %-format for argparse."""
    return text.replace("%", "%%")


def _metavar(spec: _FieldSpec) -> str:
    if "choices" in spec.rules:
        return "{" + ",".join(str(c) for c in spec.rules["choices"]) + "}"
    if spec.kind is tuple:
        return "A,B,..."
    if spec.name.endswith("_field"):
        return "FIELD"
    return {int: "N", float: "X"}.get(spec.kind, spec.name.upper())


def _default_text(value: Any) -> str:
    """A default as a user would write it in TOML (``true``, ``none``)."""
    if value is None:
        return _NONE_TEXT
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file; :class:`ConfigError` with key ``config`` if it cannot be used.

    >>> read_config_file("no/such/file.toml")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key config: got 'no/such/file.toml', expected an \
existing TOML file
    """
    file = Path(path)
    if not file.exists():
        raise ConfigError("config", str(path), "an existing TOML file")
    try:
        with file.open("rb") as stream:
            return tomllib.load(stream)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", str(path), f"valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ConfigError("config", str(path), "a UTF-8 encoded TOML file") from None
    except OSError as exc:
        raise ConfigError("config", str(path), f"a readable TOML file ({exc.strerror})") from None


@overload
def settings_from_mapping(
    values: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> tuple[RunSettings, DetectorSettings]: ...
@overload
def settings_from_mapping(
    values: Mapping[str, Any], overrides: Mapping[str, Any] | None, classes: tuple[type[_T1]]
) -> tuple[_T1]: ...
@overload
def settings_from_mapping(
    values: Mapping[str, Any],
    overrides: Mapping[str, Any] | None,
    classes: tuple[type[_T1], type[_T2]],
) -> tuple[_T1, _T2]: ...
def settings_from_mapping(
    values: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    classes: tuple[type[Any], ...] = ALL_SETTINGS,
) -> tuple[Any, ...]:
    """Build and check settings from config-file ``values`` and command-line ``overrides``.

    This is the one place where settings are validated. ``values`` are as a
    TOML file gives them (and as :func:`settings_to_dict` writes them, so
    JSON ``null`` is unset). ``overrides`` win over ``values``; text in them
    is parsed as a flag would parse it (``"7"`` for an integer), and a table
    in them adds to the table of ``values``. Keys of every class in
    :data:`ALL_SETTINGS` are accepted and checked, whichever ``classes`` are
    returned, so one config file serves every command. The first problem
    raises :class:`ConfigError`.

    >>> run, detector = settings_from_mapping({"batch_size": 512, "model": "full"})
    >>> run.batch_size, detector.model
    (512, 'full')
    >>> settings_from_mapping({"model": "full", "min_samples": 1})
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key min_samples: got 1, expected an integer >= 2 \
with model = "full" (a covariance needs two events; d + 1 for d features is enforced once the \
features are known)
    >>> settings_from_mapping({"batch_sise": 5})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key batch_sise: got 5, expected a known key \
(did you mean 'batch_size'?); known keys: batch_size, checkpoint, ...
    """
    return _build(values, overrides or {}, classes)


def _build(
    values: Mapping[str, Any], overrides: Mapping[str, Any], classes: tuple[type[Any], ...]
) -> tuple[Any, ...]:
    """The body of :func:`settings_from_mapping`, untyped in ``classes``."""
    built = _unique_classes((*classes, *ALL_SETTINGS))
    specs = _specs_by_name(built)
    for key, value in (*values.items(), *overrides.items()):
        if key not in specs:
            raise ConfigError(
                key,
                value,
                "a known key"
                + _did_you_mean(key, specs)
                + "; known keys: "
                + ", ".join(sorted(specs)),
            )
    final: dict[str, Any] = {}
    for name, spec in specs.items():
        value = spec.default
        if name in values:
            value = _check_value(spec, values[name])
        if name in overrides:
            override = _check_value(spec, _from_text(spec, overrides[name]))
            if spec.kind is dict and isinstance(value, dict) and override is not None:
                override = {**value, **override}
            value = override
        final[name] = value
    instances = {
        cls: cls(**{spec.name: final[spec.name] for spec in _field_specs(cls)}) for cls in built
    }
    _check_together(final)
    return tuple(instances[cls] for cls in classes)


@overload
def load_settings(args: argparse.Namespace) -> tuple[RunSettings, DetectorSettings]: ...
@overload
def load_settings(args: argparse.Namespace, classes: tuple[type[_T1]]) -> tuple[_T1]: ...
@overload
def load_settings(
    args: argparse.Namespace, classes: tuple[type[_T1], type[_T2]]
) -> tuple[_T1, _T2]: ...
def load_settings(
    args: argparse.Namespace, classes: tuple[type[Any], ...] = ALL_SETTINGS
) -> tuple[Any, ...]:
    """Settings from ``args.config`` (if given) and the flags of :func:`add_settings_arguments`.

    Flags beat the file, the file beats the defaults; see
    :func:`settings_from_mapping` for the checks. Returns one instance per
    class of ``classes``, in that order.

    >>> parser = argparse.ArgumentParser()
    >>> add_settings_arguments(parser)
    >>> args = parser.parse_args(["--batch-size", "7", "--transform", "x=root:2"])
    >>> run, detector = load_settings(args)
    >>> run.batch_size, detector.transforms, detector.min_samples
    (7, {'x': 'sqrt'}, 50)
    >>> (detector,) = load_settings(parser.parse_args(["--model", "full"]), (DetectorSettings,))
    >>> detector.model
    'full'
    >>> load_settings(parser.parse_args(["--batch-size", "seven"]))
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key batch_size: got 'seven', expected an integer >= 1
    """
    config = getattr(args, "config", None)
    values = read_config_file(config) if config is not None else {}
    specs = _specs_by_name(_unique_classes((*classes, *ALL_SETTINGS)))
    overrides: dict[str, Any] = {
        name: getattr(args, name)
        for name, spec in specs.items()
        if spec.cli and getattr(args, name, None) is not None
    }
    items = getattr(args, "transform", None)
    if items and "transforms" in specs:
        overrides["transforms"] = _transform_items(items)
    return _build(values, overrides, classes)


def _transform_items(items: Sequence[str]) -> dict[str, str]:
    """``["FEATURE=SPEC", ...]`` from ``--transform`` as a table (specs are checked later).

    >>> _transform_items(["bytes=log:1", "latency = sqrt"])
    {'bytes': 'log:1', 'latency': 'sqrt'}
    """
    table: dict[str, str] = {}
    for item in items:
        # A spec never holds "=", a feature name might.
        feature, sep, spec = item.rpartition("=")
        feature = feature.strip()
        if not sep or not feature or not spec.strip():
            raise ConfigError(
                "transform", item, "FEATURE=SPEC, e.g. bytes=log:1 (SPEC: log, log:C, sqrt, root:K)"
            )
        if feature in table:
            raise ConfigError("transform", item, f"each feature once ({feature!r} is repeated)")
        table[feature] = spec.strip()
    return table


def validate_settings(*instances: Any) -> None:
    """Check settings built in code by the same rules as :func:`settings_from_mapping`.

    >>> validate_settings(RunSettings(), DetectorSettings())
    >>> validate_settings(DetectorSettings(model="river:HalfSpaceTrees", flagged="clip"))
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key flagged: got 'clip', expected exclude or learn \
with a river:* model (clipping to the alert boundary needs a Gaussian model)
    """
    _specs_by_name(type(instance) for instance in instances)  # refuses a name in two classes
    values = {}
    for instance in instances:
        for spec in _field_specs(type(instance)):
            values[spec.name] = _check_value(spec, getattr(instance, spec.name))
    _check_together(values)


def settings_to_dict(*instances: Any) -> dict[str, Any]:
    """All fields of ``instances`` in one JSON-able dict, keyed as in a config file.

    Unset fields are ``None`` (JSON ``null``). :func:`settings_from_mapping`
    builds the same settings back from it.

    >>> settings_to_dict(DetectorSettings(features=("a", "b")))["features"]
    ['a', 'b']
    >>> run, detector = RunSettings(batch_size=7), DetectorSettings()
    >>> settings_from_mapping(settings_to_dict(run, detector)) == (run, detector)
    True
    """
    _specs_by_name(type(instance) for instance in instances)  # refuses a name in two classes
    out: dict[str, Any] = {}
    for instance in instances:
        for field in dataclasses.fields(instance):
            if field.name in out:
                raise TypeError(f"field {field.name!r} is in two of the settings given")
            value = getattr(instance, field.name)
            out[field.name] = None if value is None else _json_value(field.name, value)
    return out
