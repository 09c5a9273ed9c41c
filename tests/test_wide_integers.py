"""Integers wider than 64 bits in an event's own fields come back digit for digit.

orjson reads such an integer as a float and refuses to write one. A feature
is the nearest double, as orjson reads it; a key or an id is the integer's
own digits, so 30-digit ids that differ in the last digit stay apart; the
fields written back are the event's own, exactly. Every decoding path (the msgspec
batch path, the orjson batch path, record by record) and both encodings (the
batch's column-wise one and record by record) are checked, and the command
line end to end.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect.detections import Detections
from stream_detect.feedback import parse_feedback
from stream_detect.records import RecordDecoder
from stream_detect.records.lazy_records import LazyRecords
from stream_detect.records.wide_integers import (
    WIDE_LITERAL,
    exact_events,
    lines_with_wide_integers,
    load_exact,
)
from stream_detect.results import ResultBatch
from stream_detect.sinks.json_encoding import encode_json, encode_json_line
from stream_detect.sources.base import RawBatch

REPO = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "stream_detect", "run"]

#: Just past orjson's range on both sides, and well past it.
WIDE = [
    2**64,
    2**64 + 1,
    -(2**63) - 1,
    -(2**64),
    -(2**64) - 1,
    123456789012345678901234567890,
    -123456789012345678901234567890,
    10**300 + 7,
]
#: Just inside orjson's range: these were always exact.
EDGES = [2**63 - 1, 2**63, 2**64 - 1, -(2**63)]


def line_with(value: int, a: float, *, nested: bool = False) -> bytes:
    """A JSON line with feature ``a`` and ``value`` in pass-through fields (as text, exact)."""
    digits = str(value)
    fields = f'"a": {a}, "id": {digits}, "note": "x"'
    if nested:
        fields += f', "meta": {{"ids": [{digits}, 1], "deep": {{"n": {digits}}}}}'
    return ("{" + fields + "}").encode()


def batch_of(lines: list[bytes]) -> RawBatch:
    return RawBatch(lines, [{"line": i + 1} for i in range(len(lines))])


# -- which lines may hold one ---------------------------------------------------------------------


def test_the_rule_finds_integers_and_skips_fractions_strings_and_words() -> None:
    lines = [
        b'{"id": 123456789012345678901234567890}',
        b'{"id":-9223372036854775809}',
        b'{"ids": [1,\t18446744073709551616]}',
        b'{"x": 0.000123456789012345678901}',  # a fraction's digits
        b'{"s": "12345678901234567890123"}',  # a string that starts with digits
        b'{"s": "ev-12345678901234567890123"}',  # a word's digits
        b'{"x": 922337203685477580}',  # 18 digits: always within 64 bits
        b"",
    ]
    assert lines_with_wide_integers(lines) == [0, 1, 2]
    assert [bool(WIDE_LITERAL.search(line)) for line in lines] == [True] * 3 + [False] * 5


_CHARS = [bytes([c]) for c in b"0123456789" * 4 + b'.-:,[ "e\n\t}']


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_CHARS), max_size=70).map(b"".join), max_size=12))
def test_the_batch_rule_is_the_pattern_line_by_line(payloads: list[bytes]) -> None:
    expected = [i for i, payload in enumerate(payloads) if WIDE_LITERAL.search(payload)]
    assert lines_with_wide_integers(payloads) == expected


# -- reading a line exactly -----------------------------------------------------------------------


@pytest.mark.parametrize("value", WIDE + EDGES)
def test_load_exact_keeps_the_integer(value: int) -> None:
    record = load_exact(line_with(value, 1.5, nested=True))
    assert record["id"] == value and type(record["id"]) is int
    assert record["meta"] == {"ids": [value, 1], "deep": {"n": value}}


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(max_size=8), _JSON_VALUES, max_size=6),
    st.integers(min_value=2**64, max_value=10**40) | st.integers(-(10**40), -(2**63) - 1),
    # Rounded to fewer digits, a float near the largest double may round past it.
    st.lists(st.floats(-1e300, 1e300), max_size=4),
    st.integers(0, 30),
)
def test_a_line_read_again_holds_what_orjson_reads_besides_the_wide_integer(
    fields: dict[str, Any], wide: int, floats: list[float], digits: int
) -> None:
    # Floats written with up to 30 digits: both readers must round them alike.
    long_floats = ", ".join(f'"f{i}": {x:.{digits}e}' for i, x in enumerate(floats))
    body = json.dumps(fields)[1:-1]
    line = ("{" + ", ".join(p for p in (body, long_floats, f'"wide": {wide}') if p) + "}").encode()
    exact = load_exact(line)
    assert exact.pop("wide") == wide
    by_orjson = orjson.loads(line)
    del by_orjson["wide"]
    assert orjson.dumps(exact) == orjson.dumps(by_orjson)


def test_exact_events_leaves_a_batch_without_wide_integers_as_it_is() -> None:
    lines = [b'{"x": 1}', b'{"x": 0.00012345678901234567890}']
    events = [orjson.loads(line) for line in lines]
    assert exact_events(events, lines) is events


# -- the decoding paths ---------------------------------------------------------------------------


def decoded_every_way(lines: list[bytes], *, typed: bool = True) -> dict[str, Any]:
    """The batch decoded by each path, keyed by the path's name.

    ``typed``: the msgspec path can serve the batch (flat events, no wide
    integer in a key or id) and must have served it.
    """
    lazy = RecordDecoder("json", ["a"], lazy_records=True).decode(batch_of(lines))
    assert isinstance(lazy.records, LazyRecords) == typed, "the msgspec path did not serve"
    # An id is its digits, up to 301 of them here: longer than the default limit.
    by_id = RecordDecoder("json", ["a"], id_field="id", max_key_bytes=512)
    bulk = by_id.decode(batch_of(lines))
    assert type(bulk.records) is list and not bulk.bad
    # A bad line sends the whole batch record by record.
    each = by_id.decode(batch_of([*lines, b'{"a": "x"}']))
    assert len(each.bad) == 1
    return {"alerts only": lazy, "orjson batch": bulk, "record by record": each}


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_every_decoding_path_keeps_pass_through_integers_exact(nested: bool) -> None:
    lines = [line_with(value, 0.5 + i, nested=nested) for i, value in enumerate(WIDE + EDGES)]
    expected = [json.loads(line) for line in lines]
    for path, decoded in decoded_every_way(lines, typed=not nested).items():
        records = [decoded.records[i] for i in range(len(lines))]
        assert records == expected, path
        assert [type(r["id"]) for r in records] == [int] * len(lines), path


def test_features_are_the_nearest_double_and_ids_are_the_digits() -> None:
    lines = [
        b'{"a": 123456789012345678901234567890, "id": 123456789012345678901234567890}',
        b'{"a": -36893488147419103232, "id": 2}',
        b'{"a": 1, "id": 123456789012345678901234567891}',
    ]
    for path, decoded in decoded_every_way(lines, typed=True).items():
        # A feature is the float orjson reads (the nearest double).
        assert decoded.values[:2, 0].tolist() == [1.2345678901234568e29, -3.6893488147419103e19]
        # The event's own field, written back, is the integer as given.
        assert decoded.records[0]["a"] == 123456789012345678901234567890, path
        if decoded.ids is not None:
            assert decoded.ids[:3] == [
                "123456789012345678901234567890",
                "2",
                "123456789012345678901234567891",
            ], path


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=2**64, max_value=10**300) | st.integers(-(10**300), -(2**63) - 1))
def test_every_path_reads_a_wide_feature_as_orjson_does(value: int) -> None:
    """orjson's float of the digits, numpy's float of the int and msgspec's agree."""
    line = b'{"a": %d, "id": 1}' % value
    expected = orjson.loads(b"%d" % value)
    for path, decoded in decoded_every_way([line]).items():
        assert decoded.values[0, 0] == expected, path


def test_keys_that_differ_in_the_last_of_30_digits_are_two_models(tmp_path: Path) -> None:
    base = 123456789012345678901234567890
    # Two hosts: one steady near 0, one near 100. Were their keys read as the
    # same float, they would share a model and every event would alert.
    lines = [
        b'{"a": %s, "host": %d}' % (str(round(float(x), 3)).encode(), base + i % 2)
        for i, x in enumerate(
            np.random.default_rng(4).normal(size=400) + np.tile([0.0, 100.0], 200)
        )
    ]
    out = [
        json.loads(line)
        for line in run_lines(tmp_path, lines, "--key-field", "host", "--emit", "all")
    ]
    assert {record["key"] for record in out} == {str(base), str(base + 1)}
    assert not any(record["alert"] for record in out[100:])


def test_a_feature_beyond_the_float_range_is_still_a_bad_record() -> None:
    big = b'{"a": 1' + b"0" * 400 + b"}"
    for lazy in (False, True):
        decoder = RecordDecoder("json", ["a"], lazy_records=lazy)
        decoded = decoder.decode(batch_of([b'{"a": 1}', big]))
        assert len(decoded) == 1 and len(decoded.bad) == 1
        assert "number is infinity" in decoded.bad[0].reason


# -- the encodings --------------------------------------------------------------------------------


def test_encode_json_line_writes_wide_integers_digit_for_digit() -> None:
    record = {"id": 2**64, "n": [-(2**63) - 1, {"m": 10**30}], "ok": True, "x": 1.5}
    assert encode_json_line(record) == (
        b'{"id":18446744073709551616,"n":[-9223372036854775809,'
        b'{"m":1000000000000000000000000000000}],"ok":true,"x":1.5}\n'
    )
    assert encode_json((2**70, 1)) == b"[1180591620717411303424,1]"
    with pytest.raises(TypeError):
        encode_json_line({"id": 2**64, "bad": object()})


def test_the_batch_encoding_equals_record_by_record_with_wide_integers() -> None:
    lines = [line_with(value, 0.5 + i, nested=True) for i, value in enumerate(WIDE)]
    lines += [b'{"a": 3.5, "id": 7, "note": "y"}']
    decoded = RecordDecoder("json", ["a"]).decode(batch_of(lines))
    found = Detections.empty(len(decoded))
    found.alert[1] = True
    found.contributions[1] = {"a": 1.0}
    results = ResultBatch.of(decoded, found, emit="all")
    written = b"".join(results.json_lines())
    assert written == b"".join(map(encode_json_line, results))
    for line, out in zip(lines, written.splitlines(), strict=True):
        given, back = json.loads(line), json.loads(out)
        assert {name: back[name] for name in given} == given


# -- the command line -----------------------------------------------------------------------------


def run_lines(tmp_path: Path, lines: list[bytes], *flags: str) -> list[bytes]:
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"".join(line + b"\n" for line in lines))
    done = subprocess.run(
        [*RUN, "--source", f"file:{source}", "--features", "a", *flags],
        cwd=REPO,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


@pytest.mark.parametrize(
    ("flags", "nested", "bad_line"),
    [
        (["--emit", "all"], True, False),
        (["--emit", "all", "--batch-size", "1"], True, False),
        (["--emit", "all"], True, True),
        # Flat events, few of them written: the msgspec path, records parsed when read.
        (["--log-epsilon", "0", "--min-samples", "2"], False, False),
    ],
    ids=["batch", "batch of one", "record by record", "alerts"],
)
def test_stream_detect_run_writes_pass_through_integers_as_given(
    tmp_path: Path, flags: list[str], nested: bool, bad_line: bool
) -> None:
    rng = np.random.default_rng(3)
    values = [*WIDE, *EDGES] * 4
    lines = [
        line_with(v, round(float(x), 3), nested=nested)
        for v, x in zip(values, rng.normal(size=len(values)), strict=True)
    ]
    if bad_line:
        # One bad line sends its batch record by record.
        lines.insert(5, b'{"a": "not a number"}')
    out = run_lines(tmp_path, lines, *flags)
    assert out, "nothing was written"
    for written in out:
        given = json.loads(lines[json.loads(written)["position"]["line"] - 1])
        # The digits themselves, as the input wrote them, are in the output line.
        assert re.search(rb'"id":%d[,}]' % given["id"], written), written
        back = json.loads(written)
        assert {name: back[name] for name in given} == given
    if "all" in flags:
        assert len(out) == len(lines) - bad_line


@pytest.mark.parametrize("value", WIDE + EDGES)
def test_a_feedback_label_names_a_wide_id_as_the_decoder_reads_it(value: int) -> None:
    decoded = RecordDecoder("json", ["a"], id_field="id", max_key_bytes=512).decode(
        batch_of([line_with(value, 1.5)])
    )
    assert decoded.ids is not None
    assert parse_feedback(b'{"id": %d, "label": 1}' % value, "id", "label") == (decoded.ids[0], 1)
