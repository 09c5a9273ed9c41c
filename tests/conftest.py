"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: The public reference data sets (the exercise's ex8 data, ODDS, NAB v1.1) are
#: not part of the repository: $STREAM_DETECT_REFERENCE_DATA names their folder,
#: else ``shared/data`` beside the repository is used.
SHARED_DATA = Path(
    os.environ.get("STREAM_DETECT_REFERENCE_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data"
)


@pytest.fixture
def shared_data() -> Path:
    """The reference data folder, or skip the test when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"reference data not found at {SHARED_DATA}: set STREAM_DETECT_REFERENCE_DATA "
            "or put shared/data beside the repository"
        )
    return SHARED_DATA
