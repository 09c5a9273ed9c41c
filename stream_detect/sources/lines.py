"""Line sources: newline-delimited records from stdin, a pipe or a file.

One reader, :class:`LineSource`, works over any readable file descriptor;
:class:`~stream_detect.sources.stdin.StdinSource` and
:class:`~stream_detect.sources.files.FileSource` only open the descriptor and
say whether and how it can resume. Parsing the bytes into records and handing
them out in batches is :class:`~stream_detect.sources.line_buffer.LineBuffer`'s.
The reader uses ``poll()`` and ``os.read`` in the calling thread (no reader
thread), so :meth:`LineSource.read_batch` keeps its promises exactly:

* it waits at most ``timeout_s`` for a first record, so a caller that set a
  stop flag in a SIGTERM handler sees it promptly (PEP 475 resumes the wait
  after the handler returns, but never past the deadline);
* once a record is available it waits at most ``linger_s`` more, counted from
  the moment the bytes were read, so one line a second on a pipe comes out
  within ``linger_s`` while a fast producer fills whole batches;
* it reads binary chunks and splits them with ``bytes.split``, so the cost per
  line is a few Python operations, not a ``readline`` call.

What a record is:

* a line without its ``"\\n"`` and without one trailing ``"\\r"`` (CRLF files
  work); an empty line is an empty record, left to the decoder to judge;
* the last line of a stream that does not end in a newline is still a record
  when the stream ends (a followed file waits for the newline instead, because
  the writer may be half-way through the line);
* its position is ``{"line": N, "offset": O}``: 1-based line number and the
  byte offset of the line's first byte;
* records parsed ahead of the caller (a chunk holds many lines) wait in the
  source until a ``read_batch`` or :meth:`~LineSource.take_buffered` returns
  them; the source keeps only those, never the ones it already returned;
* a line longer than ``max_line_bytes`` (not counting its line terminator) is
  never held whole: the first ``max_line_bytes`` bytes are kept, the rest is
  skipped up to the newline, and the position gains ``"truncated": True`` and
  ``"length"``, the full length in bytes. The payload is incomplete, so the
  pipeline should send it to dead letters. Memory stays bounded by a small multiple
  of ``max_line_bytes + read_size`` whatever the input.

>>> import os
>>> read_end, write_end = os.pipe()
>>> _ = os.write(write_end, b'{"x": 1}\\r\\n{"x": 2}\\nno newline')
>>> os.close(write_end)
>>> source = LineSource(read_end, uri="pipe", name="<pipe>", close_fd=True)
>>> batch = source.read_batch(max_records=10, linger_s=0.1, timeout_s=1.0)
>>> batch.payloads
[b'{"x": 1}', b'{"x": 2}', b'no newline']
>>> batch.positions
[{'line': 1, 'offset': 0}, {'line': 2, 'offset': 10}, {'line': 3, 'offset': 19}]
>>> source.exhausted, source.resume_token()
(True, {'line': 4, 'offset': 29})
>>> source.close()
"""

from __future__ import annotations

import math
import os
import select
import stat
import time
from typing import Any

from stream_detect.errors import ConfigError, InputError
from stream_detect.sources.base import RawBatch, Source
from stream_detect.sources.line_buffer import LineBuffer

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_POLL_INTERVAL_S",
    "DEFAULT_READ_SIZE",
    "PIPE_READ_SIZE",
    "LineSource",
]

#: Longest line kept whole; longer lines are truncated to this many bytes.
DEFAULT_MAX_LINE_BYTES = 1 << 20
#: Bytes asked of one ``os.read`` from a regular file.
DEFAULT_READ_SIZE = 1 << 20
#: Bytes asked of one ``os.read`` from a pipe or terminal: a Linux pipe holds 64 KiB, and
#: asking for more costs a larger buffer per read (measured: about 3x slower per read).
PIPE_READ_SIZE = 1 << 16
#: How often a followed file is checked for growth once its end was reached.
DEFAULT_POLL_INTERVAL_S = 0.05


class LineSource(LineBuffer, Source):
    """Newline-delimited records read from a file descriptor.

    Parameters
    ----------
    fd
        A readable descriptor, positioned where reading starts (``first_offset``).
        It is not made non-blocking: stdin's open file description is shared
        with the parent shell, which must not see its mode change.
    uri
        The URI as the user wrote it (kept in :attr:`uri`).
    name
        What error messages call the input (a path, ``"<stdin>"``).
    follow
        Keep reading after the end, like ``tail -f``; only meaningful for a
        regular file (the source is then never exhausted).
    max_line_bytes
        Longest line kept whole; see the module docstring for longer ones.
    read_size
        Bytes asked of one ``os.read``; None: :data:`DEFAULT_READ_SIZE` for a
        regular file, :data:`PIPE_READ_SIZE` for anything else.
    poll_interval_s
        In follow mode, how long to wait before looking again at a file whose
        end was reached.
    format_hint
        ``"csv"``, ``"json"`` or None, kept in :attr:`format_hint`.
    close_fd
        Close ``fd`` in :meth:`close`.
    first_line, first_offset
        Line number and byte offset of the first byte ``fd`` will return.
    """

    def __init__(
        self,
        fd: int,
        *,
        uri: str,
        name: str,
        follow: bool = False,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        read_size: int | None = None,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        format_hint: str | None = None,
        close_fd: bool = False,
        first_line: int = 1,
        first_offset: int = 0,
    ) -> None:
        if max_line_bytes < 1:
            raise ConfigError("max_line_bytes", max_line_bytes, "an integer >= 1")
        if read_size is None:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
            read_size = DEFAULT_READ_SIZE if regular else PIPE_READ_SIZE
        if read_size < 1:
            raise ConfigError("read_size", read_size, "an integer >= 1")
        if poll_interval_s <= 0:
            raise ConfigError("poll_interval_s", poll_interval_s, "a number of seconds > 0")
        self.uri = uri
        self.name = name
        self.follow = follow
        self.max_line_bytes = max_line_bytes
        self.read_size = read_size
        self.poll_interval_s = poll_interval_s
        self.format_hint = format_hint
        self._fd = fd
        self._close_fd = close_fd
        self._closed = False
        # poll() rather than select(): no FD_SETSIZE limit, and regular files work.
        self._poller = select.poll()
        self._poller.register(fd, select.POLLIN)
        self._reset(first_line, first_offset)

    # -- Source interface -------------------------------------------------------------

    @property
    def exhausted(self) -> bool:
        """True once the stream has ended and every record has been returned.

        A followed file is never exhausted.
        """
        return self._eof and self._start >= len(self._payloads)

    def read_batch(self, max_records: int, linger_s: float, timeout_s: float) -> RawBatch:
        """Return the next records, at most ``max_records`` of them.

        Waits up to ``timeout_s`` for a first record and returns an empty batch
        if none came. Once a record is available, waits at most ``linger_s``
        more (from when its bytes were read) for others to fill the batch.
        Never blocks longer than ``timeout_s`` in all; with ``timeout_s=0`` it
        only takes what is already there. Records come in order, each once.

        Raises
        ------
        InputError
            The descriptor cannot be read, or a followed file shrank.
        """
        if max_records < 1:
            raise ConfigError("max_records", max_records, "an integer >= 1")
        if self._closed:
            raise InputError("read from a closed source", source=self.name)
        call_deadline = time.monotonic() + max(timeout_s, 0.0)
        linger_s = max(linger_s, 0.0)
        first_pass = True
        while not self._eof and len(self._payloads) - self._start < max_records:
            if self._arrivals:
                deadline = min(self._arrivals[0][1] + linger_s, call_deadline)
            else:
                deadline = call_deadline
            wait_s = deadline - time.monotonic()
            # One look is always allowed, so records already waiting in the pipe are
            # taken even when the deadline has passed (timeout_s=0 means "don't wait").
            if wait_s <= 0 and not first_pass:
                break
            first_pass = False
            self._fill(max(wait_s, 0.0))
        return self._take(max_records)

    def take_buffered(self, max_records: int) -> RawBatch:
        """Return at most ``max_records`` complete lines already read, without reading more.

        The lines come in order after those ``read_batch`` returned, with their
        positions, and :meth:`resume_token` moves past them. What is not yet a
        complete line (the bytes after the last newline, while the stream has
        not ended) is not returned; the unread rest of a file or pipe stays
        unread.

        Raises
        ------
        ConfigError
            ``max_records`` is below 1.
        InputError
            The source is closed.
        """
        if max_records < 1:
            raise ConfigError("max_records", max_records, "an integer >= 1")
        if self._closed:
            raise InputError("read from a closed source", source=self.name)
        return self._take(max_records)

    def resume_token(self) -> dict[str, Any]:
        """Position just after the last record returned: ``{"line": N, "offset": O}``.

        ``line`` is the number the next record will get, ``offset`` the byte
        where it starts.
        """
        line, offset = self._resume
        return {"line": line, "offset": offset}

    def close(self) -> None:
        """Release the descriptor (closed only if the source owns it)."""
        if self._closed:
            return
        self._closed = True
        self._poller.unregister(self._fd)
        if self._close_fd:
            os.close(self._fd)

    # -- reading ----------------------------------------------------------------------

    def _fill(self, wait_s: float) -> None:
        """Wait up to ``wait_s`` for bytes, then read and parse one chunk."""
        if self.follow and self._at_end:
            # A regular file always polls readable, so growth shows only by looking again.
            time.sleep(min(self.poll_interval_s, wait_s))
        elif not self._poller.poll(math.ceil(wait_s * 1000)):
            return
        try:
            chunk = os.read(self._fd, self.read_size)
        except BlockingIOError:
            # A non-blocking descriptor (a named pipe's) whose data another reader took.
            return
        except OSError as error:
            raise InputError(f"cannot read: {error.strerror}", source=self.name) from error
        if chunk:
            self._at_end = False
            self._read_offset += len(chunk)
            self._ingest(chunk)
        elif self.follow:
            self._at_end = True
            self._reached_followed_end()
        else:
            self._finish()
        if self._parsed_total > self._returned_total and (
            not self._arrivals or self._arrivals[-1][0] < self._parsed_total
        ):
            self._arrivals.append((self._parsed_total, time.monotonic()))

    def _reached_followed_end(self) -> None:
        """A followed descriptor has nothing more for now: check it did not shrink.

        A source that knows the file's name may also look for a new file there
        (:class:`~stream_detect.sources.files.FileSource`).
        """
        self._check_not_shrunk()

    def _check_not_shrunk(self) -> None:
        size = os.fstat(self._fd).st_size
        if size < self._read_offset:
            raise InputError(
                f"the file shrank from {self._read_offset} to {size} bytes while being "
                "followed (truncated or rewritten in place); positions no longer hold, "
                "so restart without the old checkpoint",
                source=self.name,
            )

    # -- resuming ---------------------------------------------------------------------

    def _validated_token(self, token: dict[str, Any]) -> tuple[int, int]:
        """Return ``(line, offset)`` from a token, or raise InputError if it is malformed."""
        line = token.get("line") if isinstance(token, dict) else None
        offset = token.get("offset") if isinstance(token, dict) else None
        if (
            type(line) is not int
            or type(offset) is not int
            or line < 1
            or offset < 0
            or (line == 1) != (offset == 0)
        ):
            raise InputError(
                f"resume token {token!r} is not a line position: expected "
                "{'line': N >= 1, 'offset': O >= 0}, with line 1 exactly at offset 0",
                source=self.name,
            )
        return line, offset
