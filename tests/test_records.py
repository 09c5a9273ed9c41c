"""Tests for stream_detect.records: decoding JSON lines and CSV, bad records, encoding."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect.errors import ConfigError, InputError
from stream_detect.records import (
    RAW_TEXT_LIMIT,
    BadRecord,
    Decoded,
    RecordDecoder,
)
from stream_detect.records.inferred_features import MIN_ROWS_FOR_RISING
from stream_detect.records.json_lines import MAX_JSON_DEPTH
from stream_detect.sources.base import RawBatch


def make_batch(lines: list[bytes], first_line: int = 1) -> RawBatch:
    """A line source's batch: positions count every line, from ``first_line``."""
    return RawBatch(list(lines), [{"line": first_line + i} for i in range(len(lines))])


def assert_accounted(decoded: Decoded, batch: RawBatch) -> None:
    """Every payload is good, bad, blank or the header, exactly once."""
    total = len(decoded) + len(decoded.bad) + decoded.n_blank + decoded.n_header
    assert total == len(batch)
    assert len(decoded.records) in (0, len(decoded))
    assert len(decoded.positions) == len(decoded) == len(decoded.labels)
    seen = [p["line"] for p in decoded.positions] + [b.position["line"] for b in decoded.bad]
    assert len(set(seen)) == len(seen)


def assert_well_formed(decoded: Decoded, d: int) -> None:
    assert decoded.values.dtype == np.float64
    assert decoded.values.shape == (len(decoded), d)
    assert decoded.values.flags["C_CONTIGUOUS"]
    assert decoded.labels.dtype == np.int8
    assert np.isfinite(decoded.values).all()


GOOD_1 = b'{"x": 1, "y": 2}'
GOOD_2 = b'{"x": 3, "y": 4}'

# (line in the middle, decoder options, words the reason must contain)
JSON_BAD_CASES: list[tuple[bytes, dict[str, Any], list[str]]] = [
    (b'{"x": 1, "y": ', {}, ["invalid JSON"]),
    (b'{"x": NaN, "y": 1}', {}, ["invalid JSON"]),
    (b'{"x": 1e400, "y": 1}', {}, ["invalid JSON", "infinity"]),
    (b"[1, 2]", {}, ["expected a JSON object", "an array"]),
    (b'"text"', {}, ["expected a JSON object", "a string"]),
    (b"42", {}, ["expected a JSON object", "a number"]),
    (b"null", {}, ["expected a JSON object", "null"]),
    (b'{"x": "\xff\xfe", "y": 1}', {}, ["invalid UTF-8", "byte 7"]),
    (b'{"x": 1}', {}, ["missing feature 'y'"]),
    (b'{"x": "abc", "y": 1}', {}, ["feature 'x'", "string", "not a number"]),
    (b'{"x": "1.5", "y": 1}', {}, ["feature 'x'", '"1.5"', "must not be quoted"]),
    (b'{"x": null, "y": 1}', {}, ["feature 'x'", "null"]),
    (b'{"x": true, "y": 1}', {}, ["feature 'x'", "boolean"]),
    (b'{"x": [1], "y": 1}', {}, ["feature 'x'", "an array"]),
    (b'{"x": {"v": 1}, "y": 1}', {}, ["feature 'x'", "an object"]),
    (b'{"x": 1, "y": 1, "label": 2}', {}, ["label 'label'", "2", "expected 0, 1, true or false"]),
    (b'{"x": 1, "y": 1, "label": "1"}', {}, ["label 'label'", '"1"']),
    (b'{"x": 1, "y": 1, "label": 0.5}', {}, ["label 'label'", "0.5"]),
    (b'{"x": 1, "y": 1, "label": [1]}', {}, ["label 'label'", "[1]"]),
    (b'{"x": 1, "y": 1}', {"key_field": "host"}, ["key field 'host'", "missing"]),
    (b'{"x": 1, "y": 1, "host": null}', {"key_field": "host"}, ["key field 'host'", "null"]),
    (b'{"x": 1, "y": 1, "host": ["a"]}', {"key_field": "host"}, ["key field 'host'", "array"]),
    (b'{"x": 1, "y": 1, "id": {"a": 1}}', {"id_field": "id"}, ["id field 'id'", "an object"]),
]


def _with_fields(line: bytes, options: dict[str, Any]) -> bytes:
    """Give the good lines the key the options ask for, so only the bad line is bad."""
    if "key_field" not in options:
        return line
    event = orjson.loads(line)
    event[options["key_field"]] = "h"
    return orjson.dumps(event)


@pytest.mark.parametrize(("bad_line", "options", "words"), JSON_BAD_CASES)
def test_json_bad_record_lands_in_bad_with_position_and_reason(
    bad_line: bytes, options: dict[str, Any], words: list[str]
) -> None:
    batch = make_batch([_with_fields(GOOD_1, options), bad_line, _with_fields(GOOD_2, options)])
    decoded = RecordDecoder("json", **options).decode(batch)
    assert_accounted(decoded, batch)
    assert [bad.position for bad in decoded.bad] == [{"line": 2}]
    bad = decoded.bad[0]
    for word in words:
        assert word in bad.reason
    assert bad.payload == bad_line
    assert decoded.values.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert [p["line"] for p in decoded.positions] == [1, 3]
    assert_well_formed(decoded, 2)


def test_json_bad_record_even_when_it_is_the_only_one_after_features_are_known() -> None:
    decoder = RecordDecoder("json")
    decoder.decode(make_batch([GOOD_1]))
    decoded = decoder.decode(make_batch([b'{"x": "1", "y": 2}'], first_line=2))
    assert len(decoded) == 0 and decoded.values.shape == (0, 2)
    assert decoded.bad[0].position == {"line": 2}


def test_source_truncated_line_is_bad_with_original_length() -> None:
    batch = RawBatch(
        [GOOD_1, b'{"x": 1, "y"', GOOD_2],
        [{"line": 1}, {"line": 2, "truncated": True, "length": 5_000_000}, {"line": 3}],
    )
    decoded = RecordDecoder("json").decode(batch)
    assert_accounted(decoded, batch)
    (bad,) = decoded.bad
    assert bad.reason == "line of 5000000 bytes exceeds the limit of 1048576 bytes"
    assert bad.to_dict()["raw"].endswith("[cut: the record has 5000000 bytes]")
    assert len(decoded) == 2


def test_line_longer_than_max_record_bytes_is_bad_in_both_formats() -> None:
    long_json = b'{"x": 1, "y": 2, "pad": "' + b"a" * 100 + b'"}'
    decoded = RecordDecoder("json", max_record_bytes=64).decode(
        make_batch([GOOD_1, long_json, GOOD_2])
    )
    assert decoded.bad[0].reason == f"line of {len(long_json)} bytes exceeds the limit of 64 bytes"
    assert len(decoded) == 2
    long_csv = b"1," + b"2" * 100
    decoded = RecordDecoder("csv", max_record_bytes=64).decode(
        make_batch([b"x,y", b"1,2", long_csv, b"3,4"])
    )
    assert decoded.bad[0].reason == f"line of {len(long_csv)} bytes exceeds the limit of 64 bytes"
    assert decoded.values.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_every_json_bad_kind_in_one_batch_counts_add_up() -> None:
    lines = [GOOD_1] + [case[0] for case in JSON_BAD_CASES if not case[1]] + [b"", b"  ", GOOD_2]
    batch = make_batch(lines)
    decoder = RecordDecoder("json")
    decoded = decoder.decode(batch)
    assert_accounted(decoded, batch)
    assert len(decoded) == 2
    assert decoded.n_blank == 2
    assert len(decoded.bad) == len(lines) - 4
    assert all(bad.reason for bad in decoded.bad)


CSV_HEADER = b"id,x,y,label"
CSV_GOOD_1 = b"a,1,2,0"
CSV_GOOD_2 = b"b,3,4,1"

CSV_BAD_CASES: list[tuple[bytes, list[str]]] = [
    (b"c,1,2", ["expected 4 columns as in the header, got 3"]),
    (b"c,1,2,0,9", ["expected 4 columns as in the header, got 5"]),
    (b"c,abc,2,0", ["feature 'x'", "'abc'", "not a number"]),
    (b"c,,2,0", ["feature 'x' is empty"]),
    (b"c,1,nan,0", ["feature 'y'", "'nan'", "not a finite number"]),
    (b"c,1,inf,0", ["feature 'y'", "not a finite number"]),
    (b"c,-Infinity,1,0", ["feature 'x'", "not a finite number"]),
    (b"c,1e400,1,0", ["feature 'x'", "not a finite number"]),
    (b"c,1,2,yes", ["label 'label'", "'yes'", "expected 0, 1, true or false"]),
    (b"c,1,2,2", ["label 'label'", "'2'"]),
    (b"\xff,1,2,0", ["invalid UTF-8 at byte 0"]),
    (b'"c,1,2,0', ["a quoted cell is still open at the end of the line"]),
]


@pytest.mark.parametrize(("bad_line", "words"), CSV_BAD_CASES)
def test_csv_bad_record_lands_in_bad_with_position_and_reason(
    bad_line: bytes, words: list[str]
) -> None:
    batch = make_batch([CSV_HEADER, CSV_GOOD_1, bad_line, CSV_GOOD_2])
    decoded = RecordDecoder("csv").decode(batch)
    assert_accounted(decoded, batch)
    assert decoded.n_header == 1
    assert [bad.position for bad in decoded.bad] == [{"line": 3}]
    for word in words:
        assert word in decoded.bad[0].reason
    assert decoded.values.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert decoded.labels.tolist() == [0, 1]
    assert [p["line"] for p in decoded.positions] == [2, 4]
    assert_well_formed(decoded, 2)


def test_a_file_separated_by_semicolons_says_so_on_every_row() -> None:
    batch = make_batch([b"x;y", b"1;2", b"3;4"])
    decoded = RecordDecoder("csv").decode(batch)
    assert_accounted(decoded, batch)
    assert [bad.reason for bad in decoded.bad] == [
        "one cell, holding ';': only commas separate cells, and the header has none "
        "(is the file separated by ';'?)"
    ] * 2


def test_csv_empty_key_is_bad() -> None:
    batch = make_batch([b"host,x", b"a,1", b",2", b"b,3"])
    decoded = RecordDecoder("csv", key_field="host").decode(batch)
    assert decoded.bad[0].reason == "key field 'host' is empty"
    assert decoded.keys == ["a", "b"]


def test_csv_blank_lines_are_counted_and_skipped_before_and_after_the_header() -> None:
    decoder = RecordDecoder("csv")
    batch = make_batch([b"", b"x,y", b"", b"1,2", b"   ", b"3,4", b"\r"])
    decoded = decoder.decode(batch)
    assert_accounted(decoded, batch)
    assert decoded.n_blank == 4 and decoded.n_header == 1
    assert decoded.values.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert decoder.decode(make_batch([b""], first_line=8)).n_blank == 1


def test_csv_quoted_fields() -> None:
    batch = make_batch(
        [
            b'name,x,"y",label',
            b'"Smith, John",1.5,"2",0',
            b'"say ""hi""",3,4,"1"',
            b"plain,5,6,",
        ]
    )
    decoded = RecordDecoder("csv").decode(batch)
    assert decoded.bad == []
    assert decoded.values.tolist() == [[1.5, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert decoded.labels.tolist() == [0, 1, -1]
    assert [record["name"] for record in decoded.records] == ["Smith, John", 'say "hi"', "plain"]


def test_csv_quoted_field_containing_comma_in_a_feature_is_not_a_number() -> None:
    batch = make_batch([b"x,y", b'"1,5",2', b"3,4"])
    decoded = RecordDecoder("csv", ["x", "y"]).decode(batch)
    assert decoded.bad[0].reason == "feature 'x' is '1,5', not a number"
    assert decoded.values.tolist() == [[3.0, 4.0]]


def test_csv_crlf_lines_and_bom() -> None:
    decoder = RecordDecoder("auto")
    batch = make_batch([b"\xef\xbb\xbfx,y,label\r\n", b"1,2,1\r\n", b"3,4,0\r\n"])
    decoded = decoder.decode(batch)
    assert decoder.format == "csv"
    assert decoder.columns == ["x", "y", "label"]
    assert decoded.values.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert decoded.labels.tolist() == [1, 0]
    assert decoded.records[0] == {"x": 1.0, "y": 2.0, "label": "1"}


def test_csv_number_syntaxes_that_float_accepts() -> None:
    batch = make_batch([b"x", b".5", b"1.", b"+2", b" 3 ", b"1e3", b"-0.25", b"007"])
    decoded = RecordDecoder("csv").decode(batch)
    assert decoded.bad == []
    assert decoded.values[:, 0].tolist() == [0.5, 1.0, 2.0, 3.0, 1000.0, -0.25, 7.0]


def test_csv_label_spellings() -> None:
    cells = [b"0", b"1", b"true", b"FALSE", b"True", b"1.0", b"0.0", b"", b" 1 "]
    batch = make_batch([b"x,label"] + [b"1," + cell for cell in cells])
    decoded = RecordDecoder("csv").decode(batch)
    assert decoded.bad == []
    assert decoded.labels.tolist() == [0, 1, 1, 0, 1, 1, 0, -1, 1]


def test_csv_records_hold_parsed_features_and_text_elsewhere() -> None:
    batch = make_batch([b"host,x,ts", b"a,1.5,2024-01-01"])
    decoded = RecordDecoder("csv", key_field="host", timestamp_field="ts").decode(batch)
    assert decoded.records == [{"host": "a", "x": 1.5, "ts": "2024-01-01"}]
    assert decoded.timestamps == ["2024-01-01"]
    assert decoded.keys == ["a"]


def test_csv_header_spanning_batches_and_features_fixed() -> None:
    decoder = RecordDecoder("csv")
    first = decoder.decode(make_batch([b"x,y,z"]))
    assert first.n_header == 1 and len(first) == 0 and decoder.features is None
    second = decoder.decode(make_batch([b"1,2,3", b"4,5,6"], first_line=2))
    assert decoder.features == ["x", "y", "z"]
    assert second.n_header == 0
    assert second.values.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]


@pytest.mark.parametrize(
    ("header", "options", "message"),
    [
        (b"x,y", {"features": ["x", "w"]}, "feature 'w' is not a column of the CSV header"),
        (b"x,y", {"key_field": "host"}, "key field 'host' is not a column of the CSV header"),
        (
            b"x,label",
            {"label_field": "is_bad"},
            "label field 'is_bad' is not a column of the CSV header (columns: x, label)",
        ),
        (b"x,y,x", {}, "the CSV header names column 'x' twice"),
        (b"x,\xff", {}, "the CSV header is not valid UTF-8 (byte 2)"),
        (b'"x,y', {}, "the CSV header is malformed"),
        (
            b"x,y\r1,2\r3,4",
            {},
            "the CSV header is not one line: a carriage return (\\r) at character 3 does not "
            "end a record: only \\n or \\r\\n ends one",
        ),
        (
            b'{"x": 1}',
            {},
            "the CSV header looks like a JSON object ('{\"x\": 1}'): the input looks like "
            "JSON lines, read as CSV by --format csv or a .csv name",
        ),
        # Pretty-printed JSON's first line, after white space and a byte-order mark.
        (b" \xef\xbb\xbf\t{", {}, "the CSV header looks like a JSON object"),
    ],
)
def test_unusable_csv_header_raises_input_error_with_line(
    header: bytes, options: dict[str, Any], message: str
) -> None:
    decoder = RecordDecoder("csv", **options)
    with pytest.raises(InputError) as raised:
        decoder.decode(make_batch([b"", header, b"1,2"]))
    assert message in str(raised.value)
    assert raised.value.line == 2


@pytest.mark.parametrize(
    ("format", "lines", "reason"),
    [
        (
            "json",
            [b'{"x": 1}\r{"x": 2}\r{"x": 3}'],
            "invalid JSON at character 9: unexpected content after document (a carriage "
            "return (\\r) at character 8 does not end a record",
        ),
        (
            "csv",
            [b"x,y", b"1,2\r3,4\r5,6"],
            "expected 2 columns as in the header, got 4 (a carriage return (\\r) at "
            "character 3 does not end a record",
        ),
    ],
)
def test_a_lone_carriage_return_inside_a_record_is_named_in_its_reason(
    format: str, lines: list[bytes], reason: str
) -> None:
    # Records end at \n (or \r\n); lone \r line ends make one record of many.
    batch = make_batch([*lines, b'{"x": 4}' if format == "json" else b"7,8"])
    decoded = RecordDecoder(format).decode(batch)
    assert_accounted(decoded, batch)
    (bad,) = decoded.bad
    assert bad.reason.startswith(reason)
    assert bad.reason.endswith("(tr '\\r' '\\n' converts a file with lone \\r line ends))")


def test_a_line_nested_too_deep_is_a_bad_record_that_says_so_not_invalid_json() -> None:
    def nested(levels: int) -> bytes:
        # The event's own object is one level; its field "n" holds the rest.
        return b'{"x": 1, "n": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"

    batch = make_batch([nested(MAX_JSON_DEPTH), nested(MAX_JSON_DEPTH + 1), b'{"x": 2}'])
    decoded = RecordDecoder("json", ["x"]).decode(batch)
    assert_accounted(decoded, batch)
    assert decoded.values.tolist() == [[1.0], [2.0]]
    (bad,) = decoded.bad
    assert (bad.position["line"], bad.reason) == (
        2,
        "arrays and objects nested more than 1024 deep (at character 1038): JSON is read to "
        "1024 levels at most",
    )


def test_an_array_or_a_line_ending_inside_its_value_says_one_object_per_line() -> None:
    # A whole file's array, and pretty-printed objects, are the common mix-ups.
    batch = make_batch([b'[{"x": 1}, {"x": 2}]', b"{", b'  "x": 3', b"}", b'{"x": 4}'])
    decoded = RecordDecoder("json").decode(batch)
    assert_accounted(decoded, batch)
    assert decoded.values.tolist() == [[4.0]]
    assert [bad.reason for bad in decoded.bad] == [
        "expected a JSON object, got an array (JSON lines hold one whole object per line; "
        "jq -c '.[]' writes an array's objects so)",
        "invalid JSON at character 1: unexpected end of data (the line ends inside its value: "
        "JSON lines hold one whole object per line; pretty-printed JSON spreads one over "
        "several, jq -c writes one per line)",
        "invalid JSON at character 5: unexpected content after document (a piece of "
        "pretty-printed JSON, it seems: JSON lines hold one whole object per line, jq -c "
        "writes one per line)",
        "invalid JSON at character 0: unexpected character, expected a JSON value (a piece of "
        "pretty-printed JSON, it seems: JSON lines hold one whole object per line, jq -c "
        "writes one per line)",
    ]


@pytest.mark.parametrize(
    "line",
    [b"}", b"  },", b"]", b"  ]}", b'  "x": 1,', b'  "y": {', b'  "n": [', b"    3,", b'  "a",'],
)
def test_every_inner_line_of_pretty_printed_json_says_one_object_per_line(line: bytes) -> None:
    # Only the first line of an object ended inside its value: the others kept orjson's
    # words alone, and a run over a pretty-printed file ended quoting one of those.
    batch = make_batch([b'{"x": 1}', line, b'{"x": 2}'])
    (bad,) = RecordDecoder("json").decode(batch).bad
    assert bad.reason.startswith("invalid JSON at character ")
    assert bad.reason.endswith(
        "(a piece of pretty-printed JSON, it seems: JSON lines hold one whole object per line, "
        "jq -c writes one per line)"
    )


@pytest.mark.parametrize("line", [b'{"x": 1,', b"x", b'{"x": 1}}', b",", b'{"x": 1} 2', b"1 2,"])
def test_other_invalid_json_is_not_called_pretty_printed(line: bytes) -> None:
    (bad,) = RecordDecoder("json").decode(make_batch([line])).bad
    assert "a piece of pretty-printed JSON" not in bad.reason


@pytest.mark.parametrize(
    ("format", "lines", "reason"),
    [
        (
            "json",
            [b'{"x": 1}', b'{"x": 2}\x00'],
            "invalid JSON at character 8: unexpected content after document (a NUL byte \\x00 at "
            "character 8 of the line: text holds none; is the file UTF-16, or padded with zeros?)",
        ),
        (
            "json",
            [b'{"x": 1}', b'{"x": \x002}'],
            "invalid JSON at character 6: unexpected character, expected a JSON value (a NUL "
            "byte \\x00 at character 6 of the line: text holds none; is the file UTF-16, or "
            "padded with zeros?)",
        ),
        (
            "csv",
            [b"x,y", b"1,2", b"\xef\xbb\xbf5,6"],
            "feature 'x' is '\\ufeff5', not a number (a byte-order mark U+FEFF at character 0 "
            "of the cell: only a stream's first line may start with one; were files joined?)",
        ),
        (
            "csv",
            [b"x,y", b"1,2", b"5,6\x00"],
            "feature 'y' is '6\\x00', not a number (a NUL byte \\x00 at character 1 of the "
            "cell: text holds none; is the file UTF-16, or padded with zeros?)",
        ),
    ],
)
def test_a_nul_byte_or_a_byte_order_mark_inside_a_record_is_named_in_its_reason(
    format: str, lines: list[bytes], reason: str
) -> None:
    # Printed, neither shows: orjson's "unexpected content after document" and a bare
    # '\ufeff5' left the user looking for what was there.
    batch = make_batch(lines)
    decoded = RecordDecoder(format).decode(batch)
    assert_accounted(decoded, batch)
    assert [bad.reason for bad in decoded.bad] == [reason]


@pytest.mark.parametrize(
    "lines",
    [
        [b'{"x": 1,\r"y": 2}', b'{"x": 3,\r"y": 4}'],
        [b"x,y", b"1,\r2", b"3,4"],
    ],
)
def test_a_carriage_return_where_white_space_may_stand_is_no_problem(lines: list[bytes]) -> None:
    batch = make_batch(lines)
    decoded = RecordDecoder("auto").decode(batch)
    assert decoded.bad == [] and decoded.values.tolist() == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize("options", [{"lazy_records": True}, {}, {"keep_records": False}])
@pytest.mark.parametrize("bad", [[], [b"oops"]])
def test_a_field_named_twice_takes_its_last_value_on_every_path(
    options: dict[str, Any], bad: list[bytes]
) -> None:
    # msgspec (lazy records), orjson in bulk, record by record (a bad line in the batch),
    # the standard library for a wide integer: each reads the last value, as the README says.
    lines = [
        b'{"x": 1, "y": 2, "x": 5}',
        b'{"x": "a", "y": 3, "x": 6, "label": 1, "label": 0}',
        b'{"x": 7, "y": 4, "id": 1, "id": 123456789012345678901234567890}',
    ]
    batch = make_batch([*lines, *bad])
    decoded = RecordDecoder("json", ["x", "y"], id_field="id", **options).decode(batch)
    assert decoded.values.tolist() == [[5.0, 2.0], [6.0, 3.0], [7.0, 4.0]]
    assert decoded.labels.tolist() == [-1, 0, -1]
    assert decoded.ids == [None, None, "123456789012345678901234567890"]
    assert len(decoded.bad) == len(bad)
    if options.get("keep_records", True):
        assert [dict(record) for record in decoded.records] == [
            {"x": 5, "y": 2},
            {"x": 6, "y": 3, "label": 0},
            {"x": 7, "y": 4, "id": 123456789012345678901234567890},
        ]


@pytest.mark.parametrize(
    ("lines", "bad_lines"),
    [
        ([b"x,y,label", b"1,2,0", b"x,y,label", b"3,4,1"], [3]),
        ([b"x,y,label", b"x,y,label", b"1,2,0", b"3,4,1"], [2]),
        ([b"x,y,label", b"1,2,0", b"\xef\xbb\xbfx, y ,label\r\n", b"3,4,1"], [3]),
    ],
)
def test_a_csv_header_repeated_mid_file_is_a_bad_record_that_says_so(
    lines: list[bytes], bad_lines: list[int]
) -> None:
    batch = make_batch(lines)
    decoded = RecordDecoder("csv").decode(batch)
    assert_accounted(decoded, batch)
    assert decoded.values.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert [(bad.position["line"], bad.reason) for bad in decoded.bad] == [
        (
            line,
            "the CSV header (line 1) repeated, not a record (were files joined with their "
            "headers?)",
        )
        for line in bad_lines
    ]


def test_a_header_whose_feature_names_are_numbers_repeats_as_a_row_on_either_path() -> None:
    # The bulk path reads "1,2" as a row; the record-by-record path (taken for the whole
    # batch when one record is bad) must read it the same way.
    alone = RecordDecoder("csv").decode(make_batch([b"1,2", b"5,6", b"1,2", b"7,8"]))
    with_bad = RecordDecoder("csv").decode(make_batch([b"1,2", b"5,6", b"1,2", b"7,x"]))
    assert alone.bad == [] and alone.values.tolist() == [[5.0, 6.0], [1.0, 2.0], [7.0, 8.0]]
    assert with_bad.values.tolist() == [[5.0, 6.0], [1.0, 2.0]]
    assert [bad.position["line"] for bad in with_bad.bad] == [4]


@pytest.mark.parametrize(
    ("lines", "repeats"),
    [
        # "nan" and "1e400" read as numbers but not finite ones: a bulk try fixes the
        # features from such a repeat before giving up, the record-by-record path does too.
        ([b"nan", b"{", b"nan", b"1", b"2"], [3]),
        ([b"1e400", b"1e400", b"x", b"\xff", b"2", b"1e400"], [2, 6]),
        ([b"x,y", b"x,y", b"1,2", b"x,y"], [2, 4]),
    ],
)
def test_a_repeated_header_reads_the_same_however_the_batches_fall(
    lines: list[bytes], repeats: list[int]
) -> None:
    def decoded_in_batches(size: int) -> tuple[list[list[float]], list[tuple[int, str]]]:
        decoder = RecordDecoder("csv")
        values, reasons = [], []
        for start in range(0, len(lines), size):
            chunk = decoder.decode(make_batch(lines[start : start + size], first_line=start + 1))
            values += chunk.values.tolist()
            reasons += [(bad.position["line"], bad.reason) for bad in chunk.bad]
        return values, reasons

    whole = decoded_in_batches(len(lines))
    assert [decoded_in_batches(size) for size in (1, 2, 3)] == [whole] * 3
    _, reasons = whole
    assert [line for line, reason in reasons if "CSV header (line 1) repeated" in reason] == repeats


def test_a_label_field_missing_from_the_header_is_refused_unless_it_is_the_default() -> None:
    # Named otherwise, the label must be a column: else a `label` column would be a feature.
    with pytest.raises(InputError, match="label field 'is_bad' is not a column"):
        RecordDecoder("csv", label_field="is_bad").decode(make_batch([b"x,label", b"1,0"]))
    # The default label may be absent: the stream is unlabelled.
    decoded = RecordDecoder("csv").decode(make_batch([b"x,y", b"1,2"]))
    assert decoded.labels.tolist() == [-1]
    # A JSON event without the label field is unlabelled, whatever the field's name.
    decoded = RecordDecoder("json", label_field="is_bad").decode(make_batch([b'{"x": 1}']))
    assert decoded.labels.tolist() == [-1]


def test_csv_header_too_long_raises() -> None:
    with pytest.raises(InputError, match="too long"):
        RecordDecoder("csv", max_record_bytes=10).decode(make_batch([b"x" * 20]))


# -- features, labels, keys, ids, timestamps -------------------------------------------------


def test_json_feature_inference_excludes_reserved_and_non_numeric_fields() -> None:
    decoder = RecordDecoder(
        "json", key_field="host", id_field="id", timestamp_field="ts", label_field="anomaly"
    )
    line = orjson.dumps(
        {
            "id": 7,
            "ts": 1700000000,
            "host": 3,
            "cpu": 0.5,
            "name": "web",
            "up": True,
            "tags": [1],
            "mem": 2,
            "anomaly": 1,
        }
    )
    decoded = decoder.decode(make_batch([line]))
    assert decoder.features == ["cpu", "mem"]
    assert decoded.keys == ["3"] and decoded.ids == ["7"] and decoded.timestamps == [1700000000]
    assert decoded.labels.tolist() == [1]
    # Fixed from then on: a new numeric field is ignored, a missing one is a bad record.
    later = decoder.decode(
        make_batch([b'{"host": "a", "cpu": 1, "mem": 2, "disk": 3}', b'{"host": "a", "cpu": 1}'])
    )
    assert decoder.features == ["cpu", "mem"]
    assert later.values.tolist() == [[1.0, 2.0]]
    assert later.bad[0].reason == "missing feature 'mem'"


@pytest.mark.parametrize("blank", ["", " ", "\t"])
@pytest.mark.parametrize("infer_from_most", [True, False])
@pytest.mark.parametrize("keep_records", [True, False])
def test_a_json_field_with_a_blank_name_is_never_an_inferred_feature(
    blank: str, infer_from_most: bool, keep_records: bool
) -> None:
    # A list of features given refuses a blank name, the checkpoint's too: inferred,
    # it made a checkpoint its own run refused on restart.
    rng = np.random.default_rng(3)
    events = [{blank: float(v), "x": float(w)} for v, w in rng.normal(size=(50, 2))]
    lines = [orjson.dumps(event) for event in events]
    plain = RecordDecoder("json", keep_records=keep_records).decode(
        make_batch([orjson.dumps({"x": event["x"]}) for event in events])
    )
    for batch in (lines, lines[:1]):
        decoder = RecordDecoder(
            "json", keep_records=keep_records, lazy_records=True, infer_from_most=infer_from_most
        )
        decoded = decoder.decode(make_batch(batch))
        assert decoder.features == ["x"]
        assert decoded.values.tolist() == plain.values[: len(batch)].tolist()
    only_blank = RecordDecoder("json", infer_from_most=infer_from_most)
    decoded = only_blank.decode(make_batch([orjson.dumps({blank: 1}), b'{"": 2, "y": 3}']))
    assert "no numeric field" in decoded.bad[0].reason
    assert only_blank.features == ["y"] and decoded.values.tolist() == [[3.0]]


def test_json_first_event_without_numbers_is_bad_and_the_next_one_fixes_features() -> None:
    decoder = RecordDecoder("json")
    decoded = decoder.decode(make_batch([b'{"name": "a", "label": 1}', b'{"name": "b", "v": 2}']))
    assert "no numeric field" in decoded.bad[0].reason
    assert decoder.features == ["v"]
    assert decoded.values.tolist() == [[2.0]]


def test_csv_feature_inference_uses_first_row_numeric_cells() -> None:
    decoder = RecordDecoder("csv", id_field="id")
    batch = make_batch(
        [b",id,ts,a,b,label", b"0,17,2024-01-01,1.5,x,1", b"1,18,2024-01-02,2.5,y,0"]
    )
    decoded = decoder.decode(batch)
    # The unnamed index column, the id and the label are never inferred as features.
    assert decoder.features == ["a"]
    assert decoded.values.tolist() == [[1.5], [2.5]]
    assert decoded.ids == ["17", "18"]


def test_csv_first_row_without_numbers_is_bad() -> None:
    decoder = RecordDecoder("csv")
    decoded = decoder.decode(make_batch([b"a,b", b"x,y", b"1,2"]))
    assert "no numeric cell" in decoded.bad[0].reason
    assert decoder.features == ["a", "b"]
    assert decoded.values.tolist() == [[1.0, 2.0]]


def test_explicit_features_set_the_column_order() -> None:
    decoder = RecordDecoder("json", ["y", "x"])
    decoded = decoder.decode(make_batch([b'{"x": 1, "y": 2, "z": "s"}']))
    assert decoded.values.tolist() == [[2.0, 1.0]]
    decoder = RecordDecoder("csv", ["y", "x"])
    decoded = decoder.decode(make_batch([b"x,y,z", b"1,2,s"]))
    assert decoded.values.tolist() == [[2.0, 1.0]]


def test_json_labels_keys_ids_timestamps() -> None:
    lines = [
        b'{"v": 1, "label": 1, "host": "a", "id": "e1", "ts": "t1"}',
        b'{"v": 2, "label": false, "host": 5, "id": 9}',
        b'{"v": 3, "label": null, "host": 1.5, "id": null, "ts": 17}',
        b'{"v": 4, "host": true}',
        b'{"v": 5, "label": true, "host": "b", "label2": 3}',
        b'{"v": 6, "label": 0.0, "host": "b"}',
    ]
    decoded = RecordDecoder("json", key_field="host", id_field="id", timestamp_field="ts").decode(
        make_batch(lines)
    )
    assert decoded.bad == []
    assert decoded.labels.tolist() == [1, 0, -1, -1, 1, 0]
    assert decoded.keys == ["a", "5", "1.5", "true", "b", "b"]
    assert decoded.ids == ["e1", "9", None, None, None, None]
    assert decoded.timestamps == ["t1", None, 17, None, None, None]


def test_no_label_field_means_unlabelled_and_label_is_a_feature_candidate() -> None:
    decoder = RecordDecoder("json", label_field=None)
    decoded = decoder.decode(make_batch([b'{"v": 1, "label": 7}']))
    assert decoder.features == ["v", "label"]
    assert decoded.labels.tolist() == [-1]
    assert decoded.keys is None and decoded.ids is None and decoded.timestamps is None


def test_json_records_are_the_original_fields() -> None:
    decoded = RecordDecoder("json").decode(make_batch([b'{"v": 1, "note": "x", "deep": {"a": 1}}']))
    assert decoded.records == [{"v": 1, "note": "x", "deep": {"a": 1}}]


def test_keep_records_false_leaves_records_empty() -> None:
    for fmt, lines in (("json", [GOOD_1]), ("csv", [b"x,y", b"1,2"])):
        decoded = RecordDecoder(fmt, keep_records=False).decode(make_batch(lines))
        assert decoded.records == [] and len(decoded) == 1


# -- format detection, batches, configuration ------------------------------------------------


def test_auto_detects_json_after_blank_lines_and_bom() -> None:
    decoder = RecordDecoder("auto")
    decoded = decoder.decode(make_batch([b"", b'\xef\xbb\xbf  {"v": 1}', b'{"v": 2}']))
    assert decoder.format == "json"
    assert decoded.values.tolist() == [[1.0], [2.0]]
    assert decoded.n_blank == 1


@pytest.mark.parametrize("first", [b"garbage", b"[1,2]", b"42"])
def test_auto_a_bad_first_line_is_one_bad_record_of_a_json_stream(first: bytes) -> None:
    lines = [b"", first, GOOD_1, GOOD_2]
    decoder = RecordDecoder("auto")
    batch = make_batch(lines)
    decoded = decoder.decode(batch)
    assert_accounted(decoded, batch)
    assert decoder.format == "json" and decoder.columns is None
    assert decoded.values.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert [(bad.position["line"], bad.payload) for bad in decoded.bad] == [(2, first)]


def test_auto_a_first_line_alone_in_its_batch_waits_for_the_next_line() -> None:
    # The same stream, one line a batch: the same events and the same bad record.
    decoder = RecordDecoder("auto")
    first = decoder.decode(make_batch([b"garbage", b""]))
    assert decoder.format == "auto" and len(first) == 0 and first.bad == []
    assert first.n_blank == 1
    second = decoder.decode(make_batch([GOOD_1], first_line=3))
    assert decoder.format == "json"
    assert [bad.position["line"] for bad in second.bad] == [1]
    assert second.values.tolist() == [[1.0, 2.0]]
    # A CSV header alone in its batch is a header once the next row comes.
    decoder = RecordDecoder("auto")
    assert len(decoder.decode(make_batch([b"x,y"]))) == 0
    decoded = decoder.decode(make_batch([b"1,2", b"3,4"], first_line=2))
    assert decoder.format == "csv" and decoded.n_header == 1
    assert decoded.values.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_a_first_line_still_held_at_the_end_of_the_stream_is_a_csv_header() -> None:
    # It waited for a second line that never came, and was accounted nowhere.
    decoder = RecordDecoder("auto")
    batch = make_batch([b"", b"x,y"])
    held = decoder.decode(batch)
    assert held.n_blank == 1 and held.n_header == 0 and decoder.format == "auto"
    finished = decoder.finish()
    assert finished.n_header == 1 and len(finished) == 0 and finished.bad == []
    assert decoder.format == "csv" and decoder.columns == ["x", "y"]
    # Nothing held: nothing more.
    assert decoder.finish().n_header == 0
    # Read as a header, it is refused as a header may be.
    decoder = RecordDecoder("auto", label_field="is_bad")
    decoder.decode(make_batch([b"x,y"], first_line=3))
    with pytest.raises(InputError, match="label field 'is_bad' is not a column") as raised:
        decoder.finish()
    assert raised.value.line == 3


def rising_batch(n: int) -> RawBatch:
    rows = [f'{{"ts": {1000 + 10 * i}, "seq": {i}, "x": {(i * 7) % 5}}}' for i in range(n)]
    return make_batch([row.encode() for row in rows])


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_inferred_features_leave_out_fields_that_only_rise(fmt: str) -> None:
    batch = rising_batch(MIN_ROWS_FOR_RISING)
    if fmt == "csv":
        rows = [orjson.loads(line) for line in batch.payloads]
        lines = [b"ts,seq,x"] + [f"{r['ts']},{r['seq']},{r['x']}".encode() for r in rows]
        batch = make_batch(lines)
    decoder = RecordDecoder(fmt)
    decoded = decoder.decode(batch)
    assert decoder.features == ["x"] and decoder.left_out == ["ts", "seq"]
    assert decoded.values.shape == (MIN_ROWS_FOR_RISING, 1)
    assert_accounted(decoded, batch)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_inferred_features_are_the_fields_most_events_carry_not_the_first_events(
    fmt: str,
) -> None:
    # The first event lacks "c" (a metric missing from one scrape); taken from it
    # alone, "c" was never a feature, and its anomalies never alerted.
    rows: list[dict[str, float]] = [{"a": 1.0, "b": 2.0}]
    rows += [{"a": 1.0 + i, "b": 2.0, "c": 3.0 + i % 2} for i in range(9)]
    rows[5] = {"a": 6.0, "b": 2.0, "c": 4.0, "retry_after": 30.0}  # a rare field stays out
    if fmt == "json":
        batch = make_batch([orjson.dumps(row) for row in rows])
    else:
        batch = make_batch(
            [b"a,b,c,retry_after"]
            + [
                ",".join(str(row.get(name, "")) for name in ("a", "b", "c", "retry_after")).encode()
                for row in rows
            ]
        )
    decoder = RecordDecoder(fmt)
    decoded = decoder.decode(batch)
    assert decoder.features == ["a", "b", "c"]
    assert decoded.values.shape == (9, 3)
    assert [bad.position["line"] for bad in decoded.bad] == [2 if fmt == "csv" else 1]
    assert_accounted(decoded, batch)


def test_rising_fields_stay_when_named_too_few_rows_or_nothing_else() -> None:
    named = RecordDecoder("json", ["x", "ts", "seq"])
    named.decode(rising_batch(50))
    assert named.features == ["x", "ts", "seq"] and named.left_out == []
    few = RecordDecoder("json")
    few.decode(rising_batch(MIN_ROWS_FOR_RISING - 1))
    assert few.features == ["ts", "seq", "x"] and few.left_out == []
    only_rising = RecordDecoder("json")
    only_rising.decode(make_batch([f'{{"n": {i}}}'.encode() for i in range(20)]))
    assert only_rising.features == ["n"]
    kept = RecordDecoder("json", leave_out_rising=False)
    kept.decode(rising_batch(50))
    assert kept.features == ["ts", "seq", "x"]


def test_all_blank_batch_before_anything_is_known() -> None:
    decoder = RecordDecoder("auto")
    batch = make_batch([b"", b"\n"])
    decoded = decoder.decode(batch)
    assert_accounted(decoded, batch)
    assert decoder.format == "auto" and decoder.features is None
    assert decoded.values.shape == (0, 0)


def test_empty_batch() -> None:
    decoder = RecordDecoder("json", ["a", "b"], key_field="k")
    decoded = decoder.decode(RawBatch())
    assert decoded.values.shape == (0, 2) and decoded.keys == [] and decoded.bad == []


def test_batch_with_mismatched_positions_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="one position per payload"):
        RecordDecoder().decode(RawBatch([GOOD_1], []))


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"format": "xml"}, "format"),
        ({"features": []}, "features"),
        ({"features": "x"}, "features"),
        ({"features": ["x", "x"]}, "features"),
        ({"features": ["x", "label"]}, "features"),
        ({"max_record_bytes": 0}, "max_record_bytes"),
    ],
)
def test_bad_configuration_raises_config_error_naming_the_key(
    kwargs: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        RecordDecoder(**kwargs)
    assert raised.value.key == key


# -- dead letters and encoding ---------------------------------------------------------------


def test_bad_record_to_dict_cuts_long_raw_text_and_escapes_invalid_utf8() -> None:
    payload = b"\xff" + "é".encode() * 5000
    entry = BadRecord({"line": 9}, "invalid UTF-8 at byte 0", payload).to_dict()
    assert entry["position"] == {"line": 9}
    assert entry["raw"].startswith("\\xffé")
    text, note = entry["raw"].split("... ")
    assert len(text) == RAW_TEXT_LIMIT
    assert note == f"[cut: the record has {len(payload)} bytes]"
    orjson.dumps(entry)


# -- properties ------------------------------------------------------------------------------

FEATURE_NAMES = [f"f{i}" for i in range(5)]
finite_numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
)
labels = st.sampled_from([None, 0, 1, True, False, 0.0, 1.0])
events = st.fixed_dictionaries(
    {name: finite_numbers for name in FEATURE_NAMES},
    optional={
        "label": labels,
        "host": st.one_of(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1)),
    },
)


@settings(max_examples=150, deadline=None)
@given(st.lists(events, min_size=1, max_size=30))
def test_json_round_trip_values_equal_the_numbers_written(written: list[dict[str, Any]]) -> None:
    lines = [orjson.dumps(event) for event in written]
    decoder = RecordDecoder("json", FEATURE_NAMES)
    decoded = decoder.decode(make_batch(lines))
    assert decoded.bad == []
    assert_well_formed(decoded, len(FEATURE_NAMES))
    expected = [[float(event[name]) for name in FEATURE_NAMES] for event in written]
    assert decoded.values.tolist() == expected
    expected_labels = [
        -1 if event.get("label") is None else int(event["label"]) for event in written
    ]
    assert decoded.labels.tolist() == expected_labels


@settings(max_examples=100, deadline=None)
@given(st.lists(events, min_size=1, max_size=30))
def test_bulk_and_record_by_record_paths_agree(written: list[dict[str, Any]]) -> None:
    # A blank line sends a batch down the record-by-record path; the good rows must not notice.
    lines = [orjson.dumps({**event, "host": event.get("host", 0)}) for event in written]
    options: dict[str, Any] = {"key_field": "host"}
    bulk = RecordDecoder("json", FEATURE_NAMES, **options).decode(make_batch(lines))
    each = RecordDecoder("json", FEATURE_NAMES, **options).decode(make_batch([*lines, b""]))
    assert each.n_blank == 1
    assert np.array_equal(bulk.values, each.values)
    assert np.array_equal(bulk.labels, each.labels)
    assert bulk.keys == each.keys
    assert bulk.records == each.records


nested_events = st.builds(
    lambda cpu, mem, extra: {"cpu": cpu, "mem": mem, **extra},
    st.fixed_dictionaries(
        {"user": finite_numbers, "sys": finite_numbers},
        optional={"idle": st.one_of(finite_numbers, st.text(max_size=3), st.none())},
    ),
    st.fixed_dictionaries({"used": st.fixed_dictionaries({"pct": finite_numbers})}),
    st.fixed_dictionaries(
        {},
        optional={
            "label": labels,
            "host": st.fixed_dictionaries(
                {"name": st.one_of(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1))}
            ),
            "cpu.sys": finite_numbers,  # a top-level field named so wins over the member
        },
    ),
)
NESTED_NAMES = ["cpu.user", "cpu.sys", "mem.used.pct"]


@settings(max_examples=100, deadline=None)
@given(st.lists(nested_events, min_size=1, max_size=30))
def test_bulk_and_record_by_record_paths_agree_on_nested_events(
    written: list[dict[str, Any]],
) -> None:
    lines = [orjson.dumps({**event, "host": event.get("host", {"name": 0})}) for event in written]
    for features in (NESTED_NAMES, None):
        options: dict[str, Any] = {"key_field": "host.name", "features": features}
        bulk_decoder = RecordDecoder("json", **options)
        bulk = bulk_decoder.decode(make_batch(lines))
        each_decoder = RecordDecoder("json", **options)
        each = each_decoder.decode(make_batch([*lines, b""]))
        assert bulk_decoder.features == each_decoder.features
        # Inferred, cpu.idle may be a feature that a minority of events lacks.
        assert [(b.position, b.reason) for b in bulk.bad] == [
            (b.position, b.reason) for b in each.bad
        ]
        assert features is None or bulk.bad == []
        assert np.array_equal(bulk.values, each.values)
        assert np.array_equal(bulk.labels, each.labels)
        assert bulk.keys == each.keys
        assert bulk.records == each.records
    expected = [
        [
            float(event["cpu"]["user"]),
            float(event.get("cpu.sys", event["cpu"]["sys"])),
            float(event["mem"]["used"]["pct"]),
        ]
        for event in written
    ]
    named = RecordDecoder("json", NESTED_NAMES, key_field="host.name").decode(make_batch(lines))
    assert named.values.tolist() == expected


csv_cells = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda x: f"{x:.6e}"),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(csv_cells, min_size=3, max_size=3), min_size=1, max_size=30))
def test_csv_round_trip_values_equal_float_of_the_cells(rows: list[list[str]]) -> None:
    lines = [b"a,b,c,label"] + [",".join([*row, "1"]).encode() for row in rows]
    bulk = RecordDecoder("csv").decode(make_batch(lines))
    each = RecordDecoder("csv").decode(make_batch([*lines, b""]))
    expected = [[float(cell) for cell in row] for row in rows]
    for decoded in (bulk, each):
        assert decoded.bad == []
        assert decoded.values.tolist() == expected
        assert decoded.labels.tolist() == [1] * len(rows)
    assert bulk.records == each.records


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            events.map(orjson.dumps),
            st.binary(max_size=30),
            st.sampled_from([b"", b"{}", b'{"f0": "1"}', b"[]", b'{"f0": 1e999}']),
        ),
        max_size=40,
    )
)
def test_any_bytes_are_accounted_for_and_never_raise(lines: list[bytes]) -> None:
    batch = make_batch(lines)
    decoded = RecordDecoder("json", FEATURE_NAMES).decode(batch)
    assert_accounted(decoded, batch)
    assert_well_formed(decoded, len(FEATURE_NAMES))
    for bad in decoded.bad:
        assert bad.reason
        orjson.dumps(bad.to_dict())


@pytest.mark.parametrize(
    ("header", "options", "message"),
    [
        (b"x,y", {"features": ["x", "zz"]}, "feature 'zz' is not a column of the CSV header"),
        (b"x,y", {"key_field": "host"}, "key field 'host' is not a column of the CSV header"),
        (b"x,y", {"label_field": "is_bad"}, "label field 'is_bad' is not a column of the CSV"),
        (b"x,y,x", {}, "the CSV header names column 'x' twice"),
        (b"x,\xff", {}, "the CSV header is not valid UTF-8 (byte 2)"),
        (b'"x,y', {}, "the CSV header is malformed"),
        (b"x" * 20, {"max_record_bytes": 10}, "the CSV header is too long"),
    ],
)
def test_csv_header_errors_name_the_source_when_known(
    header: bytes, options: dict[str, Any], message: str
) -> None:
    decoder = RecordDecoder("csv", source="file:events.csv", **options)
    with pytest.raises(InputError) as raised:
        decoder.decode(make_batch([b"", header, b"1,2"]))
    assert (raised.value.source, raised.value.line) == ("file:events.csv", 2)
    assert str(raised.value).startswith(f"file:events.csv:2: {message}")
    # Without a source, the message is what it always was.
    anonymous = RecordDecoder("csv", **options)
    with pytest.raises(InputError) as raised:
        anonymous.decode(make_batch([b"", header, b"1,2"]))
    assert raised.value.source is None and str(raised.value).startswith(message)
