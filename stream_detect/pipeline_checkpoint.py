"""A pipeline's checkpoint: where it goes, when it is due, what it holds, resuming from it.

:class:`PipelineCheckpoints` writes the detector state of a
:class:`~stream_detect.pipeline.Pipeline` together with the positions it
reflects (the source's, the labels source's), the CSV header of the input and
the feedback labels held for events not seen yet, into a
:class:`~stream_detect.state.Checkpoint`; it says when the next one is due
(``checkpoint_every`` events or ``checkpoint_seconds`` since the last); and it
resumes a pipeline from one, refusing a checkpoint written for other features
or holding values a detector could not use. The pipeline decides *when in its
loop* a checkpoint may be written (only after the results it reflects are
delivered); this module only knows how.

>>> import pathlib, tempfile
>>> from stream_detect.pipeline import Pipeline
>>> from stream_detect.settings import DetectorSettings, RunSettings
>>> from stream_detect.testing import ListSink, ListSource
>>> path = str(pathlib.Path(tempfile.mkdtemp()) / "state.json")
>>> def pipeline(events):
...     return Pipeline(RunSettings(checkpoint=path), DetectorSettings(),
...                     source=ListSource(events), sink=ListSink(), dead_letter=ListSink())
>>> first = pipeline([{"x": float(i % 5)} for i in range(50)])
>>> first.restore()  # nothing saved yet
False
>>> first.run().checkpoints
1
>>> second = pipeline([{"x": float(i % 5)} for i in range(60)])
>>> second.restore(), second.summary.resumed_from["line"]
(True, 51)
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from stream_detect.errors import ConfigError, ModelError
from stream_detect.series import build_detector

if TYPE_CHECKING:
    from stream_detect.detector import Detector
    from stream_detect.fitted_model import FittedModel
    from stream_detect.label_feedback import FeedbackLabels
    from stream_detect.recent import HeldFeedback
    from stream_detect.records import RecordDecoder
    from stream_detect.settings import DetectorSettings, RunSettings
    from stream_detect.sources.base import Source
    from stream_detect.summary import Summary

__all__ = [
    "CheckpointedRun",
    "PipelineCheckpoints",
    "make_checkpoint_folder",
    "make_state_folder",
]


class CheckpointedRun(Protocol):
    """What checkpoints need of the pipeline they belong to, read at each call.

    Read at each call because a reload replaces the settings, and a
    partitioned run replaces the held feedback, after the pipeline is made.
    """

    run_settings: RunSettings
    detector_settings: DetectorSettings
    initial_model: FittedModel | None
    source: Source
    labels: Source | None
    decoder: RecordDecoder
    detector: Detector | None
    summary: Summary
    held_feedback: HeldFeedback
    feedback: FeedbackLabels
    clock: Callable[[], float]

    def decoder_for(self, features: list[str] | None) -> RecordDecoder:
        """A record decoder for ``features`` (None: inferred from the first records)."""

    def features_known(self, features: list[str]) -> None:
        """Put the features in the summary and announce them."""


def make_checkpoint_folder(run: RunSettings) -> None:
    """Make the checkpoint file's directory, so a bad path is refused before the run starts.

    Raises
    ------
    ConfigError
        The directory cannot be made or written to; the message names the reason.
    """
    if run.checkpoint is not None:
        folder = Path(run.checkpoint).parent
        _make_writable_folder(folder, "checkpoint", run.checkpoint, "a file in a directory")


def make_state_folder(run: RunSettings) -> None:
    """Make the directory of a Kafka run's partition checkpoints, as for a checkpoint file.

    A missing directory is made (with its parents); one that cannot be made
    or written to is refused before the run starts, as is a path that exists
    and is not a directory.

    >>> import pathlib, tempfile
    >>> from stream_detect.settings import RunSettings
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "state" / "events"
    >>> make_state_folder(RunSettings(state_dir=str(folder)))
    >>> folder.is_dir()
    True
    >>> try:
    ...     make_state_folder(RunSettings(state_dir="/dev/null"))
    ... except ConfigError as refused:
    ...     print(refused.expected)
    a directory (it exists and is not one)

    Raises
    ------
    ConfigError
        The path is not a directory, or the directory cannot be made or written to.
    """
    if run.state_dir is None:
        return
    folder = Path(run.state_dir)
    if folder.exists() and not folder.is_dir():
        raise ConfigError("state_dir", run.state_dir, "a directory (it exists and is not one)")
    _make_writable_folder(folder, "state_dir", run.state_dir, "a directory")


def _make_writable_folder(folder: Path, key: str, value: str, expected: str) -> None:
    """Make ``folder`` (and its parents) and check a file can be made in it, or ConfigError.

    ``expected`` says what ``key`` names (its ``value``): the error reads
    "expected EXPECTED that exists or can be made (FOLDER: reason)".
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            key, value, f"{expected} that exists or can be made ({folder}: {exc.strerror})"
        ) from exc
    from stream_detect.atomic import check_writable_folder  # only a run that keeps state

    try:
        check_writable_folder(folder)
    except OSError as exc:
        raise ConfigError(
            key, value, f"{expected} this process can write to ({folder}: {exc.strerror})"
        ) from exc


class PipelineCheckpoints:
    """The checkpoints of ``run``; see the module docstring.

    Each checkpoint written counts in ``run.summary.checkpoints``.
    """

    def __init__(self, run: CheckpointedRun) -> None:
        self.run = run
        self._events_at_checkpoint = 0
        self._checkpoint_clock = run.clock()
        self._source_rotations = 0
        self._labels_rotations = 0
        #: The labels position of a run that reads no labels itself: kept as restored,
        #: or set by the run that reads them for it (a Kafka partition's, whose labels
        #: the partitioned run reads), and written with the state.
        self.labels_position: dict[str, Any] | None = None

    def restore(self) -> bool:
        """Resume ``run`` from its checkpoint file, if one is configured and exists.

        What resuming means for each kind of source is in
        :meth:`~stream_detect.pipeline.Pipeline.restore`.
        """
        run = self.run
        path = run.run_settings.checkpoint
        checkpoint = None
        if path is not None:
            # Imported here: a run without a checkpoint never reads or writes state.
            from stream_detect.state import load_checkpoint

            checkpoint = load_checkpoint(path)
        if checkpoint is None:
            if run.initial_model is not None:
                run.summary.resumed_from = {"initial_model": run.run_settings.initial_model}
            return False
        from stream_detect.checkpoint_rules import check_detector_state
        from stream_detect.series_state_rules import check_series_state

        features = checkpoint.detector.get("features")
        if not isinstance(features, list) or not features:
            raise ModelError(f"checkpoint {path}: it names no features")
        wanted = run.detector_settings.features
        if wanted is not None and list(wanted) != features:
            raise ModelError(
                f"checkpoint {path}: written for features {features}, this run asks for "
                f"{list(wanted)}; use a new checkpoint file or the same features"
            )
        try:
            check_detector_state(checkpoint.detector)
            check_series_state(checkpoint.detector)
        except ModelError as exc:
            raise ModelError(f"checkpoint {path}: {exc}") from exc
        try:
            run.decoder = run.decoder_for(features)
        except ConfigError as exc:
            # The features are the checkpoint's, the field they clash with this run's.
            raise ModelError(
                f"checkpoint {path}: features is {features!r}, expected {exc.expected}; "
                "use a new checkpoint file or other field names"
            ) from exc
        if checkpoint.header is not None:
            run.decoder.use_csv_header(checkpoint.header)
        run.detector = build_detector(
            run.detector_settings, features, clock=run.clock, initial_model=run.initial_model
        )
        try:
            run.detector.restore(checkpoint.detector)
        except ModelError as exc:
            raise ModelError(f"checkpoint {path}: {exc}") from exc
        run.features_known(features)
        if run.source.resumable:
            rotations = run.source.rotations
            run.source.seek(checkpoint.source)
            # A followed file rotated while stopped is read from its start: only the model is kept.
            rotated = run.source.rotations != rotations
            run.summary.resumed_from = {"model_only": True} if rotated else checkpoint.source
        else:
            # A pipe cannot be rewound: keep what the model learned, read the new stream.
            run.summary.resumed_from = {"model_only": True}
        if checkpoint.labels is not None:
            if run.labels is None:
                # Labels this run does not read are still where the last one stopped: the
                # next run that reads them resumes there, rather than joining them again.
                self.labels_position = checkpoint.labels
            elif run.labels.resumable:
                run.labels.seek(checkpoint.labels)
            # Read already, so never read again: held until their events come, whatever
            # this run reads its labels from; those beyond this run's room are dead letters.
            dropped = run.held_feedback.restore(checkpoint.held_feedback)
            run.feedback.write_dead([run.feedback.unmatched(f) for f in dropped])
        return True

    def write(self) -> None:
        """Write the detector state with the positions it reflects (needs a checkpoint path)."""
        run = self.run
        path = run.run_settings.checkpoint
        if path is None or run.detector is None:
            return
        from stream_detect.state import Checkpoint, save_checkpoint

        columns = run.decoder.columns
        header = None
        if columns is not None:
            import csv  # only a CSV stream's checkpoint keeps its header

            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="").writerow(columns)
            header = buffer.getvalue()
        save_checkpoint(
            path,
            Checkpoint(
                detector=run.detector.to_dict(arrays=True),
                source={**run.source.resume_token(), **run.source.identity()},
                labels=self.labels_position
                if run.labels is None
                else {**run.labels.resume_token(), **run.labels.identity()},
                header=header,
                held_feedback=run.held_feedback.to_list(),
            ),
        )
        run.summary.checkpoints += 1
        self._events_at_checkpoint = run.summary.events
        self._checkpoint_clock = run.clock()
        self._source_rotations = run.source.rotations
        self._labels_rotations = self._labels_rotation_count()

    def _labels_rotation_count(self) -> int:
        labels = self.run.labels
        return 0 if labels is None else labels.rotations

    def due(self, now: float) -> bool:
        """True if ``checkpoint_every`` events or ``checkpoint_seconds`` passed since the last one,
        or the source or the labels moved on to a new file (a followed file rotated).

        ``now`` is the run's clock, read by the caller. After a rotation the
        last checkpoint names the old file, which a restart could not resume
        in; one written at once names the new file.
        """
        run = self.run
        if (
            run.source.rotations != self._source_rotations
            or self._labels_rotation_count() != self._labels_rotations
        ):
            return run.run_settings.checkpoint is not None
        settings = run.run_settings
        due_events = settings.checkpoint_every and (
            run.summary.events - self._events_at_checkpoint >= settings.checkpoint_every
        )
        due_time = (
            settings.checkpoint_seconds
            and now - self._checkpoint_clock >= settings.checkpoint_seconds
        )
        return bool(due_events or due_time)
