"""Source and sink URIs: the one grammar both are addressed with.

::

    SCHEME:TARGET?NAME=VALUE&NAME=VALUE     ("//" after the colon is optional)
    WORD                                     (a bare scheme: "-", "stdin", "stderr")

The first ``?`` starts the query. A query value, and the path of a
``file:`` URI, are percent-decoded, so a path holding ``?`` is written with
``%3F`` in its place (and ``%`` followed by two hex digits as ``%25``):
:func:`file_uri` writes any path so. A bare query name (``?follow``) means
``true``. A name appears at most once, unless it ends with ``[]``: such a
name is a list (as Prometheus's ``match[]``), given once per value. What a
scheme means is up to the registry that opens it (:mod:`stream_detect.sources`,
:mod:`stream_detect.sinks`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from stream_detect.errors import ConfigError

__all__ = ["ParsedURI", "check_http_address", "file_uri", "http_base_url", "parse_uri"]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_BARE_WORD = re.compile(r"-|[a-z]+")
_PORT = re.compile(r"[0-9]{1,5}")
#: One segment of a URL path (RFC 3986's pchar): what a path prefix is made of.
_PATH_SEGMENT = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})+")
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

    A list parameter (its name ends with ``[]``) has every value in ``lists``,
    in order, and its first in ``params``:

    >>> parse_uri('prometheus://h:9090/federate?match[]={job="a"}&match[]=up').lists
    {'match[]': ('{job="a"}', 'up')}
    """

    uri: str
    scheme: str
    target: str
    params: Mapping[str, str] = field(default_factory=dict)
    config_key: str = "source"
    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

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
    >>> parse_uri("file:what%3F.csv?follow").target
    'what?.csv'

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
    if scheme.lower() == "file":
        # A path may hold `?`, which would start the query: written %3F, it is decoded here.
        target = unquote(target)
    params: dict[str, str] = {}
    lists: dict[str, tuple[str, ...]] = {}
    for item in query.split("&") if query else []:
        name, equals, value = item.partition("=")
        if not name:
            raise ConfigError(config_key, uri, "query parameters written as name=value&name=value")
        value = unquote(value) if equals else "true"
        if name.endswith("[]"):
            lists[name] = (*lists.get(name, ()), value)
        elif name in params:
            raise ConfigError(config_key, uri, f"the query parameter {name!r} at most once")
        params.setdefault(name, value)
    return ParsedURI(uri, scheme.lower(), target, params, config_key, lists)


def file_uri(path: str) -> str:
    """The ``file:`` URI that :func:`parse_uri` reads back as ``path``, whatever it holds.

    >>> file_uri("runs/what?.csv"), file_uri("100%.jsonl")
    ('file:runs/what%3F.csv', 'file:100%25.jsonl')
    >>> parse_uri(file_uri("a%3Fb?.csv")).target
    'a%3Fb?.csv'
    """
    return "file:" + path.replace("%", "%25").replace("?", "%3F")


def check_http_address(address: str, *, uri: str, config_key: str, expected: str) -> None:
    """Refuse the ``HOST:PORT`` of an HTTP server that no request could reach as written.

    The port, when given, is a number from 1 to 65535: written otherwise, the
    run would start and say "connection refused" at every attempt (urllib
    takes 99999, and the machine's resolver a credential, as it can). No
    credentials before the host: they would be taken as part of its name,
    never sent (and said on stderr at every failure).

    >>> check_http_address("127.0.0.1:9100", uri="u", config_key="source", expected="HOST:PORT")
    >>> check_http_address("[::1]:9093", uri="u", config_key="sink", expected="HOST:PORT")
    >>> check_http_address("h:99999", uri="promql://h:99999?query=up", config_key="source",
    ...                    expected="promql://HOST:PORT?query=EXPR")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key source: got 'promql://h:99999?query=up', \
expected promql://HOST:PORT?query=EXPR, with a port from 1 to 65535 (not 'h:99999')
    """
    if "@" in address:
        raise ConfigError(
            config_key, uri, f"{expected}, without credentials before the host (not supported)"
        )
    port: str | None = None  # none given: the scheme's own
    host = address
    if ":" in address.rpartition("]")[2]:
        host, _, port = address.rpartition(":")
    if not host.strip("[]") or (
        port is not None and not (_PORT.fullmatch(port) and 1 <= int(port) <= 65535)
    ):
        raise ConfigError(
            config_key, uri, f"{expected}, with a port from 1 to 65535 (not {address[:60]!r})"
        )


def http_base_url(target: str, *, uri: str, config_key: str, expected: str) -> str:
    """The ``http://HOST:PORT[/PREFIX]`` of a server addressed as ``HOST:PORT[/PREFIX]``.

    The prefix is the path the server's API sits under (Alertmanager run
    with ``--web.route-prefix=/PREFIX``, or behind a reverse proxy at a
    path); every request's path starts with it. A trailing slash is dropped.

    >>> http_base_url("127.0.0.1:9093", uri="u", config_key="sink", expected="HOST:PORT")
    'http://127.0.0.1:9093'
    >>> http_base_url("127.0.0.1:9093/ops/am/", uri="u", config_key="sink", expected="HOST:PORT")
    'http://127.0.0.1:9093/ops/am'

    A prefix ending in the API's own path (``/api``, ``/api/v2``) names what
    every request adds itself; it is refused, with the address meant:

    >>> http_base_url("h:9093/am/api/v2", uri="alertmanager://h:9093/am/api/v2",
    ...               config_key="sink", expected="alertmanager://HOST:PORT[/PREFIX]")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key sink: got 'alertmanager://h:9093/am/api/v2', \
expected alertmanager://HOST:PORT[/PREFIX], with PREFIX only what comes before /api (the \
server's --web.route-prefix, if any): alertmanager://h:9093/am

    A prefix no request could carry as written (a fragment, a space, an
    empty, ``.`` or ``..`` segment, a ``%`` that starts no escape) is refused
    here, in one line, rather than at every request of the run:

    >>> http_base_url("h:9093/am#top", uri="alertmanager://h:9093/am#top", config_key="sink",
    ...               expected="alertmanager://HOST:PORT[/PREFIX]")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key sink: got 'alertmanager://h:9093/am#top', \
expected alertmanager://HOST:PORT[/PREFIX], with PREFIX a URL path: segments of letters, digits, \
-._~!$&'()*+,;=:@ and %XX escapes, none empty, '.' or '..', no query or fragment (not '/am#top')
    """
    host, _, path = target.lstrip("/").partition("/")
    if not host:
        raise ConfigError(config_key, uri, expected)
    check_http_address(host, uri=uri, config_key=config_key, expected=expected)
    prefix = path.rstrip("/")
    segments = prefix.split("/") if prefix else []
    if any(not _PATH_SEGMENT.fullmatch(part) or part in (".", "..") for part in segments):
        raise ConfigError(
            config_key,
            uri,
            f"{expected}, with PREFIX a URL path: segments of letters, digits, "
            "-._~!$&'()*+,;=:@ and %XX escapes, none empty, '.' or '..', no query or fragment "
            f"(not {'/' + path[:60]!r})",
        )
    api = segments[-2:] if segments[-1:] in (["v1"], ["v2"]) else segments[-1:]
    if api[:1] == ["api"]:
        # Every request adds /api/v2/... itself: this would ask /api/v2/api/v2/... .
        root = f"{uri.partition('://')[0]}://{host}"
        raise ConfigError(
            config_key,
            uri,
            f"{expected}, with PREFIX only what comes before /api (the server's "
            f"--web.route-prefix, if any): {root}{''.join('/' + p for p in segments[: -len(api)])}",
        )
    return f"http://{host}" + "".join(f"/{part}" for part in segments)
