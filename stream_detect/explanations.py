"""Explaining alerts: which features drove each one, written to ``Detections.contributions``.

An alert's ``contributions`` name at most ``top_contributions`` features,
the one that drove it most first, each with its value rounded to six
decimals (:func:`top_features`). A Gaussian model's alert is explained by
each feature's term of the squared Mahalanobis distance, largest first
(:class:`AlertExplainer`); the likelihood rule's by each feature's log tail,
smallest first (:class:`~stream_detect.series.SeriesDetector`). A model
without per-feature terms (river) gives its alerts empty contributions.

The scoring engines (:mod:`~stream_detect.learning`,
:mod:`~stream_detect.block_scoring`, :mod:`~stream_detect.keyed_bank`) call
an :data:`Explainer` for every block that raised an alert, while the block's
scores are at hand, so nothing is scored twice to explain it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from stream_detect.detections import Detections
from stream_detect.keyed_models import KeyState
from stream_detect.model_interface import ScoreBlock

__all__ = ["AlertExplainer", "Explainer", "top_features"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]
#: Called for a block with alerts: the key's state, the block's rows, their scores,
#: which raised an alert, the rows of ``out`` they fill, and ``out``.
Explainer = Callable[[KeyState, Array, ScoreBlock, BoolArray, IntArray, Detections], None]


def top_features(
    features: tuple[str, ...], values: Array, top: int, *, largest: bool
) -> list[dict[str, float]]:
    """Per row of ``values`` (one column per feature), its ``top`` features and their values.

    Features are ranked by value, the largest first if ``largest`` else the
    smallest first; tied features keep their order in ``features``. Values
    are rounded to six decimals.

    >>> values = np.array([[1.0, 3.0, 3.0], [0.5, 0.25, 2.0]])
    >>> top_features(("a", "b", "c"), values, 2, largest=True)
    [{'b': 3.0, 'c': 3.0}, {'c': 2.0, 'a': 0.5}]
    >>> top_features(("a", "b", "c"), values, 1, largest=False)
    [{'a': 1.0}, {'b': 0.25}]
    """
    order = np.argsort(-values if largest else values, axis=1, kind="stable")[:, :top]
    ranked_values = np.take_along_axis(values, order, axis=1).tolist()
    return [
        {features[j]: round(value, 6) for j, value in zip(ranked, row, strict=True)}
        for ranked, row in zip(order.tolist(), ranked_values, strict=True)
    ]


@dataclass(frozen=True)
class AlertExplainer:
    """The :data:`Explainer` that names each alert's ``top`` features by their distance terms.

    Examples
    --------
    >>> from stream_detect.models import build_model
    >>> model = build_model("diagonal", ("cpu", "mem", "disk"))
    >>> model.learn(np.array([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]]))
    >>> X = np.array([[9.0, 1.0, -3.0]])
    >>> block = model.score(X)
    >>> out = Detections.empty(1)
    >>> explain = AlertExplainer(("cpu", "mem", "disk"), top=2)
    >>> explain(KeyState(model), X, block, np.array([True]), np.array([0]), out)
    >>> out.contributions
    {0: {'cpu': 64.0, 'disk': 16.0}}
    """

    features: tuple[str, ...]
    top: int

    def __call__(
        self,
        state: KeyState,
        X: Array,
        block: ScoreBlock,
        alert: BoolArray,
        done: IntArray,
        out: Detections,
    ) -> None:
        """Name the top features of each alert of a block in ``out.contributions``."""
        hits = np.flatnonzero(alert)
        if hits.size == 0:
            return
        contributions = state.model.contributions(X, block, hits)
        if contributions is None:
            # Detections promises an entry for every alert, if only an empty one.
            for i in hits.tolist():
                out.contributions[int(done[i])] = {}
            return
        named = top_features(self.features, contributions, self.top, largest=True)
        for i, row in zip(hits.tolist(), named, strict=True):
            out.contributions[int(done[i])] = row
