"""stream_detect: streaming anomaly detection with running Gaussian density models.

The public API is what ``__all__`` lists; everything else may change.

>>> import numpy as np
>>> X = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
>>> mu, var = estimate_gaussian(X)
>>> mu.tolist(), var.round(4).tolist()
([2.0, 4.0], [0.6667, 2.6667])
"""

from __future__ import annotations

__version__ = "0.1.0"

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
    OutputError,
    RecordError,
    StreamDetectError,
)
from stream_detect.pipeline import Pipeline, Summary, run_stream
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.stats import RunningCovariance, RunningMoments
from stream_detect.threshold import (
    ThresholdChoice,
    best_log_threshold,
    grid_log_threshold,
    quantile_log_threshold,
    select_log_threshold,
    select_threshold,
)
from stream_detect.transform_suggestions import suggest_transform
from stream_detect.transforms import (
    FeatureTransforms,
    Transform,
    parse_transform,
)
from stream_detect.validation_buffer import ValidationBuffer

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
