"""A refused record: :class:`Reject`, and how its reason names a JSON value.

The field rules (:mod:`~stream_detect.records.feature_values`,
:mod:`~stream_detect.records.labels`, :mod:`~stream_detect.records.keys_and_ids`)
and the formats' readers raise :class:`Reject` with a sentence saying what is
wrong with which field; the decoders turn it into a
:class:`~stream_detect.records.batch.BadRecord`. :func:`json_kind` and
:func:`json_text` name the value a JSON field held, so every such sentence
names it the same way.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["Reject", "json_kind", "json_text"]


class Reject(Exception):
    """One record is bad; ``reason`` says why. The decoders turn it into a bad record.

    >>> Reject("feature 'x' is empty").reason
    "feature 'x' is empty"
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def json_kind(value: Any) -> str:
    """Name a JSON value's kind for a message.

    >>> json_kind([1]), json_kind(None), json_kind(True), json_kind(2.5)
    ('an array', 'null', 'a boolean', 'a number')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a number"


def json_text(value: Any, limit: int = 60) -> str:
    """A value as JSON text, cut to ``limit`` characters for a message.

    >>> json_text([1, "a"]), json_text("x" * 80, limit=8)
    ('[1,"a"]', '"xxxxxxx...')
    >>> json_text({"id": -(2**63) - 1})
    '{"id":-9223372036854775809}'
    """
    try:
        text = orjson.dumps(value).decode("utf-8")
    except TypeError:
        # An integer wider than 64 bits, read exactly (wide_integers): orjson does not
        # write one, the standard library does (at most about 310 digits: a longer
        # number is refused as beyond the float range before any field is read).
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else f"{text[:limit]}..."
