"""One batch of a pipeline's loop: decode it, detect, write the results and the dead letters.

:func:`handle_batch` is steps 2 to 4 of a turn of :mod:`stream_detect.pipeline`:
the batch is decoded, its bad records set aside with their position and
reason; the first good events fix the features and the detector is built for
them; the good events are transformed, scored and learned, and feedback labels
held for them apply; the summary and the stream's watches
(:mod:`stream_detect.stream_watches`) see the batch; then the results go to
the sink and the bad records to the dead letters, each flushed. Reading the
batch, committing its position, the timers and stopping are the loop's
(:class:`~stream_detect.pipeline.Pipeline`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from stream_detect.records import BadRecord, Decoded
from stream_detect.results import ResultBatch
from stream_detect.series import build_detector
from stream_detect.sources.base import RawBatch
from stream_detect.unusable import dead_letters_after

if TYPE_CHECKING:
    from stream_detect.detector import Detections
    from stream_detect.pipeline import Pipeline

__all__ = ["handle_batch"]


def handle_batch(run: Pipeline, batch: RawBatch) -> tuple[Decoded, Detections] | None:
    """Decode, detect and write one batch of ``run``; return the events scored and their results.

    None when no event of the batch could be scored (all blank, bad or a
    header). Results are written and flushed, and so are the dead letters,
    before it returns; the batch's position is left for the loop to commit.

    >>> from stream_detect.pipeline import Pipeline
    >>> from stream_detect.settings import DetectorSettings, RunSettings
    >>> from stream_detect.testing import ListSink, ListSource
    >>> dead = ListSink()
    >>> run = Pipeline(RunSettings(), DetectorSettings(), source=ListSource([]),
    ...                sink=ListSink(), dead_letter=dead)
    >>> batch = RawBatch([b'{"x": 1}', b'{"x": "high"}'], [{"line": 1}, {"line": 2}])
    >>> decoded, detections = handle_batch(run, batch)
    >>> len(decoded), run.summary.features, run.summary.bad_records
    (1, ['x'], 1)
    >>> dead.flushed_records[0]["position"]
    {'line': 2}
    """
    found = None
    decoded = run.decoder.decode(batch)
    run.summary.blank_lines += decoded.n_blank
    run.summary.header_lines += decoded.n_header
    bad = list(decoded.bad)
    unmatched: list[BadRecord] = []
    results: ResultBatch | None = None
    scored = 0
    if len(decoded):
        if run.detector is None:
            run.detector = build_detector(
                run.detector_settings,
                run.decoder.features or [],
                clock=run.clock,
                initial_model=run.initial_model,
            )
            run.features_known(run.decoder.features or [])
        values, reasons = run.detector.transform(decoded.values, decoded.timestamps)
        if reasons.count(None) != len(reasons):
            from stream_detect.refused_rows import set_aside_refused

            decoded, values = set_aside_refused(batch, decoded, values, reasons, bad)
        evicted = run.detector.evicted, run.detector.evicted_in_warmup
        detections = run.detector.process(
            values,
            decoded.labels,
            decoded.keys,
            decoded.ids,
            decoded.timestamps,
            every_score=run.run_settings.emit == "all"
            or (run.observer is not None and run.observer.reads_scores),
        )
        if decoded.ids is not None and len(run.held_feedback):
            # Labels read before these events arrived apply now that they have.
            unmatched = run.feedback.apply_held(decoded.ids)
        results = ResultBatch.of(decoded, detections, emit=run.run_settings.emit)
        found = decoded, detections
        scored = len(decoded)
        run.watches.observe_events(decoded.values, decoded.timestamps)
        run.summary.events += scored
        run.summary.alerts += int(np.count_nonzero(detections.alert))
        _observe_evictions(run, *evicted)
    trailing = 0
    if bad:
        # The batch's own records (not feedback labels): their source may say more.
        bad = run.source.told_bad(bad)
        if scored:
            trailing = dead_letters_after(
                decoded.positions[-1], [record.position for record in bad]
            )
    # Labels whose event never came are feedback (``unmatched_feedback``), not records of
    # the stream: neither in ``bad_records`` nor among the reasons the stream is unusable.
    run.summary.bad_records += len(bad)
    unusable = run.watches.unusable
    unusable.observe(scored, [record.reason for record in bad], trailing)
    run.summary.bad_reason = unusable.most_common_reason
    dead = [record.to_dict() for record in bad + unmatched]
    if results:
        run.sink.write_batch(results)
    run.sink.flush()
    if dead:
        run.dead_letter.write_batch(dead)
        run.dead_letter.flush()
    if run.on_progress is not None:
        run.on_progress(len(batch))
    return found


def _observe_evictions(run: Pipeline, evicted: int, evicted_in_warmup: int) -> None:
    """Count the batch's evictions (counts before it given) and show them to the watch."""
    detector = run.detector
    if detector is None or not detector.keyed:
        return
    run.summary.evicted_models += detector.evicted - evicted
    run.summary.evicted_in_warmup += detector.evicted_in_warmup - evicted_in_warmup
    run.watches.observe_evictions(detector, run.detector_settings.key_field or "")
