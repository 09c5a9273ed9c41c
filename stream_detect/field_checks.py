"""Checks of one saved field each, worded for a person: the parts every state rule is built from.

A refusal names the field by its path in the saved state
(``models[0].state.stats.mean[1]``), what it holds (shortened) and what was
expected, in one sentence, never in Python's words.

>>> check_count("counters.events", -1)
Traceback (most recent call last):
...
stream_detect.errors.ModelError: counters.events is -1, expected an integer >= 0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from stream_detect.errors import ModelError

__all__ = [
    "MAX_COUNT",
    "MAX_MEAN_MAGNITUDE",
    "check_count",
    "check_entries",
    "check_finite",
    "check_vector",
    "is_number",
    "is_string",
    "refuse",
    "required",
    "restoring",
]

#: Largest count accepted: the checkpoint is written back with 64-bit integers.
MAX_COUNT = 2**63 - 1
#: Largest saved mean accepted: its square must stay a finite double (about 1.3e154).
MAX_MEAN_MAGNITUDE = 1e154


@contextmanager
def restoring(part: str) -> Iterator[None]:
    """Word what a restore of ``part`` stumbles on, should the checks have let it through.

    A KeyError, TypeError, ValueError or IndexError raised inside becomes a
    :class:`ModelError` that names ``part`` in words, never Python's text.

    >>> with restoring("the detector state"):
    ...     {}["counters"]
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: the detector state lacks the field 'counters'
    """
    try:
        yield
    except KeyError as exc:
        raise ModelError(f"{part} lacks the field {exc.args[0]!r}") from exc
    except (TypeError, ValueError, IndexError) as exc:
        raise ModelError(
            f"{part} holds a value of a type or shape this version does not write"
        ) from exc


def required(table: dict[str, Any], name: str, where: str, expected: str) -> Any:
    """``table[name]``; :class:`ModelError` naming ``where.name`` and ``expected`` if missing.

    >>> required({"n": 3}, "mean", "models[0].state.stats", "a list of 2 numbers")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: models[0].state.stats.mean is missing, expected a list of 2 \
numbers
    """
    if name not in table:
        at = name if where == name else f"{where}.{name}"
        raise ModelError(f"{at} is missing, expected {expected}")
    return table[name]


def check_vector(where: str, values: Any, d: int, *, limit: float) -> None:
    """Refuse ``values`` unless it is a list of ``d`` finite numbers of magnitude <= ``limit``."""
    if not isinstance(values, list) or len(values) != d:
        refuse(where, _short(values), f"a list of {d} numbers")
    for j, value in enumerate(values):
        check_finite(f"{where}[{j}]", value)
        if abs(value) > limit:
            refuse(f"{where}[{j}]", value, f"a number of magnitude at most {limit:g}")


def check_entries(
    where: str,
    values: Any,
    expected: str,
    entry: tuple[Callable[[Any], bool], str],
    length: int | None = None,
) -> list[Any]:
    """``values``, refused unless it is a list (of ``length`` entries, if given) whose every
    entry is null or passes ``entry``'s test; ``entry`` is (test, what one is expected to be).

    ``expected`` words the refusal of ``values`` itself, which is not such a list.

    >>> number = (is_number, "a number")
    >>> check_entries("budget.scores", [1.5, None, "x"], "a list of numbers", number)
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: budget.scores[2] is 'x', expected a number or null
    """
    if not isinstance(values, list) or (length is not None and len(values) != length):
        refuse(where, values, expected)
    is_entry, entry_text = entry
    for i, value in enumerate(values):
        if value is not None and not is_entry(value):
            refuse(f"{where}[{i}]", value, f"{entry_text} or null")
    return values


def is_string(value: Any) -> bool:
    """True for a str."""
    return isinstance(value, str)


def check_count(where: str, value: Any) -> None:
    """Refuse ``value`` unless it is an integer from 0 to :data:`MAX_COUNT`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        refuse(where, value, "an integer >= 0")
    if value > MAX_COUNT:
        refuse(where, value, f"an integer at most {MAX_COUNT}")


def check_finite(where: str, value: Any) -> None:
    """Refuse ``value`` unless it is a finite number (not a bool)."""
    if not is_number(value) or not math.isfinite(value):
        refuse(where, value, "a finite number" + (" or null" if "epsilon" in where else ""))


def is_number(value: Any) -> bool:
    """True for an int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 60 else text[:57] + "..."


def refuse(where: str, value: Any, expected: str) -> NoReturn:
    """Raise :class:`ModelError`: ``where`` is ``value`` (shortened), ``expected`` was expected."""
    raise ModelError(f"{where} is {_short(value)!r}, expected {expected}")
