"""Standard input as a line source (URI ``-``)."""

from __future__ import annotations

import os
from typing import Any

from stream_detect.errors import InputError
from stream_detect.sources.lines import DEFAULT_MAX_LINE_BYTES, LineSource

__all__ = ["StdinSource"]


class StdinSource(LineSource):
    """Records from standard input (URI ``-``).

    Stdin cannot be rewound, so :meth:`seek` accepts only the start of the
    stream and :attr:`resumable` is False. The descriptor is not closed by
    :meth:`close`.

    Raises
    ------
    InputError
        Stdin is closed (``stream-detect run <&-``).
    """

    resumable = False

    def __init__(
        self,
        *,
        uri: str = "-",
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        read_size: int | None = None,
    ) -> None:
        try:
            os.fstat(0)
        except OSError as error:
            raise InputError(
                f"stdin is closed ({error.strerror}); pipe or redirect the input into "
                "it, or read a file with file:PATH",
                source="<stdin>",
            ) from None
        super().__init__(
            0,
            uri=uri,
            name="<stdin>",
            max_line_bytes=max_line_bytes,
            read_size=read_size,
        )

    def seek(self, token: dict[str, Any]) -> None:
        """Accept only the start of the stream; stdin cannot go back to a saved position.

        Raises
        ------
        InputError
            For any token but ``{"line": 1, "offset": 0}``.
        """
        line, offset = self._validated_token(token)
        if (line, offset) != (1, 0) or self._read_offset != 0:
            raise InputError(
                f"stdin cannot resume from a saved position (line {line}, offset {offset}); "
                "read the input with file:PATH to resume after a restart",
                source=self.name,
            )
