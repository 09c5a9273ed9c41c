"""Read-only sequences whose items are made the first time they are read, then kept.

A batch carries per-event things that most runs never read: the fields of
an event that raises no alert, the position of a line nobody reports. A
:class:`MadeWhenRead` sequence keeps what each item is made from and makes
the item on first reading; reading it again gives the same object, which
callers rely on (positions are matched by identity). Subclasses say how an
item is made and how a slice is taken.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import ClassVar, TypeVar, overload

__all__ = ["MadeWhenRead"]

T = TypeVar("T")


class MadeWhenRead(Sequence[T]):
    """A read-only sequence of items made when first read; equal to any sequence of equal items.

    >>> class Squares(MadeWhenRead[int]):
    ...     def __len__(self) -> int:
    ...         return 4
    ...     def _item(self, index: int) -> int:
    ...         return index * index
    >>> squares = Squares()
    >>> squares[-1], squares[1:3], squares == [0, 1, 4, 9]
    (9, [1, 4], True)
    """

    __slots__ = ()
    #: What an item is, for the message of an index out of range.
    item_name: ClassVar[str] = "item"

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def _item(self, index: int) -> T:
        """Item ``index`` (0 <= index < len), the same object every time it is read."""

    def _slice(self, start: int, stop: int, step: int) -> Sequence[T]:
        """The items of ``range(start, stop, step)``; a subclass may keep them unmade."""
        return [self._item(i) for i in range(start, stop, step)]

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...

    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        size = len(self)
        if isinstance(index, slice):
            return self._slice(*index.indices(size))
        if not -size <= index < size:
            raise IndexError(f"{self.item_name} {index} of a batch of {size}")
        return self._item(index % size)

    def __iter__(self) -> Iterator[T]:
        return map(self._item, range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable items inside, like a list
