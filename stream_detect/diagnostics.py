"""Lines for the operator on stderr: best effort, so a failing stderr never stops the work.

The command line writes messages to ``sys.stderr``: the features line, warnings,
the summary, reconnections, the final error. None of them is data: dead letters
sent to ``stderr`` go through their own sink (:class:`~stream_detect.sinks.StderrSink`),
which writes the descriptor itself and stops the run when it cannot (exit 2).
A stderr that refuses writes (a log file on a full disk, a reader that went
away, ``2>/dev/full``) made the first message raise: a run wrote no result
and exited 1 with a traceback nobody could see. :func:`best_effort_stderr`
puts a :class:`BestEffortText` in front of ``sys.stderr`` for the duration of
a command, so a message that cannot be written is dropped and the work goes on.

Standard output is the other way round for the commands that print a report
there (``fit``, ``evaluate``, ``inspect``, ``replay``, ``demo``): the report is
the work, so :func:`checked_stdout` turns a write the stream refuses into an
:class:`~stream_detect.errors.OutputError` (one line, exit 2), where it was a
traceback and exit 1. A reader that went away stays a :class:`BrokenPipeError`.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any, TextIO, cast

from stream_detect.errors import OutputError

__all__ = [
    "BestEffortText",
    "CheckedText",
    "best_effort_stderr",
    "checked_stdout",
    "json_line_for",
]


class BestEffortText:
    """A text stream whose ``write`` and ``flush`` drop what the stream refuses.

    ``failed`` turns true at the first refusal. Everything else (``isatty``,
    ``fileno``...) is the wrapped stream's.

    >>> import io
    >>> class Full(io.StringIO):
    ...     def write(self, text: str) -> int:
    ...         raise OSError(28, "No space left on device")
    >>> stream = BestEffortText(Full())
    >>> stream.write("features\\n"), stream.failed
    (9, True)
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.failed = False

    def write(self, text: str) -> int:
        """Write ``text``, or drop it if the stream refuses; return its length either way."""
        try:
            return self.stream.write(text)
        except OSError:
            self.failed = True
            return len(text)

    def flush(self) -> None:
        """Flush, or give up what the stream refuses."""
        try:
            self.stream.flush()
        except OSError:
            self.failed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextlib.contextmanager
def best_effort_stderr() -> Iterator[BestEffortText]:
    """Make ``sys.stderr`` a :class:`BestEffortText` inside the block, restored after it.

    >>> with best_effort_stderr() as stream:
    ...     sys.stderr is stream
    True
    """
    previous = sys.stderr
    wrapped = previous if isinstance(previous, BestEffortText) else BestEffortText(previous)
    with contextlib.redirect_stderr(cast(TextIO, wrapped)):
        yield wrapped


class CheckedText:
    """A text stream whose ``write`` and ``flush`` raise :class:`OutputError` for a refusal.

    ``destination`` names the stream in the error. A broken pipe is left as it
    is: a reader that went away is not an error of the program. Everything else
    (``isatty``, ``fileno``...) is the wrapped stream's.

    >>> import io
    >>> class Full(io.StringIO):
    ...     def write(self, text: str) -> int:
    ...         raise OSError(28, "No space left on device")
    >>> CheckedText(Full(), "stdout").write("report\\n")
    Traceback (most recent call last):
    ...
    stream_detect.errors.OutputError: cannot write to stdout: No space left on device
    """

    def __init__(self, stream: TextIO, destination: str) -> None:
        self.stream = stream
        self.destination = destination

    def write(self, text: str) -> int:
        """Write ``text``; raise :class:`OutputError` if the stream refuses it.

        Text the stream's encoding cannot carry (a feature named in Cyrillic, with
        ``PYTHONIOENCODING=ascii``) is refused too, naming the character.
        """
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise OutputError.from_os_error(self.destination, error) from None
        except UnicodeEncodeError as error:
            character = error.object[error.start : error.end]
            raise OutputError(
                self.destination,
                f"its encoding ({error.encoding}) cannot carry {character!r}; "
                "set PYTHONIOENCODING=utf-8",
            ) from None

    def flush(self) -> None:
        """Flush; raise :class:`OutputError` if the stream refuses it."""
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise OutputError.from_os_error(self.destination, error) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextlib.contextmanager
def checked_stdout() -> Iterator[CheckedText]:
    """Make ``sys.stdout`` a :class:`CheckedText` inside the block, restored after it.

    >>> with checked_stdout() as stream:
    ...     sys.stdout is stream
    True
    """
    previous = sys.stdout
    wrapped = previous if isinstance(previous, CheckedText) else CheckedText(previous, "stdout")
    with contextlib.redirect_stdout(cast(TextIO, wrapped)):
        yield wrapped


def json_line_for(stream: TextIO, line: str) -> str:
    r"""``line`` (one JSON text) as ``stream`` can carry it: escaped to ASCII if it must be.

    A stream whose encoding cannot write a character (``PYTHONIOENCODING=ascii``)
    would write ``\xe9`` for it, which JSON does not read; ``\u00e9`` it does.

    >>> import io
    >>> ascii_stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    >>> json_line_for(ascii_stream, '{"features":["température"]}')
    '{"features":["temp\\u00e9rature"]}'
    >>> json_line_for(sys.stderr, '{"features":["x"]}')
    '{"features":["x"]}'
    """
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        line.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return json.dumps(json.loads(line), separators=(",", ":"))
    return line
