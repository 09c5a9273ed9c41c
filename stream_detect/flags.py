"""Settings as command-line flags: one flag per settings field, each given at most once.

:func:`add_settings_arguments` adds ``--config``, a flag for every field of
the settings dataclasses (``--max-latency-ms`` for ``max_latency_ms``;
boolean fields get ``--x/--no-x``) and ``--transform FEATURE=SPEC``;
:func:`load_settings` reads the ``--config`` file and lets the flags given
override it (:mod:`stream_detect.config` merges and checks them).

Rules a user may rely on:

* A flag is given once: ``--features a --features b`` is refused (name
  every feature in one ``--features a,b``). Only ``--transform``,
  ``--derive`` and ``--direction`` repeat.
* An error about a value names the flag when the flag gave it, else the key
  and the ``--config`` file, as :mod:`stream_detect.config` words it.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar, overload

from stream_detect.config import (
    ALL_SETTINGS,
    REMOVED_KEYS,
    build_settings,
    locate_error,
    read_config_file,
    unique_classes,
)
from stream_detect.distinct_files import named_path, refuse_output_over_input, run_files
from stream_detect.errors import ConfigError
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.validation import NONE_TEXT, FieldSpec, field_specs, specs_by_name

__all__ = [
    "StoreOnce",
    "add_settings_arguments",
    "file_name",
    "load_settings",
    "locate_error_in_args",
]

_T1 = TypeVar("_T1")
_T2 = TypeVar("_T2")

#: Where :class:`StoreOnce` notes the flags already given on a command line.
_SEEN = "_flags_given"


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
    >>> "(default: 4096)" in parser.format_help()
    True
    """
    parser.add_argument(
        "--config",
        metavar="FILE.toml",
        default=None,
        help="TOML file of settings: keys named like the flags with underscores "
        "(batch_size = 512), tables [transforms], [direction], [derived], [model_params] "
        "and [kafka]; flags override it",
    )
    for removed in REMOVED_KEYS:
        # Hidden: a removed flag gets the sentence saying what replaced it, not argparse's usage.
        parser.add_argument(
            "--" + removed.replace("_", "-"), dest=removed, default=None, help=argparse.SUPPRESS
        )
    for cls in unique_classes(classes or ALL_SETTINGS):
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
            if spec.name == "derived":
                group.add_argument(
                    "--derive",
                    action="append",
                    metavar="NAME=KIND:FIELD[:ARG]",
                    default=None,
                    help=_escape(
                        "a time-series feature: seasonal:FIELD:hour_of_day|day_of_week|"
                        "hour_of_week, moving_mean:FIELD:K, rolling_std:FIELD:W, "
                        "difference:FIELD, value:FIELD (repeat; adds to the [derived] table)"
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


def file_name(value: str) -> str:
    """An argparse ``type`` for a file argument: any path but the empty one.

    An empty name (often an unset shell variable, ``--out "$MODEL"``) would
    otherwise be read as the current folder and reported as one.

    >>> parser = argparse.ArgumentParser(prog="fit", exit_on_error=False)
    >>> _ = parser.add_argument("--out", type=file_name)
    >>> parser.parse_args(["--out", "model.json"]).out
    'model.json'
    >>> parser.parse_args(["--out", ""])
    Traceback (most recent call last):
    ...
    argparse.ArgumentError: argument --out: got '', expected a file name
    """
    if not value:
        raise argparse.ArgumentTypeError("got '', expected a file name")
    return value


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
    class of ``classes``, in that order. An output of the run settings (sink,
    dead letters, checkpoint) that names the ``--config`` file is refused
    (:mod:`stream_detect.distinct_files`): the file is read again at each reload.

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
    specs = specs_by_name(unique_classes((*classes, *ALL_SETTINGS)))
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
    derives = getattr(args, "derive", None)
    if derives and "derived" in specs:
        from stream_detect.derived_specs import derive_items  # only --derive needs it

        overrides["derived"] = derive_items(derives)
    directions = getattr(args, "direction", None)
    if directions and "direction" in specs:
        overrides["direction"] = _direction_items(directions)
    settings = build_settings(values, overrides, classes, file=config, flags=True)
    if config is not None:
        # The config is read again at every reload (SIGHUP): an output appended to it
        # would break the next one. Checked here, so the start and each reload are.
        for found in settings:
            if isinstance(found, RunSettings):
                try:
                    refuse_output_over_input(run_files(found)[0], {"--config": named_path(config)})
                except ConfigError as error:
                    raise locate_error_in_args(error, args) from None
    return settings


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
    if getattr(args, "derive", None):
        from_flags.append("derived")
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
    usage = "FEATURE=SPEC, e.g. bytes=log:1 (SPEC: log, log:C, sqrt, root:K)"
    return _feature_table(items, "transform", usage, name_repeats=True, value_required=True)


def _direction_items(items: Sequence[str]) -> dict[str, str]:
    """``["FEATURE=high", ...]`` from ``--direction`` as a table (words are checked later).

    >>> _direction_items(["cpu=high", "free = low"])
    {'cpu': 'high', 'free': 'low'}
    """
    usage = "FEATURE=high, FEATURE=low or FEATURE=both, each feature once"
    return _feature_table(items, "direction", usage, name_repeats=False, value_required=False)


def _feature_table(
    items: Sequence[str], key: str, usage: str, *, name_repeats: bool, value_required: bool
) -> dict[str, str]:
    """``FEATURE=VALUE`` flag values as a table; ConfigError naming ``--KEY`` if one is not.

    A value never holds "=", a feature name might, so the last "=" splits them.
    A feature given twice is refused: saying which (``name_repeats``) or with ``usage``.
    """
    table: dict[str, str] = {}
    for item in items:
        feature, sep, value = item.rpartition("=")
        feature = feature.strip()
        if not sep or not feature or (value_required and not value.strip()):
            raise ConfigError(key, item, usage, flag=f"--{key}")
        if feature in table:
            expected = f"each feature once ({feature!r} is repeated)" if name_repeats else usage
            raise ConfigError(key, item, expected, flag=f"--{key}")
        table[feature] = value.strip()
    return table
