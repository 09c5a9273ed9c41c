"""A scrape's series as events, and why a feature of one has no value.

:func:`series_to_events` groups the series of one scrape (or query) into
events, one per value of the ``key`` label; :func:`missing_reasons` says,
for the dead letter of an event that lacks a feature, why its series had
no value this time (not finite, or a counter with no rate) instead of
"missing"; :func:`counter_rate` is a counter's rate between two samples, and
:func:`no_rate_reason` why it has none; :func:`unchanged_events` are the
events that would repeat an observation of the scrape before.
:mod:`stream_detect.sources.prometheus` uses them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from stream_detect.records.feature_values import missing_feature_reason
from stream_detect.sources.exposition import Series, feature_name

__all__ = [
    "CounterSample",
    "counter_rate",
    "missing_reasons",
    "no_rate_reason",
    "series_to_events",
    "spelt",
    "unchanged_events",
]


def series_to_events(
    series: Iterable[Series], *, key_label: str | None, timestamp: float
) -> list[dict[str, Any]]:
    """One event per key value (one event without a key), each series a feature.

    >>> series_to_events([("up", {"job": "a"}, 1.0), ("up", {"job": "b"}, 0.0)],
    ...                  key_label="job", timestamp=5.0)
    [{'timestamp': 5.0, 'job': 'a', 'up': 1.0}, {'timestamp': 5.0, 'job': 'b', 'up': 0.0}]

    A series without a value (NaN, infinite) is no feature, but its key value
    still has an event, even when none of its series has a value (such an
    event comes after the others): that event is then a dead letter for the
    features it lacks, never gone without a trace.

    >>> series_to_events([("up", {"job": "a"}, math.nan), ("up", {"job": "b"}, 0.0)],
    ...                  key_label="job", timestamp=5.0)
    [{'timestamp': 5.0, 'job': 'b', 'up': 0.0}, {'timestamp': 5.0, 'job': 'a'}]
    """
    events: dict[str | None, dict[str, Any]] = {}
    valueless: list[str | None] = []
    for name, labels, value in series:
        key = None
        if key_label is not None:
            key = labels.get(key_label)
            if key is None:
                continue
            labels = {k: v for k, v in labels.items() if k != key_label}
        if not math.isfinite(value):
            valueless.append(key)
            continue
        event = events.get(key)
        if event is None:
            event = events[key] = _event(key_label, key, timestamp)
        event[feature_name(name, labels)] = value
    # After the others, so those come in the order their series do, as ever.
    for key in valueless:
        if key not in events:
            events[key] = _event(key_label, key, timestamp)
    return list(events.values())


def unchanged_events(
    series: Iterable[Series],
    stamps: Mapping[str, float],
    before: Mapping[str, float],
    key_label: str | None,
) -> set[str | None]:
    """The events (by key value) that would repeat an observation of the scrape before.

    An event repeats one when every sample of its series carries its own
    timestamp, and each is the timestamp the series had in the scrape before
    (``before``): an exporter that serves cached samples, or Prometheus's
    ``/federate`` asked more often than it scrapes, shows the same
    observation again, and learning it again would count it twice. An event
    one of whose samples is new (its timestamp advanced, or it carries none,
    or the scrape before lacked it) is a new observation, taken whole.
    ``stamps`` are this scrape's timestamps, by feature name with every label.

    >>> up = ("up", {"job": "a"}, 1.0)
    >>> unchanged_events([up], {'up{job="a"}': 5.0}, {'up{job="a"}': 5.0}, None)
    {None}
    >>> unchanged_events([up], {'up{job="a"}': 6.0}, {'up{job="a"}': 5.0}, None)
    set()
    >>> unchanged_events([up, ("up", {"job": "b"}, 1.0)], {'up{job="a"}': 5.0},
    ...                  {'up{job="a"}': 5.0}, "job")
    {'a'}
    """
    seen: set[str | None] = set()
    new: set[str | None] = set()
    for name, labels, _ in series:
        key = None if key_label is None else labels.get(key_label)
        if key_label is not None and key is None:
            continue  # such a series is in no event
        seen.add(key)
        feature = feature_name(name, labels)
        stamp = stamps.get(feature)
        if stamp is None or before.get(feature) != stamp:
            new.add(key)
    return seen - new


def _event(key_label: str | None, key: str | None, timestamp: float) -> dict[str, Any]:
    event: dict[str, Any] = {"timestamp": timestamp}
    if key_label is not None:
        event[key_label] = key
    return event


def missing_reasons(
    series: Iterable[tuple[Series, str]], key_label: str | None
) -> dict[str | None, dict[str, str]]:
    """For each event (by key value), "missing feature" reasons and what they should say.

    ``series`` pairs each series that has no value this time with why, said
    after its feature's name.

    >>> missing_reasons([(("g", {"job": "a"}, math.nan), "is NaN in the scrape"),
    ...                   (("h", {"job": "b"}, 3.0), "has no rate in this scrape")], "job")
    {'a': {"missing feature 'g'": "feature 'g' is NaN in the scrape"},
     'b': {"missing feature 'h'": "feature 'h' has no rate in this scrape"}}
    """
    reasons: dict[str | None, dict[str, str]] = {}
    for (name, labels, _), why in series:
        key = None
        if key_label is not None:
            key = labels.get(key_label)
            if key is None:
                continue  # such a series is in no event
            labels = {k: v for k, v in labels.items() if k != key_label}
        feature = feature_name(name, labels)
        reasons.setdefault(key, {})[missing_feature_reason(feature)] = f"feature {feature!r} {why}"
    return reasons


def spelt(value: float) -> str:
    """A value that is not finite, spelt as the exposition format spells it.

    >>> spelt(math.nan), spelt(math.inf), spelt(-math.inf)
    ('NaN', '+Inf', '-Inf')
    """
    return "NaN" if math.isnan(value) else "+Inf" if value > 0 else "-Inf"


class CounterSample(NamedTuple):
    """A counter's sample, as its rate needs it."""

    #: Seconds: the sample's own timestamp when the exposition gives one, else the
    #: scrape's time on a monotonic clock (the two are never compared).
    time: float
    value: float
    #: True if ``time`` is the sample's own timestamp.
    stamped: bool


def counter_rate(before: CounterSample | None, after: CounterSample) -> float | None:
    """The per-second rate of a counter between two samples, or None if it has none.

    A sample that carries its own timestamp is timed by it, not by the scrape:
    an exporter whose samples are refreshed less often than they are scraped
    would otherwise give rates of 0, then one of several times the true rate,
    an anomaly each time.

    >>> counter_rate(CounterSample(100.0, 20.0, True), CounterSample(160.0, 80.0, True))
    1.0

    A sample whose timestamp did not advance measured nothing new: it has no
    rate, as a counter that went down (a restart) has none, or one first
    timed by the scrape and then by its own timestamp (no common clock).

    >>> counter_rate(CounterSample(100.0, 20.0, True), CounterSample(100.0, 20.0, True))
    >>> counter_rate(CounterSample(100.0, 20.0, False), CounterSample(102.0, 5.0, False))
    >>> counter_rate(CounterSample(100.0, 20.0, False), CounterSample(1.7e9, 30.0, True))
    """
    if before is None or before.stamped != after.stamped:
        return None
    if after.value < before.value or after.time <= before.time:
        return None
    return (after.value - before.value) / (after.time - before.time)


def no_rate_reason(before: CounterSample | None, after: CounterSample, what: str) -> str:
    """Why :func:`counter_rate` gives a counter no rate this time.

    >>> no_rate_reason(CounterSample(100.0, 20.0, False), CounterSample(102.0, 5.0, False),
    ...                "scrape")
    'the counter went down since the scrape before (a restart)'
    >>> no_rate_reason(None, CounterSample(102.0, 5.0, False), "scrape")
    'the scrape before did not hold it'
    >>> no_rate_reason(CounterSample(100.0, 20.0, True), CounterSample(100.0, 20.0, True),
    ...                "scrape")
    "its sample's timestamp did not advance since the scrape before (not refreshed yet)"
    """
    if before is None:
        return f"the {what} before did not hold it"
    if after.value < before.value:
        return f"the counter went down since the {what} before (a restart)"
    if before.stamped != after.stamped:
        held = "held" if after.stamped else "lacked"
        return f"its sample {held} a timestamp, unlike in the {what} before"
    if after.stamped:
        return f"its sample's timestamp did not advance since the {what} before (not refreshed yet)"
    return f"no time passed since the {what} before"
