"""The rules every settings field obeys, alone and together, in one home.

:mod:`stream_detect.settings` declares each field with its rules in
``metadata`` (``min``, ``max``, ``choices``, ``bytes_each``, ...); the settings
classes call :func:`check_fields` and their cross-field checks from
``__post_init__``, so settings built in Python, from flags or from a TOML file
all pass the same checks and fail with the same
:class:`~stream_detect.errors.ConfigError`, naming the key, the value and what
was expected. :mod:`stream_detect.config` only turns text into values and says
where a bad value came from (a flag or a key of a file).

A field whose value is allocated in full when the detector starts
(``id_memory``, ``validation_size``) declares ``bytes_each``, the least it
costs per unit; a value whose allocation would pass :data:`MEMORY_LIMIT` is
refused with the amount it would take, instead of failing with a MemoryError.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from stream_detect.errors import ConfigError
from stream_detect.small_files import shown_size

__all__ = [
    "MEMORY_LIMIT",
    "NONE_TEXT",
    "ROLE_FIELDS",
    "FieldSpec",
    "check_fields",
    "check_value",
    "did_you_mean",
    "expected_text",
    "field_specs",
    "json_value",
    "specs_by_name",
]

#: Most memory a setting may ask to allocate up front (1 GiB).
MEMORY_LIMIT = 1 << 30

NONE_TEXT = "none"
#: Fields whose "role" in an event excludes them from being a feature.
#: Fields that name a role (label, key, id, time), never a feature.
ROLE_FIELDS = ("label_field", "key_field", "id_field", "timestamp_field")


@dataclasses.dataclass(frozen=True)
class FieldSpec:
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


_SPECS: dict[type[Any], tuple[FieldSpec, ...]] = {}


def field_specs(cls: type[Any]) -> tuple[FieldSpec, ...]:
    """Describe every field of a settings dataclass; TypeError for a type no parser exists for.

    >>> from stream_detect.settings import RunSettings
    >>> [s.flag for s in field_specs(RunSettings)][:3]
    ['--source', '--sink', '--dead-letter']
    """
    if cls not in _SPECS:
        _SPECS[cls] = _describe_fields(cls)
    return _SPECS[cls]


def _describe_fields(cls: type[Any]) -> tuple[FieldSpec, ...]:
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
            FieldSpec(
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


def specs_by_name(classes: Iterable[type[Any]]) -> dict[str, FieldSpec]:
    """Field specs of several classes by name; a name in two classes is a programming error."""
    out: dict[str, FieldSpec] = {}
    for cls in classes:
        for spec in field_specs(cls):
            other = out.get(spec.name)
            if other is not None and other.owner != spec.owner:
                raise TypeError(f"field {spec.name!r} is in both {other.owner} and {spec.owner}")
            out[spec.name] = spec
    return out


# -- what a field expects, in words ---------------------------------------------------------


def expected_text(spec: FieldSpec) -> str:
    """A description of the values ``spec`` accepts, for error messages.

    >>> from stream_detect.settings import DetectorSettings, RunSettings
    >>> expected_text(specs_by_name([DetectorSettings])["log_tail_epsilon"])
    'a number <= 0.0'
    >>> expected_text(specs_by_name([RunSettings])["batch_size"])
    'an integer >= 1'
    >>> expected_text(specs_by_name([DetectorSettings])["model"])
    'diagonal, full, or river:NAME'
    """
    rules = spec.rules
    if "words" in rules:
        text = str(rules["words"])
    elif "choices" in rules:
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
        if "bytes_each" in rules:
            text += f" that needs at most {shown_size(MEMORY_LIMIT)} at start"
    elif spec.kind is tuple:
        text = "feature names, as a list or a comma-separated string, each named once"
    elif spec.kind is dict:
        text = f"a table [{spec.name}]" + (' of NAME = "TEXT" entries' if spec.str_values else "")
    elif "pattern" in rules:
        text = f"text matching {rules['pattern']} ({spec.help})"
    else:
        text = "a non-empty string"
    if spec.optional:
        text += f", or {NONE_TEXT}"
    return text


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest choice, or nothing when none is close."""
    import difflib  # only a misspelt setting needs it

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_value(spec: FieldSpec, value: Any) -> Any:
    """Check one value as a config file gives it; return it normalised.

    Integers become floats where a number is expected, lists become tuples;
    numpy's numbers are taken as the Python numbers they hold.

    >>> from stream_detect.settings import DetectorSettings
    >>> specs = specs_by_name([DetectorSettings])
    >>> check_value(specs["features"], "cpu, bytes_in")
    ('cpu', 'bytes_in')
    >>> check_value(specs["min_samples"], True)
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key min_samples: got True, expected an integer >= 1
    >>> import numpy as np
    >>> check_value(specs["min_samples"], np.int64(3)), check_value(specs["min_samples"], 3)
    (3, 3)
    """
    name = spec.name
    if spec.optional and (
        value is None or (isinstance(value, str) and value.strip().lower() == NONE_TEXT)
    ):
        return None
    wrong = ConfigError(name, value, expected_text(spec))
    if spec.kind is bool:
        if not isinstance(value, bool):
            raise wrong
    elif spec.kind is int:
        # numbers.Integral takes numpy's integers too (an API caller's np.int64(3)); a bool,
        # Python's or numpy's, is not a count.
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise wrong
        value = int(value)
    elif spec.kind is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise wrong
        try:
            value = float(value)
        except OverflowError:
            raise wrong from None
        if not math.isfinite(value):
            raise ConfigError(name, value, "a finite " + expected_text(spec).removeprefix("a "))
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


def _check_rules(spec: FieldSpec, value: Any) -> None:
    """The metadata rules: min, max, choices, pattern."""
    rules = spec.rules
    if "min" in rules and value < rules["min"]:
        raise ConfigError(spec.name, value, expected_text(spec))
    if "max" in rules and value > rules["max"]:
        raise ConfigError(spec.name, value, expected_text(spec))
    if "choices" in rules and value not in rules["choices"]:
        raise ConfigError(
            spec.name, value, expected_text(spec) + did_you_mean(value, rules["choices"])
        )
    if "pattern" in rules and re.fullmatch(rules["pattern"], value) is None:
        raise ConfigError(spec.name, value, expected_text(spec) + _pattern_hint(spec, value))
    if "bytes_each" in rules and value * rules["bytes_each"] > MEMORY_LIMIT:
        raise ConfigError(
            spec.name,
            value,
            f"{expected_text(spec)} ({value} would take at least "
            f"{shown_size(value * rules['bytes_each'])}, allocated when the detector starts)",
        )


def _pattern_hint(spec: FieldSpec, value: Any) -> str:
    """For ``model``, the accepted river names and the closest choice; nothing otherwise."""
    if spec.name != "model":
        return ""
    from stream_detect.river_params import river_detectors  # only a bad model name needs it

    names = river_detectors()
    choices = ["diagonal", "full", *(f"river:{name}" for name in names)]
    return f" with NAME one of {', '.join(names)}" + did_you_mean(str(value), choices)


def _check_names(spec: FieldSpec, value: Any) -> tuple[str, ...]:
    """A list of names, or a comma-separated string of them (spaces around names dropped)."""
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        names = list(value)
    else:
        raise ConfigError(spec.name, value, expected_text(spec))
    if not names or any(not n.strip() for n in names):
        raise ConfigError(spec.name, value, "at least one name and no empty names, e.g. cpu,mem")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(spec.name, value, f"each name once ({repeated[0]!r} is repeated)")
    return tuple(names)


def _check_table(spec: FieldSpec, value: Any) -> dict[str, Any] | None:
    """A TOML table with JSON-able contents (settings are recorded in checkpoints as JSON)."""
    if not isinstance(value, Mapping):
        raise ConfigError(spec.name, value, expected_text(spec))
    table: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{spec.name}.{key}"
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(spec.name, key, "non-empty names as keys")
        if spec.str_values and not isinstance(item, str):
            raise ConfigError(where, item, "text in quotes")
        table[key] = json_value(where, item)
    return table or None


def json_value(key: str, value: Any) -> Any:
    """A copy of ``value`` if it is JSON-able (finite numbers, text, booleans, arrays, tables)."""
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, (list, tuple)):
        return [json_value(key, v) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: json_value(f"{key}.{k}", v) for k, v in value.items()}
    raise ConfigError(key, value, "a finite number, text, true/false, an array or a table")


def _check_transforms(table: dict[str, str] | None) -> dict[str, str] | None:
    """Every spec parses; return the table with canonical specs (``root:2`` becomes ``sqrt``)."""
    if table is None:
        return None
    # Imported here: settings without transforms are checked without numpy.
    from stream_detect.transforms import parse_transform

    return {
        feature: parse_transform(spec, key=f"transforms.{feature}").spec
        for feature, spec in table.items()
    }


def _check_derived(table: dict[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    """A ``[derived]`` table checked by :func:`~stream_detect.derived_specs.check_derived_table`."""
    if table is None:
        return None
    # Imported here: a run without derived features does not pay for them at start-up.
    from stream_detect.derived_specs import check_derived_table

    return check_derived_table(table)


def _check_direction(table: dict[str, str] | None) -> dict[str, str] | None:
    """Every direction is ``high``, ``low`` or ``both``."""
    for feature, word in (table or {}).items():
        if word not in ("high", "low", "both"):
            raise ConfigError(f"direction.{feature}", word, "high, low or both")
    return table


#: Checks that only make sense for one field, run after the generic ones.
_FIELD_HOOKS: dict[str, Callable[[Any], Any]] = {
    "transforms": _check_transforms,
    "derived": _check_derived,
    "direction": _check_direction,
}


def check_fields(settings: Any) -> None:
    """Check every field of a frozen settings dataclass alone, normalising it in place.

    Integers become floats where a number is expected, lists of names become
    tuples, ``"none"`` becomes None where a field may be unset, transform
    specs become canonical. Called from the settings' ``__post_init__``.
    """
    for spec in field_specs(type(settings)):
        given = getattr(settings, spec.name)
        value = check_value(spec, given)
        if value is not given:
            # Frozen dataclasses are normalised once, while they are being built.
            object.__setattr__(settings, spec.name, value)
