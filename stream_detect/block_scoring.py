"""Scoring a key's rows block by block, each block ending at its first mislearned row.

The way of a model that scores one row at a time (river models, a full
covariance model learning row by row), and the fallback of
:meth:`~stream_detect.learning.LearningPolicy.score_and_learn` when
re-planning settles few rows per pass. A block of rows is scored assuming every
learnable row is learned; the first flagged row the policy treats otherwise
ends it: the rows before it are learned, it is handled on its own (learned
clipped, held pending, or a lasting deviation accepted), and the next block
starts after it. Blocks double while nothing is flagged.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from stream_detect.acceptance import accept_deviation
from stream_detect.clipping import clip_towards_mean
from stream_detect.detections import Detections
from stream_detect.explanations import Explainer
from stream_detect.keyed_models import KeyState
from stream_detect.model_interface import ScoreBlock, ScoreRule
from stream_detect.prequential import exclusive_cumsum

__all__ = ["BlockScoring"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

#: Smallest block re-scored after a flagged event changed what is learned.
_MIN_BLOCK = 32


class BlockScoring:
    """Block-by-block scoring and learning of one key's rows; see the module docstring.

    A mix-in of :class:`~stream_detect.learning.LearningPolicy`, which sets the
    attributes below.
    """

    #: What an alert teaches: ``"clip"``, ``"exclude"`` or ``"learn"``.
    flagged: str
    #: Distance, in σ, a flagged event is clipped to.
    clip_sigma: float
    #: Alerts in a row after which a deviation is accepted (0: never).
    accept_after: int
    #: Events a model learns before it may raise alerts.
    min_samples: int
    #: The score alerts compare.
    rule: ScoreRule
    #: Flagged events learned after all because their run lasted.
    relearned: int
    #: True: every row's score and log tail are written; False: only the alerts'.
    every_score: bool

    def scores(self, block: ScoreBlock) -> Array:
        """The scores alerts are decided on (see :meth:`ScoreBlock.decision`)."""
        return block.decision(self.rule)

    def decide(self, block: ScoreBlock, threshold: float, warm: BoolArray) -> Array:
        """Scores that decide alerts against ``threshold`` exactly, NaN where none is needed.

        Under the tail rule a row whose cheap floor on the prior's tail (see
        :meth:`~stream_detect.prior.DeferredTails.floor`) clears the threshold
        cannot alert, nor can a ``warm`` row (its model has learned too little):
        their exact tails are left for :meth:`written_scores`.
        """
        if self.rule != "tail" or block.deferred is None or block.model_score is not None:
            return self.scores(block)
        doubt = block.deferred.in_doubt(threshold)
        doubt = doubt[~warm[doubt]]
        score = np.full(block.log_p.shape, np.nan)
        score[doubt] = block.deferred.at(doubt)
        return score

    def written_scores(
        self, block: ScoreBlock, score: Array, alert: BoolArray, rows: IntArray
    ) -> tuple[Array, Array]:
        """The scores and log tails of ``rows`` of ``block`` as they are written.

        ``score`` is :meth:`decide`'s. Every row's are exact, or with
        ``every_score`` False only the alerts' (NaN for the other rows): their
        tails are what costs, and a caller that writes alerts only never reads them.
        """
        exact = rows if self.every_score else rows[alert[rows]]
        tail = np.full(rows.shape, np.nan)
        tail[np.searchsorted(rows, exact)] = block.tail_at(exact)
        if self.rule == "tail" and block.model_score is None:
            return tail, tail
        return score[rows], tail

    def _score_in_blocks(
        self,
        state: KeyState,
        group: Array,
        learnable: BoolArray,
        rows: IntArray,
        threshold: float,
        out: Detections,
        explain: Explainer | None,
    ) -> None:
        """Score and learn a key's rows block by block, each ending at its first mislearned row.

        The way of a model that scores one row at a time, and the fallback of
        :meth:`score_and_learn` when re-planning settles few rows per pass.
        """
        model = state.model
        shown = np.nan if threshold == -math.inf else threshold
        total = rows.size
        block_size = total if model.exact_blocks else 1
        begin = 0
        while begin < total:
            end = min(total, begin + block_size)
            block = model.prequential(group[begin:end], learnable[begin:end])
            learn_here = learnable[begin:end]
            learned_before = state.learned + exclusive_cumsum(learn_here.astype(np.int64))
            warm = learned_before < self.min_samples
            score = self.decide(block, threshold, warm)
            alert = ~warm & (score < threshold)
            trigger = self._first_trigger(state, alert, learn_here)
            accepted = (end - begin) if trigger is None else trigger + 1
            done = rows[begin : begin + accepted]
            out.log_p[done] = block.log_p[:accepted]
            written, tail = self.written_scores(block, score, alert, np.arange(accepted))
            out.score[done] = written
            out.distance_sq[done] = block.distance_sq[:accepted]
            out.log_tail[done] = tail
            out.log_epsilon[done] = shown
            out.alert[done] = alert[:accepted]
            out.warmup[done] = warm[:accepted]
            out.n[done] = learned_before[:accepted]
            if explain is not None and alert[:accepted].any():
                explain(state, group[begin:end], block, alert[:accepted], done, out)
            clean = accepted if trigger is None else trigger
            prefix_learned = learn_here[:clean]
            model.learn(group[begin : begin + clean][prefix_learned])
            state.learned += int(np.count_nonzero(prefix_learned))
            self._count_run(state, alert[:clean], prefix_learned)
            if trigger is not None:
                self._handle_flagged(state, group[begin + trigger], block, trigger)
                block_size = max(_MIN_BLOCK, 2 * (trigger + 1)) if model.exact_blocks else 1
            elif model.exact_blocks:
                block_size = min(total, 2 * block_size)
            begin += accepted

    def _first_trigger(self, state: KeyState, alert: BoolArray, learnable: BoolArray) -> int | None:
        """Offset of the first flagged row the dry run learned wrongly, or None."""
        if self.flagged == "learn":
            return None
        candidates = alert & learnable
        if self.flagged != "learn" and self._admitting(state):
            # The run is being learned; it ends at the first unflagged learnable row.
            ended = np.flatnonzero(learnable & ~alert)
            if ended.size == 0:
                return None
            candidates = candidates.copy()
            candidates[: ended[0]] = False
        hits = np.flatnonzero(candidates)
        return int(hits[0]) if hits.size else None

    def _admitting(self, state: KeyState) -> bool:
        return bool(self.accept_after) and state.run_length >= self.accept_after

    def _count_run(self, state: KeyState, alert: BoolArray, learned: BoolArray) -> None:
        """Update the deviation count with rows that were learned as scored.

        The count rises by one per alert and falls by one per calm row, never
        below 0 nor above ``accept_after``: a deviation whose rows alert more
        often than not builds up to acceptance even if some rows fall under the
        threshold, and its pending alerts are forgotten once the count is back
        at 0. Learned alerts only come before the first calm row here (after it
        the deviation is no longer accepted, so an alert ends the clean prefix).
        """
        if self.flagged == "learn":
            return
        calm = np.flatnonzero(learned & ~alert)
        stop = calm[0] if calm.size else alert.size
        count = state.run_length + int(np.count_nonzero(alert[:stop] & learned[:stop]))
        if self.accept_after:
            count = min(count, self.accept_after)
        state.run_length = max(0, count - calm.size)
        if state.run_length == 0:
            state.pending.clear()

    def _handle_flagged(self, state: KeyState, x: Array, block: ScoreBlock, row: int) -> None:
        """What one flagged, learnable event teaches its model."""
        state.run_length += 1
        if self.flagged == "clip" and state.run_length == 1:
            # Only the alert that starts a deviation is learned (clipped): a fault that
            # lasts must not drag the model towards itself before accept_after says so.
            state.model.learn(self._clipped(x, block, row)[None, :])
            state.learned += 1
        if not self.accept_after:
            return
        state.pending.append(x)
        if len(state.pending) > self.accept_after:
            del state.pending[0]
        if self._admitting(state):
            # A run this long is a new normal, not an anomaly: learn it as it is.
            accept_deviation(state.model, np.array(state.pending), self.min_samples)
            state.learned += len(state.pending)
            self.relearned += len(state.pending)
            state.pending.clear()

    def _clipped(self, x: Array, block: ScoreBlock, row: int) -> Array:
        """``x`` pulled towards the mean until its Mahalanobis distance is ``clip_sigma``."""
        assert block.mean is not None
        one = slice(row, row + 1)
        clipped: Array = clip_towards_mean(
            x[None, :], block.mean[one], block.distance_sq[one], self.clip_sigma
        )[0]
        return clipped
