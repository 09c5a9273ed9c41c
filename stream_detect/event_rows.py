"""Which held row of the validation buffer each event id names, so an event is labelled once.

:class:`EventRows` maps an event id to the number of the newest row added
with it, over the class rings of
:class:`~stream_detect.validation_buffer.ValidationBuffer`; an older row of
the same id loses the id, so every id held is on one row. A row evicted from
its ring is found missing when looked up, and the ids of evicted rows are
forgotten now and then, so the map stays within a few times the buffer's
capacity.

>>> import numpy as np
>>> from stream_detect.class_ring import ClassRing
>>> rings = (ClassRing(2), ClassRing(2))
>>> rings[1].push(np.array([[1.0]]), np.array([0]), np.array([None]), np.array(["e1"]))
>>> rows = EventRows(rings, 2)
>>> rows.point([(0, "e1")])
>>> rows.find("e1"), rows.find("e2")
((1, 0), None)
"""

from __future__ import annotations

from stream_detect.class_ring import ClassRing

__all__ = ["EventRows"]


class EventRows:
    """Event id -> the newest row held with it, in ``rings`` (one per class) of ``capacity``."""

    def __init__(self, rings: tuple[ClassRing, ...], capacity: int) -> None:
        self._rings = rings
        self._capacity = capacity
        #: Event id -> number of the newest row added with it (an evicted row's stays a
        #: while: :meth:`find` checks the row is still held).
        self._by_id: dict[str, int] = {}

    def __len__(self) -> int:
        """Ids in the map, those of rows evicted since and not yet forgotten included."""
        return len(self._by_id)

    def point(self, named: list[tuple[int, str]]) -> None:
        """Point each id at its newest row (``named`` holds ``(row number, id)`` oldest first).

        An id names the newest event that had it (as the remembered events
        do): an older row of the same id loses it, so every id held is on one
        row, found again after a checkpoint as before it. Ids of rows evicted
        since are forgotten now and then, so the index stays within a few
        times the buffer's capacity.
        """
        for number, name in named:
            older = self._by_id.get(name)
            if older is not None:
                for ring in self._rings:
                    slot = ring.slot_of(older)
                    if slot is not None:
                        ring.ids[slot] = None
            self._by_id[name] = number
        if len(self._by_id) > 4 * self._capacity:
            self._by_id = {
                ring.ids[slot]: int(ring.seq[slot])
                for ring in self._rings
                for slot in ring.ordered().tolist()
                if ring.ids[slot] is not None
            }

    def find(self, event_id: str) -> tuple[int, int] | None:
        """``(label, slot)`` of the newest row held with ``event_id``, or None."""
        number = self._by_id.get(event_id)
        if number is None:
            return None
        for label, ring in enumerate(self._rings):
            slot = ring.slot_of(number)
            if slot is not None:
                return label, slot
        del self._by_id[event_id]
        return None
