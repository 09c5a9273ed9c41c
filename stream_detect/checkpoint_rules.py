"""The values a checkpoint's detector state may hold, checked before anything is restored.

A checkpoint is data that anyone with write access to its file could have
edited, truncated or produced with another program. :func:`check_detector_state`
walks the saved detector state and refuses, with one sentence naming the
field (``models[0].state.stats.mean[1]``) and the rule, whatever a restored
detector could not use: a wrong type, a NaN or infinity, a negative count or
second moment, a mean so large its square overflows, arrays of the wrong
shape, an unknown model type or threshold source, or no model at all for a
state that learned events. Nothing is coerced: a value is used as saved or
refused.

>>> check_detector_state({"features": ["x"], "log_epsilon": "x"})
Traceback (most recent call last):
...
stream_detect.errors.ModelError: log_epsilon is 'x', expected a finite number or null
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

from stream_detect.errors import ModelError

__all__ = [
    "EPSILON_SOURCES",
    "MAX_COUNT",
    "MAX_MEAN_MAGNITUDE",
    "MODEL_TYPES",
    "check_detector_state",
]

#: Where a threshold in force came from; a state naming anything else was not written here.
EPSILON_SOURCES = frozenset({"unset", "initial", "f1", "default", "likelihood", "budget"})
#: Model state types a checkpoint may hold (data only: never pickle or code).
MODEL_TYPES = frozenset({"gaussian"})
#: Largest saved mean accepted: its square must stay a finite double (about 1.3e154).
MAX_MEAN_MAGNITUDE = 1e154
#: Largest count accepted: the checkpoint is written back with 64-bit integers.
MAX_COUNT = 2**63 - 1

_COUNTERS = (
    "events",
    "alerts",
    "retunes",
    "evicted",
    "relearned",
    "labels_since_retune",
    "next_retune_at",
)
_CHOICE_NUMBERS = ("log_epsilon", "f1", "precision", "recall")


def check_detector_state(state: dict[str, Any]) -> None:
    """Refuse a detector state whose values a detector could not use; see the module.

    Only what is present is checked for its value; the detector's own restore
    still refuses missing keys and settings that differ from this run's.

    >>> check_detector_state({"features": ["x", "y"], "log_epsilon": -3.5,
    ...     "epsilon_source": "f1", "counters": {"events": 0}, "models": []})

    Raises
    ------
    ModelError
        One sentence naming the field, the value and what was expected.
    """
    features = state.get("features")
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        _refuse("features", features, "a list of feature names")
    # A detector with derived features names the event's fields in ``features``
    # and the columns its models see in ``model_features``.
    modelled = state.get("model_features", features)
    if not isinstance(modelled, list) or not all(isinstance(f, str) for f in modelled):
        _refuse("model_features", modelled, "a list of feature names")
    d = len(modelled)
    for name in ("log_epsilon", "given_log_epsilon"):
        if state.get(name) is not None:
            _finite(name, state[name])
    source = state.get("epsilon_source", "unset")
    if not isinstance(source, str) or source not in EPSILON_SOURCES:
        _refuse("epsilon_source", source, f"one of {sorted(EPSILON_SOURCES)}")
    for name in ("accept_after", "next_rate_at"):
        if name in state:
            _count(name, state[name])
    _check_tuning(state)
    counters = state.get("counters", {})
    if not isinstance(counters, dict):
        _refuse("counters", counters, "a table of counts")
    for name in _COUNTERS:
        if name in counters:
            _count(f"counters.{name}", counters[name])
    models = state.get("models", [])
    if not isinstance(models, list):
        _refuse("models", models, "a list of models")
    if not models and counters.get("events", 0):
        _refuse("models", models, "at least one model for a state that learned events")
    for i, entry in enumerate(models):
        _check_model(f"models[{i}]", entry, d)
    recent_events = state.get("recent_events")
    if recent_events is not None:
        _check_recent_events(recent_events, d)
    recent = state.get("recent_scores")
    if recent is not None:
        if not isinstance(recent, list):
            _refuse("recent_scores", recent, "a list of numbers")
        for i, score in enumerate(recent):
            # A score of an unusable event is NaN, saved as null.
            if score is not None and not _is_number(score):
                _refuse(f"recent_scores[{i}]", score, "a number or null")


def _check_model(where: str, entry: Any, d: int) -> None:
    if not isinstance(entry, dict):
        _refuse(where, entry, "a table")
    if not isinstance(entry.get("key", ""), str):
        _refuse(f"{where}.key", entry.get("key"), "a string")
    for name in ("learned", "run_length"):
        if name in entry:
            _count(f"{where}.{name}", entry[name])
    pending = entry.get("pending", [])
    if not isinstance(pending, list):
        _refuse(f"{where}.pending", pending, "a list of feature vectors")
    for j, row in enumerate(pending):
        _vector(f"{where}.pending[{j}]", row, d, limit=math.inf)
    model = entry.get("state")
    if not isinstance(model, dict):
        _refuse(f"{where}.state", model, "a table")
    if model.get("type") not in MODEL_TYPES:
        _refuse(f"{where}.state.type", model.get("type"), f"one of {sorted(MODEL_TYPES)}")
    stats = model.get("stats")
    if not isinstance(stats, dict):
        _refuse(f"{where}.state.stats", stats, "a table")
    at = f"{where}.state.stats"
    n = stats.get("n")
    _finite(f"{at}.n", n)
    assert n is not None
    if not 0 <= n <= MAX_COUNT:
        _refuse(f"{at}.n", n, f"a count >= 0 and at most {MAX_COUNT}")
    _vector(f"{at}.mean", stats.get("mean"), d, limit=MAX_MEAN_MAGNITUDE)
    second: Any = stats.get("second")
    if isinstance(second, list) and second and isinstance(second[0], list):
        if len(second) != d:
            _refuse(f"{at}.second", f"{len(second)} rows", f"{d} rows of {d}")
        for j, row in enumerate(second):
            _vector(f"{at}.second[{j}]", row, d, limit=math.inf)
        diagonal = [row[j] for j, row in enumerate(second)]
    else:
        _vector(f"{at}.second", second, d, limit=math.inf)
        diagonal = second
    for j, value in enumerate(diagonal):
        if value < 0:
            _refuse(f"{at}.second", value, f"sums of squared deviations >= 0 (feature {j})")


def _check_tuning(state: dict[str, Any]) -> None:
    """The last threshold choice, the event rate and the alert budget, when saved."""
    choice = state.get("last_choice")
    if choice is not None:
        if not isinstance(choice, dict):
            _refuse("last_choice", choice, "a table or null")
        for name in _CHOICE_NUMBERS:
            _finite(f"last_choice.{name}", choice.get(name))
        _count("last_choice.n_flagged", choice.get("n_flagged"))
    rate = state.get("rate")
    if rate is not None:
        if not isinstance(rate, dict):
            _refuse("rate", rate, "a table or null")
        _count("rate.timed_events", rate.get("timed_events"))
        for name in ("first_second", "last_second"):
            # No timed event yet is saved as null.
            if rate.get(name) is not None:
                _finite(f"rate.{name}", rate[name])
    budget = state.get("budget")
    if budget is not None:
        if not isinstance(budget, dict):
            _refuse("budget", budget, "a table or null")
        scores = budget.get("scores")
        if not isinstance(scores, list):
            _refuse("budget.scores", scores, "a list of numbers")
        for i, score in enumerate(scores):
            if score is not None and not _is_number(score):
                _refuse(f"budget.scores[{i}]", score, "a number or null")


def _check_recent_events(recent: Any, d: int) -> None:
    """Remembered events (for feedback labels): ids, keys and rows, one of each per event."""
    if not isinstance(recent, dict):
        _refuse("recent_events", recent, "a table of ids, keys and rows")
    lists: dict[str, list[Any]] = {}
    for name in ("ids", "keys", "rows"):
        values = recent.get(name)
        if not isinstance(values, list):
            _refuse(f"recent_events.{name}", values, "a list")
        lists[name] = values
    ids, keys, rows = lists["ids"], lists["keys"], lists["rows"]
    if not len(ids) == len(keys) == len(rows):
        _refuse(
            "recent_events",
            f"{len(ids)} ids, {len(keys)} keys, {len(rows)} rows",
            "one key and one row per id",
        )
    for name, values in (("ids", ids), ("keys", keys)):
        for i, value in enumerate(values):
            if not isinstance(value, str):
                _refuse(f"recent_events.{name}[{i}]", value, "a string")
    for i, row in enumerate(rows):
        _vector(f"recent_events.rows[{i}]", row, d, limit=math.inf)


def _vector(where: str, values: Any, d: int, *, limit: float) -> None:
    if not isinstance(values, list) or len(values) != d:
        _refuse(where, _short(values), f"a list of {d} numbers")
    for j, value in enumerate(values):
        _finite(f"{where}[{j}]", value)
        if abs(value) > limit:
            _refuse(f"{where}[{j}]", value, f"a number of magnitude at most {limit:g}")


def _count(where: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        _refuse(where, value, "an integer >= 0")
    if value > MAX_COUNT:
        _refuse(where, value, f"an integer at most {MAX_COUNT}")


def _finite(where: str, value: Any) -> None:
    if not _is_number(value) or not math.isfinite(value):
        _refuse(where, value, "a finite number" + (" or null" if "epsilon" in where else ""))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 60 else text[:57] + "..."


def _refuse(where: str, value: Any, expected: str) -> NoReturn:
    raise ModelError(f"{where} is {_short(value)!r}, expected {expected}")
