"""Line sources: newline-delimited records from stdin, a pipe or a file.

One reader, :class:`LineSource`, works over any readable file descriptor;
:class:`StdinSource` and :class:`FileSource` only open the descriptor and say
whether it can resume. The reader uses ``poll()`` and ``os.read`` in the calling
thread (no reader thread), so :meth:`LineSource.read_batch` keeps its promises
exactly:

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
from collections import deque
from itertools import accumulate
from typing import Any

from stream_detect.errors import ConfigError, InputError
from stream_detect.formats import format_for_path
from stream_detect.sources.base import RawBatch, Source

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_POLL_INTERVAL_S",
    "DEFAULT_READ_SIZE",
    "PIPE_READ_SIZE",
    "FileSource",
    "LineSource",
    "StdinSource",
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
#: Leading bytes of a file whose hash a resume token carries, to recognise the file.
IDENTITY_BYTES = 4096

_CR = 13


class _LongLine:
    """The line being skipped because it outgrew ``max_line_bytes``."""

    __slots__ = ("ends_with_cr", "head", "length")

    def __init__(self, head: bytes, length: int, ends_with_cr: bool) -> None:
        self.head = head
        #: bytes seen so far, excluding the newline
        self.length = length
        self.ends_with_cr = ends_with_cr


class LineSource(Source):
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

    def _reset(self, line: int, offset: int) -> None:
        """Forget everything buffered; the descriptor is at ``offset``, which starts ``line``."""
        # Records parsed but not yet returned: lists plus a start index, so taking
        # a batch is two slices, not a pop per record.
        self._payloads: list[bytes] = []
        self._positions: list[dict[str, Any]] = []
        self._start = 0
        # (records parsed in total after a read, monotonic time of that read): the
        # oldest unreturned record's arrival time drives the linger deadline.
        self._arrivals: deque[tuple[int, float]] = deque()
        self._parsed_total = 0
        self._returned_total = 0
        # Parse cursor: where the next unparsed line starts.
        self._line = line
        self._offset = offset
        self._pending = bytearray()
        self._long: _LongLine | None = None
        self._read_offset = offset
        self._at_end = False
        self._eof = False
        self._resume = (line, offset)

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
            # Someone else made the descriptor non-blocking and the data went elsewhere.
            return
        except OSError as error:
            raise InputError(f"cannot read: {error.strerror}", source=self.name) from error
        if chunk:
            self._at_end = False
            self._read_offset += len(chunk)
            self._ingest(chunk)
        elif self.follow:
            self._at_end = True
            self._check_not_shrunk()
        else:
            self._finish()
        if self._parsed_total > self._returned_total and (
            not self._arrivals or self._arrivals[-1][0] < self._parsed_total
        ):
            self._arrivals.append((self._parsed_total, time.monotonic()))

    def _check_not_shrunk(self) -> None:
        size = os.fstat(self._fd).st_size
        if size < self._read_offset:
            raise InputError(
                f"the file shrank from {self._read_offset} to {size} bytes while being "
                "followed (truncated or rewritten in place); positions no longer hold, "
                "so restart without the old checkpoint",
                source=self.name,
            )

    def _ingest(self, chunk: bytes) -> None:
        """Parse a chunk: complete lines become records, the tail waits for more."""
        if self._long is not None:
            newline = chunk.find(b"\n")
            if newline < 0:
                self._long.length += len(chunk)
                self._long.ends_with_cr = chunk[-1] == _CR
                return
            self._long.length += newline
            if newline > 0:
                self._long.ends_with_cr = chunk[newline - 1] == _CR
            self._emit_long(terminator=1)
            chunk = chunk[newline + 1 :]
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if lines:
            may_have_cr = b"\r" in chunk
            if self._pending:
                may_have_cr = may_have_cr or b"\r" in self._pending
                lines[0] = bytes(self._pending) + lines[0]
                self._pending = bytearray()
            self._emit_lines(lines, may_have_cr)
        self._pending += tail
        # +1: a line of exactly max_line_bytes may still be followed by its "\r".
        if len(self._pending) > self.max_line_bytes + 1:
            self._long = _LongLine(
                bytes(self._pending[: self.max_line_bytes]),
                len(self._pending),
                self._pending[-1] == _CR,
            )
            self._pending = bytearray()

    def _emit_lines(self, lines: list[bytes], may_have_cr: bool = True) -> None:
        """Append complete lines (each followed by a newline in the input) as records.

        ``may_have_cr=False`` promises that no line contains ``"\\r"``.
        """
        line_no = self._line
        offset = self._offset
        limit = self.max_line_bytes
        count = len(lines)
        if not may_have_cr and max(map(len, lines)) <= limit:
            # The common case, without a Python loop per line: line i starts after the
            # i previous lines and their i newlines.
            self._payloads.extend(lines)
            # One start more than lines (the end of the last): zip stops at the lines.
            starts = accumulate(map(len, lines), initial=offset)
            self._positions.extend(
                [
                    {"line": line_no + index, "offset": start + index}
                    for index, start in zip(range(count), starts, strict=False)
                ]
            )
            self._parsed_total += count
            self._line = line_no + count
            self._offset = offset + sum(map(len, lines)) + count
            return
        payloads = self._payloads
        positions = self._positions
        for raw in lines:
            size = len(raw)
            position: dict[str, Any] = {"line": line_no, "offset": offset}
            line_no += 1
            offset += size + 1
            if raw.endswith(b"\r"):
                raw = raw[:-1]
                size -= 1
            if size > limit:
                position["truncated"] = True
                position["length"] = size
                raw = raw[:limit]
            payloads.append(raw)
            positions.append(position)
        self._parsed_total += count
        self._line = line_no
        self._offset = offset

    def _emit_long(self, terminator: int) -> None:
        """Turn the skipped long line into a truncated record; ``terminator``: 1 or 0 bytes."""
        assert self._long is not None
        long_line = self._long
        self._long = None
        self._payloads.append(long_line.head)
        self._positions.append(
            {
                "line": self._line,
                "offset": self._offset,
                "truncated": True,
                "length": long_line.length - long_line.ends_with_cr,
            }
        )
        self._parsed_total += 1
        self._line += 1
        self._offset += long_line.length + terminator

    def _finish(self) -> None:
        """The stream ended: the unterminated last line, if any, is a record too."""
        self._eof = True
        if self._long is not None:
            self._emit_long(terminator=0)
        elif self._pending:
            self._emit_lines([bytes(self._pending)])
            self._pending = bytearray()
            # _emit_lines stepped over a newline that this last line does not have.
            self._offset -= 1

    def _take(self, max_records: int) -> RawBatch:
        start = self._start
        end = min(start + max_records, len(self._payloads))
        if end == start:
            return RawBatch()
        batch = RawBatch(self._payloads[start:end], self._positions[start:end])
        self._returned_total += end - start
        if end == len(self._payloads):
            self._payloads = []
            self._positions = []
            self._start = 0
            self._resume = (self._line, self._offset)
        else:
            following = self._positions[end]
            self._resume = (following["line"], following["offset"])
            if 2 * end >= len(self._payloads):
                # Drop the returned prefix once it is at least half the lists, or they
                # would grow with the whole stream. The records moved are never more
                # than those dropped, so this costs O(1) per record on average.
                del self._payloads[:end]
                del self._positions[:end]
                self._start = 0
            else:
                self._start = end
        while self._arrivals and self._arrivals[0][0] <= self._returned_total:
            self._arrivals.popleft()
        return batch

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


class FileSource(LineSource):
    """Records from a file (URI ``file:PATH``), optionally followed as it grows.

    Parameters
    ----------
    path
        The file to read. It must exist.
    follow
        Keep reading new lines as they are appended, like ``tail -f`` (the file
        is followed by descriptor, so a rename-and-recreate rotation is not
        seen; a truncation raises :class:`~stream_detect.errors.InputError`).
    max_line_bytes, read_size, poll_interval_s
        As for :class:`LineSource`.
    uri
        The URI as written; defaults to ``file:PATH``.

    :attr:`resumable` is True for a regular file, False for anything else that
    can be opened by name (a named pipe, a character device), since only a
    regular file can go back to a saved offset.

    Raises
    ------
    InputError
        The file is missing, unreadable or a directory; the message names it.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "events.jsonl"
    >>> _ = path.write_bytes(b'{"x": 1}\\n{"x": 2}\\n{"x": 3}\\n')
    >>> source = FileSource(path)
    >>> source.format_hint, source.resumable
    ('json', True)
    >>> source.read_batch(2, linger_s=0.1, timeout_s=1.0).payloads
    [b'{"x": 1}', b'{"x": 2}']
    >>> token = source.resume_token(); token
    {'line': 3, 'offset': 18}
    >>> source.close()
    >>> again = FileSource(path)
    >>> again.seek(token)
    >>> batch = again.read_batch(10, linger_s=0.1, timeout_s=1.0)
    >>> batch.payloads, batch.positions, again.exhausted
    ([b'{"x": 3}'], [{'line': 3, 'offset': 18}], True)
    >>> again.close()
    """

    resumable = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        follow: bool = False,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        read_size: int | None = None,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        uri: str | None = None,
    ) -> None:
        name = os.fspath(path)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise InputError("no such file", source=name) from None
        except PermissionError:
            raise InputError("permission denied", source=name) from None
        except OSError as error:
            raise InputError(f"cannot open: {error.strerror}", source=name) from None
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            os.close(fd)
            raise InputError("is a directory, not a file", source=name)
        self._seekable = stat.S_ISREG(mode)
        self.resumable = self._seekable
        info = os.fstat(fd)
        self._identity = (info.st_dev, info.st_ino)
        # (length, SHA-256) of the first bytes, cached: they do not change while read.
        self._head: tuple[int, str] | None = None
        super().__init__(
            fd,
            uri=uri if uri is not None else f"file:{name}",
            name=name,
            follow=follow,
            max_line_bytes=max_line_bytes,
            read_size=read_size,
            poll_interval_s=poll_interval_s,
            format_hint=format_for_path(name),
            close_fd=True,
        )

    def identity(self) -> dict[str, Any]:
        """What tells this file from another, to keep with a resume token.

        ``device`` and ``inode`` name the file; ``head_bytes`` and ``head_sha256``
        are the length and SHA-256 of its first bytes (up to
        :data:`IDENTITY_BYTES`, never past the current resume position). A
        token merged with these makes :meth:`seek` refuse another file.

        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "events.jsonl"
        >>> _ = path.write_bytes(b'{"x": 1}\\n{"x": 2}\\n')
        >>> source = FileSource(path)
        >>> _ = source.read_batch(1, linger_s=0.0, timeout_s=1.0)
        >>> token = {**source.resume_token(), **source.identity()}
        >>> token["head_bytes"]
        9
        >>> source.close()
        >>> _ = path.write_bytes(b'{"y": 1}\\n{"y": 2}\\n')
        >>> FileSource(path).seek(token)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        stream_detect.errors.InputError: ...: cannot resume: its first bytes differ ...
        """
        if not self._seekable:
            return {}
        length = min(self._resume[1], IDENTITY_BYTES)
        if self._head is None or self._head[0] != length:
            self._head = (length, self._head_digest(length))
        return {
            "device": self._identity[0],
            "inode": self._identity[1],
            "head_bytes": length,
            "head_sha256": self._head[1],
        }

    def _head_digest(self, length: int) -> str:
        import hashlib  # only a checkpointed file's identity needs it

        return hashlib.sha256(os.pread(self._fd, length, 0)).hexdigest()

    def _check_identity(self, token: dict[str, Any]) -> None:
        """Refuse a token taken in another file (a token without identity is trusted)."""
        length, digest = token.get("head_bytes"), token.get("head_sha256")
        if length is None and digest is None:
            return
        if (
            type(length) is not int
            or not 0 <= length <= IDENTITY_BYTES
            or not isinstance(digest, str)
        ):
            raise InputError(
                f"resume token {token!r} has a malformed file identity", source=self.name
            )
        same_file = (token.get("device"), token.get("inode")) == self._identity
        if self._head_digest(length) != digest:
            raise InputError(
                "cannot resume: its first bytes differ from those of the file the checkpoint "
                "was written for (replaced or rewritten); use a new checkpoint file",
                source=self.name,
            )
        if not same_file:
            raise InputError(
                "cannot resume: it is not the file the checkpoint was written for (another "
                "device or inode, e.g. a copy or a rotated file); use a new checkpoint file",
                source=self.name,
            )

    def seek(self, token: dict[str, Any]) -> None:
        """Continue after the position ``token`` describes (from :meth:`resume_token`).

        The next record gets line number ``token["line"]`` and starts at byte
        ``token["offset"]``. Meant to be called before the first read; called
        later, it drops whatever was buffered.

        Raises
        ------
        InputError
            The token is malformed, lies beyond the end of the file, or does not
            fall at the start of a line; the token names another file (other
            device or inode, or other first bytes: the file was replaced or
            rewritten); or the file is not a regular file (a named pipe cannot seek).
        """
        line, offset = self._validated_token(token)
        if not self._seekable:
            raise InputError("cannot resume: not a regular file", source=self.name)
        size = os.fstat(self._fd).st_size
        if offset > size:
            raise InputError(
                f"cannot resume at byte {offset} (line {line}): the file has only {size} bytes; "
                "was it replaced or truncated since the checkpoint?",
                source=self.name,
            )
        # The byte before a line start is a newline; the end of a file whose last
        # line had none is the one other place a token can point to.
        if 0 < offset < size and os.pread(self._fd, 1, offset - 1) != b"\n":
            raise InputError(
                f"cannot resume at byte {offset} (line {line}): it is not the start of a "
                "line; was the file replaced since the checkpoint?",
                source=self.name,
            )
        self._check_identity(token)
        os.lseek(self._fd, offset, os.SEEK_SET)
        self._reset(line, offset)
