"""The fields of an event that have a role: label, key, id and timestamp.

A field with a role is never a feature (:func:`stream_detect.field_names.check_feature_names`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FieldRoles"]


@dataclass(frozen=True)
class FieldRoles:
    """Which field holds the label, the key, the id and the timestamp (None: no such field).

    >>> roles = FieldRoles(label_field="label", key_field="host")
    >>> sorted(roles.reserved), roles.as_mapping()["key_field"]
    (['host', 'label'], 'host')
    """

    label_field: str | None = "label"
    key_field: str | None = None
    id_field: str | None = None
    timestamp_field: str | None = None

    @property
    def reserved(self) -> frozenset[str]:
        """The field names that have a role."""
        return frozenset(name for name in self.as_mapping().values() if name is not None)

    def as_mapping(self) -> dict[str, str | None]:
        """Role name (``label_field``...) to field name."""
        return {
            "label_field": self.label_field,
            "key_field": self.key_field,
            "id_field": self.id_field,
            "timestamp_field": self.timestamp_field,
        }
