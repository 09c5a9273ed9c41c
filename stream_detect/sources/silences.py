"""Operator feedback from Alertmanager silences: ``alertmanager-silences://HOST:PORT``.

``alertmanager-silences://HOST:PORT?every=15s``, used as ``--labels``; with
``HOST:PORT/PREFIX`` where Alertmanager serves its API under a path (as the
``alertmanager://`` sink takes it).

An alert the Alertmanager sink posts carries the id of the event that
started it in its ``event_id`` label (when the run has an ``--id-field``).
An operator who decides it was no anomaly silences it in Alertmanager with a
matcher ``event_id="..."`` (the UI's "Silence" button on the alert fills it
in). This source polls ``/api/v2/silences`` every ``every`` and turns each
silence it has not seen before that has such an equality matcher into one
feedback record ``{ID_FIELD: "...", LABEL_FIELD: 0}`` ("not an anomaly"), in
the field names of the detector, so the usual feedback path joins it to the
event, puts it in the validation buffer and re-tunes ε.

Silences are not replayed after a restart beyond what Alertmanager still
holds: each silence seen is answered once per run (the ids of the last
100,000 are remembered). A poll that fails yields nothing and is counted in
:attr:`SilencesSource.poll_errors`; the stream goes on, and stderr gets one
line when polls start failing and one when they work again
(:mod:`stream_detect.sources.polled`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import orjson

from stream_detect.durations import duration_param
from stream_detect.sources.polled import PolledSource, http_body
from stream_detect.uris import http_base_url

__all__ = ["SILENCES_PARAMS", "SilencesSource", "feedback_from_silence", "open_silences"]

_SEEN_MEMORY = 100_000
#: The label of our alerts that names the event (see stream_detect.sinks.alertmanager).
EVENT_LABEL = "event_id"


def feedback_from_silence(silence: Mapping[str, Any]) -> str | None:
    """The event id a silence names with an equality matcher on ``event_id``, or None.

    >>> feedback_from_silence({"matchers": [
    ...     {"name": "event_id", "value": "e-7", "isRegex": False, "isEqual": True}]})
    'e-7'
    >>> feedback_from_silence({"matchers": [{"name": "key", "value": "a", "isRegex": False}]})
    """
    matchers = silence.get("matchers")
    for matcher in matchers if isinstance(matchers, list) else []:
        if (
            isinstance(matcher, dict)
            and matcher.get("name") == EVENT_LABEL
            and not matcher.get("isRegex", False)
            and matcher.get("isEqual", True)
        ):
            value = matcher.get("value")
            return value if isinstance(value, str) else None
    return None


class SilencesSource(PolledSource):
    """Polls Alertmanager's silences; see the module docstring."""

    format_hint = "json"

    def __init__(self, base_url: str, *, every_s: float = 15.0, uri: str = "") -> None:
        url = base_url.rstrip("/") + "/api/v2/silences"
        super().__init__(
            every_s, uri=uri or base_url, what="silences poll", yields="feedback labels"
        )
        self.url = url
        self.id_field = "id"
        self.label_field = "label"
        self.polls = 0
        self._seen: OrderedDict[str, None] = OrderedDict()

    def bind_fields(self, *, id_field: str | None, label_field: str | None) -> None:
        """Write feedback in the detector's id and label fields."""
        self.id_field = id_field or self.id_field
        self.label_field = label_field or self.label_field

    def resume_token(self) -> dict[str, Any]:
        """Silences cannot be replayed; the token only counts the polls."""
        return {"poll": self.polls}

    def poll(self) -> None:
        """Ask for the silences once; queue a label 0 for each new one naming an event."""
        silences = orjson.loads(http_body(self.url, min(self.every_s, 10.0)))
        if not isinstance(silences, list) or not all(isinstance(s, dict) for s in silences):
            raise ValueError("the silences API did not return a list of silences")
        self.polls += 1
        for silence in silences:
            silence_id = str(silence.get("id"))
            event_id = feedback_from_silence(silence)
            if event_id is None or silence_id in self._seen:
                continue
            self._seen[silence_id] = None
            if len(self._seen) > _SEEN_MEMORY:
                self._seen.popitem(last=False)
            record = {self.id_field: event_id, self.label_field: 0}
            position = {"silence": silence_id, "created_by": silence.get("createdBy")}
            self._buffer.append((orjson.dumps(record), position))


def open_silences(
    target: str, params: Mapping[str, str], *, uri: str, config_key: str
) -> SilencesSource:
    """The source for ``alertmanager-silences://HOST:PORT[/PREFIX]?every=15s``.

    >>> open_silences("localhost:9093", {}, uri="u", config_key="labels").url
    'http://localhost:9093/api/v2/silences'
    >>> open_silences("localhost:9093/am", {}, uri="u", config_key="labels").url
    'http://localhost:9093/am/api/v2/silences'
    """
    expected = "alertmanager-silences://HOST:PORT[/PREFIX]?every=15s"
    base_url = http_base_url(target, uri=uri, config_key=config_key, expected=expected)
    every = duration_param(params, "every", 15.0, uri=uri, config_key=config_key, minimum=0.05)
    return SilencesSource(base_url, every_s=every, uri=uri)


#: Query parameters the URI accepts.
SILENCES_PARAMS = ("every",)
