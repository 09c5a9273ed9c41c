"""A table's lines read in blocks give what a line-by-line reader gave, bounded the same way."""

from __future__ import annotations

import functools
import io
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_detect import tables
from stream_detect.errors import InputError
from stream_detect.records.size_limits import oversize_text
from stream_detect.table_lines import TableLines
from stream_detect.table_rows import TableRows
from stream_detect.tables import iter_table, load_table


def line_by_line(handle: io.BytesIO, count: int, limit: int) -> tuple[list[bytes], str | None]:
    """The reader blocks replaced: one ``readline`` per line, as the reference."""
    most = limit + 3
    lines: list[bytes] = []
    for line in islice(iter(functools.partial(handle.readline, most), b""), count):
        if len(line) == most and not line.endswith(b"\n"):
            return lines, oversize_text(most, limit, at_least=True)
        lines.append(line)
    return lines, None


def all_reads(read: Any, count: int) -> list[tuple[list[bytes], str | None]]:
    """Every read until the end or a refusal, the last one included."""
    reads = []
    while True:
        lines, refusal = read(count)
        reads.append((lines, refusal))
        if refusal is not None or not lines:
            return reads


class CountingReader(io.RawIOBase):
    """An endless file of one byte (``/dev/zero``), counting what is read of it."""

    def __init__(self, byte: bytes = b"\0") -> None:
        self.byte = byte
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        buffer[:size] = self.byte * size
        self.read_bytes += size
        return size


def reader(data: bytes, limit: int, block: int) -> TableLines:
    return TableLines(io.BytesIO(data), limit, block_bytes=block)


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from([b"a", b"bb", b",", b"\n", b"\r\n", b"\r", b"x" * 9, b"\n\n"]),
        max_size=40,
    ),
    limit=st.integers(1, 12),
    block=st.integers(1, 20),
    count=st.integers(1, 6),
)
def test_blocks_give_what_line_by_line_reading_gave(
    pieces: list[bytes], limit: int, block: int, count: int
) -> None:
    data = b"".join(pieces)
    handle = io.BytesIO(data)
    expected = all_reads(lambda n: line_by_line(handle, n, limit), count)
    assert all_reads(reader(data, limit, block).read, count) == expected


def test_lines_split_across_block_boundaries() -> None:
    data = b"x,y\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(1000))
    for block in (1, 2, 3, 5, 7, 64, 4096):
        lines = reader(data, 100, block)
        got = lines.read(400)[0] + lines.read(400)[0] + lines.read(400)[0]
        assert got == data.splitlines(keepends=True)
        assert lines.read(1) == ([], None)


def test_a_crlf_line_break_split_between_blocks_stays_one_line_break() -> None:
    data = b"ab\r\ncd\r\n"
    # The first block ends between "\r" and "\n".
    assert reader(data, 10, 3).read(5) == ([b"ab\r\n", b"cd\r\n"], None)


def test_a_last_line_without_a_line_break_is_read() -> None:
    assert reader(b"1,2\n3,4", 10, 2).read(5) == ([b"1,2\n", b"3,4"], None)
    # Exactly limit + 3 bytes without a line break: its end cannot be told from a cut.
    refusal = oversize_text(13, 10, at_least=True)
    assert reader(b"1\n" + b"0" * 13, 10, 4).read(5) == ([b"1\n"], refusal)
    assert reader(b"1\n" + b"0" * 12, 10, 4).read(5) == ([b"1\n", b"0" * 12], None)


@pytest.mark.parametrize("block", [13, 14, 15, 16, 17])
def test_an_overlong_line_at_a_block_boundary_is_refused_after_the_lines_before(
    block: int,
) -> None:
    limit = 10  # a line may have 13 bytes with its line break
    fits = b"f" * 12 + b"\n"
    over = b"o" * 13 + b"\n"
    refusal = oversize_text(13, limit, at_least=True)
    assert reader(fits + over + b"1\n", limit, block).read(5) == ([fits], refusal)
    assert reader(over, limit, block).read(5) == ([], refusal)
    # As a line-by-line reader did: count lines first, the refusal with the next read.
    lines = reader(fits + over, limit, block)
    assert lines.read(1) == ([fits], None)
    assert lines.read(1) == ([], refusal)


def test_an_empty_file_has_no_lines() -> None:
    lines = reader(b"", 10, 4)
    assert lines.read(3) == ([], None)
    assert lines.read(3) == ([], None)


@pytest.mark.parametrize("byte", [b"\0", b"0"])
def test_a_file_without_line_breaks_is_refused_after_a_block_and_the_limit(byte: bytes) -> None:
    limit, block = 1 << 20, 1 << 16
    endless = CountingReader(byte)
    lines = TableLines(io.BufferedReader(endless), limit, block_bytes=block)
    assert lines.read(10) == ([], oversize_text(limit + 3, limit, at_least=True))
    # Read no further than needed to see limit + 3 bytes, give or take a block (and a buffer).
    assert limit + 3 <= endless.read_bytes <= limit + 3 + block + io.DEFAULT_BUFFER_SIZE
    # Nothing is read after the refusal.
    read_bytes = endless.read_bytes
    assert lines.read(10)[0] == []
    assert endless.read_bytes == read_bytes


def test_chunks_are_as_long_whatever_the_parts_they_are_decoded_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x,label\n" + "".join(f"{i},{i % 2}\n" for i in range(100)))
    whole = [
        (chunk.X.tolist(), chunk.lines, chunk.bytes_read)
        for chunk in iter_table(path, chunk_rows=16)
    ]
    monkeypatch.setattr(tables, "PART_LINES", 3)
    parted = [
        (chunk.X.tolist(), chunk.lines, chunk.bytes_read)
        for chunk in iter_table(path, chunk_rows=16)
    ]
    assert [x for x, _, _ in parted] == [x for x, _, _ in whole]
    assert [b for _, _, b in parted] == [b for _, _, b in whole]
    assert all(np.array_equal(a, b) for (_, a, _), (_, b, _) in zip(parted, whole, strict=True))
    table = load_table(path)
    assert np.array_equal(table.X, np.concatenate([np.array(x) for x, _, _ in whole]))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    widths=st.lists(st.integers(1, 40), min_size=1, max_size=200),
    part_lines=st.integers(1, 9),
)
def test_a_table_loads_whole_when_its_rows_grow_longer_than_the_first(
    tmp_path: Path, widths: list[int], part_lines: int
) -> None:
    # The arrays are sized from the first rows' length: longer rows later make them grow.
    path = tmp_path / "t.csv"
    rows = [f"{i}.{'5' * width},{i % 2}" for i, width in enumerate(widths)]
    path.write_text("x,label\n" + "\n".join(rows) + "\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tables, "PART_LINES", part_lines)
        table = load_table(path)
    assert table.X[:, 0].tolist() == [float(row.split(",")[0]) for row in rows]
    assert table.y is not None and table.y.tolist() == [i % 2 for i in range(len(rows))]
    assert table.lines is not None and table.lines.tolist() == list(range(2, len(rows) + 2))
    assert table.X.flags.c_contiguous and table.X.flags.owndata


def test_table_rows_grow_without_a_length_to_size_from() -> None:
    rows = TableRows(3)
    for start in range(0, 200_000, 5000):
        part = np.arange(start, start + 5000, dtype=np.float64)
        X = np.repeat(part[:, None], 3, axis=1)
        rows.add(X, np.zeros(5000, np.int8), part.astype(np.int64), 0, 0)
    X, labels, lines = rows.arrays()
    assert X.shape == (200_000, 3) and len(labels) == len(lines) == 200_000
    assert np.array_equal(X[:, 2], np.arange(200_000)) and lines[-1] == 199_999


def test_errors_name_their_lines_whatever_the_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tables, "PART_LINES", 4)
    path = tmp_path / "t.jsonl"
    lines = [f'{{"x": {i}}}' for i in range(30)]
    lines[21] = '{"x": 1,'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as raised:
        load_table(path)
    assert raised.value.line == 22
    path = tmp_path / "t.json"
    path.write_text("\n" * 10 + "[1, 2]\n")
    with pytest.raises(InputError, match="JSON array") as raised:
        load_table(path)
    assert raised.value.line == 11
