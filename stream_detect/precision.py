"""The full-covariance model scored one event at a time in O(d²): a running inverse.

Scoring row ``i`` of a block under the full model needs the squared
Mahalanobis distance and the log-determinant of the floored covariance
``A_i = S_i / n_i + diag(r_i)`` (:func:`~stream_detect.density.floor_covariance`).
Factorising ``A_i`` for every row costs d³ per event. :class:`RunningPrecision`
instead keeps the inverse ``H`` of ``G = S + κ K``, where ``K`` is the ridge
(times ``n``) at the last factorisation and ``κ`` the decay applied since:

* learning an event changes ``G`` by a scale and a rank-one term, so ``H`` and
  ``log det G`` follow by Sherman–Morrison and the matrix determinant lemma (d²);
* the ridge of the row being scored differs from ``κ K`` by a diagonal ``E``;
  ``n A_i = G + E``, and the distance is solved by iterative refinement
  preconditioned with ``H`` while ``log det(I + H E)`` is taken from its series.
  Both come with a rigorous error bound ``ρ ≥ ‖G^-½ E G^-½‖`` computed in O(d),
  and the inverse is refactorised from the moments whenever the bound is not
  small enough, or after ``refresh_every`` learned events so rounding in the
  updates cannot accumulate (d³ every d events is d² per event).

The results equal the direct factorisation of
:func:`~stream_detect.density.floor_covariance` to rounding (about 1e-12
relative, times the conditioning of the correlation matrix).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from stream_detect.density import (
    DEFAULT_RELATIVE_FLOOR,
    DEFAULT_VARIANCE_FLOOR,
    LOG_2PI,
    TRACE_RIDGE,
)
from stream_detect.stats import RunningCovariance, decay_factor

__all__ = ["PrecisionBlock", "RunningPrecision"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Above this bound on ``‖G^-½ E G^-½‖`` the inverse is refactorised rather than refined.
_MAX_RIDGE_DRIFT = 0.25
#: Relative error left in the squared distance by iterative refinement.
_DISTANCE_TOLERANCE = 1e-15
#: Absolute error allowed in the log-determinant from truncating its series.
_LOG_DET_TOLERANCE = 1e-12
#: A rank-one update that changes the inverse by more than this factor in some
#: direction cancels that many digits; the inverse is refactorised instead.
_MAX_UPDATE_GAIN = 1e3


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


class RunningPrecision:
    """Full-covariance running moments that score each event in O(d²).

    >>> from stream_detect.density import floor_covariance, full_distance
    >>> X = np.array([[1.0, 2.0], [2.0, 4.5], [3.0, 5.5], [4.0, 8.2]])
    >>> stats = RunningCovariance(2).learn(X)
    >>> p = RunningPrecision.from_moments(stats)
    >>> block = p.prequential(np.array([[2.0, 4.0]]), np.array([True]))
    >>> floored = floor_covariance(stats.cov, stats.mean)
    >>> direct, _ = full_distance(np.array([[2.0, 4.0]]), stats.mean, floored)
    >>> round(float(block.distance_sq[0]), 6), round(float(direct[0]), 6)
    (0.237548, 0.237548)
    """

    def __init__(
        self,
        d: int,
        half_life: float | None = None,
        variance_floor: float = DEFAULT_VARIANCE_FLOOR,
        relative_floor: float = DEFAULT_RELATIVE_FLOOR,
        refresh_every: int | None = None,
    ) -> None:
        self.decay = decay_factor(half_life)
        self.variance_floor = variance_floor
        self.relative_floor = relative_floor
        self.refresh_every = max(d, 64) if refresh_every is None else refresh_every
        self.n = 0.0
        self.mean: Array = np.zeros(d)
        self.second: Array = np.zeros((d, d))
        #: Inverse of G = second + ridge_scale * ridge, or None until it is needed.
        self._inverse: Array | None = None
        self._log_det = 0.0
        self._ridge: Array = np.zeros(d)
        self._ridge_scale = 1.0
        self._updates = 0

    @classmethod
    def from_moments(
        cls,
        stats: RunningCovariance,
        variance_floor: float = DEFAULT_VARIANCE_FLOOR,
        relative_floor: float = DEFAULT_RELATIVE_FLOOR,
        refresh_every: int | None = None,
    ) -> RunningPrecision:
        """Start from the state of ``stats`` (copied; ``stats`` does not change)."""
        out = cls(stats.d, stats.half_life, variance_floor, relative_floor, refresh_every)
        out.n = stats.n
        out.mean = stats.mean.copy()
        out.second = np.array(stats.second, dtype=np.float64, copy=True)
        return out

    @property
    def d(self) -> int:
        """Number of features."""
        return int(self.mean.shape[0])

    def copy(self) -> RunningPrecision:
        """An independent copy, inverse included."""
        out = RunningPrecision(
            self.d, None, self.variance_floor, self.relative_floor, self.refresh_every
        )
        out.decay = self.decay
        out.n, out.mean, out.second = self.n, self.mean.copy(), self.second.copy()
        out._inverse = None if self._inverse is None else self._inverse.copy()
        out._log_det, out._ridge = self._log_det, self._ridge.copy()
        out._ridge_scale, out._updates = self._ridge_scale, self._updates
        return out

    def learn(self, X: Array) -> None:
        """Learn the rows of ``X`` in order (Welford, and a rank-one update of the inverse)."""
        for x in np.asarray(X, dtype=np.float64):
            self._update(x)

    def prequential(self, X: Array, learn: BoolArray) -> PrecisionBlock:
        """Score each row against everything learned before it; this state does not change."""
        X = np.asarray(X, dtype=np.float64)
        block = PrecisionBlock(X.shape[0], self.d)
        state = self.copy()
        for i, x in enumerate(X):
            block.mean[i] = state.mean
            if state.n > 0:
                state._score(x, block, i)
            if learn[i]:
                state._update(x)
        return block

    def _scaled_ridge(self) -> Array:
        """``n`` times the ridge :func:`floor_covariance` adds to the current covariance."""
        diag = np.maximum(np.diagonal(self.second), 0.0)
        mean_trace = float(diag.sum()) / (self.n * self.d)
        ridge = (
            self.variance_floor
            + self.relative_floor * np.square(self.mean)
            + TRACE_RIDGE * mean_trace
        )
        out: Array = self.n * ridge
        return out

    def _refactor(self) -> None:
        """Invert ``n A`` afresh from the moments (d³)."""
        self._ridge = self._scaled_ridge()
        self._ridge_scale = 1.0
        self._updates = 0
        matrix = self.second + np.diag(self._ridge)
        chol = np.linalg.cholesky(matrix)
        chol_inverse = np.linalg.solve(chol, np.eye(self.d))
        inverse = chol_inverse.T @ chol_inverse
        self._inverse = 0.5 * (inverse + inverse.T)
        self._log_det = 2.0 * float(np.sum(np.log(np.diagonal(chol))))

    def _update(self, x: Array) -> None:
        n = self.decay * self.n + 1.0
        delta = x - self.mean
        weight = self.decay * self.n / n
        self.mean = self.mean + delta / n
        if self.decay != 1.0:
            self.second *= self.decay
        self.second += weight * np.outer(delta, delta)
        self.n = n
        if self._inverse is None:
            return
        self._updates += 1
        if self._updates >= self.refresh_every or weight == 0.0:
            self._inverse = None
            return
        inverse = self._inverse
        if self.decay != 1.0:
            inverse /= self.decay
            self._log_det += self.d * math.log(self.decay)
            self._ridge_scale *= self.decay
        solved = inverse @ delta
        denominator = 1.0 + weight * float(delta @ solved)
        if denominator > _MAX_UPDATE_GAIN:
            self._inverse = None
            return
        inverse -= (weight / denominator) * np.outer(solved, solved)
        self._log_det += math.log(denominator)

    def _score(self, x: Array, block: PrecisionBlock, row: int) -> None:
        if self._inverse is None:
            self._refactor()
        drift, bound = self._drift()
        if bound > _MAX_RIDGE_DRIFT:
            self._refactor()
            drift, bound = self._drift()
        inverse = self._inverse
        assert inverse is not None
        log_det_correction = self._log_det_correction(inverse, drift, bound)
        if log_det_correction is None:
            self._refactor()
            inverse = self._inverse
            assert inverse is not None
            drift, bound = self._drift()
            log_det_correction = 0.0
        dev = x - self.mean
        solved = inverse @ dev
        if bound > 0.0:
            # Refinement with the inverse as preconditioner gains a factor of
            # ``bound`` per step on (G + E) w = dev.
            steps = math.ceil(math.log(_DISTANCE_TOLERANCE) / math.log(bound)) if bound < 1 else 0
            for _ in range(steps):
                solved = inverse @ (dev - drift * solved)
        log_det = self._log_det + log_det_correction - self.d * math.log(self.n)
        terms = self.n * dev * solved
        distance_sq = float(terms.sum())
        block.distance_sq[row] = distance_sq
        block.log_p[row] = -0.5 * (distance_sq + log_det + self.d * LOG_2PI)
        block.contributions[row] = terms

    def _drift(self) -> tuple[Array, float]:
        """Ridge now minus the ridge in the inverse, and a bound on its relative size."""
        drift = self._scaled_ridge() - self._ridge_scale * self._ridge
        if not np.any(drift):
            return drift, 0.0
        assert self._inverse is not None
        magnitude = np.abs(drift)
        # G dominates diag(kept ridge), and H^½ |E| H^½ has trace sum |E_j| H_jj.
        relative = float(np.max(magnitude / (self._ridge_scale * self._ridge)))
        traced = float(magnitude @ np.diagonal(self._inverse))
        return drift, min(relative, traced)

    def _log_det_correction(self, inverse: Array, drift: Array, bound: float) -> float | None:
        """``log det(I + H E)`` to within the tolerance, or None if the series is too slow."""
        if bound == 0.0:
            return 0.0
        diagonal = np.diagonal(inverse)
        first = float(drift @ diagonal)
        spread = float(np.abs(drift) @ diagonal)
        # The eigenvalues mu of H E obey |mu| <= bound and sum |mu| <= spread.
        if bound * spread / 2.0 <= _LOG_DET_TOLERANCE:
            return first
        second = float(drift @ (np.square(inverse) @ drift))
        remainder = bound * second / (3.0 * (1.0 - bound))
        if remainder > _LOG_DET_TOLERANCE:
            return None
        return first - 0.5 * second
