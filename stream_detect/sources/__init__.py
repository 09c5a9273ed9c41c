"""Sources of raw records, addressed by URI.

:func:`open_source` turns what the user wrote into a :class:`Source`:

======================  ===============================================
``-`` or ``stdin``      standard input, one record per line
``file:PATH``           a file, one record per line; ``file://PATH`` too
``file:PATH?follow=1``  the same, following the file as it grows
``prometheus://...``    an exporter scraped, ``promql://...`` a PromQL
                        query (:mod:`stream_detect.sources.prometheus`)
``alertmanager-``       operators' silences as feedback labels
``silences://H:P``      (:mod:`stream_detect.sources.silences`)
``kafka://H:P/TOPIC``   a Kafka topic, read as a consumer group member
                        (:mod:`stream_detect.kafka`)
======================  ===============================================

Each scheme is one entry of :data:`SOURCE_SCHEMES`, a small registry from
scheme to factory, so a new kind of source (Kafka, Prometheus) plugs in by
adding an entry. URIs are parsed by :func:`stream_detect.uris.parse_uri`, the
one grammar shared with sinks.

>>> source = open_source("-")
>>> type(source).__name__, source.format_hint
('StdinSource', None)
>>> open_source("mqtt://broker/events")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
stream_detect.errors.ConfigError: config key source: got 'mqtt://broker/events', \
expected one of: '-' (stdin), 'file:PATH[?follow=true]', ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from stream_detect.errors import ConfigError
from stream_detect.sources.base import RawBatch, Source
from stream_detect.sources.files import FileSource
from stream_detect.sources.lines import DEFAULT_MAX_LINE_BYTES, LineSource
from stream_detect.sources.stdin import StdinSource
from stream_detect.uris import ParsedURI, parse_uri

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "SOURCE_SCHEMES",
    "UNAVAILABLE_SOURCE_SCHEMES",
    "FileSource",
    "LineSource",
    "ParsedURI",
    "RawBatch",
    "Source",
    "SourceFactory",
    "SourceScheme",
    "StdinSource",
    "open_source",
    "parse_uri",
]


class SourceFactory(Protocol):
    """Builds a source from a parsed URI; raises ConfigError or InputError when it cannot."""

    def __call__(
        self, uri: ParsedURI, *, max_line_bytes: int, client_table: Mapping[str, Any] | None
    ) -> Source: ...


@dataclass(frozen=True)
class SourceScheme:
    """A registry entry: how to build the source, and how to write its URI (for errors).

    ``labels_only``: the source yields feedback labels, not events, so it serves
    ``--labels`` alone (as ``--source`` every record would be a dead letter).
    """

    factory: SourceFactory
    usage: str
    labels_only: bool = False


def _open_stdin(
    uri: ParsedURI, *, max_line_bytes: int, client_table: Mapping[str, Any] | None
) -> Source:
    uri.check_params([])
    return StdinSource(uri=uri.uri, max_line_bytes=max_line_bytes)


def _open_file(
    uri: ParsedURI, *, max_line_bytes: int, client_table: Mapping[str, Any] | None
) -> Source:
    uri.check_params(["follow"])
    if not uri.target:
        raise ConfigError(uri.config_key, uri.uri, "file:PATH with a non-empty path")
    return FileSource(
        uri.target, follow=uri.flag("follow"), max_line_bytes=max_line_bytes, uri=uri.uri
    )


def _open_scrape(
    uri: ParsedURI, *, max_line_bytes: int, client_table: Mapping[str, Any] | None
) -> Source:
    from stream_detect.sources.prometheus_uris import SCRAPE_PARAMS, open_scrape

    uri.check_params(SCRAPE_PARAMS)
    return open_scrape(
        uri.target,
        uri.params,
        uri=uri.uri,
        config_key=uri.config_key,
        selectors=uri.lists.get("match[]", ()),
    )


def _open_promql(
    uri: ParsedURI, *, max_line_bytes: int, client_table: Mapping[str, Any] | None
) -> Source:
    from stream_detect.sources.prometheus_uris import PROMQL_PARAMS, open_promql

    uri.check_params(PROMQL_PARAMS)
    return open_promql(uri.target, uri.params, uri=uri.uri, config_key=uri.config_key)


def _open_silences(
    uri: ParsedURI, *, max_line_bytes: int, client_table: Mapping[str, Any] | None
) -> Source:
    from stream_detect.sources.silences import SILENCES_PARAMS, open_silences

    uri.check_params(SILENCES_PARAMS)
    return open_silences(uri.target, uri.params, uri=uri.uri, config_key=uri.config_key)


def _open_kafka(
    uri: ParsedURI, *, max_line_bytes: int, client_table: Mapping[str, Any] | None
) -> Source:
    # Imported here: the Kafka modules build on this one.
    from stream_detect.kafka.address import parse_kafka_uri
    from stream_detect.kafka.source import KafkaSource

    return KafkaSource(parse_kafka_uri(uri), client_table)


#: scheme -> how to open it. ``-`` and ``stdin`` are bare words, not ``scheme:``.
SOURCE_SCHEMES: dict[str, SourceScheme] = {
    "-": SourceScheme(_open_stdin, "'-' (stdin)"),
    "stdin": SourceScheme(_open_stdin, "'-' (stdin)"),
    "file": SourceScheme(_open_file, "'file:PATH[?follow=true]'"),
    "prometheus": SourceScheme(_open_scrape, "'prometheus://HOST:PORT/metrics?every=15s'"),
    "promql": SourceScheme(_open_promql, "'promql://HOST:PORT?query=EXPR&every=15s'"),
    "alertmanager-silences": SourceScheme(
        _open_silences, "'alertmanager-silences://HOST:PORT[/PREFIX]'", labels_only=True
    ),
    "kafka": SourceScheme(_open_kafka, "'kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC]?group=GROUP'"),
}

#: Schemes the product knows of but this build does not provide, with the form they take.
UNAVAILABLE_SOURCE_SCHEMES: dict[str, str] = {}


def open_source(
    uri: str,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    config_key: str = "source",
    client_table: Mapping[str, Any] | None = None,
) -> Source:
    """Open the source ``uri`` names (see the module docstring for the forms).

    Line sources also have ``format_hint``: ``"csv"`` for ``.csv`` files,
    ``"json"`` for ``.json``, ``.jsonl`` and ``.ndjson``, None otherwise.

    Parameters
    ----------
    uri
        As the user wrote it.
    max_line_bytes
        Longest record kept whole; longer lines are truncated and marked.
    config_key
        The setting ``uri`` came from, named in errors.
    client_table
        Client options of network sources (the ``[kafka]`` config table).

    Raises
    ------
    ConfigError
        Unknown scheme (the message lists the supported ones) or query parameter,
        or a source of labels only (``alertmanager-silences://``) as anything but
        ``labels``.
    InputError
        The input itself cannot be opened (a missing file, named).
    """
    parsed = parse_uri(uri, config_key=config_key)
    scheme = SOURCE_SCHEMES.get(parsed.scheme)
    if scheme is None:
        raise ConfigError(config_key, uri, _expected_schemes(parsed.scheme))
    if scheme.labels_only and config_key != "labels":
        raise ConfigError(
            config_key,
            uri,
            f"{_expected_schemes(parsed.scheme, events_only=True)} ({parsed.scheme}:// gives "
            "feedback labels, not events: name it with --labels)",
        )
    return scheme.factory(parsed, max_line_bytes=max_line_bytes, client_table=client_table)


def _expected_schemes(scheme: str, *, events_only: bool = False) -> str:
    usages = ", ".join(
        dict.fromkeys(
            entry.usage
            for entry in SOURCE_SCHEMES.values()
            if not (events_only and entry.labels_only)
        )
    )
    expected = f"one of: {usages}"
    if scheme in UNAVAILABLE_SOURCE_SCHEMES:
        expected += f"; {scheme}:// sources are not available in this build"
    elif scheme == "":
        expected += " (to read a file, write file:PATH)"
    return expected
