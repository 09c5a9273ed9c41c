"""A batch whose keys outnumber ``max_keys``, scored life by life, against piece by piece.

:func:`~stream_detect.keyed_lives.score_lives` admits every piece's keys first
and scans the rows of many pieces together; the bank's own piece-by-piece
way (:meth:`KeyedBank.admit` then :meth:`KeyedBank.score_rows` per piece) is
the reference. The two must agree bit for bit: every result, the models
kept and their recency, and the eviction counts.
"""

from __future__ import annotations

import numpy as np
import pytest

from stream_detect.detections import Detections
from stream_detect.detector import Detector
from stream_detect.explanations import AlertExplainer
from stream_detect.keyed_bank import KeyedBank
from stream_detect.keyed_models import pieces
from stream_detect.settings import DetectorSettings

FEATURES = ("a", "b")


def stream(seed: int, rows: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Busy keys that stay (their lives span pieces), rare ones evicted, spikes and labels."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 2)) * [1.0, 3.0] + [10.0, -4.0]
    X[rng.random(rows) < 0.03] += 15.0
    busy = rng.random(rows) < 0.6
    keys = [
        f"busy{k}" if b else f"rare{r}"
        for b, k, r in zip(busy, rng.integers(0, 3, rows), rng.integers(0, 40, rows), strict=True)
    ]
    labels = np.where(rng.random(rows) < 0.05, rng.integers(0, 2, rows), -1).astype(np.int8)
    return X, keys, labels


def results(out: Detections) -> list[np.ndarray]:
    return [out.log_p, out.score, out.distance_sq, out.log_tail, out.alert, out.warmup, out.n]


@pytest.mark.parametrize("flagged", ["clip", "exclude", "learn"])
@pytest.mark.parametrize("half_life", [None, 30.0])
@pytest.mark.parametrize("log_epsilon", [None, -9.0])
def test_lives_scored_together_match_the_pieces_bit_for_bit(
    flagged: str, half_life: float | None, log_epsilon: float | None
) -> None:
    X, keys, labels = stream(3, 3000)
    settings = DetectorSettings(
        key_field="host",
        max_keys=8,
        min_samples=6,
        flagged=flagged,
        half_life=half_life,
        log_epsilon=log_epsilon,
        accept_after=4,
    )
    together, apart = Detector(settings, FEATURES), Detector(settings, FEATURES)
    assert isinstance(together.models, KeyedBank) and isinstance(apart.models, KeyedBank)
    threshold = -8.0 if log_epsilon is None else log_epsilon
    out_together, out_apart = Detections.empty(len(keys)), Detections.empty(len(keys))
    explain = AlertExplainer(FEATURES, 2)
    for start in range(0, len(keys), 1000):  # batches: the second starts with models held
        stop = start + 1000
        cut = pieces(keys, start, stop, settings.max_keys)
        assert len(cut) > 50
        together.models.score_and_learn(
            together.policy, X, labels, keys, start, stop, threshold, out_together, explain
        )
        for begin, end in cut:
            distinct, slots, group = apart.models.admit(keys[begin:end])
            apart.models.score_rows(
                apart.policy,
                X,
                labels,
                distinct,
                slots,
                group,
                np.arange(begin, end),
                threshold,
                out_apart,
                explain,
            )
    for mine, reference in zip(results(out_together), results(out_apart), strict=True):
        assert np.array_equal(mine, reference, equal_nan=True)
    assert out_together.contributions == out_apart.contributions
    assert np.count_nonzero(out_together.alert) > 10
    assert together.models.to_list() == apart.models.to_list()
    assert together.models.evicted == apart.models.evicted > 100
    assert together.evicted_in_warmup == apart.evicted_in_warmup > 0
