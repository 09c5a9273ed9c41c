"""Positions made when read against the plain list of dicts they stand for."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from stream_detect.records import RecordDecoder
from stream_detect.sources.base import RawBatch
from stream_detect.sources.line_positions import LinePositions


@st.composite
def batches(draw: st.DrawFn) -> tuple[LinePositions, list[dict[str, Any]]]:
    first = draw(st.integers(1, 10**6))
    sizes = draw(st.lists(st.integers(0, 50), max_size=12))
    offsets = [sum(sizes[:i]) + i for i in range(len(sizes))]
    cut = draw(st.sets(st.integers(0, max(0, len(sizes) - 1)), max_size=3)) if sizes else set()
    notes = {first + i: {"truncated": True, "length": 5000 + i} for i in cut}
    expected = [
        {"line": first + i, "offset": offset, **notes.get(first + i, {})}
        for i, offset in enumerate(offsets)
    ]
    return LinePositions(first, offsets, notes), expected


indexes = st.integers(-15, 15)
slices = st.builds(slice, st.none() | indexes, st.none() | indexes, st.sampled_from([None, 1, 2]))


@given(batch=batches(), picks=st.lists(indexes | slices, max_size=6))
def test_positions_read_as_the_list_they_stand_for(
    batch: tuple[LinePositions, list[dict[str, Any]]], picks: list[int | slice]
) -> None:
    positions, expected = batch
    assert positions == expected and len(positions) == len(expected)
    assert positions.truncated == any("truncated" in position for position in expected)
    for pick in picks:
        if isinstance(pick, slice):
            part = positions[pick]
            assert part == expected[pick] and list(part) == expected[pick]
            # Reached through a slice or not, a position is one dict.
            for i, position in zip(range(len(expected))[pick], part, strict=True):
                assert position is positions[i]
        elif -len(expected) <= pick < len(expected):
            assert positions[pick] == expected[pick] and positions[pick] is positions[pick]
        else:
            try:
                positions[pick]
            except IndexError:
                continue
            raise AssertionError(f"index {pick} of {len(expected)} positions did not raise")


def test_a_plain_batch_is_decoded_without_making_a_position() -> None:
    lines = [b'{"x": %d}' % i for i in range(100)]
    positions = LinePositions(1, [10 * i for i in range(100)])
    decoded = RecordDecoder("json", ["x"], lazy_records=True).decode(RawBatch(lines, positions))
    assert len(decoded) == 100 and positions.made == 0
    assert decoded.positions[42] is positions[42] == {"line": 43, "offset": 420}


def test_a_truncated_line_is_found_without_making_a_position() -> None:
    lines = [b'{"x": 1}', b'{"x": 2']
    positions = LinePositions(1, [0, 9], {2: {"truncated": True, "length": 70000}})
    decoded = RecordDecoder("json", ["x"], lazy_records=True).decode(RawBatch(lines, positions))
    assert len(decoded) == 1 and [bad.position["line"] for bad in decoded.bad] == [2]


@given(
    st.integers(1, 2**62),
    st.lists(st.integers(0, 2**62), max_size=40),
    st.integers(0, 40),
    st.booleans(),
)
def test_json_texts_are_the_dicts_as_orjson_writes_them(
    first: int, offsets: list[int], start: int, read_one: bool
) -> None:
    positions = LinePositions(first, offsets)[start:]
    assert isinstance(positions, LinePositions)
    if read_one and len(positions):
        positions[0]  # a dict made: it is what gets written, so no texts from numbers
        assert positions.json_texts() is None
        return
    texts = positions.json_texts()
    if not len(positions):
        assert texts is None
        return
    assert texts == [orjson.dumps(position)[1:-1] for position in positions]
