"""Characters a record may hold without showing them: a NUL byte, a byte-order mark.

Neither belongs inside a record. A NUL byte (``\\x00``) comes from a file
written as UTF-16 (one in every other byte of ASCII text) or padded with
zeros (a file cut short by a crash); a byte-order mark (U+FEFF) may start a
file's first line, where it is dropped, and inside a stream it is most
likely where files were joined. Printed, both are invisible or a bare escape
code, so the reason a record is refused names them: :func:`hidden_character_note`
finds the first in a text and says what it is and why it is there, in the
words every refusal uses.
"""

from __future__ import annotations

from typing import Final

__all__ = ["hidden_character_note"]

#: Each hidden character, what to call it, and what likely put it there.
_HIDDEN: Final = {
    "\x00": ("a NUL byte \\x00", "text holds none; is the file UTF-16, or padded with zeros?"),
    "\ufeff": (
        "a byte-order mark U+FEFF",
        "only a stream's first line may start with one; were files joined?",
    ),
}


def hidden_character_note(text: str, within: str = "line") -> str | None:
    """What the first NUL byte or byte-order mark in ``text`` is, for a reason; None: none.

    ``within`` names what ``text`` is (``line``, ``cell``), for the position.

    >>> print(hidden_character_note('{"x": 1}\\x00'))
    a NUL byte \\x00 at character 8 of the line: text holds none; is the file UTF-16, or \
padded with zeros?
    >>> print(hidden_character_note("\\ufeff5", "cell"))
    a byte-order mark U+FEFF at character 0 of the cell: only a stream's first line may \
start with one; were files joined?
    >>> hidden_character_note("1,2") is None
    True
    """
    found = [(index, mark) for mark in _HIDDEN if (index := text.find(mark)) >= 0]
    if not found:
        return None
    index, mark = min(found)
    name, why = _HIDDEN[mark]
    return f"{name} at character {index} of the {within}: {why}"
