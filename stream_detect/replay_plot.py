"""A picture of a replay: the value and the score over time, with threshold, alerts and windows."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.plot_canvas import agg_figure, check_plot_path, literal_text, save_figure

__all__ = ["plot_replay"]


def plot_replay(
    path: str | os.PathLike[str],
    values: ArrayLike,
    score: ArrayLike,
    log_threshold: ArrayLike,
    alert: ArrayLike,
    windows: NDArray[np.intp] | None = None,
    *,
    value_name: str = "value",
    title: str | None = None,
) -> Path:
    """Two panels over the row index: the value with alerts, and the score with the threshold.

    Anomaly windows (row pairs, inclusive) are shaded in both, each row of one
    across its own width (from half a row before to half a row after), so a
    window of one row shows too. Needs the ``plot`` extra.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "replay.png"
    >>> rows = np.arange(50.0)
    >>> plot_replay(out, rows, -rows, np.full(50, -40.0), rows > 45, np.array([[44, 48]])).exists()
    True
    """
    check_plot_path(path)
    value = np.asarray(values, dtype=np.float64)
    scores = np.asarray(score, dtype=np.float64)
    threshold = np.asarray(log_threshold, dtype=np.float64)
    alerts = np.asarray(alert, dtype=bool)
    rows = np.arange(value.size)
    figure = agg_figure(1400, 700)
    top, bottom = figure.subplots(2, 1, sharex=True)
    for axes in (top, bottom):
        for first, last in (windows if windows is not None else np.zeros((0, 2))).tolist():
            # From first to last alone, a one-row window (a lone labelled anomaly) had no width.
            axes.axvspan(first - 0.5, last + 0.5, color="tab:orange", alpha=0.2, linewidth=0)
    top.plot(rows, value, color="tab:blue", linewidth=0.8)
    top.scatter(rows[alerts], value[alerts], color="tab:red", s=18, zorder=3, label="alert")
    top.set_ylabel(literal_text(value_name))
    top.legend(loc="upper left")
    bottom.plot(rows, scores, color="tab:gray", linewidth=0.8, label="score")
    bottom.plot(rows, threshold, color="tab:red", linewidth=0.8, linestyle="--", label="threshold")
    bottom.scatter(rows[alerts], scores[alerts], color="tab:red", s=18, zorder=3)
    bottom.set_ylabel("score (log)")
    bottom.set_xlabel("row")
    bottom.legend(loc="lower left")
    if title:
        top.set_title(literal_text(title))
    figure.tight_layout()
    return save_figure(figure, path)
