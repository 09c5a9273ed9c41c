"""The full-covariance model scored in O(d²) per event: low-rank updates of one factorisation.

Row ``i`` of a block is scored under ``A_i = S_i / n_i + diag(r_i)``, the
floored covariance of everything learned before it
(:func:`~stream_detect.density.floor_covariance`). Factorising every ``A_i``
costs d³ per event. Here the rows are taken in runs, and each run factorises
only once, at its first row ``s``:

* learning an event adds a rank-one term to the co-moment matrix (and, with a
  half-life, scales it), so ``n_i A_i = κ_i (G + U_i U_iᵀ + E_i)`` with
  ``G`` the first row's co-moment plus the run's smallest ridge (factorised),
  ``U_i`` the (scaled) deviations learned in the run before row ``i`` and
  ``E_i >= 0`` the diagonal by which row ``i``'s ridge exceeds the smallest;
* the capacitance matrices ``I + U_iᵀ G⁻¹ U_i`` of successive rows are the
  leading blocks of one matrix, so one Cholesky factor of it serves every row
  of the run (Woodbury's identity, evaluated for all rows with a handful of
  matrix products: about ``d² + run·d + run²`` operations per row);
* ``E_i`` adds, while it is small (``sum_j E_ij (G_i⁻¹)_jj <= 1e-6``), its
  first-order terms to the distance and the log-determinant, exact to the
  square of that bound; otherwise the features where it matters get an exact
  second Woodbury step of their own (``m`` such features: m³ per row);
* a run ends at the first row whose learned updates have grown the covariance
  enough to cancel digits, and the next run factorises afresh from the exact
  moments (so rounding never accumulates across runs).

A feature whose co-moments are all exactly zero (constant so far) is scored
on its own, so its fast-moving ridge never ends a run. The results equal the
direct factorisation to rounding (about 1e-12 relative, times the
conditioning of the correlation matrix).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from stream_detect.density import (
    DEFAULT_RELATIVE_FLOOR,
    DEFAULT_VARIANCE_FLOOR,
    LOG_2PI,
    TRACE_RIDGE,
    Floor,
)
from stream_detect.prequential import exclusive_cumsum
from stream_detect.stats import RunningCovariance, RunningMoments

__all__ = ["PrecisionBlock", "default_run_rows", "score_full_prequential"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Error allowed in a log-determinant (absolute) and a squared distance
#: (relative) from leaving out the ridge drift of the features below it.
_LOG_DET_TOLERANCE = 1e-12
#: Relative size of the ridge drift up to which first-order corrections are
#: exact to its square (1e-12).
_FIRST_ORDER_SPREAD = 1e-6
#: A run ends before its updates can grow the covariance by this factor in some
#: direction (the Woodbury difference would cancel that many digits).
_MAX_GROWTH = 1e2
#: Bounds the dynamic range of the decay inside one run, in half-lives.
_MAX_HALF_LIVES_PER_RUN = 30.0


class PrecisionBlock:
    """Scores of a block of rows: ``log_p``, ``distance_sq``, ``mean`` and ``contributions``.

    ``mean[i]`` is the mean that scored row ``i``; ``contributions[i]`` the
    per-feature terms ``dev_j (A^-1 dev)_j`` of its squared distance. Rows
    scored before anything was learned hold NaN scores.
    """

    def __init__(self, rows: int, d: int) -> None:
        self.log_p: Array = np.full(rows, np.nan)
        self.distance_sq: Array = np.full(rows, np.nan)
        self.mean: Array = np.zeros((rows, d))
        self.contributions: Array = np.zeros((rows, d))


def default_run_rows(d: int) -> int:
    """Rows per factorisation: enough to share its d³ cost, few enough to keep run² small.

    Measured by ``bench/full_covariance.py``: about 4 d rows up to d = 32, d rows beyond.

    >>> default_run_rows(8), default_run_rows(32), default_run_rows(500)
    (64, 128, 500)
    """
    return min(max(64, 4 * d), max(128, d))


def score_full_prequential(
    stats: RunningCovariance,
    X: Array,
    learn: BoolArray,
    *,
    variance_floor: Floor = DEFAULT_VARIANCE_FLOOR,
    relative_floor: float = DEFAULT_RELATIVE_FLOOR,
    direction: NDArray[np.int8] | None = None,
    run_rows: int | None = None,
    targets: Array | None = None,
) -> PrecisionBlock:
    """Score each row against everything learned before it; ``stats`` does not change.

    Row ``i`` of ``X`` is learned after it is scored if ``learn[i]``; the
    vector scored there is ``targets[i]`` (default ``X[i]``): a row that
    teaches a clipped copy of itself is scored as it came. ``direction``
    (optional, per feature: +1 only high values count, -1 only low, 0 both)
    makes a deviation on a feature's ignored side of row ``i``'s
    mean count as zero; learning always uses the raw rows. ``run_rows`` caps
    the rows that share one factorisation.

    >>> from stream_detect.density import floor_covariance, full_distance
    >>> X = np.array([[1.0, 2.0], [2.0, 4.5], [3.0, 5.5], [4.0, 8.2]])
    >>> stats = RunningCovariance(2).learn(X)
    >>> block = score_full_prequential(stats, np.array([[2.0, 4.0]]), np.array([True]))
    >>> floored = floor_covariance(stats.cov, stats.mean)
    >>> direct, _ = full_distance(np.array([[2.0, 4.0]]), stats.mean, floored)
    >>> round(float(block.distance_sq[0]), 6), round(float(direct[0]), 6)
    (0.237548, 0.237548)
    """
    X = np.asarray(X, dtype=np.float64)
    rows, d = X.shape
    learn = np.asarray(learn, dtype=bool)
    block = PrecisionBlock(rows, d)
    limit = default_run_rows(d) if run_rows is None else max(1, run_rows)
    if stats.decay < 1.0 and stats.half_life is not None:
        limit = min(limit, max(1, int(_MAX_HALF_LIVES_PER_RUN * stats.half_life)))
    scored = X if targets is None else np.asarray(targets, dtype=np.float64)
    if scored.shape != X.shape:
        raise ValueError(f"targets have shape {scored.shape}, expected {X.shape}")
    prepared = _prepare(stats, X, scored, learn, direction, (variance_floor, relative_floor))
    state = stats
    start, size = 0, limit
    while start < rows:
        if state.n <= 0:
            # Nothing to score against: the first learned row starts the model.
            block.mean[start] = state.mean
            stop = start + 1
        else:
            stop = _score_run(state, prepared, start, min(rows, start + size), block)
        # A run cut short (the covariance still grows fast) suggests a short next one.
        size = min(limit, 2 * (stop - start)) if stop - start < size else min(limit, 2 * size)
        if stop < rows:
            state = state.copy() if state is stats else state
            state.learn(X[start:stop][learn[start:stop]])
        start = stop
    return block


class _Prepared(NamedTuple):
    """What every row of a block needs, whatever run it falls in."""

    n: Array
    mean: Array
    learned_before: Array
    weight: Array
    delta: Array
    dev: Array
    ridge: Array


def _prepare(
    stats: RunningCovariance,
    X: Array,
    targets: Array,
    learn: BoolArray,
    direction: NDArray[np.int8] | None,
    floors: tuple[Floor, float],
) -> _Prepared:
    """Count, mean, deviations and ``n`` times the ridge before each row (O(d) per row).

    ``delta`` is what a learned row adds (from ``X``), ``dev`` what is scored (from ``targets``).

    They depend only on which rows are learned, not on where runs end: the
    per-feature moments of the diagonal model give them exactly.
    """
    d = stats.d
    diagonal = RunningMoments(d, stats.half_life)
    diagonal.n, diagonal.mean = stats.n, stats.mean
    diagonal.second = np.diagonal(stats.second).copy()
    before = diagonal.prequential(X, learn)
    n, mean = before.n, before.mean
    delta = X - mean
    dev = delta if targets is X else targets - mean
    if direction is not None:
        below = dev < 0.0
        dev = np.where(((direction > 0) & below) | ((direction < 0) & ~below), 0.0, dev)
    # Welford adds weight * delta deltaᵀ (weight = decay n / (decay n + 1)) after
    # scaling everything before by the decay.
    weight = np.where(learn, stats.decay * n / (stats.decay * n + 1.0), 0.0)
    variance_floor, relative_floor = floors
    safe_n = np.where(n > 0, n, 1.0)
    mean_trace = np.maximum(before.second.sum(axis=1), 0.0) / (safe_n * d)
    per_feature = (
        variance_floor + relative_floor * np.square(mean) + (TRACE_RIDGE * mean_trace)[:, None]
    )
    learned_before = exclusive_cumsum(learn.astype(np.float64))
    return _Prepared(n, mean, learned_before, weight, delta, dev, n[:, None] * per_feature)


def _score_run(
    state: RunningCovariance, prepared: _Prepared, start: int, stop: int, block: PrecisionBlock
) -> int:
    """Score rows ``start:stop`` under one factorisation; return the first row left unscored."""
    d = state.d
    run = slice(start, stop)
    n, mean, dev = prepared.n[run], prepared.mean[run], prepared.dev[run]
    # kappa[i]: the decay applied to the run's first co-moment by row i; in its
    # units, learning row k adds weight_k / kappa[k + 1] * delta deltaᵀ.
    kappa = state.decay ** (prepared.learned_before[run] - prepared.learned_before[start])
    scale = prepared.weight[run] / (kappa * state.decay)
    updates = prepared.delta[run] * np.sqrt(scale)[:, None]
    ridge = prepared.ridge[run]
    active = np.any(state.second != 0.0, axis=0) | np.any(updates[:-1] != 0.0, axis=0)
    # A feature without co-moments is its own 1x1 block: variance = ridge / n.
    alone = ~active
    contributions = np.zeros_like(dev)
    log_det = np.zeros(dev.shape[0])
    if np.any(alone):
        alone_ridge = ridge[:, alone] / n[:, None]
        contributions[:, alone] = np.square(dev[:, alone]) / alone_ridge
        log_det += np.sum(np.log(alone_ridge), axis=1)
    end = int(dev.shape[0])
    if np.any(active):
        everything = bool(np.all(active))
        scored = _woodbury(
            state.second if everything else state.second[np.ix_(active, active)],
            (ridge if everything else ridge[:, active]) / kappa[:, None],
            updates if everything else updates[:, active],
            dev if everything else dev[:, active],
        )
        end = scored.end
        sub = slice(0, end)
        factor = (n / kappa)[sub, None]
        if everything:
            contributions[sub] = factor * scored.terms
        else:
            contributions[sub][:, active] = factor * scored.terms
        size = int(active.sum())
        log_det[sub] += scored.log_det + size * np.log(kappa[sub] / n[sub])
    distance_sq = contributions[:end].sum(axis=1)
    out = slice(start, start + end)
    block.mean[out] = mean[:end]
    block.contributions[out] = contributions[:end]
    block.distance_sq[out] = distance_sq
    block.log_p[out] = -0.5 * (distance_sq + log_det[:end] + d * LOG_2PI)
    return start + end


class _RunScores(NamedTuple):
    """What :func:`_woodbury` finds for the first ``end`` rows of a run."""

    end: int
    terms: Array
    log_det: Array


def _woodbury(second: Array, ridge: Array, updates: Array, dev: Array) -> _RunScores:
    """Solve ``(G + U_i U_iᵀ + E_i) w_i = dev_i`` and find its log det for each row ``i``.

    ``G = second + diag(K)`` with ``K`` the smallest ridge of the run per
    feature; ``U_i`` holds the update rows before ``i``; ``E_i = diag(ridge[i]
    - K) >= 0``. Rows from the first whose updates grew the covariance past
    :data:`_MAX_GROWTH` are left out (``end``).
    """
    rows, d = dev.shape
    floor = ridge.min(axis=0)
    chol = np.linalg.cholesky(second + np.diag(floor))
    whiten = np.linalg.solve(chol, np.eye(d))
    log_det = np.full(rows, 2.0 * float(np.sum(np.log(np.diagonal(chol)))))
    white_updates = updates @ whiten.T
    growth = 1.0 + exclusive_cumsum(np.einsum("ij,ij->i", white_updates, white_updates))
    # Rows past the growth bound start a run of their own: leave them out before
    # their updates can overflow the capacitance matrix.
    grown = ~(growth <= _MAX_GROWTH)
    grown[0] = False
    if np.any(grown):
        rows = int(np.argmax(grown))
        ridge, dev, log_det = ridge[:rows], dev[:rows], log_det[:rows]
        white_updates = white_updates[:rows]
    cap_chol = np.linalg.cholesky(np.eye(rows) + white_updates @ white_updates.T)
    cap_inverse = np.linalg.solve(cap_chol, np.eye(rows))
    log_det += exclusive_cumsum(2.0 * np.log(np.diagonal(cap_chol)))
    # G_i⁻¹ = G⁻¹ - sum over k < i of downdates[k] downdates[k]ᵀ.
    downdates = cap_inverse @ (white_updates @ whiten)

    def apply(vectors: Array) -> Array:
        """Row ``i`` of the result is ``G_i⁻¹ vectors[i]`` (``G_i = G + U_i U_iᵀ``)."""
        white = vectors @ whiten.T
        projected = np.triu(cap_inverse @ (white_updates @ white.T), 1)
        out: Array = (white - (cap_inverse.T @ projected).T @ white_updates) @ whiten
        return out

    solved = apply(dev)
    drift = ridge - floor
    inverse_diagonal = np.einsum("ij,ij->j", whiten, whiten) - exclusive_cumsum(
        np.square(downdates)
    )
    influence = drift * inverse_diagonal
    # sum_j drift_j (G_i⁻¹)_jj bounds the drift's relative size; while it is
    # small, first-order terms leave errors of its square.
    spread = influence.sum(axis=1)
    if float(spread.max(initial=0.0)) <= _FIRST_ORDER_SPREAD:
        log_det += spread
        # dev w = dev G_i⁻¹ dev - (G_i⁻¹ dev)ᵀ E_i (G_i⁻¹ dev), feature by feature.
        return _RunScores(rows, dev * solved - drift * np.square(solved), log_det)
    # Leaving out the drift of feature j changes log det by at most drift_j (G_i⁻¹)_jj
    # and the distance by that factor: features above the tolerance are solved exactly.
    exact = np.flatnonzero(np.any(influence > _LOG_DET_TOLERANCE / d, axis=0))
    if exact.size:
        root = np.sqrt(drift[:, exact])
        picked = whiten[:, exact]
        block = picked.T @ picked - exclusive_cumsum(
            downdates[:, exact, None] * downdates[:, None, exact]
        )
        # det(I + B E) = det(I + E^½ B E^½), which is symmetric positive definite.
        capacitance = np.eye(exact.size) + root[:, :, None] * block * root[:, None, :]
        small_chol = np.linalg.cholesky(capacitance)
        log_det += 2.0 * np.sum(np.log(np.diagonal(small_chol, axis1=1, axis2=2)), axis=1)
        inner = np.linalg.solve(capacitance, (root * solved[:, exact])[:, :, None])[:, :, 0]
        spread_out = np.zeros_like(solved)
        spread_out[:, exact] = root * inner
        solved = solved - apply(spread_out)
    return _RunScores(rows, dev * solved, log_det)
