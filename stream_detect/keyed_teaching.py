"""What a keyed bank's alerts teach: each key's policy state after its rows, and the learning.

After a round of :class:`~stream_detect.keyed_bank.KeyedBank`, a key whose
rows were cut at an alert (or scanned under a plan) has its learning
policy's state worked out from its alerts (:func:`teach_key`, a small state
machine per key, :func:`~stream_detect.teaching.plan_teaching`). What the
alert teaches is then learned after the scan's statistics before it: all
keys teaching one vector (or none) together (:class:`Lessons`,
:func:`learn_lessons`), bit for bit as each key alone; keys with accepted
alerts one by one, their history discounted first
(:func:`~stream_detect.acceptance.learn_accepted`). :func:`wind_down` lowers
the deviation count of keys that learned calm rows.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from stream_detect.acceptance import learn_accepted
from stream_detect.clipping import clip_towards_mean
from stream_detect.keyed_arrays import KeyedArrays
from stream_detect.learning import LearningPolicy
from stream_detect.model_interface import ScoreBlock
from stream_detect.segmented import Segments
from stream_detect.stats_for_many import learn_one_each
from stream_detect.teaching import RunState, plan_teaching

__all__ = ["Lessons", "learn_lessons", "teach_key", "wind_down"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]


class Lessons:
    """Keys whose last row scanned is learned (or not) alone, to be learned together.

    Per key: its slot, the row of the scan it ends at, whether that row is
    learned and whether clipped (a row not learned is never clipped).

    >>> lessons = Lessons()
    >>> lessons.add(slot=4, row=17, learned=False, clipped=True)
    >>> lessons.slots, lessons.rows, lessons.learned, lessons.clipped
    ([4], [17], [False], [False])
    """

    def __init__(self) -> None:
        self.slots: list[int] = []
        self.rows: list[int] = []
        self.learned: list[bool] = []
        self.clipped: list[bool] = []

    def add(self, slot: int, row: int, learned: bool, clipped: bool) -> None:
        """Key ``slot`` ends at scan row ``row``, which it learns (clipped) or not."""
        self.slots.append(slot)
        self.rows.append(row)
        self.learned.append(learned)
        self.clipped.append(learned and clipped)


def teach_key(
    bank: KeyedArrays,
    policy: LearningPolicy,
    slot: int,
    X: Array,
    learnable: BoolArray,
    alert: BoolArray,
    scan: Segments,
    block: ScoreBlock,
    first: int,
    lessons: Lessons,
    *,
    settled: bool,
) -> None:
    """The key's policy state after its rows ``X`` (rows ``first`` on of the scan).

    If ``settled``, the scan learned them as the policy does and its
    statistics after them stand; otherwise they are right up to the last,
    which is learned after the scan's statistics before it: here if it
    teaches more than one vector, else in ``lessons``, with other keys'.
    """
    before = bank.pending.get(slot, [])
    run = RunState(int(bank.run_length[slot]), [-1 - k for k in range(len(before))])
    plan = plan_teaching(
        run, alert, learnable, flagged=policy.flagged, accept_after=policy.accept_after
    )
    if not settled:
        last = X.shape[0] - 1
        accepted = plan.accepted.get(last, ())
        learned_before = int(np.count_nonzero(plan.learned[:last]))
        if not accepted:
            # One vector or none: learned with the other keys' (see learn_lessons).
            lessons.add(slot, first + last, bool(plan.learned[last]), bool(plan.clipped[last]))
            bank.learned[slot] += learned_before + int(plan.learned[last])
        else:
            vectors = []
            if plan.learned[last]:
                assert block.mean is not None
                at = slice(first + last, first + last + 1)
                vectors.append(
                    clip_towards_mean(
                        X[last:], block.mean[at], block.distance_sq[at], policy.clip_sigma
                    )[0]
                    if plan.clipped[last]
                    else X[last]
                )
            accepted_rows = np.array([X[i] if i >= 0 else before[-1 - i] for i in accepted])
            stats = bank.template.stats.copy()
            stats.n = float(scan.n[first + last])
            stats.mean = scan.mean[first + last].copy()
            stats.second = scan.second[first + last].copy()
            stats.learn(np.array(vectors).reshape(-1, X.shape[1]))
            # The history is discounted before the accepted rows (acceptance.py).
            learn_accepted(stats, accepted_rows, policy.min_samples)
            bank.n[slot], bank.mean[slot], bank.second[slot] = (
                stats.n,
                stats.mean,
                stats.second,
            )
            bank.learned[slot] += learned_before + len(vectors) + len(accepted_rows)
    bank.run_length[slot] = plan.end.run_length
    policy.relearned += plan.end.relearned
    pending = [X[i] if i >= 0 else before[-1 - i] for i in plan.end.pending]
    if pending:
        bank.pending[slot] = [np.array(p, dtype=np.float64) for p in pending]
    else:
        bank.pending.pop(slot, None)


def learn_lessons(
    bank: KeyedArrays,
    lessons: Lessons,
    X: Array,
    scan: Segments,
    block: ScoreBlock,
    clip_sigma: float,
) -> None:
    """Each key of ``lessons`` from the scan's statistics before its row, that row learned.

    Bit for bit what learning each key's row on its own gives
    (:func:`~stream_detect.stats_for_many.learn_one_each`).
    """
    if not lessons.slots:
        return
    at = np.array(lessons.rows, dtype=np.intp)
    n, mean, m2 = scan.n[at], scan.mean[at], scan.second[at]
    learned = np.array(lessons.learned, dtype=bool)
    if learned.any():
        rows = at[learned]
        taught = X[rows]
        clipped = np.array(lessons.clipped, dtype=bool)[learned]
        if clipped.any():
            assert block.mean is not None
            near = rows[clipped]
            taught[clipped] = clip_towards_mean(
                taught[clipped], block.mean[near], block.distance_sq[near], clip_sigma
            )
        decay = bank.template.stats.decay
        n[learned], mean[learned], m2[learned] = learn_one_each(
            n[learned], mean[learned], m2[learned], taught, decay
        )
    slots = np.array(lessons.slots, dtype=np.intp)
    bank.n[slots], bank.mean[slots], bank.second[slots] = n, mean, m2


def wind_down(bank: KeyedArrays, slots: IntArray, calm: NDArray[np.int64]) -> None:
    """Lower the deviation count by the calm rows learned; forget pending alerts at 0."""
    ended = slots[(bank.run_length[slots] > 0) & (bank.run_length[slots] <= calm)]
    bank.run_length[slots] = np.maximum(0, bank.run_length[slots] - calm)
    for slot in ended.tolist():
        bank.pending.pop(slot, None)
