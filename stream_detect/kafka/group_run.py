"""A Kafka run opened from its settings: the source, sinks, labels and sidecar a group member needs.

:func:`run_partitioned` is to a ``kafka://`` source what
:func:`~stream_detect.assembly.run_stream` is to the others: it opens what
the settings name, wires them to a :class:`~stream_detect.kafka.partitioned.PartitionedRun`
(a pipeline per assigned partition) and closes them whatever happens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from stream_detect.errors import ConfigError
from stream_detect.kafka.address import message_fields
from stream_detect.kafka.labels_reader import LabelsReader, labels_address
from stream_detect.kafka.observed import PartitionedSidecar
from stream_detect.kafka.partitioned import PartitionedRun
from stream_detect.kafka.source import KafkaSource
from stream_detect.pipeline import Summary
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sidecar import Sidecar
from stream_detect.sinks import open_sink
from stream_detect.sinks.base import Sink
from stream_detect.sources import open_source

__all__ = ["run_partitioned"]


def run_partitioned(
    run: RunSettings,
    detector: DetectorSettings,
    *,
    sink: Sink | None = None,
    dead_letter: Sink | None = None,
    stop: threading.Event | None = None,
    sidecar: Sidecar | None = None,
    on_warning: Callable[[str], None] | None = None,
    on_features: Callable[[str], None] | None = None,
) -> Summary:
    """Open what ``run`` names (the source a ``kafka://`` URI) and run it partition by partition.

    ``sidecar`` serves the run's metrics and applies its reloads (one is made
    from the settings when none is given); it is closed at the end.
    """
    table = run.kafka
    source = open_source(run.source, client_table=table)
    if not isinstance(source, KafkaSource):
        raise ConfigError("source", run.source, "a kafka:// URI")
    detector = message_fields(detector, source.address)
    if source.address.key_from_message:
        source.key_field = detector.key_field
    if source.address.timestamp_from_message:
        source.timestamp_field = detector.timestamp_field
    opened: list[Any] = [source]
    try:
        sink = sink or open_sink(run.sink, client_table=table)
        opened.append(sink)
        dead_letter = dead_letter or open_sink(
            run.dead_letter, config_key="dead_letter", client_table=table
        )
        opened.append(dead_letter)
        labels = None
        if run.labels is not None:
            labels = open_source(run.labels, config_key="labels", client_table=table)
            if isinstance(labels, KafkaSource):
                # Feedback may name an event of any partition: every member reads it all.
                address = labels_address(labels.address, source.address)
                labels = LabelsReader(address, table, link=labels.link)
            opened.append(labels)
        sidecar = sidecar or Sidecar(run, detector)
        opened.append(sidecar)
        observer = PartitionedSidecar(sidecar)
        runner = PartitionedRun(
            run,
            detector,
            source=source,
            sink=sink,
            dead_letter=dead_letter,
            labels=labels,
            observer=observer,
            on_warning=on_warning,
            on_features=on_features,
        )
        observer.attach(runner)
    except BaseException:
        for resource in reversed(opened):
            resource.close()
        raise
    try:
        return runner.run(stop)
    finally:
        sidecar.close()
