"""The hosts the synthetic stream imitates: their scales, and how values are reported.

Each :class:`HostProfile` says where a host's latent standard normals are
mapped to (means, spreads, medians); :data:`DECIMALS` how many decimals an
agent reports each feature with.

>>> [profile.name for profile in HOST_PROFILES], DECIMALS["cpu"]
(['web-1', 'web-2', 'db-1'], 1)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DECIMALS", "HOST_PROFILES", "HostProfile"]


@dataclass(frozen=True)
class HostProfile:
    """Scale of one host's metrics: where each latent normal is mapped to.

    ``latency_ms`` is ``exp(log(latency_median_ms) + latency_sigma * z)``;
    ``error_rate`` is ``1 / (1 + exp(-(logit(error_median) + error_sigma * z)))``;
    the other features are ``mean + sd * z``.
    """

    name: str
    weight: float
    requests: tuple[float, float]
    cpu: tuple[float, float]
    latency_median_ms: float
    latency_sigma: float
    error_median: float
    error_sigma: float
    temperature_c: tuple[float, float]
    fan_rpm: tuple[float, float]


#: Hosts, with the share of events each reports and their scales.
HOST_PROFILES: tuple[HostProfile, ...] = (
    HostProfile(
        name="web-1",
        weight=0.45,
        requests=(200.0, 30.0),
        cpu=(38.0, 7.0),
        latency_median_ms=40.0,
        latency_sigma=0.5,
        error_median=0.010,
        error_sigma=0.45,
        temperature_c=(45.0, 3.0),
        fan_rpm=(2200.0, 150.0),
    ),
    HostProfile(
        name="web-2",
        weight=0.35,
        requests=(120.0, 20.0),
        cpu=(27.0, 5.0),
        latency_median_ms=60.0,
        latency_sigma=0.55,
        error_median=0.015,
        error_sigma=0.5,
        temperature_c=(50.0, 2.5),
        fan_rpm=(2600.0, 120.0),
    ),
    HostProfile(
        name="db-1",
        weight=0.20,
        requests=(60.0, 8.0),
        cpu=(55.0, 6.0),
        latency_median_ms=15.0,
        latency_sigma=0.45,
        error_median=0.004,
        error_sigma=0.4,
        temperature_c=(60.0, 2.0),
        fan_rpm=(3400.0, 180.0),
    ),
)

#: Decimals each feature is reported with (requests and fan speed are whole numbers).
DECIMALS: dict[str, int] = {
    "requests": 0,
    "cpu": 1,
    "latency_ms": 2,
    "error_rate": 5,
    "temperature_c": 2,
    "fan_rpm": 0,
}
