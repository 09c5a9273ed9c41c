"""A detector's checkpoint: its learned state as JSON-able data, and loading it back.

:func:`detector_state` writes everything a :class:`~stream_detect.detector.Detector`
has learned (threshold, counters, models, remembered events) together with the
settings it only means something under (:func:`settings_fingerprint`);
:func:`restore_detector` refuses a state written under other settings and
loads the rest exactly, so a restarted run goes on as if it never stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from stream_detect import keyed_columns
from stream_detect.errors import ModelError
from stream_detect.field_checks import restoring
from stream_detect.keyed_arrays import KeyedArrays
from stream_detect.keyed_models import KeyState
from stream_detect.model_interface import Model
from stream_detect.model_kinds import model_kind

if TYPE_CHECKING:
    from stream_detect.detector import Detector

__all__ = ["detector_state", "restore_detector", "settings_fingerprint"]


#: What alerts compare under each score rule, and whether --log-epsilon chose it.
_COMPARED = {
    "tail": "the log tail",
    "log_p": "log p(x)",
    "scale_free": "the scale-free log density",
}
_GIVEN = {"tail": "without", "log_p": "with", "scale_free": "with"}


def settings_fingerprint(detector: Detector) -> dict[str, Any]:
    """The settings a saved state of ``detector`` only means something under."""
    return {
        "features": list(detector.features),
        "model": detector.settings.model,
        "keyed": detector.keyed,
        "key_field": detector.settings.key_field,
        "half_life": detector.settings.half_life,
        "transforms": detector.transforms.to_dict(),
        "variance_floor": detector.settings.variance_floor,
        "score_rule": detector.rule,
        "prior": detector.settings.prior,
        "direction": detector.settings.direction or {},
    }


def detector_state(
    detector: Detector, fingerprint: dict[str, Any], *, arrays: bool = False
) -> dict[str, Any]:
    """The whole learned state of ``detector``, JSON-able, with its settings' ``fingerprint``.

    Keyed diagonal models are saved as columns (:mod:`stream_detect.keyed_columns`),
    as numpy arrays if ``arrays`` (for orjson's OPT_SERIALIZE_NUMPY), else lists.

    >>> from stream_detect.detector import Detector
    >>> from stream_detect.settings import DetectorSettings
    >>> detector = Detector(DetectorSettings(), ("x",))
    >>> _ = detector.process(np.array([[1.0], [2.0]]))
    >>> state = detector_state(detector, settings_fingerprint(detector))
    >>> state["counters"]["events"], state["features"]
    (2, ['x'])
    """
    tuner = detector.tuner
    return {
        **fingerprint,
        **tuner.to_dict(),
        "counters": {
            "events": tuner.events,
            "alerts": detector.alerts,
            "retunes": tuner.retunes,
            "evicted": detector.models.evicted,
            "evicted_in_warmup": detector.models.evicted_in_warmup,
            "relearned": detector.policy.relearned,
            "labels_since_retune": tuner.labels_since_retune,
            "next_retune_at": tuner.next_retune_at,
        },
        "models": _saved_models(detector, arrays=arrays),
        "recent_events": detector.recent_events.to_dict(),
        "integer_features": detector.integers.to_dict(),
        # Written only when a feature is rescaled or not yet seen: as before otherwise.
        **_present("feature_units", detector.units.to_dict()),
    }


def _saved_models(detector: Detector, *, arrays: bool) -> Any:
    """The models' state: columns for a keyed diagonal bank, else one table per model."""
    models = detector.models
    if isinstance(models, KeyedArrays):
        half_life = models.template.stats.half_life
        return keyed_columns.encode(models.to_columns(), half_life, arrays=arrays)
    return models.to_list()


def _present(name: str, value: dict[str, Any] | None) -> dict[str, Any]:
    """``{name: value}``, or nothing when ``value`` is None."""
    return {} if value is None else {name: value}


def restore_detector(
    detector: Detector,
    data: dict[str, Any],
    fingerprint: dict[str, Any],
    new_model: Callable[[], Model],
) -> None:
    """Load ``data`` (from :func:`detector_state`) into ``detector``.

    ``new_model`` builds each restored key's empty model before its state is loaded.

    Raises
    ------
    ModelError
        ``data`` was written under settings other than ``fingerprint``, the
        model kind cannot be restored, or ``data`` lacks a field or holds a
        value of the wrong type (:func:`~stream_detect.field_checks.restoring`).
    """
    # "keyed" follows from key_field, which a user set and so is named first.
    for name in sorted(fingerprint, key=lambda name: name == "keyed"):
        value = fingerprint[name]
        if data.get(name) == value:
            continue
        if name == "score_rule" and value in _COMPARED and data.get(name) in _COMPARED:
            # The rule is no setting of its own: name the one that chose it.
            raise ModelError(
                f"checkpoint was written by a run {_GIVEN[data[name]]} --log-epsilon "
                f"(alerts compared {_COMPARED[data[name]]}), this run is {_GIVEN[value]} it "
                f"(alerts compare {_COMPARED[value]}); give --log-epsilon to both runs or to "
                "neither, or use a new checkpoint file"
            )
        raise ModelError(
            f"checkpoint was written with {name} = {data.get(name)!r}, "
            f"this run has {value!r}; use a new checkpoint file or the same settings"
        )
    if not model_kind(detector.settings.model).checkpointable:
        raise ModelError(f"a {detector.settings.model} model cannot be restored from a checkpoint")
    with restoring("the detector state"):
        counters = data["counters"]
        detector.tuner.restore(data, counters)
        detector.alerts = int(counters["alerts"])
        detector.models.evicted = int(counters["evicted"])
        # Checkpoints written before it was counted lack it: none counted then.
        detector.models.evicted_in_warmup = int(counters.get("evicted_in_warmup", 0))
        detector.policy.relearned = int(counters["relearned"])
        # Checkpoints written before the integer features' floor lack it: off, as then.
        detector.integers.restore(data.get("integer_features"))
        # Checkpoints written before tiny features were rescaled lack it: none rescaled.
        detector.units.restore(data.get("feature_units"))
        detector.models.clear()
        if isinstance(data["models"], dict):
            _restore_columns(detector, data["models"])
        else:
            for entry in data["models"]:
                state = KeyState(new_model())
                state.model.restore(entry["state"])
                state.learned = int(entry["learned"])
                state.run_length = int(entry["run_length"])
                state.pending = [np.asarray(p, dtype=np.float64) for p in entry["pending"]]
                detector.models.put(str(entry["key"]), state)
        detector.recent_events.restore(data["recent_events"])


def _restore_columns(detector: Detector, models: dict[str, Any]) -> None:
    """Load models saved as columns, which only a keyed diagonal run holds, into its bank."""
    bank = detector.models
    if not isinstance(bank, KeyedArrays):
        settings = detector.settings
        raise ModelError(
            "models are saved as columns, which hold keyed diagonal models only; this run's "
            f"models are not (model = {settings.model!r}, key_field = {settings.key_field!r}); "
            "use a new checkpoint file or the settings it was written with"
        )
    bank.load(keyed_columns.decode(models, bank.d))
