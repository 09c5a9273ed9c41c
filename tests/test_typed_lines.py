"""The msgspec bulk path for JSON lines against the record-by-record path, the authority.

Lines are written by hand, as bytes, so that they hold what JSON encoders
never write: huge integers, ``-0``, ``1E+2``, numbers past the float range,
duplicated keys, escaped field names, lone surrogates, invalid UTF-8, raw
control characters, lines that are two objects or half of one.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from stream_detect.pipeline import Pipeline
from stream_detect.records import Decoded, RecordDecoder
from stream_detect.records.lazy_records import LazyRecords
from stream_detect.records.roles import FieldRoles
from stream_detect.records.typed_lines import MAX_OTHER_FIELDS, TypedLines
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.sinks import FileSink
from stream_detect.sinks.json_encoding import encode_json
from stream_detect.sources.base import RawBatch
from stream_detect.testing import ListSink, ListSource

FEATURES = ["f0", "f1", "f2"]


def make_batch(lines: list[bytes]) -> RawBatch:
    return RawBatch(list(lines), [{"line": i + 1} for i in range(len(lines))])


def exact(lines: list[bytes], **options: Any) -> Decoded:
    """The record-by-record path: a blank line sends the whole batch down it."""
    decoded = RecordDecoder("json", FEATURES, **options).decode(make_batch([*lines, b""]))
    decoded.n_blank -= 1
    return decoded


def texts_of(values: Any) -> bytes:
    """JSON text that tells 1 from 1.0 from true, and 0.0 from -0.0 (``==`` does not).

    Integers wider than 64 bits, which records keep, are written digit for digit.
    """
    return encode_json(values, orjson.OPT_SERIALIZE_NUMPY)


def assert_same(fast: Decoded, reference: Decoded) -> None:
    assert fast.values.dtype == np.float64 and fast.values.flags["C_CONTIGUOUS"]
    assert fast.values.shape == reference.values.shape
    assert fast.values.tobytes() == reference.values.tobytes()
    assert fast.labels.dtype == np.int8
    assert fast.labels.tolist() == reference.labels.tolist()
    assert fast.keys == reference.keys and fast.ids == reference.ids
    assert texts_of(fast.timestamps) == texts_of(reference.timestamps)
    assert fast.positions == reference.positions
    assert [texts_of(record) for record in fast.records] == [
        texts_of(record) for record in reference.records
    ]
    assert fast.records == reference.records
    assert [(b.position, b.reason, b.payload) for b in fast.bad] == [
        (b.position, b.reason, b.payload) for b in reference.bad
    ]
    assert (fast.n_blank, fast.n_header) == (reference.n_blank, reference.n_header)


# -- JSON text, written by hand ------------------------------------------------------------

EDGE_NUMBERS = [
    "0", "-0", "-0.0", "0e0", "1E2", "1e+2", "1.5E-3", "2.5", "1e308", "1.7976931348623157e308",
    "1.7976931348623159e308", "1e309", "1e400", "-1e400", "1e-320", "1e-400", "4.9e-324",
    "2.4e-324", "9007199254740993", "9007199254740993.0", "-9007199254740995",
    "18446744073709551615", "18446744073709551616", "9223372036854775807",
    "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "1" * 400,
    "1" * 300, "0." + "0" * 400 + "1", "1" * 25 + "e-10",
]  # fmt: skip
numbers = st.one_of(
    st.integers(-5, 5).map(str),
    st.integers(-(2**70), 2**70).map(str),
    st.integers(2**53 - 3, 2**53 + 3).map(str),
    st.integers(2**63 - 3, 2**64 + 3).map(lambda i: f"-{i}" if i % 2 else str(i)),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(0, 10**25), st.integers(-345, 315)),
    st.sampled_from(EDGE_NUMBERS),
)
strings = st.one_of(
    st.text(max_size=6).map(lambda text: orjson.dumps(text).decode()),
    st.sampled_from(
        ['"1.5"', '"abc"', '""', '"\\u00e9"', '"\\ud83d\\ude00"', '"\\ud800"', '"a\\"b"']
    ),
)
literals = st.sampled_from(["true", "false", "null"])
nested = st.sampled_from(["[]", "[1]", "{}", '{"a": 1}', '{"a": 1, "a": 2}'])
broken = st.sampled_from(["NaN", "Infinity", "01", "1.", ".5", "+1", "1e", "tru", "", "'a'"])
values = st.one_of(numbers, numbers, numbers, strings, literals, nested, broken)
scalars = st.one_of(numbers, strings, strings, literals)
#: Written field names: escaped ones mean a feature all the same.
feature_names = {"f0": ['"f0"', '"\\u0066\\u0030"'], "f1": ['"f1"'], "f2": ['"f2"']}
other_names = st.sampled_from(['"note"', '"é"', '"f3"', '"label"', '"note"', '"q\\"x"'])
spaces = st.sampled_from(["", "", "", " ", "\t", "\r\n", "\n"])


clean_scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=6).map(lambda text: orjson.dumps(text).decode()),
    st.sampled_from(["true", "false", "-0", "1E2", '"\\u00e9"', '"\\ud83d\\ude00"']),
)
labels = ["0", "1", "true", "false", "null", "1.0", "-0.0", "1e0"]


@st.composite
def json_objects(draw: st.DrawFn, clean: bool) -> bytes:
    """An object; ``clean`` ones only hold what the fast path takes, in all its spellings."""
    members: list[tuple[str, str]] = []
    for spellings in feature_names.values():
        if clean or draw(st.integers(0, 29)):  # a missing feature now and then
            value = draw(numbers if clean or draw(st.integers(0, 9)) else values)
            members.append((draw(st.sampled_from(spellings)), value))
    for name, strategy in (
        ('"host"', clean_scalars if clean else scalars),
        ('"id"', clean_scalars if clean else scalars),
        ('"ts"', clean_scalars if clean else scalars),
        ('"label"', st.sampled_from(labels if clean else [*labels, "2"])),
    ):
        if (clean and name == '"host"') or draw(st.booleans()):
            members.append((name, draw(strategy)))
    for _ in range(draw(st.integers(0, 2))):
        if clean:
            members.append((draw(st.sampled_from(['"note"', '"é"'])), draw(clean_scalars)))
        else:
            members.append(
                (draw(other_names), draw(scalars if draw(st.integers(0, 9)) else nested))
            )
    if draw(st.integers(0, 9)) == 0:  # a duplicated key: the last one wins
        members.append(('"f1"', draw(numbers if clean else values)))
    members = draw(st.permutations(members))
    space = draw(spaces)
    body = f",{space}".join(f"{name}:{space}{value}" for name, value in members)
    return f"{draw(spaces)}{{{body}}}{draw(spaces)}".encode()


@st.composite
def json_lines(draw: st.DrawFn, clean: bool) -> bytes:
    line = draw(json_objects(clean))
    change = draw(st.integers(0, 79))
    if change == 1:
        return line + b"\r"
    if clean:
        return line
    if change == 0:
        return b"\xef\xbb\xbf" + line
    if change == 2:
        return draw(st.sampled_from([b"", b"  ", b"[1]", b"1", b'"x"', b"null"]))
    if change == 3:
        return line[: draw(st.integers(0, len(line)))]
    if change == 4:
        return line + draw(st.sampled_from([b"]\n,[", b"],[", b" ", b","])) + line
    if change == 5:
        cut = draw(st.integers(0, len(line)))
        return line[:cut] + draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\x01"])) + line[cut:]
    return line


batches = st.booleans().flatmap(lambda clean: st.lists(json_lines(clean), min_size=1, max_size=6))

options = st.fixed_dictionaries(
    {
        "label_field": st.sampled_from(["label", None]),
        "key_field": st.sampled_from([None, "host"]),
        "id_field": st.sampled_from([None, "id"]),
        "timestamp_field": st.sampled_from([None, "ts"]),
        "max_key_bytes": st.sampled_from([256, 6]),
        "max_record_bytes": st.sampled_from([1 << 20, 120]),
    }
)


# -- the property --------------------------------------------------------------------------


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=batches, options=options)
def test_the_msgspec_path_gives_what_the_record_by_record_path_gives(
    lines: list[bytes], options: dict[str, Any]
) -> None:
    reference = exact(lines, **options)
    fast = RecordDecoder("json", FEATURES, lazy_records=True, **options).decode(make_batch(lines))
    assert_same(fast, reference)
    # The msgspec path itself, without the decoder's limits: accepting means agreeing.
    roles = FieldRoles(
        options["label_field"],
        options["key_field"],
        options["id_field"],
        options["timestamp_field"],
    )
    columns = TypedLines(roles, FEATURES).decode(lines)
    event("msgspec path accepted" if columns is not None else "msgspec path gave up")
    if columns is not None:
        unlimited = exact(
            lines, **{**options, "max_key_bytes": 1 << 20, "max_record_bytes": 1 << 30}
        )
        assert unlimited.bad == [] and unlimited.n_blank == 0
        assert columns.values.tobytes() == unlimited.values.tobytes()
        assert columns.labels.tolist() == unlimited.labels.tolist()
        assert (columns.keys, columns.ids) == (unlimited.keys, unlimited.ids)
        assert texts_of(columns.timestamps) == texts_of(unlimited.timestamps)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(json_objects(clean=True), min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_clean_lines_cut_anywhere_are_never_read_across_the_cuts(
    lines: list[bytes], cuts: list[int]
) -> None:
    """Payloads that start or end mid-event are refused, whatever braces they end in."""
    text = b"\n".join(lines)
    marks = sorted({0, len(text), *(cut for cut in cuts if cut < len(text))})
    pieces = [text[start:stop] for start, stop in pairwise(marks)]
    pieces = [piece for piece in pieces if piece.strip()] or [text]
    fast = RecordDecoder("json", FEATURES, key_field="host", lazy_records=True).decode(
        make_batch(pieces)
    )
    assert_same(fast, exact(pieces, key_field="host"))


# -- nested objects, read by dotted names -----------------------------------------------------

NESTED_FEATURES = ["cpu.user", "cpu.sys", "f2"]


def _object(draw: st.DrawFn, members: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{name}:{value}" for name, value in draw(st.permutations(members))) + "}"


clean_numbers = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["-0", "1E2", "0.5e-3"]),
)


@st.composite
def nested_lines(draw: st.DrawFn, clean: bool) -> bytes:
    """An event whose features are members of ``cpu``; unless ``clean``, now and then badly so.

    A top-level ``"cpu.sys"`` now and then, which the name reads instead of the member.
    """
    cpu = []
    for part in ("user", "sys"):
        if clean or draw(st.integers(0, 19)):  # a missing member now and then
            good = clean or draw(st.integers(0, 9))
            cpu.append((f'"{part}"', draw(clean_numbers if clean else numbers if good else values)))
    if draw(st.booleans()):
        cpu.append(('"idle"', draw(clean_scalars if clean else scalars)))
    if draw(st.integers(0, 9)) == 0:  # a duplicated member: the last one wins
        cpu.append(('"user"', draw(clean_numbers if clean else numbers)))
    written = _object(draw, cpu) if clean or draw(st.integers(0, 19)) else draw(values)
    members = [('"cpu"', written), ('"f2"', draw(clean_numbers if clean else numbers))]
    if draw(st.integers(0, 9)) == 0:
        members.append(('"cpu.sys"', draw(clean_numbers)))
    host = [('"name"', draw(clean_scalars if clean or draw(st.integers(0, 19)) else scalars))]
    if draw(st.booleans()):
        host.append(('"dc"', draw(clean_scalars)))
    members.append(('"host"', _object(draw, host)))
    if draw(st.booleans()):
        members.append(('"label"', draw(st.sampled_from(labels))))
    if draw(st.booleans()):  # an object no feature reaches into, or something else so named
        meta = [('"region"', draw(clean_scalars)), ('"deep"', '{"x": ' + draw(clean_numbers) + "}")]
        kinds = [_object(draw, meta), "{}", draw(clean_scalars)]
        members.append(
            (
                '"meta"',
                draw(
                    st.sampled_from(kinds) if clean else st.one_of(st.sampled_from(kinds), nested)
                ),
            )
        )
    return _object(draw, members).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    clean=st.booleans(),
    data=st.data(),
    key_field=st.sampled_from([None, "host.name"]),
)
def test_nested_events_decode_alike_on_every_path(
    clean: bool, data: st.DataObject, key_field: str | None
) -> None:
    lines = data.draw(st.lists(nested_lines(clean), min_size=1, max_size=6))
    reference = RecordDecoder("json", NESTED_FEATURES, key_field=key_field).decode(
        make_batch([*lines, b""])
    )
    reference.n_blank -= 1
    if clean:
        assert reference.bad == [] and len(reference) == len(lines)
    for lazy in (True, False):
        fast = RecordDecoder("json", NESTED_FEATURES, key_field=key_field, lazy_records=lazy)
        assert_same(fast.decode(make_batch(lines)), reference)


def test_nested_events_take_the_msgspec_path_which_learns_their_other_members() -> None:
    typed = TypedLines(FieldRoles(key_field="host.name"), ["cpu.user", "cpu.sys"])
    lines = [
        b'{"cpu": {"user": 1.5, "sys": 2}, "host": {"name": "a"}}',
        b'{"cpu": {"sys": 3, "idle": 90, "user": -1}, "host": {"name": 7, "dc": "x"}}',
    ]
    columns = typed.decode(lines)
    assert columns is not None
    assert columns.values.tolist() == [[1.5, 2.0], [-1.0, 3.0]] and columns.keys == ["a", "7"]
    assert typed.other_fields == ("cpu.idle", "host.dc")
    # A top-level field that the dotted name reads instead of the member: left to the others.
    assert (
        typed.decode([b'{"cpu": {"user": 1, "sys": 2}, "cpu.user": 5, "host": {"name": "a"}}'])
        is None
    )
    decoder = RecordDecoder("json", ["cpu.user", "cpu.sys"], lazy_records=True)
    decoded = decoder.decode(make_batch(lines))
    assert isinstance(decoded.records, LazyRecords) and decoded.records.parsed == 0
    assert decoded.records[1]["cpu"] == {"sys": 3, "idle": 90, "user": -1}


# -- what it accepts, learns and gives up on -----------------------------------------------


def line(**fields: Any) -> bytes:
    return orjson.dumps({"f0": 1.5, "f1": -2, "f2": 3e-5, **fields})


def test_plain_events_take_the_msgspec_path_and_parse_no_record_until_read() -> None:
    lines = [line(host=f"h{i}", note="x", label=i % 2) for i in range(50)]
    decoder = RecordDecoder("json", FEATURES, key_field="host", lazy_records=True)
    decoded = decoder.decode(make_batch(lines))
    assert isinstance(decoded.records, LazyRecords) and decoded.records.parsed == 0
    assert decoded.records[7] == orjson.loads(lines[7]) and decoded.records.parsed == 1
    assert_same(decoded, exact(lines, key_field="host"))


def test_without_lazy_records_the_records_are_the_dicts_of_the_orjson_path() -> None:
    lines = [line(host="a")] * 3
    decoded = RecordDecoder("json", FEATURES).decode(make_batch(lines))
    assert type(decoded.records) is list
    arrays_only = RecordDecoder("json", FEATURES, keep_records=False).decode(make_batch(lines))
    assert arrays_only.records == [] and arrays_only.values.tolist() == decoded.values.tolist()


def test_fields_beyond_the_features_are_learned_then_checked_like_the_rest() -> None:
    typed = TypedLines(FieldRoles(), FEATURES)
    assert typed.decode([line(note="a"), line(other=1)]) is not None
    assert typed.other_fields == ("note", "other")
    # An unchecked field would let msgspec pass what orjson refuses.
    assert typed.decode([line(note="a"), b'{"f0": 1, "f1": 2, "f2": 3, "note": 1e400}']) is None
    assert typed.decode([line(note="a"), b'{"f0": 1, "f1": 2, "f2": 3, "note": "\xff"}']) is None


def test_an_array_field_gives_up_and_later_tries_wait_longer_and_longer() -> None:
    typed = TypedLines(FieldRoles(), FEATURES)
    # (A nested object of scalars is learned as a nested struct; an array never is.)
    nested, plain = [line(tags=["env", "prod"])], [line()]
    assert typed.decode(nested) is None and typed.decode(nested) is None
    assert typed.decode(plain) is None  # the one batch waited after two that gave up
    assert typed.decode(nested) is None  # a third: the next three batches wait
    assert [typed.decode(plain) is not None for _ in range(4)] == [False, False, False, True]
    # A success ends the waiting: one batch that gives up costs no wait.
    assert typed.decode(nested) is None and typed.decode(plain) is not None


def test_too_many_fields_or_names_msgspec_cannot_match_turn_the_path_off() -> None:
    many = TypedLines(FieldRoles(), FEATURES)
    assert many.decode([line(**{f"x{i}": i for i in range(MAX_OTHER_FIELDS + 1)})]) is None
    assert not many.usable
    quoted = TypedLines(FieldRoles(), ['say "hi"'])
    assert not quoted.usable and quoted.decode([b'{"say \\"hi\\"": 1}']) is None
    decoded = RecordDecoder("json", ['say "hi"'], lazy_records=True).decode(
        make_batch([b'{"say \\"hi\\"": 1}'])
    )
    assert decoded.values.tolist() == [[1.0]] and decoded.records == [{'say "hi"': 1}]


TWO = b'{"f0":1,"f1":2,"f2":3,"host":"b"}],[{"f0":1,"f1":2,"f2":3,"host":"b"}'


@pytest.mark.parametrize(
    ("lines", "options"),
    [
        # One line holding two events, two lines holding one: the counts still match.
        ([TWO, b'{"f0":1,"f1":2,"host":"a"', b'"f2":3}'], {"key_field": "host"}),
        ([TWO, b'{"f0":1,"f1":2,"f2":3,"host":"a', b'"}'], {"key_field": "host"}),
        (
            [TWO.replace(b"],[", b"]\n,["), b'{"f0":1,"f1":2,"f2":3,"host":"a', b'"}'],
            {"key_field": "host"},
        ),
        # Lines framed as one object each (a brace at each end) that are not: a payload
        # holding a newline and two events, then one event cut in two.
        (
            [
                b'{"f0":1,"f1":2,"f2":3}\n{"f0":4,"f1":5,"f2":6}',
                b'{"f0":7,"f1":8,',
                b' "f2":9}',
            ],
            {},
        ),
        (
            [
                b'{"f0":1,"f1":2,"f2":3} {"f0":4,"f1":5,"f2":6}',
                b'{"f0":7,"f1":8,',
                b' "f2":9}',
            ],
            {},
        ),
        ([b'{"f0":1,"f1":2,"f2":{}', b'{"f0":1,"f1":2,"f2":3}}'], {}),
        ([b'{"f0":1,"f1":2,"f2":3}', b'{"f0":1,"f0":true,"f1":2,"f2":3}'], {}),
        ([b'{"f0":1,"f1":2,"f2":3,"label":1,"label":2}'], {}),
        ([b'{"f0":1,"f1":2,"f2":3}', b""], {}),
    ],
)
def test_lines_that_reach_into_each_other_or_repeat_keys_are_left_to_the_exact_path(
    lines: list[bytes], options: dict[str, Any]
) -> None:
    roles = FieldRoles(key_field=options.get("key_field"))
    assert TypedLines(roles, FEATURES).decode(lines) is None
    fast = RecordDecoder("json", FEATURES, lazy_records=True, **options).decode(make_batch(lines))
    assert_same(fast, exact(lines, **options))


# -- through the pipeline: the written lines are the same bytes -----------------------------


def _run(tmp_path: Path, name: str, emit: str, lazy: bool, events: list[bytes]) -> bytes:
    out = tmp_path / f"{name}.jsonl"
    pipeline = Pipeline(
        RunSettings(emit=emit, batch_size=64, summary=False),
        DetectorSettings(
            log_epsilon=-12.0, retune_every=0, transforms={"f1": "log"}, key_field="host"
        ),
        source=ListSource(events),
        sink=FileSink(out),
        dead_letter=ListSink(),
    )
    assert pipeline.decoder.lazy_records is (emit != "all")
    pipeline.decoder.lazy_records = lazy
    pipeline.run()
    return out.read_bytes()


def test_alert_lines_are_byte_for_byte_those_of_the_orjson_path(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    events = []
    for i in range(1000):
        x = rng.normal(size=3)
        if i % 97 == 50:
            x *= 30
        f1 = abs(x[1]) + 0.1 if i % 211 else -1.0  # the log transform refuses -1
        event = {"f0": float(x[0]), "f1": float(f1), "f2": int(x[2] * 1e3)}
        events.append(orjson.dumps({"ts": i, **event, "host": f"h{i % 3}", "note": "é"}))
    lazy = _run(tmp_path, "lazy", "alerts", True, events)
    eager = _run(tmp_path, "eager", "alerts", False, events)
    every = _run(tmp_path, "all", "all", False, events)
    assert lazy == eager and lazy.count(b"\n") >= 5
    alerts = [row for row in every.splitlines(keepends=True) if b'"alert":true' in row]
    assert lazy == b"".join(alerts)


@pytest.mark.parametrize("lazy", [True, False])
def test_a_label_wider_than_64_bits_is_a_bad_record_that_names_it(lazy: bool) -> None:
    line = b'{"f0":0,"f1":0,"f2":0,"label":-9223372036854775809}'
    for decoded in (
        exact([line], label_field="label"),
        RecordDecoder("json", FEATURES, lazy_records=lazy, label_field="label").decode(
            make_batch([line])
        ),
    ):
        assert [bad.reason for bad in decoded.bad] == [
            "label 'label' is -9223372036854775809; expected 0, 1, true or false "
            "(null or absent for unlabelled)"
        ]
