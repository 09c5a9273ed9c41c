"""``stream-detect inspect DATA``: describe each feature and suggest a transform towards Gaussian.

Per feature: count, mean, population variance, skewness, share of zeros and of
negative values, the suggested transform
(:func:`~stream_detect.transform_suggestions.suggest_transform`) and the
skewness after it. Printed as a table on stdout, or as one JSON object with
``--json``; ``--plot PATH`` draws the histograms before and after each
suggested transform (:func:`~stream_detect.plots.plot_histograms`).

DATA is CSV with a header or JSON lines (:func:`~stream_detect.tables.iter_table`),
read in one streaming pass, so files larger than memory are fine:

* count, mean, variance and skewness are exact, from running moments up to the
  third merged chunk by chunk (:class:`~stream_detect.skewness.ThirdMoments`);
* the suggestions, the skewness after them and the histograms come from a
  uniform sample of at most ``--sample-rows`` rows (reservoir sampling), which
  is the whole file when it is smaller. The output says when it is a sample.

The label column is never a feature; its counts are reported. A progress bar
driven by the bytes read goes to stderr (only for reads longer than a second).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

import numpy as np
from numpy.typing import NDArray

from stream_detect.errors import ConfigError, InputError
from stream_detect.field_names import optional_field_name, parse_feature_names
from stream_detect.flags import StoreOnce
from stream_detect.progress import Progress
from stream_detect.skewness import ThirdMoments
from stream_detect.tables import iter_table
from stream_detect.transform_suggestions import Suggestion, suggest_transform
from stream_detect.transforms import FeatureTransforms

__all__ = [
    "DEFAULT_SAMPLE_ROWS",
    "FeatureReport",
    "InspectReport",
    "RowReservoir",
    "add_arguments",
    "format_table",
    "inspect_chunks",
    "inspect_file",
    "run",
]

Array = NDArray[np.float64]

#: Rows kept for the suggestions and histograms of a large file.
DEFAULT_SAMPLE_ROWS = 100_000
#: Bounds the sample's memory (float64 values) whatever the number of features.
_MAX_SAMPLE_VALUES = 10_000_000


class _Chunk(Protocol):
    """What :func:`inspect_chunks` reads of a :class:`~stream_detect.tables.TableChunk`."""

    @property
    def X(self) -> Array: ...

    @property
    def y(self) -> NDArray[np.int8] | None: ...

    @property
    def features(self) -> list[str]: ...


class RowReservoir:
    """A uniform random sample of at most ``capacity`` rows of a stream of chunks.

    Algorithm R, vectorised per chunk: row i (0-based, counted over all chunks)
    enters with probability ``capacity / (i + 1)`` into a uniformly chosen
    slot, so after any number of rows every row seen is in the sample with the
    same probability. The slots are filled in arrival order until full, so a
    stream no longer than ``capacity`` is kept whole and in order.

    >>> reservoir = RowReservoir(3, d=1, seed=0)
    >>> reservoir.add(np.arange(2.0)[:, None]); reservoir.sample.ravel().tolist()
    [0.0, 1.0]
    >>> reservoir.add(np.arange(2.0, 100.0)[:, None]); reservoir.sample.shape, reservoir.seen
    ((3, 1), 100)
    """

    def __init__(self, capacity: int, d: int, seed: int | None = 0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 row, got {capacity}")
        self.capacity = capacity
        self.seen = 0
        self._rows: Array = np.empty((capacity, d))
        self._rng = np.random.default_rng(seed)

    @property
    def sample(self) -> Array:
        """The rows kept (a view; at most ``capacity`` of them)."""
        return self._rows[: min(self.seen, self.capacity)]

    def add(self, X: Array) -> None:
        """Offer the rows of ``X`` (in order) to the sample."""
        rows = X.shape[0]
        free = max(0, min(self.capacity - self.seen, rows))
        self._rows[self.seen : self.seen + free] = X[:free]
        if free < rows:
            # Row with global index i replaces slot j ~ U{0..i} when j < capacity.
            index = np.arange(self.seen + free, self.seen + rows, dtype=np.int64)
            slots = self._rng.integers(0, index + 1)
            chosen = np.flatnonzero(slots < self.capacity)
            # A later row wins a slot taken twice in this chunk, as in the sequential loop.
            reversed_slots = slots[chosen][::-1]
            unique_slots, first = np.unique(reversed_slots, return_index=True)
            winners = chosen[::-1][first] + free
            self._rows[unique_slots] = X[winners]
        self.seen += rows


@dataclass(frozen=True)
class FeatureReport:
    """What ``inspect`` says about one feature (shares are fractions in [0, 1])."""

    name: str
    count: int
    mean: float
    variance: float
    skewness: float
    minimum: float
    maximum: float
    zero_share: float
    negative_share: float
    suggestion: Suggestion

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, with NaN as None."""
        return {
            "name": self.name,
            "count": self.count,
            "mean": _json_float(self.mean),
            "variance": _json_float(self.variance),
            "skewness": _json_float(self.skewness),
            "min": _json_float(self.minimum),
            "max": _json_float(self.maximum),
            "zero_share": _json_float(self.zero_share),
            "negative_share": _json_float(self.negative_share),
            "suggested": self.suggestion.transform.spec,
            "skew_after": _json_float(self.suggestion.skew_after),
        }


@dataclass(frozen=True, eq=False)
class InspectReport:
    """The whole inspection: rows, label counts, one :class:`FeatureReport` per feature.

    ``sample`` holds the rows the suggestions were made on (all rows when
    ``sample_rows == rows``), for the histograms.
    """

    source: str
    rows: int
    features: list[FeatureReport]
    labels: dict[str, int] | None
    sample: Array

    @property
    def sample_rows(self) -> int:
        """Rows in the sample."""
        return int(self.sample.shape[0])

    @property
    def feature_names(self) -> list[str]:
        """The feature names, in column order."""
        return [feature.name for feature in self.features]

    @property
    def transforms(self) -> FeatureTransforms:
        """The suggested transforms (features left as they are are not named)."""
        return FeatureTransforms({f.name: f.suggestion.transform for f in self.features})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (the sample is left out)."""
        return {
            "source": self.source,
            "rows": self.rows,
            "d": len(self.features),
            "labels": self.labels,
            "sample_rows": self.sample_rows,
            "features": [feature.to_dict() for feature in self.features],
            "transforms": self.transforms.to_dict(),
        }


def inspect_chunks(
    chunks: Iterable[_Chunk],
    source: str,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int | None = 0,
    on_chunk: Callable[[_Chunk], None] | None = None,
) -> InspectReport:
    """Inspect a table given as chunks of rows, in one pass; see the module docstring.

    ``on_chunk`` is called after each chunk (to drive a progress bar).

    >>> from types import SimpleNamespace
    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([rng.normal(size=4000), rng.lognormal(size=4000)])
    >>> chunks = [SimpleNamespace(X=part, y=None, features=["a", "b"]) for part in np.split(X, 4)]
    >>> report = inspect_chunks(chunks, "example")
    >>> report.rows, report.transforms.to_dict()
    (4000, {'b': 'log'})
    """
    if sample_rows < 1:
        raise ConfigError("sample_rows", sample_rows, "an integer >= 1")
    features: list[str] | None = None
    moments: ThirdMoments | None = None
    reservoir: RowReservoir | None = None
    zeros = negatives = np.zeros(0, dtype=np.int64)
    positives = normals = 0
    labelled = False
    rows = 0
    for chunk in chunks:
        if features is None:
            features = list(chunk.features)
            d = len(features)
            if d == 0:
                raise InputError("no numeric features to inspect", source=source)
            moments = ThirdMoments(d)
            capacity = max(1, min(sample_rows, _MAX_SAMPLE_VALUES // d))
            reservoir = RowReservoir(capacity, d, seed)
            zeros = np.zeros(d, dtype=np.int64)
            negatives = np.zeros(d, dtype=np.int64)
        elif list(chunk.features) != features:
            raise InputError(f"features changed from {features} to {chunk.features}", source=source)
        assert moments is not None and reservoir is not None
        X = np.asarray(chunk.X, dtype=np.float64)
        moments.learn(X)
        reservoir.add(X)
        zeros += np.count_nonzero(X == 0.0, axis=0)
        negatives += np.count_nonzero(X < 0.0, axis=0)
        rows += X.shape[0]
        if chunk.y is not None:
            labelled = True
            labels = np.asarray(chunk.y)
            positives += int(np.count_nonzero(labels == 1))
            normals += int(np.count_nonzero(labels == 0))
        if on_chunk is not None:
            on_chunk(chunk)
    if features is None or moments is None or reservoir is None or rows == 0:
        raise InputError("no data rows to inspect", source=source)
    sample = reservoir.sample.copy()
    counts = moments.n
    shares_base = np.where(counts > 0, counts, 1.0)
    reports = [
        FeatureReport(
            name=name,
            count=int(counts[j]),
            mean=float(moments.mean[j]) if counts[j] > 0 else math.nan,
            variance=float(moments.var[j]),
            skewness=float(moments.skewness[j]),
            minimum=float(moments.min[j]) if counts[j] > 0 else math.nan,
            maximum=float(moments.max[j]) if counts[j] > 0 else math.nan,
            zero_share=float(zeros[j] / shares_base[j]) if counts[j] > 0 else math.nan,
            negative_share=float(negatives[j] / shares_base[j]) if counts[j] > 0 else math.nan,
            suggestion=_suggest(sample[:, j], float(moments.skewness[j])),
        )
        for j, name in enumerate(features)
    ]
    labels_out = {"anomalous": positives, "normal": normals} if labelled else None
    return InspectReport(source, rows, reports, labels_out, sample)


def _suggest(sample: Array, exact_skewness: float) -> Suggestion:
    """The suggestion from the sample, with the exact skewness where it is known.

    Before any transform, and after none, the skewness of every row is known
    exactly; only the skewness after a real transform comes from the sample.
    """
    suggestion = suggest_transform(sample)
    if suggestion.transform.is_identity:
        return Suggestion(suggestion.transform, exact_skewness, exact_skewness)
    return Suggestion(suggestion.transform, exact_skewness, suggestion.skew_after)


def inspect_file(
    path: str,
    label_field: str | None = "label",
    features: Sequence[str] | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int | None = 0,
    progress_stream: TextIO | None = None,
) -> InspectReport:
    """Inspect a CSV or JSON-lines file; ``progress_stream`` gets a progress bar (None: none).

    Errors in the file raise :class:`~stream_detect.errors.InputError` naming
    the file and line.
    """
    chunks = iter_table(path, label_field=label_field, features=features)
    if progress_stream is None:
        return inspect_chunks(chunks, path, sample_rows, seed)
    try:
        total: float | None = float(os.path.getsize(path))
    except OSError:
        total = None  # iter_table says what is wrong with the path
    label = f"inspect {os.path.basename(path)}"
    with Progress(total, label, stream=progress_stream, unit="bytes") as progress:

        def advance(chunk: Any) -> None:
            progress.advance_to(float(chunk.bytes_read))

        return inspect_chunks(chunks, path, sample_rows, seed, on_chunk=advance)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``inspect``."""
    parser.add_argument("data", metavar="DATA", help="CSV (with a header) or JSON-lines events")
    parser.add_argument(
        "--plot",
        metavar="PATH",
        help="draw each feature's histogram before and after its suggested transform"
        " (.png, .svg or .pdf)",
    )
    parser.add_argument(
        "--label-field",
        default="label",
        metavar="NAME",
        help="column holding the labels; never a feature, its counts are reported "
        "(default: label; none for no label column)",
    )
    parser.add_argument(
        "--features",
        action=StoreOnce,
        metavar="A,B,...",
        help="comma-separated features to inspect (default: every numeric field)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )
    parser.add_argument(
        "--sample-rows",
        type=int,
        default=DEFAULT_SAMPLE_ROWS,
        metavar="N",
        help="rows sampled uniformly for the suggestions and histograms of a larger file "
        f"(default: {DEFAULT_SAMPLE_ROWS})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the row sample (default: 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    """Inspect, plot if asked, print the table or the JSON object."""
    if args.sample_rows < 1:
        raise ConfigError("--sample-rows", args.sample_rows, "an integer >= 1")
    if args.plot is not None:
        from stream_detect.plots import check_plot_path

        # Fail on a destination that cannot be written now, not after reading a large file.
        check_plot_path(args.plot)
    label_field = optional_field_name(args.label_field, "--label-field")
    features = parse_feature_names(args.features, "--features", {"label_field": label_field})
    report = inspect_file(
        args.data,
        label_field=label_field,
        features=features,
        sample_rows=args.sample_rows,
        seed=args.seed,
        progress_stream=None if args.no_progress else sys.stderr,
    )
    if args.plot is not None:
        from stream_detect.plots import plot_histograms

        title = None
        if report.sample_rows < report.rows:
            title = f"uniform sample of {report.sample_rows:,} of {report.rows:,} rows"
        plot_histograms(
            report.sample, report.feature_names, report.transforms, args.plot, title=title
        )
    if args.json:
        print(json.dumps({**report.to_dict(), "plot": args.plot}, allow_nan=False))
    else:
        print(format_table(report, plot=args.plot))
    return 0


def format_table(report: InspectReport, plot: str | None = None) -> str:
    """The terminal summary: a header line, one row per feature, then notes.

    >>> from types import SimpleNamespace
    >>> chunk = SimpleNamespace(X=np.array([[0.0, 1.0], [2.0, 1.0], [-1.0, 1.0]]), y=None,
    ...                         features=["x", "const"])
    >>> print(format_table(inspect_chunks([chunk], "tiny.csv")))
    tiny.csv: 3 rows, 2 features, no labels
    feature  count  mean  variance  skewness  zeros  negatives  suggested  skew after
    x            3 0.3333    1.556    0.3818  33.3%      33.3%  none          0.3818
    const        3      1        0         0   0.0%       0.0%  none               0
    """
    lines = [_headline(report)]
    header = (
        "feature",
        "count",
        "mean",
        "variance",
        "skewness",
        "zeros",
        "negatives",
        "suggested",
        "skew after",
    )
    body = [
        (
            f.name,
            str(f.count),
            _fmt(f.mean),
            _fmt(f.variance),
            _fmt(f.skewness),
            _percent(f.zero_share),
            _percent(f.negative_share),
            f.suggestion.transform.spec,
            _fmt(f.suggestion.skew_after),
        )
        for f in report.features
    ]
    left = {0, 7}  # names and specs read best left-aligned, numbers right-aligned
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts)

    lines.append(line(header).rstrip())
    lines.extend(line(row).rstrip() for row in body)
    if report.sample_rows < report.rows:
        lines.append(
            f"suggestions and skew after: from a uniform sample of {report.sample_rows:,} "
            f"of {report.rows:,} rows"
        )
    flags = " ".join(
        f"--transform {name}={spec}" for name, spec in report.transforms.to_dict().items()
    )
    if flags:
        lines.append(f"to fit with the suggestions: {flags}")
    if plot is not None:
        lines.append(f"histograms: {plot}")
    return "\n".join(lines)


def _headline(report: InspectReport) -> str:
    labels = "no labels"
    if report.labels is not None:
        labels = (
            f"labels: {report.labels['anomalous']:,} anomalous, {report.labels['normal']:,} normal"
        )
    d = len(report.features)
    return f"{report.source}: {report.rows:,} rows, {d} feature{'s' if d != 1 else ''}, {labels}"


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4g}"


def _percent(share: float) -> str:
    return "n/a" if math.isnan(share) else f"{100.0 * share:.1f}%"


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None
