"""Names of fields: which may be features, and how "no such field" is spelled.

The one check of a feature list (:func:`check_feature_names`) serves the
settings, the command-line flags, the table loader and the record decoders,
so each refuses the same lists with the same sentence. A field with a role
(the label, key, id or timestamp field) is never a feature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from stream_detect.errors import ConfigError

__all__ = [
    "NONE_TEXT",
    "blank_name",
    "check_feature_names",
    "is_blank",
    "optional_field_name",
    "parse_feature_names",
    "shown_name",
]

#: The text that means "no such field" (TOML has no null; a flag needs a word).
NONE_TEXT: Final = "none"


def is_blank(name: str) -> bool:
    """Whether ``name`` is empty or only white space, which no feature's name may be.

    A list of features given refuses such a name (:func:`check_feature_names`),
    so the stream never infers a field so named as a feature either: a model
    or checkpoint holding it could not be read back.

    >>> is_blank(""), is_blank(" \t"), is_blank("cpu")
    (True, True, False)
    """
    return not name.strip()


def blank_name(names: Sequence[str]) -> str | None:
    """The first of ``names`` that is empty or only spaces, which no feature may be; or None.

    >>> blank_name(["cpu", " "]), blank_name(["cpu"])
    (' ', None)
    """
    return next((name for name in names if is_blank(name)), None)


def check_feature_names(
    names: Sequence[str],
    *,
    key: str = "features",
    roles: Mapping[str, str | None] | None = None,
) -> list[str]:
    """Return ``names`` as a list if they can be the features; ConfigError naming ``key`` if not.

    A feature list is non-empty, names each field once, has no empty name,
    and holds none of the fields in ``roles`` (role name to field name, e.g.
    ``{"label_field": "label"}``; None values are ignored).

    >>> check_feature_names(("cpu", "mem"))
    ['cpu', 'mem']
    >>> check_feature_names(["cpu", "label"], key="--features", roles={"label_field": "label"})
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key --features: got 'cpu,label', expected \
features other than 'label', the label_field (a field cannot be both)
    """
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise ConfigError(key, names, "a non-empty list of feature names")
    listed = list(names)
    shown = ",".join(map(str, listed))
    if not all(isinstance(name, str) for name in listed) or blank_name(listed) is not None:
        raise ConfigError(key, shown, "feature names, none empty")
    if len(set(listed)) != len(listed):
        raise ConfigError(key, shown, "feature names, each at most once")
    for role, field_name in (roles or {}).items():
        if field_name is not None and field_name in listed:
            raise ConfigError(
                key,
                shown,
                f"features other than {field_name!r}, the {role} (a field cannot be both)",
            )
    return listed


def parse_feature_names(
    text: str | None, key: str = "features", roles: Mapping[str, str | None] | None = None
) -> list[str] | None:
    """Feature names from comma-separated text (``--features a,b``); None for None.

    The names are stripped, then checked by :func:`check_feature_names`.

    >>> parse_feature_names(" cpu, mem ")
    ['cpu', 'mem']
    >>> parse_feature_names("a,a", "--features")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key --features: got 'a,a', expected feature names, \
each at most once
    """
    if text is None:
        return None
    return check_feature_names([name.strip() for name in text.split(",")], key=key, roles=roles)


def optional_field_name(text: str, key: str = "label_field") -> str | None:
    """A field name given as text, or None for :data:`NONE_TEXT` (in any case).

    An empty name is a :class:`~stream_detect.errors.ConfigError` naming ``key``.

    >>> optional_field_name("label"), optional_field_name("None")
    ('label', None)
    >>> optional_field_name(" ", "--label-field")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key --label-field: got ' ', expected a field name, \
or none for no such field
    """
    if not text.strip():
        raise ConfigError(key, text, f"a field name, or {NONE_TEXT} for no such field")
    return None if text.strip().lower() == NONE_TEXT else text


def shown_name(name: str) -> str:
    """``name`` as it is shown to people: itself, or quoted with escapes if it holds a
    character that does not print (a line break, an escape sequence, a NUL).

    A field's name comes from the data, and printed as it is, a line break in
    it would break a table and an escape sequence would reach the terminal.

    >>> print(shown_name("cpu load"), shown_name("a\\nb"), shown_name("\\x1b[31mred"))
    cpu load 'a\\nb' '\\x1b[31mred'
    """
    return name if name.isprintable() else repr(name)
