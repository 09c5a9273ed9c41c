"""Nested JSON objects: dotted field names (``cpu.user``) on every decoding path and in a run.

The rule itself is :mod:`stream_detect.records.field_paths`; here it is held
to what a user sees: the features read or inferred, the dead letters and
their reasons, the keys, and the results written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream_detect.cli import main
from stream_detect.records import Decoded, RecordDecoder
from stream_detect.records.field_paths import MAX_DEPTH, find, leaves
from stream_detect.sources.base import RawBatch

#: Each way a batch can be decoded: the orjson bulk path, the msgspec path
#: (lazy records), and record by record (a blank line sends a batch down it).
PATHS = ["bulk", "typed", "each"]


def decode(lines: list[bytes], path: str = "bulk", **options: Any) -> tuple[Decoded, RecordDecoder]:
    payloads = [*lines, b""] if path == "each" else list(lines)
    decoder = RecordDecoder("json", lazy_records=path == "typed", **options)
    decoded = decoder.decode(RawBatch(payloads, [{"line": i + 1} for i in range(len(payloads))]))
    return decoded, decoder


def nested_event(i: int, **more: Any) -> dict[str, Any]:
    return {
        "ts": f"2024-01-01T00:00:{i % 60:02d}Z",
        "cpu": {"user": 9.5 + (i % 7) / 10, "sys": 4.9 - (i % 5) / 10},
        "host": {"name": "ab"[i % 2], "dc": "x"},
        **more,
    }


def lines_of(events: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(event) for event in events]


@pytest.mark.parametrize("path", PATHS)
def test_dotted_features_read_the_members_of_nested_objects(path: str) -> None:
    events = [nested_event(i) for i in range(20)]
    decoded, _ = decode(lines_of(events), path, features=["cpu.user", "cpu.sys"])
    assert decoded.bad == []
    assert decoded.values.tolist() == [[e["cpu"]["user"], e["cpu"]["sys"]] for e in events]


@pytest.mark.parametrize("path", PATHS)
def test_inferred_features_are_the_numeric_members_of_nested_objects(path: str) -> None:
    events = [
        nested_event(i, mem={"used": 100 + i % 3, "unit": "MB", "pct": {"v": 0.5}}, n=i % 4)
        for i in range(20)
    ]
    decoded, decoder = decode(lines_of(events), path)
    assert decoder.features == ["cpu.user", "cpu.sys", "mem.used", "mem.pct.v", "n"]
    assert decoded.bad == []
    assert decoded.values[:, 2].tolist() == [100 + i % 3 for i in range(20)]


def test_inferred_nested_members_follow_the_rules_of_flat_fields() -> None:
    """Most carried wins, a rare member is left out, a rising one too; arrays are not read."""
    events = [
        nested_event(i, meta={"seq": i, "retry": 1} if i == 3 else {"seq": i}, tags=[{"x": 1}])
        for i in range(20)
    ]
    decoded, decoder = decode(lines_of(events))
    assert decoder.features == ["cpu.user", "cpu.sys"]
    assert decoder.left_out == ["meta.seq"]
    assert len(decoded) == 20


def test_members_deeper_than_the_limit_are_not_inferred_but_may_be_named() -> None:
    deep: dict[str, Any] = {"v": 1.5}
    for level in range(MAX_DEPTH - 1, 0, -1):
        deep = {f"l{level}": deep}
    event = {"x": 2, **deep}
    name = ".".join([f"l{level}" for level in range(1, MAX_DEPTH)] + ["v"])
    assert [n for n, _ in leaves(event)][-1] == name  # exactly MAX_DEPTH levels: inferred
    too_deep = {"x": 2, "top": deep}
    assert f"top.{name}" not in [n for n, _ in leaves(too_deep)]
    decoded, _ = decode([orjson.dumps(too_deep)], features=[f"top.{name}"])
    assert decoded.values.tolist() == [[1.5]]


@pytest.mark.parametrize("path", PATHS)
def test_a_top_level_field_named_with_the_dots_wins_over_the_nested_member(path: str) -> None:
    events = [{"cpu.user": 1.0 + i % 3, "cpu": {"user": -5.0, "sys": 2.0}} for i in range(10)]
    decoded, _ = decode(lines_of(events), path, features=["cpu.user", "cpu.sys"])
    assert decoded.values.tolist() == [[1.0 + i % 3, 2.0] for i in range(10)]
    inferred, decoder = decode(lines_of(events), path)
    # Inferred once, by the name that reads the top-level field.
    assert decoder.features == ["cpu.user", "cpu.sys"]
    assert inferred.values.tolist() == decoded.values.tolist()


@pytest.mark.parametrize("path", PATHS)
def test_a_feature_that_holds_an_object_is_a_dead_letter_that_names_a_member(path: str) -> None:
    decoded, _ = decode(lines_of([nested_event(i) for i in range(3)]), path, features=["cpu"])
    assert len(decoded) == 0
    assert {bad.reason for bad in decoded.bad} == {
        "feature 'cpu' is an object; name one of its members, such as cpu.user"
    }


@pytest.mark.parametrize("path", PATHS)
def test_a_key_or_id_field_that_holds_an_object_is_a_dead_letter_that_names_a_member(
    path: str,
) -> None:
    lines = lines_of([nested_event(i, meta={"id": f"e{i}"}) for i in range(3)])
    keyed, _ = decode(lines, path, features=["cpu.user"], key_field="host")
    assert {bad.reason for bad in keyed.bad} == {
        "key field 'host' is an object; name one of its members, such as host.name"
    }
    named, _ = decode(lines, path, features=["cpu.user"], id_field="meta")
    assert {bad.reason for bad in named.bad} == {
        "id field 'meta' is an object; name one of its members, such as meta.id"
    }


@pytest.mark.parametrize("path", PATHS)
def test_a_missing_nested_member_is_a_dead_letter_like_a_missing_feature(path: str) -> None:
    lines = [
        *lines_of([nested_event(i) for i in range(4)]),
        b'{"cpu": {"sys": 1}}',
        b'{"cpu": 5, "x": 1}',
        b'{"cpu": [{"user": 1}], "x": 1}',
        b'{"cpu": {"user": "9"}}',
    ]
    decoded, _ = decode(lines, path, features=["cpu.user"])
    assert len(decoded) == 4
    assert [bad.reason for bad in decoded.bad] == [
        "missing feature 'cpu.user'",
        "missing feature 'cpu.user' ('cpu' is a number, not an object)",
        "missing feature 'cpu.user' ('cpu' is an array, not an object)",
        "feature 'cpu.user' is the string \"9\"; numbers must not be quoted",
    ]


@pytest.mark.parametrize("path", PATHS)
def test_key_id_label_and_timestamp_fields_may_be_dotted(path: str) -> None:
    events = [nested_event(i, meta={"id": f"e{i}", "label": i == 5, "at": i}) for i in range(10)]
    decoded, decoder = decode(
        lines_of(events),
        path,
        key_field="host.name",
        id_field="meta.id",
        label_field="meta.label",
        timestamp_field="meta.at",
    )
    # Fields with a role are never inferred as features, nested or not.
    assert decoder.features == ["cpu.user", "cpu.sys"]
    assert decoded.keys == ["ab"[i % 2] for i in range(10)]
    assert decoded.ids == [f"e{i}" for i in range(10)]
    assert decoded.labels.tolist() == [1 if i == 5 else 0 for i in range(10)]
    assert decoded.timestamps == list(range(10))
    missing, _ = decode([b'{"x": 1, "host": {"dc": "x"}}'], path, key_field="host.name")
    assert [bad.reason for bad in missing.bad] == [
        "key field 'host.name' is missing; every event needs a key"
    ]


def test_find_reads_back_every_inferred_name() -> None:
    event = {
        "a": {"b": {"c": 1}, "b.c": 2, "": 3},
        "a.b": {"c": 4},
        "x": [{"y": 5}],
        "z": {"w": None},
    }
    named = leaves(event)
    # "a.b" names the top-level field; "a.b.c" still reads a member of a member.
    assert [name for name, _ in named] == ["a", "a.b.c", "a.b", "x", "z", "z.w"]
    for name, value in named:
        assert find(event, name) is value


# -- a whole run ----------------------------------------------------------------------------


def run(tmp_path: Path, events: list[dict[str, Any]], *args: str) -> tuple[list[Any], Any]:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
    status = main(["run", "--source", f"file:{source}", "--sink", f"file:{out}", *args])
    assert status == 0
    results = [json.loads(line) for line in out.read_bytes().splitlines()]
    return [r for r in results if "summary" not in r], next(
        (r["summary"] for r in results if "summary" in r), None
    )


def test_emit_all_writes_the_event_as_received_and_alerts_name_dotted_features(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [nested_event(i) for i in range(400)]
    events.append({"ts": "late", "cpu": {"user": 90.0, "sys": 4.9}, "host": {"name": "a"}})
    results, _ = run(tmp_path, events, "--emit", "all", "--no-progress", "--no-summary")
    capsys.readouterr()
    assert len(results) == len(events)
    for written, event in zip(results, events, strict=True):
        assert {name: written[name] for name in event} == event  # nested stays nested
    last = results[-1]
    assert last["alert"] is True
    assert set(last["contributions"]) == {"cpu.user", "cpu.sys"}
    assert max(last["contributions"], key=lambda name: abs(last["contributions"][name])) == (
        "cpu.user"
    )


def test_a_nested_key_field_gives_each_key_its_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [nested_event(i) for i in range(300)]
    results, _ = run(tmp_path, events, "--key-field", "host.name", "--emit", "all", "--no-progress")
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])["summary"]
    assert summary["models"] == 2 and summary["bad_records"] == 0
    assert [r["key"] for r in results] == ["ab"[i % 2] for i in range(300)]


def test_fit_reads_nested_features_and_does_not_call_their_objects_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "train.jsonl"
    table.write_bytes(b"".join(orjson.dumps(nested_event(i)) + b"\n" for i in range(50)))
    assert main(["fit", str(table)]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert fitted["features"] == ["cpu.user", "cpu.sys"]
    assert fitted["ignored_columns"] == ["ts", "host"]
