"""A label field named but for case: ``Label`` in a file read for ``label``.

Field names match exactly, so a file whose labels are in ``Label`` reads as
unlabelled for ``--label-field label`` (the default), and its first row would
make ``Label`` a feature. The batch commands find such a field among a
table's names and say which flag reads it: ``fit`` and ``evaluate`` where no
row had a label (:func:`label_hint`), the table loader where the field would
be a feature (:mod:`stream_detect.tables`).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["label_hint", "label_in_another_case", "not_the_label_field"]


def label_in_another_case(names: Iterable[str], label_field: str | None) -> str | None:
    """The first of ``names`` that is ``label_field`` but for case (``Label``), or None.

    Names match exactly, so ``Label`` holds no labels for ``label``: a file whose
    labels are there was most likely meant to be read with ``--label-field Label``.

    >>> label_in_another_case(["x", "Label"], "label")
    'Label'
    >>> label_in_another_case(["label", "label2"], "label") is None
    True
    """
    if label_field is None:
        return None
    for name in names:
        if name != label_field and name.casefold() == label_field.casefold():
            return name
    return None


def not_the_label_field(name: str, label_field: str) -> str:
    """Why field ``name`` (from :func:`label_in_another_case`) gives no labels, and what to do.

    >>> not_the_label_field("Label", "label")
    "it is not the label field 'label' (names match exactly, case included): name it with \
--label-field Label"
    """
    return (
        f"it is not the label field {label_field!r} (names match exactly, case included): "
        f"name it with --label-field {name}"
    )


def label_hint(names: Iterable[str], label_field: str | None) -> str:
    """What to add where no row had a label in ``label_field``: ``""``, or a clause naming
    a field among ``names`` (a table's ``ignored_columns``) that is it but for case.

    >>> label_hint(["x", "Label"], "label")
    "; field 'Label' is there, but it is not the label field 'label' (names match exactly, \
case included): name it with --label-field Label"
    >>> label_hint(["x"], "label")
    ''
    """
    name = label_in_another_case(names, label_field)
    if name is None or label_field is None:
        return ""
    return f"; field {name!r} is there, but {not_the_label_field(name, label_field)}"
