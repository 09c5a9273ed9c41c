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
======================  ===============================================

Each scheme is one entry of :data:`SOURCE_SCHEMES`, a small registry from
scheme to factory, so a new kind of source (Kafka, Prometheus) plugs in by
adding an entry. :func:`parse_uri` is the one URI grammar shared with sinks::

    SCHEME:TARGET?NAME=VALUE&NAME=VALUE     ("//" after the colon is optional)
    WORD                                     (a bare scheme: "-", "stdin", "stderr")

The first ``?`` starts the query, so a path containing ``?`` cannot be named.
A bare query name (``?follow``) means ``true``.

>>> source = open_source("-")
>>> type(source).__name__, source.format_hint
('StdinSource', None)
>>> open_source("kafka://broker:9092/events")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
stream_detect.errors.ConfigError: config key source: got 'kafka://broker:9092/events', \
expected one of: '-' (stdin), 'file:PATH[?follow=true]', ...; kafka:// sources are not \
available in this build
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote

from stream_detect.errors import ConfigError
from stream_detect.sources.base import RawBatch, Source
from stream_detect.sources.lines import (
    DEFAULT_MAX_LINE_BYTES,
    FileSource,
    LineSource,
    StdinSource,
    format_hint_for,
)

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
    "format_hint_for",
    "open_source",
    "parse_uri",
]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_BARE_WORD = re.compile(r"-|[a-z]+")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True)
class ParsedURI:
    """A source or sink URI split into its parts.

    ``config_key`` names the setting the URI came from (``source``, ``sink``,
    ``dead_letter``...), so every error about it can say where to look.

    >>> parsed = parse_uri("file:///var/log/events.jsonl?follow=true")
    >>> parsed.scheme, parsed.target, dict(parsed.params)
    ('file', '/var/log/events.jsonl', {'follow': 'true'})
    >>> parsed.flag("follow")
    True
    """

    uri: str
    scheme: str
    target: str
    params: Mapping[str, str] = field(default_factory=dict)
    config_key: str = "source"

    def check_params(self, allowed: Iterable[str]) -> None:
        """Raise ConfigError naming any query parameter not in ``allowed``.

        >>> parse_uri("file:x.jsonl?folow=true").check_params(["follow"])
        Traceback (most recent call last):
        ...
        stream_detect.errors.ConfigError: config key source: got 'file:x.jsonl?folow=true', \
expected only the query parameters follow for file: (unknown: 'folow')
        """
        allowed = sorted(allowed)
        unknown = [name for name in self.params if name not in allowed]
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            accepted = ", ".join(allowed) if allowed else "none"
            raise ConfigError(
                self.config_key,
                self.uri,
                f"only the query parameters {accepted} for {self.scheme}: (unknown: {names})",
            )

    def flag(self, name: str, default: bool = False) -> bool:
        """Return the boolean query parameter ``name`` (true/false, 1/0, yes/no, on/off).

        >>> parse_uri("file:x?follow=no").flag("follow"), parse_uri("file:x").flag("follow")
        (False, False)
        """
        value = self.params.get(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ConfigError(
            self.config_key, self.uri, f"{name}=true or {name}=false, not {name}={value!r}"
        )


def parse_uri(uri: str, *, config_key: str = "source") -> ParsedURI:
    """Split ``uri`` into scheme, target and query parameters.

    A string that is neither a bare word nor ``SCHEME:...`` gets the scheme
    ``""``, which no registry knows, so the caller reports it as unknown.

    >>> parse_uri("-").scheme, parse_uri("stderr").scheme, parse_uri("file:a/b.csv").target
    ('-', 'stderr', 'a/b.csv')
    >>> parse_uri("events.jsonl").scheme
    ''

    Raises
    ------
    ConfigError
        The query is malformed or names a parameter twice.
    """
    if _BARE_WORD.fullmatch(uri):
        return ParsedURI(uri, uri, "", {}, config_key)
    scheme, colon, rest = uri.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme):
        return ParsedURI(uri, "", uri, {}, config_key)
    if rest.startswith("//"):
        rest = rest[2:]
    target, _, query = rest.partition("?")
    params: dict[str, str] = {}
    for item in query.split("&") if query else []:
        name, equals, value = item.partition("=")
        if not name:
            raise ConfigError(config_key, uri, "query parameters written as name=value&name=value")
        if name in params:
            raise ConfigError(config_key, uri, f"the query parameter {name!r} at most once")
        params[name] = unquote(value) if equals else "true"
    return ParsedURI(uri, scheme.lower(), target, params, config_key)


class SourceFactory(Protocol):
    """Builds a source from a parsed URI; raises ConfigError or InputError when it cannot."""

    def __call__(self, uri: ParsedURI, *, max_line_bytes: int) -> Source: ...


@dataclass(frozen=True)
class SourceScheme:
    """A registry entry: how to build the source, and how to write its URI (for errors)."""

    factory: SourceFactory
    usage: str


def _open_stdin(uri: ParsedURI, *, max_line_bytes: int) -> Source:
    uri.check_params([])
    return StdinSource(uri=uri.uri, max_line_bytes=max_line_bytes)


def _open_file(uri: ParsedURI, *, max_line_bytes: int) -> Source:
    uri.check_params(["follow"])
    if not uri.target:
        raise ConfigError(uri.config_key, uri.uri, "file:PATH with a non-empty path")
    return FileSource(
        uri.target, follow=uri.flag("follow"), max_line_bytes=max_line_bytes, uri=uri.uri
    )


def _open_scrape(uri: ParsedURI, *, max_line_bytes: int) -> Source:
    from stream_detect.sources.prometheus import SCRAPE_PARAMS, open_scrape

    uri.check_params(SCRAPE_PARAMS)
    return open_scrape(uri.target, uri.params, uri=uri.uri, config_key=uri.config_key)


def _open_promql(uri: ParsedURI, *, max_line_bytes: int) -> Source:
    from stream_detect.sources.prometheus import PROMQL_PARAMS, open_promql

    uri.check_params(PROMQL_PARAMS)
    return open_promql(uri.target, uri.params, uri=uri.uri, config_key=uri.config_key)


def _open_silences(uri: ParsedURI, *, max_line_bytes: int) -> Source:
    from stream_detect.sources.silences import SILENCES_PARAMS, open_silences

    uri.check_params(SILENCES_PARAMS)
    return open_silences(uri.target, uri.params, uri=uri.uri, config_key=uri.config_key)


#: scheme -> how to open it. ``-`` and ``stdin`` are bare words, not ``scheme:``.
SOURCE_SCHEMES: dict[str, SourceScheme] = {
    "-": SourceScheme(_open_stdin, "'-' (stdin)"),
    "stdin": SourceScheme(_open_stdin, "'-' (stdin)"),
    "file": SourceScheme(_open_file, "'file:PATH[?follow=true]'"),
    "prometheus": SourceScheme(_open_scrape, "'prometheus://HOST:PORT/metrics?every=15s'"),
    "promql": SourceScheme(_open_promql, "'promql://HOST:PORT?query=EXPR&every=15s'"),
    "alertmanager-silences": SourceScheme(_open_silences, "'alertmanager-silences://HOST:PORT'"),
}

#: Schemes the product knows of but this build does not provide, with the form they take.
UNAVAILABLE_SOURCE_SCHEMES: dict[str, str] = {
    "kafka": "kafka://HOST:PORT/TOPIC?group=GROUP",
}


def open_source(
    uri: str, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, config_key: str = "source"
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

    Raises
    ------
    ConfigError
        Unknown scheme (the message lists the supported ones) or query parameter.
    InputError
        The input itself cannot be opened (a missing file, named).
    """
    parsed = parse_uri(uri, config_key=config_key)
    scheme = SOURCE_SCHEMES.get(parsed.scheme)
    if scheme is None:
        raise ConfigError(config_key, uri, _expected_schemes(parsed.scheme))
    return scheme.factory(parsed, max_line_bytes=max_line_bytes)


def _expected_schemes(scheme: str) -> str:
    usages = ", ".join(dict.fromkeys(entry.usage for entry in SOURCE_SCHEMES.values()))
    expected = f"one of: {usages}"
    if scheme in UNAVAILABLE_SOURCE_SCHEMES:
        expected += f"; {scheme}:// sources are not available in this build"
    elif scheme == "":
        expected += " (to read a file, write file:PATH)"
    return expected
