"""Which rows a detector can take: finite, inside each transform's domain, small enough to square.

A row that fails is never learned; :func:`unusable_reasons` says why in a
sentence (the pipeline sends it to the dead letters), and :func:`check_batch`
refuses a whole batch that would corrupt a detector's state before anything
is learned.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from stream_detect.transforms import FeatureTransforms

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
    X: Array,
    labels: NDArray[np.int8],
    keys: list[str] | None,
    ids: list[str | None] | None,
    *,
    n_features: int,
    keyed: bool,
) -> None:
    """Raise ValueError if the batch would corrupt a detector's state.

    >>> check_batch(np.zeros((2, 1)), np.array([-1, 2], dtype=np.int8), None, None,
    ...             n_features=1, keyed=False)
    Traceback (most recent call last):
    ...
    ValueError: labels must hold one of -1 (none), 0 or 1 per row
    """
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"expected rows of {n_features} features, got {X.shape}")
    rows = X.shape[0]
    if labels.shape != (rows,) or not np.isin(labels, (-1, 0, 1)).all():
        raise ValueError("labels must hold one of -1 (none), 0 or 1 per row")
    if not (np.abs(X) <= MAX_ABS_VALUE).all():
        raise ValueError(
            f"rows must be finite and within +-{MAX_ABS_VALUE:g}; see Detector.transform"
        )
    if keyed and (keys is None or len(keys) != rows):
        raise ValueError("a keyed detector needs one key per row")
    if ids is not None and len(ids) != rows:
        raise ValueError("ids must have one entry per row")
