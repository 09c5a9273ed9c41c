"""What ends a record: a line feed, never a lone carriage return.

Sources split their input at line feeds (``\\n``; a ``\\r`` just before one
goes with it, so ``\\r\\n`` files read as they should). A file whose lines
end with a carriage return alone (classic Mac OS, some exports) is then one
long line. Its records cannot be told apart, but the reason a record or a
header is refused can say why: :func:`lone_carriage_return` finds such a
``\\r`` in a line and :func:`lone_carriage_return_note` says what it means,
in the words every refusal uses.
"""

from __future__ import annotations

from typing import Final

__all__ = ["LINE_END_RULE", "lone_carriage_return", "lone_carriage_return_note"]

#: The rule, as every message about a lone carriage return states it.
LINE_END_RULE: Final = (
    "only \\n or \\r\\n ends one (tr '\\r' '\\n' converts a file with lone \\r line ends)"
)


def lone_carriage_return(text: str) -> int | None:
    """The index of the first carriage return inside a line, or None.

    ``text`` is one line; the ``\\r`` and ``\\n`` that end it are not inside it.

    >>> lone_carriage_return("x,y\\r1,2\\r\\n"), lone_carriage_return("x,y\\r\\n")
    (3, None)
    """
    index = text.rstrip("\r\n").find("\r")
    return None if index < 0 else index


def lone_carriage_return_note(index: int) -> str:
    """What a carriage return at character ``index`` of a line means, for a reason.

    >>> print(lone_carriage_return_note(3))  # doctest: +ELLIPSIS
    a carriage return (\\r) at character 3 does not end a record: only \\n or \\r\\n ends one ...
    """
    return f"a carriage return (\\r) at character {index} does not end a record: {LINE_END_RULE}"
