"""The msgspec struct a JSON event decodes into on the typed path: every field typed, nested too.

:class:`~stream_detect.records.typed_lines.TypedLines` decodes a batch into
one struct per event. :func:`event_layout` makes that struct from the
features, the role fields and the other fields learned so far, each a
path of member names (:func:`~stream_detect.records.field_paths.path_parts`:
``cpu.user`` is ``("cpu", "user")``, a flat name a path of one). Members that
share a first part share one nested struct, so ``cpu.user`` and ``cpu.sys``
read the one object ``cpu``. Every struct forbids unknown fields, so each
member is checked (msgspec does not check what it skips).

A nested struct holding a feature or the key is required, as they are; one
holding only optional fields (the label, id, timestamp, others) may be
absent or null, and its fields then read None, as the record-by-record path
reads a path that finds nothing. A path that meets anything but an object
fails validation, and the batch is left to the other paths.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Annotated, Any, NamedTuple

import msgspec

from stream_detect.records.field_paths import MAX_DEPTH, path_parts
from stream_detect.records.roles import FieldRoles

__all__ = ["EventLayout", "Path", "event_layout", "new_members"]

Path = tuple[str, ...]
#: A node of the layout: each member is a nested node or, None, a field.
Node = dict[str, Any]

_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Scalar = str | _Int64 | float | bool
_OptionalScalar = str | _Int64 | float | bool | None
_Other = str | float | bool | None
Getter = Callable[[Any], Any]


class EventLayout(NamedTuple):
    """An event's struct, the getters of its columns, and the tree of its member names."""

    event: Any
    #: An event's features: a tuple of them, or the value itself for one feature.
    row: Getter
    label: Getter | None
    key: Getter | None
    ident: Getter | None
    timestamp: Getter | None
    tree: Node


class _Slot(NamedTuple):
    attribute: str
    kind: Any
    default: Any


def event_layout(
    roles: FieldRoles, features: list[str], others: tuple[Path, ...]
) -> EventLayout | None:
    """The struct for these fields, or None if msgspec cannot match them.

    None when a field is in two roles, when one field's path runs through
    another field (``cpu`` and ``cpu.user``), or when msgspec cannot take a
    name (a quote, a backslash...).

    >>> layout = event_layout(FieldRoles(key_field="host.name"), ["cpu.user", "cpu.sys"], ())
    >>> event = msgspec.json.decode(
    ...     b'{"cpu": {"sys": 2, "user": 1.5}, "host": {"name": "a"}}', type=layout.event)
    >>> layout.row(event), layout.key(event), layout.label(event)
    ((1.5, 2.0), 'a', None)
    >>> event_layout(FieldRoles(), ["cpu", "cpu.user"], ()) is None
    True
    """
    slots: list[tuple[Path, _Slot]] = [
        (path_parts(name), _Slot(f"v{j}", float, msgspec.NODEFAULT))
        for j, name in enumerate(features)
    ]
    if roles.key_field is not None:
        slots.append((path_parts(roles.key_field), _Slot("key", _Scalar, msgspec.NODEFAULT)))
    for attribute, role_field in (
        ("label", roles.label_field),
        ("ident", roles.id_field),
        ("timestamp", roles.timestamp_field),
    ):
        if role_field is not None:
            slots.append((path_parts(role_field), _Slot(attribute, _OptionalScalar, None)))
    slots.extend((path, _Slot(f"o{j}", _Other, None)) for j, path in enumerate(others))
    tree: Node = {}
    for path, slot in slots:
        if not _place(tree, path, slot):
            return None
    getters: dict[str, Any] = {}
    try:
        event, _ = _struct(tree, "", True, getters)
    except (ValueError, TypeError):
        return None  # a name msgspec cannot match
    # With no feature this path is not used, and the row getter never called.
    row = operator.attrgetter(*[getters[f"v{j}"] for j in range(len(features))] or ["v0"])
    return EventLayout(
        event,
        row,
        getters.get("label_getter"),
        getters.get("key_getter"),
        getters.get("ident_getter"),
        getters.get("timestamp_getter"),
        _names(tree),
    )


def _place(tree: Node, path: Path, slot: _Slot) -> bool:
    """Put ``slot`` at ``path``; False where another field holds the path or a part of it."""
    node = tree
    for part in path[:-1]:
        inner = node.setdefault(part, {})
        if not isinstance(inner, dict):
            return False
        node = inner
    if path[-1] in node:
        return False
    node[path[-1]] = slot
    return True


def _struct(
    node: Node, attributes: str, present: bool, getters: dict[str, Any]
) -> tuple[Any, bool]:
    """The struct of ``node`` and whether it is required; fills ``getters`` on the way.

    ``attributes`` is the attribute path to the struct (``""`` for the
    event), ``present`` whether every struct on it is required (so an
    attribute getter never meets None). A feature's entry in ``getters`` is
    its attribute path; a role's (``key_getter``...) a function of the event.
    """
    fields: list[tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    required = False
    for i, (member, entry) in enumerate(node.items()):
        if isinstance(entry, dict):
            attribute = f"n{i}"
            inner, inner_required = _struct(
                entry, f"{attributes}{attribute}.", present and _required(entry), getters
            )
            if inner_required:
                fields.append((attribute, inner, msgspec.NODEFAULT))
                required = True
            else:
                fields.append((attribute, inner | None, None))
        else:
            attribute, kind, default = entry
            fields.append((attribute, kind, default))
            required = required or default is msgspec.NODEFAULT
            path = f"{attributes}{attribute}"
            if attribute.startswith("v"):
                getters[attribute] = path
            elif not attribute.startswith("o"):
                getters[f"{attribute}_getter"] = (
                    operator.attrgetter(path) if present else _lenient(path)
                )
        rename[attribute] = member
    struct = msgspec.defstruct(
        "Members" if attributes else "Event",
        fields,
        kw_only=True,
        forbid_unknown_fields=True,
        rename=rename,
        gc=False,
    )
    return struct, required


def _required(node: Node) -> bool:
    """Whether a node holds a required field (a feature or the key), at any depth."""
    return any(
        _required(entry) if isinstance(entry, dict) else entry.default is msgspec.NODEFAULT
        for entry in node.values()
    )


def _lenient(path: str) -> Getter:
    """``attrgetter(path)``, but None where an optional struct on the path is absent."""
    getter = operator.attrgetter(path)

    def value(event: Any) -> Any:
        try:
            return getter(event)
        except AttributeError:
            return None

    return value


def _names(tree: Node) -> Node:
    """The tree's member names: nested nodes as dicts, fields as None."""
    return {
        member: _names(entry) if isinstance(entry, dict) else None for member, entry in tree.items()
    }


def new_members(event: dict[str, Any], tree: Node, skip: frozenset[str]) -> list[Path]:
    """The paths of an event's fields the layout's ``tree`` does not have.

    A member of an object the tree has a node for is looked for in that
    node; top-level fields named in ``skip`` are left out. An unknown field
    holding an object gives the paths of its members (objects down to
    :data:`~stream_detect.records.field_paths.MAX_DEPTH` levels), which
    become a nested struct of optional fields; one holding an empty object,
    or nested deeper, is one path, which will not decode as an other field.

    >>> new_members({"cpu": {"user": 1, "idle": 2}, "note": "x", "h": 1, "m": {"r": "eu"}},
    ...             {"cpu": {"user": None}, "h": None}, frozenset())
    [('cpu', 'idle'), ('note',), ('m', 'r')]
    """
    found: list[Path] = []
    _walk(event, tree, (), skip, found)
    return found


def _walk(
    members: dict[str, Any], node: Node, prefix: Path, skip: frozenset[str], found: list[Path]
) -> None:
    for name, value in members.items():
        if name not in node:
            if prefix or name not in skip:
                if type(value) is dict and value and len(prefix) + 1 < MAX_DEPTH:
                    _walk(value, {}, (*prefix, name), skip, found)
                else:
                    found.append((*prefix, name))
            continue
        inner = node[name]
        if inner is not None and type(value) is dict:
            _walk(value, inner, (*prefix, name), skip, found)
