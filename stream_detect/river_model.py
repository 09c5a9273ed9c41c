"""A ``river.anomaly`` detector behind the :class:`~stream_detect.model_interface.Model` interface.

It has no density: its ``log_p`` is NaN and its own score is the negated
anomaly score, so lower is still more anomalous and one thresholding rule
serves every model. River is imported when such a model is built, never before.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.errors import ConfigError, DependencyError
from stream_detect.model_interface import BoolArray, Model, ScoreBlock

__all__ = ["RiverModel"]

Array = NDArray[np.float64]


class RiverModel(Model):
    """A ``river.anomaly`` detector, scored and learned one event at a time.

    The anomaly score is not a log density: ``log_p`` is NaN and the block's
    ``model_score`` is the negated anomaly score, so that lower still means
    more anomalous and one thresholding rule serves every model.
    """

    exact_blocks = False

    def __init__(
        self,
        name: str,
        features: tuple[str, ...],
        params: dict[str, Any] | None = None,
        scaler: str = "minmax",
    ) -> None:
        try:
            anomaly = importlib.import_module("river.anomaly")
            preprocessing = importlib.import_module("river.preprocessing")
        except ImportError as exc:  # pragma: no cover - river is a core dependency
            raise DependencyError("river", "river") from exc
        factory = getattr(anomaly, name, None)
        if factory is None or not isinstance(factory, type):
            known = sorted(n for n in dir(anomaly) if n[:1].isupper())
            raise ConfigError("model", f"river:{name}", f"one of river:{', river:'.join(known)}")
        try:
            detector = factory(**(params or {}))
        except (TypeError, ValueError) as exc:
            expected = f"parameters river.anomaly.{name} takes ({exc})"
            raise ConfigError("model_params", params, expected) from exc
        if scaler == "minmax":
            detector = preprocessing.MinMaxScaler() | detector
        elif scaler == "standard":
            detector = preprocessing.StandardScaler() | detector
        self.detector = detector
        self.features = features

    def _row(self, x: Array) -> dict[str, float]:
        return dict(zip(self.features, x.tolist(), strict=True))

    def prequential(self, X: Array, learn: BoolArray) -> ScoreBlock:
        if X.shape[0] != 1:
            raise ValueError("a river model scores one row at a time")
        return self.score(X)

    def score(self, X: Array) -> ScoreBlock:
        own = np.array([-float(self.detector.score_one(self._row(x))) for x in X])
        missing = np.full(X.shape[0], np.nan)
        return ScoreBlock(missing, missing.copy(), model_score=own)

    def learn(self, X: Array) -> None:
        for x in X:
            self.detector.learn_one(self._row(x))

    def contributions(self, X: Array, block: ScoreBlock, rows: NDArray[np.intp]) -> Array | None:
        return None
