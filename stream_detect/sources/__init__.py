"""Sources of raw records, addressed by URI.

:func:`open_source` turns what the user wrote into a :class:`Source`:

======================  ===============================================
``-`` or ``stdin``      standard input, one record per line
``file:PATH``           a file, one record per line; ``file://PATH`` too
``file:PATH?follow=1``  the same, following the file as it grows
``kafka://H:P/TOPIC``   a Kafka topic, read as a consumer group member
                        (:mod:`stream_detect.kafka`)
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
>>> open_source("prometheus://host:9100/metrics")
Traceback (most recent call last):
...
stream_detect.errors.ConfigError: config key source: got 'prometheus://host:9100/metrics', \
expected one of: '-' (stdin), 'file:PATH[?follow=true]', \
'kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC]?group=GROUP'; prometheus:// sources are not \
available in this build
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
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

    def __call__(
        self, uri: ParsedURI, *, max_line_bytes: int, client_table: Mapping[str, Any] | None
    ) -> Source: ...


@dataclass(frozen=True)
class SourceScheme:
    """A registry entry: how to build the source, and how to write its URI (for errors)."""

    factory: SourceFactory
    usage: str


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
    "kafka": SourceScheme(_open_kafka, "'kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC]?group=GROUP'"),
}

#: Schemes the product knows of but this build does not provide, with the form they take.
UNAVAILABLE_SOURCE_SCHEMES: dict[str, str] = {
    "prometheus": "prometheus://HOST:PORT/metrics?every=5s",
}


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
        Unknown scheme (the message lists the supported ones) or query parameter.
    InputError
        The input itself cannot be opened (a missing file, named).
    """
    parsed = parse_uri(uri, config_key=config_key)
    scheme = SOURCE_SCHEMES.get(parsed.scheme)
    if scheme is None:
        raise ConfigError(config_key, uri, _expected_schemes(parsed.scheme))
    return scheme.factory(parsed, max_line_bytes=max_line_bytes, client_table=client_table)


def _expected_schemes(scheme: str) -> str:
    usages = ", ".join(dict.fromkeys(entry.usage for entry in SOURCE_SCHEMES.values()))
    expected = f"one of: {usages}"
    if scheme in UNAVAILABLE_SOURCE_SCHEMES:
        expected += f"; {scheme}:// sources are not available in this build"
    elif scheme == "":
        expected += " (to read a file, write file:PATH)"
    return expected
