"""What the first row of a table may make a feature: a named field, and not the label.

When no features are given, a table's first data row decides them (its numeric
fields, leaving out the label), as the stream does. Two of those fields a table
refuses rather than fit: one named ``""`` or blank, and one named as the label
field but for case (``Label`` for ``label``). :func:`unfit_inferred_feature`
says which, and :func:`blank_numeric_fields` finds the blank-named numbers the
decoder itself never makes features. :mod:`stream_detect.tables` reports them
at the row's line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stream_detect.field_names import blank_name, is_blank
from stream_detect.label_names import label_in_another_case, not_the_label_field
from stream_detect.records.feature_values import NUMBER_TYPES

__all__ = ["blank_numeric_fields", "unfit_inferred_feature"]


def unfit_inferred_feature(
    features: Sequence[str], label_field: str | None, line: int
) -> tuple[int, str] | None:
    """A feature the first row would make that must not be one, as ``(line, reason)``.

    A JSON field named ``""`` or blank: every list of features given
    (``--features``, a model file's, ``run --features``) refuses such a name,
    so a model fitted with it could be written but never read back. A field
    named as the label field but for case (``Label``): as a feature it would
    put the answers into the model (and leave no labels to choose epsilon
    with), silently.

    >>> unfit_inferred_feature(["x", ""], "label", 2)  # doctest: +ELLIPSIS
    (2, "field '' would be a feature, and a feature needs a name ...")
    >>> unfit_inferred_feature(["x", "Label"], "label", 2)  # doctest: +ELLIPSIS
    (2, "field 'Label' would be a feature, and it is not the label field 'label' ...")
    >>> unfit_inferred_feature(["x", "label2"], "label", 2) is None
    True
    """
    blank = blank_name(features)
    if blank is not None:
        return line, (
            f"field {blank!r} would be a feature, and a feature needs a name (a list of "
            "features given, as a model file's, holds none blank): choose the features "
            "(--features)"
        )
    name = label_in_another_case(features, label_field)
    if name is None or label_field is None:
        return None
    return line, (
        f"field {name!r} would be a feature, and {not_the_label_field(name, label_field)}, "
        "or choose the features (--features)"
    )


def blank_numeric_fields(records: Sequence[Any]) -> list[str]:
    """The fields named ``""`` or blank that hold a number in JSON ``records``.

    The decoder never infers such a field as a feature (a stream goes on
    without it), but a table says so: the first row meant it as one.

    >>> blank_numeric_fields([{"": 1, " ": "a", "x": 2}]), blank_numeric_fields([["1"]])
    ([''], [])
    """
    return [
        name
        for record in records
        if isinstance(record, dict)
        for name, value in record.items()
        if type(value) in NUMBER_TYPES and is_blank(name)
    ]
