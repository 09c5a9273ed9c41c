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

from stream_detect.clipping import refine_clipped, taught_scale
from stream_detect.first_plan import foreseeable, foreseen_alerts, statistics_taught_as_is
from stream_detect.keyed_arrays import KeyedArrays
from stream_detect.learning import LearningPolicy
from stream_detect.model_interface import ScoreBlock
from stream_detect.prequential import Prefix
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
        values = policy.clip_rows(X, block, replan.clipped, first)
        scale = functools.partial(_scale_from, block, first)
        return self.plan.first_difference(replan, self.values, values, scale, CLIP_TOLERANCE)


def foresee(
    policy: LearningPolicy,
    bank: KeyedArrays,
    X: Array,
    labels: NDArray[np.int8],
    slots: IntArray,
    group: IntArray,
    rows: IntArray,
    threshold: float,
) -> dict[int, KeyPlan]:
    """The plans of the keys with many ``rows`` and foreseen alerts, by key index.

    ``group`` holds each row's key, an index into ``slots`` (the keys' slots
    in ``bank``). What :func:`~stream_detect.first_plan.first_plan` does for
    one model, for all these keys at once: the rows that may alert against
    their key's model as the batch starts, the policy's plan for them, and
    the clipped vectors, refined together (each key's rows apart). A key
    whose plan is to learn every learnable row as it is gets none.
    """
    model = bank.template
    if not foreseeable(model, policy, threshold):
        return {}
    counts = np.bincount(group, minlength=slots.size)
    busy = np.flatnonzero((counts >= FORESIGHT_ROWS) & (bank.n[slots] > 0))
    if not busy.size:
        return {}
    # The busy keys' rows, key after key, each key's in event order.
    taken = np.flatnonzero(np.isin(group, busy))
    taken = taken[np.argsort(group[taken], kind="stable")]
    X_rows = X[rows[taken]]
    key = np.searchsorted(busy, group[taken])
    where = slots[busy][key]
    now = Prefix(bank.n[where], bank.mean[where], bank.second[where])
    alert = foreseen_alerts(model, X_rows, now, threshold)
    learnable = (labels[rows[taken]] < 0) | policy.learn_labelled
    starts = np.searchsorted(key, np.arange(busy.size))
    within: NDArray[np.int64] = np.cumsum(learnable, dtype=np.int64) - learnable
    learned_before = bank.learned[where] + within - within[starts][key]
    alert &= learned_before >= policy.min_samples
    plans: dict[int, KeyPlan] = {}
    refined: list[tuple[int, int, int]] = []
    ends = np.append(starts[1:], key.size)
    for k in np.unique(key[alert]).tolist():
        lo, hi = int(starts[k]), int(ends[k])
        slot = int(slots[busy[k]])
        pending = len(bank.pending.get(slot, []))
        run = RunState(int(bank.run_length[slot]), [-1 - j for j in range(pending)])
        plan = plan_teaching(
            run,
            alert[lo:hi],
            learnable[lo:hi],
            flagged=policy.flagged,
            accept_after=policy.accept_after,
        )
        if not plan.accepted:
            plans[int(busy[k])] = KeyPlan(rows[taken[lo:hi]], plan, X_rows[lo:hi], run)
            if plan.clipped.any():
                refined.append((int(busy[k]), lo, slot))
    if refined:
        _refine(policy, bank, plans, refined, X_rows, learnable, learned_before, key)
    return plans


def _refine(
    policy: LearningPolicy,
    bank: KeyedArrays,
    plans: dict[int, KeyPlan],
    refined: list[tuple[int, int, int]],
    X_rows: Array,
    learnable: BoolArray,
    learned_before: NDArray[np.int64],
    key: IntArray,
) -> None:
    """The clipped vectors of the ``refined`` keys' plans (key, first row, slot), in place.

    From the statistics each clipped row would see if every row taught itself,
    corrected for the rows clipped or left out before it in its key's plan
    (:func:`~stream_detect.clipping.refine_clipped`, all keys in one call).
    """
    learned = learnable.copy()
    clipped_rows, changed_rows, n, mean, second = [], [], [], [], []
    for g, lo, slot in refined:
        plan = plans[g].plan
        hi = lo + plan.learned.size
        learned[lo:hi] = plan.learned
        clipped = np.flatnonzero(plan.clipped)
        stats = statistics_taught_as_is(
            bank.model_at(slot), X_rows[lo:hi], learnable[lo:hi], clipped
        )
        n.append(stats[0])
        mean.append(stats[1])
        second.append(stats[2])
        clipped_rows.append(lo + clipped)
        changed_rows.append(lo + np.flatnonzero((learnable[lo:hi] != plan.learned) | plan.clipped))
    changed = np.concatenate(changed_rows)
    values = refine_clipped(
        X_rows,
        X_rows,
        X_rows,
        learned_before,
        np.concatenate(n),
        np.concatenate(mean),
        np.concatenate(second),
        changed,
        np.concatenate(clipped_rows),
        clip_sigma=policy.clip_sigma,
        decay=1.0,
        variance_floor=bank.template.variance_floor,
        relative_floor=bank.template.relative_floor,
        was_learned=learnable[changed],
        is_learned=learned[changed],
        keys=key,
    )
    for g, lo, _ in refined:
        plans[g].values = values[lo : lo + plans[g].plan.learned.size]


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
