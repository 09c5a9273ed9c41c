"""Events from Prometheus: an exporter's ``/metrics`` scraped, or a PromQL query.

``prometheus://HOST:PORT/metrics?every=15s&match=REGEX&key=LABEL``
    Reads the exporter's text exposition format every ``every``. Series whose
    sample name fully matches ``match`` (default: all) are kept. Cumulative
    series (counters, and a histogram's or summary's ``_bucket``, ``_sum`` and
    ``_count``) become per-second rates between two scrapes (timed on a
    monotonic clock: a step of the wall clock changes no rate), so the first
    scrape only primes them and yields no event; a counter that went down (a
    restart), or that the scrape before did not hold, yields no rate that time.
    A counter's sample that carries its own timestamp (an exporter that
    re-exposes samples collected earlier) is timed by it instead, and yields
    no rate while that timestamp does not advance. Gauges are taken as they
    are, and so are series typed ``untyped``. An event each of whose samples
    carries the timestamp it had at the scrape before is that scrape's
    observation again, and is not made (counted in
    :attr:`PrometheusSource.unchanged_events`); one with a sample new is
    (:func:`~stream_detect.sources.scraped_events.unchanged_events`).

``prometheus://HOST:PORT/federate?match[]=SELECTOR&every=15s``
    A Prometheus server's ``/federate``: each ``match[]`` of the URI (one per
    selector) goes to the server as written. The page types every series
    ``untyped`` (read as gauges) and stamps every sample.

``promql://HOST:PORT?query=EXPR&every=15s&key=LABEL``
    Evaluates ``EXPR`` with a Prometheus server's ``/api/v1/query`` every
    ``every``; each series of the resulting vector is a feature.

Each remaining label set is one feature named like the series,
``metric{a="b",c="d"}`` (labels sorted; a series without labels is just its
name; a label whose value is empty is no label, as in Prometheus, so
``m{a=""}`` is ``m``, and ``up{host=""}`` lacks ``host``). With
``key=LABEL``, series are grouped by that label's value: one event per
value, carrying it in a field named ``LABEL`` (run with
``--key-field LABEL`` for a model per value), and the key label is left out
of the feature names; a series without that label is in no event, and stderr
says so the first time (:attr:`PrometheusSource.keyless_series` counts them).
A scrape that works but holds no series (none at all, or none that ``match``
keeps) yields nothing, counted in :attr:`PrometheusSource.empty_scrapes`,
and said the first time. Non-finite values are left out of the event; when
that makes the event a dead letter for a missing feature, its reason says
the value was not finite (``feature 'g' is NaN in the scrape``), as it says
why a counter has no rate (``feature 'jobs_total' has no rate in this
scrape: the counter went down since the scrape before (a restart)``, or the
scrape before did not hold it). A key value
with no value at all this time (every sample not finite, or a counter with
no rate) still has its event, a dead letter, never gone without a trace; a
counter's non-finite sample leaves its rate to resume from its last finite
sample at the next scrape. A series
that a scrape holds more than once keeps its first value, as Prometheus
does; the others are counted in :attr:`PrometheusSource.repeated_series`,
and stderr says so the first time. A series that would be a feature named
like a field the event has (``timestamp``; with ``key=LABEL``, ``LABEL``
itself, from ``LABEL{LABEL="..."}``) is left out, counted in
:attr:`PrometheusSource.clashing_series` and said the first time.

Each scrape yields JSON event lines (one per key value) with a ``timestamp``
field (Unix seconds of the scrape; never inferred as a feature, since a pause
in the scrapes would make it an anomaly), so the usual decoder reads them; their
positions say ``{"scrape": N, "time": ..., "url": ...}``. A failed scrape
(or query) yields nothing, sets :attr:`connected` false until one succeeds,
and is counted in :attr:`scrape_errors`; the stream goes on. Stderr gets one
line when scrapes start failing, naming the URI and the reason (the status
and what the server said, such as Prometheus's error for a query it cannot
run), and one when they work again (:mod:`stream_detect.sources.polled`).
The text format itself is read by :mod:`stream_detect.sources.exposition`;
the URIs are checked and opened by :mod:`stream_detect.sources.prometheus_uris`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from stream_detect.records.batch import BadRecord
from stream_detect.sources.exposition import (
    Cumulative,
    Exposition,
    Series,
    feature_name,
    shortened,
)
from stream_detect.sources.polled import PolledSource
from stream_detect.sources.scraped_events import (
    CounterSample,
    counter_rate,
    missing_reasons,
    no_rate_reason,
    series_to_events,
    spelt,
    unchanged_events,
)

__all__ = ["PrometheusSource", "feature_name", "series_to_events"]


class PrometheusSource(PolledSource):
    """Scrapes (or queries) every ``every_s`` seconds; see the module docstring.

    ``fetch`` returns the series of one scrape and the feature names among
    them that are cumulative (to be turned into rates), each with the
    timestamp its sample carries, if any (which then times its rate); or an
    :class:`~stream_detect.sources.exposition.Exposition`, which also gives
    each sample's own timestamp, so that an event whose samples all carry the
    timestamps they had in the scrape before is not made again
    (:attr:`unchanged_events`).
    ``what`` names one poll in the stderr lines (``scrape``, ``query``);
    ``selection`` says which series are kept (`` whose name matches 'x'``),
    for the line that says a scrape held none. ``clock`` gives the events'
    ``timestamp`` (Unix time); ``interval_clock`` times the intervals of the
    rates, monotonic so that a step of the wall clock (set back, or forward)
    neither leaves a scrape's counters without a rate nor makes one wrong.
    """

    format_hint = "json"
    # A scrape's time only rises; as a feature it would make a pause in the scrapes an anomaly.
    source_fields = ("timestamp",)

    def __init__(
        self,
        url: str,
        fetch: Callable[[], tuple[list[Series], Cumulative] | Exposition],
        *,
        every_s: float,
        key_label: str | None = None,
        uri: str = "",
        what: str = "scrape",
        selection: str = "",
        clock: Callable[[], float] = time.time,
        interval_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(every_s, uri=uri or url, what=what, yields="events")
        self.url = url
        self.fetch = fetch
        self.key_label = key_label
        self.clock = clock
        self.interval_clock = interval_clock
        self.what = what
        self.scrapes = 0
        #: Samples dropped because an earlier one of the same scrape had their series.
        self.repeated_series = 0
        #: Scrapes that worked but held no series (none at all, or none selected).
        self.empty_scrapes = 0
        #: Samples in no event because their series lacks the ``key`` label.
        self.keyless_series = 0
        #: Samples in no event because their feature would be named like a field the
        #: event already has (``timestamp``, the key's field).
        self.clashing_series = 0
        #: Events not made because every sample of theirs carried the timestamp it had
        #: in the scrape before (the same observation, shown again).
        self.unchanged_events = 0
        self.selection = selection
        #: The last scrape's samples' own timestamps, by feature (with every label).
        self._stamps: Mapping[str, float] = {}
        #: Each counter's last finite sample.
        self._previous: dict[str, CounterSample] = {}
        #: The last scrape's samples with no value (not finite, or a counter with no
        #: rate): for each event (by key value), the reason a dead letter missing that
        #: feature gives instead of "missing".
        self._why_missing: dict[str | None, dict[str, str]] = {}
        #: The last scrape's events (by key value) that had no finite sample at all.
        self._valueless: set[str | None] = set()

    @property
    def scrape_errors(self) -> int:
        """Scrapes (or queries) that failed."""
        return self.poll_errors

    def resume_token(self) -> dict[str, Any]:
        """Scrapes cannot be replayed; the token only counts them."""
        return {"scrape": self.scrapes}

    def poll(self) -> None:
        """Scrape once; queue one event of the selected series (none on the first scrape)."""
        now = self.clock()
        tick = self.interval_clock()
        scrape = self.fetch()
        series, cumulative = scrape[0], scrape[1]
        stamps = scrape.stamps if isinstance(scrape, Exposition) else {}
        self.scrapes += 1
        previous, self._previous = self._previous, {}
        stamped_before, self._stamps = self._stamps, stamps
        values: list[Series] = []
        seen: set[str] = set()
        repeated: list[str] = []
        #: The series with no value this time (not finite, or a counter with no rate), and why.
        valueless: list[tuple[Series, str]] = []
        clashing: list[str] = []
        for name, labels, value in series:
            feature = feature_name(name, labels)
            if self._clashes(name, labels):
                clashing.append(feature)
                continue
            if feature in seen:
                repeated.append(feature)
                continue
            seen.add(feature)
            before = previous.get(feature)
            if not math.isfinite(value):
                valueless.append(((name, labels, value), f"is {spelt(value)} in the {self.what}"))
                if feature in cumulative and before is not None:
                    # The rate resumes from the last finite sample at the next scrape.
                    self._previous[feature] = before
            elif feature not in cumulative:
                values.append((name, labels, value))
                continue
            else:
                stamp = cumulative[feature]
                sample = CounterSample(tick if stamp is None else stamp, value, stamp is not None)
                self._previous[feature] = sample
                rate = counter_rate(before, sample)
                if rate is not None:
                    values.append((name, labels, rate))
                    continue
                # A sample not refreshed since the scrape before (its timestamp did not
                # advance) measured nothing: its feature is left out of the event, which
                # becomes a dead letter saying why. A rate of 0 would teach the model an
                # idle counter, and the true rate, at the next refresh, would look several
                # times too high; the last rate repeated would be one measurement learned
                # as several, narrowing the model's spread at each repeat.
                if self.scrapes > 1:  # the first scrape yields no event to say it in
                    why = no_rate_reason(before, sample, self.what)
                    valueless.append(
                        ((name, labels, value), f"has no rate in this {self.what}: {why}")
                    )
            # No value this time (not finite, or no rate): the series still puts
            # its key value's event in the scrape, a dead letter that says why.
            values.append((name, labels, math.nan))
        if repeated:
            self._repeated(repeated)
        if clashing:
            self._clashing(clashing)
        if not series:
            self._empty()
        elif self.key_label is not None:
            keyless = [
                feature_name(n, labels) for n, labels, _ in series if self.key_label not in labels
            ]
            if keyless:
                self._keyless(keyless)
        unchanged = unchanged_events(values, stamps, stamped_before, self.key_label)
        if unchanged:
            # The same observation as at the scrape before (a cached sample, /federate
            # asked more often than Prometheus scrapes): learned again, it would count
            # twice and narrow the model's spread. An event with one sample new is taken
            # whole: the others keep their value (a gauge, the last known) or lack their
            # rate (a counter, a dead letter saying why), so no event waits on a series
            # that stopped being refreshed.
            self.unchanged_events += len(unchanged)
            values = [item for item in values if self._key_of(item) not in unchanged]
        # The events of the scrape before were all handed out before this one was due.
        self._why_missing = missing_reasons(
            [item for item in valueless if self._key_of(item[0]) not in unchanged],
            self.key_label,
        )
        self._valueless.clear()
        if cumulative and self.scrapes == 1:
            # The first scrape only primes the rates. Only the first: a scrape after
            # one that lacked the counters still has its gauges, each event then a
            # dead letter for its missing rates rather than gone without a trace.
            return
        position = {"scrape": self.scrapes, "time": now, "url": self.url}
        fields = 1 if self.key_label is None else 2  # the timestamp, and the key's field
        for event in series_to_events(values, key_label=self.key_label, timestamp=now):
            where = dict(position)
            key = None if self.key_label is None else event[self.key_label]
            if self.key_label is not None:
                where["key"] = key
            if len(event) == fields and key in self._why_missing:
                self._valueless.add(key)
            self._buffer.append((orjson.dumps(event), where))

    def told_bad(self, bad: list[BadRecord]) -> list[BadRecord]:
        """``bad``, an event missing a feature whose sample had no value saying why.

        No value: NaN or infinite, or a counter with no rate this time. An
        event none of whose samples had a value says so even when refused for
        another reason (the first reason of its samples, then the decoder's own).
        """
        if not self._why_missing:
            return bad
        return [self._told(record) for record in bad]

    def _told(self, record: BadRecord) -> BadRecord:
        position = record.position
        if position.get("scrape") != self.scrapes:
            return record
        key = position.get("key")
        reasons = self._why_missing.get(key, {})
        told = reasons.get(record.reason)
        if told is None and key in self._valueless:
            # Refused for another reason (no numeric field to infer the features
            # from, in the first event of a run): the first sample still says why.
            told = f"{next(iter(reasons.values()))}; {record.reason}"
        return record if told is None else dataclasses.replace(record, reason=told)

    def _key_of(self, series: Series) -> str | None:
        """The key value of the event ``series`` is in (None without ``key``)."""
        return None if self.key_label is None else series[1].get(self.key_label)

    def _clashes(self, name: str, labels: Mapping[str, str]) -> bool:
        """True if the series would be a feature named like a field its event already has.

        Written into the event, it would overwrite the scrape's time (a series
        named ``timestamp``), or the key's field (``host{host="a"}`` with
        ``key=host``), so that the event went to another key's model.
        """
        if self.key_label is None:
            return not labels and name == "timestamp"
        if self.key_label not in labels or len(labels) > 1:
            return False  # in no event, or named with its other labels
        return name in ("timestamp", self.key_label)

    def _clashing(self, features: list[str]) -> None:
        """Count the series left out for their name; say so the first time."""
        self.clashing_series += len(features)
        if self.clashing_series == len(features):
            fields = (
                "'timestamp'" if self.key_label is None else f"'timestamp' or {self.key_label!r}"
            )
            self.link.say(
                f"the {self.what} holds {len(features)} series named like a field every event "
                f"has ({fields}: {shortened(features[0])}, ...); they are left out of every "
                f"event, not taken for that field (said once, not at every {self.what})"
            )

    def _empty(self) -> None:
        """Count a scrape that yields nothing although it worked; say so the first time."""
        self.empty_scrapes += 1
        self._say_once(
            self.empty_scrapes == 1,
            f"the {self.what} holds no series{self.selection}: no events until one does",
        )

    def _keyless(self, features: list[str]) -> None:
        """Count the series no event has, for want of the key label; say so the first time."""
        self.keyless_series += len(features)
        self._say_once(
            self.keyless_series == len(features),
            f"the {self.what} holds {len(features)} series without the label "
            f"{self.key_label!r} ({shortened(features[0])}, ...); key={self.key_label} leaves "
            "them out of every event",
        )

    def _repeated(self, features: list[str]) -> None:
        """Count the samples dropped as repeats of a series; say so the first time."""
        self.repeated_series += len(features)
        self._say_once(
            self.repeated_series == len(features),
            f"the {self.what} holds a series more than once ({shortened(features[0])}, "
            f"{len(features)} in all); the first value of each is taken and the others "
            "dropped, as Prometheus does",
        )

    def _say_once(self, first: bool, text: str) -> None:
        """Say ``text`` if this is the ``first`` time it holds, and that it is said once."""
        if first:
            self.link.say(f"{text} (said once, not at every {self.what})")
