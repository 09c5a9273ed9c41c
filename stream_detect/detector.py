"""The streaming detector: transforms, per-key models, the learning policy and ε.

:class:`Detector` takes decoded events a batch at a time and, for each event,

1. scores it against the model of its key as that model stood just before it
   (prequential: the result does not depend on how events are batched);
2. raises an alert when the score is below log ε and the model is past warm-up;
3. decides what the model learns (:meth:`Detector._score_group` is the one
   place that policy lives): unlabelled events that were not flagged are learned;
   labelled events are held out for validation; a flagged event is excluded
   (default), learned clipped to the alert boundary, or learned fully; and a run
   of ``relearn_after`` consecutive alerts of one key is learned after all, so a
   real level shift does not leave the model alerting forever;
4. re-tunes log ε by the exact best F1 on the validation buffer re-scored under
   the current models, every ``retune_every`` events or ``retune_labels`` new
   labels (at exactly those events, whatever the batching), falling back to the
   ``contamination`` quantile of recent scores while labels are too few.

With one model the score is log p(x), the classic rule. With a model per key the
score is the scale-free ``-0.5 (D² + d log 2π)``, so one threshold means the same
deviation for a quiet key as for a noisy one (see DESIGN point 9).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.errors import ConfigError, ModelError
from stream_detect.modelfile import FittedModel
from stream_detect.models import GaussianModel, Model, ScoreBlock, build_model
from stream_detect.recent import RecentEvents
from stream_detect.settings import DetectorSettings
from stream_detect.stats import exclusive_cumsum
from stream_detect.threshold import (
    ThresholdChoice,
    ValidationBuffer,
    best_log_threshold,
    quantile_log_threshold,
)
from stream_detect.transforms import FeatureTransforms

__all__ = ["MAX_ABS_VALUE", "Detections", "Detector"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

#: Recent scores kept for the quantile fallback.
_SCORE_MEMORY = 10_000
#: While no ε is set, re-tuning is tried this often (in events).
_UNSET_RETUNE_EVERY = 100
#: Smallest block re-scored after a flagged event changed what is learned.
_MIN_WINDOW = 32
#: Key of the single model when there is no key field.
_SINGLE = ""
#: Largest feature magnitude learned: squares and sums of squares of larger
#: values overflow float64 (about 1.8e308) and would leave a model of NaN.
MAX_ABS_VALUE = 1e150


@dataclass
class _KeyState:
    """A model and what the learning policy remembers about its key."""

    model: Model
    learned: int = 0
    run_length: int = 0
    pending: list[Array] = field(default_factory=list)


@dataclass
class Detections:
    """Per-event results of one batch, aligned with its rows.

    ``score`` is what was compared with ``log_epsilon``: log p(x) with one
    model, the scale-free log-density with a model per key. ``n`` is the number
    of events the model had learned when it scored the event.
    ``contributions`` maps a row that raised an alert to its top features,
    largest contribution to the squared distance first.
    """

    log_p: Array
    score: Array
    distance_sq: Array
    log_epsilon: Array
    alert: BoolArray
    warmup: BoolArray
    n: NDArray[np.int64]
    contributions: dict[int, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def empty(cls, rows: int) -> Detections:
        """Results for ``rows`` events, to be filled in."""
        nan = np.full(rows, np.nan)
        return cls(
            log_p=nan.copy(),
            score=nan.copy(),
            distance_sq=nan.copy(),
            log_epsilon=nan.copy(),
            alert=np.zeros(rows, dtype=bool),
            warmup=np.zeros(rows, dtype=bool),
            n=np.zeros(rows, dtype=np.int64),
        )


class Detector:
    """Scores, thresholds and learns a stream of feature vectors.

    Parameters
    ----------
    settings
        The detector's settings (model, policy, thresholds).
    features
        Names of the feature columns, in order.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = Detector(DetectorSettings(min_samples=20, log_epsilon=-12.0), ("a", "b"))
    >>> X = rng.normal(size=(200, 2))
    >>> X[150] = [9.0, 0.0]
    >>> out = det.process(X, np.full(200, -1, dtype=np.int8))
    >>> np.flatnonzero(out.alert).tolist(), list(out.contributions[150])
    ([150], ['a', 'b'])
    """

    def __init__(
        self,
        settings: DetectorSettings,
        features: tuple[str, ...] | list[str],
        *,
        initial_model: FittedModel | None = None,
    ) -> None:
        self.settings = settings
        # Every model (each new key's too) starts from it, as having learned its n events.
        self.initial_model = initial_model
        self.features = tuple(features)
        self.transforms = FeatureTransforms.from_dict(settings.transforms or {})
        unknown = set(self.transforms) - set(self.features)
        if unknown:
            raise ConfigError(
                "transforms", sorted(unknown), f"features among {list(self.features)}"
            )
        if not self.features:
            raise ConfigError("features", list(self.features), "at least one feature")
        if settings.flagged == "clip" and settings.model not in ("diagonal", "full"):
            raise ConfigError("flagged", "clip", "a Gaussian model (clipping needs a mean)")
        self.keyed = settings.key_field is not None
        d = len(self.features)
        self.min_samples = settings.min_samples
        if settings.model == "full":
            # A covariance needs more events than features before it means anything.
            self.min_samples = max(self.min_samples, d + 1)
        self.models: OrderedDict[str, _KeyState] = OrderedDict()
        self.log_epsilon: float | None = settings.log_epsilon
        self.epsilon_source = "initial" if settings.log_epsilon is not None else "unset"
        self.last_choice: ThresholdChoice | None = None
        self.validation = ValidationBuffer(settings.validation_size, d)
        self.recent_scores = np.full(_SCORE_MEMORY, np.nan)
        self.recent_count = 0
        self.recent_events = RecentEvents(settings.id_memory, d)
        self.events = 0
        self.alerts = 0
        self.retunes = 0
        self.evicted = 0
        self.relearned = 0
        self.labels_since_retune = 0
        self.next_retune_at = self._retune_interval()

    # ------------------------------------------------------------------ input

    def transform(self, X: Array) -> tuple[Array, list[str | None]]:
        """Apply the feature transforms; return the rows and, per row, why it cannot be used.

        A reason is None for a usable row, else a sentence naming the first
        feature that makes it unusable: a value that is not finite, one outside
        a transform's domain, or one so large (beyond ``MAX_ABS_VALUE``) that its
        square would overflow the running statistics and silence the model.
        """
        out = self.transforms.apply(X, self.features) if self.transforms else X
        bad = ~(np.abs(out) <= MAX_ABS_VALUE)
        reasons: list[str | None] = [None] * X.shape[0]
        for row in np.flatnonzero(bad.any(axis=1)).tolist():
            j = int(np.flatnonzero(bad[row])[0])
            name = self.features[j]
            value = float(X[row, j])
            transform = self.transforms.get_transform(name)
            if not np.isfinite(value):
                reasons[row] = f"feature {name!r} = {value!r} is not a finite number"
            elif not transform.is_identity and not np.isfinite(out[row, j]):
                reasons[row] = (
                    f"feature {name!r} = {value!r} is outside the domain of transform "
                    f"{transform.spec}"
                )
            else:
                reasons[row] = (
                    f"feature {name!r} = {value!r} is beyond +-{MAX_ABS_VALUE:g}, "
                    "too large to square in floating point"
                )
        return out, reasons

    # ---------------------------------------------------------------- scoring

    def process(
        self,
        X: Array,
        labels: NDArray[np.int8],
        keys: list[str] | None = None,
        ids: list[str | None] | None = None,
    ) -> Detections:
        """Score, threshold and learn a batch of transformed rows, in order.

        ``labels`` holds 1 (anomaly), 0 (normal) or -1 (unlabelled) per row;
        ``keys`` the model key of each row when the detector is keyed; ``ids``
        the event ids remembered for feedback labels. The result for each row
        is the same whatever the batch boundaries.
        """
        rows = X.shape[0]
        self._check_batch(X, labels, keys, ids)
        out = Detections.empty(rows)
        labelled = labels >= 0
        start = 0
        while start < rows:
            stop = self._segment_end(start, rows, labelled)
            self._process_segment(X, labels, keys, start, stop, out)
            self.events += stop - start
            self.labels_since_retune += int(np.count_nonzero(labelled[start:stop]))
            if self._retune_due():
                self.retune()
            start = stop
        self._remember(X, keys, ids)
        self.alerts += int(np.count_nonzero(out.alert))
        return out

    def _check_batch(
        self,
        X: Array,
        labels: NDArray[np.int8],
        keys: list[str] | None,
        ids: list[str | None] | None,
    ) -> None:
        """Refuse a batch that would corrupt the state, before anything is learned."""
        rows = X.shape[0]
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise ValueError(f"expected rows of {len(self.features)} features, got {X.shape}")
        if labels.shape != (rows,) or not np.isin(labels, (-1, 0, 1)).all():
            raise ValueError("labels must hold one of -1 (none), 0 or 1 per row")
        if not (np.abs(X) <= MAX_ABS_VALUE).all():
            raise ValueError(
                f"rows must be finite and within +-{MAX_ABS_VALUE:g}; see Detector.transform"
            )
        if self.keyed and (keys is None or len(keys) != rows):
            raise ValueError("a keyed detector needs one key per row")
        if ids is not None and len(ids) != rows:
            raise ValueError("ids must have one entry per row")

    def _segment_end(self, start: int, rows: int, labelled: BoolArray) -> int:
        """End of the rows that can be scored before the next re-tune is due."""
        stop = min(rows, start + max(1, self.next_retune_at - self.events))
        if self.settings.retune_labels:
            need = self.settings.retune_labels - self.labels_since_retune
            positions = np.flatnonzero(labelled[start:stop])
            if need >= 1 and positions.size >= need:
                stop = start + int(positions[need - 1]) + 1
        return stop

    def _retune_due(self) -> bool:
        by_labels = 0 < self.settings.retune_labels <= self.labels_since_retune
        return by_labels or self.events >= self.next_retune_at

    def _retune_interval(self) -> int:
        every = self.settings.retune_every or (1 << 62)
        return self.events + (
            every if self.log_epsilon is not None else min(every, _UNSET_RETUNE_EVERY)
        )

    def _process_segment(
        self,
        X: Array,
        labels: NDArray[np.int8],
        keys: list[str] | None,
        start: int,
        stop: int,
        out: Detections,
    ) -> None:
        if keys is None or not self.keyed:
            self._score_group(self._state_for(_SINGLE), X, labels, np.arange(start, stop), out)
        else:
            for begin, end in self._stretches(keys, start, stop):
                groups = self._stretch_groups(keys, begin, end)
                for key, rows in groups:
                    self._score_group(self._state_for(key), X, labels, rows, out)
                # Event by event, recency follows each key's last event, not its first.
                for key, _ in sorted(groups, key=lambda group: int(group[1][-1])):
                    if key in self.models:
                        self.models.move_to_end(key)
        segment = np.arange(start, stop)
        labelled = segment[labels[start:stop] >= 0]
        if labelled.size:
            group_keys = None if keys is None else [keys[i] for i in labelled.tolist()]
            self.validation.add(X[labelled], labels[labelled], group_keys)
        usable = segment[(labels[start:stop] < 0) & ~out.warmup[start:stop]]
        self._remember_scores(out.score[usable])

    def _stretches(self, keys: list[str], start: int, stop: int) -> list[tuple[int, int]]:
        """Cut ``[start, stop)`` so no piece holds more than ``max_keys`` distinct keys.

        Scoring a key's rows together equals the event-by-event order as long
        as no model is evicted between two rows of its key, which can only
        happen when a stretch holds more distinct keys than ``max_keys``.
        """
        limit = self.settings.max_keys
        if len(set(keys[start:stop])) <= limit:
            return [(start, stop)]
        pieces = []
        begin = start
        seen: set[str] = set()
        for i in range(start, stop):
            if keys[i] not in seen and len(seen) == limit:
                pieces.append((begin, i))
                begin, seen = i, set()
            seen.add(keys[i])
        pieces.append((begin, stop))
        return pieces

    def _stretch_groups(self, keys: list[str], start: int, stop: int) -> list[tuple[str, IntArray]]:
        """Rows of ``[start, stop)`` per key, each in arrival order, keys by first appearance."""
        segment = np.asarray(keys[start:stop], dtype=object)
        uniques, inverse = np.unique(segment, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=len(uniques)))[:-1]
        groups = np.split(order + start, bounds)
        # Visit keys in order of first appearance so eviction is deterministic.
        first = [int(g[0]) for g in groups]
        ranked = sorted(zip(first, uniques.tolist(), groups, strict=True))
        return [(str(key), rows) for _, key, rows in ranked]

    def _state_for(self, key: str) -> _KeyState:
        state = self.models.get(key)
        if state is None:
            if self.initial_model is not None:
                state = _KeyState(
                    self.initial_model.streaming_model(self.settings.half_life),
                    learned=round(self.initial_model.n),
                )
            else:
                model = build_model(
                    self.settings.model,
                    self.features,
                    half_life=self.settings.half_life,
                    variance_floor=self.settings.variance_floor,
                    params=self.settings.model_params,
                    river_scaler=self.settings.river_scaler,
                )
                state = _KeyState(model)
            self.models[key] = state
            while len(self.models) > self.settings.max_keys:
                self.models.popitem(last=False)
                self.evicted += 1
        else:
            self.models.move_to_end(key)
        return state

    def _threshold(self) -> float:
        return -math.inf if self.log_epsilon is None else self.log_epsilon

    def _decision_scores(self, block: ScoreBlock) -> Array:
        scores: Array = block.scale_free if self.keyed else block.log_p
        return scores

    def _score_group(
        self,
        state: _KeyState,
        X: Array,
        labels: NDArray[np.int8],
        rows: IntArray,
        out: Detections,
    ) -> None:
        """Score one key's rows in order and apply the learning policy.

        Every block is scored assuming all learnable rows are learned; the first
        flagged row whose learning differs (excluded or clipped) ends the block,
        the rows before it are learned, it is handled, and scoring resumes after
        it. Anomalies are rare, so blocks are long and the cost stays near one
        vectorised pass.
        """
        model = state.model
        Xg = X[rows]
        learnable = (labels[rows] < 0) | self.settings.learn_labelled
        total = rows.size
        window = total if model.exact_blocks else 1
        log_epsilon = self._threshold()
        begin = 0
        while begin < total:
            end = min(total, begin + window)
            block = model.prequential(Xg[begin:end], learnable[begin:end])
            learn_here = learnable[begin:end]
            learned_before = state.learned + exclusive_cumsum(learn_here.astype(np.int64))
            warm = learned_before < self.min_samples
            score = self._decision_scores(block)
            alert = ~warm & (score < log_epsilon)
            trigger = self._first_trigger(state, alert, learn_here)
            accepted = (end - begin) if trigger is None else trigger + 1
            span = rows[begin : begin + accepted]
            out.log_p[span] = block.log_p[:accepted]
            out.score[span] = score[:accepted]
            out.distance_sq[span] = block.distance_sq[:accepted]
            out.log_epsilon[span] = log_epsilon if self.log_epsilon is not None else np.nan
            out.alert[span] = alert[:accepted]
            out.warmup[span] = warm[:accepted]
            out.n[span] = learned_before[:accepted]
            self._explain(model, Xg[begin:end], block, alert[:accepted], span, out)
            clean = accepted if trigger is None else trigger
            prefix_learned = learn_here[:clean]
            model.learn(Xg[begin : begin + clean][prefix_learned])
            state.learned += int(np.count_nonzero(prefix_learned))
            self._count_run(state, alert[:clean], prefix_learned)
            if trigger is not None:
                self._handle_flagged(state, Xg[begin + trigger], block, trigger, log_epsilon)
                window = max(_MIN_WINDOW, 2 * (trigger + 1)) if model.exact_blocks else 1
            elif model.exact_blocks:
                window = min(total, 2 * window)
            begin += accepted

    def _first_trigger(
        self, state: _KeyState, alert: BoolArray, learnable: BoolArray
    ) -> int | None:
        """Offset of the first flagged row the dry run learned wrongly, or None."""
        policy = self.settings.flagged
        if policy == "learn":
            return None
        candidates = alert & learnable
        if policy == "exclude" and self._admitting(state):
            # The run is being learned; it ends at the first unflagged learnable row.
            ended = np.flatnonzero(learnable & ~alert)
            if ended.size == 0:
                return None
            candidates = candidates.copy()
            candidates[: ended[0]] = False
        hits = np.flatnonzero(candidates)
        return int(hits[0]) if hits.size else None

    def _admitting(self, state: _KeyState) -> bool:
        after = self.settings.relearn_after
        return bool(after) and state.run_length >= after

    def _count_run(self, state: _KeyState, alert: BoolArray, learned: BoolArray) -> None:
        """Update the run of consecutive alerts with rows that were learned as scored."""
        calm = np.flatnonzero(learned & ~alert)
        if calm.size:
            state.run_length = int(np.count_nonzero(alert[calm[-1] :] & learned[calm[-1] :]))
            state.pending.clear()
        else:
            state.run_length += int(np.count_nonzero(alert & learned))

    def _handle_flagged(
        self, state: _KeyState, x: Array, block: ScoreBlock, row: int, log_epsilon: float
    ) -> None:
        """The learning policy for one flagged, learnable event."""
        state.run_length += 1
        if self.settings.flagged == "clip":
            state.model.learn(self._clipped(x, block, row, log_epsilon)[None, :])
            state.learned += 1
            return
        after = self.settings.relearn_after
        if not after:
            return
        state.pending.append(x)
        if self._admitting(state):
            # A sustained run is a new normal, not an anomaly: learn it after all.
            state.model.learn(np.array(state.pending))
            state.learned += len(state.pending)
            self.relearned += len(state.pending)
            state.pending.clear()

    def _clipped(self, x: Array, block: ScoreBlock, row: int, log_epsilon: float) -> Array:
        """``x`` pulled towards the mean until its score equals log ε (the alert boundary)."""
        assert block.mean is not None
        mean: Array = np.array(block.mean[row], dtype=np.float64)
        distance_sq = float(block.distance_sq[row])
        score = float(self._decision_scores(block)[row])
        at_mean = score + 0.5 * distance_sq
        if distance_sq <= 0 or at_mean <= log_epsilon:
            return mean
        shrink = math.sqrt(2.0 * (at_mean - log_epsilon) / distance_sq)
        clipped: Array = mean + min(1.0, shrink) * (x - mean)
        return clipped

    def _explain(
        self,
        model: Model,
        X: Array,
        block: ScoreBlock,
        alert: BoolArray,
        span: IntArray,
        out: Detections,
    ) -> None:
        hits = np.flatnonzero(alert)
        if hits.size == 0:
            return
        contributions = model.contributions(X, block, hits)
        if contributions is None:
            for i in hits.tolist():
                out.contributions[int(span[i])] = {}
            return
        top = self.settings.top_contributions
        order = np.argsort(-contributions, axis=1, kind="stable")[:, :top]
        for local, (i, ranked) in enumerate(zip(hits.tolist(), order.tolist(), strict=True)):
            out.contributions[int(span[i])] = {
                self.features[j]: round(float(contributions[local, j]), 6) for j in ranked
            }

    # ------------------------------------------------------------- thresholds

    def _remember_scores(self, scores: Array) -> None:
        scores = scores[np.isfinite(scores)]
        if scores.size == 0:
            return
        scores = scores[-_SCORE_MEMORY:]
        slots = (self.recent_count + np.arange(scores.size)) % _SCORE_MEMORY
        self.recent_scores[slots] = scores
        self.recent_count += scores.size

    def retune(self) -> bool:
        """Re-choose log ε now; return True if it was set.

        With enough labels of both classes, log ε is the exact best-F1
        threshold on the validation buffer re-scored under the current models.
        Otherwise, if log ε was never given nor tuned on labels, the
        ``contamination`` quantile of recent scores is used once enough scores
        have been seen to estimate it; else log ε stays as it is.
        """
        self.retunes += 1
        self.labels_since_retune = 0
        chosen = self._retune_by_labels() or self._retune_by_quantile()
        self.next_retune_at = self._retune_interval()
        return chosen

    def _retune_by_labels(self) -> bool:
        settings = self.settings
        if (
            self.validation.n_positive < settings.min_positive_labels
            or self.validation.n_negative < settings.min_negative_labels
        ):
            return False
        X, y, keys = self.validation.arrays()
        scores = self.score_rows(X, keys)
        usable = np.isfinite(scores)
        y = y[usable]
        if np.count_nonzero(y) < settings.min_positive_labels or np.count_nonzero(y == 0) < (
            settings.min_negative_labels
        ):
            return False
        choice = best_log_threshold(y, scores[usable])
        if not math.isfinite(choice.log_epsilon):
            return False
        self.log_epsilon = choice.log_epsilon
        self.last_choice = choice
        self.epsilon_source = "f1"
        return True

    def _retune_by_quantile(self) -> bool:
        contamination = self.settings.contamination
        # A log ε the user gave, or one tuned on labels, is kept until labels re-tune it.
        if not contamination or self.epsilon_source not in ("unset", "quantile"):
            return False
        held = min(self.recent_count, _SCORE_MEMORY)
        if held < max(50, math.ceil(2.0 / contamination)):
            return False
        self.log_epsilon = quantile_log_threshold(self.recent_scores[:held], contamination)
        self.epsilon_source = "quantile"
        return True

    def score_rows(self, X: Array, keys: list[str | None] | list[str] | None = None) -> Array:
        """Decision scores of transformed rows under the current models.

        Nothing is learned. Rows whose key has no model (never seen, or
        evicted) or whose model is still in warm-up score NaN.
        """
        scores = np.full(X.shape[0], np.nan)
        if X.shape[0] == 0:
            return scores
        if not self.keyed:
            groups = [(_SINGLE, np.arange(X.shape[0]))]
        else:
            names = [k or "" for k in (keys or [None] * X.shape[0])]
            groups = self._stretch_groups(names, 0, len(names))
        for key, rows in groups:
            state = self.models.get(key)
            # A model in warm-up raises no alert, so its scores must not steer ε either.
            if state is not None and state.learned >= self.min_samples:
                scores[rows] = self._decision_scores(state.model.score(X[rows]))
        return scores

    # --------------------------------------------------------------- feedback

    def _remember(self, X: Array, keys: list[str] | None, ids: list[str | None] | None) -> None:
        if ids is not None:
            self.recent_events.add(ids, keys, X)

    def add_feedback(self, event_id: str, label: int) -> bool:
        """Label an earlier event by its id; return False if it is no longer remembered.

        The event joins the validation buffer (it stays learned if it was); after
        ``retune_labels`` new labels log ε is re-tuned.
        """
        found = self.recent_events.get(event_id)
        if found is None:
            return False
        key, vector = found
        self.validation.add(vector[None, :], np.array([label]), [key] if self.keyed else None)
        self.labels_since_retune += 1
        if self._retune_due():
            self.retune()
        return True

    # ------------------------------------------------------------ persistence

    def summary(self) -> dict[str, Any]:
        """Counters and the current threshold, JSON-able."""
        choice = self.last_choice
        return {
            "events": self.events,
            "alerts": self.alerts,
            "log_epsilon": self.log_epsilon,
            "epsilon_source": self.epsilon_source,
            "f1": None if choice is None else choice.f1,
            "precision": None if choice is None else choice.precision,
            "recall": None if choice is None else choice.recall,
            "retunes": self.retunes,
            "models": len(self.models),
            "evicted_models": self.evicted,
            "relearned_events": self.relearned,
            "validation_positive": self.validation.n_positive,
            "validation_negative": self.validation.n_negative,
        }

    def to_dict(self) -> dict[str, Any]:
        """The whole learned state, JSON-able; :meth:`restore` brings it back exactly."""
        held = min(self.recent_count, _SCORE_MEMORY)
        order = (self.recent_count - held + np.arange(held)) % _SCORE_MEMORY
        return {
            **self._fingerprint(),
            "log_epsilon": self.log_epsilon,
            "epsilon_source": self.epsilon_source,
            "last_choice": None if self.last_choice is None else vars(self.last_choice),
            "counters": {
                "events": self.events,
                "alerts": self.alerts,
                "retunes": self.retunes,
                "evicted": self.evicted,
                "relearned": self.relearned,
                "labels_since_retune": self.labels_since_retune,
                "next_retune_at": self.next_retune_at,
            },
            "models": [
                {
                    "key": key,
                    "state": state.model.to_dict(),
                    "learned": state.learned,
                    "run_length": state.run_length,
                    "pending": [p.tolist() for p in state.pending],
                }
                for key, state in self.models.items()
            ],
            "validation": self.validation.to_dict(),
            "recent_scores": self.recent_scores[order].tolist(),
            "recent_events": self.recent_events.to_dict(),
        }

    def _fingerprint(self) -> dict[str, Any]:
        """The settings a saved state only means something under."""
        return {
            "features": list(self.features),
            "model": self.settings.model,
            "keyed": self.keyed,
            "key_field": self.settings.key_field,
            "half_life": self.settings.half_life,
            "transforms": self.transforms.to_dict(),
            "variance_floor": self.settings.variance_floor,
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load a state written by :meth:`to_dict`; :class:`ModelError` if it was made otherwise."""
        for name, value in self._fingerprint().items():
            if data.get(name) != value:
                raise ModelError(
                    f"checkpoint was written with {name} = {data.get(name)!r}, "
                    f"this run has {value!r}; use a new checkpoint file or the same settings"
                )
        try:
            self.log_epsilon = data["log_epsilon"]
            self.epsilon_source = data["epsilon_source"]
            choice = data.get("last_choice")
            self.last_choice = None if choice is None else ThresholdChoice(**choice)
            counters = data["counters"]
            self.events = int(counters["events"])
            self.alerts = int(counters["alerts"])
            self.retunes = int(counters["retunes"])
            self.evicted = int(counters["evicted"])
            self.relearned = int(counters["relearned"])
            self.labels_since_retune = int(counters["labels_since_retune"])
            self.next_retune_at = int(counters["next_retune_at"])
            self.models.clear()
            for entry in data["models"]:
                state = self._state_for(str(entry["key"]))
                if not isinstance(state.model, GaussianModel):
                    raise ModelError("only Gaussian models can be restored from a checkpoint")
                state.model.restore(entry["state"])
                state.learned = int(entry["learned"])
                state.run_length = int(entry["run_length"])
                state.pending = [np.asarray(p, dtype=np.float64) for p in entry["pending"]]
            saved = ValidationBuffer.from_dict(data["validation"])
            # This run's validation_size holds; the newest labels of each class are kept.
            self.validation = saved.resized(self.settings.validation_size)
            scores = np.asarray(data["recent_scores"], dtype=np.float64)
            self.recent_scores = np.full(_SCORE_MEMORY, np.nan)
            self.recent_scores[: scores.size] = scores
            self.recent_count = int(scores.size)
            self.recent_events.restore(data["recent_events"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"checkpoint state is malformed: {exc!r}") from exc
