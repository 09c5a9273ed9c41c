"""Kafka addresses and client settings: what a ``kafka://`` URI and the ``[kafka]`` table say.

A URI names the brokers, the topics and a few per-URI choices::

    kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC]?group=GROUP&max_poll_interval_ms=5000

``group`` is the consumer group (default ``stream-detect``); ``from`` is where a
group without committed offsets starts (``earliest``, the default, or ``latest``);
``until=end`` stops a source once it has caught up with the end of its
partitions (a finite run over what a topic holds now); ``key=message`` makes
each message's key its event's model key and ``timestamp=message`` its
timestamp (milliseconds since the epoch) the event's time. Any other query
parameter is a kafka-python client option, as are the keys of the ``[kafka]``
config table; a key ending in ``_env`` names an environment variable whose
value becomes the option without the suffix (``sasl_plain_password_env =
"KAFKA_PASSWORD"``), so secrets stay out of files and are never printed.

>>> from stream_detect.uris import parse_uri
>>> address = parse_kafka_uri(parse_uri("kafka://b1:9092,b2:9093/events?group=g"))
>>> address.bootstrap, address.topics, address.group
(['b1:9092', 'b2:9093'], ['events'], 'g')
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kafka

from stream_detect.errors import ConfigError
from stream_detect.settings import DetectorSettings
from stream_detect.uris import ParsedURI

__all__ = ["KafkaAddress", "brokers", "client_options", "message_fields", "parse_kafka_uri"]

#: Query parameters a URI may carry that are not client options.
URI_PARAMS = ("group", "from", "until", "key", "timestamp")
#: How long one attempt to reach the brokers may take, unless the options say otherwise.
_BOOTSTRAP_TIMEOUT_MS = 2000
#: The topic names Kafka accepts.
_TOPIC_MAX_LENGTH = 249
_TOPIC_NAME = re.compile(rf"[A-Za-z0-9._-]{{1,{_TOPIC_MAX_LENGTH}}}")
#: A port as a broker address writes it (1 to 65535 is checked on its value).
_PORT = re.compile(r"[0-9]{1,5}")
#: Options whose values must never appear in a message or a log line.
_SECRET_WORDS = ("password", "secret", "token")


@dataclass(frozen=True)
class KafkaAddress:
    """The parts of a ``kafka://`` URI (see the module docstring)."""

    uri: str
    config_key: str
    bootstrap: list[str]
    topics: list[str]
    group: str = "stream-detect"
    start: str = "earliest"
    until_end: bool = False
    key_from_message: bool = False
    timestamp_from_message: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def topic(self) -> str:
        """The one topic a sink writes to; ConfigError when the URI names several."""
        if len(self.topics) != 1:
            raise ConfigError(self.config_key, self.uri, "exactly one topic to write to")
        return self.topics[0]


def brokers(text: str, *, config_key: str, value: Any) -> list[str]:
    """The brokers ``HOST:PORT[,HOST:PORT]`` names, each with a host and a port 1–65535.

    Anything else is a :class:`ConfigError` about ``value`` under ``config_key``
    (a URI's key, or ``--kafka``), raised at once: the client would spend its
    whole bootstrap timeout on an address that cannot be dialled.

    >>> brokers("b1:9092, [::1]:9093", config_key="source", value="")
    ['b1:9092', '[::1]:9093']
    >>> brokers("b1:99999", config_key="sink", value="kafka://b1:99999/t")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key sink: got 'kafka://b1:99999/t', expected \
HOST:PORT[,HOST:PORT], each with a host and a port from 1 to 65535 (not 'b1:99999')
    """
    found = [broker.strip() for broker in text.split(",") if broker.strip()]
    for broker in found or [text]:
        host, colon, port = broker.rpartition(":")
        reachable = colon and host.strip("[]") and _PORT.fullmatch(port)
        if not reachable or not 1 <= int(port) <= 65535:
            raise ConfigError(
                config_key,
                value,
                "HOST:PORT[,HOST:PORT], each with a host and a port from 1 to 65535 "
                f"(not {broker[:60]!r})",
            )
    return found


def parse_kafka_uri(uri: ParsedURI) -> KafkaAddress:
    """Split a parsed ``kafka://`` URI into brokers, topics, group and client options.

    >>> from stream_detect.sources import parse_uri
    >>> parse_kafka_uri(parse_uri("kafka://b:9092/a,b?until=end&linger_ms=5")).options
    {'linger_ms': 5}
    >>> parse_kafka_uri(parse_uri("kafka://b:9092"))
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key source: got 'kafka://b:9092', expected \
kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC]?group=GROUP
    >>> parse_kafka_uri(parse_uri("kafka://b:9092/alerts!"))
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key source: got 'kafka://b:9092/alerts!', expected \
topic names of 1 to 249 ASCII letters, digits, '.', '_' or '-', other than '.' and '..' \
(not 'alerts!')
    """
    hosts, _, topics = uri.target.partition("/")
    bootstrap = [host.strip() for host in hosts.split(",") if host.strip()]
    names = [topic.strip() for topic in topics.split(",") if topic.strip()]
    if not bootstrap or not names or any(":" not in host for host in bootstrap):
        raise ConfigError(
            uri.config_key, uri.uri, "kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC]?group=GROUP"
        )
    brokers(hosts, config_key=uri.config_key, value=uri.uri)
    for name in names:
        if not _TOPIC_NAME.fullmatch(name) or name in (".", ".."):
            # Kafka refuses such a name; the client would only say so at the first write.
            raise ConfigError(
                uri.config_key,
                uri.uri,
                f"topic names of 1 to {_TOPIC_MAX_LENGTH} ASCII letters, digits, '.', '_' "
                f"or '-', other than '.' and '..' (not {name[:60]!r})",
            )
    start = uri.params.get("from", "earliest")
    if start not in ("earliest", "latest"):
        raise ConfigError(uri.config_key, uri.uri, "from=earliest or from=latest")
    until = uri.params.get("until")
    if until not in (None, "end"):
        raise ConfigError(uri.config_key, uri.uri, "until=end or no until")
    for name in ("key", "timestamp"):
        if uri.params.get(name, "message") != "message":
            raise ConfigError(uri.config_key, uri.uri, f"{name}=message or no {name}")
    options = {
        name: _option_value(value) for name, value in uri.params.items() if name not in URI_PARAMS
    }
    return KafkaAddress(
        uri=uri.uri,
        config_key=uri.config_key,
        bootstrap=bootstrap,
        topics=names,
        group=uri.params.get("group", "stream-detect"),
        start=start,
        until_end=until == "end",
        key_from_message="key" in uri.params,
        timestamp_from_message="timestamp" in uri.params,
        options=options,
    )


def _option_value(text: str) -> Any:
    """A query value as the client wants it: integers and booleans typed, the rest text."""
    if text.lstrip("-").isdigit():
        return int(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def client_options(
    address: KafkaAddress, table: Mapping[str, Any] | None, *, role: str
) -> dict[str, Any]:
    """The keyword arguments for a kafka-python ``role`` client (``consumer``/``producer``).

    The ``[kafka]`` table comes first, the URI's own options override it;
    ``NAME_env`` entries are read from the environment. Options the other
    role's client knows are left out, so one table serves both; an option
    neither knows is a ConfigError (without its value, which may be secret).

    >>> import os
    >>> os.environ["DOCTEST_KAFKA_PASSWORD"] = "s3cret"
    >>> from stream_detect.sources import parse_uri
    >>> address = parse_kafka_uri(parse_uri("kafka://b:9092/t?client_id=d"))
    >>> table = {"sasl_plain_password_env": "DOCTEST_KAFKA_PASSWORD", "linger_ms": 20}
    >>> options = client_options(address, table, role="producer")
    >>> options["sasl_plain_password"], options["linger_ms"], options["client_id"]
    ('s3cret', 20, 'd')
    >>> "linger_ms" in client_options(address, table, role="consumer")
    False
    """
    known = {
        "consumer": set(kafka.KafkaConsumer.DEFAULT_CONFIG),
        "producer": set(kafka.KafkaProducer.DEFAULT_CONFIG),
    }
    merged: dict[str, Any] = {}
    #: Option -> whether the URI gave it (else the table): an error names where it was written.
    from_uri: dict[str, bool] = {}
    for name, value in {**(table or {}), **address.options}.items():
        in_uri = name in address.options
        key = address.config_key if in_uri else f"kafka.{name}"
        if name.endswith("_env"):
            option = name[: -len("_env")]
            if not isinstance(value, str) or value not in os.environ:
                raise ConfigError(
                    key, value, f"the name of a set environment variable holding {option}"
                )
            merged[option] = os.environ[value]
            from_uri[option] = in_uri
        else:
            merged[name] = value
            from_uri[name] = in_uri
    out: dict[str, Any] = {}
    for name, value in merged.items():
        if name in ("bootstrap_servers", "group_id", "enable_auto_commit"):
            if from_uri[name]:
                raise ConfigError(
                    address.config_key,
                    f"?{name}={_shown(name, value)}",
                    "no bootstrap_servers, group_id or enable_auto_commit (HOST:PORT and "
                    "group= set the first two; auto-commit stays off)",
                )
            raise ConfigError(
                f"kafka.{name}", _shown(name, value), "no such entry (the URI sets it)"
            )
        if name not in known["consumer"] | known["producer"]:
            # A misspelt secret's name need not look like one: its value is never shown.
            close = difflib.get_close_matches(
                name, sorted(known["consumer"] | known["producer"]), 1
            )
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if from_uri[name]:
                raise ConfigError(
                    address.config_key,
                    f"?{name}=(not shown)",
                    f"query parameters that are kafka-python client options{hint}",
                )
            raise ConfigError(
                f"kafka.{name}", "(not shown)", f"the name of a kafka-python client option{hint}"
            )
        if name in known[role]:
            out[name] = value
    # One connection attempt must end soon, so a stop request is honoured while the
    # broker is away (the client's default waits 30 s).
    out.setdefault("bootstrap_timeout_ms", _BOOTSTRAP_TIMEOUT_MS)
    return out


def _shown(name: str, value: Any) -> Any:
    """``value`` as an error may show it: secrets masked."""
    return "***" if any(word in name for word in _SECRET_WORDS) else value


def message_fields(detector: DetectorSettings, address: KafkaAddress) -> DetectorSettings:
    """``detector`` with the fields ``key=message`` and ``timestamp=message`` fill named.

    The message's own key and time become the ``key`` and ``timestamp``
    fields, unless the settings name other fields for them.

    >>> from stream_detect.kafka.address import parse_kafka_uri
    >>> from stream_detect.sources import parse_uri
    >>> address = parse_kafka_uri(parse_uri("kafka://b:9092/t?key=message"))
    >>> message_fields(DetectorSettings(), address).key_field
    'key'
    """
    if address.key_from_message:
        detector = dataclasses.replace(detector, key_field=detector.key_field or "key")
    if address.timestamp_from_message:
        detector = dataclasses.replace(
            detector, timestamp_field=detector.timestamp_field or "timestamp"
        )
    return detector
