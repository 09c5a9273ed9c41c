"""JSON lines: one JSON object per record, its fields read by the JSON field rules.

:class:`JsonLines` is the JSON half of :class:`~stream_detect.records.RecordDecoder`:
it parses records and reads their fields, one record at a time (the exact
path, which says why a record is bad) or a whole batch at once (the fast path,
which gives up, returning None, at the first doubt). Both parse integers
wider than 64 bits exactly (:mod:`~stream_detect.records.wide_integers`), so
a key or an id holding one is its own digits, and a feature holding one is
the nearest double, as orjson reads it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final

import orjson

from stream_detect.field_names import is_blank
from stream_detect.records.feature_values import NUMBER_TYPES, json_number, picked_flat
from stream_detect.records.field_paths import (
    column,
    get,
    has_path,
    leaves,
    optional_column,
    picker,
)
from stream_detect.records.hidden_characters import hidden_character_note
from stream_detect.records.keys_and_ids import json_id, json_key, optional_texts, texts
from stream_detect.records.labels import JSON_LABELS, json_label
from stream_detect.records.line_ends import lone_carriage_return, lone_carriage_return_note
from stream_detect.records.reject import Reject, json_kind
from stream_detect.records.roles import FieldRoles
from stream_detect.records.wide_integers import exact_events, load_exact

__all__ = ["MAX_JSON_DEPTH", "JsonLines"]

#: The deepest a line's arrays and objects may nest (orjson's limit): deeper is a bad record.
MAX_JSON_DEPTH: Final = 1024
#: What orjson says of a line nested deeper than :data:`MAX_JSON_DEPTH`.
_TOO_DEEP: Final = "depth limit exceeded"
#: What orjson says of a line that ends inside its value.
_CUT_SHORT: Final = "unexpected end of data"
#: Said of an array, or a line ending inside an object or array: likely a whole
#: file's array, or pretty-printed JSON, where JSON lines were expected.
_ONE_PER_LINE: Final = "JSON lines hold one whole object per line"

#: A line of closing (or lone opening) brackets and commas: pretty-printed JSON's.
_BRACKETS_ONLY: Final = re.compile(r"\s*[\[\]{}][\s\[\]{},]*")
#: A line that starts with an object's member, ``"name":``: pretty-printed JSON's.
_MEMBER_START: Final = re.compile(r'\s*"(?:[^"\\]|\\.)*"\s*:')

Event = dict[str, Any]


class JsonLines:
    """Read JSON-line records: parse them, find their numeric fields, read each field.

    >>> fmt = JsonLines(FieldRoles(label_field="label"))
    >>> event = fmt.parse(b'{"x": 1, "label": 1}')
    >>> fmt.numeric_fields(event), fmt.label(event)
    (['x'], 1)
    >>> fmt.parse(b"[1, 2]")
    Traceback (most recent call last):
    ...
    stream_detect.records.reject.Reject: expected a JSON object, got an array (JSON lines hold \
one whole object per line; jq -c '.[]' writes an array's objects so)
    """

    name = "json"

    def __init__(self, roles: FieldRoles) -> None:
        self.roles = roles
        self.features: list[str] = []
        self._pick: Callable[[Sequence[Event]], list[Any]] | None = None

    def bind(self, features: list[str]) -> None:
        """Read these features from now on."""
        self.features = features
        # Dotted names are looked up member by member; flat ones by one itemgetter.
        self._pick = picker(features) if any(map(has_path, features)) else None

    # -- one record --------------------------------------------------------------------

    def parse(self, payload: bytes) -> Event:
        """The JSON object on one line; Reject saying what is wrong with the line."""
        try:
            event = load_exact(payload)
        except orjson.JSONDecodeError as error:
            raise Reject(_invalid_json_reason(payload, error)) from None
        if type(event) is list:
            raise Reject(
                f"expected a JSON object, got an array ({_ONE_PER_LINE}; jq -c '.[]' writes "
                "an array's objects so)"
            )
        if type(event) is not dict:
            raise Reject(f"expected a JSON object, got {json_kind(event)}")
        return event

    def numeric_fields(self, event: Event) -> list[str]:
        """The fields holding JSON numbers, leaving out the fields with a role or a blank name.

        The members of nested objects count as fields, by dotted name
        (:func:`~stream_detect.records.field_paths.leaves`).

        Called only while the features are being chosen, never per event
        once they are fixed. A field named ``""`` or blank is never a feature
        (:func:`~stream_detect.field_names.is_blank`), as a CSV column
        without a name is not.
        """
        return [
            name
            for name, value in leaves(event, self.roles.reserved)
            if type(value) in NUMBER_TYPES and not is_blank(name)
        ]

    def filled_fields(self, event: Event) -> list[str]:
        """The fields holding any value but null, leaving out those :meth:`numeric_fields` does."""
        return [
            name
            for name, value in leaves(event, self.roles.reserved)
            if value is not None and not is_blank(name)
        ]

    def numbers(self, event: Event) -> list[int | float]:
        """The features of one event."""
        return [json_number(event, name) for name in self.features]

    def label(self, event: Event) -> int:
        """The event's label, -1 for none."""
        return json_label(event, self.roles.label_field)

    def key(self, event: Event, name: str) -> str:
        """The event's key."""
        return json_key(event, name)

    def ident(self, event: Event, name: str) -> str | None:
        """The event's id, None for none."""
        return json_id(event, name)

    def timestamp(self, event: Event, name: str) -> Any:
        """The event's timestamp as written, None for none."""
        return get(event, name)

    def to_dicts(
        self, events: list[Event], values: Any, payloads: Sequence[bytes], *, lazy: bool = False
    ) -> list[Event]:
        """The events' original fields, for output: the events themselves, parsed exactly."""
        return events

    # -- a whole batch: None at the first doubt ------------------------------------------

    def parse_all(self, payloads: list[bytes]) -> list[Event] | None:
        """Every line's JSON object, or None."""
        try:
            events: list[Any] = list(map(orjson.loads, payloads))
        except orjson.JSONDecodeError:
            return None
        if set(map(type, events)) != {dict}:
            return None
        return exact_events(events, payloads)

    def all_numbers(self, events: list[Event]) -> list[int | float] | None:
        """Every event's features, row after row, or None."""
        try:
            flat = picked_flat(events, self.features) if self._pick is None else self._pick(events)
        except KeyError:
            return None
        return flat if set(map(type, flat)) <= NUMBER_TYPES else None

    def all_labels(self, events: list[Event]) -> list[int] | None:
        """Every event's label (with a label field), or None."""
        name = self.roles.label_field
        assert name is not None
        try:
            return [JSON_LABELS[value] for value in optional_column(events, name)]
        except (KeyError, TypeError):
            return None

    def all_keys(self, events: list[Event], name: str) -> list[str] | None:
        """Every event's key, or None."""
        try:
            return texts(column(events, name))
        except KeyError:
            return None

    def all_idents(self, events: list[Event], name: str) -> list[str | None] | None:
        """Every event's id, or None."""
        return optional_texts(optional_column(events, name))


def _invalid_json_reason(payload: bytes, error: orjson.JSONDecodeError) -> str:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as bad_utf8:
        return f"invalid UTF-8 at byte {bad_utf8.start}"
    # Parse again without the line ending a file reader leaves on, so that "at
    # character N" counts within the line as the user sees it.
    try:
        orjson.loads(payload.rstrip(b"\r\n"))
    except orjson.JSONDecodeError as within_line:
        error = within_line
    if error.msg == _TOO_DEEP:
        # Valid JSON, maybe, but deeper than is read: "invalid" would send the user
        # looking for a syntax error.
        return (
            f"arrays and objects nested more than {MAX_JSON_DEPTH} deep (at character "
            f"{error.pos}): JSON is read to {MAX_JSON_DEPTH} levels at most"
        )
    reason = f"invalid JSON at character {error.pos}: {error.msg}"
    text = error.doc
    if error.msg == _CUT_SHORT and text.lstrip().startswith(("{", "[")):
        return (
            f"{reason} (the line ends inside its value: {_ONE_PER_LINE}; pretty-printed "
            "JSON spreads one over several, jq -c writes one per line)"
        )
    hidden = hidden_character_note(text)
    if hidden is not None:
        return f"{reason} ({hidden})"
    if _is_pretty_printed_piece(text):
        return (
            f"{reason} (a piece of pretty-printed JSON, it seems: {_ONE_PER_LINE}, "
            "jq -c writes one per line)"
        )
    # A lone \r that ends a whole JSON value was meant as a line end (the
    # records of a file with lone \r line ends): say so.
    carriage_return = lone_carriage_return(text)
    if carriage_return is not None and _is_json(text[:carriage_return]):
        reason += f" ({lone_carriage_return_note(carriage_return)})"
    return reason


def _is_pretty_printed_piece(text: str) -> bool:
    """Whether an invalid line looks like an inner line of pretty-printed JSON.

    Such lines are only brackets and commas (``}``, ``},``, ``]}``), a member
    (``"x": 1,``, ``"y": {``) or a value followed by a comma (``3,`` in an array).

    >>> [_is_pretty_printed_piece(line) for line in ['  }', '  "x": 1,', '  "n": [', '3,']]
    [True, True, True, True]
    >>> [_is_pretty_printed_piece(line) for line in ['{"x": 1', 'x', '{"x": 1}}', ',']]
    [False, False, False, False]
    """
    if _BRACKETS_ONLY.fullmatch(text) or _MEMBER_START.match(text):
        return True
    value, comma, after = text.rstrip().rpartition(",")
    return bool(comma) and not after and value.strip() != "" and _is_json(value)


def _is_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True
