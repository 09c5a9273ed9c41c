"""The values a checkpoint's time-series state may hold: derived features and the likelihood.

A detector with a ``[derived]`` table saves each derived feature's per-key
state (``derived_state``); with ``likelihood = true`` it saves each key's
deviations and likelihood layer (``likelihood_state``).
:func:`check_series_state` refuses, before anything is restored and with one
sentence naming the field (``likelihood_state['web'].likelihood.rows``) and
what was expected, whatever those parts could not be restored from, as
:mod:`stream_detect.checkpoint_rules` does for the rest of the state.

>>> check_series_state({"derived": {}, "derived_state": []})
Traceback (most recent call last):
...
stream_detect.errors.ModelError: derived_state is [], expected a table of derived features by name
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from stream_detect.errors import ConfigError
from stream_detect.field_checks import (
    check_count,
    check_finite,
    check_vector,
    is_number,
    refuse,
    required,
)
from stream_detect.timestamps import SEASONS

__all__ = ["DERIVED_KINDS", "check_series_state"]

#: Kinds of derived feature whose state is the last values of each key.
_WINDOW_KINDS = frozenset({"moving_mean", "rolling_std", "difference"})
#: Every kind of derived feature a checkpoint may hold.
DERIVED_KINDS = _WINDOW_KINDS | {"seasonal_residual"}
_FLAGGED = ("clip", "exclude", "learn")


def check_series_state(state: dict[str, Any]) -> None:
    """Refuse a detector state whose derived or likelihood parts could not be restored.

    A state without the ``derived`` setting is not a time-series detector's
    and has neither part; with it, ``derived_state`` must be there, and
    ``likelihood_state`` too when the ``likelihood`` setting is not null.

    >>> check_series_state({"derived": {}, "likelihood": None, "derived_state": {}})
    >>> check_series_state({"derived": {}, "derived_state": {"m": {"kind": "moving_mean"}}})
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: derived_state['m'].size is missing, expected an integer >= 1
    """
    if "derived" not in state:
        return
    features = required(state, "derived_state", "derived_state", "a table of derived features")
    if not isinstance(features, dict):
        refuse("derived_state", features, "a table of derived features by name")
    for name, feature in features.items():
        _check_derived(f"derived_state[{name!r}]", feature)
    if state.get("likelihood") is not None:
        layers = required(state, "likelihood_state", "likelihood_state", "a table by key")
        if not isinstance(layers, dict):
            refuse("likelihood_state", layers, "a table of likelihood states by key")
        for key, entry in layers.items():
            _check_likelihood_entry(f"likelihood_state[{key!r}]", entry)


def _check_derived(where: str, feature: Any) -> None:
    if not isinstance(feature, dict):
        refuse(where, feature, "a table")
    kind = required(feature, "kind", where, f"one of {sorted(DERIVED_KINDS)}")
    if not isinstance(kind, str) or kind not in DERIVED_KINDS:
        refuse(f"{where}.kind", kind, f"one of {sorted(DERIVED_KINDS)}")
    if kind in _WINDOW_KINDS:
        size = required(feature, "size", where, "an integer >= 1")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            refuse(f"{where}.size", size, "an integer >= 1")
        recent = required(feature, "recent", where, "a table of recent values by key")
        held = _by_key(f"{where}.recent", recent, "lists of recent values")
        for key, values in held.items():
            if not isinstance(values, list):
                refuse(f"{where}.recent[{key!r}]", values, "a list of numbers")
            check_vector(f"{where}.recent[{key!r}]", values, len(values), limit=math.inf)
    else:
        season = required(feature, "season", where, f"one of {sorted(SEASONS)}")
        if not isinstance(season, str) or season not in SEASONS:
            refuse(f"{where}.season", season, f"one of {sorted(SEASONS)}")
        buckets = SEASONS[season]
        for name in ("counts", "sums"):
            table = required(feature, name, where, f"a table of {buckets} numbers by key")
            held = _by_key(f"{where}.{name}", table, f"lists of {buckets} numbers")
            for key, values in held.items():
                check_vector(f"{where}.{name}[{key!r}]", values, buckets, limit=math.inf)
    limit = feature.get("max_keys")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        refuse(f"{where}.max_keys", limit, "an integer >= 1 or null")
    order = feature.get("order", [])
    if not isinstance(order, list) or not all(isinstance(key, str) for key in order):
        refuse(f"{where}.order", order, "a list of keys")
    check_count(f"{where}.evicted", feature.get("evicted", 0))


def _check_likelihood_entry(where: str, entry: Any) -> None:
    if not isinstance(entry, dict):
        refuse(where, entry, "a table of deviations and likelihood")
    deviations = required(entry, "deviations", where, "a table")
    if not isinstance(deviations, dict):
        refuse(f"{where}.deviations", deviations, "a table")
    _check_deviations(f"{where}.deviations", deviations)
    layer = required(entry, "likelihood", where, "a table")
    if not isinstance(layer, dict):
        refuse(f"{where}.likelihood", layer, "a table")
    _check_layer(f"{where}.likelihood", layer)


def _check_deviations(where: str, state: dict[str, Any]) -> None:
    d = _n_features(where, state)
    check_finite(f"{where}.clip", required(state, "clip", where, "a finite number"))
    flagged = required(state, "flagged", where, f"one of {list(_FLAGGED)}")
    if flagged not in _FLAGGED:
        refuse(f"{where}.flagged", flagged, f"one of {list(_FLAGGED)}")
    counts = required(state, "counts", where, f"a list of {d} counts")
    if not isinstance(counts, list) or len(counts) != d:
        refuse(f"{where}.counts", counts, f"a list of {d} counts")
    for j, count in enumerate(counts):
        check_count(f"{where}.counts[{j}]", count)
    for name in ("mean", "m2"):
        values = required(state, name, where, f"a list of {d} numbers")
        check_vector(f"{where}.{name}", values, d, limit=math.inf)
    for name in ("step", "previous"):
        # An infinite step or a missing previous value is saved as null.
        values = required(state, name, where, f"a list of {d} numbers or nulls")
        if not isinstance(values, list) or len(values) != d:
            refuse(f"{where}.{name}", values, f"a list of {d} numbers or nulls")
        for j, value in enumerate(values):
            if value is not None:
                check_finite(f"{where}.{name}[{j}]", value)


def _check_layer(where: str, state: dict[str, Any]) -> None:
    # Imported here: only a run with the likelihood layer needs it.
    from stream_detect.likelihood import AnomalyLikelihood

    names = list(inspect.signature(AnomalyLikelihood).parameters)
    parameters = required(state, "parameters", where, "a table of the layer's parameters")
    if not isinstance(parameters, dict):
        refuse(f"{where}.parameters", parameters, "a table of the layer's parameters")
    at = f"{where}.parameters"
    for name in names:
        value = required(parameters, name, at, "a number")
        if not is_number(value):
            refuse(f"{at}.{name}", value, "a number")
    for name in parameters:
        if name not in names:
            refuse(at, f"a field {name!r}", f"only {', '.join(names)}")
    try:
        AnomalyLikelihood(**parameters)
    except ConfigError as error:
        refuse(f"{at}.{error.key}", error.value, error.expected)
    d = parameters["n_features"]
    check_count(f"{where}.rows", required(state, "rows", where, "an integer >= 0"))
    for name in ("recent_raw", "averaged", "values"):
        rows = required(state, name, where, f"a list of rows of {d} numbers")
        if not isinstance(rows, list):
            refuse(f"{where}.{name}", rows, f"a list of rows of {d} numbers")
        for i, row in enumerate(rows):
            check_vector(f"{where}.{name}[{i}]", row, d, limit=math.inf)
    for name in ("mean", "std"):
        check_vector(
            f"{where}.{name}",
            required(state, name, where, f"a list of {d} numbers"),
            d,
            limit=math.inf,
        )
    check_finite(
        f"{where}.previous_log_p", required(state, "previous_log_p", where, "a finite number")
    )
    since = required(state, "rows_since_alert", where, "an integer >= 0")
    check_count(f"{where}.rows_since_alert", since)


def _n_features(where: str, state: dict[str, Any]) -> int:
    d = required(state, "n_features", where, "an integer >= 1")
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        refuse(f"{where}.n_features", d, "an integer >= 1")
    return d


def _by_key(where: str, table: Any, expected: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        refuse(where, table, f"a table of {expected} by key")
    return table
