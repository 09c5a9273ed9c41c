"""A Gaussian model fitted on a batch of events, with its threshold, kept as a JSON file.

``stream-detect fit`` writes one, ``stream-detect evaluate`` reads one. The file
is data, never code (no pickle)::

    {
      "format": "stream_detect.model", "version": 1,
      "kind": "diagonal",                  # or "full"
      "features": ["latency", "bytes"],
      "transforms": {"bytes": "log:1"},    # feature -> spec; features not named are used as is
      "n": 1000.0,                         # events the statistics were fitted on
      "mean": [...],                       # in transformed units
      "var": [...],                        # diagonal model: population variances (1/m)
      "cov": [[...], ...],                 # full model instead of "var": population covariance
      "variance_floor": 1e-12, "relative_floor": 1e-20,
      "log_epsilon": -9.31, "epsilon": 9.1e-05,  # null when no labels chose one
      "threshold_method": "exact",         # exact | grid | classic | null
      "validation": {"tp": ..., "f1": ..., ...}  # what the threshold achieved, or null
    }

``log_epsilon`` is what decisions use (flag when log p(x) < log ε); ``epsilon``
is written for people and ignored on reading. A non-finite log ε is written as
the string ``"-inf"`` or ``"inf"``, since JSON has no infinities.

A fitted model and a streaming one are the same Gaussian: both score through
:func:`~stream_detect.density.gaussian_score`, and
:meth:`FittedModel.streaming_model` turns a fitted model into the
:class:`~stream_detect.models.GaussianModel` that ``stream-detect run
--initial-model`` starts from and keeps learning.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.atomic import write_atomically
from stream_detect.density import (
    DEFAULT_RELATIVE_FLOOR,
    DEFAULT_VARIANCE_FLOOR,
    floor_covariance,
    gaussian_score,
)
from stream_detect.errors import ConfigError, InputError, ModelError
from stream_detect.models import GaussianModel
from stream_detect.settings import DetectorSettings
from stream_detect.stats import RunningCovariance, RunningMoments
from stream_detect.threshold import exp_or_inf
from stream_detect.transforms import FeatureTransforms

__all__ = [
    "FORMAT",
    "VERSION",
    "FittedModel",
    "ModelKind",
    "check_model_path",
    "detector_settings_for",
    "fit_model",
    "load_model",
    "save_model",
    "transform_rows",
]

Array = NDArray[np.float64]
ModelKind = Literal["diagonal", "full"]

#: Marker in every model file, so another JSON file is never mistaken for a model.
FORMAT = "stream_detect.model"
#: Layout version this module writes and reads.
VERSION = 1

_THRESHOLD_METHODS = ("exact", "grid", "classic")


@dataclass(frozen=True, eq=False)
class FittedModel:
    """A Gaussian density of "normal" events and, once chosen, its threshold log ε.

    ``mean``, ``var`` and ``cov`` are in the units of the transformed features;
    :meth:`log_p` takes rows in the original units and applies the transforms
    first. ``var`` is the diagonal of ``cov`` for a full model. The floors are
    applied when scoring, never stored into the statistics.

    Build one with :func:`fit_model`; read one with :func:`load_model`.

    >>> model = fit_model(np.array([[1.0], [3.0]]), ["x"])
    >>> model.n, model.mean.tolist(), model.var.tolist()
    (2.0, [2.0], [1.0])
    >>> model.log_p(np.array([[2.0]])).round(6).tolist()
    [-0.918939]
    """

    kind: ModelKind
    features: tuple[str, ...]
    n: float
    mean: Array
    var: Array
    cov: Array | None = None
    transforms: FeatureTransforms = field(default_factory=FeatureTransforms)
    variance_floor: float = DEFAULT_VARIANCE_FLOOR
    relative_floor: float = DEFAULT_RELATIVE_FLOOR
    log_epsilon: float | None = None
    threshold_method: str | None = None
    validation: dict[str, Any] | None = None

    @property
    def d(self) -> int:
        """Number of features."""
        return len(self.features)

    @property
    def spread(self) -> Array:
        """The variances (diagonal model) or the covariance matrix (full model)."""
        return self.var if self.cov is None else self.cov

    def streaming_model(self, half_life: float | None = None) -> GaussianModel:
        """The streaming model that has learned what this one was fitted on, to learn on from.

        It counts as having learned ``n`` events, scores every event exactly as
        :meth:`log_p` does (on transformed rows), and keeps learning.

        >>> model = fit_model(np.array([[1.0], [3.0]]), ["x"])
        >>> stream = model.streaming_model()
        >>> stream.n, bool(stream.score(np.array([[2.0]])).log_p[0] == model.log_p([[2.0]])[0])
        (2.0, True)
        """
        return GaussianModel.from_moments(
            self.n,
            self.mean,
            self.spread,
            half_life=half_life,
            variance_floor=self.variance_floor,
            relative_floor=self.relative_floor,
        )

    @property
    def epsilon(self) -> float | None:
        """ε = exp(log ε), for display (may underflow to 0.0); None without a threshold."""
        return None if self.log_epsilon is None else exp_or_inf(self.log_epsilon)

    def with_threshold(
        self,
        log_epsilon: float,
        method: str,
        validation: Mapping[str, Any] | None = None,
    ) -> FittedModel:
        """A copy of this model with a threshold and what it achieved on validation data."""
        if method not in _THRESHOLD_METHODS:
            raise ValueError(
                f"method must be one of {', '.join(_THRESHOLD_METHODS)}, got {method!r}"
            )
        return dataclasses.replace(
            self,
            log_epsilon=float(log_epsilon),
            threshold_method=method,
            validation=None if validation is None else dict(validation),
        )

    def transform(self, X: ArrayLike, *, source: str | None = None) -> Array:
        """Rows of ``X`` (original units, columns in ``features`` order) after the transforms.

        :class:`InputError` names ``source`` and the first value that is not
        finite after its transform, by its data row (see :func:`transform_rows`).
        """
        return transform_rows(X, self.features, self.transforms, source=source)

    def log_p(self, X: ArrayLike, *, source: str | None = None) -> Array:
        """log p(x) of each row of ``X`` (original units), with the variance floors applied.

        The density is :func:`~stream_detect.density.gaussian_score`, the
        one the streaming models use. Lower is more anomalous; an event too far
        out for float64 gets -inf. Raises :class:`InputError` as
        :meth:`transform`, and for a row whose log p is not a number at all
        ("data row N", as :func:`transform_rows` counts rows).
        """
        values = self.transform(X, source=source)
        # An event too far out for float64 scores -inf: as anomalous as can be, not a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            log_p = gaussian_score(
                values, self.mean, self.spread, self.variance_floor, self.relative_floor
            ).log_p
        if np.any(np.isnan(log_p)):
            row = int(np.argmax(np.isnan(log_p)))
            reason = "log p(x) is not a number: the event is too far out for float64"
            raise InputError(f"data row {row + 1}: {reason}", source=source)
        return log_p

    def flag(self, log_p: ArrayLike) -> NDArray[np.bool_]:
        """Decisions ``log_p < log ε``; ModelError when the model has no threshold."""
        if self.log_epsilon is None:
            raise ModelError(
                "the model has no threshold (log_epsilon is null): fit it with labelled "
                "validation data (--val) to choose one"
            )
        flagged: NDArray[np.bool_] = np.asarray(log_p, dtype=np.float64) < self.log_epsilon
        return flagged

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able file content (see the module docstring)."""
        data: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "kind": self.kind,
            "features": list(self.features),
            "transforms": self.transforms.to_dict(),
            "n": int(self.n) if self.n.is_integer() else self.n,
            "mean": self.mean.tolist(),
        }
        if self.cov is None:
            data["var"] = self.var.tolist()
        else:
            data["cov"] = self.cov.tolist()
        data.update(
            variance_floor=self.variance_floor,
            relative_floor=self.relative_floor,
            log_epsilon=_encode_float(self.log_epsilon),
            epsilon=_encode_float(self.epsilon),
            threshold_method=self.threshold_method,
            validation=self.validation,
        )
        return data

    @classmethod
    def from_dict(cls, data: Any) -> FittedModel:
        """Check and rebuild a model from :meth:`to_dict` output; ModelError names the problem.

        >>> model = fit_model(np.array([[1.0, 5.0], [3.0, 7.0]]), ["a", "b"], kind="full")
        >>> FittedModel.from_dict(model.to_dict()).cov.tolist()
        [[1.0, 1.0], [1.0, 1.0]]
        >>> FittedModel.from_dict({"format": FORMAT, "version": 99})
        Traceback (most recent call last):
        ...
        stream_detect.errors.ModelError: it is version 99 of the model format; this \
stream_detect reads version 1
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelError(f'it is not a stream_detect model (no "format": "{FORMAT}")')
        version = data.get("version")
        if version != VERSION:
            raise ModelError(
                f"it is version {version!r} of the model format; "
                f"this stream_detect reads version {VERSION}"
            )
        kind = data.get("kind")
        if kind not in ("diagonal", "full"):
            raise ModelError(f"kind is {kind!r}, expected 'diagonal' or 'full'")
        features = _features(data.get("features"))
        d = len(features)
        mean = _float_array(data, "mean", (d,))
        if kind == "diagonal":
            var = _float_array(data, "var", (d,))
            if np.any(var < 0):
                raise ModelError("var holds a negative variance")
            cov = None
        else:
            cov = _float_array(data, "cov", (d, d))
            var = np.diagonal(cov).copy()
        n = _number(data, "n", minimum=0.0)
        variance_floor = _number(data, "variance_floor", minimum=0.0)
        relative_floor = _number(data, "relative_floor", minimum=0.0)
        if cov is not None:
            _check_covariance(cov, mean, variance_floor, relative_floor)
        try:
            transforms = FeatureTransforms.from_dict(data.get("transforms") or {})
            transforms.apply(np.zeros((0, d)), features)  # every named feature must be modelled
        except ConfigError as exc:
            raise ModelError(f"transforms: {exc}") from exc
        log_epsilon = _decode_float(data.get("log_epsilon"), "log_epsilon")
        method = data.get("threshold_method")
        if method is not None and method not in _THRESHOLD_METHODS:
            raise ModelError(
                f"threshold_method is {method!r}, expected one of "
                f"{', '.join(_THRESHOLD_METHODS)} or null"
            )
        validation = data.get("validation")
        if validation is not None and not isinstance(validation, dict):
            raise ModelError("validation must be an object or null")
        return cls(
            kind=kind,
            features=features,
            n=n,
            mean=mean,
            var=var,
            cov=cov,
            transforms=transforms,
            variance_floor=variance_floor,
            relative_floor=relative_floor,
            log_epsilon=log_epsilon,
            threshold_method=method,
            validation=validation,
        )


def transform_rows(
    X: ArrayLike,
    features: Sequence[str],
    transforms: FeatureTransforms,
    *,
    source: str | None = None,
) -> Array:
    """Apply ``transforms`` to the rows of ``X``; every value must come out finite.

    Raises :class:`InputError` naming ``source``, the first bad row as "data
    row N" (its 1-based number among the rows, not counting a header or blank
    lines, so not always its line in the file: the rows come as an array,
    without their lines) and the feature whose value is outside the domain of
    its transform, or not finite.

    >>> ft = FeatureTransforms.from_dict({"x": "log"})
    >>> transform_rows([[1.0], [0.0]], ["x"], ft, source="train.csv")
    Traceback (most recent call last):
    ...
    stream_detect.errors.InputError: train.csv: data row 2: feature 'x' = 0.0 is outside the \
domain of transform 'log'
    """
    values = np.asarray(X, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(features):
        raise ValueError(f"expected rows of {len(features)} features, got shape {values.shape}")
    transformed = transforms.apply(values, features)
    bad = ~np.isfinite(transformed)
    if np.any(bad):
        row, column = (int(i[0]) for i in np.nonzero(bad))
        name = features[column]
        raw = float(values[row, column])
        spec = transforms.get_transform(name).spec
        if math.isfinite(raw) and spec != "none":
            reason = f"feature {name!r} = {raw!r} is outside the domain of transform {spec!r}"
        else:
            reason = f"feature {name!r} = {raw!r} is not a finite number"
        raise InputError(f"data row {row + 1}: {reason}", source=source)
    return transformed


def fit_model(
    X: ArrayLike,
    features: Sequence[str],
    *,
    kind: ModelKind = "diagonal",
    transforms: FeatureTransforms | None = None,
    variance_floor: float = DEFAULT_VARIANCE_FLOOR,
    relative_floor: float = DEFAULT_RELATIVE_FLOOR,
    source: str | None = None,
) -> FittedModel:
    """Fit mean and population variance (or covariance) of the transformed rows of ``X``.

    The statistics come from :mod:`stream_detect.stats`, so a model fitted
    here equals one learned event by event. No threshold is set; see
    :meth:`FittedModel.with_threshold`. ``source`` only serves error
    messages (see :func:`transform_rows`).

    >>> model = fit_model(np.array([[1.0, 2.0], [3.0, 6.0]]), ["a", "b"], kind="full")
    >>> model.cov.tolist()
    [[1.0, 2.0], [2.0, 4.0]]
    """
    if kind not in ("diagonal", "full"):
        raise ValueError(f"kind must be 'diagonal' or 'full', got {kind!r}")
    names = _features(list(features), error=ValueError)
    transforms = transforms if transforms is not None else FeatureTransforms()
    values = transform_rows(X, names, transforms, source=source)
    if len(values) == 0:
        raise InputError("no events to fit the model on", source=source)
    cov: Array | None = None
    # Overflow is checked for below, with a message that says what to do about it.
    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "diagonal":
            moments = RunningMoments.empty(len(names)).learn(values)
            n, mean, var = float(moments.n), moments.mean.copy(), moments.var.copy()
        else:
            covariance = RunningCovariance.empty(len(names)).learn(values)
            # Symmetric to the last bit, so the file does not depend on summation order.
            cov = (covariance.cov + covariance.cov.T) / 2
            n, mean, var = float(covariance.n), covariance.mean.copy(), np.diagonal(cov).copy()
    too_large = ~(np.isfinite(mean) & np.isfinite(var))
    if np.any(too_large):
        name = names[int(np.argmax(too_large))]
        raise InputError(
            f"the variance of feature {name!r} overflows float64; rescale the feature "
            "(change its units) or transform it",
            source=source,
        )
    return FittedModel(
        kind,
        names,
        n,
        mean,
        var,
        cov,
        transforms=transforms,
        variance_floor=variance_floor,
        relative_floor=relative_floor,
    )


def detector_settings_for(
    settings: DetectorSettings, model: FittedModel, name: str
) -> DetectorSettings:
    """``settings`` for a stream that starts from ``model`` (read from the file ``name``).

    The stream takes the model's features, transforms, kind and variance
    floor, and its log ε when ``settings`` names none. Settings that name
    something else are refused with a :class:`ModelError` naming both (a
    ``model`` of ``diagonal`` is the default and yields to a full model).

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
    log_epsilon = settings.log_epsilon if settings.log_epsilon is not None else model.log_epsilon
    return dataclasses.replace(
        settings,
        features=model.features,
        transforms=transforms or None,
        model=model.kind,
        variance_floor=model.variance_floor,
        log_epsilon=log_epsilon,
    )


def check_model_path(path: str | os.PathLike[str]) -> None:
    """Fail now if :func:`save_model` could not write ``path``: its folder is missing or it is one.

    Raises :class:`ModelError` worded as :func:`save_model` words a failed
    write, so a command can check its ``--out`` before the work.

    >>> check_model_path("/no/such/folder/model.json")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ModelError: cannot write model file /no/such/folder/model.json: no such \
folder
    """
    target = Path(path)
    if not target.absolute().parent.is_dir():
        raise ModelError(f"cannot write model file {target}: no such folder")
    if target.is_dir():
        raise ModelError(f"cannot write model file {target}: it is a folder")


def save_model(model: FittedModel, path: str | os.PathLike[str]) -> None:
    """Write ``model`` to ``path`` as JSON, atomically (a temporary file, then a rename).

    :class:`ModelError` names the file when it cannot be written.
    """
    target = Path(path)
    text = json.dumps(model.to_dict(), indent=2, allow_nan=False) + "\n"
    try:
        write_atomically(target, text.encode("utf-8"))
    except OSError as exc:
        raise ModelError(f"cannot write model file {target}: {exc.strerror or exc}") from exc


def load_model(path: str | os.PathLike[str]) -> FittedModel:
    """Read a model written by :func:`save_model`.

    :class:`ModelError` names the file and the problem: missing or unreadable,
    not JSON, not a model, another format version, or inconsistent content.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ModelError(f"cannot read model file {source}: {reason}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"model file {source} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    try:
        return FittedModel.from_dict(data)
    except ModelError as exc:
        raise ModelError(f"model file {source}: {exc}") from exc


# --------------------------------------------------------------------------- checks of file content


def _features(value: Any, error: type[Exception] = ModelError) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(f, str) for f in value):
        raise error("features must be a non-empty list of names")
    if len(set(value)) != len(value):
        repeated = next(f for f in value if value.count(f) > 1)
        raise error(f"features name {repeated!r} more than once")
    return tuple(value)


def _float_array(data: dict[str, Any], key: str, shape: tuple[int, ...]) -> Array:
    if key not in data:
        raise ModelError(f"the key {key!r} is missing")
    try:
        array = np.asarray(data[key], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{key} must hold numbers only") from exc
    if array.shape != shape:
        raise ModelError(f"{key} has shape {array.shape}, expected {shape} for the features given")
    if not np.all(np.isfinite(array)):
        raise ModelError(f"{key} holds a value that is not a finite number")
    return array


def _number(data: dict[str, Any], key: str, minimum: float) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
        raise ModelError(f"{key} is {value!r}, expected a number >= {minimum:g}")
    return float(value)


def _check_covariance(
    cov: Array, mean: Array, variance_floor: float, relative_floor: float
) -> None:
    if not np.allclose(cov, cov.T, rtol=1e-12, atol=0.0):
        raise ModelError("cov is not symmetric")
    try:
        np.linalg.cholesky(floor_covariance(cov, mean, variance_floor, relative_floor))
    except np.linalg.LinAlgError:
        raise ModelError("cov is not a covariance matrix (not positive semi-definite)") from None


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
