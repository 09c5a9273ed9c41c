"""A Kafka topic as a sink: JSON records, flushed means acknowledged by the broker.

:meth:`KafkaSink.write_batch` hands the records to the producer, which sends
them in batches (``linger_ms`` and ``batch_size`` in the ``[kafka]`` table);
:meth:`KafkaSink.flush` returns only once the broker has acknowledged every
one of them. A send that failed for a reason that may pass (the broker
restarting, a timeout) is sent again, with a growing pause and one line on
stderr per change of reachability (:class:`BrokerLink`), so a caller that
commits its input positions after ``flush`` never commits an undelivered
result. A record may then reach the topic twice: consumers drop duplicates
by the record's ``position``.

Each record's message key is its model ``key`` when it has one, so all the
results of one key land on one partition of the output topic, in order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import kafka
from kafka import errors as kafka_errors

from stream_detect.errors import OutputError, WriteInterrupted
from stream_detect.kafka.address import KafkaAddress, client_options
from stream_detect.kafka.status import BrokerLink, error_reason
from stream_detect.sinks.base import Sink, StopFlag
from stream_detect.sinks.json_encoding import encode_json_line

__all__ = ["KafkaSink"]

#: How long one flush waits for acknowledgements before it counts as a failed attempt.
_FLUSH_ATTEMPT_S = 5.0
#: Errors that say the broker no longer knows this producer's id (it restarted without
#: the producer's state, or expired it after a long quiet spell). The client's own
#: recovery (an epoch bump) is not one every broker grants; a new producer, with a new
#: id, is, and the records that failed are sent again.
_PRODUCER_STATE_ERRORS = (
    kafka_errors.UnknownProducerIdError,
    kafka_errors.OutOfOrderSequenceNumberError,
    kafka_errors.InvalidProducerEpochError,
)


class KafkaSink(Sink):
    """JSON records produced to the address's one topic.

    Parameters
    ----------
    address
        Brokers and the topic (exactly one).
    table
        The ``[kafka]`` config table (client options), or None.
    abandon
        When set (a stop request), a flush that is still retrying an
        unreachable broker gives up with :class:`WriteInterrupted` instead
        of waiting on, so the caller commits nothing more and can exit;
        :meth:`interrupt_on` sets it, as for every sink.
    """

    def __init__(
        self,
        address: KafkaAddress,
        table: Mapping[str, Any] | None = None,
        *,
        abandon: StopFlag | None = None,
        link: BrokerLink | None = None,
    ) -> None:
        self.uri = address.uri
        self.topic = address.topic
        self.address = address
        self.options = client_options(address, table, role="producer")
        # Larger batches than the client's defaults: every new batch wakes the
        # client's sender thread, which costs more than the record itself.
        self.options.setdefault("linger_ms", 20)
        self.options.setdefault("batch_size", 1 << 18)
        self.options.setdefault("acks", "all")
        self.abandon: StopFlag = abandon or threading.Event()
        self.link = link or BrokerLink(address.uri)
        self._producer: Any = None
        self._unacknowledged: list[tuple[bytes | None, bytes, Any]] = []
        self._closed = False

    def _connect(self) -> None:
        """Build the producer, retrying (reported) until a broker answers."""
        while self._producer is None:
            try:
                self._producer = kafka.KafkaProducer(
                    bootstrap_servers=self.address.bootstrap, **self.options
                )
            except kafka_errors.KafkaError as exc:
                self._wait(exc)
            else:
                self.link.ok()

    def interrupt_on(self, stop: StopFlag | None) -> None:
        """Give up retrying an unreachable broker once ``stop`` is set (WriteInterrupted)."""
        if stop is not None:
            self.abandon = stop

    def _wait(self, error: Exception) -> None:
        """Note a failed attempt and pause; give up if the caller is stopping."""
        self.link.failed(error_reason(error))
        if self.abandon.is_set():
            # What is unacknowledged was not delivered: the caller must not commit it.
            raise WriteInterrupted(self.uri)
        time.sleep(self.link.pause_s)

    def write_batch(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Queue ``records`` for the topic, in order (sending starts at once)."""
        self._connect()
        for record in records:
            key = record.get("key")
            encoded_key = None if key is None else str(key).encode()
            value = encode_json_line(record)[:-1]
            self._unacknowledged.append((encoded_key, value, self._send(encoded_key, value)))

    def _send(self, key: bytes | None, value: bytes) -> Any:
        """Hand one record to the producer; its future. Waits while the topic is unknown."""
        while True:
            try:
                return self._producer.send(self.topic, value=value, key=key)
            except kafka_errors.MessageSizeTooLargeError as exc:
                # Sending it again cannot help, and skipping it would lose a result.
                raise OutputError(
                    self.uri,
                    f"a record of {len(value)} bytes is larger than the producer allows "
                    "(raise max_request_size in the [kafka] table, and the topic's "
                    "max.message.bytes with it)",
                ) from exc
            except kafka_errors.KafkaTimeoutError as exc:
                # No metadata for the topic within max_block_ms: the broker is away, or the
                # topic is gone where topics are not made on first use. Broker trouble.
                self._wait(exc)

    def flush(self) -> None:
        """Return once the broker acknowledged everything written; resend what failed."""
        while self._unacknowledged:
            try:
                self._producer.flush(timeout=_FLUSH_ATTEMPT_S)
            except kafka_errors.KafkaTimeoutError as exc:
                self._wait(exc)
                continue
            failed = [(k, v, f.exception) for k, v, f in self._unacknowledged if f.failed()]
            self._unacknowledged = []
            if not failed:
                self.link.ok()
                return
            renewed = any(isinstance(error, _PRODUCER_STATE_ERRORS) for _, _, error in failed)
            if renewed:
                # The old producer may have failed the others for its lost state too: the
                # new one sends them all, and says itself what the broker truly refuses.
                self._producer.close(timeout=0)
                self._producer = None
                self._connect()
            for key, value, error in failed:
                if not renewed and not getattr(error, "retriable", False):
                    raise OutputError(self.uri, f"the broker refused a record ({error})")
                self._unacknowledged.append((key, value, self._send(key, value)))
            self._wait(failed[0][2])

    def close(self) -> None:
        """Flush, then close the producer."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            if self._producer is not None:
                self._producer.close(timeout=1)
