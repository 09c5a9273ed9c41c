"""Events the detector refuses after decoding (a transform undefined for them) become dead letters.

A ``log`` transform cannot take a value <= 0, say: such an event was decoded
fine but cannot be scored. :func:`set_aside_refused` moves it to the batch's
bad records, with the reason, and keeps the dead letters in arrival order
whichever step (decoding or transforming) refused them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.records import BadRecord, Decoded
from stream_detect.records.lazy_records import LazyRecords
from stream_detect.sources.base import RawBatch

__all__ = ["set_aside_refused", "subset"]


def set_aside_refused(
    batch: RawBatch,
    decoded: Decoded,
    values: NDArray[np.float64],
    reasons: list[str | None],
    bad: list[BadRecord],
) -> tuple[Decoded, NDArray[np.float64]]:
    """Move the events with a reason to ``bad``, in arrival order; return the rest and their values.

    ``decoded`` was decoded from ``batch``; ``values`` and ``reasons`` are
    row for row with it (None: the event is fine).

    >>> batch = RawBatch([b"a", b"b", b"c"], [{"line": 1}, {"line": 2}, {"line": 3}])
    >>> decoded = Decoded.empty(1)
    >>> decoded.values = np.array([[1.0], [-1.0]])
    >>> decoded.records, decoded.positions = [{"x": 1}, {"x": -1}], batch.positions[1:]
    >>> decoded.labels = np.array([-1, -1], dtype=np.int8)
    >>> bad = [BadRecord(batch.positions[0], "not JSON", b"a")]
    >>> kept, values = set_aside_refused(batch, decoded, decoded.values, [None, "log of -1"], bad)
    >>> kept.records, values.tolist(), [record.reason for record in bad]
    ([{'x': 1}], [[1.0]], ['not JSON', 'log of -1'])
    """
    unusable = [i for i, reason in enumerate(reasons) if reason is not None]
    payloads = {
        id(position): payload
        for payload, position in zip(batch.payloads, batch.positions, strict=True)
    }
    for i in unusable:
        position = decoded.positions[i]
        bad.append(BadRecord(position, str(reasons[i]), payloads[id(position)]))
    # Dead letters leave in arrival order, whichever step refused them.
    arrival = {id(position): n for n, position in enumerate(batch.positions)}
    bad.sort(key=lambda record: arrival.get(id(record.position), len(arrival)))
    keep = np.ones(len(decoded), dtype=bool)
    keep[unusable] = False
    return subset(decoded, keep), values[keep]


def subset(decoded: Decoded, keep: np.ndarray[Any, Any]) -> Decoded:
    """The rows of ``decoded`` where ``keep`` is true."""
    rows = np.flatnonzero(keep).tolist()

    def pick(items: list[Any] | None) -> list[Any] | None:
        return None if items is None else [items[i] for i in rows]

    records = decoded.records
    return Decoded(
        values=decoded.values[keep],
        # Lazy records stay lazy: the kept rows' lines are parsed only if written.
        records=records.take(rows)
        if isinstance(records, LazyRecords)
        else [records[i] for i in rows],
        positions=[decoded.positions[i] for i in rows],
        labels=decoded.labels[keep],
        keys=pick(decoded.keys),
        ids=pick(decoded.ids),
        timestamps=pick(decoded.timestamps),
        bad=decoded.bad,
        n_blank=decoded.n_blank,
        n_header=decoded.n_header,
    )
