"""configs/metrics.toml on 1 Hz data of correlated sensors with a 10-minute fault."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stream_detect.assembly import run_stream
from stream_detect.config import read_config_file, settings_from_mapping
from stream_detect.testing import ListSink, ListSource

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "metrics.toml"
HOUR, FAULT = 3600, 600
SENSORS = ("inlet", "outlet", "pressure", "flow")


def _sensors(fault: str, seed: int) -> np.ndarray:
    """An hour of normal running, a 10-minute fault, then ten more normal minutes."""
    rng = np.random.default_rng(seed)
    rows = HOUR + FAULT + 600
    load = np.cumsum(rng.normal(0, 0.05, rows))
    load = load - np.convolve(load, np.ones(300) / 300, mode="same") + rng.normal(0, 1, rows)
    gains, offsets = np.array([1.0, 0.8, -1.5, 2.0]), np.array([60.0, 55.0, 3.0, 120.0])
    noise = rng.normal(0, 0.05, (rows, 4))
    X = offsets + gains * load[:, None] + noise * np.abs(gains)
    fault_rows = slice(HOUR, HOUR + FAULT)
    if fault == "stuck":
        spread = float(np.std(X[:HOUR, 0]))
        X[fault_rows, 0] = np.mean(X[:HOUR, 0]) + 8 * spread
    else:
        # Outlet and flow keep their level and spread but stop following the load.
        other = rng.normal(0, 1, FAULT)
        X[fault_rows, 1] = offsets[1] + gains[1] * other + noise[fault_rows, 1]
        X[fault_rows, 3] = offsets[3] + gains[3] * other[::-1] + noise[fault_rows, 3]
    return X


@pytest.mark.parametrize("fault", ["stuck", "decoupled"])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_fault_alerts_through_and_the_hour_before_is_quiet(fault: str, seed: int) -> None:
    X = _sensors(fault, seed)
    events = [dict(zip(SENSORS, row.tolist(), strict=True)) for row in X]
    run, detector = settings_from_mapping({**read_config_file(CONFIG), "emit": "all"})
    sink = ListSink()
    run_stream(run, detector, source=ListSource(events), sink=sink, dead_letter=ListSink())
    alert = np.array([record["alert"] for record in sink.records])
    assert alert.size == X.shape[0]
    during = alert[HOUR : HOUR + FAULT].mean()
    before = int(alert[:HOUR].sum())
    assert during >= 0.9, f"{fault}: {during:.1%} of the fault's rows alerted"
    assert before <= 3, f"{fault}: {before} alerts in the hour before"
