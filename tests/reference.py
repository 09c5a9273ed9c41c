"""A slow, obviously-correct per-event detector: the yardstick for the vectorised one.

It follows DESIGN's semantics literally, one event at a time, with Welford
updates and the density functions; it does no re-tuning (tests that compare
against it fix log epsilon).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from stream_detect.density import (
    diagonal_log_pdf,
    floor_covariance,
    floor_variance,
    full_distance,
    full_log_pdf,
    scale_free_log_pdf,
)
from stream_detect.settings import DetectorSettings
from stream_detect.stats import RunningCovariance, RunningMoments


@dataclass
class _Key:
    stats: RunningMoments | RunningCovariance
    learned: int = 0
    run_length: int = 0
    pending: list[NDArray[np.float64]] = field(default_factory=list)


@dataclass
class ReferenceResult:
    log_p: NDArray[np.float64]
    score: NDArray[np.float64]
    alert: NDArray[np.bool_]
    warmup: NDArray[np.bool_]
    n: NDArray[np.int64]


def reference_run(
    settings: DetectorSettings,
    X: NDArray[np.float64],
    labels: NDArray[np.int8],
    keys: list[str] | None = None,
) -> ReferenceResult:
    rows, d = X.shape
    X, jacobian = _in_units(X)
    full = settings.model == "full"
    min_samples = max(settings.min_samples, d + 1) if full else settings.min_samples
    threshold = -math.inf if settings.log_epsilon is None else settings.log_epsilon
    keyed = settings.key_field is not None
    models: dict[str, _Key] = {}
    out = ReferenceResult(
        np.full(rows, np.nan),
        np.full(rows, np.nan),
        np.zeros(rows, bool),
        np.zeros(rows, bool),
        np.zeros(rows, np.int64),
    )
    after = settings.accept_after
    flagged = settings.flagged or "clip"
    # A feature every value of which has been an integer so far, this row's included,
    # and that took two different values before this row, has its variance floored
    # at 1/12 (the rounding of a unit step).
    integral = np.ones(d, bool)
    varied = np.zeros(d, bool)
    for i in range(rows):
        integral &= X[i] == np.floor(X[i])
        varied |= X[i - 1] != X[0] if i else varied
        floored = integral & varied
        floor = np.where(floored, max(settings.variance_floor, 1 / 12), settings.variance_floor)
        key = keys[i] if keyed and keys is not None else ""
        if key not in models:
            cls = RunningCovariance if full else RunningMoments
            models[key] = _Key(cls(d, settings.half_life))
        m = models[key]
        x = X[i]
        mean = m.stats.mean
        if m.stats.n > 0:
            if full:
                assert isinstance(m.stats, RunningCovariance)
                cov = floor_covariance(m.stats.cov, mean, floor)
                log_p = float(full_log_pdf(x[None], mean, cov)[0])
                d2 = float(full_distance(x[None], mean, cov)[0][0])
            else:
                var = floor_variance(m.stats.var, mean, floor)
                log_p = float(diagonal_log_pdf(x[None], mean, var)[0])
                d2 = float(np.sum((x - mean) ** 2 / var))
        else:
            log_p = d2 = math.nan
        log_p += jacobian[i]
        score = float(scale_free_log_pdf(np.array([d2]), d)[0]) if keyed else log_p
        warm = m.learned < min_samples
        alert = (not warm) and score < threshold
        out.log_p[i], out.score[i], out.alert[i], out.warmup[i], out.n[i] = (
            log_p,
            score,
            alert,
            warm,
            m.learned,
        )
        if labels[i] >= 0 and not settings.learn_labelled:
            continue
        if not alert:
            m.stats.update(x)
            m.learned += 1
            if flagged != "learn":
                # A calm row takes one from the deviation count; at 0 it is forgotten.
                m.run_length = max(0, m.run_length - 1)
                if m.run_length == 0:
                    m.pending.clear()
            continue
        accepted = bool(after) and m.run_length >= after
        m.run_length = min(after, m.run_length + 1) if after else m.run_length + 1
        if flagged == "learn" or accepted:
            m.stats.update(x)
            m.learned += 1
            continue
        if flagged == "clip" and m.run_length == 1:
            # The first alert of a deviation is learned at most clip_sigma units out.
            radius = settings.clip_sigma
            shrink = radius / math.sqrt(d2) if d2 > radius**2 else 1.0
            m.stats.update(mean + shrink * (x - mean))
            m.learned += 1
        if after:
            m.pending = [*m.pending, x][-after:]
            if m.run_length >= after:
                # Accepted: the history's weight is cut to max(pending rows, min_samples)
                # (its mean and spread kept), then the pending rows are learned.
                keep = max(len(m.pending), min_samples)
                if m.stats.n > keep:
                    share = keep / m.stats.n
                    m.stats.n *= share
                    m.stats.second = m.stats.second * share
                for p in m.pending:
                    m.stats.update(p)
                    m.learned += 1
                m.pending.clear()
    return out


def _in_units(X: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``X`` with each tiny feature times a power of two, and each row's log Jacobian.

    A feature whose first non-zero value is below 2**-10 is multiplied by the
    power of two that brings that value into [1, 2); the density of a row in
    the events' units is that of the scaled row times the powers of two of the
    features rescaled at or before it.
    """
    scaled = X.copy()
    exponents = np.zeros(X.shape[0], np.int64)
    for j in range(X.shape[1]):
        nonzero = np.flatnonzero(X[:, j])
        if not nonzero.size or abs(X[nonzero[0], j]) >= 2.0**-10:
            continue
        k = 1 - math.frexp(abs(float(X[nonzero[0], j])))[1]
        scaled[:, j] = np.clip(np.ldexp(X[:, j], k), -1e150, 1e150)
        exponents[nonzero[0] :] += k
    return scaled, math.log(2.0) * exponents.astype(np.float64)
