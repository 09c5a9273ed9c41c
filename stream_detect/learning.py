"""The learning policy: what each event teaches its model, scored prequentially and exactly.

:meth:`LearningPolicy.score_and_learn` is the one place that says what an
event teaches the model of its key:

* a labelled event is held out for validation (unless ``learn_labelled``);
* an unlabelled event that raised no alert is learned;
* an event that raised an alert is learned clipped (``flagged = "clip"``, the
  default for a Gaussian model) if it starts a run of alerts: pulled towards
  the mean until its squared Mahalanobis distance is at most ``clip_sigma``²
  (μ ± kσ for one feature), so one wild value cannot inflate the variance and
  blind the model, while isolated alerts still widen it a little (excluding
  every tail event would shrink the variance until everything alerts); the
  later alerts of the run are not learned. Or it is excluded (``"exclude"``,
  the default for a river model) or learned fully (``"learn"``);
* a deviation is counted per key: +1 per alert, -1 per calm row, between 0
  and ``accept_after``; when the count reaches ``accept_after`` the deviation
  is accepted as the new normal: its key's history is discounted
  (:mod:`stream_detect.acceptance`), its pending alerts (the last
  ``accept_after``) are learned as they are, and so are its alerts from then
  on until a calm row, so a lasting level shift stops alerting while a
  shorter fault keeps alerting throughout. A pass ends at the row that
  accepts a deviation: the rows after it are scored against the discounted
  model.

Each event is scored against the model as it stood just before it, so the
result does not depend on batching. A block of a key's rows is scored assuming
every learnable row is learned; the first flagged row whose learning differs
ends the block, the rows before it are learned, it is handled, and scoring
resumes after it. Anomalies are rare, so blocks are long and the cost stays
near one vectorised pass. A model that scores one row at a time, and rows
that re-planning settles slowly, go block by block instead
(:class:`~stream_detect.block_scoring.BlockScoring`).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import NDArray

from stream_detect.acceptance import accept_deviation
from stream_detect.block_scoring import BlockScoring
from stream_detect.clipping import clip_towards_mean, refine_replanned, taught_scale
from stream_detect.detections import Detections
from stream_detect.explanations import Explainer
from stream_detect.first_plan import first_plan
from stream_detect.gaussian_model import GaussianModel
from stream_detect.keyed_models import KeyState
from stream_detect.model_interface import ScoreBlock, ScoreRule
from stream_detect.model_kinds import model_kind
from stream_detect.prequential import exclusive_cumsum
from stream_detect.settings import DetectorSettings
from stream_detect.teaching import (
    CLIP_TOLERANCE,
    LOW_RANK_CLIP_TOLERANCE,
    RunState,
    TeachingPlan,
    plan_teaching,
    source_vector,
    taught_layout,
)

__all__ = ["MAX_BLOCK_ROWS", "LearningPolicy", "flagged_policy"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]
#: Passes of :meth:`LearningPolicy.score_and_learn` before it falls back to
#: blocks that end at each mislearned row (exact too, and bounded in cost).
_MAX_PASSES = 8
#: Rows a pass scores at most: a pass re-scores every row after the first one
#: whose teaching changed, so on one long block with many alerts the passes
#: would cost the square of its length. Blocks of the command line's batch
#: size keep the cost linear; where a block ends does not change a result.
MAX_BLOCK_ROWS = 4096


def flagged_policy(settings: DetectorSettings) -> str:
    """What an alert teaches the model: ``flagged``, or its default for the model.

    >>> flagged_policy(DetectorSettings()), flagged_policy(DetectorSettings(model="river:LODA"))
    ('clip', 'exclude')
    """
    if settings.flagged is not None:
        return settings.flagged
    return "clip" if model_kind(settings.model).clipped_learning else "exclude"


class LearningPolicy(BlockScoring):
    """Scores a key's rows in order and decides what its model learns from each.

    Parameters
    ----------
    settings
        Reads ``flagged``, ``clip_sigma``, ``learn_labelled`` and ``accept_after``.
    min_samples
        Events a model learns before it may raise alerts.
    rule
        The score alerts compare (see :meth:`ScoreBlock.decision`).
    every_score
        False: only the rows that raise an alert get their score and log tail
        (the others' are NaN; their decisions are the same).

    Examples
    --------
    The 50 alerts and is learned clipped to 6 σ from the mean (0.5 + 6 · 0.5 = 3.5):

    >>> from stream_detect.keyed_models import KeyState
    >>> from stream_detect.models import build_model
    >>> policy = LearningPolicy(DetectorSettings(), min_samples=3, rule="log_p")
    >>> state = KeyState(build_model("diagonal", ("x",)))
    >>> X = np.array([[0.0], [1.0], [0.0], [1.0], [50.0], [0.5]])
    >>> out = Detections.empty(6)
    >>> policy.score_and_learn(state, X, np.full(6, -1, np.int8), np.arange(6), -10.0, out)
    >>> out.alert.tolist(), state.learned, float(state.model.stats.mean[0])  # (0+1+0+1+3.5+.5)/6
    ([False, False, False, False, True, False], 6, 1.0)
    """

    def __init__(
        self,
        settings: DetectorSettings,
        *,
        min_samples: int,
        rule: ScoreRule,
        every_score: bool = True,
    ) -> None:
        self.flagged = flagged_policy(settings)
        self.every_score = every_score
        self.clip_sigma = settings.clip_sigma
        self.learn_labelled = settings.learn_labelled
        self.accept_after = settings.accept_after
        self.min_samples = min_samples
        self.rule: ScoreRule = rule
        #: Flagged events learned after all because their run lasted.
        self.relearned = 0

    def score_and_learn(
        self,
        state: KeyState,
        X: Array,
        labels: NDArray[np.int8],
        rows: IntArray,
        log_epsilon: float | None,
        out: Detections,
        explain: Explainer | None = None,
    ) -> None:
        """Score ``X[rows]`` (one key's rows, in order) into ``out`` and learn what the policy says.

        ``log_epsilon`` is the threshold (None: not set, nothing is flagged); ``explain``, if
        given, is called for every block with alerts, with the rows of ``out``
        they belong to.
        """
        if state.model.taught_blocks and rows.size > MAX_BLOCK_ROWS:
            for start in range(0, rows.size, MAX_BLOCK_ROWS):
                part = rows[start : start + MAX_BLOCK_ROWS]
                self.score_and_learn(state, X, labels, part, log_epsilon, out, explain)
            return
        group = X[rows]
        learnable = (labels[rows] < 0) | self.learn_labelled
        threshold = -math.inf if log_epsilon is None else log_epsilon
        if not state.model.taught_blocks:
            self._score_in_blocks(state, group, learnable, rows, threshold, out, explain)
            return
        before = list(state.pending)
        run = RunState(state.run_length, [-1 - k for k in range(len(before))])
        plan, values = first_plan(self, state, group, learnable, run, threshold)
        begin, passes = 0, 0
        while begin < rows.size:
            if passes == _MAX_PASSES:
                # Every pass settled little: finish the way that is cheapest then.
                state.pending = [source_vector(source, group, before) for source in run.pending]
                self._score_in_blocks(
                    state, group[begin:], learnable[begin:], rows[begin:], threshold, out, explain
                )
                return
            passes += 1
            begin, run, plan, values = self._settle(
                state,
                group,
                learnable,
                rows,
                begin,
                run,
                plan,
                values,
                before,
                threshold,
                out,
                explain,
            )
        state.pending = [source_vector(source, group, before) for source in run.pending]

    def _settle(
        self,
        state: KeyState,
        group: Array,
        learnable: BoolArray,
        rows: IntArray,
        begin: int,
        run: RunState,
        plan: TeachingPlan,
        values: Array,
        before: list[Array],
        threshold: float,
        out: Detections,
        explain: Explainer | None,
    ) -> tuple[int, RunState, TeachingPlan, Array]:
        """Score rows from ``begin`` on under ``plan``; commit those it got right.

        Rows up to the first one whose teaching differs from ``plan`` (that
        one included: its score only depends on the rows before it) are final:
        they are written to ``out`` and learned. Returns where to go on from,
        the policy's state there, and the plan (with its clipped values) the
        rest of the rows are scored under next.
        """
        model = state.model
        block_rows = group[begin:]
        taught, taught_mask, slots = taught_layout(plan, values, group, before)
        block = model.prequential_taught(block_rows, taught, taught_mask, slots)
        learned_before = state.learned + exclusive_cumsum(taught_mask.astype(np.int64))[slots]
        warm = learned_before < self.min_samples
        score = self.decide(block, threshold, warm)
        alert = ~warm & (score < threshold)
        replan = plan_teaching(
            run,
            alert,
            learnable[begin:],
            flagged=self.flagged,
            accept_after=self.accept_after,
            offset=begin,
        )
        new_values = self.clip_rows(block_rows, block, replan.clipped)
        low_rank = isinstance(model, GaussianModel) and model.low_rank
        tolerance = LOW_RANK_CLIP_TOLERANCE if low_rank else CLIP_TOLERANCE
        differs = plan.first_difference(
            replan, values, new_values, functools.partial(taught_scale, block), tolerance
        )
        if differs is not None:
            new_values = refine_replanned(
                model,
                block,
                plan,
                replan,
                values,
                new_values,
                block_rows,
                learned_before,
                differs,
                clip_sigma=self.clip_sigma,
            )
        settled = block_rows.shape[0] if differs is None else differs + 1
        # An acceptance discounts the history (acceptance.py): the rows after it are
        # scored against that model in the next pass, so the block ends there.
        accepted_at = min(
            (row - begin for row in replan.accepted if row - begin < settled), default=None
        )
        if accepted_at is not None:
            settled = accepted_at + 1
        cut = differs is not None or settled < block_rows.shape[0]
        done = rows[begin : begin + settled]
        out.log_p[done] = block.log_p[:settled]
        out.score[done], out.log_tail[done] = self.written_scores(
            block, score, alert, np.arange(settled)
        )
        out.distance_sq[done] = block.distance_sq[:settled]
        out.log_epsilon[done] = np.nan if threshold == -math.inf else threshold
        out.alert[done] = alert[:settled]
        out.warmup[done] = warm[:settled]
        out.n[done] = learned_before[:settled]
        if explain is not None and alert[:settled].any():
            explain(state, block_rows, block, alert[:settled], done, out)
        if cut:
            # Re-plan the settled rows alone: that gives the policy's state after them.
            replan_settled = plan_teaching(
                run,
                alert[:settled],
                learnable[begin : begin + settled],
                flagged=self.flagged,
                accept_after=self.accept_after,
                offset=begin,
            )
        else:
            replan_settled = replan
        taught, taught_mask, slots = taught_layout(
            replan_settled, new_values[:settled], group, before
        )
        if accepted_at is None:
            model.learn(taught[taught_mask])
        else:
            # The accepted pending rows follow the last settled row's own vector.
            at = int(slots[settled - 1]) + 1
            model.learn(taught[:at][taught_mask[:at]])
            accept_deviation(model, taught[at:], self.min_samples)
        state.learned += int(np.count_nonzero(taught_mask))
        end = replan_settled.end
        self.relearned += end.relearned
        state.run_length = end.run_length
        run = RunState(end.run_length, end.pending)
        if not cut:
            return begin + settled, run, replan, new_values
        return begin + settled, run, replan.after(settled - 1, run), new_values[settled:]

    def clip_rows(self, X: Array, block: ScoreBlock, clipped: BoolArray, first: int = 0) -> Array:
        """``X`` with each row marked ``clipped`` replaced by the vector it teaches clipped.

        Row ``i`` of ``X`` was scored as row ``first + i`` of ``block``. ``X``
        itself when no row is clipped (it is never changed).
        """
        hits = np.flatnonzero(clipped)
        if hits.size == 0:
            return X
        assert block.mean is not None
        out = X.copy()
        at = first + hits
        # All rows in one go; BlockScoring._clipped clips one row by the same function.
        out[hits] = clip_towards_mean(
            X[hits], block.mean[at], block.distance_sq[at], self.clip_sigma
        )
        return out
