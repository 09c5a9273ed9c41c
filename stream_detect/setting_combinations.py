"""The rules that tie several settings together, checked when a settings object is built.

Each field is checked alone by :mod:`stream_detect.validation`; the checks
here need more than one value: a river model takes ``model_params`` and cannot
be clipped or checkpointed, an alert budget needs an event rate, a seasonal
feature needs a timestamp, the validation buffer must hold the labels a
re-tune needs. Settings built in Python, from flags or from a file all pass
through them, and fail with one :class:`~stream_detect.errors.ConfigError`.
"""

from __future__ import annotations

import re
from typing import Any

from stream_detect.errors import ConfigError
from stream_detect.field_names import check_feature_names
from stream_detect.model_kinds import MODEL_PATTERN, supports
from stream_detect.validation import ROLE_FIELDS, did_you_mean

__all__ = ["check_detector", "check_run_with_detector", "model_kind_known"]


def _river_model_name(model: Any) -> str | None:
    """``"HalfSpaceTrees"`` for ``"river:HalfSpaceTrees"``, None for the built-in models."""
    if isinstance(model, str) and model.startswith("river:"):
        return model.removeprefix("river:")
    return None


def model_kind_known(model: str) -> bool:
    """True if ``model`` names a model kind (the pattern check reports the others)."""
    return re.fullmatch(MODEL_PATTERN, model) is not None


def _check_series(values: dict[str, Any]) -> None:
    """Seasonal features need a timestamp; the time zone must exist."""
    derived = values.get("derived") or {}
    seasonal = [name for name, spec in derived.items() if spec["kind"] == "seasonal"]
    if seasonal and values.get("timestamp_field") is None:
        raise ConfigError(
            f"derived.{seasonal[0]}",
            derived[seasonal[0]],
            "a timestamp_field too (a seasonal feature needs the event time)",
        )
    zone = values.get("time_zone")
    # UTC (the default) always has a wall clock: only a named zone is looked up, and only
    # then are the timestamp rules (and numpy) imported.
    if zone is not None and zone.upper() != "UTC":
        from stream_detect.timestamps import wall_clock_seconds

        wall_clock_seconds([0.0], time_zone=zone)


def _check_budget(values: dict[str, Any], river_name: str | None) -> None:
    """An alert budget sets the log tail's threshold: it needs a tail and an event rate."""
    budget = values.get("alerts_per_day")
    if budget is None:
        return
    # A log epsilon of 0.0 is a threshold too: asked "is one given", not "is it true".
    if values.get("log_epsilon") is not None:
        reason = "no log_epsilon (the budget sets the threshold on the log tail)"
        raise ConfigError("alerts_per_day", budget, reason)
    if values.get("likelihood"):
        reason = "likelihood = false (the likelihood has its own threshold)"
        raise ConfigError("alerts_per_day", budget, reason)
    if river_name is not None:
        raise ConfigError("alerts_per_day", budget, "a Gaussian model (a river model has no tail)")
    if values.get("timestamp_field") is None and values.get("events_per_day") is None:
        raise ConfigError(
            "alerts_per_day",
            budget,
            "a timestamp_field or events_per_day too (a budget per day needs the event rate)",
        )


def check_detector(settings: Any) -> None:
    """The rules between fields of :class:`~stream_detect.settings.DetectorSettings`.

    >>> from stream_detect.settings import DetectorSettings
    >>> DetectorSettings(model="river:HalfSpaceTrees", flagged="clip")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key flagged: got 'clip', expected exclude or learn \
with a river:* model (clipping needs a Gaussian model's mean and spread)
    """
    values = vars(settings)
    model = values.get("model")
    river_name = _river_model_name(model)
    _check_series(values)
    _check_budget(values, river_name)

    min_samples = values.get("min_samples")
    if model == "full" and min_samples is not None and min_samples < 2:
        raise ConfigError(
            "min_samples",
            min_samples,
            'an integer >= 2 with model = "full" (a covariance needs two events; '
            "d + 1 for d features is enforced once the features are known)",
        )
    if (
        values.get("flagged") == "clip"
        and isinstance(model, str)
        and model_kind_known(model)
        and not supports(model, "clipped_learning")
    ):
        raise ConfigError(
            "flagged",
            "clip",
            "exclude or learn with a river:* model (clipping needs a Gaussian model's "
            "mean and spread)",
        )
    if river_name is not None:
        from stream_detect.river_params import check_river_model  # only river:* models need it

        check_river_model(river_name, values.get("model_params"))
    elif values.get("model_params") is not None:
        raise ConfigError(
            "model_params",
            values["model_params"],
            f'no [model_params] table with model = "{model}" (only river:NAME models take '
            "parameters)",
        )

    features = values.get("features")
    if features is not None:
        check_feature_names(features, roles={role: values.get(role) for role in ROLE_FIELDS})
        for feature in values.get("transforms") or {}:
            if feature not in features:
                raise ConfigError(
                    f"transforms.{feature}",
                    feature,
                    "a feature named in features ("
                    + ", ".join(features)
                    + ")"
                    + did_you_mean(feature, features),
                )

    size = values.get("validation_size")
    for needed in ("min_positive_labels", "min_negative_labels"):
        if size is not None and values.get(needed) is not None and size < values[needed]:
            raise ConfigError(
                "validation_size",
                size,
                f"an integer >= {needed} = {values[needed]} (the buffer must hold enough labels "
                "to tune epsilon)",
            )


def check_run_with_detector(run: Any, detector: Any) -> None:
    """The rules between a :class:`~stream_detect.settings.RunSettings` and its detector's.

    >>> from stream_detect.settings import DetectorSettings, RunSettings
    >>> check_run_with_detector(RunSettings(checkpoint="s.json"),
    ...                         DetectorSettings(model="river:LODA"))
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key checkpoint: got 's.json', expected no \
checkpoint with a river:* model (river models cannot be saved without pickle)
    """
    if run.checkpoint is not None and not supports(detector.model, "checkpointable"):
        raise ConfigError(
            "checkpoint",
            run.checkpoint,
            "no checkpoint with a river:* model (river models cannot be saved without pickle)",
        )
    stdin = ("-", "stdin")
    if run.labels in stdin and run.source in stdin:
        raise ConfigError(
            "labels",
            run.labels,
            "a URI other than stdin while the source is stdin (stdin carries one stream)",
        )
