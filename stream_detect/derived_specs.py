"""The ``[derived]`` table and ``--derive`` flags: which time-series feature is made of which field.

A derived feature is declared by name, with the event field it is made of
(``of``), its ``kind`` and the kind's one parameter::

    [derived]
    value_seasonal = {of = "value", kind = "seasonal", season = "hour_of_day"}
    value_mean12 = {of = "value", kind = "moving_mean", k = 12}
    value_std48 = {of = "value", kind = "rolling_std", w = 48}
    value_change = {of = "value", kind = "difference"}
    value_itself = {of = "value", kind = "value"}

or on the command line ``--derive NAME=KIND:FIELD[:ARG]`` (repeatable), e.g.
``--derive value_mean12=moving_mean:value:12``. The kinds are those of
:mod:`stream_detect.derived` plus ``value``, the field as it is (so a field
that derived features are made of can still be modelled itself).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stream_detect.derived import (
    DerivedFeature,
    Difference,
    MovingMean,
    RollingStd,
    SeasonalResidual,
)
from stream_detect.errors import ConfigError
from stream_detect.timestamps import SEASONS

__all__ = ["DERIVED_KINDS", "MAX_WINDOW", "build_feature", "check_derived_table", "derive_items"]

#: Longest window of a moving mean or rolling std, in rows: each row's feature walks its
#: window, and a key keeps that many values.
MAX_WINDOW = 100_000

#: kind -> the name of its parameter (None: it has none).
DERIVED_KINDS: dict[str, str | None] = {
    "seasonal": "season",
    "moving_mean": "k",
    "rolling_std": "w",
    "difference": None,
    "value": None,
}


def _check_entry(name: str, entry: Any) -> dict[str, Any]:
    key = f"derived.{name}"
    if not isinstance(entry, Mapping):
        raise ConfigError(
            key, entry, 'a table such as {of = "value", kind = "moving_mean", k = 12}'
        )
    field = entry.get("of")
    if not isinstance(field, str) or not field:
        raise ConfigError(f"{key}.of", field, "the name of the event field it is made of")
    kind = entry.get("kind")
    if kind not in DERIVED_KINDS:
        raise ConfigError(f"{key}.kind", kind, "one of " + ", ".join(DERIVED_KINDS))
    parameter = DERIVED_KINDS[kind]
    allowed = {"of", "kind"} | ({parameter} if parameter else set())
    extra = sorted(set(entry) - allowed)
    if extra:
        raise ConfigError(f"{key}.{extra[0]}", entry[extra[0]], f"only {sorted(allowed)}")
    checked: dict[str, Any] = {"of": field, "kind": kind}
    if parameter == "season":
        season = entry.get("season")
        if season not in SEASONS:
            raise ConfigError(f"{key}.season", season, "one of " + ", ".join(SEASONS))
        checked["season"] = season
    elif parameter is not None:
        size = entry.get(parameter)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_WINDOW:
            raise ConfigError(
                f"{key}.{parameter}", size, f"an integer from 1 to {MAX_WINDOW:,} (rows)"
            )
        checked[parameter] = size
    return checked


def check_derived_table(table: Mapping[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    """Every entry of a ``[derived]`` table checked, in a canonical form; errors name the key.

    >>> check_derived_table({"m": {"of": "value", "kind": "moving_mean", "k": 12}})
    {'m': {'of': 'value', 'kind': 'moving_mean', 'k': 12}}
    >>> check_derived_table({"m": {"of": "value", "kind": "moving_mean", "k": 0}})
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key derived.m.k: got 0, expected an integer from 1 \
to 100,000 (rows)
    """
    if table is None:
        return None
    if not isinstance(table, Mapping):
        raise ConfigError("derived", table, "a table of NAME = {of = FIELD, kind = KIND, ...}")
    return {str(name): _check_entry(str(name), entry) for name, entry in table.items()}


def derive_items(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--derive NAME=KIND:FIELD[:ARG]`` flags as a ``[derived]`` table.

    >>> derive_items(["s=seasonal:value:hour_of_day", "m=moving_mean:value:12"])
    {'s': {'of': 'value', 'kind': 'seasonal', 'season': 'hour_of_day'}, \
'm': {'of': 'value', 'kind': 'moving_mean', 'k': 12}}
    """
    table: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, spec = item.partition("=")
        parts = spec.strip().split(":")
        name = name.strip()
        if not sep or not name or len(parts) not in (2, 3) or name in table:
            raise ConfigError(
                "derive",
                item,
                "NAME=KIND:FIELD[:ARG] once per NAME, e.g. value_mean12=moving_mean:value:12",
                flag="--derive",
            )
        kind, field = parts[0], parts[1]
        entry: dict[str, Any] = {"of": field, "kind": kind}
        parameter = DERIVED_KINDS.get(kind)
        if len(parts) == 3 and parameter is not None:
            arg = parts[2]
            entry[parameter] = int(arg) if arg.isdigit() else arg
        elif len(parts) == 3:
            entry["arg"] = parts[2]
        try:
            table[name] = _check_entry(name, entry)
        except ConfigError as error:
            raise ConfigError(error.key, error.value, error.expected, flag="--derive") from None
    return table


def build_feature(spec: Mapping[str, Any], max_keys: int | None = None) -> DerivedFeature | None:
    """The feature a checked entry describes; None for kind ``value`` (the field itself).

    ``max_keys`` bounds the keys it holds state for (None: unbounded).

    >>> feature = build_feature({"of": "x", "kind": "rolling_std", "w": 48}, max_keys=10)
    >>> type(feature).__name__, feature.max_keys
    ('RollingStd', 10)
    """
    kind = spec["kind"]
    if kind == "seasonal":
        return SeasonalResidual(spec["season"], max_keys)
    if kind == "moving_mean":
        return MovingMean(int(spec["k"]), max_keys)
    if kind == "rolling_std":
        return RollingStd(int(spec["w"]), max_keys)
    if kind == "difference":
        return Difference(max_keys=max_keys)
    return None
