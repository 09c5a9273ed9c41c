"""What each row of a key's block teaches its model, given which rows raised alerts.

The learning policy (see :mod:`stream_detect.learning`) is a small state
machine per key: a deviation count that rises by one per alert and falls by
one per calm row, and the alerts of the current deviation still pending.
:func:`plan_teaching` runs it over a block whose alerts are known and says, per
row, what the model learns there: the row as it is, the row clipped towards the
mean, nothing, and the pending rows of a deviation accepted at that row
(learned after the key's history is discounted: :mod:`stream_detect.acceptance`).

Scoring a block needs the plan (a row is scored against what the rows before
it taught) and the plan needs the scores (they decide the alerts). The engine
guesses a plan, scores, plans again from those scores and repeats while the
two differ; :meth:`TeachingPlan.first_difference` says where they do. Only
alert rows and the calm rows that wind a deviation down are visited one at a
time, so a block without alerts costs a few numpy calls. :func:`taught_layout`
lays a plan out as the vectors it teaches, in order, for the model to score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from stream_detect.prequential import exclusive_cumsum

__all__ = ["RunState", "TeachingPlan", "plan_teaching", "source_vector", "taught_layout"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

#: Two plans agree on a clipped value that differs by less than this share of
#: the row's scale: the learned statistics then agree to rounding.
CLIP_TOLERANCE = 1e-13
#: The same for the full model's low-rank path, whose scores are exact to about
#: 1e-12 times the conditioning of the covariance (``precision.py``): two passes
#: that factorise at different rows agree on a clipped value only that closely.
LOW_RANK_CLIP_TOLERANCE = 1e-9


@dataclass
class RunState:
    """The policy's memory of one key: the deviation count and its pending alerts.

    ``pending`` names rows: ``i >= 0`` is row ``i`` of the key's rows being
    scored, ``-1 - k`` the ``k``-th pending vector the key had before them.
    """

    run_length: int = 0
    pending: list[int] = field(default_factory=list)
    #: Pending rows learned because their deviation was accepted.
    relearned: int = 0


@dataclass
class TeachingPlan:
    """What each row of a block teaches, in order; the block starts at row ``offset``.

    ``learned[i]``: row ``offset + i`` teaches a vector at its own place (itself, or
    clipped when ``clipped[i]``); ``accepted[i]``: the pending rows learned
    right after row ``i`` (a deviation accepted there), as :class:`RunState`
    names them. ``end`` is the policy's state after the last row.
    """

    learned: BoolArray
    clipped: BoolArray
    accepted: dict[int, tuple[int, ...]]
    end: RunState
    offset: int = 0

    @classmethod
    def as_is(cls, learnable: BoolArray, state: RunState, offset: int = 0) -> TeachingPlan:
        """The first guess: every learnable row teaches itself, nothing is accepted."""
        return cls(learnable.copy(), np.zeros(learnable.size, bool), {}, state, offset)

    def first_difference(
        self,
        other: TeachingPlan,
        values: Array,
        other_values: Array,
        scale: Callable[[IntArray], Array],
        tolerance: float = CLIP_TOLERANCE,
    ) -> int | None:
        """First row (counted from ``offset``) whose teaching differs between two plans, or None.

        Both plans must start at the same row. ``values`` and ``other_values``
        hold the vectors each plan's clipped rows teach; they agree when within
        ``tolerance`` (:data:`CLIP_TOLERANCE`) of ``scale(rows)`` (per row and
        feature; asked only for the rows both plans clip).
        """
        differs = (self.learned != other.learned) | (self.clipped != other.clipped)
        both = np.flatnonzero(self.clipped & other.clipped)
        if both.size:
            gap = np.abs(values[both] - other_values[both])
            far = np.any(gap > tolerance * scale(both), axis=1)
            differs[both[far]] = True
        for row in set(self.accepted) | set(other.accepted):
            if self.accepted.get(row) != other.accepted.get(row):
                differs[row - self.offset] = True
        rows = np.flatnonzero(differs)
        return int(rows[0]) if rows.size else None

    def after(self, row: int, state: RunState) -> TeachingPlan:
        """The plan of the rows after local row ``row``, starting from ``state``."""
        start = self.offset + row + 1
        accepted = {r: rows for r, rows in self.accepted.items() if r >= start}
        return TeachingPlan(
            self.learned[row + 1 :], self.clipped[row + 1 :], accepted, state, start
        )


def plan_teaching(
    state: RunState,
    alert: BoolArray,
    learnable: BoolArray,
    *,
    flagged: str,
    accept_after: int,
    offset: int = 0,
) -> TeachingPlan:
    """Run the policy over rows whose alerts are known; return what each row teaches.

    A calm learnable row teaches itself and lowers the count (at 0 the pending
    alerts are forgotten). A learnable alert while the count is at
    ``accept_after`` (a deviation accepted as the new normal) teaches itself;
    otherwise it raises the count, teaches itself clipped if it starts a
    deviation and ``flagged`` is ``clip``, joins the last ``accept_after``
    pending rows, and when the count reaches ``accept_after`` those are all
    learned right after it. ``flagged = "learn"`` teaches every learnable row
    as it is and keeps no count. Rows that are not learnable change nothing.
    The rows are numbered from ``offset`` in ``accepted`` and ``pending``.

    >>> alert = np.array([False, True, True, False, False])
    >>> plan = plan_teaching(RunState(), alert, np.ones(5, bool), flagged="clip", accept_after=2)
    >>> plan.learned.tolist(), plan.clipped.tolist(), plan.accepted, plan.end.run_length
    ([True, True, False, True, True], [False, True, False, False, False], {2: (1, 2)}, 0)
    """
    if flagged == "learn":
        return TeachingPlan.as_is(learnable, state, offset)
    learned = learnable.copy()
    clipped = np.zeros(alert.size, bool)
    accepted: dict[int, tuple[int, ...]] = {}
    calm_before = np.concatenate(([0], np.cumsum(learnable & ~alert)))
    run, pending, relearned = state.run_length, list(state.pending), state.relearned
    position = 0
    for row in np.flatnonzero(learnable & alert).tolist():
        calm = int(calm_before[row] - calm_before[position])
        if calm:
            run = max(0, run - calm)
            if run == 0:
                pending = []
        position = row + 1
        if accept_after and run >= accept_after:
            continue
        run += 1
        learned[row] = flagged == "clip" and run == 1
        clipped[row] = learned[row]
        if accept_after:
            pending = [*pending, offset + row][-accept_after:]
            if run >= accept_after:
                accepted[offset + row] = tuple(pending)
                relearned += len(pending)
                pending = []
    calm = int(calm_before[-1] - calm_before[position])
    if calm:
        run = max(0, run - calm)
        if run == 0:
            pending = []
    return TeachingPlan(learned, clipped, accepted, RunState(run, pending, relearned), offset)


def source_vector(source: int, group: Array, before: list[Array]) -> Array:
    """The vector a :class:`RunState` source names (a row of ``group``, or one of ``before``)."""
    vector: Array = group[source] if source >= 0 else before[-1 - source]
    return vector


def taught_layout(
    plan: TeachingPlan, values: Array, group: Array, before: list[Array]
) -> tuple[Array, BoolArray, IntArray]:
    """The vectors ``plan`` teaches in order, which are learned, and each row's place among them.

    Row ``i`` sits at ``slots[i]`` holding ``values[i]`` (learned if the plan
    says so); the pending rows a deviation accepted at row ``i`` follow it.
    """
    rows = values.shape[0]
    if not plan.accepted:
        return values, plan.learned, np.arange(rows)
    extra = np.zeros(rows, np.intp)
    for row, sources in plan.accepted.items():
        extra[row - plan.offset] = len(sources)
    slots = np.arange(rows) + exclusive_cumsum(extra)
    taught = np.empty((rows + int(extra.sum()), values.shape[1]))
    learned = np.zeros(taught.shape[0], bool)
    taught[slots] = values
    learned[slots] = plan.learned
    for row, sources in plan.accepted.items():
        at = int(slots[row - plan.offset]) + 1
        taught[at : at + len(sources)] = [source_vector(s, group, before) for s in sources]
        learned[at : at + len(sources)] = True
    return taught, learned, slots
