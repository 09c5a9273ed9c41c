"""A run assembled from settings: open what they name, resume, observe, run to the end.

:func:`run_stream` is what ``stream-detect run`` (and ``demo``, ``replay``)
calls: it opens the source, sinks and labels the settings name (unless the
caller passes them), builds a :class:`~stream_detect.pipeline.Pipeline`,
resumes it from any checkpoint, attaches the sidecar (metrics, health,
reloads) and runs it. A Kafka source is handed to
:func:`~stream_detect.kafka.group_run.run_partitioned` instead, which keeps
a pipeline per partition.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from stream_detect.distinct_files import refuse_output_over_input, run_files
from stream_detect.label_feedback import open_labels
from stream_detect.pipeline import Pipeline
from stream_detect.pipeline_checkpoint import make_checkpoint_folder
from stream_detect.settings import DetectorSettings, RunSettings, check_run_with_detector
from stream_detect.sidecar import Sidecar
from stream_detect.sinks import open_sink
from stream_detect.sinks.base import Sink
from stream_detect.sources import open_source
from stream_detect.sources.base import Source
from stream_detect.stream_watches import warn_on_stderr
from stream_detect.summary import Summary

if TYPE_CHECKING:
    from stream_detect.checkpoint_lock import CheckpointLock

__all__ = ["run_stream"]


class _Closable(Protocol):
    def close(self) -> None: ...


def run_stream(
    run_settings: RunSettings,
    detector_settings: DetectorSettings,
    *,
    source: Source | None = None,
    sink: Sink | None = None,
    dead_letter: Sink | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    on_features: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    sidecar: Sidecar | None = None,
) -> Summary:
    """Open what the settings name (unless given), resume from any checkpoint, run to the end.

    ``on_features`` gets one JSON line naming the features once they are known
    (with a note on any field left out of inferred features). A file the
    settings name as an output and as an input (``--sink file:X --source
    file:X``) is refused before anything is opened
    (:func:`~stream_detect.distinct_files.refuse_output_over_input`). Everything is
    closed at the end, what was passed in included. If setting
    up fails (a bad checkpoint, say), what this function opened is closed again.
    ``sidecar`` observes the loop (metrics, health, reloads); one is made from
    the settings when none is given.

    >>> from stream_detect.testing import ListSource, ListSink
    >>> events = [{"x": float(i % 7)} for i in range(300)] + [{"x": 40.0}]
    >>> sink = ListSink()
    >>> summary = run_stream(RunSettings(), DetectorSettings(log_epsilon=-10.0),
    ...                      source=ListSource(events), sink=sink, dead_letter=ListSink())
    >>> summary.events, [r["x"] for r in sink.records]
    (301, [40.0])
    """
    for given_settings, kind in (
        (run_settings, RunSettings),
        (detector_settings, DetectorSettings),
    ):
        if not isinstance(given_settings, kind):
            # Swapped, or a dict: caught here rather than as a missing attribute later.
            raise TypeError(
                f"run_stream takes a RunSettings then a DetectorSettings, got "
                f"{type(run_settings).__name__} and {type(detector_settings).__name__}"
            )
    run = run_settings
    outputs, inputs = run_files(run)
    # Only what this function opens from the settings; objects passed in are the caller's.
    given = {"source": source, "sink": sink, "dead_letter": dead_letter}
    refuse_output_over_input(
        {key: named for key, named in outputs.items() if given.get(key) is None},
        {key: named for key, named in inputs.items() if given.get(key) is None},
    )
    if source is None and run.source.lower().startswith("kafka:"):
        # State per partition: a pipeline per partition the group assigns.
        from stream_detect.kafka.group_run import run_partitioned

        return run_partitioned(
            run,
            detector_settings,
            sink=sink,
            dead_letter=dead_letter,
            stop=stop,
            sidecar=sidecar,
            on_warning=on_warning,
            on_features=on_features,
        )
    if run.state_dir is not None and run.checkpoint is None:
        # A Kafka config replayed on a file keeps its state_dir: said, not refused, so the
        # run goes on, but a run meant to resume must not start afresh in silence.
        (on_warning or warn_on_stderr)(
            f"state_dir {run.state_dir!r} is only used with a kafka:// source: this run "
            "keeps no state (a single stream resumes from --checkpoint)"
        )
    table = run.kafka
    lock: CheckpointLock | None = None
    with contextlib.ExitStack() as opened:

        def own(resource: _Closable) -> Any:
            opened.callback(resource.close)
            return resource

        if run.checkpoint is not None:
            # Before anything is opened or read: a refused run leaves no trace. The rules
            # between the settings come first, so a run they refuse makes no folder or lock.
            check_run_with_detector(run, detector_settings)
            make_checkpoint_folder(run)
            # Imported here: a run without a checkpoint takes no lock.
            from stream_detect.checkpoint_lock import hold_checkpoint

            lock = own(hold_checkpoint(run.checkpoint))
        pipeline = Pipeline(
            run,
            detector_settings,
            source=source
            or own(open_source(run.source, max_line_bytes=run.max_line_bytes, client_table=table)),
            sink=sink or own(open_sink(run.sink, client_table=table)),
            dead_letter=dead_letter
            or own(open_sink(run.dead_letter, config_key="dead_letter", client_table=table)),
            labels=None
            if run.labels is None
            else own(open_labels(run.labels, run.max_line_bytes, table)),
            on_progress=on_progress,
            on_warning=on_warning,
            on_features=on_features,
        )
        pipeline.restore()
        sidecar = own(sidecar or Sidecar(run, detector_settings))
        sidecar.attach(pipeline)
        # From here on, Pipeline.run closes everything, however it ends.
        opened.pop_all()
    try:
        return pipeline.run(stop)
    finally:
        sidecar.close()
        if lock is not None:
            lock.close()
