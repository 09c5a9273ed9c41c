"""The fields of an event that have a role: label, key, id and timestamp.

A field with a role is never a feature (:func:`stream_detect.field_names.check_feature_names`).
A field the source itself adds to every event (a scrape's time) is never
inferred as a feature, but may be named as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_LABEL_FIELD", "FieldRoles"]

#: The label field when none is named. A CSV header may lack it (the stream is
#: unlabelled); a label field named otherwise must be a column of the header.
DEFAULT_LABEL_FIELD: Final = "label"


@dataclass(frozen=True)
class FieldRoles:
    """Which field holds the label, the key, the id and the timestamp (None: no such field).

    >>> roles = FieldRoles(label_field="label", key_field="host")
    >>> sorted(roles.reserved), roles.as_mapping()["key_field"]
    (['host', 'label'], 'host')

    ``source_fields`` are the fields the source adds to every event (the time
    of a scrape): reserved, so never inferred as features, but they have no
    role, so ``--features`` may still name them.

    >>> sorted(FieldRoles(source_fields=frozenset({"timestamp"})).reserved)
    ['label', 'timestamp']
    """

    label_field: str | None = DEFAULT_LABEL_FIELD
    key_field: str | None = None
    id_field: str | None = None
    timestamp_field: str | None = None
    source_fields: frozenset[str] = frozenset()

    @property
    def reserved(self) -> frozenset[str]:
        """The field names never inferred as features: those with a role, the source's own."""
        roles = (name for name in self.as_mapping().values() if name is not None)
        return frozenset(roles) | self.source_fields

    def as_mapping(self) -> dict[str, str | None]:
        """Role name (``label_field``...) to field name."""
        return {
            "label_field": self.label_field,
            "key_field": self.key_field,
            "id_field": self.id_field,
            "timestamp_field": self.timestamp_field,
        }
