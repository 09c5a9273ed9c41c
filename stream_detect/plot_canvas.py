"""What every plot shares: its file, its canvas, and data values drawn safely.

The file format comes from the extension of the path: ``.png``, ``.svg`` or
``.pdf`` (any case); any other name is refused by :func:`check_plot_path`.

matplotlib is optional (``pip install 'stream-detect[plot]'``); it is imported
only when a plot is drawn, and its absence is a
:class:`~stream_detect.errors.DependencyError`. Figures are drawn with the Agg
canvas directly, never through pyplot, so drawing a plot changes no global
matplotlib state (a user's interactive backend stays as it was) and is safe
from a worker thread: :func:`agg_figure` makes one of a fixed pixel size,
:func:`save_figure` writes it in the format its name says.

Before any work whose result is to be plotted, call :func:`check_plot_path`:
it fails at once on what would otherwise fail only at the end (no matplotlib,
no such folder). Values from the data are drawn through
:func:`histogram_edges` (bins that never fail on finite data),
:func:`display_scale` (values beyond ±1e100 drawn divided by a power of ten)
and :func:`literal_text` (a name shown as it is, never read as TeX).

The plots themselves are :mod:`stream_detect.threshold_plot`,
:mod:`stream_detect.histogram_plot` and :mod:`stream_detect.replay_plot`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.atomic import check_writable_file
from stream_detect.errors import DependencyError, InputError
from stream_detect.field_names import shown_name

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "NORMAL_COLOR",
    "PLOT_FORMATS",
    "agg_figure",
    "check_plot_path",
    "display_scale",
    "histogram_edges",
    "literal_text",
    "plot_format",
    "save_figure",
    "unit_text",
]

Array = NDArray[np.float64]

#: The plot formats, each written for the file extension of its name.
PLOT_FORMATS = ("png", "svg", "pdf")
#: Dots per inch of every PNG written here.
DPI = 100
_BINS = 50
#: matplotlib's axis arithmetic (margins, ticks) overflows near the float limit;
#: larger values are drawn divided by a power of ten, which the axis label gives.
_MAX_DRAWN = 1e100
#: The colour of normal events (and of raw values) in every plot.
NORMAL_COLOR = "tab:blue"


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


def agg_figure(width_px: int, height_px: int) -> Figure:
    """A Figure of exactly this pixel size on an Agg canvas; DependencyError without matplotlib."""
    figure_class, canvas_class = _agg_classes()
    figure: Figure = figure_class(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    canvas_class(figure)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike[str]) -> Path:
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


def display_scale(values: Array) -> float:
    """1.0, or the power of ten that brings finite values beyond ±1e100 back below ±10.

    >>> display_scale(np.array([1.0, -5e120])), display_scale(np.array([3.0, np.inf]))
    (1e+120, 1.0)
    """
    finite = values[np.isfinite(values)]
    largest = float(np.max(np.abs(finite))) if finite.size else 0.0
    if largest <= _MAX_DRAWN:
        return 1.0
    return 10.0 ** math.floor(math.log10(largest))


def unit_text(scale: float) -> str:
    """What the axis label says of values drawn divided by ``scale``.

    >>> unit_text(1e120), unit_text(1.0)
    (' / 1e+120', '')
    """
    return "" if scale == 1.0 else f" / {scale:.0e}"


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
