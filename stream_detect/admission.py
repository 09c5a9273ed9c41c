"""Which rows a detector can take: finite, inside each transform's domain, small enough to square.

A row that fails is never learned; :func:`unusable_reasons` says why in a
sentence (the pipeline sends it to the dead letters), and :func:`check_batch`
refuses a whole batch that would corrupt a detector's state before anything
is learned.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.feature_transforms import FeatureTransforms
from stream_detect.real_arrays import real_rows

__all__ = ["MAX_ABS_VALUE", "check_batch", "unusable_reasons"]

Array = NDArray[np.float64]

#: Largest feature magnitude learned: squares and sums of squares of larger
#: values overflow float64 (about 1.8e308) and would leave a model of NaN.
MAX_ABS_VALUE = 1e150


def unusable_reasons(
    X: Array, transformed: Array, features: tuple[str, ...], transforms: FeatureTransforms
) -> list[str | None]:
    """Per row, None if ``transformed`` can be learned, else why not.

    The reason names the first feature that makes the row unusable: a value
    that is not finite, one outside a transform's domain, or one so large
    (beyond ``MAX_ABS_VALUE``) that its square would overflow the running
    statistics and silence the model.

    >>> unusable_reasons(np.array([[1.0], [np.nan]]), np.array([[1.0], [np.nan]]), ("a",),
    ...                  FeatureTransforms.from_dict({}))
    [None, "feature 'a' = nan is not a finite number"]
    """
    bad = ~(np.abs(transformed) <= MAX_ABS_VALUE)
    reasons: list[str | None] = [None] * X.shape[0]
    for row in np.flatnonzero(bad.any(axis=1)).tolist():
        j = int(np.flatnonzero(bad[row])[0])
        name = features[j]
        value = float(X[row, j])
        transform = transforms.get_transform(name)
        if not np.isfinite(value):
            reasons[row] = f"feature {name!r} = {value!r} is not a finite number"
        elif not transform.is_identity and not np.isfinite(transformed[row, j]):
            reasons[row] = (
                f"feature {name!r} = {value!r} is outside the domain of transform {transform.spec}"
            )
        else:
            reasons[row] = (
                f"feature {name!r} = {value!r} is beyond +-{MAX_ABS_VALUE:g}, "
                "too large to square in floating point"
            )
    return reasons


def check_batch(
    X: ArrayLike,
    labels: ArrayLike | None,
    keys: Sequence[str] | None,
    ids: Sequence[str | None] | None,
    *,
    n_features: int,
    keyed: bool,
) -> tuple[Array, NDArray[np.int8]]:
    """Return the batch as float64 rows and int8 labels; raise if it would corrupt a detector.

    ``X`` may be any array-like of real numbers (:func:`~stream_detect.real_arrays.real_rows`);
    ``labels`` any array-like of -1, 0 and 1 (None: every row unlabelled).
    Arrays of the right types (float64, int8) come back as they are. A wrong
    argument raises TypeError (text, complex numbers) or ValueError (shape,
    length, values), naming the argument and the rule.

    >>> check_batch(np.zeros((2, 1)), np.array([-1, 2], dtype=np.int8), None, None,
    ...             n_features=1, keyed=False)
    Traceback (most recent call last):
    ...
    ValueError: labels must hold one of -1 (none), 0 or 1 per row, found 2
    >>> check_batch([[1], [2]], None, None, None, n_features=1, keyed=False)[1].tolist()
    [-1, -1]
    """
    rows_of = real_rows(X, "X", n_features)
    rows = rows_of.shape[0]
    if labels is None:
        return rows_of, _checked_rest(rows_of, np.full(rows, -1, dtype=np.int8), keys, ids, keyed)
    given = np.asarray(labels)
    if given.shape != (rows,):
        raise ValueError(
            f"labels must have one entry per row of X ({rows}), got shape {given.shape}"
        )
    if given.dtype.kind not in "biuf":
        raise TypeError(f"labels must hold -1 (none), 0 or 1 per row, got dtype {given.dtype}")
    valid = np.isin(given, (-1, 0, 1))
    if not valid.all():
        raise ValueError(
            f"labels must hold one of -1 (none), 0 or 1 per row, found {given[~valid][0].item()!r}"
        )
    return rows_of, _checked_rest(rows_of, given.astype(np.int8, copy=False), keys, ids, keyed)


def _checked_rest(
    X: Array,
    labels: NDArray[np.int8],
    keys: Sequence[str] | None,
    ids: Sequence[str | None] | None,
    keyed: bool,
) -> NDArray[np.int8]:
    """The values, keys and ids of a batch whose shape and labels are right."""
    rows = X.shape[0]
    usable = np.abs(X) <= MAX_ABS_VALUE
    if not usable.all():
        row, column = (int(i) for i in np.argwhere(~usable)[0])
        raise ValueError(
            f"X[{row}, {column}] = {float(X[row, column])!r}: rows must be finite and within "
            f"+-{MAX_ABS_VALUE:g} (Detector.transform says which rows a detector can take)"
        )
    if keyed and (keys is None or len(keys) != rows):
        got = "none" if keys is None else len(keys)
        raise ValueError(f"a keyed detector needs one key per row ({rows}), got {got}")
    if not keyed and keys is not None:
        # Ignoring them would score every row against one model, as the caller did not ask.
        raise ValueError("keys given to a detector without a key_field: it keeps one model")
    if ids is not None and len(ids) != rows:
        raise ValueError(f"ids must have one entry per row ({rows}), got {len(ids)}")
    return labels
