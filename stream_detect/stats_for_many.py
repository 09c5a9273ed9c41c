"""Many states learning at once: a row each, or a block each, bit for bit the one-state learn.

The keyed models hold many keys' statistics as rows of arrays. When a batch
has taught each of several keys the same way, they learn together here,
with the same operations in the same order as
:meth:`~stream_detect.stats.RunningMoments.learn` and
:meth:`~stream_detect.stats.RunningCovariance.learn` take for one state, so
a key's model is the same whether it learned alone or with the others: the
keyed bank teaches one alert per key with :func:`learn_one_each`, the keyed
rounds a calm block per key with :func:`learn_each_full`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["learn_each_full", "learn_one_each"]

Array = NDArray[np.float64]


def learn_one_each(
    n: Array, mean: Array, m2: Array, X: Array, decay: float
) -> tuple[Array, Array, Array]:
    """Many diagonal states (row ``k``: ``n[k]``, ``mean[k]``, ``m2[k]``), each learning ``X[k]``.

    Bit for bit what :meth:`RunningMoments.learn` gives for each state and its
    one row, with the same operations in the same order, across all rows at
    once: the keyed bank teaches one alert per key this way.

    >>> n, mean, m2 = np.array([0.0, 2.0]), np.array([[0.0], [1.0]]), np.array([[0.0], [2.0]])
    >>> [a.tolist() for a in learn_one_each(n, mean, m2, np.array([[5.0], [4.0]]), 1.0)]
    [[1.0, 3.0], [[5.0], [2.0]], [[0.0], [8.0]]]
    """
    # learn() of one row: the row's own mean is x + 0.0 (so -0.0 becomes 0.0),
    # its m2 is 0, and it weighs 1 after what came before decays once.
    row_mean = X + 0.0
    kept_n = n * decay
    kept_m2 = m2 * decay
    new_n = kept_n + 1.0
    # Rows of empty states are replaced below: their sums may overflow unseen.
    with np.errstate(over="ignore", invalid="ignore"):
        delta = row_mean - mean
        new_mean = mean + delta * (1.0 / new_n)[:, None]
        new_m2 = (kept_m2 + 0.0) + delta * delta * ((kept_n * 1.0) / new_n)[:, None]
    # A state that had learned nothing (or decayed to nothing) takes the row as it is.
    empty = kept_n == 0
    if empty.any():
        new_n[empty] = 1.0
        new_mean[empty] = row_mean[empty]
        new_m2[empty] = 0.0
    return new_n, new_mean, new_m2


def learn_each_full(n: Array, mean: Array, comoment: Array, X: Array) -> tuple[Array, Array, Array]:
    """Many full-covariance states (``comoment[k]`` of shape ``(d, d)``), each learning ``X[k]``.

    ``X`` holds the same number of rows for every state, shape ``(K, rows, d)``.
    Bit for bit what :meth:`RunningCovariance.learn` gives each state without a
    half-life: the same operations in the same order, the matrix products
    taken by numpy a state at a time as they are there. The keyed rounds
    (:mod:`stream_detect.keyed_rounds`) teach many keys this way.

    >>> n, mean = np.array([0.0, 1.0]), np.array([[0.0, 0.0], [1.0, 1.0]])
    >>> X = np.array([[[5.0, 1.0]], [[3.0, -1.0]]])
    >>> n, mean, comoment = learn_each_full(n, mean, np.zeros((2, 2, 2)), X)
    >>> n.tolist(), mean.tolist(), comoment[1].tolist()
    ([1.0, 2.0], [[5.0, 1.0], [2.0, 0.0]], [[2.0, -2.0], [-2.0, 2.0]])
    """
    rows = X.shape[1]
    weights = np.ones(rows)
    total = float(weights.sum())
    first = X[:, 0]
    batch_mean = first + weights @ (X - first[:, None, :]) / total
    dev = X - batch_mean[:, None, :]
    batch_second = np.matmul(dev.transpose(0, 2, 1), dev)
    new_n = n + total
    # States that had learned nothing take the batch's own; their sums may overflow unseen.
    with np.errstate(over="ignore", invalid="ignore"):
        delta = batch_mean - mean
        new_mean = mean + delta * (total / new_n)[:, None]
        share = (n * total) / new_n
        outer = delta[:, :, None] * delta[:, None, :]
        new_comoment = comoment + batch_second + outer * share[:, None, None]
    empty = n == 0
    if empty.any():
        new_n[empty] = total
        new_mean[empty] = batch_mean[empty]
        new_comoment[empty] = batch_second[empty]
    return new_n, new_mean, new_comoment
