"""Dotted field names: how ``cpu.user`` reads a member of a nested JSON object.

Events from a pipeline often nest their fields::

    {"ts": "...", "cpu": {"user": 9.5, "sys": 4.9}, "host": {"name": "a"}}

A field name with dots (a feature, or the key, id, label or timestamp field)
reads such a member: ``cpu.user`` is ``event["cpu"]["user"]``. The rule, the
same in every decoding path (:func:`find`):

* a top-level field whose name is the name as written wins: in
  ``{"cpu.user": 1, "cpu": {"user": 2}}``, ``cpu.user`` is 1;
* otherwise the name is split at every dot, and each part names a member of
  the object the part before it found. Arrays are not looked into (``a.0`` is
  not an array's first item): a part that meets anything but an object finds
  nothing, and the field is missing.

When no features are named, an event's fields are its top-level fields and
the members of its nested objects, by dotted name (:func:`leaves`), down to
:data:`MAX_DEPTH` levels, so that every name inferred reads back the value it
was inferred from. A member whose name holds a dot, or is blank, cannot be
named so and is not inferred; nor is a member whose dotted name is also a
top-level field (the top-level one wins). A flat event's fields are its
top-level fields, as they always were.

CSV columns are never split: a column ``cpu.user`` is a column.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Hashable, Sequence
from itertools import chain, repeat
from typing import Any, Final

from stream_detect.field_names import is_blank

__all__ = [
    "MAX_DEPTH",
    "MISSING",
    "blocked_at",
    "column",
    "columns",
    "find",
    "get",
    "has_path",
    "leaves",
    "member_to_name",
    "optional_column",
    "path_parts",
    "picker",
    "shape",
]

#: The most levels of nested objects whose members are inferred as features:
#: ``a.b.c.d.e.f.g.h`` at most. A deeper member is still read when named.
MAX_DEPTH: Final = 8

Event = dict[str, Any]


class _Missing:
    """The type of :data:`MISSING`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


#: What :func:`find` returns for a field the event does not have (null is a value: None).
MISSING: Final = _Missing()


def has_path(name: str) -> bool:
    """Whether ``name`` may address a nested member (it holds a dot).

    >>> has_path("cpu.user"), has_path("cpu")
    (True, False)
    """
    return "." in name


def path_parts(name: str) -> tuple[str, ...]:
    """The member names a dotted name reads, outermost first: the name split at every dot.

    >>> path_parts("cpu.user"), path_parts("cpu")
    (('cpu', 'user'), ('cpu',))
    """
    return tuple(name.split("."))


def find(event: Event, name: str) -> Any:
    """The value of field ``name`` in ``event`` by the rule of the module, or :data:`MISSING`.

    >>> event = {"cpu": {"user": 2, "sys": None}, "cpu.idle": 7, "tags": [{"a": 1}]}
    >>> find(event, "cpu.user"), find(event, "cpu.sys"), find(event, "cpu.idle")
    (2, None, 7)
    >>> find(event, "cpu.nice"), find(event, "tags.0.a"), find(event, "cpu.user.x")
    (MISSING, MISSING, MISSING)
    >>> find({"cpu.user": 1, "cpu": {"user": 2}}, "cpu.user")
    1
    """
    value = event.get(name, MISSING)
    if value is not MISSING or "." not in name:
        return value
    found: Any = event
    for part in path_parts(name):
        if type(found) is not dict:
            return MISSING
        found = found.get(part, MISSING)
        if found is MISSING:
            return MISSING
    return found


def get(event: Event, name: str) -> Any:
    """Like ``event.get(name)``: the value of field ``name``, None when it is missing.

    >>> get({"host": {"name": "a"}}, "host.name"), get({}, "host.name")
    ('a', None)
    """
    value = find(event, name)
    return None if value is MISSING else value


def blocked_at(event: Event, name: str) -> tuple[str, Any] | None:
    """Where a missing dotted field's path meets a value that is not an object, and that value.

    None when the path finds nothing for another reason (a member absent),
    or the field is not missing.

    >>> blocked_at({"cpu": 5}, "cpu.user"), blocked_at({"cpu": {}}, "cpu.user")
    (('cpu', 5), None)
    """
    if find(event, name) is not MISSING:
        return None
    found: Any = event
    parts = path_parts(name)
    for depth, part in enumerate(parts):
        if type(found) is not dict:
            return ".".join(parts[:depth]), found
        found = found.get(part, MISSING)
        if found is MISSING:
            return None
    return None


def _value_of(name: str) -> Callable[[Event], Any]:
    """``event -> find(event, name)``, raising KeyError when the event does not have it."""

    def value_of(event: Event) -> Any:
        value = find(event, name)
        if value is MISSING:
            raise KeyError(name)
        return value

    return value_of


def columns(events: Sequence[Event], names: Sequence[str]) -> list[list[Any]]:
    """Each name's values over the events, a list per name; KeyError if an event lacks one.

    The values are :func:`find`'s. A path is read a level at a time, one
    C-level ``itemgetter`` pass over the batch per level (a prefix that
    names share is read once), which is several times faster than event by
    event; a dotted name that some event of the batch holds as a top-level
    field is read event by event.

    >>> events = [{"cpu": {"user": 1, "sys": 2}}, {"cpu": {"user": 3, "sys": 4}, "cpu.sys": 5}]
    >>> columns(events, ["cpu.user", "cpu.sys"])
    [[1, 3], [2, 5]]
    >>> columns([{"cpu": [1]}], ["cpu.user"])
    Traceback (most recent call last):
    ...
    KeyError: 'cpu.user'
    """
    read: dict[str, list[Any]] = {}
    found = []
    for name in names:
        if "." in name and any(map(operator.contains, events, repeat(name))):
            found.append(list(map(_value_of(name), events)))
        else:
            found.append(_path_column(events, name, read))
    return found


def _path_column(events: Sequence[Event], name: str, read: dict[str, list[Any]]) -> list[Any]:
    """The values at path ``name`` (split at every dot), reading prefixes through ``read``."""
    known = read.get(name)
    if known is not None:
        return known
    head, dot, last = name.rpartition(".")
    parents = _path_column(events, head, read) if dot else events
    try:
        # Only an object answers a member name: an array, a string, a number or
        # null raises TypeError, as the rule wants them to find nothing.
        column = list(map(operator.itemgetter(last), parents))
    except (KeyError, TypeError):
        raise KeyError(name) from None
    read[name] = column
    return column


def picker(names: Sequence[str]) -> Callable[[Sequence[Event]], list[Any]]:
    """A function giving each event's values of ``names``, event after event, in one flat list.

    It raises KeyError for an event without one of them. For names without
    a dot, :func:`~stream_detect.records.feature_values.picked_flat` (one
    ``itemgetter`` call per event) gives the same list faster.

    >>> pick = picker(["cpu.user", "mem"])
    >>> pick([{"cpu": {"user": 1}, "mem": 2}, {"cpu.user": 3, "mem": 4}])
    [1, 2, 3, 4]
    """
    names = list(names)

    def picked(events: Sequence[Event]) -> list[Any]:
        found = columns(events, names)
        if len(found) == 1:
            return found[0]
        return list(chain.from_iterable(zip(*found, strict=True)))

    return picked


def column(events: Sequence[Event], name: str) -> list[Any]:
    """Every event's value of ``name``; KeyError for an event without it.

    >>> column([{"host": {"name": "a"}}, {"host": {"name": "b"}}], "host.name")
    ['a', 'b']
    """
    if "." not in name:
        return [event[name] for event in events]
    return columns(events, [name])[0]


def optional_column(events: Sequence[Event], name: str) -> list[Any]:
    """Every event's value of ``name``, None where it is missing.

    >>> optional_column([{"meta": {"id": 3}}, {}], "meta.id")
    [3, None]
    """
    if "." not in name:
        return [event.get(name) for event in events]
    return [get(event, name) for event in events]


def member_to_name(name: str, members: Event, kinds: frozenset[type]) -> str | None:
    """The dotted name of the first member of object ``name`` whose value is of ``kinds``.

    Members of nested objects count, in document order; a member whose own
    name holds a dot cannot be named by a path. None if no member fits.

    >>> member_to_name("cpu", {"host": "a", "x.y": 1, "user": 9.5}, frozenset({float}))
    'cpu.user'
    >>> member_to_name("cpu", {"tags": [1]}, frozenset({int})) is None
    True
    """
    named = {part: value for part, value in members.items() if "." not in part}
    return next((f"{name}.{path}" for path, value in leaves(named) if type(value) in kinds), None)


def leaves(event: Event, skip: frozenset[str] = frozenset()) -> list[tuple[str, Any]]:
    """The event's fields by name, members of nested objects by dotted name, in document order.

    An object comes first, then its members (down to :data:`MAX_DEPTH`
    levels). Fields named in ``skip`` (the fields with a role) are left
    out, with their members. Every name listed reads back its value by
    :func:`find`; members that could not (see the module) are left out.

    >>> leaves({"ts": 1, "cpu": {"user": 9.5, "a.b": 1, "": 2}, "x": [{"y": 1}]})
    [('ts', 1), ('cpu', {'user': 9.5, 'a.b': 1, '': 2}), ('cpu.user', 9.5), ('x', [{'y': 1}])]
    >>> leaves({"cpu.user": 1, "cpu": {"user": 2}})
    [('cpu.user', 1), ('cpu', {'user': 2})]
    >>> leaves({"host": {"name": "a"}, "n": 1}, frozenset({"host"}))
    [('n', 1)]
    """
    if dict not in set(map(type, event.values())):
        # A flat event, the common case: its fields as they always were.
        return [(name, value) for name, value in event.items() if name not in skip]
    found: list[tuple[str, Any]] = []
    for name, value in event.items():
        if name in skip:
            continue
        found.append((name, value))
        if type(value) is dict and "." not in name:
            _members(value, name, 2, event, skip, found)
    return found


def _members(
    members: Event, prefix: str, depth: int, event: Event, skip: frozenset[str], found: list[Any]
) -> None:
    """Add the members of an object at ``prefix`` (``depth`` levels down) to ``found``."""
    if depth > MAX_DEPTH:
        return
    for part, value in members.items():
        if "." in part or is_blank(part):
            continue
        name = f"{prefix}.{part}"
        if name in skip:
            continue
        if name not in event:  # else the name reads the top-level field
            found.append((name, value))
        if type(value) is dict:
            _members(value, name, depth + 1, event, skip, found)


def shape(event: Event) -> Hashable:
    """What decides an event's :func:`leaves` and their kinds: its names and types, nested.

    Events of one shape have the same fields holding the same kinds of
    value, so work that depends only on those is done once per shape.

    >>> shape({"x": 1, "y": "a"})
    (('x', 'y'), (<class 'int'>, <class 'str'>))
    >>> shape({"x": 1}) == shape({"x": 2}), shape({"c": {"u": 1}}) == shape({"c": {"u": "a"}})
    (True, False)
    """
    types = tuple(map(type, event.values()))
    if dict not in types:
        return tuple(event), types
    return _nested_shape(event, 1)


def _nested_shape(members: Event, depth: int) -> Hashable:
    if depth > MAX_DEPTH:
        return dict
    return tuple(members), tuple(
        _nested_shape(value, depth + 1) if type(value) is dict else type(value)
        for value in members.values()
    )
