"""The plan a block is first scored under: its alerts foreseen from the model as the block starts.

Scoring a block needs its teaching plan and the plan needs the scores (see
:mod:`stream_detect.teaching`). Guessing that every row teaches itself costs
a second pass over any block with an alert: the first pass finds the alerts,
the second scores the rows after them under the clipped vectors they teach.
Under the default tail rule the alerts can be foreseen for a few whole-block
numpy calls, without the pass: a row can only alert if its tail, against
the model as it stands, may reach the threshold (the cheap bound of
:meth:`~stream_detect.prior.DeferredTails.in_doubt` with the prior; the χ²
quantile of the squared distance for the full covariance), and the model
moves little within a block, so those rows are, as a rule, the block's
alerts. Their clipped vectors are then found as :mod:`stream_detect.clipping`
finds them after a pass, from the statistics each would be scored against
if every row taught itself, summed for those rows alone.

This is only a guess, checked as every plan is: the first pass scores the
block under it and keeps the rows up to the first that it got wrong, so the
results are those of any other first plan. A wrong guess costs the pass it
would have saved. Anything the guess does not cover (another rule, a
half-life, the full model's low-rank path, directions, a deviation accepted
within the block) starts from the plan in which every row teaches itself.
"""

from __future__ import annotations

import math
from typing import TypeGuard

import numpy as np
from numpy.typing import NDArray

from stream_detect.block_scoring import BlockScoring
from stream_detect.clipping import refine_clipped
from stream_detect.density import gaussian_score
from stream_detect.gaussian_model import GaussianModel
from stream_detect.keyed_models import KeyState
from stream_detect.prequential import Prefix, exclusive_cumsum
from stream_detect.prior import DeferredTails, fisher_statistic_at
from stream_detect.teaching import RunState, TeachingPlan, plan_teaching

__all__ = ["first_plan", "foreseeable", "foreseen_alerts", "statistics_taught_as_is"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]


def first_plan(
    policy: BlockScoring,
    state: KeyState,
    group: Array,
    learnable: BoolArray,
    run: RunState,
    threshold: float,
) -> tuple[TeachingPlan, Array]:
    """The plan to score ``group`` under first, and the vectors its rows teach.

    ``state`` is the key's model and policy state before the block, ``run``
    the policy's state, ``threshold`` the log ε alerts are decided against.
    Falls back to :meth:`TeachingPlan.as_is` with ``group`` itself wherever
    the alerts cannot be foreseen cheaply (see the module docstring).

    >>> from stream_detect.learning import LearningPolicy
    >>> from stream_detect.models import build_model
    >>> from stream_detect.settings import DetectorSettings
    >>> policy = LearningPolicy(DetectorSettings(), min_samples=3, rule="tail")
    >>> from stream_detect.prior import NormalInverseGammaPrior
    >>> state = KeyState(build_model("diagonal", ("x",), prior=NormalInverseGammaPrior()))
    >>> state.model.learn(np.array([[0.0], [1.0]] * 5)); state.learned = 10
    >>> X = np.array([[0.4], [50.0], [0.6]])
    >>> plan, values = first_plan(policy, state, X, np.ones(3, bool), RunState(), -13.8)
    >>> plan.clipped.tolist(), round(float(values[1, 0]), 6)
    ([False, True, False], 3.356493)
    """
    as_is = TeachingPlan.as_is(learnable, run), group
    model = state.model
    if not (foreseeable(model, policy, threshold) and model.stats.n > 0):
        return as_is
    stats = model.stats
    now = Prefix(np.array([stats.n]), stats.mean[None], stats.second[None])
    try:
        alert = foreseen_alerts(model, group, now, threshold)
    except np.linalg.LinAlgError:
        return as_is  # a covariance the pass will report on its own terms
    learned_before = state.learned + exclusive_cumsum(learnable.astype(np.int64))
    alert &= learned_before >= policy.min_samples
    if not alert.any():
        return as_is
    plan = plan_teaching(
        run, alert, learnable, flagged=policy.flagged, accept_after=policy.accept_after
    )
    if plan.accepted:
        return as_is
    clipped = np.flatnonzero(plan.clipped)
    if not clipped.size:
        return plan, group
    n, mean, second = statistics_taught_as_is(model, group, learnable, clipped)
    changed = np.flatnonzero((learnable != plan.learned) | plan.clipped)
    values = refine_clipped(
        group,
        group,
        group,
        learned_before,
        n,
        mean,
        second,
        changed,
        clipped,
        clip_sigma=policy.clip_sigma,
        decay=1.0,
        variance_floor=model.variance_floor,
        relative_floor=model.relative_floor,
        was_learned=learnable[changed],
        is_learned=plan.learned[changed],
    )
    return plan, values


def foreseeable(model: object, policy: BlockScoring, threshold: float) -> TypeGuard[GaussianModel]:
    """Whether ``model``'s alerts under ``policy`` and ``threshold`` can be foreseen (the module).

    >>> from stream_detect.learning import LearningPolicy
    >>> from stream_detect.settings import DetectorSettings
    >>> policy = LearningPolicy(DetectorSettings(), min_samples=3, rule="tail")
    >>> foreseeable(GaussianModel(2, full=False), policy, -13.8), foreseeable(None, policy, -13.8)
    (True, False)
    """
    return (
        policy.rule == "tail"
        and policy.flagged in ("clip", "exclude")
        and threshold > -math.inf
        and isinstance(model, GaussianModel)
        and not model.low_rank
        and model.direction is None
        and model.stats.decay == 1.0
    )


def foreseen_alerts(model: GaussianModel, X: Array, now: Prefix, threshold: float) -> BoolArray:
    """The rows whose tail, against the model's statistics ``now``, may reach ``threshold``.

    ``now`` holds one set of statistics for every row, or one per row (many
    keys' models). With the prior, the bound on the combined Student-t tails;
    without (the full covariance), the χ² tail of the squared Mahalanobis distance.
    """
    alert = np.zeros(X.shape[0], bool)
    if model.prior is not None:
        location, scale, dof = model.prior.predictive(now, model.scale_floor)
        tails = DeferredTails((X - location) / scale, dof, np.zeros(X.shape[0], bool))
        alert[tails.in_doubt(threshold)] = True
        return alert
    count = now.n.reshape(-1, *(1,) * (now.second.ndim - 1))
    mean, spread = now.mean, now.second / count
    if now.n.size == 1:
        mean, spread = mean[0], spread[0]
    scored = gaussian_score(X, mean, spread, model.variance_floor, model.relative_floor)
    # Distances below the χ² quantile at the threshold (less a margin) cannot alert.
    return ~(scored.distance_sq < fisher_statistic_at(threshold, X.shape[1]))


def statistics_taught_as_is(
    model: GaussianModel, X: Array, learnable: BoolArray, rows: IntArray
) -> tuple[Array, Array, Array]:
    """Count, mean and m2 (or co-moments) before each of ``rows``, each learnable row taught as is.

    Summed about the model's mean, where what it learned before sums to zero,
    as a pass sums them (see :meth:`stream_detect.stats.RunningMoments.prequential`).
    """
    stats = model.stats
    y = X - stats.mean
    weight = learnable.astype(np.float64)
    weighted = weight[:, None] * y
    count = stats.n + _sums_before(weight, rows)
    sum_y = _sums_before(weighted, rows)
    mean_y = sum_y / count[:, None]
    mean: Array = stats.mean + mean_y
    if model.full:
        sum_yy = _sums_before(weighted[:, :, None] * y[:, None, :], rows)
        second: Array = stats.second + sum_yy - sum_y[:, :, None] * mean_y[:, None, :]
        return count, mean, second
    sum_yy = _sums_before(weighted * y, rows)
    return count, mean, np.maximum(stats.second + sum_yy - sum_y * mean_y, 0.0)


def _sums_before(values: Array, stops: IntArray) -> Array:
    """``values[:stop].sum(axis=0)`` for each of ``stops`` (ascending), in one pass.

    Only the k sums are formed (np.add.reduceat between consecutive stops,
    accumulated), not a prefix sum per row.

    >>> _sums_before(np.arange(6.0), np.array([0, 2, 6])).tolist()
    [0.0, 1.0, 15.0]
    """
    last = int(stops[-1])
    if last == 0:
        return np.zeros((stops.size, *values.shape[1:]))
    starts = np.concatenate(([0], stops[:-1]))
    pieces = np.add.reduceat(values[:last], starts, axis=0)
    # reduceat gives the element at a start for an empty piece, which sums to 0.
    pieces[np.append(starts[1:] == starts[:-1], False)] = 0.0
    out: Array = np.cumsum(pieces, axis=0)
    return out
