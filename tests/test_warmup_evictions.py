"""Keyed models evicted before their warm-up ends: counted, and said once when they matter."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from monitoring import http_get
from test_sidecar_metrics import samples

from stream_detect.assembly import run_stream
from stream_detect.detector import Detector
from stream_detect.pipeline import Pipeline
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sidecar import Sidecar
from stream_detect.testing import ListSink, ListSource

MODELS = ["diagonal", "full"]  # the keyed bank, and one model object per key


def round_robin(n_keys: int, events: int) -> list[dict[str, Any]]:
    """Keys taking turns, one event each: with ``max_keys`` below ``n_keys`` every one evicts."""
    rng = np.random.default_rng(0)
    return [
        {"host": f"h{i % n_keys}", "x": float(rng.normal()), "y": float(rng.normal())}
        for i in range(events)
    ]


def churning(events: int) -> list[dict[str, Any]]:
    """20 steady hosts and, every 40th event, a host seen once and never again."""
    rng = np.random.default_rng(1)
    out: list[dict[str, Any]] = []
    for i in range(events):
        host = f"gone{i}" if i % 40 == 39 else f"h{i % 20}"
        out.append({"host": host, "x": float(rng.normal()), "y": float(rng.normal())})
    return out


def run(
    events: list[dict[str, Any]], model: str, max_keys: int, batch_size: int
) -> tuple[dict[str, Any], list[str]]:
    """The summary of a keyed run over ``events``, and its warnings."""
    warnings: list[str] = []
    detector = DetectorSettings(key_field="host", max_keys=max_keys, min_samples=20, model=model)
    summary = run_stream(
        RunSettings(),
        detector,
        source=ListSource(events, batch_size=batch_size),
        sink=ListSink(),
        dead_letter=ListSink(),
        on_warning=warnings.append,
    )
    return summary.to_dict(), warnings


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("batch_size", [1, 256])
def test_keys_outnumbering_max_keys_are_evicted_in_warmup_counted_and_said_once(
    model: str, batch_size: int
) -> None:
    summary, warnings = run(round_robin(3, 600), model, max_keys=2, batch_size=batch_size)
    # Every event after the first two evicts a model that learned at most one event.
    assert summary["evicted_models"] == summary["evicted_in_warmup"] == 598
    assert summary["alerts"] == 0
    assert len(warnings) == 1
    said = warnings[0]
    assert "(--max-keys 2)" in said and "warm-up" in said and "never alert" in said
    assert "raise --max-keys" in said and "--key-field 'host'" in said


@pytest.mark.parametrize("model", MODELS)
def test_a_healthy_stream_with_churn_counts_its_warmup_evictions_and_says_nothing(
    model: str,
) -> None:
    summary, warnings = run(churning(6000), model, max_keys=25, batch_size=256)
    # The one-off hosts are evicted in warm-up, one for 40 events: churn, not thrashing.
    assert 100 <= summary["evicted_in_warmup"] == summary["evicted_models"] < 6000 // 30
    assert warnings == []


@pytest.mark.parametrize("model", MODELS)
def test_a_warm_model_evicted_is_not_counted_as_evicted_in_warmup(model: str) -> None:
    events = [{"host": "a", "x": float(i % 5), "y": float(i % 3)} for i in range(30)]
    events += [{"host": "b", "x": 1.0, "y": 1.0}, {"host": "c", "x": 1.0, "y": 1.0}]
    events += [{"host": "d", "x": 1.0, "y": 1.0}]  # evicts b, which learned one event
    summary, warnings = run(events, model, max_keys=2, batch_size=1)
    assert (summary["evicted_models"], summary["evicted_in_warmup"]) == (2, 1)
    assert warnings == []


@pytest.mark.parametrize("model", MODELS)
def test_the_warmup_eviction_count_survives_a_checkpoint(model: str) -> None:
    settings = DetectorSettings(key_field="host", max_keys=2, min_samples=20, model=model)
    detector = Detector(settings, ("x",))
    keys = [f"h{i % 3}" for i in range(50)]
    detector.process(np.arange(50.0)[:, None], keys=keys)
    assert detector.evicted_in_warmup == 48
    restored = Detector(settings, ("x",))
    restored.restore(detector.to_dict())
    assert restored.summary()["evicted_in_warmup"] == 48
    # A checkpoint written before the count existed reads as none counted.
    older = detector.to_dict()
    del older["counters"]["evicted_in_warmup"]
    restored.restore(older)
    assert restored.evicted_in_warmup == 0 and restored.evicted == 48


def test_warmup_evictions_are_counters_on_metrics() -> None:
    run_settings = RunSettings(http="127.0.0.1:0")
    detector = DetectorSettings(key_field="host", max_keys=2, min_samples=20)
    sidecar = Sidecar(run_settings, detector)
    assert sidecar.server is not None
    pipeline = Pipeline(
        run_settings,
        detector,
        source=ListSource(round_robin(3, 300), batch_size=64),
        sink=ListSink(),
        dead_letter=ListSink(),
        on_warning=lambda _: None,
    )
    sidecar.attach(pipeline)
    try:
        pipeline.run()
        sidecar.refresh(pipeline)
        found = samples(http_get(f"http://{sidecar.server.address}/metrics").decode())
    finally:
        sidecar.close()
    assert found[("stream_detect_evicted_models_total", ())] == 298
    assert found[("stream_detect_evicted_in_warmup_total", ())] == 298
