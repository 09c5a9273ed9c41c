"""A Kafka consumer group member: joining, rebalances, where each partition is read from, commits.

:class:`GroupMember` is the part of :class:`~stream_detect.kafka.source.KafkaSource`
that deals with the group and the offsets rather than with the records read:

* it builds the consumer (auto-commit off) and joins the group, or, for a
  subclass such as :class:`~stream_detect.kafka.labels_reader.LabelsReader`,
  takes the partitions its :meth:`GroupMember._start_reading` picks; a broker
  that cannot be reached is reported once per change (:class:`BrokerLink`);
* rebalances are Kafka's: :attr:`GroupMember.on_assigned` and
  :attr:`GroupMember.on_revoked` are called with the ``(topic, partition)``
  pairs concerned, and a partition assigned is read from the offset a
  :meth:`GroupMember.seek` (a checkpoint restore) left for it;
* :meth:`GroupMember.resume_token` lists the next offset of every partition
  read so far, and :meth:`GroupMember.commit` commits a token's offsets for the
  partitions this member still owns, retried with a growing pause while the
  broker is away (given up once :attr:`GroupMember.abandon` is set).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import kafka
from kafka import errors as kafka_errors

from stream_detect.errors import InputError
from stream_detect.kafka.address import KafkaAddress, client_options
from stream_detect.kafka.positions import Partition, position_token, token_offsets
from stream_detect.kafka.status import BrokerLink, error_reason
from stream_detect.sources.base import Source

_Answer = TypeVar("_Answer")

__all__ = ["GroupMember"]

#: How long one commit waits for the broker before it counts as a failed attempt.
_COMMIT_ATTEMPT_MS = 5000
#: How long closing may wait to leave the group politely (a stop must stay prompt).
_CLOSE_MS = 1000


class GroupMember(Source):
    """A member of the address's consumer group: its partitions, their offsets, its commits.

    What it reads, and how, is the subclass's :meth:`read_batch`; the
    partitions it reads from and the offsets it commits are kept here.

    Parameters
    ----------
    address
        Brokers, topics, group (see :mod:`stream_detect.kafka.address`).
    table
        The ``[kafka]`` config table (client options), or None.
    link
        Reports broker reachability; one is made for the URI when None.
    """

    resumable = True

    def __init__(
        self,
        address: KafkaAddress,
        table: Mapping[str, Any] | None = None,
        *,
        link: BrokerLink | None = None,
    ) -> None:
        self.uri = address.uri
        self.address = address
        self.options = client_options(address, table, role="consumer")
        self.link = link or BrokerLink(address.uri)
        self.on_assigned: Callable[[list[Partition]], None] | None = None
        self.on_revoked: Callable[[list[Partition]], None] | None = None
        self._consumer: Any = None
        #: The next offset of each partition read from (or placed at) since it was assigned.
        self._next: dict[Partition, int] = {}
        self._seeks: dict[Partition, int] = {}
        self._closed = False
        #: When set (a stop request), a commit still retrying an unreachable broker gives up.
        self.abandon = threading.Event()

    # --------------------------------------------------------------- connecting

    def _connect(self) -> bool:
        """Build the consumer and join the group; False (reported) if no broker answers."""
        if self._consumer is not None:
            return True
        try:
            consumer = kafka.KafkaConsumer(
                bootstrap_servers=self.address.bootstrap,
                group_id=self.address.group,
                enable_auto_commit=False,
                auto_offset_reset=self.address.start,
                **self.options,
            )
        except kafka_errors.KafkaError as exc:
            self.link.failed(error_reason(exc))
            return False
        if not self._start_reading(consumer):
            consumer.close(autocommit=False, timeout_ms=_CLOSE_MS)
            return False
        self._consumer = consumer
        self.link.ok()
        return True

    def _start_reading(self, consumer: kafka.KafkaConsumer) -> bool:
        """Take the group's share of the topics; False (reported) if they cannot be read yet."""
        consumer.subscribe(self.address.topics, listener=_Listener(self))
        return True

    def _assigned(self, partitions: list[Partition]) -> None:
        for partition in partitions:
            self._next.pop(partition, None)
        if self.on_assigned is not None:
            self.on_assigned(partitions)
        for partition in partitions:
            if partition in self._seeks:
                self._place(self._consumer, partition, self._seeks.pop(partition))

    def _place(self, consumer: kafka.KafkaConsumer, partition: Partition, offset: int) -> None:
        """Read ``partition`` from ``offset`` next."""
        consumer.seek(kafka.TopicPartition(*partition), offset)
        self._next[partition] = offset

    def _revoked(self, partitions: list[Partition]) -> None:
        if self.on_revoked is not None:
            self.on_revoked(partitions)
        for partition in partitions:
            self._next.pop(partition, None)

    @property
    def connected(self) -> bool:
        """True while the consumer is built and the broker answered its last request."""
        return self._consumer is not None and self.link.reachable

    # ---------------------------------------------------------------- positions

    def resume_token(self) -> dict[str, Any]:
        """The next offset of every partition read so far.

        >>> from stream_detect.kafka.address import parse_kafka_uri
        >>> from stream_detect.kafka.source import KafkaSource
        >>> from stream_detect.sources import parse_uri
        >>> source = KafkaSource(parse_kafka_uri(parse_uri("kafka://127.0.0.1:9/t")))
        >>> source.seek({"offsets": [{"topic": "t", "partition": 0, "offset": 7}]})
        >>> source.resume_token()
        {'offsets': [{'topic': 't', 'partition': 0, 'offset': 7}]}
        """
        return position_token({**self._seeks, **self._next})

    def seek(self, token: dict[str, Any]) -> None:
        """Continue each partition of ``token`` at its offset once the group assigns it."""
        self._seeks.update(self._offsets(token))

    def _offsets(self, token: dict[str, Any]) -> dict[Partition, int]:
        """The offsets ``token`` holds; InputError naming the source if it is no Kafka position."""
        try:
            return token_offsets(token)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"source {self.uri!r}: not a Kafka position: {token!r}") from exc

    def commit(self, token: dict[str, Any]) -> None:
        """Commit the offsets of ``token`` for the partitions this member still owns.

        Retries while the broker is unreachable; a partition the group has
        meanwhile given to another member is skipped (its new owner resumes
        from its checkpoint or the last commit, so nothing is lost).
        """
        if self._consumer is None:
            return
        owned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        offsets = {
            kafka.TopicPartition(e["topic"], e["partition"]): kafka.OffsetAndMetadata(
                e["offset"], "", -1
            )
            for e in token.get("offsets", [])
            if (e["topic"], e["partition"]) in owned
        }
        if offsets:
            self.commit_offsets(offsets)

    def committed(self, partition: Partition) -> int | None:
        """The group's committed offset of ``partition`` (None: never committed).

        One request to the broker; retried with backoff while it is away, as a
        commit is. Not to be called from a rebalance callback (the client is
        inside its own poll then).
        """
        consumer = self._consumer
        if consumer is None:
            return None
        offset = self._until_answered(
            lambda: consumer.committed(
                kafka.TopicPartition(*partition), timeout_ms=_COMMIT_ATTEMPT_MS
            ),
            f"the committed offset of {partition[0]}/{partition[1]} was refused",
        )
        return None if offset is None or offset < 0 else int(offset)

    def commit_offsets(self, offsets: dict[Any, Any]) -> None:
        """Commit kafka-python ``offsets``, retrying with backoff while the broker is away."""
        consumer = self._consumer

        def commit() -> None:
            # A commit failed as the group moved on (a rebalance) is left to the next owner.
            with contextlib.suppress(kafka_errors.CommitFailedError):
                consumer.commit(offsets, timeout_ms=_COMMIT_ATTEMPT_MS)

        self._until_answered(commit, "commit refused")

    def _until_answered(self, ask: Callable[[], _Answer], refused: str) -> _Answer:
        """``ask()``'s answer, asked again with backoff while the broker is away.

        A refusal that asking again cannot change raises InputError saying
        ``refused``; so does the broker being away once the run is stopping.
        """
        while True:
            try:
                answer = ask()
            except kafka_errors.KafkaError as exc:
                if not getattr(exc, "retriable", False) and not isinstance(
                    exc, kafka_errors.KafkaTimeoutError
                ):
                    raise InputError(f"source {self.uri!r}: {refused}: {exc}") from exc
                self.link.failed(error_reason(exc))
                if self.abandon.is_set():
                    raise InputError(
                        f"source {self.uri!r}: the broker is unreachable and the run is stopping"
                    ) from exc
                time.sleep(self.link.pause_s)
                continue
            self.link.ok()
            return answer

    def close(self) -> None:
        """Leave the group (without committing anything more) and close the connections."""
        if self._closed:
            return
        self._closed = True
        if self._consumer is not None:
            self._consumer.close(autocommit=False, timeout_ms=_CLOSE_MS)


class _Listener(kafka.ConsumerRebalanceListener):  # type: ignore[misc]
    """kafka-python's rebalance callbacks, forwarded as plain (topic, partition) pairs."""

    def __init__(self, source: GroupMember) -> None:
        self.source = source

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.source._revoked(sorted((tp.topic, tp.partition) for tp in revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.source._assigned(sorted((tp.topic, tp.partition) for tp in assigned))
