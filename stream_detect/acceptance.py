"""What an accepted deviation does to its model: the history discounted, the deviation learned.

When a key's deviation is accepted as its new normal (see
:mod:`stream_detect.teaching`), its pending alerts are learned as they are.
Learned on top of a long history alone, they would hardly move the model:
after ``n`` events a new value moves the mean by ``1/n`` of its distance, and
a feature that was (nearly) constant keeps a variance so small that the new
level stays many σ out for about ``n / 25`` more events, each an alert (a
deploy that changes a version field after 5,000 five-minute rows: some 180
alerts over 15 hours, though acceptance took two rows). So the history is
discounted first: its weight is cut to that of the accepted deviation (its
pending rows), or to ``min_samples``, whichever is larger, and only then are
the pending rows learned. The discount scales the count and the second
moment alike, so the history's mean and (co)variance stand as they were: it
is one exponential forgetting step, which the half-life's weighted
statistics already know; only how much the history weighs against the new
rows changes. The count of learned events is untouched, so warm-up is never
entered again.

This module is the one place that says so; the block scorers
(:mod:`stream_detect.learning`, :mod:`stream_detect.block_scoring`) and the
keyed bank (:mod:`stream_detect.keyed_teaching`) call it at the acceptance,
so the rows after it are scored against the discounted model whatever the
batch. A model without running moments (a river model) learns the pending
rows as they are.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from stream_detect.gaussian_model import GaussianModel
from stream_detect.model_interface import Model
from stream_detect.stats import RunningCovariance, RunningMoments

__all__ = ["accept_deviation", "discount_history", "history_kept", "learn_accepted"]

Array = NDArray[np.float64]


def history_kept(n: float, accepted: int, min_samples: int) -> float:
    """Share of a history of weight ``n`` kept when a deviation of ``accepted`` rows is accepted.

    The history keeps the weight ``max(accepted, min_samples)``, never more
    than it had: 1.0 when it weighs no more than that already.

    >>> history_kept(5000.0, 2, 50), history_kept(1000.0, 600, 50), history_kept(40.0, 2, 50)
    (0.01, 0.6, 1.0)
    """
    keep = float(max(accepted, min_samples))
    return keep / n if n > keep else 1.0


def discount_history(
    stats: RunningMoments | RunningCovariance, accepted: int, min_samples: int
) -> None:
    """Cut ``stats``' weight (see :func:`history_kept`), in place; the mean and spread stay.

    >>> s = RunningMoments(1).learn(np.array([[0.0], [2.0]] * 50))
    >>> discount_history(s, 2, 10)
    >>> s.n, s.mean.tolist(), s.var.tolist()
    (10.0, [1.0], [1.0])
    """
    share = history_kept(stats.n, accepted, min_samples)
    if share < 1.0:
        stats.discount(share)


def learn_accepted(
    stats: RunningMoments | RunningCovariance, pending: Array, min_samples: int
) -> None:
    """Learn an accepted deviation's ``pending`` rows into ``stats``, its history discounted first.

    >>> s = RunningMoments(1).learn(np.zeros((1000, 1)))
    >>> learn_accepted(s, np.ones((2, 1)), 50)
    >>> s.n, round(float(s.mean[0]), 6)
    (52.0, 0.038462)
    """
    discount_history(stats, pending.shape[0], min_samples)
    stats.learn(pending)


def accept_deviation(model: Model, pending: Array, min_samples: int) -> None:
    """:func:`learn_accepted` for a model; one without running moments just learns ``pending``."""
    if isinstance(model, GaussianModel):
        learn_accepted(model.stats, pending, min_samples)
    else:
        model.learn(pending)
