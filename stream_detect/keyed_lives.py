"""A segment whose keys outnumber ``max_keys``: evictions first, then each model's life scored.

:func:`~stream_detect.keyed_models.pieces` cuts such a segment where the
event-by-event order of evictions could differ from a key-at-a-time scan. Which
keys are evicted, and when, depends on the keys alone, never on scores, so
:func:`score_lives` first admits every piece's keys into the bank (the same
slots, evictions and recency as scoring piece by piece) and only then scores.
A *life* is one model's stay in the bank: a key's model from the segment's
start or from its admission, to its eviction or the segment's end. A life's
rows in one piece are scanned from what its rows in the pieces before left,
exactly as piece by piece; lives are scored apart from one another (a key's
results never depend on the others scanned with it), so the rows of every
life's first piece are scanned together, then those of every life's second
piece, and so on. When keys take turns and are evicted before they come back
(``--max-keys`` too small), that is one scan for the whole segment instead of
one per piece of a few rows: the results are the same, bit for bit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from stream_detect.detections import Detections
from stream_detect.explanations import Explainer
from stream_detect.learning import LearningPolicy

if TYPE_CHECKING:
    from stream_detect.keyed_bank import KeyedBank

__all__ = ["score_lives"]

Array = NDArray[np.float64]
IntArray = NDArray[np.intp]


def score_lives(
    bank: KeyedBank,
    policy: LearningPolicy,
    X: Array,
    labels: NDArray[np.int8],
    keys: list[str],
    cut: list[tuple[int, int]],
    log_epsilon: float | None,
    out: Detections,
    explain: Explainer | None,
) -> None:
    """Score the pieces ``cut`` of ``keys`` against ``bank`` as piece after piece would.

    The bank must hold at most ``max_keys`` keys, so a piece's new keys evict
    only keys that have no row in the piece.
    """
    evicted_before, in_warmup_before = bank.evicted, bank.evicted_in_warmup
    start_key_of = list(bank._key_of)
    start_learned = bank.learned.copy()
    start_taken = np.zeros(len(start_key_of), bool)
    life_in: dict[int, int] = {}  # slot -> the life in it now
    life_key: list[str] = []
    life_slot: list[int] = []
    first_state: list[tuple[float, Array, Array, int, int, list[Array]]] = []
    pieces_seen: list[int] = []
    ended_lives: list[int] = []
    ended_learned: list[int] = []  # of keys evicted without a row in the segment
    row_life = np.empty(len(keys), np.intp)
    row_level = np.empty(len(keys), np.intp)
    for begin, end in cut:
        distinct, slots, group = bank.admit(keys[begin:end])
        lives = np.empty(len(distinct), np.intp)
        for i, (key, slot) in enumerate(zip(distinct, slots.tolist(), strict=True)):
            life = life_in.get(slot)
            if life is not None and life_key[life] == key:
                lives[i] = life
                continue
            if life is not None:
                ended_lives.append(life)
            elif slot < len(start_key_of) and not start_taken[slot]:
                start_taken[slot] = True
                if start_key_of[slot] is not None and start_key_of[slot] != key:
                    ended_learned.append(int(start_learned[slot]))
            # A new life: the key's model from the segment's start, or a fresh one.
            life = life_in[slot] = len(life_key)
            life_key.append(key)
            life_slot.append(slot)
            pending = [p.copy() for p in bank.pending.get(slot, [])]
            first_state.append(
                (
                    float(bank.n[slot]),
                    bank.mean[slot].copy(),
                    bank.second[slot].copy(),
                    int(bank.learned[slot]),
                    int(bank.run_length[slot]),
                    pending,
                )
            )
            pieces_seen.append(0)
            lives[i] = life
        levels = np.array([pieces_seen[life] for life in lives.tolist()], np.intp)
        for life in lives.tolist():
            pieces_seen[life] += 1
        row_life[begin:end] = lives[group]
        row_level[begin:end] = levels[group]
    assert len(ended_lives) + len(ended_learned) == bank.evicted - evicted_before
    scratch = _bank_of_lives(bank, first_state)
    names = [str(life) for life in range(len(first_state))]
    every = np.arange(len(first_state), dtype=np.intp)
    start, stop = cut[0][0], cut[-1][1]
    for level in range(max(pieces_seen)):
        rows = start + np.flatnonzero(row_level[start:stop] == level)
        scratch.score_rows(
            policy, X, labels, names, every, row_life[rows], rows, log_epsilon, out, explain
        )
    # The lives the segment ends with take their place in the bank.
    slots = np.fromiter(life_in.keys(), np.intp, count=len(life_in))
    lives = np.fromiter(life_in.values(), np.intp, count=len(life_in))
    bank.n[slots] = scratch.n[lives]
    bank.mean[slots] = scratch.mean[lives]
    bank.second[slots] = scratch.second[lives]
    bank.learned[slots] = scratch.learned[lives]
    bank.run_length[slots] = scratch.run_length[lives]
    for slot, life in life_in.items():
        taught = scratch.pending.get(life)
        if taught:
            bank.pending[slot] = taught
        else:
            bank.pending.pop(slot, None)
    ended = scratch.learned[np.array(ended_lives, np.intp)]
    below = np.count_nonzero(ended < bank.min_samples)
    below += sum(learned < bank.min_samples for learned in ended_learned)
    bank.evicted_in_warmup = in_warmup_before + int(below)


def _bank_of_lives(
    bank: KeyedBank, states: list[tuple[float, Array, Array, int, int, list[Array]]]
) -> KeyedBank:
    """A bank holding one slot per life, named by its number, each in its first state."""
    scratch = type(bank)(
        len(states),
        bank.template,
        initial_learned=bank.initial_learned,
        min_samples=bank.min_samples,
    )
    scratch._resize(len(states))
    names = [str(i) for i in range(len(states))]
    scratch._slots = dict(zip(names, range(len(states)), strict=True))
    scratch._key_of[:] = names
    for slot, (n, mean, second, learned, run_length, pending) in enumerate(states):
        scratch.n[slot] = n
        scratch.mean[slot] = mean
        scratch.second[slot] = second
        scratch.learned[slot] = learned
        scratch.run_length[slot] = run_length
        if pending:
            scratch.pending[slot] = pending
    scratch.mark_seen(np.arange(len(states), dtype=np.intp))
    return scratch
