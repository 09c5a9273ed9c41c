"""PNG plots for looking at data and thresholds: feature histograms and threshold curves.

matplotlib is optional (``pip install 'stream-detect[plot]'``); it is imported
only when a plot is drawn, and its absence is a
:class:`~stream_detect.errors.DependencyError`. Figures are drawn with the Agg
canvas directly, never through pyplot, so drawing a plot changes no global
matplotlib state (a user's interactive backend stays as it was) and is safe
from a worker thread.

Pixel sizes are fixed, so a caller (or a test) knows what it gets:

* :func:`plot_threshold_curves`: 800 x 800 pixels;
* :func:`plot_histograms`: 1000 pixels wide and 250 pixels per feature high.

:func:`threshold_curves` is the pure computation behind the first plot.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.errors import ConfigError, DependencyError, InputError
from stream_detect.transforms import Transform, skewness

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CURVES_SIZE",
    "DPI",
    "HISTOGRAM_ROW_HEIGHT",
    "HISTOGRAM_WIDTH",
    "MAX_HISTOGRAM_FEATURES",
    "ThresholdCurves",
    "plot_histograms",
    "plot_threshold_curves",
    "threshold_curves",
]

Array = NDArray[np.float64]

#: Dots per inch of every PNG written here.
DPI = 100
#: Pixel size (width, height) of :func:`plot_threshold_curves`.
CURVES_SIZE = (800, 800)
#: Pixel width of :func:`plot_histograms`.
HISTOGRAM_WIDTH = 1000
#: Pixel height of one feature's row in :func:`plot_histograms`.
HISTOGRAM_ROW_HEIGHT = 250
#: More rows than this would make an image taller than viewers (and Agg) handle well.
MAX_HISTOGRAM_FEATURES = 200
_BINS = 50
_NORMAL_COLOR = "tab:blue"
_ANOMALY_COLOR = "tab:red"


@dataclass(frozen=True)
class ThresholdCurves:
    """Precision, recall and F1 of the rule ``log_p < log_epsilon`` for every cut.

    ``log_epsilon[k]`` is the k-th distinct log p value, in increasing order;
    ``precision[k]``, ``recall[k]`` and ``f1[k]`` hold for every ``log_epsilon``
    in the half-open interval ``(log_epsilon[k], log_epsilon[k + 1]]``, i.e.
    when the events flagged are those with ``log_p <= log_epsilon[k]``. Below
    the smallest value nothing is flagged and all three are 0. Undefined
    precision (nothing flagged) and recall (no anomalies) are 0, not NaN.
    """

    log_epsilon: Array
    precision: Array
    recall: Array
    f1: Array
    n_flagged: NDArray[np.int64]


def threshold_curves(y: ArrayLike, log_p: ArrayLike) -> ThresholdCurves:
    """Exact precision, recall and F1 at every cut point, from one sort and cumulative sums.

    ``y`` holds labels (1 or True: anomaly); ``log_p`` the scores (lower is
    more anomalous). Non-finite ``-inf`` scores are the most anomalous of all
    and are kept; NaN scores are an error.

    >>> c = threshold_curves([1, 0, 1, 0], [-9.0, -5.0, -7.0, -1.0])
    >>> c.log_epsilon.tolist(), c.recall.tolist(), c.f1.round(3).tolist()
    ([-9.0, -7.0, -5.0, -1.0], [0.5, 1.0, 1.0, 1.0], [0.667, 1.0, 0.8, 0.667])
    """
    labels = np.asarray(y).ravel()
    scores = np.asarray(log_p, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"y has {labels.size} values but log_p has {scores.size}")
    if np.isnan(scores).any():
        raise ValueError("log_p contains NaN; every event needs a score")
    positive = labels.astype(bool)
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    tp = np.cumsum(positive[order], dtype=np.int64)
    flagged = np.arange(1, scores.size + 1, dtype=np.int64)
    # Tied scores are flagged together: keep the last row of each run of equal values.
    last_of_run = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    if scores.size == 0:
        last_of_run = np.zeros(0, dtype=bool)
    tp, flagged, cuts = tp[last_of_run], flagged[last_of_run], sorted_scores[last_of_run]
    n_positive = int(positive.sum())
    precision = tp / flagged
    recall = tp / n_positive if n_positive else np.zeros(tp.shape)
    f1 = 2.0 * tp / (flagged + n_positive)
    return ThresholdCurves(cuts, precision, recall.astype(np.float64), f1, flagged)


def _figure(width_px: int, height_px: int) -> Figure:
    """A Figure of exactly this pixel size on an Agg canvas; DependencyError without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise DependencyError("matplotlib", "plot") from exc
    figure = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _check_folder(path: str | os.PathLike[str]) -> None:
    """InputError now, before any drawing, when the folder of ``path`` does not exist."""
    folder = Path(path).absolute().parent
    if not folder.is_dir():
        raise InputError("cannot write the plot: no such folder", source=os.fspath(path))


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``figure`` as a PNG of its own pixel size (no tight bounding box); return the path."""
    target = Path(path)
    try:
        figure.savefig(target, format="png", dpi=DPI)
    except OSError as exc:
        raise InputError(
            f"cannot write the plot: {exc.strerror or exc}", source=str(target)
        ) from exc
    return target


def plot_threshold_curves(
    y: ArrayLike,
    log_p: ArrayLike,
    log_epsilon: float,
    path: str | os.PathLike[str],
    title: str | None = None,
) -> Path:
    """Draw precision, recall and F1 against log ε, and the log p of normal vs anomalous events.

    The top panel shows the three curves of :func:`threshold_curves` as step
    functions, with a vertical line at the chosen ``log_epsilon``. The bottom
    panel shows histograms (as densities, so the rare anomalies are visible) of
    the finite log p of normal and anomalous events, sharing their bins, with
    the same vertical line. Writes an 800 x 800 PNG to ``path`` and returns it.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> plot_threshold_curves([0, 0, 1], [-1.0, -2.0, -9.0], -5.0, folder / "c.png").name
    'c.png'
    """
    labels = np.asarray(y).ravel().astype(bool)
    scores = np.asarray(log_p, dtype=np.float64).ravel()
    curves = threshold_curves(labels, scores)
    _check_folder(path)
    figure = _figure(*CURVES_SIZE)
    top, bottom = figure.subplots(2, 1)
    finite_cuts = np.isfinite(curves.log_epsilon)
    x = curves.log_epsilon[finite_cuts]
    for values, name in ((curves.precision, "precision"), (curves.recall, "recall")):
        top.step(x, values[finite_cuts], where="post", label=name)
    top.step(x, curves.f1[finite_cuts], where="post", label="F1", linewidth=2.0)
    chosen = _describe_choice(curves, log_epsilon)
    _mark_epsilon(top, log_epsilon, chosen)
    top.set_xlabel("log ε (flag when log p(x) < log ε)")
    top.set_ylabel("score")
    top.set_ylim(-0.02, 1.05)
    top.set_title(title or "Precision, recall and F1 against the threshold")
    top.legend(loc="best", fontsize="small")
    top.grid(alpha=0.3)

    finite = np.isfinite(scores)
    if finite.any():
        edges = np.histogram_bin_edges(scores[finite], bins=_BINS)
        for mask, name, color in (
            (~labels, "normal", _NORMAL_COLOR),
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
    _mark_epsilon(bottom, log_epsilon, None)
    bottom.set_xlabel("log p(x)")
    bottom.set_ylabel("density")
    bottom.set_title("log p of normal and anomalous events")
    if bottom.get_legend_handles_labels()[0]:
        bottom.legend(loc="best", fontsize="small")
    figure.tight_layout()
    return _save(figure, path)


def _describe_choice(curves: ThresholdCurves, log_epsilon: float) -> str:
    """Legend text for the chosen threshold: its value and the F1 it gives."""
    # The events flagged are those strictly below log_epsilon.
    index = int(np.searchsorted(curves.log_epsilon, log_epsilon, side="left")) - 1
    f1 = float(curves.f1[index]) if index >= 0 else 0.0
    return f"log ε = {log_epsilon:.4g} (F1 {f1:.3f})"


def _mark_epsilon(axes: Any, log_epsilon: float, label: str | None) -> None:
    if math.isfinite(log_epsilon):
        axes.axvline(log_epsilon, color="black", linestyle="--", linewidth=1.2, label=label)


def plot_histograms(
    X: ArrayLike,
    features: Sequence[str],
    transforms: Mapping[str, Transform],
    path: str | os.PathLike[str],
    title: str | None = None,
) -> Path:
    """Draw, per feature, its histogram before and after its transform, skewness in the titles.

    One row per feature (in the order of ``features``, the columns of ``X``):
    the raw values on the left, the transformed ones on the right (the same
    values again, marked "no transform", for features without one). Only
    finite values are drawn; values outside a transform's domain are counted in
    the title. ``transforms`` may be a
    :class:`~stream_detect.transforms.FeatureTransforms` or any mapping from
    feature name to :class:`~stream_detect.transforms.Transform`. ``title``, if
    given, goes above the first row (e.g. to say the rows are a sample). Writes a PNG of
    1000 x (250 x number of features) pixels to ``path`` and returns it;
    :class:`ConfigError` for more than :data:`MAX_HISTOGRAM_FEATURES` features.

    >>> import tempfile, pathlib
    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([rng.lognormal(size=500), rng.normal(size=500)])
    >>> from stream_detect.transforms import parse_transform
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "h.png"
    >>> plot_histograms(X, ["bytes", "temp"], {"bytes": parse_transform("log")}, path).name
    'h.png'
    """
    values = np.asarray(X, dtype=np.float64)
    names = list(features)
    if values.ndim != 2 or values.shape[1] != len(names):
        raise ValueError(f"expected rows of {len(names)} features, got shape {values.shape}")
    if not 1 <= len(names) <= MAX_HISTOGRAM_FEATURES:
        raise ConfigError(
            "features", len(names), f"between 1 and {MAX_HISTOGRAM_FEATURES} features to plot"
        )
    _check_folder(path)
    figure = _figure(HISTOGRAM_WIDTH, HISTOGRAM_ROW_HEIGHT * len(names))
    axes = figure.subplots(len(names), 2, squeeze=False)
    for row, name in enumerate(names):
        column = values[:, row]
        raw = column[np.isfinite(column)]
        transform = transforms.get(name, Transform())
        left, right = axes[row]
        _histogram(left, raw, f"{name}: skew {_skew_text(raw)}", _NORMAL_COLOR)
        if transform.is_identity:
            _histogram(right, raw, f"{name}: no transform", "tab:gray")
            continue
        after = transform.forward(raw)
        inside = np.isfinite(after)
        outside = int(raw.size - inside.sum())
        note = f", {outside} outside the domain" if outside else ""
        heading = f"{name} after {transform.spec}: skew {_skew_text(after[inside])}{note}"
        _histogram(right, after[inside], heading, "tab:green")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return _save(figure, path)


def _skew_text(values: Array) -> str:
    value = skewness(values) if values.size else math.nan
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def _histogram(axes: Any, values: Array, title: str, color: str) -> None:
    axes.set_title(title, fontsize="medium")
    if values.size:
        axes.hist(values, bins=_BINS, color=color, alpha=0.8)
    else:
        axes.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=axes.transAxes)
    axes.tick_params(labelsize="small")
