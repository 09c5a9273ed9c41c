"""Integer-valued features: a variance floor of one unit step's rounding, 1/12.

A feature that takes a few integer values (an error count that is 0 most of
the time, a 0/1 flag, a status code, a version) has a tiny variance, so a
Gaussian puts each of its ordinary non-zero values 7 to 20 σ out and alerts
on every one of them: a 1 among 0.5% of errors, a flag set 2% of the time.
Yet an integer cannot move by less than one step: spread thinner than the
variance of rounding to a unit step (1/12, that of a uniform value over one
step) is not evidence that a step is rare. So once a feature has shown two
different values, while every value it has taken is an integer, its
variance is floored at 1/12 (the diagonal model's variance, the full
model's ridge on top of its covariance, the Student-t scale of the prior's
tails). A single step then stands at most √12 ≈ 3.5 σ out and does not
alert on its own, while two steps at once (an error count of 2) still do.

The first change of a feature that was constant so far is scored without
the floor, so it is still rare, not impossible (a first error, a deploy's
new version alerts once); the floor applies from the next row, so the new
version does not alert again while the model learns it. The first value
that is not an integer turns the floor off for that feature for the rest
of the stream, from its own row on: a continuous feature (nearly every real
measurement) loses it at its first row and is scored exactly as without this
rule. The floors depend only on the values in stream order, one set for the
whole detector (every key's model), so they cannot depend on batching; they
are kept in checkpoints.

A model fitted on a batch (``stream-detect fit``) follows the same rule in
the batch sense: a feature whose values there are all integers and take two
different values or more is floored for every row it scores
(:func:`varied_integers`, :func:`unit_step_floors`). A stream started from
such a model takes the batch as the part of the stream before its first
event (:meth:`IntegerFeatures.continue_from`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "UNIT_STEP_VARIANCE",
    "IntegerFeatures",
    "unit_step_floors",
    "varied_integers",
    "whole",
]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: The variance of rounding to a unit step (that of a uniform value over one step).
UNIT_STEP_VARIANCE = 1.0 / 12.0


def whole(values: Array) -> BoolArray:
    """Which values are integers (elementwise).

    >>> whole(np.array([2.0, 2.5, -0.0, 1e20])).tolist()
    [True, False, True, True]
    """
    out: BoolArray = values == np.floor(values)
    return out


def varied_integers(values: Array) -> BoolArray:
    """Which columns of ``values`` (rows of a batch) hold integers only, two different ones or more.

    The features the rule floors once it has seen every row: the batch form
    of :class:`IntegerFeatures` after the last row.

    >>> varied_integers(np.array([[0.0, 2.0, 1.0, 3.0], [1.0, 2.0, 1.5, 3.0]])).tolist()
    [True, False, False, False]
    """
    if values.shape[0] == 0:
        return np.zeros(values.shape[1], dtype=bool)
    out: BoolArray = np.all(whole(values), axis=0) & np.any(values != values[0], axis=0)
    return out


def unit_step_floors(floored: BoolArray, variance_floor: float) -> tuple[Array, Array]:
    """The variance floor and the least Student-t scale of each feature, ``floored`` or not.

    A floored feature's variance floor is 1/12 (or ``variance_floor`` if
    larger), its scale at least √(1/12); any other feature keeps
    ``variance_floor`` and no least scale. The variance floor is the diagonal
    model's floor and the full model's ridge alike
    (:func:`~stream_detect.density.gaussian_score`).

    >>> floor, scale = unit_step_floors(np.array([True, False]), 1e-12)
    >>> floor.round(4).tolist(), scale.round(4).tolist()
    ([0.0833, 0.0], [0.2887, 0.0])
    """
    unit = max(variance_floor, UNIT_STEP_VARIANCE)
    floor: Array = np.where(floored, unit, variance_floor)
    scale: Array = np.where(floored, np.sqrt(UNIT_STEP_VARIANCE), 0.0)
    return floor, scale


class IntegerFeatures:
    """Which features are integers that have varied, and the floors that follow.

    ``floor`` (the variance floor per feature) and ``scale_floor`` (the least
    Student-t scale per feature) are arrays the models share and read as
    they score: :meth:`enter` changes them in place for every model.

    >>> ints = IntegerFeatures(2, variance_floor=1e-12)
    >>> X = np.array([[0.0, 1.5], [0.0, 2.0], [1.0, 3.0], [0.0, 2.5]])
    >>> ints.next_cut(X, 0, 4)  # the first feature changes at row 2, so row 3 is floored
    3
    >>> ints.observe(X, 0, 3); ints.enter(X[3]); ints.floored.tolist()
    [True, False]
    >>> ints.floor.round(4).tolist()
    [0.0833, 0.0]
    """

    def __init__(self, d: int, *, variance_floor: float) -> None:
        self.variance_floor = float(variance_floor)
        #: Every value seen so far is an integer (the last row observed included).
        self.integral: BoolArray = np.ones(d, dtype=bool)
        #: Two different values were seen (in the rows observed).
        self.varied: BoolArray = np.zeros(d, dtype=bool)
        #: The first value of each feature (NaN before the first row).
        self.first: Array = np.full(d, np.nan)
        #: The floors in force: the integer features that have varied.
        self.floored: BoolArray = np.zeros(d, dtype=bool)
        #: Whether some feature may still be floored (once none can, the checks cost nothing).
        self._live = d > 0
        self.floor: Array = np.empty(d)
        self.scale_floor: Array = np.empty(d)
        self._set_floors()

    def _set_floors(self) -> None:
        # In place: every model holds these very arrays.
        self.floor[...], self.scale_floor[...] = unit_step_floors(self.floored, self.variance_floor)

    def _floored_rows(self, X: Array, start: int, stop: int) -> tuple[BoolArray, BoolArray]:
        """Per row of ``X[start:stop]``, the floors due there, for the live features (and which)."""
        live = self.integral
        values = X[start:stop][:, live]
        first = np.where(np.isnan(self.first[live]), values[0], self.first[live])
        integral = np.logical_and.accumulate(whole(values), axis=0)
        changed = np.logical_or.accumulate(values != first, axis=0)
        # Varied before a row: in the rows observed, or in the earlier rows of this span.
        varied = self.varied[live] | np.vstack((np.zeros((1, values.shape[1]), bool), changed[:-1]))
        return integral & varied, live

    def spans(self, X: Array, start: int, stop: int) -> Iterator[tuple[int, int]]:
        """Cut rows ``[start, stop)`` where the floors change; each span is scored under its own.

        The floors of a span are in force while the caller scores it (before
        the next one is asked for), and its rows are observed after.

        >>> ints = IntegerFeatures(1, variance_floor=1e-12)
        >>> X = np.array([[0.0], [1.0], [0.0], [1.0], [0.5]])
        >>> [(span, ints.floored.tolist()) for span in ints.spans(X, 0, 5)]
        [((0, 2), [False]), ((2, 4), [True]), ((4, 5), [False])]
        """
        while (cut := self.next_cut(X, start, stop)) is not None:
            if cut > start:
                yield start, cut
                self.observe(X, start, cut)
            self.enter(X[cut])
            start = cut
        if start < stop:
            yield start, stop
            self.observe(X, start, stop)

    def next_cut(self, X: Array, start: int, stop: int) -> int | None:
        """The first row of ``X[start:stop]`` due other floors than those in force, or None."""
        if start >= stop or not self._live:
            return None
        due, live = self._floored_rows(X, start, stop)
        rows = np.flatnonzero(np.any(due != self.floored[live], axis=1))
        return start + int(rows[0]) if rows.size else None

    def enter(self, row: Array) -> None:
        """Put in force the floors due at ``row``, the next row, all rows before it observed."""
        self.floored = self.integral & whole(row) & self.varied
        self._set_floors()

    def observe(self, X: Array, start: int, stop: int) -> None:
        """Take in rows ``X[start:stop]`` (scored now): integers still, and values seen."""
        if start >= stop or not self._live:
            return
        values = X[start:stop]
        self.first = np.where(np.isnan(self.first), values[0], self.first)
        self.integral &= np.all(whole(values), axis=0)
        self.varied |= np.any(values != self.first, axis=0)
        self._live = bool(self.integral.any())

    def continue_from(self, floored: BoolArray, mean: Array, var: Array) -> None:
        """Take up after the batch a model was fitted on, as the part of the stream before this.

        ``floored`` are the features the fit floored (:func:`varied_integers`
        of the batch), ``mean`` and ``var`` its statistics. A feature of
        variance 0 and an integer mean took that one value throughout, an
        integer that has not varied yet; any other feature not floored held a
        value that is not an integer there, so its floor stays off.

        >>> ints = IntegerFeatures(3, variance_floor=1e-12)
        >>> mean, var = np.array([0.1, 4.0, 0.5]), np.array([0.09, 0.0, 0.25])
        >>> ints.continue_from(np.array([True, False, False]), mean, var)
        >>> ints.integral.tolist(), ints.varied.tolist(), ints.floored.tolist()
        ([True, True, False], [True, False, False], [True, False, False])
        >>> ints.next_cut(np.array([[1.0, 4.0, 0.0], [0.5, 5.0, 1.0]]), 0, 2)  # 0.5: off
        1
        """
        d = self.integral.size
        if floored.shape != (d,) or mean.shape != (d,) or var.shape != (d,):
            raise ValueError(f"integer features: expected {d} values each")
        self.integral = floored | ((var == 0) & whole(mean))
        self.varied = floored.copy()
        self.first = np.array(mean, dtype=np.float64)
        # The last row of the batch was an integer wherever these are: their floors are in force.
        self.floored = floored.copy()
        self._live = bool(self.integral.any())
        self._set_floors()

    def to_dict(self) -> dict[str, Any]:
        """The state as checkpoints keep it."""
        return {
            "integral": self.integral.tolist(),
            "varied": self.varied.tolist(),
            "first": [None if np.isnan(v) else float(v) for v in self.first],
            "floored": self.floored.tolist(),
        }

    def restore(self, data: Any) -> None:
        """Take a state :meth:`to_dict` gave; None (a checkpoint written before the rule): off."""
        d = self.integral.size
        if data is None:
            self.integral[:] = False
            self.floored[:] = False
        else:
            flags = {name: np.asarray(data[name]) for name in ("integral", "varied", "floored")}
            first = np.array([np.nan if v is None else v for v in data["first"]], np.float64)
            if any(f.dtype != np.bool_ or f.shape != (d,) for f in flags.values()):
                raise ValueError(f"integer features: expected {d} true/false values each")
            if first.shape != (d,):
                raise ValueError(f"integer features: expected {d} first values")
            self.integral, self.varied = flags["integral"], flags["varied"]
            self.floored, self.first = flags["floored"], first
        self._live = bool(self.integral.any())
        self._set_floors()
