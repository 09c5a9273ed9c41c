"""Hostile input mixed into good streams: every bad record a dead letter, the good ones untouched.

For each stream, the run over the mixed lines is compared with a run over the
good lines alone: every good record must be scored exactly the same (bad
records never reach the model), every bad one must be in the dead letters with
its line number and a reason, and good + bad + blank must add up to the total.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hostile import BAD_CSV, BAD_JSON, Maker, Mixed, good_csv, good_json, mixed_stream

from stream_detect.assembly import run_stream
from stream_detect.pipeline import Summary
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.testing import ListSink

#: What a result says about its event, exactly the same in both runs.
EXACT = ("a", "b", "alert", "warmup", "n")
#: Scores: the same to rounding. Bad records change where batches of good events
#: start, and the prefix sums of a batch round at the last bit differently.
CLOSE = ("log_p", "score", "mahalanobis_sq", "log_epsilon")


def run_file(path: Path) -> tuple[Summary, list[dict[str, Any]], list[dict[str, Any]]]:
    sink, dead = ListSink(), ListSink()
    summary = run_stream(
        RunSettings(source=f"file:{path}", emit="all", max_line_bytes=4096, batch_size=512),
        DetectorSettings(features=("a", "b"), retune_seconds=0.0),
        sink=sink,
        dead_letter=dead,
    )
    return summary, sink.records, dead.records


def check_mixed(tmp_path: Path, mixed: Mixed, header: bytes | None) -> None:
    head = [header] if header is not None else []
    mixed_path, clean_path = tmp_path / "mixed", tmp_path / "clean"
    suffix = ".csv" if header is not None else ".jsonl"
    mixed_path, clean_path = mixed_path.with_suffix(suffix), clean_path.with_suffix(suffix)
    mixed_path.write_bytes(b"\n".join(head + mixed.lines) + b"\n")
    first = mixed_first(mixed)
    good_lines = [mixed.lines[n - first] for n in mixed.good]
    clean_path.write_bytes(b"\n".join(head + good_lines) + b"\n")

    summary, results, dead = run_file(mixed_path)
    _, clean_results, clean_dead = run_file(clean_path)

    assert clean_dead == []
    total = len(mixed.lines)
    assert summary.events + summary.bad_records + summary.blank_lines == total
    assert summary.header_lines == len(head)
    assert (summary.events, summary.bad_records, summary.blank_lines) == (
        len(mixed.good),
        len(mixed.bad),
        len(mixed.blank),
    )
    assert [r["position"]["line"] for r in results] == mixed.good
    assert len(results) == len(clean_results)
    for name in EXACT:
        assert [r[name] for r in results] == [r[name] for r in clean_results], name
    for name in CLOSE:
        mine = np.array([r[name] for r in results], dtype=np.float64)
        clean = np.array([r[name] for r in clean_results], dtype=np.float64)
        assert np.allclose(mine, clean, rtol=1e-9, atol=0.0, equal_nan=True), name
    assert [d["position"]["line"] for d in dead] == sorted(mixed.bad)
    for letter in dead:
        kind = mixed.bad[letter["position"]["line"]]
        assert isinstance(letter["reason"], str) and letter["reason"], kind


def mixed_first(mixed: Mixed) -> int:
    return min([*mixed.good, *mixed.bad, *mixed.blank])


def test_json_kinds_each_seen() -> None:
    mixed = mixed_stream(200, BAD_JSON, good_json, seed=1)
    assert set(mixed.bad.values()) == set(BAD_JSON)


def test_100000_mixed_json_records(tmp_path: Path) -> None:
    check_mixed(tmp_path, mixed_stream(100_000, BAD_JSON, good_json, seed=7), header=None)


def test_mixed_csv_rows(tmp_path: Path) -> None:
    # Line 1 is the header, so the rows start at line 2.
    mixed = mixed_stream(20_000, BAD_CSV, good_csv, seed=8, first_line=2)
    assert set(mixed.bad.values()) == set(BAD_CSV)
    check_mixed(tmp_path, mixed, header=b"a,b")


@pytest.mark.parametrize("kind", sorted(BAD_JSON))
def test_every_json_kind_alone_is_a_dead_letter(kind: str, tmp_path: Path) -> None:
    check_kind(tmp_path, BAD_JSON[kind], good_json, None)


@pytest.mark.parametrize("kind", sorted(BAD_CSV))
def test_every_csv_kind_alone_is_a_dead_letter(kind: str, tmp_path: Path) -> None:
    check_kind(tmp_path, BAD_CSV[kind], good_csv, b"a,b")


def check_kind(tmp_path: Path, bad: Maker, good: Maker, header: bytes | None) -> None:
    rng = np.random.default_rng(0)
    first = 1 if header is None else 2
    lines = [good(rng), bad(rng), good(rng)]
    mixed = Mixed(lines, [first, first + 2], {first + 1: "kind"}, [])
    check_mixed(tmp_path, mixed, header)
