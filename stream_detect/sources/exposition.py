"""The Prometheus text exposition format: an exporter's page read as series.

:func:`parse_exposition` reads a page (``/metrics``) into series (sample
name, labels, value) and says which of them are cumulative (counters, and a
histogram's or summary's ``_bucket``, ``_sum`` and ``_count``);
:func:`feature_name` is the feature a series becomes. A page that is not
the format is refused in one short line naming its first line refused.
A label with an empty value is no label (:func:`present_labels`), as in
Prometheus.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple, TextIO, cast

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_fd_to_metric_families

__all__ = [
    "Cumulative",
    "Exposition",
    "Series",
    "exposition_text",
    "feature_name",
    "parse_exposition",
    "present_labels",
    "read_exposition",
    "shortened",
]

#: A series: sample name, labels, value.
Series = tuple[str, Mapping[str, str], float]
#: The features of a scrape's cumulative series (to be turned into rates), each with
#: the timestamp its sample carries (Unix seconds), or None where it carries none.
Cumulative = Mapping[str, float | None]


class Exposition(NamedTuple):
    """A page read: its matching series, the cumulative ones among them, and timestamps."""

    series: list[Series]
    cumulative: Cumulative
    #: The feature of each series whose sample carries its own timestamp: that
    #: timestamp (Unix seconds). Series without one are not in it.
    stamps: Mapping[str, float]


# Not "gaugehistogram": its buckets, _gcount and _gsum go up and down, as gauges do.
_CUMULATIVE_TYPES = frozenset({"counter", "histogram", "summary"})
_CUMULATIVE_SUFFIXES = ("_total", "_bucket", "_sum", "_count")


def feature_name(name: str, labels: Mapping[str, str]) -> str:
    """The feature a series becomes.

    >>> feature_name("http_requests_total", {"code": "200", "method": "get"})
    'http_requests_total{code="200",method="get"}'
    >>> feature_name("up", {})
    'up'

    Label values are escaped as the exposition format writes them, so two
    label sets never share a name (nor does a name hold a line break):

    >>> print(feature_name("m", {"a": 'x",b="y'}), feature_name("m", {"a": "x", "b": "y"}))
    m{a="x\\",b=\\"y"} m{a="x",b="y"}
    """
    if not labels:
        return name
    inner = ",".join(f'{k}="{_escaped(v)}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def present_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """``labels`` less those whose value is empty, which Prometheus takes as absent.

    To Prometheus ``m{a=""}`` and ``m`` are one series, so they are one
    feature here; and ``up{host=""}`` lacks the label ``host``, so with
    ``key=host`` it is in no event, as a series without the label is, rather
    than the event of a key ``""``.

    >>> present_labels({"a": "", "b": "x"})
    {'b': 'x'}
    """
    return {name: value for name, value in labels.items() if value}


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition_text(body: bytes) -> str:
    """The text of a scraped page: UTF-8, as the format requires, less a leading byte-order mark.

    Bytes that are not UTF-8 raise ValueError naming where (a failed scrape):
    read with replacement characters, two label values of another encoding
    could become one feature.

    >>> exposition_text(b"\\xef\\xbb\\xbfup 1\\n")
    'up 1\\n'
    >>> exposition_text(b'up 1\\nm{room="k\\xfcche"} 1\\n')
    Traceback (most recent call last):
    ...
    ValueError: not UTF-8, the text format's encoding: byte 0xfc on line 2 'm{room="k\\ufffdche"} 1'
    """
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        start = body.rfind(b"\n", 0, exc.start) + 1
        end = body.find(b"\n", exc.start)
        shown = body[start : len(body) if end < 0 else end].decode("utf-8", "replace")
        raise ValueError(
            f"not UTF-8, the text format's encoding: byte {body[exc.start]:#04x} "
            f"on line {line} {shortened(shown)!r}"
        ) from None


def parse_exposition(text: str, match: re.Pattern[str]) -> tuple[list[Series], Cumulative]:
    """The matching series of a text exposition, and which of them are cumulative.

    :func:`read_exposition` without the timestamps of the samples that are not cumulative.

    >>> series, cumulative = parse_exposition(
    ...     "# TYPE jobs_total counter\\njobs_total 3\\n# TYPE temp gauge\\ntemp 21.5\\n",
    ...     re.compile(".*"))
    >>> series, cumulative
    ([('jobs_total', {}, 3.0), ('temp', {}, 21.5)], {'jobs_total': None})

    A cumulative sample's own timestamp (milliseconds in the classic format,
    seconds in OpenMetrics) is given in seconds:

    >>> parse_exposition("# TYPE jobs_total counter\\njobs_total 3 1700000000500\\n",
    ...                  re.compile(".*"))[1]
    {'jobs_total': 1700000000.5}

    A counter in OpenMetrics, whose ``# TYPE`` line names it without ``_total``
    (an exporter that always answers in that format), is a counter too:

    >>> parse_exposition("# TYPE jobs counter\\njobs_total 3\\njobs_created 1e9\\n# EOF\\n",
    ...                  re.compile(".*"))
    ([('jobs_total', {}, 3.0)], {'jobs_total': None})

    Text that is not the format raises ValueError naming the first line
    refused (a failed scrape), whatever the parser stumbled on:

    >>> parse_exposition('up 1\\nm{a="x", ="y"} 1\\n', re.compile(".*"))
    Traceback (most recent call last):
    ...
    ValueError: not the Prometheus text format: line 2 'm{a="x", ="y"} 1': malformed
    """
    series, cumulative, _ = read_exposition(text, match)
    return series, cumulative


def read_exposition(text: str, match: re.Pattern[str]) -> Exposition:
    """The matching series of a text exposition, the cumulative ones, and their timestamps.

    Every sample's own timestamp is kept, a gauge's too (as seconds), so that a
    scrape can tell a sample it saw before, re-exposed (a cache, Prometheus's
    ``/federate``), from a new one:

    >>> read_exposition('# TYPE up untyped\\nup{job="a"} 1 1700000000500\\ntemp 3\\n',
    ...                 re.compile(".*")).stamps
    {'up{job="a"}': 1700000000.5}

    Raises ValueError as :func:`parse_exposition` does.
    """
    lines = _CountedLines(text)
    try:
        families = text_fd_to_metric_families(cast(TextIO, lines))
        return _matching_series(families, match, openmetrics=_is_openmetrics(text))
    except (ValueError, LookupError, TypeError, AttributeError) as exc:
        # The parser's own errors include an IndexError for some broken label sets,
        # and its ValueErrors repeat the whole line (a megabyte of minified JSON):
        # one failed scrape, said in one short line that names the line refused.
        reason = str(exc).split(":")[0].strip() if isinstance(exc, ValueError) else ""
        raise ValueError(
            f"not the Prometheus text format: line {lines.number} "
            f"{shortened(lines.current)!r}: {reason or 'malformed'}"
        ) from None


class _CountedLines:
    """The lines of ``text``, counted as the parser takes them (to name the one it refused)."""

    def __init__(self, text: str) -> None:
        self._lines = io.StringIO(text)
        self.number = 0
        self.current = ""

    def __iter__(self) -> _CountedLines:
        return self

    def __next__(self) -> str:
        line = self._lines.readline()
        if not line:
            raise StopIteration
        self.number += 1
        self.current = line
        return line


def shortened(line: str, limit: int = 80) -> str:
    line = line.strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _is_openmetrics(text: str) -> bool:
    """True if ``text`` is OpenMetrics, which ends with ``# EOF`` (and gives timestamps
    in seconds, where the parser, written for the classic format, takes milliseconds)."""
    return text.rstrip().endswith("\n# EOF") or text.strip() == "# EOF"


def _matching_series(
    families: Iterable[Metric], match: re.Pattern[str], *, openmetrics: bool
) -> Exposition:
    series: list[Series] = []
    cumulative: dict[str, float | None] = {}
    stamps: dict[str, float] = {}
    # The parser divides every timestamp by 1000, OpenMetrics' seconds too.
    stamp_scale = 1000.0 if openmetrics else 1.0
    counters: set[str] = set()
    for family in families:
        is_cumulative = family.type in _CUMULATIVE_TYPES
        if family.type == "counter":
            counters.add(family.name)
        elif family.type == "unknown" and _counter_total(family.name, counters):
            # OpenMetrics types the family (``# TYPE jobs counter``), whose samples are
            # ``jobs_total``: the parser, written for the classic format, makes them a
            # family of their own, untyped; read as gauges, totals would only rise.
            is_cumulative = True
        for sample in family.samples:
            if sample.name.endswith("_created") or not match.fullmatch(sample.name):
                continue
            labels = present_labels(sample.labels)
            series.append((sample.name, labels, float(sample.value)))
            feature = feature_name(sample.name, labels)
            stamp = None if sample.timestamp is None else float(sample.timestamp) * stamp_scale
            if stamp is not None:
                # The first sample of a repeated series is the one taken, its time too.
                stamps.setdefault(feature, stamp)
            if is_cumulative and sample.name.endswith(_CUMULATIVE_SUFFIXES):
                cumulative.setdefault(feature, stamp)
    return Exposition(series, cumulative, stamps)


def _counter_total(name: str, counters: set[str]) -> bool:
    """True if ``name`` is the ``_total`` of one of the ``counters`` (named without it)."""
    return name.endswith("_total") and name[: -len("_total")] in counters
