"""The detector with time-series features and the likelihood alert rule in front of it.

:class:`SeriesDetector` is a :class:`~stream_detect.detector.Detector` whose
*events* carry the fields the decoder reads and whose *model* sees the
features of the ``[derived]`` table (:mod:`stream_detect.derived_specs`):
each event field that no derived feature is made of stays a model feature
as it is, and each derived feature follows, in the table's order. Derived
features are causal and kept per key (the ``key_field``).

With ``likelihood = true`` the alert rule is the anomaly likelihood of each
model feature's |z| (:mod:`stream_detect.likelihood_layer`): ``score`` is its
combined log p, ``log_epsilon`` is log ``likelihood_alert_p`` and an alert's
``contributions`` are the per-feature log tails of the features that drove
it, smallest first. ``log_p`` and ``mahalanobis_sq`` stay those of the
Gaussian model. Labels do not move this threshold.

The state of both parts travels in the detector's checkpoint; the results of
a stream are the same for any batch size. :func:`build_detector` gives a plain
:class:`Detector` when neither is asked for.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.admission import MAX_ABS_VALUE, unusable_reasons
from stream_detect.detections import Detections
from stream_detect.detector import Detector
from stream_detect.errors import ConfigError, InputError
from stream_detect.explanations import top_features
from stream_detect.feature_transforms import FeatureTransforms
from stream_detect.real_arrays import real_rows
from stream_detect.settings import DetectorSettings

if TYPE_CHECKING:
    # A SeriesDetector (derived features, the likelihood) imports these when it is made:
    # a plain run, which has none, does not pay for them at start-up.
    from stream_detect.derived import DerivedFeature
    from stream_detect.fitted_model import FittedModel
    from stream_detect.likelihood_layer import KeyedLikelihood

__all__ = ["SeriesDetector", "build_detector", "model_features"]

Array = NDArray[np.float64]


def model_features(event_features: Sequence[str], derived: dict[str, Any] | None) -> list[str]:
    """The model's features: event fields no derived feature is made of, then the derived ones.

    >>> model_features(["value", "cpu"], {"m": {"of": "value", "kind": "moving_mean", "k": 3}})
    ['cpu', 'm']
    """
    table = derived or {}
    for name, spec in table.items():
        if spec["of"] not in event_features:
            raise ConfigError(f"derived.{name}.of", spec["of"], f"one of {list(event_features)}")
    used = {spec["of"] for spec in table.values()}
    return [f for f in event_features if f not in used] + list(table)


def build_detector(
    settings: DetectorSettings,
    features: Sequence[str],
    *,
    clock: Callable[[], float] = time.monotonic,
    initial_model: FittedModel | None = None,
) -> Detector:
    """A :class:`SeriesDetector` with derived features or the likelihood, else a Detector."""
    if settings.derived or settings.likelihood:
        if initial_model is not None:
            raise ConfigError(
                "initial_model", "a model file", "no [derived] table and likelihood = false"
            )
        return SeriesDetector(settings, features, clock=clock)
    return Detector(settings, tuple(features), clock=clock, initial_model=initial_model)


class SeriesDetector(Detector):
    """Derived features per key, then the detector, then (optionally) the likelihood rule.

    Examples
    --------
    >>> settings = DetectorSettings(
    ...     derived={"v_mean": {"of": "v", "kind": "moving_mean", "k": 3}},
    ...     likelihood=True, likelihood_reestimate_every=50, min_samples=10)
    >>> detector = SeriesDetector(settings, ["v"])
    >>> X = np.random.default_rng(3).normal(size=(400, 1))
    >>> X[300:303] = 25.0
    >>> out = detector.process(X)
    >>> np.flatnonzero(out.alert).tolist(), list(out.contributions[300])
    ([300], ['v_mean'])
    """

    def __init__(
        self,
        settings: DetectorSettings,
        features: Sequence[str],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.event_features = tuple(features)
        derived = settings.derived or {}
        modelled = model_features(self.event_features, derived)
        # Transforms apply to event fields, before any feature is derived from them.
        super().__init__(_without_transforms(settings), modelled, clock=clock)
        self.settings = settings
        self.transforms = FeatureTransforms.from_dict(settings.transforms or {})
        unknown = set(self.transforms) - set(self.event_features)
        if unknown:
            raise ConfigError("transforms", sorted(unknown), f"fields among {features}")
        self.derived_specs = derived
        from stream_detect.derived_specs import build_feature

        self.derived: dict[str, DerivedFeature | None] = {
            # Bounded like the models: a key's derived state goes when its model goes.
            name: build_feature(spec, settings.max_keys)
            for name, spec in derived.items()
        }
        self._columns = {name: i for i, name in enumerate(self.event_features)}
        self._seasonal = any(spec["kind"] == "seasonal" for spec in derived.values())
        #: The timestamps transform() last converted, and their wall-clock seconds.
        self._wall_of: tuple[Sequence[Any] | None, Array] | None = None
        self.likelihood: KeyedLikelihood | None = None
        if settings.likelihood:
            from stream_detect.likelihood_layer import KeyedLikelihood

            self.likelihood = KeyedLikelihood(
                len(self.features),
                {
                    "window": settings.likelihood_window,
                    "averaging": settings.likelihood_averaging,
                    "reestimate_every": settings.likelihood_reestimate_every,
                    "refractory": settings.likelihood_refractory,
                    "alert_p": settings.likelihood_alert_p,
                },
                clip=settings.likelihood_clip,
                max_keys=settings.max_keys,
                flagged=settings.likelihood_flagged,
            )

    @property
    def log_epsilon(self) -> float | None:
        """The threshold in force: log ``likelihood_alert_p`` with the likelihood rule."""
        if getattr(self, "likelihood", None) is not None:
            return math.log(self.settings.likelihood_alert_p)
        return self.tuner.log_epsilon

    @property
    def epsilon_source(self) -> str:
        """``likelihood`` with the likelihood rule, else where the Gaussian's log ε came from."""
        if getattr(self, "likelihood", None) is not None:
            return "likelihood"
        return self.tuner.epsilon_source

    def transform(
        self, X: Array, timestamps: Sequence[Any] | None = None
    ) -> tuple[Array, list[str | None]]:
        """Transforms of the event fields; a reason per row that cannot be used (see Detector).

        With a seasonal feature, an event whose timestamp has no wall-clock time
        (missing, null, not a time, beyond the calendar) cannot be used either:
        it is one bad event, not the end of the stream.
        """
        out = self.transforms.apply(X, self.event_features) if self.transforms else X
        reasons = unusable_reasons(X, out, self.event_features, self.transforms)
        if self._seasonal:
            # Imported here, as below: only a seasonal feature reads the wall clock.
            from stream_detect.timestamps import wall_clock_reasons

            stamps = [None] * X.shape[0] if timestamps is None else list(timestamps)
            wall, stamp_reasons = wall_clock_reasons(stamps, self.settings.time_zone)
            reasons = [mine or stamp for mine, stamp in zip(reasons, stamp_reasons, strict=True)]
            # Kept for derive() when no row is set aside: the same events, converted once.
            self._wall_of = (timestamps, wall) if stamp_reasons.count(None) == len(stamps) else None
        return out, reasons

    def derive(self, X: Array, keys: list[str] | None, timestamps: Sequence[Any] | None) -> Array:
        """The model's features of a batch of event rows, updating the derived features' state.

        A derived value beyond +-``MAX_ABS_VALUE`` (the change between two admitted
        values of opposite sign, say) is held at that bound: the model sees the
        largest value it can learn, and the derived state keeps the exact values.
        """
        names = keys if keys is not None and self.keyed else [""] * X.shape[0]
        wall = None
        if self._seasonal:
            if timestamps is None or any(stamp is None for stamp in timestamps):
                raise InputError("a seasonal feature needs every event to carry its timestamp")
            converted, self._wall_of = self._wall_of, None
            if converted is not None and converted[0] is timestamps:
                wall = converted[1]
            else:
                from stream_detect.timestamps import wall_clock_seconds

                wall = wall_clock_seconds(list(timestamps), self.settings.time_zone)
        columns = []
        for name in self.features:
            feature = self.derived.get(name)
            source = self.derived_specs[name]["of"] if name in self.derived_specs else name
            values = X[:, self._columns[source]]
            if feature is not None:
                # A difference or seasonal residual of admitted values reaches 2 * MAX_ABS_VALUE;
                # held at the bound, as the model can square it, rather than failing the batch.
                values = np.clip(feature.update(values, names, wall), -MAX_ABS_VALUE, MAX_ABS_VALUE)
            columns.append(values)
        return np.column_stack(columns) if columns else np.zeros((X.shape[0], 0))

    def process(
        self,
        X: ArrayLike,
        labels: ArrayLike | None = None,
        keys: list[str] | None = None,
        ids: list[str | None] | None = None,
        timestamps: Sequence[Any] | None = None,
        *,
        every_score: bool = True,
    ) -> Detections:
        """Derive the model's features, run the detector on them, then the likelihood rule."""
        rows = real_rows(X, "X", len(self.event_features))
        modelled = self.derive(rows, keys, timestamps)
        # The likelihood's alerts show the model's log tail, whether or not it alerted.
        every_score = every_score or self.likelihood is not None
        out = super().process(modelled, labels, keys, ids, every_score=every_score)
        if self.likelihood is None:
            return out
        names = keys if keys is not None and self.keyed else [""] * rows.shape[0]
        result = self.likelihood.update(modelled, list(names))
        self.alerts += int(np.count_nonzero(result.alert)) - int(np.count_nonzero(out.alert))
        out.score = result.log_p
        out.alert = result.alert
        out.log_epsilon = np.full(rows.shape[0], math.log(self.settings.likelihood_alert_p))
        alerts = np.flatnonzero(result.alert)
        tails = result.feature_log_p[alerts]
        named = top_features(self.features, tails, self.settings.top_contributions, largest=False)
        out.contributions = dict(zip(alerts.tolist(), named, strict=True))
        return out

    def _fingerprint(self) -> dict[str, Any]:
        settings = self.settings
        return {
            **super()._fingerprint(),
            "features": list(self.event_features),
            "derived": self.derived_specs,
            "likelihood": None
            if self.likelihood is None
            else {
                **self.likelihood.parameters,
                "clip": self.likelihood.clip,
                "flagged": self.likelihood.flagged,
            },
            "time_zone": settings.time_zone,
        }

    def to_dict(self, *, arrays: bool = False) -> dict[str, Any]:
        """The detector's state plus the derived features' and the likelihood's."""
        return {
            **super().to_dict(arrays=arrays),
            # The models see the derived features, not the event's fields.
            "model_features": list(self.features),
            "derived_state": {
                name: feature.to_dict()
                for name, feature in self.derived.items()
                if feature is not None
            },
            "likelihood_state": None if self.likelihood is None else self.likelihood.to_dict(),
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load what :meth:`to_dict` wrote (:class:`ModelError` if made under other settings)."""
        from stream_detect.derived import DerivedFeature
        from stream_detect.field_checks import restoring

        super().restore(data)
        with restoring("the derived features' or the likelihood's state"):
            for name, state in data["derived_state"].items():
                feature = DerivedFeature.from_dict(state)
                feature.max_keys = self.settings.max_keys
                self.derived[name] = feature
            if self.likelihood is not None:
                self.likelihood.restore(data["likelihood_state"])


def _without_transforms(settings: DetectorSettings) -> DetectorSettings:
    return replace(settings, transforms=None) if settings.transforms else settings
