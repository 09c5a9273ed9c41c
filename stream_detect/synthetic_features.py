"""The synthetic stream's features: correlated latent normals on each host's scale.

What :func:`stream_detect.synthetic.generate_events` reports for each event,
column by column (:data:`FEATURES`):

==================  =========================================================
``requests``        requests per second; Gaussian
``cpu``             CPU percent; Gaussian, correlated with ``requests`` (0.9)
``latency_ms``      log-normal: right-skewed (skewness about 1.8), positive
``error_rate``      logit-normal in (0, 1): right-skewed, bounded
``temperature_c``   Gaussian
``fan_rpm``         Gaussian, correlated with ``temperature_c`` (0.9)
==================  =========================================================

``latency_ms`` also rises with ``cpu`` (0.3) and ``error_rate`` with
``latency_ms`` (0.4). Underneath, each event is a vector of correlated
standard normals (:data:`LATENT_CORRELATION`) mapped feature by feature onto
its host's scale (:data:`stream_detect.synthetic_hosts.HOST_PROFILES`): hosts
differ in traffic, load, latency and temperature, so one model across hosts
sees a mixture, and a model per host (``key_field="host"``) sees a Gaussian
after a log transform of the two skewed features. Values are rounded as an
agent would report them.

>>> from stream_detect.synthetic_hosts import HOST_PROFILES
>>> at_the_median = np.zeros((1, len(FEATURES)))
>>> to_features(at_the_median, np.zeros(1, dtype=np.int64), HOST_PROFILES[:1]).tolist()
[[200.0, 38.0, 40.0, 0.01, 45.0, 2200.0]]
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from stream_detect.synthetic_hosts import DECIMALS, HostProfile

__all__ = ["FEATURES", "LATENT_CORRELATION", "to_features"]

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Feature names, in the column order of :attr:`stream_detect.synthetic.SyntheticStream.X`.
FEATURES: tuple[str, ...] = (
    "requests",
    "cpu",
    "latency_ms",
    "error_rate",
    "temperature_c",
    "fan_rpm",
)

_REQUESTS, _CPU, _LATENCY, _ERRORS, _TEMPERATURE, _FAN = range(len(FEATURES))

#: Correlation of the latent standard normals behind the features.
LATENT_CORRELATION: Array = np.array(
    [
        # req   cpu   lat   err   temp  fan
        [1.00, 0.90, 0.27, 0.11, 0.00, 0.00],
        [0.90, 1.00, 0.30, 0.12, 0.00, 0.00],
        [0.27, 0.30, 1.00, 0.40, 0.00, 0.00],
        [0.11, 0.12, 0.40, 1.00, 0.00, 0.00],
        [0.00, 0.00, 0.00, 0.00, 1.00, 0.90],
        [0.00, 0.00, 0.00, 0.00, 0.90, 1.00],
    ]
)


def to_features(latent: Array, host_index: IntArray, profiles: tuple[HostProfile, ...]) -> Array:
    """Map latent normals onto each host's scale, rounded as reported."""
    X = np.empty_like(latent)
    for i, profile in enumerate(profiles):
        rows = host_index == i
        z = latent[rows]
        out = np.empty_like(z)
        out[:, _REQUESTS] = profile.requests[0] + profile.requests[1] * z[:, _REQUESTS]
        out[:, _CPU] = profile.cpu[0] + profile.cpu[1] * z[:, _CPU]
        out[:, _LATENCY] = np.exp(
            math.log(profile.latency_median_ms) + profile.latency_sigma * z[:, _LATENCY]
        )
        logit = math.log(profile.error_median / (1.0 - profile.error_median))
        out[:, _ERRORS] = 1.0 / (1.0 + np.exp(-(logit + profile.error_sigma * z[:, _ERRORS])))
        temperature = profile.temperature_c
        out[:, _TEMPERATURE] = temperature[0] + temperature[1] * z[:, _TEMPERATURE]
        out[:, _FAN] = profile.fan_rpm[0] + profile.fan_rpm[1] * z[:, _FAN]
        X[rows] = out
    # Physical bounds: a point anomaly can push load past them, an agent would not report it.
    X[:, _REQUESTS] = np.maximum(X[:, _REQUESTS], 0.0)
    X[:, _CPU] = np.clip(X[:, _CPU], 0.0, 100.0)
    X[:, _FAN] = np.maximum(X[:, _FAN], 0.0)
    for column, name in enumerate(FEATURES):
        X[:, column] = np.round(X[:, column], DECIMALS[name])
    # Rounding must not make a skewed positive feature zero (log-transforms need x > 0).
    X[:, _LATENCY] = np.maximum(X[:, _LATENCY], 0.01)
    X[:, _ERRORS] = np.maximum(X[:, _ERRORS], 1e-5)
    return X
