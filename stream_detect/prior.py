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

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from stream_detect.errors import ConfigError
from stream_detect.stats import Prefix
from stream_detect.tails import chi2_log_sf, student_t_log_tail

__all__ = ["NormalInverseGammaPrior", "PredictiveTails"]

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

    def predictive(self, before: Prefix) -> tuple[Array, Array, Array]:
        """Location, scale and degrees of freedom (each (B, d)) of the next event's t."""
        n = before.n[:, None]
        kappa = self.kappa + n
        location = (self.kappa * self.mean + n * before.mean) / kappa
        alpha = self.alpha + n / 2.0
        shift = before.mean - self.mean
        beta = self.beta + before.second / 2.0 + self.kappa * n * np.square(shift) / (2.0 * kappa)
        scale = np.sqrt(beta * (kappa + 1.0) / (alpha * kappa))
        dof = np.broadcast_to(2.0 * alpha, location.shape)
        return location, scale, dof

    def log_tails(self, X: Array, before: Prefix) -> PredictiveTails:
        """Each row's tails under the posterior of the events ``before`` it.

        ``before`` holds the statistics just before each row, as
        :meth:`stream_detect.stats.RunningMoments.prequential` gives them.
        """
        X = np.asarray(X, dtype=np.float64)
        location, scale, dof = self.predictive(before)
        feature_log_p = student_t_log_tail((X - location) / scale, dof)
        # Before any event the prior alone would judge the scale of the data: no evidence.
        feature_log_p[before.n == 0] = 0.0
        fisher = -2.0 * feature_log_p.sum(axis=1)
        return PredictiveTails(feature_log_p, chi2_log_sf(fisher, 2 * X.shape[1]))
