"""The model interface: what a model is asked (score before learning, then learn) and answers.

A :class:`Model` answers, for a block of rows, the score each row gets from
the model of everything learned before it (:meth:`Model.prequential`), and
learns rows when told to (:meth:`Model.learn`). The detector decides which rows
are learned; the model only does the arithmetic. Its answer is a
:class:`ScoreBlock`, whose :meth:`~ScoreBlock.decision` gives the scores alerts
compare under a :data:`ScoreRule`; lower is always more anomalous.

The models behind it:

* :class:`~stream_detect.gaussian_model.GaussianModel` — the diagonal or
  full-covariance Gaussian on running moments; scores a whole block exactly
  with prefix sums.
* :class:`~stream_detect.river_model.RiverModel` — a ``river.anomaly``
  detector, one event at a time; it has no density: its ``log_p`` is NaN
  and its own score is the negated anomaly score, so lower is still more
  anomalous.

:func:`~stream_detect.models.build_model` builds either from its name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from stream_detect.density import scale_free_log_pdf
from stream_detect.errors import ModelError
from stream_detect.prequential import Prefix
from stream_detect.prior import DeferredTails

if TYPE_CHECKING:
    from stream_detect.settings import DetectorSettings

__all__ = ["Array", "BoolArray", "Model", "ScoreBlock", "ScoreRule", "score_rule"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
#: Which score alerts compare: the calibrated log tail, log p(x) (the classic
#: rule of one model) or the scale-free log density (the classic rule per key).
ScoreRule = Literal["tail", "log_p", "scale_free"]


@dataclass(frozen=True)
class ScoreBlock:
    """Scores of a block of rows, each under the model it was scored against.

    ``log_p`` is log p(x) (NaN while the model has learned nothing, and for
    models without a density); ``distance_sq`` the squared Mahalanobis
    distance (NaN for models without one); ``mean`` and ``spread`` the floored
    parameters per row (None for models without them), kept so contributions
    and clipping need no rescoring; ``model_score`` the own score of a model
    without a density (lower is more anomalous), None for a Gaussian;
    ``log_tail`` the log probability that a normal event lies at least this
    far out (a χ² tail of ``distance_sq``, or the prior's Student-t tails
    combined by Fisher's method), NaN for models without one.
    A full model scored by low-rank updates keeps ``contributions`` instead
    of a ``(B, d, d)`` stack of covariances, and its ``spread`` is None.
    """

    log_p: Array
    distance_sq: Array
    mean: Array | None = None
    spread: Array | None = None
    contributions: Array | None = None
    model_score: Array | None = None
    log_tail: Array | None = None
    #: The statistics each row was scored against, when the model scores from running moments.
    before: Prefix | None = None
    #: The prior's tails, computed for the rows asked for, in place of ``log_tail``.
    deferred: DeferredTails | None = None

    @property
    def scale_free(self) -> Array:
        """log p of the standardised event, ``-0.5 (D**2 + d log 2 pi)``: comparable across keys.

        A model without a Gaussian distance gives its own score, already free of scale.
        """
        if self.mean is None:
            return self.model_score if self.model_score is not None else self.log_p
        return scale_free_log_pdf(self.distance_sq, self.mean.shape[-1])

    @property
    def tail(self) -> Array:
        """The log tail probability; NaN for every row of a model without one."""
        return self.tail_at(np.arange(self.log_p.shape[0]))

    def tail_at(self, rows: NDArray[np.intp]) -> Array:
        """The log tail probability of ``rows`` alone (NaN for a model without one)."""
        if self.deferred is not None:
            return self.deferred.at(rows)
        if self.log_tail is None:
            return np.full(rows.shape, np.nan)
        out: Array = self.log_tail[rows]
        return out

    def decision(self, rule: ScoreRule) -> Array:
        """The scores alerts are decided on under ``rule``; lower is more anomalous.

        A model's own score when it has no density, whatever the rule; else
        the log tail (``"tail"``: the same false alert rate on every stream
        and key), log p(x) (``"log_p"``, the classic rule of one model) or
        the scale-free log density (``"scale_free"``, the classic rule with a
        model per key).

        >>> block = ScoreBlock(np.array([-3.0]), np.array([1.0]), np.zeros((1, 1)),
        ...                    log_tail=np.array([-1.2]))
        >>> [block.decision(r).round(4).tolist() for r in ("log_p", "scale_free", "tail")]
        [[-3.0], [-1.4189], [-1.2]]
        """
        if self.model_score is not None:
            return self.model_score
        if rule == "tail":
            return self.tail
        return self.scale_free if rule == "scale_free" else self.log_p


class Model(ABC):
    """Scores rows against what it has learned; learns the rows it is given."""

    #: True if :meth:`prequential` scores many rows exactly in one call;
    #: False if the caller must pass one row at a time.
    exact_blocks: bool = True

    @property
    def taught_blocks(self) -> bool:
        """True if :meth:`prequential_taught` is available (rows may teach other vectors)."""
        return False

    @abstractmethod
    def prequential(self, X: Array, learn: BoolArray) -> ScoreBlock:
        """Score each row against the model of everything before it; learn nothing."""

    def prequential_taught(
        self, X: Array, taught: Array, learn: BoolArray, slots: NDArray[np.intp]
    ) -> ScoreBlock:
        """Score row ``i`` of ``X`` against the model just before ``taught[slots[i]]``.

        The model is taken to learn, in order, the rows of ``taught`` where
        ``learn`` is true (a row may teach a clipped copy of itself, nothing,
        or be followed by other rows); nothing is learned for real. Only a
        model whose :attr:`taught_blocks` is True implements it.
        """
        raise NotImplementedError(f"{type(self).__name__} scores only its own rows")

    @abstractmethod
    def score(self, X: Array) -> ScoreBlock:
        """Score every row against the current model."""

    @abstractmethod
    def learn(self, X: Array) -> None:
        """Learn the rows of ``X`` in order."""

    @abstractmethod
    def contributions(self, X: Array, block: ScoreBlock, rows: NDArray[np.intp]) -> Array | None:
        """Per-feature contributions to ``distance_sq`` for ``rows`` of a block (None if none)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot of the learned state."""
        raise ModelError(f"{type(self).__name__} cannot be saved without pickle")

    def restore(self, data: dict[str, Any]) -> None:
        """Load a state written by :meth:`to_dict`; :class:`ModelError` if it does not fit."""
        raise ModelError(f"{type(self).__name__} cannot be restored from a checkpoint")


def score_rule(settings: DetectorSettings) -> ScoreRule:
    """The score alerts compare under ``settings`` (see :meth:`ScoreBlock.decision`).

    >>> from stream_detect.settings import DetectorSettings
    >>> score_rule(DetectorSettings()), score_rule(DetectorSettings(log_epsilon=-9.0))
    ('tail', 'log_p')
    >>> score_rule(DetectorSettings(log_epsilon=-9.0, key_field="host"))
    'scale_free'
    """
    if settings.log_epsilon is None:
        return "tail"
    return "log_p" if settings.key_field is None else "scale_free"
