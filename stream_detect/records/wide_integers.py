"""Integers wider than 64 bits in a JSON line, read exactly.

orjson, which parses every JSON line here, holds an integer only in
``[-2**63, 2**64 - 1]``: it reads a wider one (a 30-digit id, say) as the
nearest float. So the lines that may hold such an integer are parsed again
by the standard library's ``json``, which keeps every integer exact and
reads everything else as orjson does (the line has passed orjson already, so
it is valid UTF-8 without NaN or lone surrogates; both round floats
correctly; the last of a duplicated key wins in both). A key or an id is
then its own digits, so two 30-digit ids that differ in the last digit stay
two ids, and an event's fields are written back as they came; a feature is
``float`` of the integer, the nearest double, which is what orjson reads.

A line *may hold* a wide integer when it has a run of at least
:data:`WIDE_DIGITS` digits (the fewest a wide integer has:
``-9223372036854775809``) just after what can come before a JSON number:
``:``, ``,``, ``[`` or white space, then perhaps a minus sign. So the long
digit runs of a fraction (``0.000123...``), of a string that starts with
digits or of a word do not count. :data:`WIDE_LITERAL` says it as a pattern
for one line (:func:`load_exact` parses one line with it);
:func:`lines_with_wide_integers` finds such lines in a batch in a few numpy
passes, about ten times faster than the pattern line by line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import orjson

__all__ = ["WIDE_DIGITS", "WIDE_LITERAL", "exact_events", "lines_with_wide_integers", "load_exact"]

#: The fewest digits an integer beyond orjson's 64 bits has (2**63 has 19).
WIDE_DIGITS: Final = 19

# What may come just before a JSON number's digits (its sign aside).
_BEFORE_NUMBER: Final = np.zeros(256, dtype=bool)
_BEFORE_NUMBER[list(b":,[ \t\r\n")] = True
_MINUS: Final = ord("-")
_ZERO: Final = ord("0")
# Two empty lines in front, joined by newlines: every digit run has two bytes before it.
_LEAD: Final = (b"", b"")
#: The rule for one line, as a pattern; :func:`lines_with_wide_integers` is its batch form.
WIDE_LITERAL: Final = re.compile(rb"(?:^|(?<=[:,\[ \t\r\n]))-?[0-9]{%d}" % WIDE_DIGITS)


def lines_with_wide_integers(payloads: Sequence[bytes]) -> list[int]:
    """The indices of the lines that may hold an integer wider than 64 bits (see the module).

    >>> lines_with_wide_integers([b'{"id": 123456789012345678901234567890}', b'{"id": 7}',
    ...                           b'{"x": -18446744073709551616}', b'{"x": 0.00012345678901234567}',
    ...                           b'{"s": "12345678901234567890"}'])
    [0, 2]
    """
    if not payloads:
        return []
    text = np.frombuffer(b"\n".join([*_LEAD, *payloads]), dtype=np.uint8)
    digit = (text - _ZERO) < 10  # uint8 arithmetic wraps: bytes below "0" become large
    # run[i]: the WIDE_DIGITS bytes from i on are all digits. Spans 2, 4, 8, 16, then 19.
    run = digit
    for shift in (1, 2, 4, 8, WIDE_DIGITS - 16):
        run = run[:-shift] & run[shift:]
    if not run.any():
        return []
    starts = np.flatnonzero(run)
    before = text[starts - 1]
    number = _BEFORE_NUMBER[before] | ((before == _MINUS) & _BEFORE_NUMBER[text[starts - 2]])
    if not number.any():
        return []
    lengths = np.fromiter(map(len, payloads), dtype=np.intp, count=len(payloads))
    line_starts = len(_LEAD) + np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    lines = np.searchsorted(line_starts, starts[number], side="right") - 1
    return [int(line) for line in np.unique(lines)]


def load_exact(payload: bytes) -> Any:
    """``orjson.loads(payload)``, except that integers wider than 64 bits stay exact.

    Raises what ``orjson.loads`` raises for a line it refuses.

    >>> load_exact(b'{"id": 123456789012345678901234567890, "x": 0.5}')
    {'id': 123456789012345678901234567890, 'x': 0.5}
    >>> load_exact(b'{"x": 2}')
    {'x': 2}
    """
    parsed = orjson.loads(payload)
    if WIDE_LITERAL.search(payload) is None:
        return parsed
    return _reparsed(payload, parsed)


def exact_events(events: list[dict[str, Any]], payloads: Sequence[bytes]) -> list[dict[str, Any]]:
    """``events`` (orjson's parse of ``payloads``, line for line), wide integers made exact.

    The list is returned as it is when no line may hold a wide integer;
    otherwise a copy in which those lines' events are parsed again.

    >>> lines = [b'{"x": 1}', b'{"x": 2, "id": -36893488147419103232}']
    >>> events = [orjson.loads(line) for line in lines]
    >>> events[1]["id"], exact_events(events, lines)[1]["id"]
    (-3.6893488147419103e+19, -36893488147419103232)
    """
    wide = lines_with_wide_integers(payloads)
    if not wide:
        return events
    exact = list(events)
    for i in wide:
        exact[i] = _reparsed(payloads[i], events[i])
    return exact


def _reparsed(payload: bytes, parsed: Any) -> Any:
    """The line read by ``json`` (exact integers), or orjson's ``parsed`` if ``json`` cannot.

    ``json`` nests less deep than orjson before giving up (a RecursionError):
    such a line keeps orjson's reading.
    """
    try:
        return json.loads(payload.decode("utf-8"))
    except (RecursionError, ValueError):
        return parsed
