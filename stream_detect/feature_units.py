"""Tiny features brought to unit size by a power of two, so their scale does not matter.

A Gaussian model holds a few absolute numbers: the variance floor (``1e-12``)
and the prior's ``beta`` (``1e-6``). They are negligible for a feature of size
one, but a feature of size ``1e-5`` has a variance far below them, and one of
size ``1e-300`` has squared deviations that underflow to 0: such a feature looks
constant, and a value ten times its usual size raises no alert. So each
feature whose first non-zero value is smaller than :data:`TINY` is multiplied by
the power of two ``2**k`` that brings that value into [1, 2): exact in floating
point, the same factor for the whole stream, and nothing changes for a feature
of ordinary size (``k`` is 0 and no arithmetic is done). A feature that is 0 so
far waits: zeros are the same in any unit.

What the detector reports stays in the event's own units: the density of an
event is the density of its scaled row times ``2**sum(k)`` (the Jacobian), so
:meth:`FeatureUnits.log_jacobian` is added to log p(x), and a ``log_epsilon``
on log p(x) is compared in those units. Tails, Mahalanobis distances and
contributions are the same in any unit. A value that would pass
:data:`~stream_detect.admission.MAX_ABS_VALUE` once scaled (a feature that
spans more than 150 decades from its first value) is taken at that bound: far
out either way, it still alerts.

Examples
--------
>>> units = FeatureUnits(2)
>>> X = np.array([[0.0, 1.0], [3e-300, 2.0]])
>>> scaled, changes = units.apply(X)
>>> units.exponents.tolist(), changes
([995, 0], [(1, 995)])
>>> float(scaled[1, 0]), float(scaled[1, 1])
(1.0045393192371257, 2.0)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.admission import MAX_ABS_VALUE

if TYPE_CHECKING:
    from stream_detect.detections import Detections

__all__ = ["MOST_DOUBLINGS", "TINY", "FeatureUnits"]

Array = NDArray[np.float64]
#: A feature whose first non-zero value is smaller than this is rescaled. Well below
#: the size of ordinary features, well above the size where the absolute floors
#: (variance 1e-12, prior beta 1e-6) start to hide a feature's spread.
TINY = 2.0**-10
#: The largest exponent: a subnormal value (admitted, if not meant) takes 1074 doublings.
MOST_DOUBLINGS = 1074


class FeatureUnits:
    """The power of two each feature is multiplied by, chosen at its first non-zero value.

    Parameters
    ----------
    n_features
        Width of the rows.
    enabled
        False keeps every feature as it is (a fitted initial model, or a model
        that is not a Gaussian, holds its statistics in the events' units).
    """

    def __init__(self, n_features: int, *, enabled: bool = True) -> None:
        #: ``k`` per feature: rows are multiplied by ``2**k``.
        self.exponents = np.zeros(n_features, dtype=np.int64)
        #: Features whose ``k`` is chosen (a non-zero value was seen, or rescaling is off).
        self.decided = np.full(n_features, not enabled)

    @classmethod
    def chosen(cls, exponents: NDArray[np.int64], decided: NDArray[np.bool_]) -> FeatureUnits:
        """Units chosen before the stream (by ``fit``): ``exponents``, and the features decided.

        A feature not decided (0 in every event so far) is decided at its first
        non-zero value, as in a stream that started without them. ValueError
        as :meth:`restore`.

        >>> units = FeatureUnits.chosen(np.array([20, 0]), np.array([True, False]))
        >>> units.apply(np.array([[1e-6, 3e-300]]))[0].tolist()
        [[1.048576, 1.0045393192371257]]
        """
        units = cls(exponents.size)
        units.restore({"exponents": exponents, "decided": decided})
        return units

    @property
    def identity(self) -> bool:
        """True if every feature is decided and none is rescaled (the rows pass unchanged)."""
        return bool(self.decided.all() and not self.exponents.any())

    def log_jacobian(self) -> float:
        """What is added to the log density of a scaled row to give the event's own."""
        return math.log(2.0) * float(self.exponents.sum())

    def apply(self, X: Array) -> tuple[Array, list[tuple[int, int]]]:
        """Decide the features that show their first non-zero value in ``X``; scale ``X``.

        Returns the scaled rows (``X`` itself when nothing is rescaled) and the
        rows at which the sum of exponents changes, with the new sum: a row
        before a feature's first non-zero value is 0 in that feature, so
        scaling the whole batch by the final exponents is exact, and only the
        Jacobian changes from that row on.
        """
        changes: list[tuple[int, int]] = []
        if not self.decided.all() and X.shape[0]:
            open_columns = np.flatnonzero(~self.decided)
            nonzero = X[:, open_columns] != 0.0
            seen = nonzero.any(axis=0)
            firsts = nonzero.argmax(axis=0)
            for column, row in zip(open_columns[seen].tolist(), firsts[seen].tolist(), strict=True):
                value = abs(float(X[row, column]))
                self.decided[column] = True
                if value < TINY:
                    # value = m * 2**e, m in [0.5, 1) (frexp): value * 2**(1 - e) is in [1, 2).
                    self.exponents[column] = 1 - math.frexp(value)[1]
                    changes.append((row, column))
            changes.sort()
            total = int(self.exponents.sum()) - sum(int(self.exponents[c]) for _, c in changes)
            summed = []
            for row, column in changes:
                total += int(self.exponents[column])
                summed.append((row, total))
            changes = summed
        return self.scale(X), changes

    def scale(self, X: Array) -> Array:
        """``X`` in the features' units now (``X`` itself when none is rescaled)."""
        if not self.exponents.any():
            return X
        with np.errstate(over="ignore"):
            scaled = np.ldexp(X, self.exponents)
        return np.clip(scaled, -MAX_ABS_VALUE, MAX_ABS_VALUE, out=scaled)

    # ----------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any] | None:
        """The state, JSON-able; None when it is the identity (as before features were scaled)."""
        if self.identity:
            return None
        return {"exponents": self.exponents.tolist(), "decided": self.decided.tolist()}

    def restore(self, data: dict[str, Any] | None) -> None:
        """Load what :meth:`to_dict` wrote; None (or a checkpoint without it): the identity."""
        if data is None:
            self.exponents[:] = 0
            self.decided[:] = True
            return
        d = self.exponents.size
        exponents, decided = np.asarray(data["exponents"]), np.asarray(data["decided"])
        if exponents.shape != (d,) or exponents.dtype.kind not in "iu":
            raise ValueError(f"feature units: expected {d} whole exponents")
        if decided.shape != (d,) or decided.dtype != np.bool_:
            raise ValueError(f"feature units: expected {d} true/false values")
        if np.any((exponents < 0) | (exponents > MOST_DOUBLINGS) | (exponents > 0) & ~decided):
            raise ValueError(f"feature units: exponents from 0 to {MOST_DOUBLINGS}")
        self.exponents[:] = exponents
        self.decided[:] = decided


def jacobian_spans(
    runs: list[tuple[int, int]] | None, start: int, stop: int
) -> list[tuple[int, int, float]]:
    """``[start, stop)`` cut where the sum of exponents changes, each span with its log Jacobian.

    ``runs`` holds ``(row, sum of exponents from that row on)``, first row 0
    (None: nothing rescaled, one span of log Jacobian 0).

    >>> jacobian_spans([(0, 0), (5, 3)], 2, 9)
    [(2, 5, 0.0), (5, 9, 2.0794415416798357)]
    >>> jacobian_spans(None, 2, 9)
    [(2, 9, 0.0)]
    """
    if runs is None:
        return [(start, stop, 0.0)]
    bounds = [(row, exponents) for row, exponents in runs if row < stop]
    spans = []
    for index, (row, exponents) in enumerate(bounds):
        end = bounds[index + 1][0] if index + 1 < len(bounds) else stop
        first, last = max(row, start), min(end, stop)
        if first < last:
            spans.append((first, last, math.log(2.0) * exponents))
    return spans


def in_event_units(
    out: Detections,
    rows: slice,
    log_jacobian: float,
    log_p_rule: bool,
    given: float | None,
    compared: float | None,
) -> None:
    """Write the log densities of ``rows`` in the events' units, and the log ε they were held to.

    Under the ``log_p`` rule the score is the log density too, and the log ε
    ``compared`` with the scaled rows is shown as the ``given`` one.
    """
    out.log_p[rows] += log_jacobian
    if log_p_rule:
        out.score[rows] += log_jacobian
        shown = out.log_epsilon[rows]
        shown[shown == compared] = given
