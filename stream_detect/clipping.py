"""Clipped learning: the vector an alert teaches, and a close guess of a block's clipped vectors.

An alert that starts a deviation is learned pulled towards the mean until its
squared Mahalanobis distance is ``clip_sigma``² (:func:`clip_towards_mean`).
Each clipped vector depends on the model just before its row, so on every
vector clipped before it in the block: scoring a block under guessed clipped
vectors and correcting them takes one pass per link of that chain.
:func:`refine_clipped` shortens the chain: it corrects the statistics the
last pass saw at each clipped row for the vectors that have changed since,
and for the rows one of the two learns and the other does not (a weighted
replacement in the running sums, exact for the count, mean and m2 or
co-moment matrix), and iterates on the clipped rows alone. It only improves
the guess; the next pass still checks it. :func:`refine_replanned` asks it of
the rows a redrawn plan clips after the first row whose teaching changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from stream_detect.density import (
    Floor,
    diagonal_distance,
    floor_covariance,
    floor_variance,
    full_distance,
)
from stream_detect.gaussian_model import GaussianModel

if TYPE_CHECKING:
    from stream_detect.model_interface import Model, ScoreBlock
    from stream_detect.teaching import TeachingPlan

__all__ = ["clip_towards_mean", "refine_clipped", "refine_replanned", "taught_scale"]

Array = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

#: Most rounds of :func:`refine_clipped`: each one makes the guess a hundred or
#: more times closer (fewer when a block clips many rows of a model that has
#: learned few), and a round costs a small share of the pass it may save.
_MAX_ROUNDS = 16
#: A round that moves no clipped value by more than this share of its feature's
#: scale (|mean| + σ) ends the refinement: the guess is then far inside the
#: tolerance a pass checks it to (``teaching.CLIP_TOLERANCE``), and rounding
#: keeps the last bits moving.
_SETTLED = 1e-14


def clip_towards_mean(X: Array, mean: Array, distance_sq: Array, clip_sigma: float) -> Array:
    """Each row of ``X`` pulled towards its ``mean`` to a squared distance of ``clip_sigma``².

    A row already closer (or with an unknown distance) stays as it is.

    >>> clip_towards_mean(np.array([[10.0]]), np.array([[0.0]]), np.array([100.0]), 2.0)
    array([[2.]])
    """
    far = distance_sq > clip_sigma**2
    shrink = np.where(far, clip_sigma / np.sqrt(np.where(far, distance_sq, 1.0)), 1.0)
    out: Array = np.where(far[:, None], mean + shrink[:, None] * (X - mean), X)
    return out


def taught_scale(block: ScoreBlock, rows: IntArray) -> Array:
    """Per row of ``rows`` and feature, the size a clipped value is compared against: |mean| + σ.

    Two plans agree on a row's clipped vector when they differ by a tiny share
    of this (see :meth:`~stream_detect.teaching.TeachingPlan.first_difference`).
    """
    assert block.mean is not None
    scale: Array = np.abs(block.mean[rows])
    if block.spread is not None:
        spread = block.spread[rows]
        variance = spread if spread.ndim == 2 else np.diagonal(spread, 0, 1, 2)
        scale = scale + np.sqrt(variance)
    return scale


def refine_clipped(
    X: Array,
    used: Array,
    taught: Array,
    learned_before: NDArray[np.int64],
    n: Array,
    mean: Array,
    second: Array,
    changed: IntArray,
    clipped: IntArray,
    *,
    clip_sigma: float,
    decay: float,
    variance_floor: Floor,
    relative_floor: float,
    was_learned: BoolArray | None = None,
    is_learned: BoolArray | None = None,
    keys: IntArray | None = None,
) -> Array:
    """Better vectors for the ``clipped`` rows than a pass that learned ``used`` gave.

    ``n``, ``mean`` and ``second`` (m2 per feature, ``(k, d)``, or the
    co-moment matrix, ``(k, d, d)``, of a full covariance) are the statistics
    each of the ``k`` clipped rows was scored against when the rows learned
    ``used``; ``taught`` holds what the rows learn now, which differs at the
    rows ``changed``; ``learned_before`` counts the learned rows before each
    row as the pass learned them. A changed row was learned in the pass
    where ``was_learned`` says so and is now where ``is_learned`` does (both
    all True if not given); with a ``decay`` below 1 they must agree, since
    one row more or less would age every row before it. With ``keys`` (each
    row's key), the rows are many keys' and a clipped row only sees the
    changed rows of its own key. Returns ``taught``
    with the ``clipped`` rows (a subset of ``changed``) re-clipped under the
    corrected statistics.

    >>> X = np.array([[0.0], [2.0], [20.0], [0.0], [30.0]])
    >>> used = X.copy()
    >>> taught = X.copy(); taught[2] = 5.0  # row 2 is now learned clipped
    >>> n, mean, second = np.array([4.0]), np.array([[5.5]]), np.array([[283.0]])
    >>> out = refine_clipped(X, used, taught, np.arange(5), n, mean, second, np.array([2, 4]),
    ...                      np.array([4]), clip_sigma=2.0, decay=1.0, variance_floor=1e-9,
    ...                      relative_floor=0.0)
    >>> round(float(out[4, 0]), 6)  # rows 0..3 are 0, 2, 5, 0: 1.75 + 2 * sqrt(16.75 / 4)
    5.842676
    """
    taught = taught.copy()
    if clipped.size == 0:
        return taught
    full = second.ndim == 3
    earlier = changed[None, :] < clipped[:, None]
    if keys is not None:
        earlier &= keys[changed][None, :] == keys[clipped][:, None]
    weight = np.where(
        earlier,
        decay ** (learned_before[clipped][:, None] - learned_before[changed][None, :] - 1.0),
        0.0,
    )
    old_weight = weight if was_learned is None else weight * was_learned[None, :]
    new_weight = weight if is_learned is None else weight * is_learned[None, :]
    fixed_n = n + np.sum(new_weight - old_weight, axis=1)
    safe_n = np.where(fixed_n > 0, fixed_n, 1.0)[:, None]
    # Sums of deviations from the mean each clipped row saw: the rows learned
    # then sum to zero there, so the corrected sets' sums are what changed.
    # Each is a weighted sum over the changed rows, taken as matrix products of
    # the rows about one point near them all (so no digits cancel), moved to
    # each clipped row's mean after: sum w (v - m) = W v - (sum w) m, and the
    # same for the squares.
    point, changed_point = _points(mean, changed, clipped, keys)
    offset = mean - point
    # Values so far out that these sums leave the float range (or a corrected
    # covariance that is no longer positive definite) end the refinement with the
    # guess as it stands: it is only a guess, and the pass works out the exact one.
    with np.errstate(all="ignore"):
        old = _Sums(old_weight, used[changed] - changed_point, offset, full)
        for _ in range(_MAX_ROUNDS):
            new = _Sums(new_weight, taught[changed] - changed_point, offset, full)
            shift = new.first - old.first
            fixed_mean = mean + shift / safe_n
            if full:
                fixed_second = (
                    second + (new.second - old.second) - _outer(shift, shift) / safe_n[..., None]
                )
                cov = floor_covariance(
                    fixed_second / safe_n[..., None], fixed_mean, variance_floor, relative_floor
                )
                try:
                    distance_sq, _ = full_distance(X[clipped], fixed_mean, cov)
                except np.linalg.LinAlgError:
                    break
                variance = np.diagonal(cov, 0, 1, 2)
            else:
                fixed_second = np.maximum(
                    second + (new.second - old.second) - shift * shift / safe_n, 0.0
                )
                var = floor_variance(
                    fixed_second / safe_n, fixed_mean, variance_floor, relative_floor
                )
                distance_sq = diagonal_distance(X[clipped], fixed_mean, var)
                variance = var
            guess = clip_towards_mean(X[clipped], fixed_mean, distance_sq, clip_sigma)
            if not np.all(np.isfinite(guess)):
                break
            moved = np.abs(guess - taught[clipped])
            taught[clipped] = guess
            if np.all(moved <= _SETTLED * (np.abs(fixed_mean) + np.sqrt(variance))):
                break
    return taught


def refine_replanned(
    model: Model,
    block: ScoreBlock,
    plan: TeachingPlan,
    replan: TeachingPlan,
    used: Array,
    taught: Array,
    X: Array,
    learned_before: NDArray[np.int64],
    first: int,
    *,
    clip_sigma: float,
) -> Array:
    """``taught`` with the clipped rows after ``first`` guessed closer (:func:`refine_clipped`).

    Only for a Gaussian model; with a half-life, only while both plans
    learn the same rows from ``first`` on.
    """
    if not isinstance(model, GaussianModel) or plan.accepted or replan.accepted:
        return taught
    then, now = plan.learned[first:], replan.learned[first:]
    decay = model.stats.decay
    if decay != 1.0 and not np.array_equal(then, now):
        return taught
    clipped = np.flatnonzero(replan.clipped[first + 1 :]) + first + 1
    if clipped.size == 0:
        return taught
    # Rows learned in one plan only, or learned in both with other values.
    differs = (then != now) | (now & np.any(used[first:] != taught[first:], 1))
    differs[clipped - first] = True
    changed = np.flatnonzero(differs) + first
    n, mean, second = _statistics_before(model, block, used, plan.learned, clipped)
    return refine_clipped(
        X,
        used,
        taught,
        learned_before,
        n,
        mean,
        second,
        changed,
        clipped,
        clip_sigma=clip_sigma,
        decay=decay,
        variance_floor=model.variance_floor,
        relative_floor=model.relative_floor,
        was_learned=plan.learned[changed],
        is_learned=replan.learned[changed],
    )


def _statistics_before(
    model: GaussianModel, block: ScoreBlock, used: Array, learned: BoolArray, rows: IntArray
) -> tuple[Array, Array, Array]:
    """Count, mean and second moment of ``model`` just before each of ``rows`` (ascending).

    As the block saw them, learning ``used`` where ``learned``. The low-rank
    full model keeps no per-row statistics: the learned rows are replayed up
    to each of ``rows`` (a few per block), one batch update between two of them.
    """
    if block.before is not None:
        before = block.before
        return before.n[rows], before.mean[rows], before.second[rows]
    state = model.stats.copy()
    n = np.empty(rows.size)
    mean = np.empty((rows.size, state.d))
    second = np.empty((rows.size, *state.second.shape))
    done = 0
    for i, row in enumerate(rows.tolist()):
        state.learn(used[done:row][learned[done:row]])
        n[i], mean[i], second[i] = state.n, state.mean, state.second
        done = row
    return n, mean, second


def _points(
    mean: Array, changed: IntArray, clipped: IntArray, keys: IntArray | None
) -> tuple[Array, Array]:
    """The point the sums are taken about, for each clipped row and each changed row.

    One point for all (the first clipped row's mean); with ``keys``, one per
    key, so that no key's sums lose digits to another's far-off values. A
    changed row of a key without clipped rows weighs nothing; it gets any point.
    """
    if keys is None:
        return mean[0], mean[0]
    clipped_keys, first, inverse = np.unique(keys[clipped], return_index=True, return_inverse=True)
    points = mean[first]
    where = np.minimum(np.searchsorted(clipped_keys, keys[changed]), clipped_keys.size - 1)
    return points[inverse], points[where]


def _outer(a: Array, b: Array) -> Array:
    """Row-wise outer products: ``(k, d)`` and ``(k, d)`` to ``(k, d, d)``."""
    out: Array = a[:, :, None] * b[:, None, :]
    return out


class _Sums:
    """Weighted sums of vectors' deviations from each clipped row's mean.

    ``weight`` (k, c) weighs the ``c`` vectors ``values`` (given about a
    common point) for each of the ``k`` clipped rows, whose means sit at
    ``offset`` (k, d) from that point. ``first`` (k, d) is
    ``sum_c w (v_c - m_k)``; ``second`` the sum of their squares (k, d), or of
    their outer products (k, d, d) when ``full``.
    """

    def __init__(self, weight: Array, values: Array, offset: Array, full: bool) -> None:
        total = weight.sum(axis=1)[:, None]
        linear = weight @ values
        self.first: Array = linear - total * offset
        if full:
            d = values.shape[1]
            squares = (weight @ _outer(values, values).reshape(-1, d * d)).reshape(-1, d, d)
            cross = _outer(linear, offset)
            self.second: Array = (
                squares
                - cross
                - cross.transpose(0, 2, 1)
                + total[..., None] * _outer(offset, offset)
            )
        else:
            self.second = (
                weight @ np.square(values) - 2.0 * offset * linear + total * np.square(offset)
            )
