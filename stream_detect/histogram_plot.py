"""The feature histograms of ``inspect --plot``: each feature before and after its transform.

:func:`plot_histograms` draws one row per feature, its raw values on the left
and the transformed ones on the right, with their skewness in the titles, in
an image :data:`HISTOGRAM_WIDTH` pixels wide and :data:`HISTOGRAM_ROW_HEIGHT`
pixels per feature high, for at most :data:`MAX_HISTOGRAM_FEATURES` features.
The file and its canvas are those of :mod:`stream_detect.plot_canvas`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.errors import ConfigError
from stream_detect.plot_canvas import (
    NORMAL_COLOR,
    agg_figure,
    check_plot_path,
    display_scale,
    histogram_edges,
    literal_text,
    save_figure,
    unit_text,
)
from stream_detect.skewness import skewness
from stream_detect.transforms import Transform

__all__ = [
    "HISTOGRAM_ROW_HEIGHT",
    "HISTOGRAM_WIDTH",
    "MAX_HISTOGRAM_FEATURES",
    "plot_histograms",
]

Array = NDArray[np.float64]

#: Pixel width of :func:`plot_histograms`.
HISTOGRAM_WIDTH = 1000
#: Pixel height of one feature's row in :func:`plot_histograms`.
HISTOGRAM_ROW_HEIGHT = 250
#: More rows than this would make an image taller than viewers (and Agg) handle well.
MAX_HISTOGRAM_FEATURES = 200


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
    the title. Bins come from :func:`histogram_edges`; values beyond ±1e100
    are drawn divided by a power of ten, named in the axis label. ``transforms`` may be a
    :class:`~stream_detect.feature_transforms.FeatureTransforms` or any mapping from
    feature name to :class:`~stream_detect.transforms.Transform`. ``title``, if
    given, goes above the first row (e.g. to say the rows are a sample). Writes an image of
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
    check_plot_path(path)
    figure = agg_figure(HISTOGRAM_WIDTH, HISTOGRAM_ROW_HEIGHT * len(names))
    axes = figure.subplots(len(names), 2, squeeze=False)
    for row, feature in enumerate(names):
        name = literal_text(feature)
        column = values[:, row]
        raw = column[np.isfinite(column)]
        transform = transforms.get(feature, Transform())
        left, right = axes[row]
        _histogram(left, raw, f"{name}: skew {_skew_text(raw)}", NORMAL_COLOR)
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
        figure.suptitle(literal_text(title))
    figure.tight_layout()
    return save_figure(figure, path)


def _skew_text(values: Array) -> str:
    value = skewness(values) if values.size else math.nan
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def _histogram(axes: Any, values: Array, title: str, color: str) -> None:
    axes.set_title(title, fontsize="medium")
    if values.size:
        scale = display_scale(values)
        drawn = values / scale
        axes.hist(drawn, bins=histogram_edges(drawn), color=color, alpha=0.8)
        if scale != 1.0:
            axes.set_xlabel(f"value{unit_text(scale)}", fontsize="small")
    else:
        axes.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=axes.transAxes)
    axes.tick_params(labelsize="small")
