"""How a detector scores rows against its models, with or without learning from them.

:class:`DetectorScoring` scores and learns a span of a batch's rows. It cuts
the span where the integer features' floors or the units of a tiny feature
change (:mod:`stream_detect.feature_units`) and scores each part under one
log ε: with the single model, with the keyed bank
(:mod:`stream_detect.keyed_bank`), or piece by piece with a model object per
key; then it shows the tuner the part's scores. It also scores rows under the
current models without learning anything, as a re-tune does with the
validation rows. Which rows a span holds, and when log ε moves between spans,
is :class:`~stream_detect.detector.Detector`'s, which builds on it (its module
docstring says what segments, pieces and groups are).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from stream_detect.detections import Detections
from stream_detect.detector_parts import DetectorParts
from stream_detect.explanations import AlertExplainer
from stream_detect.feature_units import in_event_units, jacobian_spans
from stream_detect.keyed_models import SINGLE_KEY, KeyedModels, groups

__all__ = ["DetectorScoring"]

Array = NDArray[np.float64]
Int8Array = NDArray[np.int8]


class DetectorScoring(DetectorParts):
    """The parts of a detector, and the rows it scores with them.

    The parameters are :class:`~stream_detect.detector.Detector`'s.
    """

    def _process_span(
        self,
        X: Array,
        labels: Int8Array,
        keys: list[str] | None,
        start: int,
        stop: int,
        out: Detections,
    ) -> None:
        """Score and learn rows ``[start, stop)``, cut where the integer features' floors change.

        Cut too where a tiny feature's first value changes the units of the
        density (:mod:`stream_detect.feature_units`).
        """
        for first, last, log_jacobian in jacobian_spans(self._jacobian_runs, start, stop):
            for begin, end in self.integers.spans(X, first, last):
                self._process_segment(X, labels, keys, begin, end, out, log_jacobian)

    def _process_segment(
        self,
        X: Array,
        labels: Int8Array,
        keys: list[str] | None,
        start: int,
        stop: int,
        out: Detections,
        log_jacobian: float = 0.0,
    ) -> None:
        """Score and learn rows ``[start, stop)``, all under the same log ε; show the tuner.

        ``log_jacobian`` turns the log density of the scaled rows into the events' own.
        """
        given = log_epsilon = self.tuner.log_epsilon
        # A re-tune after these rows scores the validation rows in the units in force here.
        self._log_jacobian = log_jacobian
        if log_jacobian and self.rule == "log_p" and given is not None:
            # log p(x) < log ε in the events' units, compared in the scaled rows' units.
            log_epsilon = given - log_jacobian
        # Made per segment: a reload may change top_contributions between two batches.
        explain = AlertExplainer(self.features, self.settings.top_contributions)
        if not isinstance(self.models, KeyedModels):  # the keyed bank
            assert keys is not None
            self.models.score_and_learn(
                self.policy, X, labels, keys, start, stop, log_epsilon, out, explain
            )
        elif keys is None or not self.keyed:
            state = self.models.state_for(SINGLE_KEY)
            rows = np.arange(start, stop)
            self.policy.score_and_learn(state, X, labels, rows, log_epsilon, out, explain)
        else:
            # Imported here: only a keyed run of object models needs it.
            from stream_detect.keyed_rounds import score_calm_keys

            for begin, end in self.models.pieces(keys, start, stop):
                piece = groups(keys, begin, end)
                # Looked up in the order the per-key loop did: evictions are the same.
                states = [self.models.state_for(key) for key, _ in piece]
                # The keys whose rows stay calm are scored together; the others one by one.
                rest = score_calm_keys(self.policy, piece, states, X, labels, log_epsilon, out)
                for index in rest:
                    state, rows = states[index], piece[index][1]
                    self.policy.score_and_learn(state, X, labels, rows, log_epsilon, out, explain)
                self.models.mark_seen(piece)
        if log_jacobian:
            span = slice(start, stop)
            in_event_units(out, span, log_jacobian, self.rule == "log_p", given, log_epsilon)
        self.tuner.observe(
            out.score[start:stop],
            out.alert[start:stop],
            out.warmup[start:stop],
            out.log_epsilon[start:stop],
        )

    def score_rows(self, X: Array, keys: list[str | None] | list[str] | None = None) -> Array:
        """Decision scores of transformed rows under the current models.

        Nothing is learned. Rows whose key has no model (never seen, or
        evicted) or whose model is still in warm-up score NaN.
        """
        scores = np.full(X.shape[0], np.nan)
        if X.shape[0] == 0:
            return scores
        log_jacobian = 0.0
        if not self.units.identity:
            X = self.units.scale(X)
            if self.rule == "log_p":
                now = self._log_jacobian
                log_jacobian = self.units.log_jacobian() if now is None else now
        if not self.keyed:
            by_key = [(SINGLE_KEY, np.arange(X.shape[0]))]
        else:
            names = [k or "" for k in (keys or [None] * X.shape[0])]
            by_key = groups(names, 0, len(names))
        for key, rows in by_key:
            state = self.models.get(key)
            # A model in warm-up raises no alert, so its scores must not steer ε either.
            if state is not None and state.learned >= self.min_samples:
                scores[rows] = self.policy.scores(state.model.score(X[rows]))
        return scores + log_jacobian if log_jacobian else scores
