"""``__all__`` is the public API: every name in it exists, and every public name is in it."""

from __future__ import annotations

import stream_detect


def test_all_names_exist() -> None:
    missing = [name for name in stream_detect.__all__ if not hasattr(stream_detect, name)]
    assert missing == []


def test_every_public_member_is_exported() -> None:
    public = {
        name
        for name, value in vars(stream_detect).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("stream_detect")
    }
    assert public <= set(stream_detect.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(set(stream_detect.__all__)) == len(stream_detect.__all__)
