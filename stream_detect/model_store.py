"""The models a detector holds, made from its settings: checked features, warm-up, one per key.

:func:`checked_features` applies the rules a detector's feature names and
transforms must meet; :func:`warm_up_length` says how many events a model
learns before it may alert; :class:`ModelFactory` makes a new key's model
(fresh, or from a fitted model as having learned its events); and
:func:`model_store` holds them, bounded by ``max_keys``: many keys' diagonal
Gaussians as rows of a few arrays (:class:`~stream_detect.keyed_bank.KeyedBank`),
any other model one object per key (:class:`~stream_detect.keyed_models.KeyedModels`).

>>> settings = DetectorSettings(min_samples=10, model="full")
>>> warm_up_length(settings, 12)
13
>>> store = model_store(settings, ModelFactory(settings, ("a", "b")), 10)
>>> type(store).__name__, store.max_keys
('KeyedModels', 10000)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from stream_detect.errors import ConfigError
from stream_detect.feature_transforms import FeatureTransforms
from stream_detect.full_size import check_full_size
from stream_detect.gaussian_model import GaussianModel
from stream_detect.keyed_models import KeyedModels
from stream_detect.learning import flagged_policy
from stream_detect.model_interface import Model
from stream_detect.model_kinds import model_kind
from stream_detect.models import build_model, direction_codes
from stream_detect.prior import NormalInverseGammaPrior
from stream_detect.quantisation import IntegerFeatures
from stream_detect.settings import DetectorSettings

if TYPE_CHECKING:
    # Imported where a keyed run or an initial model needs them (start-up of a plain run).
    from stream_detect.fitted_model import FittedModel
    from stream_detect.keyed_bank import KeyedBank

__all__ = ["ModelFactory", "checked_features", "model_store", "warm_up_length"]


def checked_features(
    features: Sequence[str], settings: DetectorSettings
) -> tuple[tuple[str, ...], FeatureTransforms]:
    """The feature names as a tuple and their transforms; ConfigError if a rule is broken.

    Names are distinct strings, at least one; every transform names a feature;
    ``flagged = "clip"`` needs a model with a mean; full covariances stay within
    their size (:func:`~stream_detect.full_size.check_full_size`).

    >>> checked_features(["a", "b"], DetectorSettings(transforms={"a": "log"}))[0]
    ('a', 'b')
    >>> checked_features("ab", DetectorSettings())
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key features: got 'ab', expected a list or tuple \
of feature names (strings)
    """
    if isinstance(features, str) or not all(isinstance(name, str) for name in features):
        raise ConfigError("features", features, "a list or tuple of feature names (strings)")
    names = tuple(features)
    if len(set(names)) != len(names):
        raise ConfigError("features", list(names), "each feature named once")
    transforms = FeatureTransforms.from_dict(settings.transforms or {})
    unknown = set(transforms) - set(names)
    if unknown:
        raise ConfigError("transforms", sorted(unknown), f"features among {list(names)}")
    if not names:
        raise ConfigError("features", list(names), "at least one feature")
    if flagged_policy(settings) == "clip" and not model_kind(settings.model).clipped_learning:
        raise ConfigError("flagged", "clip", "a Gaussian model (clipping needs a mean)")
    if settings.model == "full":
        keyed = settings.key_field is not None
        check_full_size(len(names), keyed=keyed, max_keys=settings.max_keys)
    return names, transforms


def warm_up_length(settings: DetectorSettings, d: int) -> int:
    """Events a model learns before it may alert: ``min_samples``, above ``d`` for a covariance.

    >>> warm_up_length(DetectorSettings(min_samples=50), 100)
    50
    """
    if settings.model == "full":
        # A covariance needs more events than features before it means anything.
        return max(settings.min_samples, d + 1)
    return settings.min_samples


class ModelFactory:
    """Makes the model a new key starts from: built from the settings, or the fitted one.

    A fitted ``initial_model`` starts every key (each new key's too) as having
    learned its events, and ``integers`` as having seen them before the
    stream's first event: a model file that names its ``integer_floor``
    (:meth:`~stream_detect.quantisation.IntegerFeatures.continue_from`).
    One written before that rule leaves ``integers`` to learn from the
    stream alone, as such a stream always did.
    """

    def __init__(
        self,
        settings: DetectorSettings,
        features: tuple[str, ...],
        initial_model: FittedModel | None = None,
        integers: IntegerFeatures | None = None,
    ) -> None:
        self.settings = settings
        self.features = features
        self.initial_model = initial_model
        #: The integer features' floors every Gaussian model shares (None: none).
        self.integers = integers
        #: A Gaussian model as built, unlearned: each new key's is a clone of it,
        #: which costs a fraction of building one (many keys come and go).
        self._empty: GaussianModel | None = None
        if integers is not None and initial_model is not None:
            floored = initial_model.integer_floor
            if floored is not None:
                integers.continue_from(floored, initial_model.mean, initial_model.var)

    @property
    def initial_learned(self) -> int:
        """Events each new model counts as learned (those of the fitted model, or none)."""
        return 0 if self.initial_model is None else round(self.initial_model.n)

    def __call__(self) -> Model:
        model = self._build()
        if self.integers is not None and isinstance(model, GaussianModel):
            # The very arrays, not copies: a feature's switch reaches every model at once.
            model.variance_floor = self.integers.floor
            model.scale_floor = self.integers.scale_floor
        return model

    def _build(self) -> Model:
        if self._empty is not None:
            return self._empty.clone_empty()
        settings = self.settings
        prior = NormalInverseGammaPrior() if settings.prior else None
        if self.initial_model is not None:
            model = self.initial_model.streaming_model(settings.half_life)
            model.prior = None if model.full else prior
            model.direction = direction_codes(self.features, settings.direction)
            return model
        built = build_model(
            settings.model,
            self.features,
            half_life=settings.half_life,
            variance_floor=settings.variance_floor,
            params=settings.model_params,
            river_scaler=settings.river_scaler,
            prior=prior,
            direction=settings.direction,
        )
        if isinstance(built, GaussianModel):
            self._empty = built.clone_empty()
        return built


def model_store(
    settings: DetectorSettings, new_model: ModelFactory, min_samples: int
) -> KeyedModels | KeyedBank:
    """The bounded store of a detector's models, one per key (one in all when unkeyed)."""
    template = new_model()
    if settings.key_field is not None and isinstance(template, GaussianModel) and not template.full:
        from stream_detect.keyed_bank import KeyedBank

        # Many keys' diagonal models are rows of a few arrays, scored a batch at a time.
        return KeyedBank(
            settings.max_keys,
            template,
            initial_learned=new_model.initial_learned,
            min_samples=min_samples,
        )
    return KeyedModels(
        settings.max_keys,
        new_model,
        initial_learned=new_model.initial_learned,
        min_samples=min_samples,
    )
