"""The threshold plot of ``fit --plot`` and ``evaluate --plot``: F1 and log p against log ε.

:func:`plot_threshold_curves` draws, in an image of :data:`CURVES_SIZE`
pixels, precision, recall and F1 against log ε (the curves of
:func:`stream_detect.threshold.threshold_curves`) over the histograms of the
log p of normal and anomalous events, the chosen log ε marked on both. The
file and its canvas are those of :mod:`stream_detect.plot_canvas`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.plot_canvas import (
    NORMAL_COLOR,
    agg_figure,
    check_plot_path,
    display_scale,
    histogram_edges,
    save_figure,
    unit_text,
)
from stream_detect.threshold import ThresholdCurves, threshold_curves

__all__ = ["CURVES_SIZE", "plot_threshold_curves"]

Array = NDArray[np.float64]

#: Pixel size (width, height) of :func:`plot_threshold_curves`.
CURVES_SIZE = (800, 800)
_ANOMALY_COLOR = "tab:red"


def plot_threshold_curves(
    y: ArrayLike,
    log_p: ArrayLike,
    log_epsilon: float,
    path: str | os.PathLike[str],
    title: str | None = None,
) -> Path:
    """Draw precision, recall and F1 against log ε, and the log p of normal vs anomalous events.

    The top panel shows the three curves of
    :func:`~stream_detect.threshold.threshold_curves` as step functions, with
    a vertical line at the chosen ``log_epsilon``. The bottom panel shows
    histograms (as densities, so the rare anomalies are visible) of the finite
    log p of normal and anomalous events, sharing their bins
    (:func:`histogram_edges`), with the same vertical line. Scores beyond
    ±1e100 are drawn divided by a power of ten, named in the axis labels.
    Writes an 800 x 800 image to ``path`` (in the format its extension names) and returns it.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> plot_threshold_curves([0, 0, 1], [-1.0, -2.0, -9.0], -5.0, folder / "c.png").name
    'c.png'
    """
    curves = threshold_curves(y, log_p)
    labels = np.asarray(y).ravel().astype(bool)
    scores = np.asarray(log_p, dtype=np.float64).ravel()
    check_plot_path(path)
    figure = agg_figure(*CURVES_SIZE)
    top, bottom = figure.subplots(2, 1)
    scale = display_scale(np.append(curves.log_epsilon, log_epsilon))
    unit = unit_text(scale)
    x, (precision, recall, f1) = _steps(
        curves.log_epsilon / scale,
        (curves.precision, curves.recall, curves.f1),
        # Nothing flagged: precision undefined, recall and F1 0.
        (math.nan, 0.0, 0.0),
        log_epsilon / scale,
    )
    for values, name in ((precision, "precision"), (recall, "recall")):
        top.step(x, values, where="post", label=name)
    top.step(x, f1, where="post", label="F1", linewidth=2.0)
    chosen = _describe_choice(curves, log_epsilon)
    _mark_epsilon(top, log_epsilon / scale, chosen)
    top.set_xlabel(f"log ε{unit} (flag when log p(x) < log ε)")
    top.set_ylabel("score")
    top.set_ylim(-0.02, 1.05)
    top.set_title(title or "Precision, recall and F1 against the threshold")
    top.legend(loc="best", fontsize="small")
    top.grid(alpha=0.3)

    finite = np.isfinite(scores)
    if finite.any():
        scores = scores / scale
        edges = histogram_edges(scores[finite])
        for mask, name, color in (
            (~labels, "normal", NORMAL_COLOR),
            (labels, "anomalous", _ANOMALY_COLOR),
        ):
            chosen_scores = scores[mask & finite]
            hidden = int((mask & ~finite).sum())
            note = f", {hidden} at -inf not shown" if hidden else ""
            if chosen_scores.size:
                bottom.hist(
                    chosen_scores,
                    bins=edges,
                    density=True,
                    alpha=0.5,
                    color=color,
                    label=f"{name} ({chosen_scores.size}{note})",
                )
    _mark_epsilon(bottom, log_epsilon / scale, None)
    bottom.set_xlabel(f"log p(x){unit}")
    bottom.set_ylabel("density")
    bottom.set_title("log p of normal and anomalous events")
    if bottom.get_legend_handles_labels()[0]:
        bottom.legend(loc="best", fontsize="small")
    figure.tight_layout()
    return save_figure(figure, path)


def _steps(
    cuts: Array, curves: tuple[Array, ...], nothing: tuple[float, ...], log_epsilon: float
) -> tuple[Array, tuple[Array, ...]]:
    """The points of step curves over ``cuts`` that span the plot, the chosen ε included.

    The value at a cut holds from it to the next (``where="post"``). Drawn
    from the finite cuts alone, the last state (every event flagged) had no
    segment, and a single distinct score gave one point, which draws nothing;
    so the curves start left of the first finite cut, at the state there
    (``nothing``, each curve's value when nothing is flagged, or that of a
    cut at -inf), and end past both the last cut and ``log_epsilon``.

    >>> x, (f1,) = _steps(np.array([5.0]), (np.array([0.4]),), (0.0,), 6.0)
    >>> x.tolist(), f1.tolist()
    ([4.95, 5.0, 6.05], [0.0, 0.4, 0.4])
    """
    finite = np.isfinite(cuts)
    x = cuts[finite]
    if x.size == 0:
        return x, tuple(curve[finite] for curve in curves)
    # An infinite log ε (classic's ε of 0) is marked at no place; the curves span the cuts.
    ends = [float(x[0]), float(x[-1])] + ([log_epsilon] if math.isfinite(log_epsilon) else [])
    low, high = min(ends), max(ends)
    pad = 0.05 * (high - low) if high > low else max(0.1, 0.05 * abs(high))
    before = int(np.argmax(finite)) - 1
    starts = nothing if before < 0 else tuple(float(curve[before]) for curve in curves)
    points = np.concatenate([[low - pad], x, [high + pad]])
    return points, tuple(
        np.concatenate([[start], curve[finite], [curve[finite][-1]]])
        for start, curve in zip(starts, curves, strict=True)
    )


def _describe_choice(curves: ThresholdCurves, log_epsilon: float) -> str:
    """Legend text for the chosen threshold: its value and the F1 it gives."""
    # The events flagged are those strictly below log_epsilon.
    index = int(np.searchsorted(curves.log_epsilon, log_epsilon, side="left")) - 1
    f1 = float(curves.f1[index]) if index >= 0 else 0.0
    return f"log ε = {log_epsilon:.4g} (F1 {f1:.3f})"


def _mark_epsilon(axes: Any, log_epsilon: float, label: str | None) -> None:
    if math.isfinite(log_epsilon):
        axes.axvline(log_epsilon, color="black", linestyle="--", linewidth=1.2, label=label)
