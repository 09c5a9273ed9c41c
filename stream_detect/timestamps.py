"""Timestamps to wall-clock time and seasonal buckets (hour of day, day of week, hour of week).

A seasonal feature compares an event with earlier events at the same point of
the day or week, *as the people behind the metric live it*: local wall-clock
time. :func:`wall_clock_seconds` turns timestamps into seconds since
1970-01-01 00:00 of the wall clock in a time zone:

- ISO 8601 strings without an offset (NAB's ``2014-04-01 00:00:00``) are
  already wall-clock times and are taken as written;
- ISO 8601 strings with an offset (``...T10:00:00+02:00``, ``...Z``) and epoch
  seconds (numbers, or strings of digits) are instants, shown in ``time_zone``
  (an IANA name such as ``Europe/Berlin``, daylight saving included).

:func:`season_bucket` maps wall-clock seconds to a bucket: 24 hours of day,
7 days of week (Monday is 0) or 168 hours of week.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from stream_detect.errors import ConfigError, InputError

__all__ = ["SEASONS", "Season", "season_bucket", "wall_clock_reasons", "wall_clock_seconds"]

Season = Literal["hour_of_day", "day_of_week", "hour_of_week"]
#: Buckets per season.
SEASONS: dict[str, int] = {"hour_of_day": 24, "day_of_week": 7, "hour_of_week": 168}

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]

_EPOCH_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_HAS_OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$")
#: 1970-01-01 was a Thursday; Monday is day 0.
_THURSDAY = 3


def _zone(time_zone: str) -> dt.tzinfo:
    if time_zone.upper() == "UTC":
        return dt.UTC
    # Imported here: only a named time zone needs the tz database.
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ConfigError("time_zone", time_zone, "an IANA time zone such as UTC") from error


def _instant_to_wall(epoch: float, zone: dt.tzinfo) -> float:
    try:
        moment = dt.datetime.fromtimestamp(epoch, tz=zone)
    except (OverflowError, OSError, ValueError) as error:
        # Epoch milliseconds are the usual slip, and they fit the calendar once divided.
        hint = " (epoch milliseconds? divide them by 1000)" if abs(epoch) < 2.5e14 else ""
        raise InputError(
            f"timestamp {epoch!r} is beyond the years 1 to 9999 as epoch seconds{hint}"
        ) from error
    offset = moment.utcoffset()
    return epoch + (offset.total_seconds() if offset is not None else 0.0)


def _wall_clock(stamp: object, zone: dt.tzinfo) -> float:
    """Wall-clock seconds of one timestamp; :class:`InputError` saying why it has none."""
    if stamp is None:
        raise InputError("the timestamp is missing or null")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        return _instant_to_wall(float(stamp), zone)
    text = str(stamp).strip()
    if _EPOCH_NUMBER.match(text):
        return _instant_to_wall(float(text), zone)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise InputError(f"timestamp {text!r} is neither ISO 8601 nor epoch seconds") from error
    if moment.tzinfo is None and not _HAS_OFFSET.search(text):
        naive = moment
    else:
        try:
            naive = moment.astimezone(zone).replace(tzinfo=None)
        except (OverflowError, ValueError) as error:
            raise InputError(f"timestamp {text!r} is beyond the years 1 to 9999") from error
    return (naive - dt.datetime(1970, 1, 1)).total_seconds()


def wall_clock_seconds(timestamps: Sequence[str | float], time_zone: str = "UTC") -> Array:
    """Seconds since 1970-01-01 00:00 of the wall clock in ``time_zone``, per timestamp.

    Raises :class:`InputError` at the first timestamp that has no wall-clock
    time (see :func:`wall_clock_reasons`).

    >>> wall_clock_seconds(["1970-01-01 01:30:00", "1970-01-02T00:00:00Z"]).tolist()
    [5400.0, 86400.0]
    >>> wall_clock_seconds([0, "3600"], time_zone="Europe/Berlin").tolist()  # UTC+1 in winter
    [3600.0, 7200.0]
    """
    zone = _zone(time_zone)
    out = np.empty(len(timestamps))
    for row, stamp in enumerate(timestamps):
        out[row] = _wall_clock(stamp, zone)
    return out


def wall_clock_reasons(
    timestamps: Sequence[object], time_zone: str = "UTC"
) -> tuple[Array, list[str | None]]:
    """:func:`wall_clock_seconds` without stopping: NaN and a reason where a timestamp has no time.

    A reason is None where the timestamp has a wall-clock time. A stream sends
    the events whose timestamps have none (missing, null, not a time, beyond
    the calendar) to the dead letters with that reason.

    >>> seconds, reasons = wall_clock_reasons([3600, None, "soon", 1.7e12])
    >>> seconds.tolist()[:1], reasons[0]
    ([3600.0], None)
    >>> reasons[1:3]
    ['the timestamp is missing or null', "timestamp 'soon' is neither ISO 8601 nor epoch seconds"]
    >>> reasons[3]
    'timestamp 1700000000000.0 is beyond the years 1 to 9999 as epoch seconds (epoch \
milliseconds? divide them by 1000)'
    """
    zone = _zone(time_zone)
    out = np.full(len(timestamps), np.nan)
    reasons: list[str | None] = [None] * len(timestamps)
    for row, stamp in enumerate(timestamps):
        try:
            out[row] = _wall_clock(stamp, zone)
        except InputError as error:
            reasons[row] = str(error)
    return out, reasons


def season_bucket(wall_seconds: Array, season: Season) -> IntArray:
    """The bucket of each wall-clock time: hour of day, day of week or hour of week.

    >>> monday_9am = 4 * 86400 + 9 * 3600  # 1970-01-05 was a Monday
    >>> [int(season_bucket(np.array([monday_9am]), s)[0]) for s in SEASONS]
    [9, 0, 9]
    """
    if season not in SEASONS:
        raise ConfigError("season", season, "one of " + ", ".join(SEASONS))
    hours = np.floor_divide(wall_seconds, 3600.0).astype(np.int64)
    if season == "hour_of_day":
        buckets: IntArray = np.mod(hours, 24)
    elif season == "day_of_week":
        buckets = np.mod(np.floor_divide(hours, 24) + _THURSDAY, 7)
    else:
        buckets = np.mod(hours + 24 * _THURSDAY, 168)
    return buckets
