"""A weak Normal–Inverse-Gamma prior per feature: calibrated tails from the first event on.

A Gaussian fitted to a handful of events, or to a feature that has been
constant so far, calls the next different value impossible (log p of -1e14).
With a Normal–Inverse-Gamma prior on each feature's mean and variance the
prediction for the next event is a Student t whose degrees of freedom grow
with the evidence: heavy-tailed while little is known, the Gaussian in the
limit. After ``n`` events with mean ``x̄`` and sum of squared deviations
``m2``, the prior (μ0, κ0, α0, β0) becomes

    κ = κ0 + n,   μ = (κ0 μ0 + n x̄) / κ,   α = α0 + n / 2,
    β = β0 + m2 / 2 + κ0 n (x̄ - μ0)² / (2κ),

and the next value ``x`` has ``t = (x - μ) / s`` Student-t distributed with
ν = 2α and ``s² = β (κ + 1) / (α κ)``. :meth:`NormalInverseGammaPrior.log_tails`
returns each feature's two-sided log tail (0 before any event: the prior
alone knows nothing of the data's scale) and their combination by Fisher's
method, ``log P(χ²_2d ≥ -2 Σ log p_j)``: a tail probability that means the
same whatever ``d``, the stream, or how much has been learned.

The default prior is weak (κ0 = 1e-3, α0 = 1, β0 = 1e-6): it is outweighed by
the first event, and only matters while a feature has shown no spread.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from stream_detect.errors import ConfigError
from stream_detect.gamma_tails import chi2_log_sf
from stream_detect.prequential import Prefix

__all__ = ["DeferredTails", "NormalInverseGammaPrior", "PredictiveTails", "fisher_statistic_at"]

#: log(π/2): twice -log of the bound 2φ(0) = 2/√(2π) on a two-sided tail at zero.
_LOG_HALF_PI = math.log(math.pi / 2.0)
#: Relative margin by which a row's floor must clear log ε for its exact tail to be
#: skipped: far above the rounding of either (about 1e-10 relative).
_CLEARANCE = 1e-6
#: Relative margin of the coarse bound of :meth:`DeferredTails.in_doubt` below the
#: critical statistic: far above the rounding of either bound.
_COARSE_MARGIN = 1e-9
#: Largest |t| a tail is taken at. A value constant so far and then 1e150 away
#: (the largest a stream admits) has a t whose square passes the float range;
#: held here, squares summed over features stay finite, and the tail of a value
#: farther out is the tail at this |t|: a finite score that still alerts.
_LARGEST_T = 1e150

Array = NDArray[np.float64]


@dataclass(frozen=True)
class PredictiveTails:
    """Per-row tails: ``feature_log_p`` (B, d) two-sided, ``log_p`` (B,) combined."""

    feature_log_p: Array
    log_p: Array


@dataclass(frozen=True)
class NormalInverseGammaPrior:
    """The prior (μ0, κ0, α0, β0), the same for every feature.

    Examples
    --------
    Ten equal values, then a different one: rare, but not impossible (the
    first event, with nothing learned, is not judged at all).

    >>> from stream_detect.stats import RunningMoments
    >>> X = np.array([[5.0]] * 10 + [[6.0]])
    >>> before = RunningMoments(1).prequential(X)
    >>> tails = NormalInverseGammaPrior().log_tails(X, before)
    >>> round(float(tails.log_p[-1]), 2), round(float(tails.log_p[0]), 2)
    (-23.21, 0.0)
    """

    mean: float = 0.0
    kappa: float = 1e-3
    alpha: float = 1.0
    beta: float = 1e-6

    def __post_init__(self) -> None:
        for key in ("kappa", "alpha", "beta"):
            value = getattr(self, key)
            if not (isinstance(value, float | int) and value > 0.0 and np.isfinite(value)):
                raise ConfigError(f"prior {key}", value, "a finite number > 0")

    def predictive(
        self, before: Prefix, scale_floor: Array | None = None
    ) -> tuple[Array, Array, Array]:
        """Location, scale and degrees of freedom (each (B, d)) of the next event's t.

        ``scale_floor`` (per feature) is the least scale (the integer features'
        rounding, :mod:`stream_detect.quantisation`).
        """
        n = before.n[:, None]
        kappa = self.kappa + n
        location = (self.kappa * self.mean + n * before.mean) / kappa
        alpha = self.alpha + n / 2.0
        shift = before.mean - self.mean
        with np.errstate(over="ignore"):
            beta = (
                self.beta + before.second / 2.0 + self.kappa * n * np.square(shift) / (2.0 * kappa)
            )
            scale = np.sqrt(beta * (kappa + 1.0) / (alpha * kappa))
            # A huge spread times a huge count passes the float range in beta * (kappa + 1)
            # although the scale does not: those entries are taken in another order.
            wide = np.isinf(scale) & np.isfinite(beta)
            if wide.any():
                scale[wide] = np.sqrt(beta / alpha * ((kappa + 1.0) / kappa))[wide]
        # Most streams have no floored feature: a (B, d) maximum with zeros costs 1% of a run.
        if scale_floor is not None and scale_floor.any():
            scale = np.maximum(scale, scale_floor)
        dof = np.broadcast_to(2.0 * alpha, location.shape)
        return location, scale, dof

    def log_tails(self, X: Array, before: Prefix) -> PredictiveTails:
        """Each row's tails under the posterior of the events ``before`` it.

        ``before`` holds the statistics just before each row, as
        :meth:`stream_detect.stats.RunningMoments.prequential` gives them.
        """
        tails = self.deferred_tails(X, before)
        feature_log_p = tails.feature_log_p(np.arange(tails.rows))
        return PredictiveTails(feature_log_p, tails.combine(feature_log_p))

    def deferred_tails(
        self, X: Array, before: Prefix, scale_floor: Array | None = None
    ) -> DeferredTails:
        """The rows' tails, computed for the rows asked for (see :class:`DeferredTails`)."""
        X = np.asarray(X, dtype=np.float64)
        location, scale, dof = self.predictive(before, scale_floor)
        return DeferredTails((X - location) / scale, dof, before.n == 0)


@functools.lru_cache(maxsize=64)
def fisher_statistic_at(log_tail: float, dof: int) -> float:
    """A value ``x`` with ``log P(χ²_dof ≥ x) ≥ log_tail`` by a margin far above rounding.

    Every statistic below it has a log tail above ``log_tail``: the largest
    such ``x`` to within 1e-12 relative, found by bisection; ``-inf`` when no
    statistic qualifies (``log_tail`` at or above 0), ``inf`` when every one
    does (``log_tail`` is ``-inf``).

    >>> x = fisher_statistic_at(-13.8, 16)
    >>> bool(chi2_log_sf(x, 16) > -13.8), bool(chi2_log_sf(x * 1.001, 16) < -13.8)
    (True, True)
    """
    if log_tail == -math.inf:
        return math.inf
    # The exact tails are good to about 1e-10 relative; ask for a clear margin over that.
    target = log_tail + _CLEARANCE * (1.0 + abs(log_tail))
    if not target < 0.0:
        return -math.inf
    low, high = 0.0, 1.0
    while chi2_log_sf(high, dof) >= target:
        low, high = high, 2.0 * high
    while high - low > 1e-12 * high:
        middle = 0.5 * (low + high)
        if chi2_log_sf(middle, dof) >= target:
            low = middle
        else:
            high = middle
    return low


class DeferredTails:
    """Combined Student-t tails of a block's rows, exact for the rows asked for.

    The exact tails cost a series or continued fraction per feature and row;
    a row whose :meth:`floor` is above the threshold cannot alert, so only the
    rows in doubt and the rows whose score is written need them.

    ``t`` (B, d) holds the standardised values (held to ±1e150, in place),
    ``dof`` (B, d) the degrees of freedom, ``unseen`` (B,) marks rows scored
    before any event (tails 0).

    >>> tails = DeferredTails(np.array([[0.5, -1.0], [4.0, 6.0]]), np.full((2, 2), 1e9),
    ...                       np.zeros(2, bool))
    >>> exact = tails.at(np.arange(2))
    >>> bool(np.all(tails.floor() <= exact)), exact.round(2).tolist()
    (True, [-0.66, -26.29])
    """

    def __init__(self, t: Array, dof: Array, unseen: NDArray[np.bool_]) -> None:
        self.t = np.clip(t, -_LARGEST_T, _LARGEST_T, out=t)
        self.dof = dof
        self.unseen = unseen
        self.rows = t.shape[0]
        self._known = np.full(self.rows, np.nan)
        self._done = np.zeros(self.rows, dtype=bool)

    def floor(self) -> Array:
        """A lower bound on each row's combined log tail, for a fraction of its cost.

        For every ν, Student's t puts at least as much mass beyond ``|t|`` as
        the standard normal (its density is below the normal's up to one
        crossing, above it after), and the normal's two-sided tail is at least
        ``2 φ(z) / (1 + z)`` (Birnbaum's bound on Mills' ratio, loosened). So
        each feature's ``-2 log p_j`` is at most ``z² + 2 log(1 + z) + log(π/2)``;
        the χ² tail of their sum bounds the Fisher combination from below.
        """
        return chi2_log_sf(self._statistic_bound(), 2 * self.t.shape[1])

    def in_doubt(self, threshold: float) -> NDArray[np.intp]:
        """The rows whose exact log tail may be below ``threshold`` (the others' floor is not).

        Compares the bound on the Fisher statistic with the statistic at the
        threshold, found once per threshold, so no row's χ² tail is computed.
        """
        d = self.t.shape[1]
        critical = fisher_statistic_at(threshold, 2 * d)
        # A coarser bound first, one pass over the rows: Σ log(1 + z_j) <= Σ z_j
        # <= √(d Σ z_j²), so the bound is at most S + 2√(d S) + d log(π/2) with
        # S = Σ z_j². Only the rows that clear it (a handful) get the bound itself;
        # the margin keeps rounding from dropping a row the bound keeps.
        squares = np.einsum("ij,ij->i", self.t, self.t)
        coarse = squares + 2.0 * np.sqrt(d * squares) + d * _LOG_HALF_PI
        below = (
            critical - _COARSE_MARGIN * (1.0 + abs(critical))
            if math.isfinite(critical)
            else critical
        )
        rows = np.flatnonzero(~(coarse < below))
        return rows[~(self._statistic_bound(rows) < critical)]

    def _statistic_bound(self, rows: NDArray[np.intp] | None = None) -> Array:
        """An upper bound on the Fisher statistic ``-2 Σ log p_j`` of ``rows`` (all: None).

        See :meth:`floor`.
        """
        z = np.abs(self.t if rows is None else self.t[rows])
        # One log per row: Σ log(1 + z_j) = log Π (1 + z_j); where the product
        # passes the float range (|t| out near the hold), the sum of the logs does not.
        with np.errstate(over="ignore"):
            log_product = np.log(np.prod(1.0 + z, axis=1))
        far = np.isposinf(log_product)
        if far.any():
            log_product[far] = np.sum(np.log1p(z[far]), axis=1)
        statistic: Array = np.sum(np.square(z), axis=1) + 2.0 * log_product
        statistic += z.shape[1] * _LOG_HALF_PI
        statistic[self.unseen if rows is None else self.unseen[rows]] = 0.0
        return statistic

    def at(self, rows: NDArray[np.intp]) -> Array:
        """The exact combined log tails of ``rows`` (computed once per row)."""
        missing = rows[~self._done[rows]]
        if missing.size:
            self._known[missing] = self.combine(self.feature_log_p(missing))
            self._done[missing] = True
        out: Array = self._known[rows]
        return out

    def feature_log_p(self, rows: NDArray[np.intp]) -> Array:
        """Each feature's two-sided log tail for ``rows`` (0 for a row before any event)."""
        # Imported at first use: a run that never has a row in doubt does not load it.
        from stream_detect.tails import student_t_log_tail

        feature_log_p = student_t_log_tail(self.t[rows], self.dof[rows])
        # Before any event the prior alone would judge the scale of the data: no evidence.
        feature_log_p[self.unseen[rows]] = 0.0
        return feature_log_p

    def combine(self, feature_log_p: Array) -> Array:
        """Fisher's combination of per-feature log tails: ``log P(χ²_2d ≥ -2 Σ log p_j)``."""
        fisher = -2.0 * feature_log_p.sum(axis=1)
        return chi2_log_sf(fisher, 2 * feature_log_p.shape[1])
