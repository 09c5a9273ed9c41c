"""Broker reachability as a state, reported once per change, with the retry backoff.

Kafka trouble (a broker that is not up yet, restarts, or stops answering) is
not an error of the run: clients retry with a growing pause and say so on
stderr once when the broker is lost and once when it is back, never once per
attempt. The mechanism is :class:`~stream_detect.reachability.Reachability`,
shared with the HTTP sources and the Alertmanager sink; this is its wording
for a broker, and the type that tells a Kafka client's link from the others
(``kafka_broker_reachable`` shows only these). :func:`error_reason` is how
every Kafka client (source, sink, demo) names a client error in those lines.

>>> import io
>>> stream = io.StringIO()
>>> link = BrokerLink("kafka://b:9092/t", stream=stream)
>>> link.failed("no broker answered"); link.failed("no broker answered"); link.ok()
>>> print(stream.getvalue(), end="")
stream-detect: kafka://b:9092/t: broker unreachable (no broker answered); retrying
stream-detect: kafka://b:9092/t: broker reachable again
"""

from __future__ import annotations

from typing import TextIO

from stream_detect.reachability import Reachability

__all__ = ["BrokerLink", "error_reason"]


class BrokerLink(Reachability):
    """Whether the last broker operation of one client worked, and how long to wait now.

    Parameters
    ----------
    uri
        What the lines name (the URI as the user wrote it).
    stream
        Where the lines go (standard error by default).
    first_pause_s, max_pause_s
        The backoff: each consecutive failure doubles the pause, up to the maximum.

    >>> link = BrokerLink("u", stream=__import__("io").StringIO())
    >>> [link.failed("x") or link.pause_s for _ in range(6)]
    [0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
    """

    def __init__(
        self,
        uri: str,
        *,
        stream: TextIO | None = None,
        first_pause_s: float = 0.1,
        max_pause_s: float = 2.0,
    ) -> None:
        super().__init__(
            uri,
            lost="broker unreachable",
            back="broker reachable again",
            stream=stream,
            first_pause_s=first_pause_s,
            max_pause_s=max_pause_s,
        )


def error_reason(error: Exception) -> str:
    """A client error as its lines show it: the class name and, when it has one, the message.

    The class alone (``KafkaTimeoutError``) does not say which of the client's
    many timeouts passed; the message does (which brokers it could not
    bootstrap from, say). kafka-python's own errors already start with their
    class name and are left as they are.

    >>> from kafka import errors
    >>> error_reason(errors.KafkaTimeoutError("Unable to bootstrap from ['b:9092']"))
    "KafkaTimeoutError: Unable to bootstrap from ['b:9092']"
    >>> error_reason(errors.KafkaConnectionError()), error_reason(OSError("refused"))
    ('KafkaConnectionError', 'OSError: refused')
    >>> error_reason(OSError())
    'OSError'
    """
    name, text = type(error).__name__, str(error)
    return text if text.startswith(name) else f"{name}: {text}" if text else name
