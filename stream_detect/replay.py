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

from stream_detect.errors import InputError
from stream_detect.nab import CostMatrix, file_layout, score_file
from stream_detect.nab_corpus import normalised_score, null_score, perfect_score
from stream_detect.timestamps import wall_clock_reasons

__all__ = [
    "NAB_PROFILES",
    "Metrics",
    "ReplayReport",
    "evaluate",
    "label_windows",
    "time_windows",
    "window_limits",
]

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


def window_limits(
    windows: Sequence[tuple[Any, Any]], time_zone: str = "UTC"
) -> NDArray[np.datetime64]:
    """Each window's start and end as wall-clock times, shape (n, 2), to the second.

    A limit is read as a row's timestamp is (:mod:`stream_detect.timestamps`:
    ISO 8601 or epoch seconds, an offset shown in ``time_zone``), so windows
    and rows meet on one clock.

    Raises
    ------
    InputError
        Naming the window: a limit that is not a time, an end before its
        start, or a window that does not begin after the one before it ends.

    >>> window_limits([("2014-01-01 00:30:00", "2014-01-01 02:00:00")]).tolist()
    [[datetime.datetime(2014, 1, 1, 0, 30), datetime.datetime(2014, 1, 1, 2, 0)]]
    >>> window_limits([("2014-01-02", "2014-01-01")])
    Traceback (most recent call last):
    ...
    stream_detect.errors.InputError: window 0 ('2014-01-02', '2014-01-01') ends before it starts
    """
    pairs = [(start, end) for start, end in windows]
    seconds, reasons = wall_clock_reasons([limit for pair in pairs for limit in pair], time_zone)
    for k, (start, end) in enumerate(pairs):
        reason = reasons[2 * k] or reasons[2 * k + 1]
        if reason is not None:
            raise InputError(f"window {k} ({start!r}, {end!r}): {reason}")
        if seconds[2 * k + 1] < seconds[2 * k]:
            raise InputError(f"window {k} ({start!r}, {end!r}) ends before it starts")
        if k and seconds[2 * k] <= seconds[2 * k - 1]:
            raise InputError(
                f"window {k} ({start!r}, {end!r}) does not begin after window {k - 1} ends; "
                "windows must be in time order, not overlapping"
            )
    limits: NDArray[np.datetime64] = (
        np.round(seconds).astype(np.int64).astype("datetime64[s]").reshape(-1, 2)
    )
    return limits


def time_windows(timestamps: NDArray[np.datetime64], limits: NDArray[np.datetime64]) -> IntArray:
    """Windows given by time (:func:`window_limits`) as row pairs: the first row at or after
    the start to the last row at or before the end.

    Rows out of time order (a repeated daylight-saving hour, say) are placed the
    same way: a window runs from the first row of the file whose time is in it
    to the last. Raises :class:`InputError` for a window that holds no row.

    >>> stamps = np.array(["2014-01-01T00:00", "2014-01-01T01:00", "2014-01-01T02:00"],
    ...                   dtype="datetime64[s]")
    >>> time_windows(stamps, window_limits([("2014-01-01 00:30:00", "2014-01-01 02:00:00")]))
    array([[1, 2]])
    """
    pairs = []
    in_order = bool(np.all(timestamps[1:] >= timestamps[:-1]))
    for k, (start, end) in enumerate(limits):
        if in_order:
            first = int(np.searchsorted(timestamps, start, side="left"))
            last = int(np.searchsorted(timestamps, end, side="right")) - 1
        else:
            inside = np.flatnonzero((timestamps >= start) & (timestamps <= end))
            first, last = (int(inside[0]), int(inside[-1])) if inside.size else (0, -1)
        if last < first:
            raise InputError(f"window {k} ({start}, {end}) holds no row's time")
        pairs.append((first, last))
    return np.array(pairs, dtype=np.intp).reshape(-1, 2)


def evaluate(
    alert: BoolArray,
    *,
    labels: BoolArray | None = None,
    timestamps: NDArray[np.datetime64] | None = None,
    windows: NDArray[np.datetime64] | None = None,
) -> ReplayReport:
    """Score the alerts of a replay against labels per row or windows by time.

    ``windows`` are :func:`window_limits`; each must hold a row (see :func:`time_windows`).

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
    timed = None if timestamps is None else timestamps[~np.isnat(timestamps)]
    if timed is not None and timed.size > 1:
        # From the first row's time to the last's (NaT: a row with no time, left out).
        span = float((timed[-1] - timed[0]) / np.timedelta64(1, "s")) / 86400.0
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
        nab = _nab_scores(alert, timestamps, windows, pairs)
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
    alert: BoolArray,
    timestamps: NDArray[np.datetime64],
    windows: NDArray[np.datetime64],
    pairs: IntArray,
) -> dict[str, float] | None:
    """The file's normalised NAB score per profile; None for a file with no window.

    NAB places a window by limits that are rows' timestamps (its labels' are); a
    limit between rows is moved to the row the window starts or ends at (``pairs``).
    """
    stamps = timestamps.astype("datetime64[us]")
    limits = [
        (
            start if (stamps == start).any() else stamps[first],
            end if (stamps == end).any() else stamps[last],
        )
        for (start, end), (first, last) in zip(
            windows.astype("datetime64[us]"), pairs.tolist(), strict=True
        )
    ]
    layout = file_layout(stamps, limits)
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
    such entry, or several of that name, raises KeyError. An entry is a list of
    ``[start, end]`` pairs (:class:`InputError` naming the first that is not).

    >>> table = {"realKnownCause/a.csv": [["2014-01-01", "2014-01-02"]]}
    >>> windows_for(table, "data/realKnownCause/a.csv")
    [('2014-01-01', '2014-01-02')]
    >>> windows_for(table, "a.csv")
    [('2014-01-01', '2014-01-02')]
    >>> windows_for([["2014-01-01"]], "a.csv")
    Traceback (most recent call last):
    ...
    stream_detect.errors.InputError: window 0 is ['2014-01-01'], not a [start, end] pair
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
    if not isinstance(entry, list):
        raise InputError(f"the windows are {entry!r}, not a list of [start, end] pairs")
    for k, pair in enumerate(entry):
        if not isinstance(pair, list) or len(pair) != 2:
            raise InputError(f"window {k} is {pair!r}, not a [start, end] pair")
    return [(str(a), str(b)) for a, b in entry]
