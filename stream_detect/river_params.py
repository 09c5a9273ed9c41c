"""Which ``river.anomaly`` detectors a ``river:NAME`` model may name, with which parameters.

river is checked before a stream starts: it validates few parameters itself,
so a value of the wrong kind (``n_trees = "ten"``) would otherwise fail on the
first event, deep in the pipeline.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from typing import Any

from stream_detect.errors import ConfigError

__all__ = ["check_river_model", "river_detectors"]


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def river_detectors() -> list[str]:
    """The unsupervised ``river.anomaly`` detectors a ``river:NAME`` model may name.

    >>> "HalfSpaceTrees" in river_detectors()
    True
    """
    import river.anomaly
    import river.base

    return sorted(
        attribute
        for attribute in dir(river.anomaly)
        if isinstance(getattr(river.anomaly, attribute), type)
        and issubclass(getattr(river.anomaly, attribute), river.base.AnomalyDetector)
    )


def check_river_model(name: str, params: Mapping[str, Any] | None) -> None:
    """The detector exists in ``river.anomaly``, takes these parameters, and can be built.

    >>> check_river_model("HalfSpaceTrees", {"n_trees": "ten"})
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key model_params.n_trees: got 'ten', expected a \
value like the default 10 of river.anomaly.HalfSpaceTrees
    """
    import river.anomaly

    detectors = river_detectors()
    if name not in detectors:
        raise ConfigError(
            "model",
            f"river:{name}",
            "river:NAME with NAME an unsupervised river.anomaly detector: "
            + ", ".join(detectors)
            + _did_you_mean(name, detectors),
        )
    detector = getattr(river.anomaly, name)
    parameters = inspect.signature(detector).parameters.values()
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    known = [
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    defaults = {p.name: p.default for p in parameters}
    for key, value in (params or {}).items():
        if key not in known and not takes_any:
            raise ConfigError(
                f"model_params.{key}",
                value,
                f"a parameter of river.anomaly.{name}: "
                + ", ".join(known)
                + _did_you_mean(key, known),
            )
        # river checks few parameters when a model is built; a value of another kind than
        # the default (n_trees = "ten") would only fail on the first event.
        default = defaults.get(key)
        if not _same_kind(value, default):
            raise ConfigError(
                f"model_params.{key}",
                value,
                f"a value like the default {default!r} of river.anomaly.{name}",
            )
    try:
        detector(**(params or {}))
    except Exception as exc:  # river checks little itself; whatever it raises, say which table
        raise ConfigError(
            "model_params",
            dict(params or {}),
            f"parameters that river.anomaly.{name} accepts ({type(exc).__name__}: {exc})",
        ) from exc


def _same_kind(value: Any, default: Any) -> bool:
    """Whether ``value`` is of the kind of a scalar ``default`` (any value if it has none).

    >>> _same_kind(3, 2.5), _same_kind(True, 10), _same_kind("x", None)
    (True, False, True)
    """
    if isinstance(default, bool) or isinstance(value, bool):
        return not isinstance(default, (bool, int, float, str)) or (
            isinstance(default, bool) and isinstance(value, bool)
        )
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (int, str)):
        return isinstance(value, type(default))
    return True
