"""The diagonal Gaussian against the ROC AUCs published for the ODDS outlier sets.

../shared/data/README.md gives, per set, the ROC AUC of a diagonal Gaussian
fitted on all of X (mean and population variance per feature) with the score
-log density. The same fit through :mod:`stream_detect.stats` and
:mod:`stream_detect.density` must give the same numbers, and so must the
streaming detector's scores once it has learned every event.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from stream_detect.density import diagonal_log_pdf, floor_variance
from stream_detect.detector import Detector
from stream_detect.settings import DetectorSettings
from stream_detect.stats import RunningMoments

#: ROC AUC of the diagonal Gaussian, from ../shared/data/README.md.
PUBLISHED_AUC = {"thyroid": 0.9556, "shuttle": 0.9898, "cardio": 0.9500, "smtp": 0.8164}


def roc_auc(y: NDArray[np.int64], score: NDArray[np.float64]) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties sharing their mean rank."""
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(score)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    positives = y == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def load_odds(folder: Path, name: str) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    path = folder / "odds" / f"{name}.mat"
    if name == "smtp":
        h5py = pytest.importorskip("h5py")
        with h5py.File(path, "r") as handle:
            return np.asarray(handle["X"]).T.astype(np.float64), np.asarray(handle["y"]).ravel()
    scipy_io = pytest.importorskip("scipy.io")
    data = scipy_io.loadmat(path)
    return data["X"].astype(np.float64), data["y"].ravel().astype(np.int64)


@pytest.mark.parametrize("name", sorted(PUBLISHED_AUC))
def test_diagonal_gaussian_reproduces_published_auc(shared_data: Path, name: str) -> None:
    X, y = load_odds(shared_data, name)
    state = RunningMoments.empty(X.shape[1]).learn(X)
    log_p = diagonal_log_pdf(X, state.mean, floor_variance(state.var, state.mean))
    assert roc_auc(y, -log_p) == pytest.approx(PUBLISHED_AUC[name], abs=5e-5)


def test_streaming_detector_ends_at_the_batch_fit(shared_data: Path) -> None:
    """After learning every event, the detector scores as the batch fit does."""
    X, y = load_odds(shared_data, "cardio")
    features = tuple(f"x{j}" for j in range(X.shape[1]))
    # A given log epsilon keeps the classic score, log p(x), which the batch fit ranks by.
    settings = DetectorSettings(flagged="learn", log_epsilon=-30.0, retune_every=0, retune_labels=0)
    detector = Detector(settings, features)
    detector.process(X, np.full(len(X), -1, dtype=np.int8))
    scores = detector.score_rows(X)
    assert roc_auc(y, -scores) == pytest.approx(PUBLISHED_AUC["cardio"], abs=5e-5)
