"""Plots for looking at data and thresholds: feature histograms and threshold curves.

The file format comes from the extension of the path: ``.png``, ``.svg`` or
``.pdf`` (any case); any other name is refused by :func:`check_plot_path`.

matplotlib is optional (``pip install 'stream-detect[plot]'``); it is imported
only when a plot is drawn, and its absence is a
:class:`~stream_detect.errors.DependencyError`. Figures are drawn with the Agg
canvas directly, never through pyplot, so drawing a plot changes no global
matplotlib state (a user's interactive backend stays as it was) and is safe
from a worker thread.

Pixel sizes are fixed, so a caller (or a test) knows what it gets:

* :func:`plot_threshold_curves`: 800 x 800 pixels;
* :func:`plot_histograms`: 1000 pixels wide and 250 pixels per feature high.

The curves of the first plot come from :func:`stream_detect.threshold.threshold_curves`.
Before any work whose result is to be plotted, call :func:`check_plot_path`:
it fails at once on what would otherwise fail only at the end (no matplotlib,
no such folder).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.atomic import check_writable_file
from stream_detect.errors import ConfigError, DependencyError, InputError
from stream_detect.field_names import shown_name
from stream_detect.skewness import skewness
from stream_detect.threshold import ThresholdCurves, threshold_curves
from stream_detect.transforms import Transform

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CURVES_SIZE",
    "DPI",
    "HISTOGRAM_ROW_HEIGHT",
    "HISTOGRAM_WIDTH",
    "MAX_HISTOGRAM_FEATURES",
    "PLOT_FORMATS",
    "check_plot_path",
    "histogram_edges",
    "literal_text",
    "plot_format",
    "plot_histograms",
    "plot_threshold_curves",
]

Array = NDArray[np.float64]

#: The plot formats, each written for the file extension of its name.
PLOT_FORMATS = ("png", "svg", "pdf")
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
#: matplotlib's axis arithmetic (margins, ticks) overflows near the float limit;
#: larger values are drawn divided by a power of ten, which the axis label gives.
_MAX_DRAWN = 1e100
_NORMAL_COLOR = "tab:blue"
_ANOMALY_COLOR = "tab:red"


def check_plot_path(path: str | os.PathLike[str]) -> None:
    """Fail now if a plot cannot be written to ``path``, before any work is done for it.

    Raises :class:`~stream_detect.errors.DependencyError` when matplotlib is
    not installed, and :class:`~stream_detect.errors.InputError` naming
    ``path`` by the rule of :func:`~stream_detect.atomic.check_writable_file`
    (its folder, a link's target's, does not exist or no file can be made
    there, or ``path`` is itself a folder), or when its extension is not one
    of :data:`PLOT_FORMATS`.
    The commands call it first, so a long fit does not end in one of these.

    >>> check_plot_path("/no/such/folder/plot.png")
    Traceback (most recent call last):
    ...
    stream_detect.errors.InputError: /no/such/folder/plot.png: cannot write the plot: no such folder
    """
    _agg_classes()
    try:
        check_writable_file(path, by_rename=False)
    except OSError as error:
        raise InputError(
            f"cannot write the plot: {error.strerror}", source=os.fspath(path)
        ) from None
    plot_format(path)


def plot_format(path: str | os.PathLike[str]) -> str:
    """The format a plot is written in, from the extension of ``path``: png, svg or pdf.

    >>> plot_format("curves.PNG"), plot_format("curves.svg"), plot_format("a/b.pdf")
    ('png', 'svg', 'pdf')
    >>> plot_format("plots/.png")  # a hidden file's name ends in .png too
    'png'
    >>> plot_format("curves.jpg")
    Traceback (most recent call last):
    ...
    stream_detect.errors.InputError: curves.jpg: cannot write the plot: the name must end in \
.png, .svg or .pdf
    """
    # Not Path.suffix, which is empty for ".png": refused as not ending in .png, it was.
    _, dot, extension = Path(path).name.lower().rpartition(".")
    extension = extension if dot else ""
    if extension not in PLOT_FORMATS:
        raise InputError(
            "cannot write the plot: the name must end in .png, .svg or .pdf",
            source=os.fspath(path),
        )
    return extension


def histogram_edges(values: ArrayLike, bins: int = _BINS) -> Array:
    """At most ``bins + 1`` finite, strictly increasing bin edges spanning the finite ``values``.

    Unlike ``np.histogram_bin_edges`` this never fails on finite data: a
    range wider than the largest float (values near ±1e308) is split without
    computing its width, a range too narrow for ``bins`` distinct edges gets
    fewer bins, and a constant gets bins around it (±0.5, or the
    neighbouring floats when 0.5 is below its precision). No finite values:
    the edges of ``[0, 1]``.

    >>> histogram_edges([1.0, 2.0], bins=4).tolist()
    [1.0, 1.25, 1.5, 1.75, 2.0]
    >>> edges = histogram_edges([-1e308, 1e308])
    >>> bool(np.isfinite(edges).all()), bool(np.all(np.diff(edges) > 0))
    (True, True)
    >>> edges = histogram_edges([1e20, 1e20])
    >>> bool(edges[0] < 1e20 < edges[-1])
    True
    """
    data = np.asarray(values, dtype=np.float64).ravel()
    data = data[np.isfinite(data)]
    if data.size == 0:
        return np.linspace(0.0, 1.0, bins + 1)
    lo, hi = float(data.min()), float(data.max())
    if lo == hi:
        below, above = lo - 0.5, hi + 0.5
        lo = below if below < lo else math.nextafter(lo, -math.inf)
        hi = above if above > hi else math.nextafter(hi, math.inf)
        # At ±the largest float the neighbour outside is infinite: keep that end.
        lo = lo if math.isfinite(lo) else float(data[0])
        hi = hi if math.isfinite(hi) else float(data[0])
    fraction = np.linspace(0.0, 1.0, bins + 1)
    # Weighting the ends, rather than lo + (hi - lo) * fraction, cannot overflow.
    edges = lo * (1.0 - fraction) + hi * fraction
    edges[0], edges[-1] = lo, hi
    unique: Array = np.unique(np.clip(edges, lo, hi))
    return unique


def _agg_classes() -> tuple[Any, Any]:
    """matplotlib's Figure and Agg canvas classes; DependencyError without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise DependencyError("matplotlib", "plot") from exc
    return Figure, FigureCanvasAgg


def _figure(width_px: int, height_px: int) -> Figure:
    """A Figure of exactly this pixel size on an Agg canvas; DependencyError without matplotlib."""
    figure_class, canvas_class = _agg_classes()
    figure: Figure = figure_class(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    canvas_class(figure)
    return figure


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``figure`` in the format its extension names, at its own size; return the path.

    A PNG has the figure's pixel size (no tight bounding box); SVG and PDF the
    same size in points.
    """
    target = Path(path)
    file_format = plot_format(target)
    try:
        figure.savefig(target, format=file_format, dpi=DPI)
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
    figure = _figure(*CURVES_SIZE)
    top, bottom = figure.subplots(2, 1)
    scale = _display_scale(np.append(curves.log_epsilon, log_epsilon))
    unit = _unit_text(scale)
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
    _mark_epsilon(bottom, log_epsilon / scale, None)
    bottom.set_xlabel(f"log p(x){unit}")
    bottom.set_ylabel("density")
    bottom.set_title("log p of normal and anomalous events")
    if bottom.get_legend_handles_labels()[0]:
        bottom.legend(loc="best", fontsize="small")
    figure.tight_layout()
    return _save(figure, path)


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


def _display_scale(values: Array) -> float:
    """1.0, or the power of ten that brings finite values beyond ±1e100 back below ±10."""
    finite = values[np.isfinite(values)]
    largest = float(np.max(np.abs(finite))) if finite.size else 0.0
    if largest <= _MAX_DRAWN:
        return 1.0
    return 10.0 ** math.floor(math.log10(largest))


def _unit_text(scale: float) -> str:
    """What the axis label says of values drawn divided by ``scale``."""
    return "" if scale == 1.0 else f" / {scale:.0e}"


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
    the title. Bins come from :func:`histogram_edges`; values beyond ±1e100
    are drawn divided by a power of ten, named in the axis label. ``transforms`` may be a
    :class:`~stream_detect.transforms.FeatureTransforms` or any mapping from
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
    figure = _figure(HISTOGRAM_WIDTH, HISTOGRAM_ROW_HEIGHT * len(names))
    axes = figure.subplots(len(names), 2, squeeze=False)
    for row, feature in enumerate(names):
        name = literal_text(feature)
        column = values[:, row]
        raw = column[np.isfinite(column)]
        transform = transforms.get(feature, Transform())
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
        figure.suptitle(literal_text(title))
    figure.tight_layout()
    return _save(figure, path)


def literal_text(text: str) -> str:
    """``text`` from the data (a feature's or a file's name) as a plot shows it, literally.

    matplotlib reads text between two ``$`` as TeX: ``a$\\foo$`` failed the whole
    plot with a ParseFatalException, so a ``$`` is escaped; and a character that
    does not print is escaped too (:func:`~stream_detect.field_names.shown_name`),
    where a font has no glyph for it.

    >>> print(literal_text("price $ in $USD"), literal_text("a\\tb"))
    price \\$ in \\$USD 'a\\tb'
    """
    return shown_name(text).replace("$", r"\$")


def _skew_text(values: Array) -> str:
    value = skewness(values) if values.size else math.nan
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def _histogram(axes: Any, values: Array, title: str, color: str) -> None:
    axes.set_title(title, fontsize="medium")
    if values.size:
        scale = _display_scale(values)
        drawn = values / scale
        axes.hist(drawn, bins=histogram_edges(drawn), color=color, alpha=0.8)
        if scale != 1.0:
            axes.set_xlabel(f"value{_unit_text(scale)}", fontsize="small")
    else:
        axes.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=axes.transAxes)
    axes.tick_params(labelsize="small")
