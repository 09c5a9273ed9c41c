"""Kafka topics as sources and sinks, with detector state kept per partition.

* :mod:`~stream_detect.kafka.address`: ``kafka://`` URIs and the ``[kafka]`` client options;
* :mod:`~stream_detect.kafka.source`: a consumer group member that commits only what was delivered;
* :mod:`~stream_detect.kafka.group_member`: the group membership, offsets and commits it builds on;
* :mod:`~stream_detect.kafka.sink`: a producer whose flush means acknowledged;
* :mod:`~stream_detect.kafka.partitioned`: one detector per partition, checkpointed per partition;
* :mod:`~stream_detect.kafka.partition_pipelines`: those pipelines, made and let go on rebalances;
* :mod:`~stream_detect.kafka.group_run`: a run opened from its settings as a group member;
* :mod:`~stream_detect.kafka.broker`: an embedded broker for the demo and the tests;
* :mod:`~stream_detect.kafka.status`: broker reachability, reported once per change.
"""

from stream_detect.kafka.address import KafkaAddress, parse_kafka_uri
from stream_detect.kafka.group_run import run_partitioned
from stream_detect.kafka.partitioned import PartitionedRun
from stream_detect.kafka.sink import KafkaSink
from stream_detect.kafka.source import KafkaSource

__all__ = [
    "KafkaAddress",
    "KafkaSink",
    "KafkaSource",
    "PartitionedRun",
    "parse_kafka_uri",
    "run_partitioned",
]
