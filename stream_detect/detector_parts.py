"""What a detector is made of, built from its settings, and the read-only views of it.

:class:`DetectorParts` builds the parts a :class:`~stream_detect.detector.Detector`
works with (the checked features and their transforms, the integer features'
floors, the model store and its warm-up, the score rule, the learning policy,
the threshold tuner and the events remembered for feedback) and shows their
counters and threshold without changing them. What the detector does with a
batch, a label or a reload is :mod:`stream_detect.detector`'s.

Examples
--------
>>> parts = DetectorParts(DetectorSettings(min_samples=5), ("a", "b"))
>>> parts.events, parts.epsilon_source, parts.warm, parts.summary()["models"]
(0, 'default', False, 0)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from stream_detect.feature_units import FeatureUnits
from stream_detect.learning import LearningPolicy
from stream_detect.model_interface import ScoreRule, score_rule
from stream_detect.model_kinds import model_kind
from stream_detect.model_store import ModelFactory, checked_features, model_store, warm_up_length
from stream_detect.quantisation import IntegerFeatures
from stream_detect.recent import RecentEvents
from stream_detect.settings import DetectorSettings
from stream_detect.tuning import ThresholdTuner

if TYPE_CHECKING:
    from stream_detect.fitted_model import FittedModel
    from stream_detect.threshold_choice import ThresholdChoice
    from stream_detect.validation_buffer import ValidationBuffer

__all__ = ["DetectorParts"]


class DetectorParts:
    """The parts of a detector, built from ``settings``; the views of them change nothing.

    The parameters are :class:`~stream_detect.detector.Detector`'s.
    """

    def __init__(
        self,
        settings: DetectorSettings,
        features: tuple[str, ...] | list[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        initial_model: FittedModel | None = None,
    ) -> None:
        self.settings = settings
        self.features, self.transforms = checked_features(features, settings)
        # Every model (each new key's too) starts from the fitted one, if given.
        self.initial_model = initial_model
        # A fitted model brings its own variance floor.
        floor = settings.variance_floor if initial_model is None else initial_model.variance_floor
        self.integers = IntegerFeatures(len(self.features), variance_floor=floor)
        self.new_model = ModelFactory(settings, self.features, initial_model, self.integers)
        self.keyed = settings.key_field is not None
        d = len(self.features)
        self.min_samples = warm_up_length(settings, d)
        self.models = model_store(settings, self.new_model, self.min_samples)
        self.rule: ScoreRule = score_rule(settings)
        self.policy = LearningPolicy(settings, min_samples=self.min_samples, rule=self.rule)
        self.tuner = ThresholdTuner(settings, d, clock=clock)
        # A river model has no floors. A fitted model's statistics are in its own units, chosen
        # by the same rule: the stream goes on in them (a feature it saw only as 0 is open).
        gaussian = model_kind(settings.model).gaussian_score
        if initial_model is not None and gaussian:
            self.units = initial_model.units
        else:
            self.units = FeatureUnits(d, enabled=gaussian)
        #: Where a batch's rows change units (row, sum of exponents from there); None: nowhere.
        self._jacobian_runs: list[tuple[int, int]] | None = None
        #: The log Jacobian of the rows just scored, while a batch is under way.
        self._log_jacobian: float | None = None
        self.recent_events = RecentEvents(settings.id_memory, d)
        self.alerts = 0

    # ------------------------------------------------- views of the parts

    @property
    def events(self) -> int:
        """Events processed so far."""
        return self.tuner.events

    @property
    def log_epsilon(self) -> float | None:
        """The threshold in force (None while none is set)."""
        return self.tuner.log_epsilon

    @property
    def epsilon_source(self) -> str:
        """Where log ε came from: ``unset``, ``default`` (the tail), ``initial`` or ``f1``."""
        return self.tuner.epsilon_source

    @property
    def last_choice(self) -> ThresholdChoice | None:
        """The last threshold chosen on labels, with its precision, recall and F1."""
        return self.tuner.last_choice

    @property
    def validation(self) -> ValidationBuffer:
        """The labelled rows log ε is tuned on."""
        return self.tuner.validation

    @property
    def retunes(self) -> int:
        """Re-tunes so far."""
        return self.tuner.retunes

    @property
    def evicted(self) -> int:
        """Models evicted so far to stay within ``max_keys``."""
        return self.models.evicted

    @property
    def evicted_in_warmup(self) -> int:
        """Of :attr:`evicted`, the models evicted still in warm-up (they never alerted)."""
        return self.models.evicted_in_warmup

    @property
    def learned_events(self) -> int:
        """Events learned by the models held now."""
        return int(self.models.learned_counts().sum())

    @property
    def warm(self) -> bool:
        """True once one of the models held is past its warm-up."""
        return bool(np.any(self.models.learned_counts() >= self.min_samples))

    @property
    def relearned(self) -> int:
        """Flagged events learned after all, as part of a lasting run."""
        return self.policy.relearned

    # ---------------------------------------------------------------- summary

    def summary(self) -> dict[str, Any]:
        """Counters and the current threshold, JSON-able."""
        choice = self.last_choice
        return {
            "events": self.events,
            "alerts": self.alerts,
            "log_epsilon": self.log_epsilon,
            "epsilon_source": self.epsilon_source,
            "f1": None if choice is None else choice.f1,
            "precision": None if choice is None else choice.precision,
            "recall": None if choice is None else choice.recall,
            "retunes": self.retunes,
            "models": len(self.models),
            "evicted_models": self.evicted,
            "evicted_in_warmup": self.evicted_in_warmup,
            "relearned_events": self.relearned,
            "validation_positive": self.validation.n_positive,
            "validation_negative": self.validation.n_negative,
        }
