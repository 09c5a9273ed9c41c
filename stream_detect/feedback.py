"""Feedback labels: a record that names an earlier event by id and says what it was.

One reading of a feedback record serves every way labels arrive (a labels
file, a Kafka topic, Alertmanager silences), so each refuses the same records
with the same reason.
"""

from __future__ import annotations

import orjson

from stream_detect.records.keys_and_ids import as_text
from stream_detect.records.wide_integers import load_exact

__all__ = ["parse_feedback", "unmatched_feedback_reason"]


def parse_feedback(payload: bytes, id_field: str, label_field: str) -> tuple[str, int] | str:
    """The event id and label a feedback record names, or why it names none.

    Ids are matched as the decoder writes them: strings as they are, others as
    JSON text. A label is 0, 1, true or false, as in the events.

    >>> parse_feedback(b'{"id": 7, "label": true}', "id", "label")
    ('7', 1)
    >>> parse_feedback(b'{"id": 123456789012345678901234567890, "label": 0}', "id", "label")
    ('123456789012345678901234567890', 0)
    >>> parse_feedback(b'{"id": "a", "label": 2}', "id", "label")
    'label 2 is not 0, 1, true or false'
    >>> parse_feedback(b'[1]', "id", "label")
    "a feedback label must be a JSON object with 'id' and 'label'"
    """
    try:
        entry = load_exact(payload)
        event_id = entry[id_field]
        label = entry[label_field]
    except (orjson.JSONDecodeError, KeyError, TypeError, IndexError):
        return f"a feedback label must be a JSON object with {id_field!r} and {label_field!r}"
    if label not in (0, 1):
        return f"label {label!r} is not 0, 1, true or false"
    return as_text(event_id), int(label)


def unmatched_feedback_reason(event_id: str, id_memory: int) -> str:
    """Why a feedback label joined no event (its dead letter's reason).

    >>> unmatched_feedback_reason("e1", 100)
    "no event with id 'e1' among the last 100 remembered (id_memory), nor among the events \
read after the label"
    """
    return (
        f"no event with id {event_id!r} among the last {id_memory} remembered (id_memory), "
        "nor among the events read after the label"
    )
