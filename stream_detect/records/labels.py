"""The label rule, in every command: 1 (or true) is an anomaly, 0 (or false) normal.

Null, an absent field or an empty cell means the event is unlabelled (-1),
which any event may be. :func:`json_label` reads a JSON value and
:func:`cell_label` a CSV cell; the bulk lookup tables (:data:`JSON_LABELS`,
:data:`CELL_LABELS`) accept only what these exact rules accept. A refused
label raises :class:`~stream_detect.records.reject.Reject`.
"""

from __future__ import annotations

import math
from typing import Any, Final

from stream_detect.records.field_paths import get
from stream_detect.records.reject import Reject, json_text

__all__ = ["CELL_LABELS", "JSON_LABELS", "cell_label", "json_label"]

#: A JSON label value to its label. Hash-equal keys make True/1/1.0 and
#: False/0/0.0 all hit; anything else is a KeyError (or TypeError when unhashable).
JSON_LABELS: Final[dict[Any, int]] = {None: -1, 0: 0, 1: 1}
#: A CSV label cell, exactly as written, to its label: the common spellings,
#: for the bulk path; :func:`cell_label` accepts the rest of what the rule allows.
CELL_LABELS: Final[dict[str, int]] = {
    "": -1,
    "0": 0,
    "1": 1,
    "0.0": 0,
    "1.0": 1,
    "false": 0,
    "true": 1,
    "False": 0,
    "True": 1,
    "FALSE": 0,
    "TRUE": 1,
}
_LABEL_RULE: Final = "expected 0, 1, true or false"


def json_label(event: dict[str, Any], name: str | None) -> int:
    """The label of a JSON event (-1 unlabelled); -1 when there is no label field.

    >>> json_label({"label": True}, "label"), json_label({}, "label"), json_label({}, None)
    (1, -1, -1)
    """
    if name is None:
        return -1
    value = get(event, name)
    try:
        return JSON_LABELS[value]
    except (KeyError, TypeError):
        raise Reject(
            f"label {name!r} is {json_text(value)}; {_LABEL_RULE} (null or absent for unlabelled)"
        ) from None


def cell_label(cell: str, name: str) -> int:
    """The label in a CSV cell (-1 for an empty cell): 0/1, true/false in any case, 0.0/1.0.

    >>> cell_label(" TRUE ", "label"), cell_label("", "label"), cell_label("1e0", "label")
    (1, -1, 1)
    """
    text = cell.strip()
    label = CELL_LABELS.get(text.lower())
    if label is not None:
        return label
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if number in (0.0, 1.0):
        return int(number)
    raise Reject(f"label {name!r} is {cell[:60]!r}; {_LABEL_RULE} (empty for unlabelled)")
