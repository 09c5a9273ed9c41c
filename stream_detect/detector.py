"""The streaming detector: transforms, then per-key models, the learning policy and ε.

:class:`Detector` takes decoded events a batch at a time and orchestrates:

1. each event is scored against the model of its key as that model stood
   just before it (prequential: the result does not depend on how events are
   batched); the models live in a bounded :class:`~stream_detect.keyed_models.KeyedModels`;
2. an alert is raised when the score is below log ε and the model is past
   warm-up, and what the event teaches its model is decided by the
   :class:`~stream_detect.learning.LearningPolicy`; the features that drove
   each alert are named by an :class:`~stream_detect.explanations.AlertExplainer`;
3. log ε is held and re-chosen by the :class:`~stream_detect.tuning.ThresholdTuner`
   (every N events, K new labels or T seconds), which the detector asks after
   every segment of a batch and after each feedback label.

Which score alerts compare is fixed when the detector is built. Without a
``log_epsilon`` it is the log tail probability of a Gaussian model (the
prior's Student-t tails combined by Fisher's method, or the χ²_d tail of the
squared Mahalanobis distance), compared with ``log_tail_epsilon``: the same
false alert rate on every stream and key, from the first event past warm-up,
and never moved by the alerts themselves. Given a ``log_epsilon``, the
classic rule holds: log p(x) with one model, the scale-free
``-0.5 (D² + d log 2π)`` with a model per key (DESIGN point 9). Labels re-tune
log ε on the same score. A model without a density (river) is thresholded on
its own score, and its ``log_p`` and ``log_tail`` are NaN.

The parts a detector is built of, and the read-only views of their counters
(:attr:`~stream_detect.detector_parts.DetectorParts.events`, ``log_epsilon``,
``summary()``...), are :class:`~stream_detect.detector_parts.DetectorParts`'s; how
a span of rows is scored against the models (and rows without learning, for a
re-tune) is :class:`~stream_detect.detector_scoring.DetectorScoring`'s.

Words used below: a batch is cut into *segments* (the rows before the next
re-tune or re-read of the acceptance time), a segment into *pieces* (so
eviction matches the event-by-event order), a piece into *groups* (one key's
rows), and a group is scored in *blocks* (see :mod:`stream_detect.learning`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.admission import MAX_ABS_VALUE, check_batch, unusable_reasons
from stream_detect.detections import Detections
from stream_detect.detector_scoring import DetectorScoring
from stream_detect.errors import ConfigError
from stream_detect.model_interface import score_rule
from stream_detect.settings import DetectorSettings

if TYPE_CHECKING:
    # Only annotations need this; the keyed bank, the saved-state and fitted-model
    # rules are imported where a keyed run, a checkpoint or an initial model needs them,
    # so that a plain run does not pay for them at start-up.
    from stream_detect.validation_buffer import LabelOutcome

__all__ = ["MAX_ABS_VALUE", "Detections", "Detector"]

Array = NDArray[np.float64]
Int8Array = NDArray[np.int8]


class Detector(DetectorScoring):
    """Scores, thresholds and learns a stream of feature vectors.

    Parameters
    ----------
    settings
        The detector's settings (model, policy, thresholds).
    features
        Names of the feature columns, in order.
    clock
        Seconds on a monotonic clock, for the time-based re-tune.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = Detector(DetectorSettings(min_samples=20, log_epsilon=-12.0), ("a", "b"))
    >>> X = rng.normal(size=(200, 2))
    >>> X[150] = [9.0, 0.0]
    >>> out = det.process(X)
    >>> np.flatnonzero(out.alert).tolist(), list(out.contributions[150])
    ([150], ['a', 'b'])
    """

    # ------------------------------------------------------------------ input

    def transform(
        self, X: Array, timestamps: Sequence[Any] | None = None
    ) -> tuple[Array, list[str | None]]:
        """Apply the feature transforms; return the rows and, per row, why it cannot be used.

        A reason is None for a usable row, else a sentence naming the first
        feature that makes it unusable (see :func:`~stream_detect.admission.unusable_reasons`).
        ``timestamps`` (the events' own, row for row) matter only to a detector
        whose features are made of them (:class:`~stream_detect.series.SeriesDetector`).
        """
        out = self.transforms.apply(X, self.features) if self.transforms else X
        return out, unusable_reasons(X, out, self.features, self.transforms)

    # ---------------------------------------------------------------- scoring

    def process(
        self,
        X: ArrayLike,
        labels: ArrayLike | None = None,
        keys: list[str] | None = None,
        ids: list[str | None] | None = None,
        timestamps: Sequence[Any] | None = None,
        *,
        every_score: bool = True,
    ) -> Detections:
        """Score, threshold and learn a batch of transformed rows, in order.

        ``X`` holds real numbers, any numeric dtype (read as float64), and
        ``labels`` 1 (anomaly), 0 (normal) or -1 (unlabelled) per row
        (None: all unlabelled); ``keys`` the model key of each row, needed
        when the detector is keyed; ``ids`` the event ids remembered for
        feedback labels (None: none); ``timestamps`` the events' times as
        written, which only time-series features read
        (:class:`~stream_detect.series.SeriesDetector`). The result for each
        row is the same whatever the batch boundaries. With ``every_score``
        False only the rows that raise an alert get their ``score`` and
        ``log_tail`` (NaN for the others, whose decisions are the same): for a
        caller that writes alerts only, it saves the exact tails of the rows
        a cheap bound clears. A batch of the wrong shape, types or values
        raises TypeError or ValueError before anything is learned
        (:func:`~stream_detect.admission.check_batch`).
        """
        values, flags = check_batch(
            X, labels, keys, ids, n_features=len(self.features), keyed=self.keyed
        )
        rows = values.shape[0]
        # Tiny features are scored in units where they have size one (feature_units.py); the
        # validation buffer and the events remembered for feedback keep the events' own.
        before = int(self.units.exponents.sum())
        scaled, changes = self.units.apply(values)
        self._jacobian_runs = [(0, before), *changes] if before or changes else None
        out = Detections.empty(rows)
        labelled = flags >= 0
        acceptance = self.tuner.acceptance
        # A restored checkpoint may carry an acceptance time read from the event rate.
        self.policy.accept_after = acceptance.accept_after
        # An alert budget learns from every row's score.
        self.policy.every_score = every_score or self.tuner.budget is not None
        start = scored = 0
        while start < rows:
            # Rows run up to the next re-tune or re-read of the acceptance time, whichever
            # comes first: both fall at exact event counts, whatever the batching.
            stop = start + min(
                self.tuner.rows_until_due(labelled[start:]),
                acceptance.rows_until_due(self.tuner.events, rows - start),
            )
            self._add_labelled(values, flags, keys, ids, start, stop)
            if timestamps is not None:
                self.tuner.observe_times(timestamps[start:stop])
            added = int(np.count_nonzero(labelled[start:stop]))
            due = self.tuner.advance(stop - start, added)
            if acceptance.due(self.tuner.events):
                if self.keyed and scored < stop:
                    # The rate of one key counts the keys held once these rows are
                    # learned (evictions included), so batching changes nothing.
                    self._process_span(scaled, flags, keys, scored, stop, out)
                    scored = stop
                acceptance.reread(self.tuner.events, len(self.models) if self.keyed else 1)
            # A boundary cuts the batch only if what comes after may be scored differently:
            # a re-tune that can change log ε, or an acceptance time re-read from the rate.
            if scored < stop and (
                (due and self.tuner.can_choose())
                or acceptance.accept_after != self.policy.accept_after
            ):
                self._process_span(scaled, flags, keys, scored, stop, out)
                scored = stop
            # With timestamps the acceptance time is a duration, in events of a key at its rate.
            self.policy.accept_after = acceptance.accept_after
            if due:
                self.retune()
            start = stop
        if scored < rows:
            self._process_span(scaled, flags, keys, scored, rows, out)
        # Between batches the units of every feature seen so far are in force.
        self._jacobian_runs = self._log_jacobian = None
        if ids is not None:
            self.recent_events.add(ids, keys, values)
        self.alerts += int(np.count_nonzero(out.alert))
        self.tick()
        return out

    def _add_labelled(
        self,
        X: Array,
        labels: Int8Array,
        keys: list[str] | None,
        ids: Sequence[str | None] | None,
        start: int,
        stop: int,
    ) -> None:
        """Put the labelled rows of ``[start, stop)`` in the validation buffer, with their ids."""
        labelled = start + np.flatnonzero(labels[start:stop] >= 0)
        if labelled.size:
            rows = labelled.tolist()
            group_keys: list[str | None] | None = None if keys is None else [keys[i] for i in rows]
            # A feedback label for one of these events later corrects its label.
            group_ids = None if ids is None else [ids[i] for i in rows]
            self.tuner.add_labelled(X[labelled], labels[labelled], group_keys, group_ids)

    # ------------------------------------------------------------- thresholds

    def retune(self) -> bool:
        """Re-choose log ε now; return True if it was set (see :meth:`ThresholdTuner.retune`)."""
        return self.tuner.retune(self.score_rows)

    def tick(self) -> bool:
        """Re-tune if ``retune_seconds`` have passed; return True if it re-tuned.

        :meth:`process` calls it after every batch; a caller that waits for
        events may call it meanwhile, so feedback labels that arrive while the
        stream is quiet still move the threshold on time.
        """
        if self.tuner.due_by_time():
            self.retune()
            return True
        return False

    def reconfigure(self, settings: DetectorSettings) -> None:
        """Take new threshold settings while running (a config reload).

        The threshold takes the new values as :meth:`ThresholdTuner.reconfigure`
        says; ``top_contributions`` holds from the next batch on. Settings that
        shape the models (features, model, floors) must not differ: the caller
        refuses those; so does this method, with :class:`ConfigError`, a
        ``log_epsilon`` given or removed, which would change the score itself.
        """
        if score_rule(settings) != self.rule:
            raise ConfigError(
                "log_epsilon",
                settings.log_epsilon,
                f"a value only if one was given at start ({self.settings.log_epsilon}): it "
                "chooses which score alerts compare; restart to change it",
            )
        self.settings = settings
        self.tuner.reconfigure(settings)

    # --------------------------------------------------------------- feedback

    def label_event(self, event_id: str | int, label: int) -> LabelOutcome | None:
        """Label an earlier event by its id; say what it did, None if it is not remembered.

        An id is remembered as text (``str`` of what :meth:`process` was
        given), so the number 3 and the text ``"3"`` name the same event.

        The event joins the validation buffer (it stays learned if it was)
        with its latest label: a label it has already (inline or as
        feedback) changes nothing and is ``"repeated"``, another one replaces
        it and is ``"corrected"`` (see
        :meth:`~stream_detect.validation_buffer.ValidationBuffer.label_event`).
        After ``retune_labels`` new or corrected labels log ε is re-tuned.
        """
        name = str(event_id)
        found = self.recent_events.get(name)
        if found is None:
            return None
        key, vector = found
        outcome = self.validation.label_event(name, vector, label, key if self.keyed else None)
        if outcome != "repeated" and self.tuner.advance(0, 1):
            self.retune()
        return outcome

    # ------------------------------------------------------------ persistence

    def to_dict(self, *, arrays: bool = False) -> dict[str, Any]:
        """The whole learned state, JSON-able; :meth:`restore` brings it back exactly.

        With ``arrays``, numpy arrays stand for some lists, for orjson's
        OPT_SERIALIZE_NUMPY to write (as a checkpoint does) without copying.
        """
        from stream_detect.detector_state import detector_state

        return detector_state(self, self._fingerprint(), arrays=arrays)

    def _fingerprint(self) -> dict[str, Any]:
        """The settings a saved state only means something under."""
        from stream_detect.detector_state import settings_fingerprint

        return settings_fingerprint(self)

    def restore(self, data: dict[str, Any]) -> None:
        """Load a state written by :meth:`to_dict`; :class:`ModelError` if it was made otherwise.

        A ``log_epsilon`` in this run's settings that differs from the one the
        saved run was given replaces the saved threshold (see
        :meth:`ThresholdTuner.restore`).
        """
        from stream_detect.detector_state import restore_detector

        restore_detector(self, data, self._fingerprint(), self.new_model)
