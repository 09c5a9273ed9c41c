"""Key and id values are bounded in bytes: longer ones are dead letters, not memory."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from stream_detect.assembly import run_stream
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.testing import ListSink, ListSource


def events_with(field: str, values: list[str]) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    return [
        {"x": float(x), field: value}
        for x, value in zip(rng.normal(size=len(values)).tolist(), values, strict=True)
    ]


@pytest.mark.parametrize("field", ["key", "id"])
def test_over_long_keys_and_ids_are_dead_letters_with_a_reason(field: str) -> None:
    # 256 ASCII bytes fit; 257 do not; 100 three-byte characters are 300 bytes.
    values = ["a" * 256, "b" * 257, "é" * 128, "€" * 100, "short"] * 40
    dead, sink = ListSink(), ListSink()
    detector = DetectorSettings(**{f"{field}_field": field, "log_epsilon": -10.0})
    summary = run_stream(
        RunSettings(emit="all", batch_size=7),
        detector,
        source=ListSource(events_with(field, values)),
        sink=sink,
        dead_letter=dead,
    )
    too_long = {"b" * 257, "€" * 100}
    assert summary.events == 120 and summary.bad_records == 80
    assert [r[field] for r in sink.records] == [v for v in values if v not in too_long]
    for letter in dead.records:
        assert "longer than max_key_bytes = 256" in letter["reason"]
        assert letter["reason"].startswith(field)
        assert "line" in letter["position"]


def test_the_bound_is_a_setting() -> None:
    dead = ListSink()
    summary = run_stream(
        RunSettings(max_key_bytes=4),
        DetectorSettings(key_field="key", log_epsilon=-10.0),
        source=ListSource(events_with("key", ["abcd", "abcde"] * 10)),
        sink=ListSink(),
        dead_letter=dead,
    )
    assert summary.events == 10 and summary.bad_records == 10
