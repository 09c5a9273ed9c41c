"""How a detector did on a recorded stream: point-wise, window-wise and NAB scores, alerts per day.

:func:`evaluate` takes the per-row results of a replay (alerts, and labels
or anomaly windows) and measures them:

- **point-wise**: precision, recall and F1 of alerts against labelled rows;
- **window-wise**: an anomaly window (a run of labelled rows, or a window of
  a ``--windows`` file) is found when any of its rows alerts; recall is the
  share of windows found, precision the share of alerts inside a window;
- **NAB**: with windows given by time (NAB's ``combined_windows.json``), the
  file's normalised NAB score under each of NAB's three profiles
  (:mod:`stream_detect.nab`, probationary period included);
- **alerts per day**, from the timestamps' span.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.nab import CostMatrix, file_layout, score_file
from stream_detect.nab_corpus import normalised_score, null_score, perfect_score

__all__ = ["NAB_PROFILES", "Metrics", "ReplayReport", "evaluate", "label_windows", "time_windows"]

BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

#: NAB v1.1's three profiles (``config/profiles.json``).
NAB_PROFILES: dict[str, CostMatrix] = {
    "standard": CostMatrix(1.0, 0.11, 1.0),
    "reward_low_FP_rate": CostMatrix(1.0, 0.22, 1.0),
    "reward_low_FN_rate": CostMatrix(1.0, 0.11, 2.0),
}


@dataclass(frozen=True)
class Metrics:
    """Precision, recall and F1 (NaN where undefined) with the counts behind them."""

    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    false_negatives: int

    @classmethod
    def from_counts(cls, tp: int, fp: int, fn: int) -> Metrics:
        """
        >>> Metrics.from_counts(3, 1, 3).f1
        0.6
        """
        precision = tp / (tp + fp) if tp + fp else math.nan
        recall = tp / (tp + fn) if tp + fn else math.nan
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else math.nan
        return cls(precision, recall, f1, tp, fp, fn)


@dataclass(frozen=True)
class ReplayReport:
    """What :func:`evaluate` measured; None where the inputs did not allow it."""

    rows: int
    alerts: int
    alerts_per_day: float | None
    pointwise: Metrics | None
    windowwise: Metrics | None
    nab: dict[str, float] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, NaN as None."""
        finite: dict[str, Any] = _finite(asdict(self))
        return finite


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def label_windows(labels: BoolArray) -> IntArray:
    """Runs of labelled rows as ``(first, last)`` row pairs, both inclusive.

    >>> label_windows(np.array([0, 1, 1, 0, 1], dtype=bool)).tolist()
    [[1, 2], [4, 4]]
    """
    padded = np.concatenate([[False], labels, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    pairs: IntArray = edges.reshape(-1, 2) - np.array([0, 1])
    return pairs


def time_windows(
    timestamps: NDArray[np.datetime64], windows: Sequence[tuple[str, str]]
) -> IntArray:
    """Windows given by time as row pairs: the first row at or after the start to the last
    row at or before the end.

    >>> stamps = np.array(["2014-01-01T00:00", "2014-01-01T01:00", "2014-01-01T02:00"],
    ...                   dtype="datetime64[s]")
    >>> time_windows(stamps, [("2014-01-01 00:30:00", "2014-01-01 02:00:00")]).tolist()
    [[1, 2]]
    """
    pairs = []
    for start, end in windows:
        first = int(np.searchsorted(timestamps, np.datetime64(start, "s"), side="left"))
        last = int(np.searchsorted(timestamps, np.datetime64(end, "s"), side="right")) - 1
        if last >= first:
            pairs.append((first, last))
    return np.array(pairs, dtype=np.intp).reshape(-1, 2)


def evaluate(
    alert: BoolArray,
    *,
    labels: BoolArray | None = None,
    timestamps: NDArray[np.datetime64] | None = None,
    windows: Sequence[tuple[str, str]] | None = None,
) -> ReplayReport:
    """Score the alerts of a replay against labels per row or windows by time.

    Examples
    --------
    >>> alert = np.array([0, 0, 1, 0, 0, 0, 1, 0], dtype=bool)
    >>> labels = np.array([0, 1, 1, 0, 0, 0, 0, 1], dtype=bool)
    >>> report = evaluate(alert, labels=labels)
    >>> report.pointwise.f1, report.windowwise.recall, report.windowwise.precision
    (0.4, 0.5, 0.5)
    """
    alert = np.asarray(alert, dtype=bool)
    rows = alert.size
    per_day = None
    if timestamps is not None and rows > 1:
        span = float((timestamps[-1] - timestamps[0]) / np.timedelta64(1, "s")) / 86400.0
        per_day = int(alert.sum()) / span if span > 0 else None
    pairs: IntArray | None = None
    pointwise = None
    if labels is not None:
        labels = np.asarray(labels, dtype=bool)
        tp = int(np.count_nonzero(alert & labels))
        fp = int(np.count_nonzero(alert & ~labels))
        pointwise = Metrics.from_counts(tp, fp, int(np.count_nonzero(labels)) - tp)
        pairs = label_windows(labels)
    nab = None
    if windows is not None and timestamps is not None:
        pairs = time_windows(timestamps, windows)
        nab = _nab_scores(alert, timestamps, windows)
    windowwise = None
    if pairs is not None:
        inside = np.zeros(rows, dtype=bool)
        found = 0
        for first, last in pairs.tolist():
            inside[first : last + 1] = True
            found += int(alert[first : last + 1].any())
        in_window = int(np.count_nonzero(alert & inside))
        outside = int(np.count_nonzero(alert & ~inside))
        p = in_window / (in_window + outside) if in_window + outside else math.nan
        r = found / len(pairs) if len(pairs) else math.nan
        f1 = 2 * p * r / (p + r) if p + r > 0 else math.nan
        windowwise = Metrics(p, r, f1, found, outside, len(pairs) - found)
    return ReplayReport(rows, int(alert.sum()), per_day, pointwise, windowwise, nab)


def _nab_scores(
    alert: BoolArray, timestamps: NDArray[np.datetime64], windows: Sequence[tuple[str, str]]
) -> dict[str, float] | None:
    """The file's normalised NAB score per profile; None for a file with no window."""
    limits = [(np.datetime64(a, "us"), np.datetime64(b, "us")) for a, b in windows]
    layout = file_layout(timestamps.astype("datetime64[us]"), limits)
    if layout.scored_windows.size == 0:
        return None
    scores = {}
    for name, cost in NAB_PROFILES.items():
        raw = score_file(alert.astype(np.float64), layout, cost, 0.5).score
        scores[name] = normalised_score(
            raw, null_score([layout], cost), perfect_score([layout], cost)
        )
    return scores


def windows_for(table: Mapping[str, Any] | Sequence[Any], data_name: str) -> list[tuple[str, str]]:
    """The windows of one file from a NAB-style JSON: a list, or a table by file path.

    A table's entry is the one whose key the data file's path ends with; failing
    that, the one key naming a file of the same name (NAB's keys hold the file's
    folder, ``realKnownCause/nyc_taxi.csv``, and a copied file has lost it). No
    such entry, or several of that name, raises KeyError.

    >>> table = {"realKnownCause/a.csv": [["2014-01-01", "2014-01-02"]]}
    >>> windows_for(table, "data/realKnownCause/a.csv")
    [('2014-01-01', '2014-01-02')]
    >>> windows_for(table, "a.csv")
    [('2014-01-01', '2014-01-02')]
    """
    if isinstance(table, Mapping):
        path = data_name.replace("\\", "/")
        matches = [key for key in table if path.endswith(key)]
        if not matches:
            name = path.rsplit("/", 1)[-1]
            matches = [key for key in table if key.rsplit("/", 1)[-1] == name]
            if len(matches) != 1:
                raise KeyError(data_name)
        entry = table[max(matches, key=len)]
    else:
        entry = table
    return [(str(a), str(b)) for a, b in entry]
