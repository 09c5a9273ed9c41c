"""stream_detect: streaming anomaly detection with running Gaussian density models.

The public API is what ``__all__`` lists; everything else may change.

Each name is imported from its module on first use, so that importing the
package (which the command line does) costs no more than the modules a
command needs: ``stream-detect run --help`` never loads numpy's linear
algebra, the detector or the metrics server.

>>> import numpy as np
>>> from stream_detect import estimate_gaussian
>>> X = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
>>> mu, var = estimate_gaussian(X)
>>> mu.tolist(), var.round(4).tolist()
([2.0, 4.0], [0.6667, 2.6667])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from stream_detect.assembly import run_stream
    from stream_detect.classic import (
        estimate_gaussian,
        log_multivariate_gaussian,
        multivariate_gaussian,
    )
    from stream_detect.confusion import ConfusionCounts, confusion_counts
    from stream_detect.detector import Detections, Detector
    from stream_detect.errors import (
        ConfigError,
        DependencyError,
        InputError,
        ModelError,
        NothingUsable,
        OutputError,
        RecordError,
        StreamDetectError,
    )
    from stream_detect.feature_transforms import FeatureTransforms
    from stream_detect.pipeline import Pipeline, Summary
    from stream_detect.settings import DetectorSettings, RunSettings
    from stream_detect.stats import RunningCovariance, RunningMoments
    from stream_detect.threshold import (
        best_log_threshold,
        quantile_log_threshold,
        select_log_threshold,
    )
    from stream_detect.threshold_choice import ThresholdChoice
    from stream_detect.threshold_grid import grid_log_threshold, select_threshold
    from stream_detect.transform_suggestions import suggest_transform
    from stream_detect.transforms import Transform, parse_transform
    from stream_detect.validation_buffer import ValidationBuffer

#: Public name -> the module that defines it.
_HOMES: dict[str, str] = {
    "run_stream": "assembly",
    **dict.fromkeys(
        ["estimate_gaussian", "log_multivariate_gaussian", "multivariate_gaussian"], "classic"
    ),
    **dict.fromkeys(["ConfusionCounts", "confusion_counts"], "confusion"),
    **dict.fromkeys(["Detections", "Detector"], "detector"),
    **dict.fromkeys(
        [
            "ConfigError",
            "DependencyError",
            "InputError",
            "ModelError",
            "NothingUsable",
            "OutputError",
            "RecordError",
            "StreamDetectError",
        ],
        "errors",
    ),
    **dict.fromkeys(["Pipeline", "Summary"], "pipeline"),
    **dict.fromkeys(["DetectorSettings", "RunSettings"], "settings"),
    **dict.fromkeys(["RunningCovariance", "RunningMoments"], "stats"),
    **dict.fromkeys(
        ["best_log_threshold", "quantile_log_threshold", "select_log_threshold"], "threshold"
    ),
    "ThresholdChoice": "threshold_choice",
    **dict.fromkeys(["grid_log_threshold", "select_threshold"], "threshold_grid"),
    "suggest_transform": "transform_suggestions",
    "FeatureTransforms": "feature_transforms",
    **dict.fromkeys(["Transform", "parse_transform"], "transforms"),
    "ValidationBuffer": "validation_buffer",
}

__all__ = [
    "ConfigError",
    "ConfusionCounts",
    "DependencyError",
    "Detections",
    "Detector",
    "DetectorSettings",
    "FeatureTransforms",
    "InputError",
    "ModelError",
    "NothingUsable",
    "OutputError",
    "Pipeline",
    "RecordError",
    "RunSettings",
    "RunningCovariance",
    "RunningMoments",
    "StreamDetectError",
    "Summary",
    "ThresholdChoice",
    "Transform",
    "ValidationBuffer",
    "__version__",
    "best_log_threshold",
    "confusion_counts",
    "estimate_gaussian",
    "grid_log_threshold",
    "log_multivariate_gaussian",
    "multivariate_gaussian",
    "parse_transform",
    "quantile_log_threshold",
    "run_stream",
    "select_log_threshold",
    "select_threshold",
    "suggest_transform",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is asked for."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'stream_detect' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"stream_detect.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
