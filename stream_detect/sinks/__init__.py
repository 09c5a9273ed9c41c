"""Sinks for output records, addressed by URI.

:func:`open_sink` turns what the user wrote into a :class:`Sink`:

=====================  ==============================================
``-`` or ``stdout``    JSON lines on standard output
``stderr``             JSON lines on standard error
``file:PATH``          JSON lines appended to a file; ``?fsync=true``
                       makes ``flush`` also fsync
``alertmanager://H:P`` alerts posted to Alertmanager's v2 API
                       (:mod:`stream_detect.sinks.alertmanager`)
``kafka://H:P/TOPIC``  JSON records produced to a Kafka topic
                       (:mod:`stream_detect.kafka`)
=====================  ==============================================

The URI grammar is :func:`stream_detect.uris.parse_uri`, shared with sources;
each scheme is one entry of :data:`SINK_SCHEMES`, so a new kind of sink
(Kafka, Alertmanager) plugs in by adding an entry.

>>> type(open_sink("-")).__name__
'StdoutSink'
>>> open_sink("mqtt://localhost/alerts")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
stream_detect.errors.ConfigError: config key sink: got 'mqtt://localhost/alerts', \
expected one of: '-' (stdout), 'stderr', 'file:PATH[?fsync=true]', ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stream_detect.errors import ConfigError
from stream_detect.sinks.base import Sink
from stream_detect.sinks.files import FileSink
from stream_detect.sinks.json_encoding import encode_json_line
from stream_detect.sinks.streams import JsonLinesSink, StderrSink, StdoutSink
from stream_detect.uris import ParsedURI, parse_uri

__all__ = [
    "SINK_SCHEMES",
    "UNAVAILABLE_SINK_SCHEMES",
    "FileSink",
    "JsonLinesSink",
    "Sink",
    "SinkScheme",
    "StderrSink",
    "StdoutSink",
    "encode_json_line",
    "open_sink",
]

#: Builds a sink from a parsed URI and the network client options (the ``[kafka]``
#: table); raises ConfigError when it cannot.
SinkFactory = Callable[[ParsedURI, Mapping[str, Any] | None], Sink]


@dataclass(frozen=True)
class SinkScheme:
    """A registry entry: how to build the sink, and how to write its URI (for errors).

    ``alerts_only``: the sink keeps alerting records and ignores the rest, so
    it cannot take dead letters (they would be lost without a word).
    """

    factory: SinkFactory
    usage: str
    alerts_only: bool = False


def _open_stdout(uri: ParsedURI, client_table: Mapping[str, Any] | None) -> Sink:
    uri.check_params([])
    return StdoutSink(uri=uri.uri)


def _open_stderr(uri: ParsedURI, client_table: Mapping[str, Any] | None) -> Sink:
    uri.check_params([])
    return StderrSink(uri=uri.uri)


def _open_file(uri: ParsedURI, client_table: Mapping[str, Any] | None) -> Sink:
    uri.check_params(["fsync"])
    if not uri.target:
        raise ConfigError(uri.config_key, uri.uri, "file:PATH with a non-empty path")
    return FileSink(uri.target, fsync=uri.flag("fsync"), uri=uri.uri, config_key=uri.config_key)


def _open_alertmanager(uri: ParsedURI, client_table: Mapping[str, Any] | None) -> Sink:
    from stream_detect.sinks.alertmanager import ALERTMANAGER_PARAMS, open_alertmanager

    uri.check_params(ALERTMANAGER_PARAMS)
    return open_alertmanager(uri.target, uri.params, uri=uri.uri, config_key=uri.config_key)


def _open_kafka(uri: ParsedURI, client_table: Mapping[str, Any] | None) -> Sink:
    # Imported here: the Kafka modules build on this one.
    from stream_detect.kafka.address import parse_kafka_uri
    from stream_detect.kafka.sink import KafkaSink

    return KafkaSink(parse_kafka_uri(uri), client_table)


#: scheme -> how to open it. ``-``, ``stdout`` and ``stderr`` are bare words.
SINK_SCHEMES: dict[str, SinkScheme] = {
    "-": SinkScheme(_open_stdout, "'-' (stdout)"),
    "stdout": SinkScheme(_open_stdout, "'-' (stdout)"),
    "stderr": SinkScheme(_open_stderr, "'stderr'"),
    "file": SinkScheme(_open_file, "'file:PATH[?fsync=true]'"),
    "alertmanager": SinkScheme(
        _open_alertmanager, "'alertmanager://HOST:PORT[/PREFIX]'", alerts_only=True
    ),
    "kafka": SinkScheme(_open_kafka, "'kafka://HOST:PORT[,HOST:PORT]/TOPIC'"),
}

#: Schemes the product knows of but this build does not provide, with the form they take.
UNAVAILABLE_SINK_SCHEMES: dict[str, str] = {}


def open_sink(
    uri: str, *, config_key: str = "sink", client_table: Mapping[str, Any] | None = None
) -> Sink:
    """Open the sink ``uri`` names (see the module docstring for the forms).

    Parameters
    ----------
    uri
        As the user wrote it.
    config_key
        The setting ``uri`` came from (``sink``, ``dead_letter``), named in errors.
    client_table
        Client options of network sinks (the ``[kafka]`` config table).

    Raises
    ------
    ConfigError
        Unknown scheme (the message lists the supported ones) or query
        parameter, a file in a directory that does not exist, or dead
        letters (``config_key`` ``dead_letter``) for a sink that takes alerts only.

    >>> open_sink("file:/no/such/dir/alerts.jsonl", config_key="dead_letter")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key dead_letter: got \
'file:/no/such/dir/alerts.jsonl', expected a file in an existing directory; \
'/no/such/dir' does not exist
    """
    parsed = parse_uri(uri, config_key=config_key)
    scheme = SINK_SCHEMES.get(parsed.scheme)
    if scheme is None:
        usages = ", ".join(dict.fromkeys(entry.usage for entry in SINK_SCHEMES.values()))
        expected = f"one of: {usages}"
        if parsed.scheme in UNAVAILABLE_SINK_SCHEMES:
            expected += f"; {parsed.scheme}:// sinks are not available in this build"
        elif parsed.scheme == "":
            expected += " (to write a file, write file:PATH)"
        raise ConfigError(config_key, uri, expected)
    if config_key == "dead_letter" and scheme.alerts_only:
        usages = ", ".join(
            dict.fromkeys(entry.usage for entry in SINK_SCHEMES.values() if not entry.alerts_only)
        )
        raise ConfigError(
            config_key,
            uri,
            f"one of: {usages} ({parsed.scheme}:// takes alerts only; bad records sent "
            "there would be lost)",
        )
    return scheme.factory(parsed, client_table)
