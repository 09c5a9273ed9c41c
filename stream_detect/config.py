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

* The rules themselves live with the settings (:mod:`stream_detect.validation`,
  run when a settings object is built); this module turns text into values and
  says where a bad one came from. The first problem raises
  :class:`~stream_detect.errors.ConfigError` naming the flag (``--batch-size``)
  when the value came from the command line, the key and the file
  (``batch_size in run.toml``) when it came from a config file, the value
  and what was expected. A bad value in the file is reported even when a flag
  overrides it: a broken file stays broken.
* A flag is given once: ``--features a --features b`` is refused (name
  every feature in one ``--features a,b``). Only ``--transform`` repeats.
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
import contextlib
import inspect
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

from stream_detect.errors import ConfigError
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.validation import (
    NONE_TEXT,
    FieldSpec,
    check_run_with_detector,
    check_value,
    did_you_mean,
    expected_text,
    field_specs,
    specs_by_name,
)

__all__ = [
    "ALL_SETTINGS",
    "StoreOnce",
    "add_settings_arguments",
    "load_settings",
    "locate_error",
    "locate_error_in_args",
    "read_config_file",
    "settings_from_mapping",
]

#: Every settings class; a config file may hold the keys of all of them, whichever a command uses.
ALL_SETTINGS: tuple[type[Any], ...] = (RunSettings, DetectorSettings)

_T1 = TypeVar("_T1")
_T2 = TypeVar("_T2")


#: The flag of a config key, where it is not the key's own (``[transforms]`` has ``--transform``).
_FLAG_OF = {"transforms": "--transform", "direction": "--direction"}
#: Settings that no longer exist, with what to use instead.
REMOVED_KEYS = {
    "contamination": "no such setting: without labels alerts compare the calibrated log tail "
    "with log_tail_epsilon (remove contamination)",
    "relearn_after": "no such setting: it is now accept_after (alerts count up, calm events down)",
}
#: Where :class:`StoreOnce` notes the flags already given on a command line.
_SEEN = "_flags_given"


def _unique_classes(classes: Iterable[type[Any]]) -> tuple[type[Any], ...]:
    return tuple(dict.fromkeys(classes))


# -- one value -------------------------------------------------------------------------------


def _from_text(spec: FieldSpec, value: Any) -> Any:
    """Turn command-line text into the value a config file would hold; non-text passes through.

    >>> specs = specs_by_name(ALL_SETTINGS)
    >>> _from_text(specs["batch_size"], "7"), _from_text(specs["log_epsilon"], "none")
    (7, None)
    """
    if not isinstance(value, str):
        return value
    if spec.optional and value.strip().lower() == NONE_TEXT:
        return None
    try:
        if spec.kind is int:
            return int(value)
        if spec.kind is float:
            return float(value)
    except ValueError:
        raise ConfigError(spec.name, value, expected_text(spec)) from None
    if spec.kind is bool:
        word = value.strip().lower()
        if word not in ("true", "false"):
            raise ConfigError(spec.name, value, expected_text(spec))
        return word == "true"
    return value


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
    for removed in REMOVED_KEYS:
        # Hidden: a removed flag gets the sentence saying what replaced it, not argparse's usage.
        parser.add_argument(
            "--" + removed.replace("_", "-"), dest=removed, default=None, help=argparse.SUPPRESS
        )
    for cls in _unique_classes(classes or ALL_SETTINGS):
        doc = (inspect.getdoc(cls) or cls.__name__).splitlines()[0]
        group = parser.add_argument_group(
            f"{cls.__name__} (config keys named like the flags)", description=doc
        )
        for spec in field_specs(cls):
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
            if spec.name == "direction":
                group.add_argument(
                    "--direction",
                    action="append",
                    metavar="FEATURE=high|low|both",
                    default=None,
                    help=_escape(
                        "only alert on high (or low) values of a feature (repeat for several; "
                        "adds to and overrides the [direction] table)"
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
                    action=_BooleanOnce,
                    default=None,
                    help=_escape(help_text),
                )
            else:
                group.add_argument(
                    spec.flag,
                    dest=spec.name,
                    action=StoreOnce,
                    metavar=_metavar(spec),
                    default=None,
                    help=_escape(help_text),
                )


def _refuse_repeat(namespace: argparse.Namespace, flag: str, dest: str, value: Any) -> None:
    """Raise :class:`ConfigError` if ``flag`` was given before on this command line."""
    seen: set[str] = getattr(namespace, _SEEN, None) or set()
    if dest in seen:
        raise ConfigError(
            dest,
            value,
            f"{flag} once (it was given before; give every value in one flag rather than "
            "have one silently dropped)",
            flag=flag,
        )
    setattr(namespace, _SEEN, seen | {dest})


class StoreOnce(argparse.Action):
    """Store a flag's value; a second occurrence raises :class:`ConfigError` naming the flag.

    >>> parser = argparse.ArgumentParser()
    >>> _ = parser.add_argument("--features", action=StoreOnce)
    >>> parser.parse_args(["--features", "a", "--features", "b"])
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: option --features: got 'b', expected --features once \
(it was given before; give every value in one flag rather than have one silently dropped)
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        _refuse_repeat(namespace, option_string or self.dest, self.dest, values)
        setattr(namespace, self.dest, values)


class _BooleanOnce(argparse.BooleanOptionalAction):
    """``--x/--no-x``; a second occurrence of either raises :class:`ConfigError`."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        flag = option_string or self.option_strings[0]
        _refuse_repeat(namespace, flag, self.dest, flag)
        super().__call__(parser, namespace, values, option_string)


def _escape(text: str) -> str:
    """Help text is a %-format for argparse."""
    return text.replace("%", "%%")


def _metavar(spec: FieldSpec) -> str:
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
        return NONE_TEXT
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
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively.
        raise ConfigError(
            "config", str(path), "a TOML file with arrays and tables nested a few levels deep"
        ) from None
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

    The rules are the settings' own (:mod:`stream_detect.validation`); this
    adds the conversion of text and the merging. ``values`` are as a TOML
    file gives them (a JSON ``null`` is unset too). ``overrides`` win over ``values``; text in them
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
(did you mean 'batch_size'?); known keys: accept_after, batch_size, ...
    """
    return _build(values, overrides or {}, classes)


def _build(
    values: Mapping[str, Any],
    overrides: Mapping[str, Any],
    classes: tuple[type[Any], ...],
    *,
    file: str | None = None,
    flags: bool = False,
) -> tuple[Any, ...]:
    """The body of :func:`settings_from_mapping`, untyped in ``classes``.

    ``file`` names where ``values`` came from and ``flags`` says whether
    ``overrides`` are command-line flags, so an error can say where its value was given.
    """
    built = _unique_classes((*classes, *ALL_SETTINGS))
    specs = specs_by_name(built)
    for key, value in (*values.items(), *overrides.items()):
        if key in REMOVED_KEYS:
            raise ConfigError(key, value, REMOVED_KEYS[key], source=file if key in values else None)
        if key not in specs:
            raise ConfigError(
                key,
                value,
                "a known key"
                + did_you_mean(key, specs)
                + "; known keys: "
                + ", ".join(sorted(specs)),
                source=file if key in values else None,
            )
    from_flags = overrides.keys() if flags else ()
    final: dict[str, Any] = {}
    for name, spec in specs.items():
        value = spec.default
        try:
            if name in values:
                value = check_value(spec, values[name])
        except ConfigError as error:
            raise locate_error(error, (), values.keys(), file) from None
        try:
            if name in overrides:
                override = check_value(spec, _from_text(spec, overrides[name]))
                if spec.kind is dict and isinstance(value, dict) and override is not None:
                    override = {**value, **override}
                value = override
        except ConfigError as error:
            raise locate_error(error, from_flags, (), file) from None
        final[name] = value
    try:
        instances = {
            cls: cls(**{spec.name: final[spec.name] for spec in field_specs(cls)}) for cls in built
        }
        run, detector = instances[RunSettings], instances[DetectorSettings]
        check_run_with_detector(run, detector)
    except ConfigError as error:
        raise locate_error(error, from_flags, values.keys(), file) from None
    return tuple(instances[cls] for cls in classes)


def locate_error(
    error: ConfigError,
    from_flags: Iterable[str],
    from_file: Iterable[str],
    file: str | None,
) -> ConfigError:
    """``error`` naming the flag its key came from (if in ``from_flags``), else the file.

    A key in neither (a default, a value set in code) stays a plain config key.

    >>> located = locate_error(ConfigError("batch_size", "0", "an integer >= 1"),
    ...                        ["batch_size"], [], None)
    >>> str(located)
    "option --batch-size: got '0', expected an integer >= 1"
    >>> str(locate_error(ConfigError("transforms.x", "cube", "a transform"), [],
    ...                  ["transforms"], "run.toml"))
    "config key transforms.x in run.toml: got 'cube', expected a transform"
    """
    if error.flag is not None or error.source is not None:
        return error
    root = error.key.partition(".")[0]
    if root in set(from_flags):
        flag = _FLAG_OF.get(root, "--" + root.replace("_", "-"))
        return ConfigError(error.key, error.value, error.expected, flag=flag)
    if root in set(from_file) and file is not None:
        return ConfigError(error.key, error.value, error.expected, source=file)
    return error


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
    stream_detect.errors.ConfigError: option --batch-size: got 'seven', expected an integer >= 1
    """
    config = getattr(args, "config", None)
    try:
        values = read_config_file(config) if config is not None else {}
    except ConfigError as error:
        raise ConfigError(error.key, error.value, error.expected, flag="--config") from None
    specs = specs_by_name(_unique_classes((*classes, *ALL_SETTINGS)))
    overrides: dict[str, Any] = {
        name: getattr(args, name)
        for name, spec in specs.items()
        if spec.cli and getattr(args, name, None) is not None
    }
    for removed in REMOVED_KEYS:
        if getattr(args, removed, None) is not None:
            flag = "--" + removed.replace("_", "-")
            raise ConfigError(removed, getattr(args, removed), REMOVED_KEYS[removed], flag=flag)
    items = getattr(args, "transform", None)
    if items and "transforms" in specs:
        overrides["transforms"] = _transform_items(items)
    directions = getattr(args, "direction", None)
    if directions and "direction" in specs:
        overrides["direction"] = _direction_items(directions)
    return _build(values, overrides, classes, file=config, flags=True)


def locate_error_in_args(error: ConfigError, args: argparse.Namespace) -> ConfigError:
    """``error``, raised after :func:`load_settings` (opening a source, say), located in ``args``.

    It names the flag when ``args`` gave the key, else the ``--config`` file when
    that holds it, as :func:`load_settings` does for its own errors.

    >>> parser = argparse.ArgumentParser()
    >>> add_settings_arguments(parser)
    >>> args = parser.parse_args(["--source", "kafka:x"])
    >>> print(locate_error_in_args(ConfigError("source", "kafka:x", "a known scheme"), args))
    option --source: got 'kafka:x', expected a known scheme
    """
    specs = specs_by_name(ALL_SETTINGS)
    from_flags = [
        name for name, spec in specs.items() if spec.cli and getattr(args, name, None) is not None
    ]
    if getattr(args, "transform", None):
        from_flags.append("transforms")
    if getattr(args, "direction", None):
        from_flags.append("direction")
    config = getattr(args, "config", None)
    from_file: Iterable[str] = ()
    if config is not None:
        # The file was read once already; if it cannot be read now, say nothing of it.
        with contextlib.suppress(ConfigError):
            from_file = read_config_file(config).keys()
    return locate_error(error, from_flags, from_file, config)


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
                "transform",
                item,
                "FEATURE=SPEC, e.g. bytes=log:1 (SPEC: log, log:C, sqrt, root:K)",
                flag="--transform",
            )
        if feature in table:
            raise ConfigError(
                "transform",
                item,
                f"each feature once ({feature!r} is repeated)",
                flag="--transform",
            )
        table[feature] = spec.strip()
    return table


def _direction_items(items: Sequence[str]) -> dict[str, str]:
    """``["FEATURE=high", ...]`` from ``--direction`` as a table (words are checked later).

    >>> _direction_items(["cpu=high", "free = low"])
    {'cpu': 'high', 'free': 'low'}
    """
    table: dict[str, str] = {}
    for item in items:
        feature, sep, word = item.rpartition("=")
        if not sep or not feature.strip() or feature.strip() in table:
            raise ConfigError(
                "direction",
                item,
                "FEATURE=high, FEATURE=low or FEATURE=both, each feature once",
                flag="--direction",
            )
        table[feature.strip()] = word.strip()
    return table
