"""A fitted model's dict form: the content of a model file, written and checked on reading.

:func:`model_dict` is what :meth:`~stream_detect.fitted_model.FittedModel.to_dict`
returns, the JSON-able content laid out in :mod:`stream_detect.modelfile`;
:func:`model_fields` checks such a dict, value by value
(:mod:`stream_detect.model_file_rules`), and gives the fields
:meth:`~stream_detect.fitted_model.FittedModel.from_dict` builds the model
from. Every file carries :data:`FORMAT` and :data:`VERSION`, so another JSON
file is never mistaken for a model. A non-finite log ε is written as the
string ``"inf"`` or ``"-inf"``, since JSON has no infinities.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from stream_detect.density import SMALLEST_VARIANCE_FLOOR
from stream_detect.errors import ConfigError, ModelError
from stream_detect.feature_transforms import FeatureTransforms
from stream_detect.model_file_rules import (
    check_covariance,
    check_epsilon,
    check_keys,
    check_magnitudes,
    feature_names,
    float_array,
    integer_floor,
    number,
    unit_exponents,
)

if TYPE_CHECKING:
    from stream_detect.fitted_model import FittedModel

__all__ = ["FORMAT", "THRESHOLD_METHODS", "VERSION", "model_dict", "model_fields"]

#: Marker in every model file, so another JSON file is never mistaken for a model.
FORMAT = "stream_detect.model"
#: Layout version of the dict form this module writes and reads.
VERSION = 1
#: The ways a threshold may have been chosen (``threshold_method``).
THRESHOLD_METHODS = ("exact", "grid", "classic")


def model_dict(model: FittedModel) -> dict[str, Any]:
    """The JSON-able file content of ``model`` (its layout is in :mod:`stream_detect.modelfile`).

    >>> from stream_detect.fitting import fit_model
    >>> data = model_dict(fit_model(np.array([[1.0], [3.0]]), ["x"]))
    >>> data["format"], data["n"], data["var"], data["log_epsilon"]
    ('stream_detect.model', 2, [1.0], None)
    """
    data: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "kind": model.kind,
        "features": list(model.features),
        "transforms": model.transforms.to_dict(),
        "n": int(model.n) if model.n.is_integer() else model.n,
        "mean": model.mean.tolist(),
    }
    if model.cov is None:
        data["var"] = model.var.tolist()
    else:
        data["cov"] = model.cov.tolist()
    data.update(
        variance_floor=model.variance_floor,
        relative_floor=model.relative_floor,
    )
    if model.integer_floor is not None:
        floored = zip(model.features, model.integer_floor, strict=True)
        data["integer_floor"] = [name for name, is_floored in floored if is_floored]
    if model.unit_exponents is not None:
        scaled = zip(model.features, model.unit_exponents.tolist(), strict=True)
        data["unit_exponents"] = {name: k for name, k in scaled if k}
    data.update(
        log_epsilon=_encode_float(model.log_epsilon),
        epsilon=_encode_float(model.epsilon),
        threshold_method=model.threshold_method,
        validation=model.validation,
    )
    return data


def model_fields(data: Any) -> dict[str, Any]:
    """The fields of a model, checked, from a dict of :func:`model_dict`'s layout.

    :class:`~stream_detect.errors.ModelError` names the first problem.

    >>> model_fields({"format": FORMAT, "version": 99})
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: it is version 99 of the model format; this \
stream_detect reads version 1
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelError(f'it is not a stream_detect model (no "format": "{FORMAT}")')
    version = data.get("version")
    # ``true == 1`` and ``1.0 == 1`` in Python: only the integer is the version written;
    # and "it is version '1', this reads version 1" would read as a contradiction.
    if isinstance(version, (bool, float, str)):
        raise ModelError(f"version is {version!r}, expected the integer {VERSION}")
    if version != VERSION:
        raise ModelError(
            f"it is version {version!r} of the model format; "
            f"this stream_detect reads version {VERSION}"
        )
    kind = data.get("kind")
    if kind not in ("diagonal", "full"):
        raise ModelError(f"kind is {kind!r}, expected 'diagonal' or 'full'")
    check_keys(data, kind)
    features = feature_names(data.get("features"))
    d = len(features)
    mean = float_array(data, "mean", (d,))
    if kind == "diagonal":
        var = float_array(data, "var", (d,))
        if np.any(var < 0):
            raise ModelError("var holds a negative variance")
        cov = None
    else:
        cov = float_array(data, "cov", (d, d))
        var = np.diagonal(cov).copy()
    n = number(data, "n", minimum=0.0)
    variance_floor = number(data, "variance_floor", minimum=SMALLEST_VARIANCE_FLOOR)
    relative_floor = number(data, "relative_floor", minimum=0.0)
    floored = integer_floor(data, features)
    exponents = unit_exponents(data, features)
    check_magnitudes(n, mean, var if cov is None else cov, "var" if cov is None else "cov")
    if cov is not None:
        check_covariance(cov, mean, variance_floor, relative_floor)
    try:
        saved = data.get("transforms")
        # Only null reads as no transforms: ``false`` or ``0`` is not a table.
        transforms = FeatureTransforms.from_dict({} if saved is None else saved)
        transforms.apply(np.zeros((0, d)), features)  # every named feature must be modelled
    except ConfigError as exc:
        raise ModelError(f"transforms: {exc}") from exc
    log_epsilon = _decode_float(data.get("log_epsilon"), "log_epsilon")
    check_epsilon(_decode_float(data.get("epsilon"), "epsilon"), log_epsilon)
    method = data.get("threshold_method")
    if method is not None and method not in THRESHOLD_METHODS:
        raise ModelError(
            f"threshold_method is {method!r}, expected one of "
            f"{', '.join(THRESHOLD_METHODS)} or null"
        )
    validation = data.get("validation")
    if validation is not None and not isinstance(validation, dict):
        raise ModelError("validation must be an object or null")
    return dict(
        kind=kind,
        features=features,
        n=n,
        mean=mean,
        var=var,
        cov=cov,
        transforms=transforms,
        variance_floor=variance_floor,
        relative_floor=relative_floor,
        integer_floor=floored,
        unit_exponents=exponents,
        log_epsilon=log_epsilon,
        threshold_method=method,
        validation=validation,
    )


def _encode_float(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _decode_float(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str) and value in ("inf", "-inf"):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelError(f'{key} is {value!r}, expected a number, "inf", "-inf" or null')
    return float(value)
