"""What ``inspect`` finds in a table: each feature's moments, shares and suggested transform.

Per feature: count, mean, population variance, skewness, minimum, maximum,
share of zeros and of negative values, the suggested transform
(:func:`~stream_detect.transform_suggestions.suggest_transform`) and the
skewness after it, gathered in an :class:`InspectReport`; the command
(:mod:`stream_detect.commands.inspect`) prints it.

DATA is CSV with a header or JSON lines (:func:`~stream_detect.tables.iter_table`),
read in one streaming pass, so files larger than memory are fine:

* count, mean, variance and skewness are exact, from running moments up to the
  third merged chunk by chunk (:class:`~stream_detect.skewness.ThirdMoments`);
* the suggestions, the skewness after them and the histograms come from a
  uniform sample of at most ``sample_rows`` rows
  (:class:`~stream_detect.reservoir.RowReservoir`), which is the whole file
  when it is smaller. The report says how many rows the sample holds.

The label column is never a feature; its counts are reported.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

import numpy as np
from numpy.typing import NDArray

from stream_detect.errors import ConfigError, InputError
from stream_detect.feature_transforms import FeatureTransforms
from stream_detect.progress import Progress
from stream_detect.reservoir import RowReservoir
from stream_detect.skewness import ThirdMoments
from stream_detect.tables import iter_table
from stream_detect.transform_suggestions import Suggestion, suggest_transform

__all__ = [
    "DEFAULT_SAMPLE_ROWS",
    "FeatureReport",
    "InspectReport",
    "inspect_chunks",
    "inspect_file",
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
    on_features: Callable[[list[str]], None] | None = None,
) -> InspectReport:
    """Inspect a table given as chunks of rows, in one pass; see the module docstring.

    ``on_chunk`` is called after each chunk (to drive a progress bar);
    ``on_features`` once, with the feature names, as soon as the first chunk
    gives them (to refuse, before the rest is read, features a caller cannot use).

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
    if seed is not None and not seed >= 0:
        raise ConfigError("seed", seed, "an integer >= 0, or None")
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
            if on_features is not None:
                on_features(list(features))
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
            suggestion=_suggest(sample[:, j], float(moments.skewness[j]), float(moments.min[j])),
        )
        for j, name in enumerate(features)
    ]
    labels_out = {"anomalous": positives, "normal": normals} if labelled else None
    return InspectReport(source, rows, reports, labels_out, sample)


def _suggest(sample: Array, exact_skewness: float, minimum: float) -> Suggestion:
    """The suggestion from the sample, with the exact skewness where it is known.

    Before any transform, and after none, the skewness of every row is known
    exactly; only the skewness after a real transform comes from the sample.
    The domain is that of every row (``minimum``, the file's smallest value):
    a zero the sample missed would otherwise get ``log`` suggested, which
    ``fit`` then refuses at that zero's line.
    """
    suggestion = suggest_transform(sample, minimum=minimum if math.isfinite(minimum) else None)
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
    on_features: Callable[[list[str]], None] | None = None,
) -> InspectReport:
    """Inspect a CSV or JSON-lines file; ``progress_stream`` gets a progress bar (None: none).

    ``on_features`` is called with the feature names once the first rows are read
    (see :func:`inspect_chunks`).

    Errors in the file raise :class:`~stream_detect.errors.InputError` naming
    the file and line.
    """
    chunks = iter_table(path, label_field=label_field, features=features)
    if progress_stream is None:
        return inspect_chunks(chunks, path, sample_rows, seed, on_features=on_features)
    try:
        total: float | None = float(os.path.getsize(path))
    except OSError:
        total = None  # iter_table says what is wrong with the path
    label = f"inspect {os.path.basename(path)}"
    with Progress(total, label, stream=progress_stream, unit="bytes") as progress:

        def advance(chunk: Any) -> None:
            progress.advance_to(float(chunk.bytes_read))

        return inspect_chunks(
            chunks, path, sample_rows, seed, on_chunk=advance, on_features=on_features
        )


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None
