"""A generator of hostile records (bad JSON and CSV of many kinds) mixed into good streams.

Each bad kind is one way a producer gets a record wrong; the decoders must
send every one of them to the dead letters with its position and a reason,
and score the good records around them exactly as if the bad ones were not there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Maker = Callable[[np.random.Generator], bytes]


def _num(rng: np.random.Generator) -> str:
    return repr(float(rng.normal()))


#: Bad JSON lines for features a, b (label field "label"), by kind.
BAD_JSON: dict[str, Maker] = {
    "truncated object": lambda r: b'{"a": %s, "b":' % _num(r).encode(),
    "array": lambda r: b"[%s, %s]" % (_num(r).encode(), _num(r).encode()),
    "bare number": lambda r: _num(r).encode(),
    "bare string": lambda r: b'"hello"',
    "null document": lambda r: b"null",
    "missing feature": lambda r: b'{"a": %s}' % _num(r).encode(),
    "empty object": lambda r: b"{}",
    "string feature": lambda r: b'{"a": "high", "b": %s}' % _num(r).encode(),
    "numeric string": lambda r: b'{"a": "1.5", "b": %s}' % _num(r).encode(),
    "null feature": lambda r: b'{"a": null, "b": 1.0}',
    "bool feature": lambda r: b'{"a": true, "b": 1.0}',
    "nested feature": lambda r: b'{"a": {"v": 1}, "b": 1.0}',
    "list feature": lambda r: b'{"a": [1], "b": 1.0}',
    "NaN literal": lambda r: b'{"a": NaN, "b": 1.0}',
    "Infinity literal": lambda r: b'{"a": Infinity, "b": 1.0}',
    "overflowing number": lambda r: b'{"a": 1e999, "b": 1.0}',
    "invalid UTF-8": lambda r: b'{"a": 1.0, "b": 2.0, "s": "\xff\xfe"}',
    "lone surrogate escape": lambda r: b'{"a": 1.0, "b": 2.0, "s": "\\ud800"}',
    "trailing garbage": lambda r: b'{"a": 1.0, "b": 2.0} x',
    "two objects": lambda r: b'{"a": 1.0, "b": 2.0}{"a": 1.0, "b": 2.0}',
    "single quotes": lambda r: b"{'a': 1.0, 'b': 2.0}",
    "unquoted keys": lambda r: b"{a: 1.0, b: 2.0}",
    "trailing comma": lambda r: b'{"a": 1.0, "b": 2.0,}',
    "hex number": lambda r: b'{"a": 0x10, "b": 2.0}',
    "leading zero": lambda r: b'{"a": 01, "b": 2.0}',
    "bad label": lambda r: b'{"a": 1.0, "b": 2.0, "label": 7}',
    "text label": lambda r: b'{"a": 1.0, "b": 2.0, "label": "yes"}',
    "NUL byte": lambda r: b'{"a": 1.0, "b": 2.0}\x00',
    "control character in string": lambda r: b'{"a": 1.0, "b": 2.0, "s": "\x01"}',
    "over-long line": lambda r: b'{"a": 1.0, "b": 2.0, "pad": "' + b"z" * 5000 + b'"}',
    "deep nesting": lambda r: b'{"a": 1.0, "b": 2.0, "n": ' + b"[" * 2000 + b"]" * 2000 + b"}",
}

#: Bad CSV rows under the header ``a,b``, by kind (``1_000`` is not read as a number).
BAD_CSV: dict[str, Maker] = {
    "too few columns": lambda r: _num(r).encode(),
    "too many columns": lambda r: b"1.0,2.0,3.0",
    "decimal comma": lambda r: b"1,5,2.0",
    "text cell": lambda r: b"high,2.0",
    "empty cell": lambda r: b",2.0",
    "digit separator": lambda r: b"1_000,2.0",
    "nan": lambda r: b"nan,2.0",
    "inf": lambda r: b"1.0,-inf",
    "hex": lambda r: b"0x10,2.0",
    "fullwidth digits": lambda r: "１２,2.0".encode(),
    "unterminated quote": lambda r: b'"1.0,2.0',
    "invalid UTF-8": lambda r: b"1.0,\xff",
    "NUL byte": lambda r: b"1.0,2\x00",
    "overflow": lambda r: b"1e999,2.0",
    "over-long line": lambda r: b"1.0," + b"2" * 5000,
}
BLANKS = [b"", b"   ", b"\t"]


@dataclass
class Mixed:
    """A mixed stream: its lines, and which line numbers (1-based) are good, bad or blank."""

    lines: list[bytes]
    good: list[int]
    bad: dict[int, str]
    blank: list[int]


def good_json(rng: np.random.Generator) -> bytes:
    a, b = rng.normal(size=2).tolist()
    if rng.random() < 0.01:
        a += 9.0
    return b'{"a": %r, "b": %r}' % (a, b)


def good_csv(rng: np.random.Generator) -> bytes:
    a, b = rng.normal(size=2).tolist()
    return b"%r,%r" % (a, b)


def mixed_stream(
    count: int,
    bad_kinds: dict[str, Maker],
    good: Maker,
    *,
    seed: int,
    bad_share: float = 0.25,
    blank_share: float = 0.03,
    first_line: int = 1,
) -> Mixed:
    """``count`` lines: good ones, bad ones of every kind (each at least once), blanks."""
    rng = np.random.default_rng(seed)
    kinds = sorted(bad_kinds)
    out = Mixed([], [], {}, [])
    for i in range(count):
        line_no = first_line + i
        draw = rng.random()
        if i < len(kinds) * 2 and i % 2 == 1:
            kind = kinds[i // 2]  # every kind early on, between good records
        elif draw < bad_share:
            kind = kinds[int(rng.integers(len(kinds)))]
        elif draw < bad_share + blank_share:
            out.lines.append(BLANKS[int(rng.integers(len(BLANKS)))])
            out.blank.append(line_no)
            continue
        else:
            kind = ""
        if kind:
            out.lines.append(bad_kinds[kind](rng))
            out.bad[line_no] = kind
        else:
            out.lines.append(good(rng))
            out.good.append(line_no)
    return out
