"""The plots (threshold_plot, histogram_plot): PNGs of the documented size, whatever the values."""

from __future__ import annotations

import math
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect.errors import ConfigError, DependencyError, InputError
from stream_detect.feature_transforms import FeatureTransforms
from stream_detect.histogram_plot import (
    HISTOGRAM_ROW_HEIGHT,
    HISTOGRAM_WIDTH,
    MAX_HISTOGRAM_FEATURES,
    plot_histograms,
)
from stream_detect.inspection import inspect_chunks
from stream_detect.plot_canvas import check_plot_path, histogram_edges
from stream_detect.threshold_plot import CURVES_SIZE, plot_threshold_curves
from stream_detect.transform_suggestions import suggest_transforms
from stream_detect.transforms import parse_transform

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, after checking its signature and its chunks' CRCs."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, "not a PNG signature"
    offset, chunk_types = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in chunk {kind!r}"
        chunk_types.append(kind)
        offset += 12 + length
    assert chunk_types[0] == b"IHDR" and chunk_types[-1] == b"IEND"
    assert b"IDAT" in chunk_types
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# ---------------------------------------------------------------- PNGs


@pytest.fixture
def scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(2000, dtype=int), np.ones(40, dtype=int)]
    log_p = np.r_[rng.normal(-5, 1, 2000), rng.normal(-14, 4, 40)]
    return y, log_p


def test_threshold_curves_png_has_the_documented_size(
    tmp_path: Path, scores: tuple[np.ndarray, np.ndarray]
) -> None:
    y, log_p = scores
    path = plot_threshold_curves(y, log_p, -9.0, tmp_path / "curves.png", title="validation")
    assert path == tmp_path / "curves.png"
    assert png_size(path) == CURVES_SIZE == (800, 800)


@pytest.mark.parametrize(
    ("y", "log_p", "log_epsilon"),
    [
        ([0, 0, 0], [-1.0, -2.0, -3.0], -2.5),  # no anomalies
        ([1, 1], [-1.0, -2.0], -1.5),  # no normal events
        ([0, 1, 1], [-1.0, -np.inf, -5.0], -3.0),  # -inf scores
        ([0, 1], [-np.inf, -np.inf], np.inf),  # nothing finite, epsilon infinite
        ([0, 1, 0], [2.0, 2.0, 2.0], 2.0),  # all tied
        ([], [], 0.0),  # nothing at all
    ],
)
def test_threshold_curves_png_survives_degenerate_scores(
    tmp_path: Path, y: list[int], log_p: list[float], log_epsilon: float
) -> None:
    path = plot_threshold_curves(y, log_p, log_epsilon, str(tmp_path / "c.png"))
    assert png_size(path) == CURVES_SIZE


@pytest.mark.parametrize("d", [1, 3])
def test_histograms_png_has_the_documented_size(tmp_path: Path, d: int) -> None:
    rng = np.random.default_rng(2)
    X = np.column_stack(
        [rng.lognormal(size=3000), rng.normal(size=3000), rng.exponential(size=3000) - 1]
    )[:, :d]
    names = ["bytes", "temperature", "shifted"][:d]
    transforms = FeatureTransforms.from_suggestions(suggest_transforms(X, names))
    path = plot_histograms(X, names, transforms, tmp_path / "h.png", title="sample")
    assert png_size(path) == (HISTOGRAM_WIDTH, HISTOGRAM_ROW_HEIGHT * d) == (1000, 250 * d)


def test_histograms_with_values_outside_the_domain_and_empty_columns(tmp_path: Path) -> None:
    X = np.array([[-1.0, np.nan], [0.0, np.nan], [3.0, np.inf]])
    transforms = {"a": parse_transform("log")}
    path = plot_histograms(X, ["a", "b"], transforms, tmp_path / "h.png")
    assert png_size(path) == (1000, 500)


def test_histograms_reject_shape_mismatch_and_too_many_features(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        plot_histograms(np.ones((3, 2)), ["a"], {}, tmp_path / "h.png")
    d = MAX_HISTOGRAM_FEATURES + 1
    with pytest.raises(ConfigError):
        plot_histograms(np.ones((2, d)), [f"f{i}" for i in range(d)], {}, tmp_path / "h.png")


def test_unwritable_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot write the plot: no such folder"):
        plot_threshold_curves([0, 1], [-1.0, -5.0], -3.0, tmp_path / "missing" / "c.png")
    with pytest.raises(InputError, match="no such folder"):
        plot_histograms(np.ones((2, 1)), ["a"], {}, tmp_path / "missing" / "h.png")
    # a folder where the file should be: the write itself fails
    (tmp_path / "taken.png").mkdir()
    with pytest.raises(InputError, match="cannot write the plot"):
        plot_threshold_curves([0, 1], [-1.0, -5.0], -3.0, tmp_path / "taken.png")


def test_missing_matplotlib_is_a_dependency_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(DependencyError) as info:
        plot_threshold_curves([0, 1], [-1.0, -5.0], -3.0, tmp_path / "c.png")
    assert info.value.extra == "plot"
    assert "pip install 'stream-detect[plot]'" in str(info.value)
    with pytest.raises(DependencyError):
        plot_histograms(np.ones((2, 1)), ["a"], {}, tmp_path / "h.png")
    assert not (tmp_path / "c.png").exists()


def test_plotting_leaves_the_pyplot_backend_alone(tmp_path: Path) -> None:
    import matplotlib

    backend = matplotlib.get_backend()
    plot_threshold_curves([0, 1], [-1.0, -5.0], -3.0, tmp_path / "c.png")
    assert matplotlib.get_backend() == backend


# ---------------------------------------------------------------- extreme values


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False),
            st.sampled_from([1.7976931348623157e308, -1.7976931348623157e308, 1e20, 0.0]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_histogram_edges_are_finite_increasing_and_span_the_values(values: list[float]) -> None:
    edges = histogram_edges(values)
    assert np.isfinite(edges).all()
    assert np.all(np.diff(edges) > 0)
    assert 2 <= edges.size <= 51
    assert edges[0] <= min(values) and max(values) <= edges[-1]
    counts, _ = np.histogram(values, bins=edges)  # numpy accepts them as they are
    assert counts.sum() == len(values)


HUGE = [
    [1e308, -1e308, 1e307, 0.0],  # the range overflows float64
    [1.7976931348623157e308, 1.7e308, 1.75e308],  # near the largest float
    [1e20, 1e20, 1e20],  # a constant too large for +-0.5
    [-1e308, -np.inf, 0.0, 5.0],
]


@pytest.mark.parametrize("values", HUGE)
def test_plots_of_huge_values_draw_without_errors_or_warnings(
    tmp_path: Path, values: list[float]
) -> None:
    # matplotlib's own overflow warnings would be errors here too.
    import warnings

    column = np.array(values)
    X = np.column_stack([column, np.abs(column)])
    transforms = {"b": parse_transform("root:3")}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = plot_histograms(X, ["a", "b"], transforms, tmp_path / "h.png")
        assert png_size(path) == (1000, 500)
        y = [i % 2 for i in range(len(values))]
        curves = plot_threshold_curves(y, column, float(np.nanmax(column)), tmp_path / "c.png")
        assert png_size(curves) == CURVES_SIZE


def test_inspect_report_of_huge_values_plots(tmp_path: Path) -> None:
    from types import SimpleNamespace

    X = np.array([[1e308], [-1e308], [1e307], [0.0]])
    report = inspect_chunks([SimpleNamespace(X=X, y=None, features=["x"])], "big.csv")
    path = plot_histograms(report.sample, ["x"], report.transforms, tmp_path / "h.png")
    assert png_size(path) == (1000, 250)


def test_check_plot_path_fails_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_plot_path(tmp_path / "fine.png")
    with pytest.raises(InputError, match="cannot write the plot: no such folder"):
        check_plot_path(tmp_path / "missing" / "p.png")
    with pytest.raises(InputError, match="cannot write the plot: it is a folder"):
        check_plot_path(tmp_path)
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(DependencyError, match=r"stream-detect\[plot\]"):
        check_plot_path(tmp_path / "fine.png")


def test_a_plot_through_a_link_into_no_folder_is_refused_before_the_work(
    tmp_path: Path,
) -> None:
    # The plot is written through the link; its folder was not looked at, so the
    # failure came only when the plot was saved, after the work for it.
    dangling = tmp_path / "plot.png"
    dangling.symlink_to(tmp_path / "absent" / "plot.png")
    with pytest.raises(InputError, match=r"plot.png: cannot write the plot: no such folder"):
        check_plot_path(dangling)


def test_a_hidden_file_named_dot_png_is_written(tmp_path: Path) -> None:
    # Path(".png").suffix is "", so it was refused as "the name must end in .png".
    target = tmp_path / ".png"
    check_plot_path(target)
    plot_threshold_curves(np.array([0, 1, 0]), np.array([-1.0, -5.0, -1.5]), -3.0, target)
    assert target.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(InputError, match=r"the name must end in \.png, \.svg or \.pdf"):
        check_plot_path(tmp_path / "png")


def _green_pixels(path: Path) -> int:
    """Pixels of the F1 curve's colour (tab:green) in an image."""
    from matplotlib.image import imread

    rgb = imread(path)[..., :3]
    return int(np.count_nonzero((rgb[..., 1] > 0.5) & (rgb[..., 0] < 0.3) & (rgb[..., 2] < 0.3)))


@pytest.mark.parametrize("log_epsilon", [6.0, -math.inf])
def test_curves_of_a_single_distinct_score_are_drawn(tmp_path: Path, log_epsilon: float) -> None:
    # Every event scoring alike gave one cut point, and a step curve of one point draws
    # nothing: only the legend's sample of the F1 line was green.
    pytest.importorskip("matplotlib")
    out = plot_threshold_curves(
        np.array([0, 0, 1, 0]), np.full(4, 5.0), log_epsilon, tmp_path / "c.png"
    )
    assert _green_pixels(out) > 1000


def test_names_from_the_data_are_drawn_as_written(tmp_path: Path) -> None:
    # "a$\foo$" was read as TeX and failed the plot (ParseFatalException, exit 1); an
    # escape character in a name made matplotlib warn of a missing glyph.
    pytest.importorskip("matplotlib")
    import warnings

    from stream_detect.replay_plot import plot_replay

    names = ["a$\\foo$", "\x1b[31mred"]
    X = np.random.default_rng(0).lognormal(size=(50, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_histograms(X, names, {}, tmp_path / "h.png", title="$\\bar$ sample")
        plot_replay(
            tmp_path / "r.png", X[:, 0], -X[:, 1], np.full(50, -3.0), np.zeros(50, dtype=bool),
            value_name=names[0], title="data$\\x$.csv",
        )  # fmt: skip
    assert (tmp_path / "h.png").exists() and (tmp_path / "r.png").exists()
