"""Durations as people write them in URIs and configs: ``500ms``, ``15s``, ``5m``, ``1h``.

>>> parse_duration("15s"), parse_duration("500ms"), parse_duration("2m"), parse_duration("1.5")
(15.0, 0.5, 120.0, 1.5)
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from stream_detect.errors import ConfigError

__all__ = ["duration_param", "parse_duration"]

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, *, config_key: str = "duration", minimum: float = 0.0) -> float:
    """Seconds in ``text`` (a number with an optional unit ms, s, m or h; seconds by default).

    >>> parse_duration("0s", config_key="every", minimum=0.01)
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key every: got '0s', expected a duration of at \
least 0.01 s such as 500ms, 15s, 5m or 1h
    """
    match = _DURATION.fullmatch(text.strip())
    seconds = None if match is None else float(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds is None or seconds < minimum:
        floor = f" of at least {minimum:g} s" if minimum else ""
        raise ConfigError(config_key, text, f"a duration{floor} such as 500ms, 15s, 5m or 1h")
    return seconds


def duration_param(
    params: Mapping[str, str],
    name: str,
    default: float,
    *,
    uri: str,
    config_key: str,
    minimum: float = 0.0,
) -> float:
    """The URI query parameter ``name`` as seconds; errors name the whole URI.

    >>> duration_param({"every": "1m"}, "every", 15.0, uri="u", config_key="source")
    60.0
    >>> duration_param({}, "every", 15.0, uri="u", config_key="source")
    15.0
    >>> duration_param({"every": "soon"}, "every", 15.0, uri="x://h?every=soon", config_key="s")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key s: got 'x://h?every=soon', expected \
every=DURATION with a duration such as 500ms, 15s, 5m or 1h
    """
    text = params.get(name)
    if text is None:
        return default
    try:
        return parse_duration(text, config_key=config_key, minimum=minimum)
    except ConfigError as exc:
        raise ConfigError(config_key, uri, f"{name}=DURATION with {exc.expected}") from None
