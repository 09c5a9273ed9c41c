"""The values a checkpoint's detector state may hold, checked before anything is restored.

A checkpoint is data that anyone with write access to its file could have
edited, truncated or produced with another program. :func:`check_detector_state`
walks the saved detector state and refuses, with one sentence naming the
field (``models[0].state.stats.mean[1]``) and the rule, whatever a restored
detector could not use: a wrong type, a NaN or infinity, a negative count or
second moment, a mean so large its square overflows, arrays of the wrong
shape, an unknown model type or threshold source, no model at all for a
state that learned events, two models of one key, a feature named twice,
or a field the detector reads that is missing. Keyed diagonal models saved
as columns are held to the same rules by :mod:`stream_detect.keyed_columns`.
Nothing is coerced: a value is used as saved or refused. The time-series
parts (derived features, the likelihood layer) are checked by
:mod:`stream_detect.series_state_rules`; both are built from
:mod:`stream_detect.field_checks`.

>>> check_detector_state({"features": ["x"], "log_epsilon": "x"})
Traceback (most recent call last):
...
stream_detect.errors.ModelError: log_epsilon is 'x', expected a finite number or null
"""

from __future__ import annotations

import math
from typing import Any

from stream_detect.field_checks import (
    MAX_COUNT,
    MAX_MEAN_MAGNITUDE,
    check_count,
    check_entries,
    check_finite,
    check_vector,
    is_number,
    is_string,
    refuse,
    required,
)
from stream_detect.keyed_columns import decode

__all__ = [
    "EPSILON_SOURCES",
    "MAX_MEAN_MAGNITUDE",
    "MODEL_TYPES",
    "STATS_KINDS",
    "check_detector_state",
]

#: The entries of a saved list that may also hold nulls, as :func:`check_entries` tests them.
_NUMBER = (is_number, "a number")
_STRING = (is_string, "a string")
#: Where a threshold in force came from; a state naming anything else was not written here.
EPSILON_SOURCES = frozenset({"unset", "initial", "f1", "default", "likelihood", "budget"})
#: Model state types a checkpoint may hold (data only: never pickle or code).
MODEL_TYPES = frozenset({"gaussian"})
#: The running statistics a Gaussian model's state may hold.
STATS_KINDS = frozenset({"diagonal", "full"})

_COUNTERS = (
    "events",
    "alerts",
    "retunes",
    "evicted",
    "relearned",
    "labels_since_retune",
    "next_retune_at",
)
_MODELS = "a list of models or a table of columns"
_CHOICE_NUMBERS = ("log_epsilon", "f1", "precision", "recall")
_CHOICE_FIELDS = (*_CHOICE_NUMBERS, "n_flagged")


def check_detector_state(state: dict[str, Any]) -> None:
    """Refuse a detector state whose values a detector could not use; see the module.

    Every field the detector reads must be there; the detector's own restore
    still refuses settings that differ from this run's.

    >>> counters = dict.fromkeys(_COUNTERS, 0)
    >>> validation = {"capacity_per_class": 10, "n_features": 2, "n_seen": 0, "rows": [],
    ...     "labels": [], "keys": []}
    >>> recent = {"ids": [], "keys": [], "rows": []}
    >>> state = {"features": ["x", "y"], "log_epsilon": -3.5, "epsilon_source": "f1",
    ...     "counters": counters, "models": [], "validation": validation,
    ...     "recent_events": recent}
    >>> check_detector_state(state)
    >>> check_detector_state({**state, "validation": {**validation, "rows": 7}})
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: validation.rows is 7, expected a list of rows of 2 numbers
    >>> del counters["alerts"]
    >>> check_detector_state(state)
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: counters.alerts is missing, expected an integer >= 0

    Raises
    ------
    ModelError
        One sentence naming the field, the value and what was expected.
    """
    features: Any = state.get("features")
    # A detector with derived features names the event's fields in ``features``
    # and the columns its models see in ``model_features``.
    modelled = state.get("model_features", features)
    for name, names in (("features", features), ("model_features", modelled)):
        if not isinstance(names, list) or not all(isinstance(f, str) for f in names):
            refuse(name, names, "a list of feature names")
        if len(set(names)) != len(names):
            refuse(name, names, "feature names, each at most once")
    d = len(modelled)
    required(state, "log_epsilon", "log_epsilon", "a finite number or null")
    for name in ("log_epsilon", "given_log_epsilon"):
        if state.get(name) is not None:
            check_finite(name, state[name])
    sources = f"one of {sorted(EPSILON_SOURCES)}"
    source = required(state, "epsilon_source", "epsilon_source", sources)
    if not isinstance(source, str) or source not in EPSILON_SOURCES:
        refuse("epsilon_source", source, sources)
    for name in ("accept_after", "next_rate_at"):
        if name in state:
            check_count(name, state[name])
    _check_tuning(state)
    _check_validation(required(state, "validation", "validation", "a table"))
    counters = required(state, "counters", "counters", "a table of counts")
    if not isinstance(counters, dict):
        refuse("counters", counters, "a table of counts")
    for name in _COUNTERS:
        check_count(f"counters.{name}", required(counters, name, "counters", "an integer >= 0"))
    # Counted since later versions: an older checkpoint without it is still read.
    if "evicted_in_warmup" in counters:
        check_count("counters.evicted_in_warmup", counters["evicted_in_warmup"])
    models = required(state, "models", "models", _MODELS)
    if not isinstance(models, (list, dict)):
        refuse("models", models, _MODELS)
    # Keyed diagonal models are saved as columns, checked a column at a time.
    held = len(decode(models, d).keys) if isinstance(models, dict) else len(models)
    if not held and counters.get("events", 0):
        refuse("models", models, "at least one model for a state that learned events")
    if isinstance(models, list):
        _check_models(models, d)
    _check_recent_events(
        required(state, "recent_events", "recent_events", "a table of ids, keys and rows"), d
    )
    recent = state.get("recent_scores")
    if recent is not None:
        # A score of an unusable event is NaN, saved as null.
        check_entries("recent_scores", recent, "a list of numbers", _NUMBER)


def _check_models(models: list[Any], d: int) -> None:
    """Models saved as a list of one table each."""
    held: dict[str, int] = {}
    for i, entry in enumerate(models):
        _check_model(f"models[{i}]", entry, d)
        # One model per key: restoring a second would silently replace the first.
        first = held.setdefault(entry["key"], i)
        if first != i:
            refuse(f"models[{i}].key", entry["key"], f"a key no other model has (models[{first}])")


def _check_model(where: str, entry: Any, d: int) -> None:
    if not isinstance(entry, dict):
        refuse(where, entry, "a table")
    if not isinstance(required(entry, "key", where, "a string"), str):
        refuse(f"{where}.key", entry["key"], "a string")
    for name in ("learned", "run_length"):
        check_count(f"{where}.{name}", required(entry, name, where, "an integer >= 0"))
    pending = required(entry, "pending", where, "a list of feature vectors")
    if not isinstance(pending, list):
        refuse(f"{where}.pending", pending, "a list of feature vectors")
    for j, row in enumerate(pending):
        check_vector(f"{where}.pending[{j}]", row, d, limit=math.inf)
    model = required(entry, "state", where, "a table")
    if not isinstance(model, dict):
        refuse(f"{where}.state", model, "a table")
    kind = model.get("type")
    if not isinstance(kind, str) or kind not in MODEL_TYPES:
        refuse(f"{where}.state.type", kind, f"one of {sorted(MODEL_TYPES)}")
    stats = required(model, "stats", f"{where}.state", "a table")
    if not isinstance(stats, dict):
        refuse(f"{where}.state.stats", stats, "a table")
    at = f"{where}.state.stats"
    kind = required(stats, "kind", at, f"one of {sorted(STATS_KINDS)}")
    if not isinstance(kind, str) or kind not in STATS_KINDS:
        refuse(f"{at}.kind", kind, f"one of {sorted(STATS_KINDS)}")
    half_life = stats.get("half_life")
    if half_life is not None and not (is_number(half_life) and 0 < half_life < math.inf):
        refuse(f"{at}.half_life", half_life, "a positive number of events or null")
    n = stats.get("n")
    check_finite(f"{at}.n", n)
    assert n is not None
    if not 0 <= n <= MAX_COUNT:
        refuse(f"{at}.n", n, f"a count >= 0 and at most {MAX_COUNT}")
    check_vector(f"{at}.mean", stats.get("mean"), d, limit=MAX_MEAN_MAGNITUDE)
    second: Any = stats.get("second")
    if isinstance(second, list) and second and isinstance(second[0], list):
        if len(second) != d:
            refuse(f"{at}.second", f"{len(second)} rows", f"{d} rows of {d}")
        for j, row in enumerate(second):
            check_vector(f"{at}.second[{j}]", row, d, limit=math.inf)
        diagonal = [row[j] for j, row in enumerate(second)]
    else:
        check_vector(f"{at}.second", second, d, limit=math.inf)
        diagonal = second
    for j, value in enumerate(diagonal):
        if value < 0:
            refuse(f"{at}.second", value, f"sums of squared deviations >= 0 (feature {j})")


def _check_tuning(state: dict[str, Any]) -> None:
    """The last threshold choice, the event rate and the alert budget, when saved."""
    choice = state.get("last_choice")
    if choice is not None:
        if not isinstance(choice, dict):
            refuse("last_choice", choice, "a table or null")
        for name in choice:
            if name not in _CHOICE_FIELDS:
                refuse("last_choice", f"a field {name!r}", f"only {', '.join(_CHOICE_FIELDS)}")
        for name in _CHOICE_NUMBERS:
            check_finite(f"last_choice.{name}", choice.get(name))
        check_count("last_choice.n_flagged", choice.get("n_flagged"))
    rate = state.get("rate")
    if rate is not None:
        if not isinstance(rate, dict):
            refuse("rate", rate, "a table or null")
        check_count("rate.timed_events", rate.get("timed_events"))
        for name in ("first_second", "last_second"):
            # No timed event yet is saved as null.
            if required(rate, name, "rate", "a finite number or null") is not None:
                check_finite(f"rate.{name}", rate[name])
        # The rate is re-read on a schedule saved beside it.
        for name in ("accept_after", "next_rate_at"):
            required(state, name, name, "an integer >= 0")
    budget = state.get("budget")
    if budget is not None:
        if not isinstance(budget, dict):
            refuse("budget", budget, "a table or null")
        scores = check_entries("budget.scores", budget.get("scores"), "a list of numbers", _NUMBER)
        # The threshold that judged each score; absent in checkpoints written before it was kept.
        floors = budget.get("floors")
        if floors is not None:
            expected = f"a list of {len(scores)} numbers or nulls"
            check_entries("budget.floors", floors, expected, _NUMBER, len(scores))


def _check_validation(validation: Any) -> None:
    """The labelled rows ε is tuned on: rows, 0/1 labels, keys and ids, one of each per row."""
    if not isinstance(validation, dict):
        refuse("validation", validation, "a table")
    for name in ("capacity_per_class", "n_features"):
        value = required(validation, name, "validation", "an integer >= 1")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            refuse(f"validation.{name}", value, "an integer >= 1")
    d = validation["n_features"]
    lists: dict[str, list[Any]] = {}
    for name, expected in (
        ("rows", f"a list of rows of {d} numbers"),
        ("labels", "a list of 0/1 labels"),
        ("keys", "a list of keys (strings or null)"),
    ):
        values = required(validation, name, "validation", expected)
        if not isinstance(values, list):
            refuse(f"validation.{name}", values, expected)
        lists[name] = values
    rows, labels, keys = lists["rows"], lists["labels"], lists["keys"]
    if not len(rows) == len(labels) == len(keys):
        counts = f"{len(rows)} rows, {len(labels)} labels, {len(keys)} keys"
        refuse("validation", counts, "one label and one key per row")
    for i, row in enumerate(rows):
        check_vector(f"validation.rows[{i}]", row, d, limit=math.inf)
    for i, label in enumerate(labels):
        if isinstance(label, bool) or label not in (0, 1):
            refuse(f"validation.labels[{i}]", label, "0 or 1")
    check_entries("validation.keys", keys, "a list of keys (strings or null)", _STRING)
    # The rows' event ids; checkpoints written before they were kept have none.
    ids = validation.get("ids")
    if ids is not None:
        expected = f"a list of {len(rows)} event ids (strings or null)"
        check_entries("validation.ids", ids, expected, _STRING, len(rows))
    check_count("validation.n_seen", required(validation, "n_seen", "validation", "a count"))
    if validation["n_seen"] < len(rows):
        refuse("validation.n_seen", validation["n_seen"], f"at least its {len(rows)} rows")


def _check_recent_events(recent: Any, d: int) -> None:
    """Remembered events (for feedback labels): ids, keys and rows, one of each per event."""
    if not isinstance(recent, dict):
        refuse("recent_events", recent, "a table of ids, keys and rows")
    lists: dict[str, list[Any]] = {}
    for name in ("ids", "keys", "rows"):
        values = recent.get(name)
        if not isinstance(values, list):
            refuse(f"recent_events.{name}", values, "a list")
        lists[name] = values
    ids, keys, rows = lists["ids"], lists["keys"], lists["rows"]
    if not len(ids) == len(keys) == len(rows):
        refuse(
            "recent_events",
            f"{len(ids)} ids, {len(keys)} keys, {len(rows)} rows",
            "one key and one row per id",
        )
    for name, values in (("ids", ids), ("keys", keys)):
        for i, value in enumerate(values):
            if not isinstance(value, str):
                refuse(f"recent_events.{name}[{i}]", value, "a string")
    for i, row in enumerate(rows):
        check_vector(f"recent_events.rows[{i}]", row, d, limit=math.inf)
