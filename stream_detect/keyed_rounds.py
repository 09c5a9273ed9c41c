"""Many keys' full-covariance models scored in rounds: the keys whose rows stay calm.

Keyed full-covariance models are one object per key
(:class:`~stream_detect.keyed_models.KeyedModels`), and
:meth:`~stream_detect.learning.LearningPolicy.score_and_learn` costs a few
dozen numpy calls per key and batch, however few rows the key has there: with
thousands of keys the calls, not the arithmetic, take the time. Most keys'
rows in a batch raise no alert, though, and then the policy has nothing to
decide: every learnable row is learned as it is.

:func:`score_calm_keys` takes a piece's keys in rounds (stacks of at most
:data:`ROUND_ELEMENTS` numbers per ``(rows, d, d)`` array): it finds every
row's statistics with one segmented scan
(:func:`~stream_detect.segmented.segmented_comoments`), scores all rows with
the model's own scoring, decides with the policy's own rule, and for each
key whose rows all stay calm writes the results and teaches the model. Below
:data:`~stream_detect.gaussian_model.LOW_RANK_FULL_FEATURES` features this is
the per-key path's arithmetic, row for row, so the results are the same bit
for bit. From there to :data:`MOST_FEATURES` the per-key path scores by
low-rank updates of one factorisation (:mod:`stream_detect.precision`) and a
round factorises each row's covariance directly: the two agree to rounding
times the conditioning of the covariance. On correlated noise of 16 and 32
features that was 1e-15 relative once a model had learned 2d events, 1e-9
before, and 5e-4 on its first d rows, whose covariances rest on the ridge
(warm-up rows: batch sizes do not agree closely there either).

A key goes the per-key way instead, all its rows, when its policy is in a
deviation (a run of alerts, pending rows), when a row alerts or the per-key
path's first plan would foresee an alert there (:mod:`stream_detect.first_plan`),
when its sums would cancel too many digits (the per-key scan would cut them
shorter), or when it has many rows in the piece (:func:`most_rows_per_key`).
So does every key of a model that is not a full Gaussian on plain running
moments of at most :data:`MOST_FEATURES` features: a half-life, or a river model.
"""

from __future__ import annotations

import math
from typing import TypeGuard

import numpy as np
from numpy.typing import NDArray

from stream_detect.detections import Detections
from stream_detect.first_plan import foreseeable, foreseen_alerts
from stream_detect.gaussian_model import LOW_RANK_FULL_FEATURES, GaussianModel
from stream_detect.keyed_models import KeyState
from stream_detect.learning import MAX_BLOCK_ROWS, LearningPolicy
from stream_detect.prequential import Prefix, chunk_limit, exclusive_cumsum
from stream_detect.segmented import segmented_comoments
from stream_detect.stats import RunningCovariance
from stream_detect.stats_for_many import learn_each_full

__all__ = [
    "MOST_FEATURES",
    "MOST_ROWS_PER_KEY",
    "ROUND_ELEMENTS",
    "most_rows_per_key",
    "score_calm_keys",
]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

#: Numbers in a round's (rows, d, d) stacks at most (8,192 rows of 8 features):
#: bounds a round's memory to some tens of MB.
ROUND_ELEMENTS = 1 << 19
#: A key with more rows in a piece goes the per-key way: its calls cost little
#: per row there, and among so many rows one alerts more often than not, which
#: would send it that way after a round spent on it.
MOST_ROWS_PER_KEY = 64
#: Features of the models rounds score at most: a round factorises every row's
#: covariance (d³), where the per-key path's low-rank updates cost d² a row.
MOST_FEATURES = 32


def most_rows_per_key(d: int) -> int:
    """Rows of a key a round takes at most, for models of ``d`` features.

    :data:`MOST_ROWS_PER_KEY`, and from
    :data:`~stream_detect.gaussian_model.LOW_RANK_FULL_FEATURES` features on
    fewer as d² grows: there a round's d³ per row meets the per-key path's d²
    per row and one call per key sooner.

    >>> most_rows_per_key(8), most_rows_per_key(16), most_rows_per_key(32)
    (64, 64, 16)
    """
    wide = max(d, LOW_RANK_FULL_FEATURES)
    return MOST_ROWS_PER_KEY * LOW_RANK_FULL_FEATURES**2 // wide**2


def score_calm_keys(
    policy: LearningPolicy,
    piece: list[tuple[str, IntArray]],
    states: list[KeyState],
    X: Array,
    labels: NDArray[np.int8],
    log_epsilon: float | None,
    out: Detections,
) -> list[int]:
    """Score and learn the keys of ``piece`` whose rows stay calm; the indices of the others.

    ``piece`` holds each key's rows of ``X`` (in order), ``states`` the
    keys' states, in the same order. The keys left (indices into
    ``piece``, ascending) have had nothing written or learned: the caller
    gives them to :meth:`LearningPolicy.score_and_learn`.
    """
    template = next((s.model for s in states if _plain_full(s.model)), None)
    if not _plain_full(template):
        return list(range(len(piece)))
    round_rows = ROUND_ELEMENTS // template.stats.d**2
    most = min(
        most_rows_per_key(template.stats.d), MAX_BLOCK_ROWS, round_rows, chunk_limit(template.stats)
    )
    rest: list[int] = []
    chosen: list[int] = []
    rows_chosen = 0
    for index, ((_, rows), state) in enumerate(zip(piece, states, strict=True)):
        if rows.size > most or not _calm(state, template):
            rest.append(index)
            continue
        if rows_chosen + rows.size > round_rows:
            rest += _round(policy, template, piece, states, chosen, X, labels, log_epsilon, out)
            chosen, rows_chosen = [], 0
        chosen.append(index)
        rows_chosen += rows.size
    if chosen:
        rest += _round(policy, template, piece, states, chosen, X, labels, log_epsilon, out)
    return sorted(rest)


def _plain_full(model: object) -> TypeGuard[GaussianModel]:
    """A full Gaussian of at most :data:`MOST_FEATURES` on running moments, no half-life."""
    return (
        type(model) is GaussianModel
        and model.full
        and model.stats.d <= MOST_FEATURES
        and model.prior is None
        and model.stats.decay == 1.0
    )


def _calm(state: KeyState, template: GaussianModel) -> bool:
    """Whether a key may join a round: no deviation going on, scored as ``template`` scores."""
    model = state.model
    if state.run_length or state.pending or not _plain_full(model):
        return False
    # Every key's model shares the floors' arrays; anything else is scored on its own.
    same_floor = model.variance_floor is template.variance_floor or (
        isinstance(model.variance_floor, float) and model.variance_floor == template.variance_floor
    )
    same_direction = model.direction is template.direction or (
        model.direction is not None
        and template.direction is not None
        and np.array_equal(model.direction, template.direction)
    )
    return same_floor and same_direction and model.relative_floor == template.relative_floor


def _round(
    policy: LearningPolicy,
    template: GaussianModel,
    piece: list[tuple[str, IntArray]],
    states: list[KeyState],
    chosen: list[int],
    X: Array,
    labels: NDArray[np.int8],
    log_epsilon: float | None,
    out: Detections,
) -> list[int]:
    """Score the keys ``chosen`` together; write and learn the calm ones, return the others."""
    groups = [piece[index][1] for index in chosen]
    lengths = np.array([rows.size for rows in groups])
    starts = exclusive_cumsum(lengths)
    key = np.repeat(np.arange(lengths.size), lengths)
    rows = np.concatenate(groups)
    values = X[rows]
    learnable = (labels[rows] < 0) | policy.learn_labelled
    keyed = [states[index] for index in chosen]
    moments = [_moments(state) for state in keyed]
    n0 = np.array([stats.n for stats in moments])
    mean0 = np.stack([stats.mean for stats in moments])
    second0 = np.stack([stats.second for stats in moments])
    counts = exclusive_cumsum(learnable.astype(np.int64))
    learned0 = np.array([state.learned for state in keyed], dtype=np.int64)
    learned_before = learned0[key] + counts - counts[starts][key]
    warm = learned_before < policy.min_samples
    threshold = -math.inf if log_epsilon is None else log_epsilon
    try:
        unsure = _foreseen(policy, template, values, key, n0, mean0, second0, warm, threshold)
        before, lost = segmented_comoments(values, learnable, starts, n0, mean0, second0)
        block = template.score_against(values, before)
    except np.linalg.LinAlgError:
        # A covariance the per-key path will report on its own terms.
        return chosen
    score = policy.decide(block, threshold, warm)
    alert = ~warm & (score < threshold)
    unsure |= lost | (np.bincount(key, alert.astype(np.float64), lengths.size) > 0)
    calm = np.flatnonzero(~unsure[key])
    done = rows[calm]
    out.log_p[done] = block.log_p[calm]
    out.score[done], out.log_tail[done] = policy.written_scores(block, score, alert, calm)
    out.distance_sq[done] = block.distance_sq[calm]
    out.log_epsilon[done] = np.nan if threshold == -math.inf else threshold
    out.alert[done] = False
    out.warmup[done] = warm[calm]
    out.n[done] = learned_before[calm]
    _learn(keyed, values, learnable & ~unsure[key], key)
    return [index for index, left in zip(chosen, unsure.tolist(), strict=True) if left]


def _foreseen(
    policy: LearningPolicy,
    template: GaussianModel,
    values: Array,
    key: IntArray,
    n0: Array,
    mean0: Array,
    second0: Array,
    warm: BoolArray,
    threshold: float,
) -> BoolArray:
    """The keys whose first plan on the per-key path would foresee an alert.

    That plan would score the rows under other teachings and learn them in
    other steps: the results would agree only to rounding, so such keys go
    that way (their rows are, as a rule, the alerts themselves).
    """
    keys = n0.size
    if not foreseeable(template, policy, threshold):
        return np.zeros(keys, bool)
    asked = np.flatnonzero(~warm & (n0 > 0)[key])
    if asked.size == 0:
        return np.zeros(keys, bool)
    owner = key[asked]
    now = Prefix(n0[owner], mean0[owner], second0[owner])
    foreseen = foreseen_alerts(template, values[asked], now, threshold)
    return np.bincount(owner, foreseen.astype(np.float64), keys) > 0


def _learn(keyed: list[KeyState], values: Array, taught: BoolArray, key: IntArray) -> None:
    """Teach each key its ``taught`` rows as its model's ``learn`` would, a row count at a time."""
    counts = np.bincount(key, taught.astype(np.float64), len(keyed)).astype(np.int64)
    order = np.flatnonzero(taught)
    at = exclusive_cumsum(counts)
    for count in np.unique(counts[counts > 0]).tolist():
        learners = np.flatnonzero(counts == count)
        rows = order[at[learners][:, None] + np.arange(count)[None, :]]
        moments = [_moments(keyed[k]) for k in learners.tolist()]
        n, mean, second = learn_each_full(
            np.array([stats.n for stats in moments]),
            np.stack([stats.mean for stats in moments]),
            np.stack([stats.second for stats in moments]),
            values[rows],
        )
        for k, stats in enumerate(moments):
            stats.n = float(n[k])
            stats.mean = mean[k].copy()
            stats.second = second[k].copy()
    for state, count in zip(keyed, counts.tolist(), strict=True):
        state.learned += count


def _moments(state: KeyState) -> RunningCovariance:
    """The running moments of a key in a round (whose model :func:`_plain_full` accepted)."""
    stats = getattr(state.model, "stats", None)
    assert isinstance(stats, RunningCovariance)
    return stats
