"""Full-covariance models too large to hold are refused at start, in one line, not killed later."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from stream_detect.detector import Detector
from stream_detect.errors import ConfigError
from stream_detect.full_size import FULL_MODELS_MEMORY, MAX_FULL_FEATURES, check_full_size
from stream_detect.settings import DetectorSettings


def names(d: int) -> list[str]:
    return [f"g{j}" for j in range(d)]


def test_a_full_model_takes_up_to_the_most_features_and_no_more() -> None:
    Detector(DetectorSettings(model="full"), names(MAX_FULL_FEATURES))
    with pytest.raises(ConfigError, match=r"at most 1,024 features for a full covariance"):
        Detector(DetectorSettings(model="full"), names(MAX_FULL_FEATURES + 1))


def test_the_diagonal_model_takes_any_number_of_features() -> None:
    Detector(DetectorSettings(), names(30_000))


def test_keyed_full_models_are_bounded_by_what_max_keys_of_them_would_hold() -> None:
    d = 256
    per_model = 2 * d * d * 8
    most = FULL_MODELS_MEMORY // per_model
    Detector(DetectorSettings(model="full", key_field="host", max_keys=most), names(d))
    with pytest.raises(ConfigError, match=f"at most {most:,} with --model full") as caught:
        Detector(DetectorSettings(model="full", key_field="host", max_keys=most + 1), names(d))
    assert caught.value.key == "max_keys"
    # Unkeyed, max_keys is never reached: one model.
    Detector(DetectorSettings(model="full", max_keys=most + 1), names(d))


def test_the_rule_alone() -> None:
    check_full_size(MAX_FULL_FEATURES, keyed=False, max_keys=1)
    with pytest.raises(ConfigError, match="use the diagonal model"):
        check_full_size(MAX_FULL_FEATURES + 1, keyed=False, max_keys=1)


def test_a_stream_of_too_many_inferred_features_ends_at_once_with_one_line() -> None:
    """Features inferred from the events (an exporter of thousands of series, say)."""
    line = orjson.dumps({name: 1.5 for name in names(3_000)}) + b"\n"
    done = subprocess.run(
        [sys.executable, "-m", "stream_detect", "run", "--model", "full", "--no-progress"],
        input=line * 3,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == b""
    errors = done.stderr.decode().splitlines()
    assert errors == [
        "stream-detect run: error: option --model: got 'full', expected at most 1,024 "
        "features for a full covariance, got 3,000 (one 3,000 × 3,000 matrix takes 68.7 MiB, "
        "and each event costs d²): use the diagonal model, or name fewer features (--features)"
    ]
