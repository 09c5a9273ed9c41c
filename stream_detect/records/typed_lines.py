"""JSON lines decoded a whole batch at a time by msgspec, into the columns the detector needs.

Once the features are known, a batch of JSON lines can be decoded in one
msgspec call into typed structs, checked in C as they are read: a feature is
a ``float`` (a JSON number, never a bool, a string or null), a key, id or
timestamp a scalar, every other field a scalar too. No dict is built per
event; the decoder parses an event's own fields later, only if it is written
(:class:`~stream_detect.records.lazy_records.LazyRecords`).

Like the other bulk path, this one may only accept what the record-by-record
path accepts, with the same values; it gives up (returns None) at any doubt:

* The common batch, lines that each start with ``{`` and end with ``}``, is
  joined with newlines and read by msgspec's ``decode_lines`` (which reads
  JSON values separated by any whitespace). No object can reach from one
  line into the next: a JSON string cannot hold a raw newline, so the ``}``
  ending a line, just before a joining newline, is outside any string, and
  a ``{`` may follow it only where an object ended at the top level. So each
  line holds whole objects, at least one, and a line holding more than one
  shows as more objects than lines. The braces are looked up where the
  lines' lengths put them, not searched for: a newline inside a line (one
  object, or two, on either side of it) cannot move a boundary. Any other
  batch is joined as ``[[line],[line],...]`` with a newline in each
  separator, for the same reasons plus one: an object of scalars (and of
  objects of scalars) cannot hold a ``]``.
* Every field of an event must have a type: msgspec skips unknown fields
  without checking their UTF-8 or whether their numbers overflow, which
  orjson refuses. Fields beyond the features and roles are learned from the
  batch that first has them (:data:`MAX_OTHER_FIELDS` at most) and typed
  ``str | float | bool | None``; a nested object or array there gives up.
* A dotted feature or role (``cpu.user``) is a member of a nested struct
  (:mod:`~stream_detect.records.typed_events`), whose other members are
  learned as the top-level ones are. An event with a top-level field named
  as a dotted feature or role, which the name would read instead of the
  member (:mod:`~stream_detect.records.field_paths`), gives up.
* Integers in a key, id, timestamp or label must fit in 64 bits signed
  (orjson turns larger ones into floats, msgspec does not).
* msgspec reads a JSON integer in a ``float`` field exactly as numpy turns
  orjson's Python int into a float64 (both round to nearest, ties to even),
  and a number beyond the float range is an error in both; last of a
  duplicated key wins in both.

A batch that gives up goes down the orjson bulk path, then record by record.
After a run of batches that gave up (nested fields the features do not
reach into, in every event, say), the
next tries wait longer and longer: 1, 3, 7 ... up to 63 batches.
"""

from __future__ import annotations

import operator
from itertools import chain
from typing import Any, Final, NamedTuple

import msgspec
import numpy as np
import orjson
from numpy.typing import NDArray

from stream_detect.records.batch import FloatMatrix, LabelArray
from stream_detect.records.field_paths import has_path
from stream_detect.records.keys_and_ids import optional_texts, texts
from stream_detect.records.labels import JSON_LABELS
from stream_detect.records.roles import FieldRoles
from stream_detect.records.typed_events import EventLayout, Path, event_layout, new_members

__all__ = ["MAX_OTHER_FIELDS", "Columns", "TypedLines"]

#: Fields an event may have beyond its features and roles; more, and this path is off.
MAX_OTHER_FIELDS: Final = 64
#: The longest wait between tries after batches that gave up, in batches.
MAX_WAIT: Final = 63

_OPEN: Final = b"[["
_SEPARATOR: Final = b"]\n,["
_CLOSE: Final = b"]]"
_NEWLINE: Final = b"\n"
_OPEN_BRACE: Final = ord("{")
_CLOSE_BRACE: Final = ord("}")
_first = operator.itemgetter(0)
IntArray = NDArray[np.intp]


class Columns(NamedTuple):
    """A batch's columns, row for row: what :class:`~stream_detect.records.Decoded` holds."""

    values: FloatMatrix
    labels: LabelArray
    keys: list[str] | None
    ids: list[str | None] | None
    timestamps: list[Any] | None


class TypedLines:
    """Decode batches of JSON lines with these features into :class:`Columns`, or give up.

    >>> typed = TypedLines(FieldRoles(key_field="host"), ["cpu", "mem"])
    >>> columns = typed.decode([b'{"cpu": 0.5, "mem": 2, "host": "a", "label": true}',
    ...                         b'{"mem": 3, "cpu": -1e-3, "host": 7}'])
    >>> columns.values.tolist(), columns.labels.tolist(), columns.keys
    ([[0.5, 2.0], [-0.001, 3.0]], [1, -1], ['a', '7'])
    >>> typed.decode([b'{"cpu": true, "mem": 2, "host": "a"}']) is None
    True
    >>> typed.decode([b'{"cpu": 1, "mem": 2, "host": "a", "note": "learned"}']).keys
    ['a']
    >>> typed.other_fields
    ('note',)
    """

    def __init__(self, roles: FieldRoles, features: list[str]) -> None:
        self.roles = roles
        self.features = list(features)
        self._decoder: msgspec.json.Decoder[list[tuple[Any]]] | None = None
        self._line_decoder: msgspec.json.Decoder[Any] | None = None
        self._layout: EventLayout | None = None
        self._others: tuple[Path, ...] = ()
        self._usable = bool(features)
        # A top-level field named as a dotted feature or role is read instead of the
        # member: events holding one are left to the other paths.
        role_fields = roles.as_mapping().values()
        self._dotted = frozenset(
            name for name in (*features, *role_fields) if name is not None and has_path(name)
        )
        self._failures = 0
        self._wait = 0
        self._build(())

    @property
    def other_fields(self) -> tuple[str, ...]:
        """The fields beyond the features and roles learned so far, in the order first seen.

        A member of a nested object is named by its dotted path.
        """
        return tuple(".".join(path) for path in self._others)

    @property
    def usable(self) -> bool:
        """False once this path cannot serve the stream (a field name msgspec cannot take)."""
        return self._usable

    def decode(self, payloads: list[bytes], lengths: IntArray | None = None) -> Columns | None:
        """The columns of a batch of lines, or None if any line is in doubt (see the module).

        ``lengths`` are the payloads' lengths, if the caller has them already.
        """
        if not self._usable or not payloads:
            return None
        if self._wait:
            self._wait -= 1
            return None
        if lengths is None:
            lengths = np.fromiter(map(len, payloads), np.intp, len(payloads))
        columns = self._decode(payloads, lengths)
        if columns is None:
            self._failures = min(self._failures + 1, MAX_WAIT.bit_length() + 1)
            self._wait = min((1 << (self._failures - 1)) - 1, MAX_WAIT)
        else:
            self._failures = 0
        return columns

    def _decode(self, payloads: list[bytes], lengths: IntArray) -> Columns | None:
        events = self._events(payloads, lengths)
        if events is None:
            return None
        n = len(payloads)
        d = len(self.features)
        # One pass over the events in C: each event's features as a tuple, the tuples
        # chained into numpy's iterator. A column at a time reads every event d times,
        # and the events lie scattered over memory.
        layout = self._layout
        assert layout is not None
        rows = map(layout.row, events)
        flat = chain.from_iterable(rows) if d > 1 else rows
        values = np.fromiter(flat, np.float64, n * d).reshape(n, d)
        written = [] if layout.label is None else list(map(layout.label, events))
        if written.count(None) == len(written):  # no label at all, the common case
            labels = np.full(n, -1, dtype=np.int8)
        else:
            try:
                labels = np.fromiter(map(JSON_LABELS.__getitem__, written), np.int8, n)
            except KeyError:
                return None
        keys = ids = timestamps = None
        if layout.key is not None:
            keys = texts(list(map(layout.key, events)))
            if keys is None:
                return None
        if layout.ident is not None:
            ids = optional_texts(list(map(layout.ident, events)))
            if ids is None:
                return None
        if layout.timestamp is not None:
            timestamps = list(map(layout.timestamp, events))
        return Columns(values, labels, keys, ids, timestamps)

    def _events(self, payloads: list[bytes], lengths: IntArray) -> list[Any] | None:
        """One typed struct per line, or None if the batch does not decode line for line."""
        n = len(payloads)
        joined = _NEWLINE.join(payloads)
        one_per_line = _braced(joined, lengths)
        if not one_per_line:
            joined = _OPEN + _SEPARATOR.join(payloads) + _CLOSE
        try:
            events = self._parse(joined, one_per_line)
        except msgspec.ValidationError as error:
            # The message is only a hint: if its wording changes, nothing is learned.
            if "unknown field" not in str(error) or not self._learn(payloads):
                return None
            try:
                events = self._parse(joined, one_per_line)
            except msgspec.MsgspecError:
                return None
        except msgspec.DecodeError:
            return None
        return events if len(events) == n else None

    def _parse(self, joined: bytes, one_per_line: bool) -> list[Any]:
        if one_per_line:
            assert self._line_decoder is not None
            return self._line_decoder.decode_lines(joined)
        assert self._decoder is not None
        return list(map(_first, self._decoder.decode(joined)))

    def _learn(self, payloads: list[bytes]) -> bool:
        """Add the batch's fields not yet known; False if none are new or they cannot be added."""
        assert self._layout is not None
        tree, reserved, dotted = self._layout.tree, self.roles.reserved, self._dotted
        new: dict[Path, None] = {}
        # What a flat event adds depends on its field names only: each such list of
        # names is walked once (a batch's events mostly share one).
        flat_shapes: set[tuple[str, ...]] = set()
        for payload in payloads:
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if type(event) is dict:
                if dotted and not dotted.isdisjoint(event):
                    return False
                shape = tuple(event)
                if shape in flat_shapes:
                    continue
                new.update(dict.fromkeys(new_members(event, tree, reserved)))
                if dict not in map(type, event.values()):
                    flat_shapes.add(shape)
        if not new:
            return False
        others = (*self._others, *new)
        if len(others) > MAX_OTHER_FIELDS:
            self._usable = False
            return False
        layout = event_layout(self.roles, self.features, others)
        if layout is None:
            # A field that is an object in one event and not in another, or a name
            # msgspec cannot match: this batch is left to the other paths.
            return False
        self._use(layout, others)
        return True

    def _build(self, others: tuple[Path, ...]) -> None:
        """The msgspec decoder for the features, the roles and ``others``."""
        layout = event_layout(self.roles, self.features, others)
        if layout is None:
            # One field in two roles, or a name msgspec cannot match (a quote, a backslash...).
            self._usable = False
            return
        self._use(layout, others)

    def _use(self, layout: EventLayout, others: tuple[Path, ...]) -> None:
        self._layout = layout
        self._decoder = msgspec.json.Decoder(list[tuple[layout.event]])  # type: ignore[name-defined]
        self._line_decoder = msgspec.json.Decoder(layout.event)
        self._others = others


def _braced(joined: bytes, lengths: IntArray) -> bool:
    """True if each payload starts with ``{`` and ends with ``}``.

    ``joined`` holds the payloads joined by newlines, ``lengths`` their lengths.

    >>> _braced(b'{"a": 1}\\n{"b": 2}', np.array([8, 8])), _braced(b"{}\\n", np.array([2, 0]))
    (True, False)
    """
    if not lengths.all():
        return False
    ends = np.cumsum(lengths + 1) - 2
    text = np.frombuffer(joined, np.uint8)
    return bool(
        np.all(text[ends] == _CLOSE_BRACE) and np.all(text[ends - lengths + 1] == _OPEN_BRACE)
    )
