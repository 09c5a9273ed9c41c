"""A detector fed in batches, and the checks that batching and restarts change nothing.

Shared by the tests of learning rules that must hold whatever the batches
(acceptance, integer features): per-event reference, batch-size invariance
under the default tail, and a checkpoint restored mid-stream.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from reference import reference_run

from stream_detect.detector import Detector
from stream_detect.settings import DetectorSettings

Array = NDArray[np.float64]
Int8Array = NDArray[np.int8]
FIELDS = ("log_p", "score", "distance_sq", "alert", "warmup", "n")
#: flagged policy, keyed, half-life, model kind.
CONFIGS = list(
    itertools.product(["clip", "exclude"], [False, True], [None, 300.0], ["diagonal", "full"])
)

#: A few of them for the slower restore tests.
RESTORE_CONFIGS = [
    ("clip", False, None, "diagonal"),
    ("clip", True, 300.0, "diagonal"),
    ("exclude", True, None, "full"),
]


def config_id(config: tuple[Any, ...]) -> str:
    flagged, keyed, half_life, model = config
    return f"{flagged}-{'keyed' if keyed else 'single'}-hl{half_life}-{model}"


def settings_for(config: tuple[Any, ...], **more: Any) -> DetectorSettings:
    """The settings of one of :data:`CONFIGS`, re-tunes off, and ``more``."""
    flagged, keyed, half_life, model = config
    return DetectorSettings(
        model=model,
        flagged=flagged,
        key_field="host" if keyed else None,
        half_life=half_life,
        retune_every=0,
        retune_labels=0,
        **more,
    )


def run(
    detector: Detector,
    X: Array,
    keys: list[str] | None,
    batch: int,
    start: int = 0,
    stop: int | None = None,
    labels: Int8Array | None = None,
) -> dict[str, Array]:
    """Feed rows ``start`` to ``stop`` of ``X`` (unlabelled if no ``labels``) in batches.

    Returns the per-event results.
    """
    stop = X.shape[0] if stop is None else stop
    parts: dict[str, list[Array]] = {name: [] for name in FIELDS}
    for begin in range(start, stop, batch):
        part = slice(begin, min(begin + batch, stop))
        batch_labels = None if labels is None else labels[part]
        out = detector.process(X[part], batch_labels, None if keys is None else keys[part])
        for name in FIELDS:
            parts[name].append(getattr(out, name))
    return {name: np.concatenate(values) for name, values in parts.items()}


def assert_close(actual: Array, expected: Array, what: str) -> None:
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-9, err_msg=what)


def check_reference(
    settings: DetectorSettings,
    features: tuple[str, ...],
    X: Array,
    keys: list[str] | None,
    ready_n: int,
    labels: Int8Array | None = None,
) -> list[Detector]:
    """Batches of 7 and 4096 give the per-event reference's results; the detectors used.

    Scores are compared where the model had learned ``ready_n`` events (a full
    model's first covariances rest on its ridge). ``labels``: none if None.
    Batches of one row, the slowest to run, are left to :func:`check_batch_sizes`,
    which compares the other sizes with them.
    """
    given = np.full(X.shape[0], -1, np.int8) if labels is None else labels
    expected = reference_run(settings, X, given, keys)
    detectors = []
    for batch in (7, 4096):
        detector = Detector(settings, features)
        result = run(detector, X, keys, batch, labels=labels)
        np.testing.assert_array_equal(result["n"], expected.n, err_msg=f"batch {batch}")
        np.testing.assert_array_equal(result["alert"], expected.alert, err_msg=f"batch {batch}")
        ready = result["n"] >= ready_n
        for name in ("log_p", "score"):
            assert_close(result[name][ready], getattr(expected, name)[ready], f"{name}, {batch}")
        detectors.append(detector)
    return detectors


def check_batch_sizes(
    settings: DetectorSettings,
    features: tuple[str, ...],
    X: Array,
    keys: list[str] | None,
    ready_n: int,
    labels: Int8Array | None = None,
) -> dict[str, Array]:
    """Batches of 7 and 4096 give what one event at a time gives; that run's results."""
    one = run(Detector(settings, features), X, keys, 1, labels=labels)
    for batch in (7, 4096):
        result = run(Detector(settings, features), X, keys, batch, labels=labels)
        for name in ("alert", "warmup", "n"):
            np.testing.assert_array_equal(result[name], one[name], err_msg=f"{name}, {batch}")
        ready = one["n"] >= ready_n
        for name in ("log_p", "score", "distance_sq"):
            assert_close(result[name][ready], one[name][ready], f"{name}, {batch}")
    return one


def check_restore(
    settings: DetectorSettings,
    features: tuple[str, ...],
    X: Array,
    keys: list[str] | None,
    split: int,
) -> Detector:
    """A checkpoint at row ``split`` continues as the uninterrupted run; the interrupted one."""
    uninterrupted = Detector(settings, features)
    run(uninterrupted, X, keys, 64, stop=split)
    interrupted = Detector(settings, features)
    run(interrupted, X, keys, 64, stop=split)
    restored = Detector(settings, features)
    restored.restore(orjson.loads(orjson.dumps(interrupted.to_dict())))
    expected = run(uninterrupted, X, keys, 64, start=split)
    actual = run(restored, X, keys, 64, start=split)
    for name in FIELDS:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
    assert orjson.dumps(restored.to_dict()) == orjson.dumps(uninterrupted.to_dict())
    return interrupted
