"""Tests of stream_detect.river_model: a river detector behind the model interface."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from river import anomaly, preprocessing

from stream_detect.errors import ModelError
from stream_detect.river_model import RiverModel

Array = NDArray[np.float64]
FEATURES = ("a", "b", "c")


def river_stream(rows: int = 400) -> Array:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(rows, 3))
    X[::50] += 8.0
    return X


def test_river_half_space_trees_score_is_the_negated_anomaly_score() -> None:
    X = river_stream()
    params = {"seed": 7, "n_trees": 5, "height": 4, "window_size": 50}
    model = RiverModel("HalfSpaceTrees", FEATURES, params)
    assert model.exact_blocks is False
    twin = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(**params)
    own_scores = []
    for x in X:
        block = model.prequential(x[None, :], np.ones(1, dtype=bool))
        # An anomaly score is not a log density: it is the block's model_score, never its log_p.
        assert block.model_score is not None and np.isnan(block.log_p[0])
        own_scores.append(block.model_score[0])
        model.learn(x[None, :])
        row = dict(zip(FEATURES, x.tolist(), strict=True))
        assert own_scores[-1] == -twin.score_one(row)
        twin.learn_one(row)
    scores = np.array(own_scores)
    # It learned: after the first window the scores move, and lower still means stranger.
    assert np.ptp(scores[100:]) > 0
    assert np.mean(scores[100::50]) < np.median(scores[100:])
    block = model.score(X[:3])
    assert np.all(np.isnan(block.distance_sq))
    assert model.contributions(X[:3], block, np.arange(3)) is None


def test_river_model_scores_one_row_at_a_time_and_is_not_saved() -> None:
    model = RiverModel("HalfSpaceTrees", FEATURES, {"seed": 1})
    with pytest.raises(ValueError, match="one row"):
        model.prequential(np.zeros((2, 3)), np.ones(2, dtype=bool))
    with pytest.raises(ModelError, match="pickle"):
        model.to_dict()


@pytest.mark.parametrize(
    ("scaler", "front"), [("minmax", "MinMaxScaler"), ("standard", "StandardScaler"), ("none", "")]
)
def test_river_model_puts_the_chosen_scaler_in_front(scaler: str, front: str) -> None:
    model = RiverModel("HalfSpaceTrees", FEATURES, {"seed": 1}, scaler=scaler)
    if front:
        assert front in str(model.detector)
    else:
        assert isinstance(model.detector, anomaly.HalfSpaceTrees)
