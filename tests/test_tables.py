"""Tests for stream_detect.tables: strict loading of CSV and JSON-lines tables."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_detect.errors import InputError
from stream_detect.formats import format_for_path
from stream_detect.records.stream_layout import DEFAULT_MAX_RECORD_BYTES
from stream_detect.tables import iter_table, load_table


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    return path


def raise_message(path: Path, **kwargs: Any) -> InputError:
    with pytest.raises(InputError) as raised:
        load_table(path, **kwargs)
    return raised.value


def test_load_csv_with_labels(tmp_path: Path) -> None:
    path = write(tmp_path, "train.csv", "host,x,y,label\na,1,2.5,0\n\nb,3,4,1\n")
    table = load_table(path)
    assert table.features == ["x", "y"]
    assert table.X.tolist() == [[1.0, 2.5], [3.0, 4.0]]
    assert table.X.dtype == np.float64 and table.X.flags["C_CONTIGUOUS"]
    assert table.y is not None and table.y.dtype == np.int8
    assert table.y.tolist() == [0, 1]
    assert table.source == str(path)


def test_load_jsonl_with_labels_and_explicit_features(tmp_path: Path) -> None:
    lines = [{"a": 1, "b": 2, "label": True}, {"a": 3, "b": 4, "label": 0}]
    path = write(tmp_path, "val.jsonl", "\n".join(orjson.dumps(x).decode() for x in lines))
    table = load_table(path, features=["b", "a"])
    assert table.features == ["b", "a"]
    assert table.X.tolist() == [[2.0, 1.0], [4.0, 3.0]]
    assert table.y is not None and table.y.tolist() == [1, 0]


def test_table_without_labels_has_y_none(tmp_path: Path) -> None:
    assert load_table(write(tmp_path, "x.csv", "x,y\n1,2\n")).y is None
    assert load_table(write(tmp_path, "x.ndjson", '{"x": 1}\n{"x": 2}\n')).y is None
    # A label column that is empty in every row is no labels at all.
    assert load_table(write(tmp_path, "e.csv", "x,label\n1,\n2,\n")).y is None


def test_partly_labelled_rows_are_unlabelled_where_the_label_is_empty(tmp_path: Path) -> None:
    # The one label rule of every command: any row may be unlabelled (-1).
    for name, text in [
        ("p.csv", "x,label\n1,0\n2,\n3,1\n"),
        ("p.jsonl", '{"x": 1}\n{"x": 2, "label": true}\n{"x": 3, "label": null}\n'),
    ]:
        table = load_table(write(tmp_path, name, text))
        assert table.X.tolist() == [[1.0], [2.0], [3.0]]
        assert table.y is not None
        assert table.y.tolist() == ([0, -1, 1] if name == "p.csv" else [-1, 1, -1])
    chunks = list(iter_table(write(tmp_path, "c.csv", "x,label\n1,\n2,\n3,1\n"), chunk_rows=2))
    assert [None if chunk.y is None else chunk.y.tolist() for chunk in chunks] == [None, [-1, 1]]
    table = load_table(tmp_path / "c.csv")
    assert table.y is not None and table.y.tolist() == [-1, -1, 1]


def test_label_field_is_configurable_and_never_a_feature(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "x,is_anomaly,y\n1,1,2\n3,0,4\n")
    table = load_table(path, label_field="is_anomaly")
    assert table.features == ["x", "y"]
    assert table.y is not None and table.y.tolist() == [1, 0]
    unlabelled = load_table(path, label_field=None)
    assert unlabelled.features == ["x", "is_anomaly", "y"] and unlabelled.y is None


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("t.csv", "x,Label\n1,0\n2,1\n"),
        ("t.jsonl", '{"x": 1, "LABEL": 0}\n{"x": 2, "LABEL": 1}\n'),
    ],
)
def test_the_label_in_another_case_is_not_fitted_as_a_feature(
    tmp_path: Path, name: str, content: str
) -> None:
    # With the default label field "label", a "Label" column of 0s and 1s became a
    # feature: the answers went into the model, and no labels were left for epsilon.
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=rf"{name}:\d: field '(Label|LABEL)' would be a feature"):
        load_table(path)
    # Said as the label field, or left out of the features, it is fine.
    other = "Label" if name.endswith(".csv") else "LABEL"
    assert load_table(path, label_field=other).y.tolist() == [0, 1]
    assert load_table(path, features=["x"]).features == ["x"]
    assert load_table(path, label_field=None).features == ["x", other]


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_json_field_is_not_fitted_as_a_feature(tmp_path: Path, blank: str) -> None:
    # It was: fit wrote a model with the feature "", which evaluate could not read back
    # ("config key features: got ',x'").
    path = tmp_path / "t.jsonl"
    path.write_bytes(orjson.dumps({blank: 1, "x": 1}) + b"\n" + orjson.dumps({blank: 2, "x": 3}))
    with pytest.raises(InputError, match=rf"t.jsonl:1: field '{blank}' would be a feature, and a "):
        load_table(path)
    assert load_table(path, features=["x"]).X.tolist() == [[1.0], [3.0]]


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux's /proc")
def test_a_read_error_is_one_line_naming_the_file() -> None:
    # Reading /proc/self/mem from offset 0 fails with EIO, as a failing disk does;
    # it was a traceback (OSError) where run and replay said "cannot read".
    with pytest.raises(InputError, match=r"^/proc/self/mem: cannot read: Input/output error$"):
        load_table("/proc/self/mem")


@pytest.mark.parametrize(
    ("name", "what"), [("ex8data1.mat", "a MATLAB .mat file"), ("t.csv.gz", "gzip-compressed")]
)
def test_a_file_that_holds_no_text_is_named_for_what_it_is(
    tmp_path: Path, name: str, what: str
) -> None:
    # The exercise's .mat file was refused as "the CSV header is not valid UTF-8 (byte 132)".
    path = write(tmp_path, name, b"MATLAB 5.0 MAT-file, Platform: x\x00\x01\xff\n\x80")
    assert str(raise_message(path)) == f"{path}: {what}, not CSV or JSON lines: " + (
        "save its arrays as CSV first (scipy.io.loadmat, then numpy.savetxt with a header)"
        if name.endswith(".mat")
        else "decompress it first (gunzip -k)"
    )
    assert raise_message(tmp_path / "absent.mat").reason == "no such file"


def test_unknown_extension_is_sniffed(tmp_path: Path) -> None:
    assert load_table(write(tmp_path, "a.txt", '\n{"v": 1}\n')).X.tolist() == [[1.0]]
    assert load_table(write(tmp_path, "b.data", "v\n2\n")).X.tolist() == [[2.0]]
    assert format_for_path(tmp_path / "c.JSON") == "json"


@pytest.mark.parametrize(
    ("name", "text", "line", "message"),
    [
        ("t.csv", "x,y\n1,2\n3,abc\n", 3, "feature 'y' is 'abc', not a number"),
        ("t.csv", "x,y\n1,2\n\n3\n", 4, "expected 2 columns as in the header, got 1"),
        ("t.csv", "x,y\n1,2\n3,4,5\n", 3, "expected 2 columns as in the header, got 3"),
        ("t.csv", "x,y\n1,2\n3,nan\n", 3, "feature 'y' is 'nan', not a finite number"),
        ("t.csv", "x,y\n1,2\n-inf,4\n", 3, "feature 'x' is '-inf', not a finite number"),
        ("t.csv", "x,y\n1,2\n,4\n", 3, "feature 'x' is empty"),
        (
            "t.csv",
            "x,label\n1,0\n2,maybe\n",
            3,
            "label 'label' is 'maybe'; expected 0, 1, true or false (empty for unlabelled)",
        ),
        ("t.csv", "x,x\n1,2\n", 1, "the CSV header names column 'x' twice"),
        (
            "t.jsonl",
            '{"x": 1}\n{"x": 1,\n',
            2,
            "invalid JSON at character 8: unexpected end of data",
        ),
        ("t.jsonl", '{"x": 1, "y": 2}\n\n{"x": 1}\n', 3, "missing feature 'y'"),
        ("t.jsonl", '{"x": 1}\n{"x": "2"}\n', 2, "feature 'x' is the string \"2\"; numbers"),
        ("t.jsonl", '{"x": 1}\n{"x": null}\n', 2, "feature 'x' is null, not a number"),
        ("t.jsonl", '{"x": 1}\n{"x": 1, "label": 3}\n', 2, "label 'label' is 3"),
        ("t.jsonl", '{"x": 1}\n[1]\n', 2, "expected a JSON object, got an array"),
        ("t.json", '\n[{"x": 1}]\n', 2, "the file holds a JSON array; expected JSON lines"),
    ],
)
def test_each_problem_raises_with_file_and_line(
    tmp_path: Path, name: str, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, name, text)
    error = raise_message(path)
    assert error.source == str(path)
    assert error.line == line
    assert str(error).startswith(f"{path}:{line}: {message}")


def test_invalid_utf8_and_infinite_json_number(tmp_path: Path) -> None:
    error = raise_message(write(tmp_path, "u.csv", b"x\n1\n\xff\n"))
    assert (error.line, error.reason) == (3, "invalid UTF-8 at byte 0")
    error = raise_message(write(tmp_path, "i.jsonl", b'{"x": 1}\n{"x": 1e999}\n'))
    assert error.line == 2 and "infinity" in error.reason


@pytest.mark.parametrize("line_break", [b"\n", b"\r\n"])
def test_a_line_is_measured_and_limited_without_its_line_break_as_run_does(
    tmp_path: Path, line_break: bytes
) -> None:
    limit = DEFAULT_MAX_RECORD_BYTES
    just_fits = b"1," + b"0" * (limit - 2)
    path = write(tmp_path, "t.csv", line_break.join([b"x,y", just_fits, b"3,4", b""]))
    assert len(load_table(path).X) == 2
    too_long = b"1," + b"0" * (limit - 1)
    path = write(tmp_path, "t.csv", line_break.join([b"x,y", b"3,4", too_long, b""]))
    error = raise_message(path)
    assert (error.line, error.reason) == (
        3,
        f"line of {limit + 1} bytes exceeds the limit of {limit} bytes",
    )


def test_a_file_without_line_breaks_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    # Its first line was read whole before its length was looked at: /dev/zero, a disk
    # image or a large binary file filled the memory. Run with 4 GiB of address space,
    # the old reading ended in MemoryError; now the first 1 MiB and a little tell.
    if not os.path.exists("/dev/zero"):
        pytest.skip("needs /dev/zero")
    script = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
        "from stream_detect.errors import InputError\n"
        "from stream_detect.tables import load_table\n"
        "try:\n"
        "    load_table('/dev/zero')\n"
        "except InputError as error:\n"
        "    print(error)\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    limit = DEFAULT_MAX_RECORD_BYTES
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == (
        f"/dev/zero:1: line of at least {limit + 3} bytes exceeds the limit of {limit} bytes\n"
    )
    # Rows before such a line are read, and their problems come first.
    path = write(tmp_path, "t.csv", b"x,y\n1,2\n3,abc\n" + b"0" * (3 * limit))
    assert raise_message(path).line == 3
    path = write(tmp_path, "t.csv", b"x,y\n1,2\n3,4\n" + b"0" * (3 * limit))
    assert (raise_message(path).line, raise_message(path).reason) == (
        4,
        f"line of at least {limit + 3} bytes exceeds the limit of {limit} bytes",
    )


def test_feature_missing_from_csv_header(tmp_path: Path) -> None:
    error = raise_message(write(tmp_path, "t.csv", "x,y\n1,2\n"), features=["x", "z"])
    assert str(error) == (
        f"{tmp_path / 't.csv'}:1: feature 'z' is not a column of the CSV header (columns: x, y)"
    )


def test_missing_empty_and_header_only_files(tmp_path: Path) -> None:
    missing = raise_message(tmp_path / "nope.csv")
    assert str(missing) == f"{tmp_path / 'nope.csv'}: no such file" and missing.line is None
    assert raise_message(write(tmp_path, "e.csv", "")).reason == "the file is empty"
    assert raise_message(write(tmp_path, "b.jsonl", "\n\n  \n")).reason == "the file is empty"
    header_only = raise_message(write(tmp_path, "h.csv", "x,y\n"))
    assert header_only.reason == "the file has a header but no data rows"
    # Without a .csv name, the lone line waited for a second one: it was called empty.
    header_only = raise_message(write(tmp_path, "h.txt", "\nx,y\n"))
    assert header_only.reason == "the file has a header but no data rows"
    assert raise_message(tmp_path).reason == "is a directory, not a file"


def test_error_line_numbers_are_right_across_chunks(tmp_path: Path) -> None:
    lines = ["x,y"] + [f"{i},{i}" for i in range(50)]
    lines[37] = "1,oops"
    path = write(tmp_path, "t.csv", "\n".join(lines) + "\n")
    with pytest.raises(InputError) as raised:
        list(iter_table(path, chunk_rows=8))
    assert raised.value.line == 38


def test_chunks_report_progress(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "x\n" + "".join(f"{i}\n" for i in range(100)))
    chunks = list(iter_table(path, chunk_rows=16))
    progress = [chunk.bytes_read for chunk in chunks]
    assert progress == sorted(progress)
    assert progress[-1] == chunks[-1].total_bytes == path.stat().st_size
    assert sum(len(chunk.X) for chunk in chunks) == 100


rows_strategy = st.lists(
    st.tuples(
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(-(10**9), 10**9),
        st.sampled_from([0, 1]),
    ),
    min_size=1,
    max_size=60,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_strategy, chunk_rows=st.integers(1, 20), blank_every=st.integers(2, 9))
def test_iter_table_chunks_concatenate_to_load_table(
    tmp_path: Path, rows: list[tuple[float, int, int]], chunk_rows: int, blank_every: int
) -> None:
    csv_lines = ["a,b,label"]
    json_lines = []
    for number, (a, b, label) in enumerate(rows):
        if number % blank_every == 0:
            csv_lines.append("")
            json_lines.append("")
        csv_lines.append(f"{a!r},{b},{label}")
        json_lines.append(orjson.dumps({"a": a, "b": b, "label": label}).decode())
    expected_x = [[float(a), float(b)] for a, b, _ in rows]
    expected_y = [label for _, _, label in rows]
    for name, lines in (("t.csv", csv_lines), ("t.jsonl", json_lines)):
        path = write(tmp_path, name, "\n".join(lines) + "\n")
        table = load_table(path)
        chunks = list(iter_table(path, chunk_rows=chunk_rows))
        chunk_ys = [chunk.y for chunk in chunks if chunk.y is not None]
        assert len(chunk_ys) == len(chunks) and table.y is not None
        assert np.array_equal(np.concatenate([chunk.X for chunk in chunks]), table.X)
        assert np.array_equal(np.concatenate(chunk_ys), table.y)
        assert all(chunk.features == ["a", "b"] for chunk in chunks)
        assert table.X.tolist() == expected_x
        assert table.y.tolist() == expected_y


def test_nab_csv_from_reference_data(shared_data: Path) -> None:
    path = (
        shared_data / "nab" / "data" / "realKnownCause" / "machine_temperature_system_failure.csv"
    )
    if not path.exists():
        pytest.skip(f"reference data not found at {path}")
    table = load_table(path)
    # The timestamp column is text, so the one numeric column is the feature.
    assert table.features == ["value"]
    n_rows = sum(1 for line in path.read_bytes().splitlines()[1:] if line.strip())
    assert table.X.shape == (n_rows, 1)
    assert table.y is None
    assert np.isfinite(table.X).all()


# ---------------------------------------------------------------- fields left out of the features


@pytest.mark.parametrize(
    ("name", "text", "line", "message"),
    [
        (
            "t.csv",
            "a,b\n1,x\n2,3\n",
            3,
            "column 'b' holds a number (3) but is not a feature: the first data row (line 2), "
            "which decides the features, has 'x' there; fix that row or choose the features",
        ),
        ("t.csv", "a,b\n1,\n2,3\n", 3, "column 'b' holds a number (3) but is not a feature"),
        ("t.csv", "a,b\n\n1, \n2,x\n3,-4.5e1\n", 5, "has an empty cell there"),
        ("t.csv", 'a,b\n1,"x,y"\n2,"7"\n', 3, "column 'b' holds a number (7)"),
        ("t.jsonl", '{"a": 1, "b": "x"}\n{"a": 2, "b": 3}\n', 2, "field 'b' holds a number (3)"),
        ("t.jsonl", '{"a": 1}\n{"a": 2, "c": 0.5}\n', 2, "the first data row (line 1), which "),
        ("t.jsonl", '{"a": 1, "b": null}\n{"a": 2, "b": 3}\n', 2, "has null there"),
        # The earliest problem is reported, whichever rule it breaks.
        ("t.csv", "a,b\n1,x\n2,3\n4,y,z\n", 3, "column 'b' holds a number"),
        ("t.csv", "a,b\n1,x\n2,y,z\n4,5\n", 3, "expected 2 columns as in the header, got 3"),
    ],
)
def test_a_number_in_a_field_left_out_is_an_error(
    tmp_path: Path, name: str, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, name, text)
    error = raise_message(path)
    assert (error.source, error.line) == (str(path), line)
    assert message in str(error)


def test_fields_that_never_hold_numbers_are_ignored_and_listed(tmp_path: Path) -> None:
    csv_path = write(
        tmp_path,
        "t.csv",
        ",host,a,time,label,b\n0,web-1,1,2024-01-01T00:00:00Z,0,x\n1,web-2,2,,1,nan\n"
        "2,web-3,3,2024-01-01T00:01:00Z,0,inf\n",
    )
    table = load_table(csv_path)
    # The unnamed index column holds numbers but is never a feature; nan and inf are no
    # finite numbers, so a text column may hold them.
    assert table.features == ["a"]
    assert table.ignored_columns == ["host", "time", "b"]
    json_path = write(
        tmp_path,
        "t.jsonl",
        '{"host": "a", "x": 1, "label": 0}\n{"host": "b", "x": 2, "tags": [1], "ok": true, '
        '"label": 1}\n',
    )
    table = load_table(json_path)
    assert table.features == ["x"]
    assert table.ignored_columns == ["host", "tags", "ok"]


def test_explicit_features_ignore_the_other_columns_whatever_they_hold(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "a,b,c,label\n1,,5,0\n2,3,x,1\n")
    table = load_table(path, features=["a"])
    assert table.X.tolist() == [[1.0], [2.0]]
    assert table.ignored_columns == ["b", "c"]
    json_path = write(tmp_path, "t.jsonl", '{"a": 1}\n{"a": 2, "b": 3}\n')
    table = load_table(json_path, features=["a"])
    assert table.ignored_columns == ["b"]


def test_a_late_number_is_found_in_a_later_chunk(tmp_path: Path) -> None:
    rows = [f"{i},web-{i}" for i in range(50)] + ["50,51"]
    path = write(tmp_path, "t.csv", "a,host\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError) as raised:
        list(iter_table(path, chunk_rows=7))
    assert raised.value.line == 52
    assert "column 'host' holds a number (51)" in str(raised.value)


def test_a_table_read_from_a_pipe_loads(tmp_path: Path) -> None:
    # /dev/stdin or <(...): asking the pipe for its position raised "Illegal seek", a traceback.
    pipe = tmp_path / "events"
    os.mkfifo(pipe)
    text = "x,y,label\n1,2,0\n3,4,1\n"
    writer = threading.Thread(target=pipe.write_text, args=(text,), daemon=True)
    writer.start()
    try:
        chunks = list(iter_table(pipe))
    finally:
        writer.join(timeout=10)
    assert [chunk.X.tolist() for chunk in chunks] == [[[1.0, 2.0], [3.0, 4.0]]]
    assert chunks[-1].bytes_read == len(text) and chunks[-1].total_bytes == 0
