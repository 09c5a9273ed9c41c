"""The values a model file may hold, checked before a model is built from it.

A model file is data that anyone with write access could have edited, so
:meth:`~stream_detect.fitted_model.FittedModel.from_dict` refuses, with one
sentence naming the key and the rule, whatever a model could not score or a
stream could not learn on from: a wrong type or shape, a NaN or infinity, a
negative variance, a covariance that is not one, and statistics so large that
the running sums of a model started from them would leave the float range (a
mean whose square overflows, a count beyond 64 bits, a variance times the
count that overflows). The limits are those a checkpoint's statistics keep
(:mod:`stream_detect.checkpoint_rules`), since a model file becomes the same
running statistics in ``stream-detect run --initial-model``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.checkpoint_rules import MAX_MEAN_MAGNITUDE
from stream_detect.density import floor_covariance
from stream_detect.errors import ModelError
from stream_detect.feature_units import MOST_DOUBLINGS
from stream_detect.field_checks import MAX_COUNT, is_number, refuse
from stream_detect.field_names import blank_name
from stream_detect.threshold_choice import exp_or_inf

__all__ = [
    "check_covariance",
    "check_epsilon",
    "check_keys",
    "check_magnitudes",
    "feature_names",
    "float_array",
    "integer_floor",
    "number",
    "unit_exponents",
]

Array = NDArray[np.float64]

#: Every key a model file holds, in the order written; "var" or "cov" by kind.
_KEYS = (
    "format",
    "version",
    "kind",
    "features",
    "transforms",
    "n",
    "mean",
    "var",
    "cov",
    "variance_floor",
    "relative_floor",
    "integer_floor",
    "unit_exponents",
    "log_epsilon",
    "epsilon",
    "threshold_method",
    "validation",
)


def check_keys(data: dict[str, Any], kind: str) -> None:
    """Refuse a key a model file of ``kind`` does not hold: it would be ignored, silently.

    A hand edit that misspells an optional key (``"transform"``) would score
    without the transforms; a ``"var"`` added to a full model would change
    nothing, its variances being the diagonal of ``"cov"``.

    >>> check_keys({"kind": "full", "cov": [], "var": []}, "full")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: the key 'var' is not read in a full model (its variances \
are the diagonal of cov): remove it
    >>> check_keys({"kind": "diagonal", "transform": {}}, "diagonal")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: unknown key 'transform'; a model file holds only format, ...
    """
    unread = "cov" if kind == "diagonal" else "var"
    if unread in data:
        why = (
            "a diagonal model keeps var"
            if kind == "diagonal"
            else ("its variances are the diagonal of cov")
        )
        raise ModelError(f"the key {unread!r} is not read in a {kind} model ({why}): remove it")
    unknown = next((key for key in data if key not in _KEYS), None)
    if unknown is not None:
        raise ModelError(
            f"unknown key {unknown!r}; a model file holds only {', '.join(_KEYS)} "
            "(var in a diagonal model, cov in a full one)"
        )


def check_epsilon(epsilon: float | None, log_epsilon: float | None) -> None:
    """Refuse an ``epsilon`` that is not exp(``log_epsilon``): it would be ignored, silently.

    ``log_epsilon`` decides and ``epsilon`` is written for people, so a hand
    edit of ``epsilon`` alone would change no decision. None (null, or no
    such key) says nothing and is fine.

    >>> check_epsilon(1.0, 0.0)
    >>> check_epsilon(0.001, 0.0)
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: epsilon is 0.001 where log_epsilon is 0.0, whose exp is 1.0: \
log_epsilon decides (flag when log p(x) < log_epsilon); change it, and epsilon to its exp or null
    """
    if epsilon is None:
        return
    expected = None if log_epsilon is None else exp_or_inf(log_epsilon)
    if expected is not None and (epsilon == expected or math.isclose(epsilon, expected)):
        return
    whose = "" if expected is None else f", whose exp is {expected!r}"
    raise ModelError(
        f"epsilon is {epsilon!r} where log_epsilon is {log_epsilon!r}{whose}: log_epsilon "
        "decides (flag when log p(x) < log_epsilon); change it, and epsilon to its exp or null"
    )


def feature_names(value: Any, error: type[Exception] = ModelError) -> tuple[str, ...]:
    """``value`` as a tuple of feature names: a non-empty list of distinct strings, or ``error``.

    None may be blank: a table with the features given refuses a blank name
    (:func:`~stream_detect.field_names.check_feature_names`), so a model with
    one could never score a file.

    >>> feature_names(["a", "b"])
    ('a', 'b')
    >>> feature_names(["a", " "])
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: features hold a blank name (' '), expected names
    """
    if not isinstance(value, list) or not value or not all(isinstance(f, str) for f in value):
        raise error("features must be a non-empty list of names")
    if len(set(value)) != len(value):
        repeated = next(f for f in value if value.count(f) > 1)
        raise error(f"features name {repeated!r} more than once")
    blank = blank_name(value)
    if blank is not None:
        raise error(f"features hold a blank name ({blank!r}), expected names")
    return tuple(value)


def integer_floor(data: dict[str, Any], features: tuple[str, ...]) -> NDArray[np.bool_] | None:
    """Which ``features`` the key ``integer_floor`` names, or None where the file has no such key.

    The key lists the features ``fit`` floored as integers that varied
    (:mod:`stream_detect.quantisation`); a file written before the rule has
    none, and scores with no such floor. Each name is one of the features, once.

    >>> integer_floor({"integer_floor": ["b"]}, ("a", "b")).tolist()
    [False, True]
    >>> integer_floor({}, ("a",)) is None
    True
    >>> integer_floor({"integer_floor": ["c"]}, ("a", "b"))
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: integer_floor names 'c', expected features among ['a', 'b']
    """
    if "integer_floor" not in data:
        return None
    names = data["integer_floor"]
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        refuse("integer_floor", names, "a list of feature names")
    for i, name in enumerate(names):
        if name not in features:
            raise ModelError(
                f"integer_floor names {name!r}, expected features among {list(features)!r}"
            )
        if name in names[:i]:
            raise ModelError(f"integer_floor names {name!r} more than once")
    return np.array([name in names for name in features], dtype=bool)


def unit_exponents(data: dict[str, Any], features: tuple[str, ...]) -> NDArray[np.int64] | None:
    """The power of two per feature that the key ``unit_exponents`` names; None where none does.

    The key maps a tiny feature to the ``k`` its values are multiplied by,
    ``2**k`` (:mod:`stream_detect.feature_units`); a feature not named has 0,
    and a file without the key (one written before the rule, or with no tiny
    feature) scores in the events' units.

    >>> unit_exponents({"unit_exponents": {"b": 17}}, ("a", "b")).tolist()
    [0, 17]
    >>> unit_exponents({}, ("a",)) is None
    True
    >>> unit_exponents({"unit_exponents": {"a": 2000}}, ("a",))
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: unit_exponents['a'] is 2000, expected a whole number \
from 0 to 1074
    """
    named = data.get("unit_exponents")
    if named is None:
        return None
    if not isinstance(named, dict):
        refuse("unit_exponents", named, "an object: feature name -> power of two")
    exponents = np.zeros(len(features), dtype=np.int64)
    for name, k in named.items():
        if name not in features:
            raise ModelError(
                f"unit_exponents names {name!r}, expected features among {list(features)!r}"
            )
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MOST_DOUBLINGS:
            refuse(f"unit_exponents[{name!r}]", k, f"a whole number from 0 to {MOST_DOUBLINGS}")
        exponents[features.index(name)] = k
    return exponents if exponents.any() else None


def float_array(data: dict[str, Any], key: str, shape: tuple[int, ...]) -> Array:
    """``data[key]`` as finite float64 numbers of ``shape``, or :class:`ModelError`.

    Only JSON numbers count: numpy would read ``"1"`` as 1.0 and ``true`` as
    1.0, and a file holding them was not written by ``fit``.

    >>> float_array({"mean": [1, 2.5]}, "mean", (2,)).tolist()
    [1.0, 2.5]
    >>> float_array({"mean": [1, "2"]}, "mean", (2,))
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: mean[1] is '2', expected a number
    """
    if key not in data:
        raise ModelError(f"the key {key!r} is missing")
    value = data[key]
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{key} must hold numbers only") from exc
    if array.shape != shape:
        raise ModelError(f"{key} has shape {array.shape}, expected {shape} for the features given")
    # The shape is right, so ``value`` nests exactly len(shape) levels of sequences.
    items: list[tuple[str, Any]] = [(key, value)]
    for _ in shape:
        items = [(f"{at}[{i}]", item) for at, row in items for i, item in enumerate(row)]
    for at, item in items:
        if not is_number(item):
            refuse(at, item, "a number")
    if not np.all(np.isfinite(array)):
        raise ModelError(f"{key} holds a value that is not a finite number")
    return array


def number(data: dict[str, Any], key: str, minimum: float) -> float:
    """``data[key]`` as a float of at least ``minimum`` (never a boolean), or :class:`ModelError`.

    >>> number({"n": 3}, "n", 0.0)
    3.0
    """
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
        raise ModelError(f"{key} is {value!r}, expected a number >= {minimum:.17g}")
    return float(value)


def check_magnitudes(n: float, mean: Array, spread: Array, spread_key: str) -> None:
    """Refuse statistics whose running sums would leave the float range.

    ``spread`` is the variances (``var``) or the covariance (``cov``);
    ``spread_key`` names it. A model learns on from ``n`` events of this mean
    and spread, so the sums of squared deviations, ``n`` times the spread,
    must be finite too.

    >>> check_magnitudes(300.0, np.array([1e155]), np.array([1.0]), "var")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: mean holds 1e+155, expected magnitudes at most 1e+154 \
(its square must stay a finite number)
    >>> check_magnitudes(300.0, np.array([0.0]), np.array([1e307]), "var")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: var holds 1e+307, too large for n = 300: n times it, \
the sum of squared deviations, is not a finite number
    """
    if n > MAX_COUNT:
        raise ModelError(f"n is {n!r}, expected a count at most {MAX_COUNT}")
    too_large = np.abs(mean) > MAX_MEAN_MAGNITUDE
    if np.any(too_large):
        value = float(mean[too_large][0])
        raise ModelError(
            f"mean holds {value:g}, expected magnitudes at most {MAX_MEAN_MAGNITUDE:g} "
            "(its square must stay a finite number)"
        )
    with np.errstate(over="ignore"):
        overflows = ~np.isfinite(spread * n)
    if np.any(overflows):
        value = float(spread[overflows][0])
        raise ModelError(
            f"{spread_key} holds {value:g}, too large for n = {n:g}: n times it, "
            "the sum of squared deviations, is not a finite number"
        )


def check_covariance(cov: Array, mean: Array, variance_floor: float, relative_floor: float) -> None:
    """Refuse a ``cov`` that is not symmetric or not positive semi-definite once floored.

    >>> check_covariance(np.array([[1.0, 2.0], [2.0, 1.0]]), np.zeros(2), 1e-12, 0.0)
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: cov is not a covariance matrix (not positive semi-definite)
    """
    if not np.allclose(cov, cov.T, rtol=1e-12, atol=0.0):
        raise ModelError("cov is not symmetric")
    try:
        np.linalg.cholesky(floor_covariance(cov, mean, variance_floor, relative_floor))
    except np.linalg.LinAlgError:
        raise ModelError("cov is not a covariance matrix (not positive semi-definite)") from None
