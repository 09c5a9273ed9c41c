"""Tests of stream_detect.plots: exact threshold curves, and PNGs of the documented size."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect.errors import ConfigError, DependencyError, InputError
from stream_detect.plots import (
    CURVES_SIZE,
    HISTOGRAM_ROW_HEIGHT,
    HISTOGRAM_WIDTH,
    MAX_HISTOGRAM_FEATURES,
    plot_histograms,
    plot_threshold_curves,
    threshold_curves,
)
from stream_detect.transforms import FeatureTransforms, parse_transform, suggest_transforms

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


# ---------------------------------------------------------------- threshold curves


def brute_force(y: np.ndarray, log_p: np.ndarray, log_epsilon: float) -> tuple[float, float, float]:
    flagged = log_p < log_epsilon
    tp = int(np.sum(flagged & (y == 1)))
    fp = int(np.sum(flagged & (y == 0)))
    fn = int(np.sum(~flagged & (y == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(-20, 5)), min_size=1, max_size=60),
)
def test_threshold_curves_equal_a_brute_force_sweep(pairs: list[tuple[int, int]]) -> None:
    y = np.array([label for label, _ in pairs])
    log_p = np.array([float(score) for _, score in pairs])  # small integers: many ties
    curves = threshold_curves(y, log_p)
    assert np.array_equal(curves.log_epsilon, np.unique(log_p))
    for k, cut in enumerate(curves.log_epsilon):
        # any log epsilon in (cut, next cut] flags exactly the events with log_p <= cut
        upper = curves.log_epsilon[k + 1] if k + 1 < curves.log_epsilon.size else cut + 1.0
        for log_epsilon in (np.nextafter(cut, np.inf), (cut + upper) / 2, upper):
            expected = brute_force(y, log_p, log_epsilon)
            got = (curves.precision[k], curves.recall[k], curves.f1[k])
            np.testing.assert_allclose(got, expected, atol=1e-12)
        assert curves.n_flagged[k] == int(np.sum(log_p <= cut))


def test_threshold_curves_agree_with_the_threshold_module() -> None:
    threshold = pytest.importorskip("stream_detect.threshold")
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.05).astype(int)
    log_p = np.where(y == 1, rng.normal(-12, 3, 500), rng.normal(-5, 1, 500))
    curves = threshold_curves(y, log_p)
    for k in range(0, curves.log_epsilon.size, 37):
        counts = threshold.confusion_counts(y, log_p <= curves.log_epsilon[k])
        assert counts.precision == pytest.approx(curves.precision[k])
        assert counts.recall == pytest.approx(curves.recall[k])
        assert counts.f1 == pytest.approx(curves.f1[k])
    best = threshold.best_log_threshold(y, log_p)
    assert best.f1 == pytest.approx(curves.f1.max())


def test_threshold_curves_edge_cases() -> None:
    empty = threshold_curves([], [])
    assert empty.log_epsilon.size == 0
    no_anomalies = threshold_curves([0, 0], [-1.0, -2.0])
    assert no_anomalies.recall.tolist() == [0.0, 0.0]
    assert no_anomalies.f1.tolist() == [0.0, 0.0]
    with_inf = threshold_curves([1, 0, 1], [-np.inf, -1.0, -np.inf])
    assert with_inf.log_epsilon.tolist() == [-np.inf, -1.0]
    assert with_inf.recall.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="NaN"):
        threshold_curves([0, 1], [np.nan, 1.0])
    with pytest.raises(ValueError, match="values"):
        threshold_curves([0, 1, 1], [1.0, 2.0])


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
