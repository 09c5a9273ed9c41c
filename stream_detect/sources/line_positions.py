"""The positions of a batch of lines, each position's dict made only when read.

A line source knows a record's position as two numbers: its line number
(a batch is consecutive lines) and the byte offset where it starts. Most
positions are never read: a run that writes only its alerts reads about one
in a hundred. :class:`LinePositions` keeps the numbers and makes a record's
``{"line": ..., "offset": ...}`` dict the first time it is read, then keeps
it: a position read twice, or through a slice, is the same dict, since
callers match positions by identity.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import numpy as np
import orjson
from numpy.typing import NDArray

from stream_detect.made_when_read import MadeWhenRead

__all__ = ["LinePositions"]

_PAIRS: Final = b"],["
_MARK: Final = b"\x00"  # never in the digits and commas of a JSON array of integers
_LINE: Final = b'"line":'
_OFFSET: Final = b',"offset":'


class LinePositions(MadeWhenRead[dict[str, Any]]):
    """Positions of the lines from ``first_line`` on, starting at byte ``offsets[i]``.

    ``notes`` maps a line number to the fields its position has beyond the
    line and offset (a truncated line's ``truncated`` and ``length``). The
    sequence compares equal to any sequence of equal dicts.

    >>> positions = LinePositions(7, [0, 12, 30], {9: {"truncated": True, "length": 4096}})
    >>> positions[0], positions.made
    ({'line': 7, 'offset': 0}, 1)
    >>> positions[1:][0] is positions[1], positions[-1]
    (True, {'line': 9, 'offset': 30, 'truncated': True, 'length': 4096})
    >>> positions.truncated, positions[:2].truncated, list(positions[:2])
    (True, False, [{'line': 7, 'offset': 0}, {'line': 8, 'offset': 12}])
    """

    __slots__ = ("_first_line", "_made", "_notes", "_offsets")
    item_name = "position"

    def __init__(
        self,
        first_line: int,
        offsets: Sequence[int],
        notes: Mapping[int, dict[str, Any]] | None = None,
        made: dict[int, dict[str, Any]] | None = None,
    ) -> None:
        self._first_line = first_line
        self._offsets = offsets
        self._notes: Mapping[int, dict[str, Any]] = {} if notes is None else notes
        # Shared with every slice, by line number: one dict per position however it is reached.
        self._made: dict[int, dict[str, Any]] = {} if made is None else made

    @property
    def made(self) -> int:
        """How many positions of this batch (and its slices) have been made into dicts."""
        return len(self._made)

    @property
    def truncated(self) -> bool:
        """True if any of these lines was cut short (its position says ``truncated``)."""
        first, stop = self._first_line, self._first_line + len(self._offsets)
        return any(
            first <= line < stop and note.get("truncated") for line, note in self._notes.items()
        )

    def __len__(self) -> int:
        return len(self._offsets)

    def line_numbers(self) -> NDArray[np.int64]:
        """The numbers of these lines, in order, without making a dict for any of them.

        >>> LinePositions(7, [0, 12, 30])[1:].line_numbers().tolist()
        [8, 9]
        """
        first = self._first_line
        return np.arange(first, first + len(self._offsets), dtype=np.int64)

    def __repr__(self) -> str:
        return repr(list(self))  # what a list of the same positions shows

    def _slice(self, start: int, stop: int, step: int) -> Sequence[dict[str, Any]]:
        if step != 1:
            return super()._slice(start, stop, step)
        stop = max(start, stop)
        return LinePositions(
            self._first_line + start, self._offsets[start:stop], self._notes, self._made
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._made or self._notes:
            return super().__iter__()
        # None made yet (a run that writes every event reads them all at once): one pass.
        offsets = self._offsets
        lines = range(self._first_line, self._first_line + len(offsets))
        positions = [{"line": line, "offset": at} for line, at in zip(lines, offsets, strict=True)]
        self._made.update(zip(lines, positions, strict=True))
        return iter(positions)

    def json_texts(self) -> list[bytes] | None:
        """Each position's JSON text without its braces, as orjson writes the dicts.

        Made from the numbers in a few passes over the batch, no dict per
        position; None if a position has notes or was made into a dict
        already (its dict is then what is written).

        >>> LinePositions(7, [0, 12]).json_texts()
        [b'"line":7,"offset":0', b'"line":8,"offset":12']
        >>> LinePositions(9, [30], {9: {"truncated": True}}).json_texts() is None
        True
        """
        if self._made or self._notes or not self._offsets:
            return None
        count = len(self._offsets)
        pairs = np.empty((count, 2), dtype=np.int64)
        pairs[:, 0] = np.arange(self._first_line, self._first_line + count)
        pairs[:, 1] = self._offsets
        # [[7,0],[8,12]] -> "line":7,"offset":0 <mark> "line":8,"offset":12
        text = orjson.dumps(pairs, option=orjson.OPT_SERIALIZE_NUMPY)[2:-2]
        text = text.replace(_PAIRS, _MARK).replace(b",", _OFFSET).replace(_MARK, _MARK + _LINE)
        return (_LINE + text).split(_MARK)

    def _item(self, index: int) -> dict[str, Any]:
        line = self._first_line + index
        position = self._made.get(line)
        if position is None:
            position = {"line": line, "offset": self._offsets[index]}
            note = self._notes.get(line)
            if note is not None:
                position.update(note)
            self._made[line] = position
        return position
