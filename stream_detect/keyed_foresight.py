"""Alerts foreseen for the keys that have many rows in a mixed-key batch.

The bank (:mod:`stream_detect.keyed_bank`) settles each key's rows up to its
first learnable alert per round: a key with many rows and a few alerts among
them costs a round per alert, and every round costs a scan. For a key with
at least :data:`FORESIGHT_ROWS` rows in the batch, the alerts are foreseen
as for a single model (:func:`~stream_detect.first_plan.first_plan`) and the
first round scans its rows under that plan. The plan is checked as the
single model checks it: the key's rows settle up to the first row whose
teaching differs from the plan (that row included), usually all of them,
and the rest go on to the next round. Keys with fewer rows would gain
little: their alerts seldom have rows after them within the batch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from stream_detect.clipping import clip_towards_mean, taught_scale
from stream_detect.first_plan import first_plan
from stream_detect.keyed_arrays import KeyedArrays
from stream_detect.learning import LearningPolicy
from stream_detect.model_interface import ScoreBlock
from stream_detect.teaching import CLIP_TOLERANCE, RunState, TeachingPlan, plan_teaching

__all__ = ["FORESIGHT_ROWS", "KeyPlan", "foresee", "taught_rows"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

#: Rows of one key in a batch from which its alerts are foreseen before the first round.
FORESIGHT_ROWS = 64


@dataclass
class KeyPlan:
    """The plan one key's rows are first scanned under.

    ``rows`` are the key's rows (indices into the batch, in event order),
    ``values`` what each teaches where ``plan`` says it learns, ``run`` the
    policy's state before them.
    """

    rows: IntArray
    plan: TeachingPlan
    values: Array
    run: RunState

    def first_difference(
        self,
        policy: LearningPolicy,
        X: Array,
        learnable: BoolArray,
        alert: BoolArray,
        block: ScoreBlock,
        first: int,
    ) -> int | None:
        """The first of the key's rows whose teaching, given the scan's ``alert``, is not planned.

        ``X``, ``learnable`` and ``alert`` are the key's rows as scanned, at
        rows ``first`` on of ``block``. None when the plan was right throughout.
        """
        replan = plan_teaching(
            self.run, alert, learnable, flagged=policy.flagged, accept_after=policy.accept_after
        )
        values = X.copy()
        hits = np.flatnonzero(replan.clipped)
        if hits.size:
            assert block.mean is not None
            values[hits] = clip_towards_mean(
                X[hits],
                block.mean[first + hits],
                block.distance_sq[first + hits],
                policy.clip_sigma,
            )
        scale = functools.partial(_scale_from, block, first)
        return self.plan.first_difference(replan, self.values, values, scale, CLIP_TOLERANCE)


def foresee(
    policy: LearningPolicy,
    bank: KeyedArrays,
    X: Array,
    labels: NDArray[np.int8],
    keys: list[str],
    group: IntArray,
    rows: IntArray,
    threshold: float,
) -> dict[int, KeyPlan]:
    """The plans of the keys (indices into ``keys``) with many ``rows`` and foreseen alerts.

    ``group`` holds each row's key. A key whose plan is to learn every
    learnable row as it is gets none: the rounds already scan it so.
    """
    counts = np.bincount(group, minlength=len(keys))
    plans: dict[int, KeyPlan] = {}
    for g in np.flatnonzero(counts >= FORESIGHT_ROWS).tolist():
        key_rows = rows[group == g]
        state = bank[keys[g]]
        learnable = (labels[key_rows] < 0) | policy.learn_labelled
        run = RunState(state.run_length, [-1 - k for k in range(len(state.pending))])
        plan, values = first_plan(policy, state, X[key_rows], learnable, run, threshold)
        if plan.clipped.any() or not np.array_equal(plan.learned, learnable):
            plans[g] = KeyPlan(key_rows, plan, values, run)
    return plans


def taught_rows(X: Array, teach: BoolArray, plans: dict[int, KeyPlan]) -> tuple[Array, BoolArray]:
    """What each row of ``X`` teaches and whether it is learned, under the keys' plans.

    ``teach`` says which rows learn without a plan (the learnable ones).
    """
    if not plans:
        return X, teach
    taught = X.copy()
    teach = teach.copy()
    for key_plan in plans.values():
        taught[key_plan.rows] = key_plan.values
        teach[key_plan.rows] = key_plan.plan.learned
    return taught, teach


def _scale_from(block: ScoreBlock, first: int, rows: IntArray) -> Array:
    return taught_scale(block, first + rows)
