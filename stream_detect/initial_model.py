"""Starting a stream from a fitted model: the detector settings the model implies.

:func:`detector_settings_for` gives the stream the model's features,
transforms, kind, variance floor and log ε, and refuses settings that name
something else, naming both values, or that give one of the model's
features a role (the label, key, id or timestamp field). With a key field
every key starts from the model and alerts compare the scale-free score, so
the model's log ε, a threshold on its log p(x), is moved to that score
(:func:`scale_free_log_epsilon`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from stream_detect.density import DEFAULT_RELATIVE_FLOOR, scale_free_log_pdf
from stream_detect.errors import ModelError
from stream_detect.feature_transforms import FeatureTransforms
from stream_detect.fitted_model import FittedModel
from stream_detect.settings import DetectorSettings
from stream_detect.validation import ROLE_FIELDS

__all__ = ["detector_settings_for", "scale_free_log_epsilon"]


def detector_settings_for(
    settings: DetectorSettings, model: FittedModel, name: str
) -> DetectorSettings:
    """``settings`` for a stream that starts from ``model`` (read from the file ``name``).

    The stream takes the model's features, transforms, kind and variance
    floor, and its log ε when ``settings`` names none and sets no alert budget
    (with a ``key_field``, moved to the scale-free score by
    :func:`scale_free_log_epsilon`). Settings that name
    something else are refused with a :class:`ModelError` naming both (a
    ``model`` of ``diagonal`` is the default and yields to a full model).

    >>> import numpy as np
    >>> from stream_detect.fitting import fit_model
    >>> fitted = fit_model(np.array([[1.0], [3.0]]), ["x"]).with_threshold(-5.0, "exact")
    >>> chosen = detector_settings_for(DetectorSettings(), fitted, "m.json")
    >>> chosen.features, chosen.log_epsilon
    (('x',), -5.0)
    >>> detector_settings_for(DetectorSettings(features=("y",)), fitted, "m.json")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: features ['y'] conflict with features ['x'] of the initial \
model m.json: name the model's features or none
    """
    transforms = model.transforms.to_dict()
    conflicts: list[tuple[str, Any, Any]] = []
    if settings.features is not None:
        conflicts.append(("features", list(settings.features), list(model.features)))
    if settings.transforms is not None:
        # Compared as parsed, so "log:1" and "log:1.0" are the same transform.
        wanted = FeatureTransforms.from_dict(settings.transforms).to_dict()
        conflicts.append(("transforms", wanted, transforms))
    for key, wanted, given in conflicts:
        if wanted != given:
            raise ModelError(
                f"{key} {wanted!r} conflict with {key} {given!r} of the initial "
                f"model {name}: name the model's {key} or none"
            )
    for role in ROLE_FIELDS:
        field_name = getattr(settings, role)
        if field_name is not None and field_name in model.features:
            # The features are the model file's, the field they clash with this run's.
            raise ModelError(
                f"the initial model {name} has features {list(model.features)!r}, one of them "
                f"{field_name!r}, this run's {role} (a field cannot be both): name another "
                f"{role} or fit the model without {field_name!r}"
            )
    if settings.model not in ("diagonal", model.kind):
        raise ModelError(
            f"model {settings.model!r} conflicts with the {model.kind!r} initial model {name}: "
            "leave model unset or name the model's kind"
        )
    if model.relative_floor != DEFAULT_RELATIVE_FLOOR:
        raise ModelError(
            f"the initial model {name} has relative_floor {model.relative_floor:g}; streams "
            f"use {DEFAULT_RELATIVE_FLOOR:g}: fit it again with stream-detect fit"
        )
    log_epsilon = settings.log_epsilon
    # An alert budget names how the threshold is set, as a log ε would: it wins.
    if log_epsilon is None and model.log_epsilon is not None and settings.alerts_per_day is None:
        log_epsilon = model.log_epsilon
        if settings.key_field is not None:
            # Keyed alerts compare the scale-free score, not log p(x).
            log_epsilon = scale_free_log_epsilon(model, log_epsilon)
    return dataclasses.replace(
        settings,
        features=model.features,
        transforms=transforms or None,
        model=model.kind,
        variance_floor=model.variance_floor,
        log_epsilon=log_epsilon,
    )


def scale_free_log_epsilon(model: FittedModel, log_epsilon: float) -> float:
    """``log_epsilon`` on ``model``'s log p(x) as a threshold on its scale-free score.

    The two scores differ by a constant of the model, ``-0.5 * log det(2 pi cov)``
    (floored as when scoring) against ``-0.5 * d * log(2 pi)``, so under the
    model the same events fall below either threshold: a keyed stream, whose
    keys all start from the model, flags at first what the model flags.

    >>> from stream_detect.fitting import fit_model
    >>> fitted = fit_model(np.array([[0.0], [0.02]]), ["x"])  # sigma 0.01
    >>> round(scale_free_log_epsilon(fitted, 2.0), 6)  # 2 + log 0.01, the log of sigma
    -2.60517
    """
    # log p(x) in the events' units: the model's own, plus the Jacobian of its powers of two.
    at_mean = model.score(model.mean[None]).log_p[0] + model.log_jacobian
    offset = scale_free_log_pdf(np.zeros(1), model.d)[0] - at_mean
    return float(log_epsilon + offset)
