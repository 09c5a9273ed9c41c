"""Rows transformed for a fitted model, the first value that does not come out finite named.

:func:`transform_rows` applies a model's transforms to rows in the original
units; a value outside its transform's domain, or not finite, is an
:class:`~stream_detect.errors.InputError` naming the file and the row's line
(:data:`Lines`), or its number among the rows when the lines are not known
(:func:`row_error`, which :meth:`~stream_detect.fitted_model.FittedModel.log_p`
uses too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.errors import InputError
from stream_detect.feature_transforms import FeatureTransforms

__all__ = ["Lines", "row_error", "transform_rows"]

Array = NDArray[np.float64]
#: The 1-based line in its file of each row of an array, for messages about a row.
Lines = Sequence[int] | NDArray[np.int64]


def transform_rows(
    X: ArrayLike,
    features: Sequence[str],
    transforms: FeatureTransforms,
    *,
    source: str | None = None,
    lines: Lines | None = None,
) -> Array:
    """Apply ``transforms`` to the rows of ``X``; every value must come out finite.

    Returns a new array, or the float64 rows of ``X`` themselves (not a copy)
    when no feature has a transform; callers only read it.

    Raises :class:`InputError` naming ``source``, the first bad row and the
    feature whose value is outside the domain of its transform, or not finite.
    The row is named by its line in the file, ``lines[i]`` for row ``i``, as
    ``run`` names a line; without ``lines``, as "data row N" (its 1-based
    number among the rows, not counting a header or blank lines).

    >>> ft = FeatureTransforms.from_dict({"x": "log"})
    >>> transform_rows([[1.0], [0.0]], ["x"], ft, source="train.csv", lines=[2, 4])
    Traceback (most recent call last):
    ...
    stream_detect.errors.InputError: train.csv:4: feature 'x' = 0.0 is outside the domain of \
transform 'log'
    >>> transform_rows([[1.0], [0.0]], ["x"], ft, source="train.csv")
    Traceback (most recent call last):
    ...
    stream_detect.errors.InputError: train.csv: data row 2: feature 'x' = 0.0 is outside the \
domain of transform 'log'
    """
    values = np.asarray(X, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(features):
        raise ValueError(f"expected rows of {len(features)} features, got shape {values.shape}")
    # Without a transform the rows are used as they are: a copy of a whole table
    # (fit's matrix) would only raise the peak memory.
    transformed = transforms.apply(values, features) if len(transforms) else values
    bad = ~np.isfinite(transformed)
    if np.any(bad):
        row, column = (int(i[0]) for i in np.nonzero(bad))
        name = features[column]
        raw = float(values[row, column])
        spec = transforms.get_transform(name).spec
        if math.isfinite(raw) and spec != "none":
            reason = f"feature {name!r} = {raw!r} is outside the domain of transform {spec!r}"
        else:
            reason = f"feature {name!r} = {raw!r} is not a finite number"
        raise row_error(row, reason, source, lines)
    return transformed


def row_error(row: int, reason: str, source: str | None, lines: Lines | None) -> InputError:
    """The error about row ``row`` (0-based), named by its line when the lines are known."""
    if lines is None:
        return InputError(f"data row {row + 1}: {reason}", source=source)
    return InputError(reason, source=source, line=int(lines[row]))
