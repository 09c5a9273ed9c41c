"""Applying re-read settings to a running pipeline (SIGHUP).

Only what can change without breaking a guarantee takes effect:

* thresholds: ``log_epsilon`` (set again as the threshold in force, until
  labels re-tune it; it must stay given, or stay unset, since that chooses
  the score), ``log_tail_epsilon``, ``retune_labels``,
  ``retune_seconds``, ``min_positive_labels``, ``min_negative_labels``,
  ``top_contributions``;
* output: ``sink`` (the old sink is flushed and closed, the new one opened
  and, like the first, given up on a stop request while its reader stalls),
  ``emit``;
* checkpoint timing: ``checkpoint_every``, ``checkpoint_seconds``;
* metrics options: ``metrics_top_keys``.

Anything else (features, model, key field, transforms, the source, the
checkpoint file, the HTTP address...) would change what the learned state
means or where it comes from; :func:`apply_reload` keeps it as it was and
returns its name, so the caller can say so in one line.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any, Protocol

from stream_detect.distinct_files import refuse_output_over_input, run_files
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sinks import open_sink
from stream_detect.sinks.base import Sink

if TYPE_CHECKING:
    from stream_detect.detector import Detector

__all__ = ["RELOADABLE", "Reloadable", "apply_reload", "changed_fields", "describe_changes"]


class Reloadable(Protocol):
    """What a reload changes: a pipeline, or a Kafka run that makes one per partition."""

    run_settings: RunSettings
    detector_settings: DetectorSettings
    sink: Sink
    #: The running loop's stop request (None before it runs); a new sink watches it.
    stop: threading.Event | None

    @property
    def detector(self) -> Detector | None:
        """The detector to reconfigure (None: none yet, or one per partition)."""


#: Settings a reload may change, by name.
RELOADABLE = frozenset(
    {
        "log_epsilon",
        "log_tail_epsilon",
        "retune_labels",
        "retune_seconds",
        "min_positive_labels",
        "min_negative_labels",
        "top_contributions",
        "sink",
        "emit",
        "checkpoint_every",
        "checkpoint_seconds",
        "metrics_top_keys",
    }
)


def changed_fields(old: Any, new: Any) -> dict[str, Any]:
    """The fields whose value differs from ``old`` to ``new``, with their new values.

    >>> changed_fields(DetectorSettings(), DetectorSettings(log_epsilon=-9.0, min_samples=3))
    {'min_samples': 3, 'log_epsilon': -9.0}
    """
    return {
        field.name: getattr(new, field.name)
        for field in dataclasses.fields(old)
        if getattr(old, field.name) != getattr(new, field.name)
    }


def describe_changes(before: tuple[Any, Any], after: tuple[Any, Any]) -> str | None:
    """What a reload changed, ``before`` to ``after`` (each a run and a detector settings):
    one line's worth, each setting with its old and new value; None if nothing changed.

    Said on stderr, so that settings a reload took from a file caught half-written
    (results sent back to stdout, ``emit`` back to alerts only) do not pass unseen.

    >>> describe_changes((RunSettings(emit="all"), DetectorSettings()),
    ...                  (RunSettings(), DetectorSettings(log_tail_epsilon=-20.0)))
    "emit 'all' -> 'alerts', log_tail_epsilon -13.815510557964274 -> -20.0"
    >>> describe_changes((RunSettings(), DetectorSettings()), (RunSettings(), DetectorSettings()))
    """
    said = [
        f"{name} {getattr(old, name)!r} -> {value!r}"
        for old, new in zip(before, after, strict=True)
        for name, value in changed_fields(old, new).items()
    ]
    return ", ".join(said) or None


def apply_reload(pipeline: Reloadable, run: RunSettings, detector: DetectorSettings) -> list[str]:
    """Apply what may change of ``run`` and ``detector``; return the names refused.

    Call between loop turns (the sidecar does). A new sink that cannot be
    opened, or that names a file the run reads (its source, labels, initial
    model or checkpoint: results appended to the source would be read back
    forever), raises :class:`~stream_detect.errors.ConfigError` before
    anything changed.
    """
    run_changes = changed_fields(pipeline.run_settings, run)
    detector_changes = changed_fields(pipeline.detector_settings, detector)
    refused = sorted(name for name in (*run_changes, *detector_changes) if name not in RELOADABLE)
    if "log_epsilon" in detector_changes and (
        (pipeline.detector_settings.log_epsilon is None) != (detector.log_epsilon is None)
    ):
        # Given or unset, log_epsilon chooses the score alerts compare: only a restart changes it.
        del detector_changes["log_epsilon"]
        refused = sorted([*refused, "log_epsilon"])
    run_changes = {k: v for k, v in run_changes.items() if k in RELOADABLE}
    detector_changes = {k: v for k, v in detector_changes.items() if k in RELOADABLE}
    if "sink" in run_changes:
        # One file, one role, as at the start: checked before the new sink touches the file.
        refuse_output_over_input(
            *run_files(dataclasses.replace(pipeline.run_settings, sink=run_changes["sink"]))
        )
        new_sink = open_sink(run_changes["sink"], client_table=run.kafka)
        # Waiting on its destination, it gives up once the run stops, as the first did.
        new_sink.interrupt_on(pipeline.stop)
        old_sink = pipeline.sink
        pipeline.sink = new_sink
        old_sink.close()
    pipeline.run_settings = dataclasses.replace(pipeline.run_settings, **run_changes)
    pipeline.detector_settings = dataclasses.replace(pipeline.detector_settings, **detector_changes)
    model = pipeline.detector
    if model is not None and detector_changes:
        model.reconfigure(dataclasses.replace(model.settings, **detector_changes))
    return refused
