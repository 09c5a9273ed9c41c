"""Suggested transforms: the transform that brings a feature's skewness closest to zero.

:func:`suggest_transform` tries ``none``, the roots, ``log`` and shifted logs
on the central values of one feature and keeps the simplest whose |skewness|
is close to the best, if it brings the skewness of all the values closer to
zero too; :func:`suggest_transforms` does it for every column of a batch, by
feature name (``--transform auto``). Pure numpy, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.skewness import LARGE_MAGNITUDE, skewness
from stream_detect.transforms import IDENTITY, Transform

__all__ = [
    "DEFAULT_MAX_ABS_SKEW",
    "DEFAULT_TOLERANCE",
    "Suggestion",
    "suggest_transform",
    "suggest_transforms",
]

Array = NDArray[np.float64]

#: Skewness below which a feature is left alone by :func:`suggest_transform`.
DEFAULT_MAX_ABS_SKEW = 0.5
#: A candidate is preferred over a less simple one unless the latter's
#: |skewness| is lower by more than this (sampling noise of the skewness of a
#: few thousand values is about 0.05).
DEFAULT_TOLERANCE = 0.1
#: Root degrees tried by the suggestion, from mild (2) to strong; log is the limit.
_ROOT_DEGREES = (2, 3, 4, 5, 6)
#: Margins below the smallest value tried for log(x + C), in standard deviations.
#: None is tiny: a future event just below the smallest one seen must stay in the domain.
_LOG_MARGINS = (10.0, 5.0, 2.0, 1.0, 0.5, 0.2, 0.1, 0.05)
#: Share of the values left out at each end before a suggestion is measured.
_TRIM_SHARE = 0.005


@dataclass(frozen=True)
class Suggestion:
    """The transform suggested for one feature and the skewness before and after it.

    >>> Suggestion(Transform("log"), 6.2, 0.01).to_dict()
    {'transform': 'log', 'skew_before': 6.2, 'skew_after': 0.01}
    """

    transform: Transform
    skew_before: float
    skew_after: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (NaN skewness becomes None)."""
        return {
            "transform": self.transform.spec,
            "skew_before": None if math.isnan(self.skew_before) else self.skew_before,
            "skew_after": None if math.isnan(self.skew_after) else self.skew_after,
        }


def _log_shifts(low: float, spread: float) -> list[float]:
    """Shifts C for log(x + C) that keep a margin below ``low``, rounded to short numbers.

    Ordered from the largest margin (mildest, safest for future data) down.
    Each C is rounded *up* at the second digit of its margin, so the margin is
    kept (it grows by at most a tenth) and the spec stays short, e.g. ``log:2.09``.

    >>> _log_shifts(0.0, 1.0)[:3]
    [10.0, 5.0, 2.0]
    >>> _log_shifts(-1.99, 2.0)[-1]
    2.09
    """
    shifts: list[float] = []
    for margin in (m * spread for m in _LOG_MARGINS):
        if not 0.0 < margin < math.inf:
            continue
        exponent = math.floor(math.log10(margin)) - 1
        step = 10.0**exponent
        steps = (margin - low) / step
        if not math.isfinite(steps):
            continue  # C itself would be beyond the float range
        shift = round(math.ceil(steps) * step, max(0, -exponent))
        if math.isfinite(shift) and shift + low > 0 and shift not in shifts:
            shifts.append(shift)
    return shifts


def suggest_transform(
    x: ArrayLike,
    max_abs_skew: float = DEFAULT_MAX_ABS_SKEW,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    minimum: float | None = None,
) -> Suggestion:
    """Suggest the transform that brings the skewness of ``x`` closest to zero.

    Only finite values count. The suggestion is made on the **central 99 %**
    of them: the ``floor(n / 200)`` smallest and as many largest values are
    left out (none for fewer than 200 values), so that a few anomalies in the
    data -- the events the model is meant to flag -- do not choose the
    transform. Domains are checked on **all** the values: ``log`` only when
    every value is positive, roots only when none is negative, and ``log:C``
    only with C above ``-min(x)``.

    Candidates, from simplest to least simple: ``none``; ``log``; ``sqrt``
    and ``root:K`` (K = 3..6); ``log:C`` when some value is zero or negative,
    with C a little above ``-min(x)`` (margins from 10 down to 0.05 standard
    deviations of the central values, so an event a little below the
    smallest one seen still has a logarithm). The simplest candidate whose
    |skewness| on the central values is within ``tolerance`` of the best is
    chosen, and ``none`` is kept when the |skewness| of the central values is
    already below ``max_abs_skew``, or below ``2 * sqrt(6 / n)`` (twice its
    standard error for n Gaussian values: with few values a skewness that
    size is noise, e.g. |skew| < 1.1 for 20 values). Left-skewed data keep
    ``none``: every candidate pulls in the right tail and would make them worse.
    ``none`` is also kept when the chosen transform leaves the |skewness| of all
    the values no closer to zero than before: then what skewed the central
    values was outliers the trim left in (more than 0.5 % at one end), and the
    transform only moves outliers, the ones at the other end further out.

    The returned ``skew_before`` and ``skew_after`` are those of all the
    finite values, before and after the suggested transform.

    When ``x`` is a sample of larger data, ``minimum`` is the smallest value
    of all of it, and the domains are checked against it too: a zero the
    sample missed still rules out ``log``, which would refuse that row.

    >>> rng = np.random.default_rng(0)
    >>> suggest_transform(rng.lognormal(0.0, 1.0, 10_000)).transform.spec
    'log'
    >>> suggest_transform(rng.normal(0.0, 1.0, 10_000)).transform.spec
    'none'
    >>> normal = rng.normal(0.0, 1.0, 10_000)
    >>> normal[:50] += 6.0  # 0.5 % anomalies far out do not make it skewed
    >>> suggest_transform(normal).transform.spec
    'none'
    >>> suggest_transform(rng.lognormal(0.0, 1.0, 10_000), minimum=0.0).transform.spec
    'log:0.089'
    """
    values = np.asarray(x, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    before = skewness(values)
    central = _central(values)
    central_before = skewness(central)
    # Twice the standard error of the skewness of n Gaussian values, sqrt(6/n):
    # below it, a few rows' skewness is noise, not a shape worth transforming.
    noise = 2.0 * math.sqrt(6.0 / values.size) if values.size else math.inf
    if (
        values.size < 3
        or math.isnan(central_before)
        or abs(central_before) < max(max_abs_skew, noise)
    ):
        return Suggestion(IDENTITY, before, before)
    low = float(values.min()) if minimum is None else min(float(values.min()), minimum)
    candidates: list[Transform] = []
    if low > 0:
        candidates.append(Transform("log"))
    if low >= 0:
        candidates.extend(Transform("root", degree=k) for k in _ROOT_DEGREES)
    if low <= 0:
        spread = _spread(central)
        if math.isfinite(spread) and spread > 0:
            shifts = _log_shifts(low, spread)
            candidates.extend(Transform("log", shift=c) for c in shifts if math.isfinite(c))
    scored = [(IDENTITY, central_before)] + [(t, skewness(t.forward(central))) for t in candidates]
    finite_scores = [abs(s) for _, s in scored if math.isfinite(s)]
    best = min(finite_scores)
    for transform, after in scored:
        if math.isfinite(after) and abs(after) <= best + tolerance:
            if transform.is_identity:
                return Suggestion(IDENTITY, before, before)
            after_all = skewness(transform.forward(values))
            if not abs(after_all) < abs(before):
                # The central values' skewness came from outliers the trim left (more than
                # 0.5 % at one end); the transform only moves them, and further out.
                return Suggestion(IDENTITY, before, before)
            return Suggestion(transform, before, after_all)
    raise AssertionError("unreachable: the best candidate is within tolerance of itself")


def _central(values: Array) -> Array:
    """``values`` without their ``floor(n * 0.005)`` smallest and as many largest, sorted.

    >>> _central(np.arange(400.0))[[0, -1]].tolist()
    [2.0, 397.0]
    >>> _central(np.arange(199.0)).size
    199
    """
    cut = math.floor(values.size * _TRIM_SHARE)
    ordered = np.sort(values)
    return ordered[cut : values.size - cut]


def _spread(values: Array) -> float:
    """Standard deviation of ``values``; inf, without a warning, beyond the float range."""
    magnitude = float(np.max(np.abs(values))) if values.size else 0.0
    if not magnitude > LARGE_MAGNITUDE:
        return float(values.std())
    exponent = math.frexp(magnitude)[1]
    scaled = float(np.ldexp(values, -exponent).std())
    try:
        return math.ldexp(scaled, exponent)
    except OverflowError:
        return math.inf


def suggest_transforms(
    X: ArrayLike,
    features: Sequence[str],
    max_abs_skew: float = DEFAULT_MAX_ABS_SKEW,
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict[str, Suggestion]:
    """:func:`suggest_transform` for every column of ``X``, by feature name.

    >>> rng = np.random.default_rng(1)
    >>> X = np.column_stack([rng.normal(size=5000), rng.lognormal(size=5000)])
    >>> {k: s.transform.spec for k, s in suggest_transforms(X, ["a", "b"]).items()}
    {'a': 'none', 'b': 'log'}
    """
    values = np.asarray(X, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(features):
        raise ValueError(f"expected rows of {len(features)} features, got shape {values.shape}")
    return {
        name: suggest_transform(values[:, j], max_abs_skew, tolerance)
        for j, name in enumerate(features)
    }
