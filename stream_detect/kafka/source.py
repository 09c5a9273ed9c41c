"""A Kafka topic as a source: a consumer group member that commits only what was delivered.

:class:`KafkaSource` follows the :mod:`stream_detect.sources.base` lifecycle:

* auto-commit is off; :meth:`KafkaSource.commit` commits the offsets of a
  token, which the pipeline calls only after the batch's results were flushed
  (acknowledged by their destination), so alerts are delivered at least once;
* each record's position is ``{"topic": T, "partition": P, "offset": O}``; a
  record with a null value (a tombstone) comes as an empty payload whose
  position also says ``"tombstone": true``, for the decoder to refuse
  (:mod:`stream_detect.records.tombstones`);
* :meth:`KafkaSource.resume_token` lists the next offset of every partition
  read so far, and :meth:`KafkaSource.seek` continues there once the group
  assigns those partitions (a checkpoint restore);
* a broker that cannot be reached, at start or later, is retried with a
  growing pause, reported once per change on stderr (:class:`BrokerLink`);
  ``read_batch`` still returns within its timeout, so a stop request is
  honoured while the broker is away.

Rebalances are Kafka's: :attr:`KafkaSource.on_assigned` and
:attr:`KafkaSource.on_revoked` are called from inside ``read_batch`` with the
``(topic, partition)`` pairs concerned, before any record of a newly assigned
partition is returned and after every record of a revoked one was.

The group membership, the offsets and the commits are
:class:`~stream_detect.kafka.group_member.GroupMember`'s; this module reads
the records: batches, their positions, the message key and timestamp as
fields, and how far the member is behind the partitions' ends.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import orjson
from kafka import errors as kafka_errors

from stream_detect.errors import StreamDetectError
from stream_detect.kafka.address import KafkaAddress
from stream_detect.kafka.group_member import GroupMember
from stream_detect.kafka.positions import Partition
from stream_detect.kafka.status import BrokerLink, error_reason
from stream_detect.records.batch import BadRecord
from stream_detect.sources.base import RawBatch

__all__ = ["KafkaSource", "with_fields"]


class KafkaSource(GroupMember):
    """Records of the address's topics, read as a member of its consumer group.

    Parameters
    ----------
    address
        Brokers, topics, group (see :mod:`stream_detect.kafka.address`).
    table
        The ``[kafka]`` config table (client options), or None.
    link
        Reports broker reachability; one is made for the URI when None.
    """

    def __init__(
        self,
        address: KafkaAddress,
        table: Mapping[str, Any] | None = None,
        *,
        link: BrokerLink | None = None,
    ) -> None:
        super().__init__(address, table, link=link)
        self._caught_up = False
        #: The event fields the message key and timestamp go into (``key=message``,
        #: ``timestamp=message``); set by the caller, who knows the field names.
        self.key_field: str | None = None
        self.timestamp_field: str | None = None
        #: The values of the last batch's records that were given fields, as sent,
        #: by (topic, partition, offset); what their dead letters show as ``raw``.
        self._sent: dict[tuple[Any, ...], bytes] = {}

    # ------------------------------------------------------------------ reading

    def read_batch(self, max_records: int, linger_s: float, timeout_s: float) -> RawBatch:
        """Up to ``max_records`` records of the assigned partitions, in partition order."""
        deadline = time.monotonic() + timeout_s
        if self._sent:
            self._sent = {}  # the batch before was handled: its dead letters are written
        if not self._connect():
            time.sleep(min(self.link.pause_s, max(0.0, timeout_s)))
            return RawBatch()
        payloads: list[bytes] = []
        positions: list[dict[str, Any]] = []
        batch = RawBatch(payloads, positions)
        wait = timeout_s
        caught_up = False
        while True:
            polled = self._poll(max_records - len(batch), wait)
            for records in polled.values():
                for record in records:
                    position = {
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                    }
                    if record.value is None:
                        # A tombstone holds no event: the decoder makes it a dead letter.
                        position["tombstone"] = True
                        payloads.append(b"")
                    else:
                        payloads.append(self._payload(record))
                    positions.append(position)
                last = records[-1]
                self._next[(last.topic, last.partition)] = last.offset + 1
            if not polled or len(batch) >= max_records:
                break
            if self.address.until_end and (caught_up := self._at_end()):
                break  # nothing more will come: no point lingering
            # Something came: give the rest of the batch ``linger_s`` to fill.
            wait = min(linger_s, max(0.0, deadline - time.monotonic()))
            if wait <= 0:
                break
        if self.address.until_end and len(batch) < max_records:
            self._caught_up = caught_up or self._at_end()
        return batch

    def _payload(self, record: Any) -> bytes:
        """The record's value, with its message key and timestamp as fields if asked for."""
        fields = []
        if self.key_field is not None and record.key is not None:
            key = record.key.decode("utf-8", errors="replace")
            fields.append(orjson.dumps(self.key_field) + b":" + orjson.dumps(key))
        if self.timestamp_field is not None and record.timestamp is not None:
            fields.append(
                orjson.dumps(self.timestamp_field) + b":" + str(record.timestamp).encode()
            )
        value: bytes = record.value
        if not fields:
            return value
        # Kept for this batch's dead letters, which show the value as it was sent.
        self._sent[(record.topic, record.partition, record.offset)] = value
        return with_fields(value, b",".join(fields))

    def told_bad(self, bad: list[BadRecord]) -> list[BadRecord]:
        """``bad`` with each record's value as it was sent, before the source added fields.

        >>> from stream_detect.kafka.address import parse_kafka_uri
        >>> from stream_detect.sources import parse_uri
        >>> source = KafkaSource(parse_kafka_uri(parse_uri("kafka://127.0.0.1:9/t")))
        >>> source._sent[("t", 0, 4)] = b'{"x": "a"} '
        >>> position = {"topic": "t", "partition": 0, "offset": 4}
        >>> source.told_bad([BadRecord(position, "r", b'{"x": "a","key":"h"}')])[0].payload
        b'{"x": "a"} '
        """
        if not self._sent:
            return bad
        return [self._as_sent(record) for record in bad]

    def _as_sent(self, record: BadRecord) -> BadRecord:
        where = record.position
        sent = self._sent.get((where.get("topic"), where.get("partition"), where.get("offset")))
        return record if sent is None else dataclasses.replace(record, payload=sent)

    def _poll(self, max_records: int, wait_s: float) -> dict[Any, Any]:
        try:
            polled: dict[Any, Any] = self._consumer.poll(
                timeout_ms=int(wait_s * 1000), max_records=max_records
            )
        except kafka_errors.KafkaError as exc:
            if isinstance(exc.__cause__, StreamDetectError):
                # Our own assignment callback refused (a checkpoint of other features, say):
                # kafka-python wraps that as a client error, but no retry can cure it.
                raise exc.__cause__ from None
            self.link.failed(error_reason(exc))
            time.sleep(min(self.link.pause_s, wait_s))
            return {}
        return polled

    def _at_end(self) -> bool:
        """True when every assigned partition has been read to its current end.

        A partition's end is the one the broker sent with its last fetch
        response (the consumer keeps fetching while it polls), so knowing it
        costs no request; only a partition not fetched from yet is asked for
        its end offset.
        """
        assigned = self._consumer.assignment()
        if not assigned:
            return False
        ends = {tp: self._consumer.highwater(tp) for tp in assigned}
        unknown = [tp for tp, end in ends.items() if end is None]
        if unknown:
            try:
                ends.update(self._consumer.end_offsets(unknown))
            except kafka_errors.KafkaError as exc:
                self.link.failed(error_reason(exc))
                return False
        return all(self._consumer.position(tp) >= end for tp, end in ends.items())

    def lag_by_partition(self) -> dict[Partition, int]:
        """Records behind the end of each assigned partition: end offset minus position.

        The end offsets are the ones the broker sent with its last fetch
        responses, so asking costs no request (a partition not fetched from
        yet is left out).
        """
        if self._consumer is None:
            return {}
        lags = {}
        for tp in self._consumer.assignment():
            end = self._consumer.highwater(tp)
            position = self._next.get((tp.topic, tp.partition))
            if end is not None and position is not None:
                lags[(tp.topic, tp.partition)] = max(int(end) - position, 0)
        return lags

    def lag(self) -> int | None:
        """Records behind the end of the assigned partitions, in all; None before any fetch."""
        lags = self.lag_by_partition()
        return sum(lags.values()) if lags else None

    @property
    def exhausted(self) -> bool:
        """True only with ``until=end``, once the assigned partitions were read to their end."""
        return self._caught_up


def with_fields(payload: bytes, fields: bytes) -> bytes:
    """``payload``, a JSON object, with ``fields`` (``"name":value`` pairs) added last.

    Added last, they win over fields of the same name (the decoder keeps the
    last). A payload that is not an object is left as it is, for the decoder
    to report.

    >>> with_fields(b'{"x": 1} ', b'"host":"a"'), with_fields(b"{}", b'"host":"a"')
    (b'{"x": 1,"host":"a"}', b'{"host":"a"}')
    >>> with_fields(b"[1]", b'"host":"a"')
    b'[1]'
    """
    body = payload.rstrip()
    if not body.endswith(b"}"):
        return payload
    inner = body[:-1].rstrip()
    return inner + (b"" if inner.endswith(b"{") else b",") + fields + b"}"
