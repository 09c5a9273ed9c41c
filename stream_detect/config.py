"""Settings from a TOML config file and command-line overrides, merged and checked.

Every field of the settings dataclasses (:mod:`stream_detect.settings`) is at
once a key of a ``--config`` TOML file and a command-line flag
(:mod:`stream_detect.flags`): key ``max_latency_ms`` is flag
``--max-latency-ms`` is field ``max_latency_ms``. Fields marked ``cli=False``
in their metadata are config-only tables (``[model_params]``,
``[transforms]``); ``--transform FEATURE=SPEC`` adds to or overrides entries
of the ``[transforms]`` table.

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
* An integer is accepted where a number is expected; a boolean is never a number.
* TOML has no null: for a field whose default may be unset (``checkpoint``,
  ``log_epsilon``, ...), the string ``"none"`` (any case) means unset, in the
  file and on the command line (``--checkpoint none`` disables a checkpoint the
  file asked for).
* Relative paths and ``file:`` URIs are relative to the working directory of
  the process, not to the config file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar, overload

from stream_detect.errors import ConfigError
from stream_detect.setting_combinations import check_run_with_detector
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.small_files import CONFIG_FILE_LIMIT, FileTooLarge, read_small_file, shown_size
from stream_detect.validation import (
    NONE_TEXT,
    FieldSpec,
    check_value,
    did_you_mean,
    expected_text,
    field_specs,
    specs_by_name,
)

__all__ = [
    "ALL_SETTINGS",
    "REMOVED_KEYS",
    "build_settings",
    "locate_error",
    "read_config_file",
    "settings_from_mapping",
    "unique_classes",
]

#: Every settings class; a config file may hold the keys of all of them, whichever a command uses.
ALL_SETTINGS: tuple[type[Any], ...] = (RunSettings, DetectorSettings)

_T1 = TypeVar("_T1")
_T2 = TypeVar("_T2")


#: The flag of a config key, where it is not the key's own (``[transforms]`` has ``--transform``).
_FLAG_OF = {"transforms": "--transform", "derived": "--derive", "direction": "--direction"}
#: Settings that no longer exist, with what to use instead.
REMOVED_KEYS = {
    "contamination": "no such setting: without labels alerts compare the calibrated log tail "
    "with log_tail_epsilon (remove contamination)",
    "relearn_after": "no such setting: it is now accept_after (alerts count up, calm events down)",
}


def unique_classes(classes: Iterable[type[Any]]) -> tuple[type[Any], ...]:
    """``classes`` without repeats, in their first order.

    >>> unique_classes([RunSettings, DetectorSettings, RunSettings]) == ALL_SETTINGS
    True
    """
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


# -- config files and mappings ---------------------------------------------------------------


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file; :class:`ConfigError` with key ``config`` if it cannot be used.

    A file of more than :data:`~stream_detect.small_files.CONFIG_FILE_LIMIT`
    bytes (1 MiB) is refused, read no further than that.

    >>> read_config_file("no/such/file.toml")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key config: got 'no/such/file.toml', expected an \
existing TOML file
    """
    # Imported here: most runs are configured by flags alone.
    import tomllib

    file = Path(path)
    if not file.exists():
        raise ConfigError("config", str(path), "an existing TOML file")
    try:
        return tomllib.loads(read_small_file(file, CONFIG_FILE_LIMIT, "config file").decode())
    except FileTooLarge as exc:
        expected = f"a TOML file of at most {shown_size(exc.limit)} (it holds more)"
        raise ConfigError("config", str(path), expected) from None
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
(did you mean 'batch_size'?); known keys: accept_after, ...
    """
    return build_settings(values, overrides or {}, classes)


def _untabled(value: Any, specs: Mapping[str, Any]) -> str:
    """A hint for a table of settings, which are top-level keys (``[detector]``, say).

    >>> _untabled({"min_samples": 5}, {"min_samples": None})
    ' (settings are top-level keys: write min_samples above any [table])'
    >>> _untabled({"nope": 5}, {"min_samples": None}), _untabled(5, {})
    ('', '')
    """
    if not isinstance(value, dict) or not value or not set(value) <= set(specs):
        return ""
    return f" (settings are top-level keys: write {', '.join(value)} above any [table])"


def build_settings(
    values: Mapping[str, Any],
    overrides: Mapping[str, Any],
    classes: tuple[type[Any], ...],
    *,
    file: str | None = None,
    flags: bool = False,
) -> tuple[Any, ...]:
    """:func:`settings_from_mapping`, untyped in ``classes``, for callers that know the origins.

    ``file`` names where ``values`` came from and ``flags`` says whether
    ``overrides`` are command-line flags, so an error can say where its value was given.

    >>> (run,) = build_settings({}, {"batch_size": "7"}, (RunSettings,), flags=True)
    >>> run.batch_size
    7
    """
    built = unique_classes((*classes, *ALL_SETTINGS))
    specs = specs_by_name(built)
    for key, value in (*values.items(), *overrides.items()):
        if key in REMOVED_KEYS:
            raise ConfigError(key, value, REMOVED_KEYS[key], source=file if key in values else None)
        if key not in specs:
            raise ConfigError(
                key,
                value,
                "a known key"
                + (_untabled(value, specs) or did_you_mean(key, specs))
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
