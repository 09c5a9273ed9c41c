"""Fixtures shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

#: The reference data sets live beside the repository, not in it (see ../shared/data/README.md).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """Path of ../shared/data, or skip the test when the folder is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            "../shared/data is absent: reference-data checks need the shared folder beside the repo"
        )
    return SHARED_DATA
