"""The ``prometheus://`` and ``promql://`` URIs: checked, and opened as a :class:`PrometheusSource`.

What the sources do with what they read is said in
:mod:`stream_detect.sources.prometheus`; here is what their URIs may hold, and
the one-line error (a :class:`~stream_detect.errors.ConfigError`, exit 2) for
one that no scrape or query could use as written.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping, Sequence

import orjson

from stream_detect.durations import duration_param
from stream_detect.errors import ConfigError
from stream_detect.sources.exposition import (
    Cumulative,
    Exposition,
    Series,
    exposition_text,
    present_labels,
    read_exposition,
)
from stream_detect.sources.polled import http_body
from stream_detect.sources.prometheus import PrometheusSource
from stream_detect.uris import check_http_address

__all__ = ["PROMQL_PARAMS", "SCRAPE_PARAMS", "open_promql", "open_scrape"]

_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def open_scrape(
    target: str,
    params: Mapping[str, str],
    *,
    uri: str,
    config_key: str,
    selectors: Sequence[str] = (),
) -> PrometheusSource:
    """The ``prometheus://`` source (``target`` is ``HOST:PORT/PATH``).

    >>> source = open_scrape("localhost:9100/metrics", {"every": "5s"}, uri="u", config_key="s")
    >>> source.url, source.every_s
    ('http://localhost:9100/metrics', 5.0)

    ``selectors`` are the URI's ``match[]`` values (a Prometheus server's
    ``/federate`` wants at least one), each sent as it was written, encoded
    as a query needs it:

    >>> open_scrape("localhost:9090/federate", {}, uri="u", config_key="s",
    ...             selectors=['{job="node"}', 'up{a=~"x+"}']).url
    'http://localhost:9090/federate?match%5B%5D=%7Bjob%3D%22node%22%7D&match%5B%5D=up%7Ba%3D~%22x%2B%22%7D'
    """
    expected = "prometheus://HOST:PORT/metrics?every=15s"
    if not target or target.startswith("/"):
        raise ConfigError(config_key, uri, expected)
    check_http_address(target.partition("/")[0], uri=uri, config_key=config_key, expected=expected)
    url = f"http://{target}" if "/" in target else f"http://{target}/metrics"
    if any(not selector.strip() for selector in selectors):
        raise ConfigError(
            config_key, uri, 'match[]=SELECTOR with a series selector, such as match[]={job="node"}'
        )
    if selectors:
        url += "?" + urllib.parse.urlencode([("match[]", selector) for selector in selectors])
    every = _every(params, uri, config_key)
    _check_key(params, uri, config_key)
    try:
        match = re.compile(params.get("match", ".*"))
    except re.error as exc:
        raise ConfigError(config_key, uri, f"match=REGEX with a valid regex ({exc})") from None

    def fetch() -> Exposition:
        return read_exposition(exposition_text(http_body(url, min(every, 10.0))), match)

    selection = f" whose name matches {match.pattern!r}" if "match" in params else ""
    return PrometheusSource(
        url, fetch, every_s=every, key_label=params.get("key"), uri=uri, selection=selection
    )


def open_promql(
    target: str, params: Mapping[str, str], *, uri: str, config_key: str
) -> PrometheusSource:
    """The ``promql://`` source (``target`` is ``HOST:PORT``).

    >>> source = open_promql("localhost:9090", {"query": "up"}, uri="u", config_key="source")
    >>> source.url
    'http://localhost:9090/api/v1/query?query=up'
    """
    query = params.get("query")
    expected = "promql://HOST:PORT?query=EXPR&every=15s"
    if not target or "/" in target.strip("/") or not query:
        raise ConfigError(config_key, uri, expected)
    check_http_address(target.strip("/"), uri=uri, config_key=config_key, expected=expected)
    url = f"http://{target.strip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    every = _every(params, uri, config_key)
    _check_key(params, uri, config_key)

    def fetch() -> tuple[list[Series], Cumulative]:
        reply = orjson.loads(http_body(url, min(every, 10.0)))
        data = reply.get("data") if isinstance(reply, dict) else None
        if (
            not isinstance(data, dict)
            or reply.get("status") != "success"
            or data.get("resultType") != "vector"
        ):
            raise ValueError(f"query {query!r} did not return an instant vector")
        series: list[Series] = []
        try:
            for item in data["result"]:
                labels = present_labels({str(k): str(v) for k, v in item["metric"].items()})
                name = labels.pop("__name__", "value")
                series.append((name, labels, float(item["value"][1])))
        except (AttributeError, KeyError, TypeError, IndexError) as exc:
            # Not what a Prometheus server answers: a failed query, not a broken run.
            raise ValueError(f"query {query!r}: not a Prometheus query result ({exc!r})") from exc
        return series, {}

    return PrometheusSource(
        url, fetch, every_s=every, key_label=params.get("key"), uri=uri, what="query"
    )


def _check_key(params: Mapping[str, str], uri: str, config_key: str) -> None:
    """Refuse a ``key`` that is no label name (no series could have it, no event would
    come), or ``timestamp``, whose field holds the scrape's time."""
    key = params.get("key")
    if key is not None and (not _LABEL_NAME.fullmatch(key) or key == "timestamp"):
        raise ConfigError(
            config_key,
            uri,
            "key=LABEL with a label name such as key=instance, not timestamp "
            "(the field of the scrape's time)",
        )


def _every(params: Mapping[str, str], uri: str, config_key: str) -> float:
    return duration_param(params, "every", 15.0, uri=uri, config_key=config_key, minimum=0.05)


#: Query parameters each scheme accepts.
SCRAPE_PARAMS = ("every", "match", "key", "match[]")
PROMQL_PARAMS = ("query", "every", "key")
