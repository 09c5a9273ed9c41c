"""A file as a line source (URI ``file:PATH``).

The file is read or followed as it grows, and a resume token carries what
identifies the file, so a restart resumes only in the file it was taken in.
"""

from __future__ import annotations

import os
import select
import stat
from typing import Any

from stream_detect.errors import InputError
from stream_detect.formats import format_for_path
from stream_detect.sources.lines import (
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_POLL_INTERVAL_S,
    LineSource,
)
from stream_detect.stderr_lines import write_stderr

__all__ = ["IDENTITY_BYTES", "FileSource"]

#: Leading bytes of a file whose hash a resume token carries, to recognise the file.
IDENTITY_BYTES = 4096


class FileSource(LineSource):
    """Records from a file (URI ``file:PATH``), optionally followed as it grows.

    Parameters
    ----------
    path
        The file to read. It must exist.
    follow
        Keep reading new lines as they are appended, like ``tail -F``: once
        the file is read to its end and its path names another regular file
        (rotated: renamed or removed, and made anew), that file is read from
        its start, with one line on stderr saying so; a file removed and not
        yet made anew is still read by descriptor. A truncation raises
        :class:`~stream_detect.errors.InputError`. A file rotated while the
        run was stopped is read from its start too (see :meth:`seek`).
    max_line_bytes, read_size, poll_interval_s
        As for :class:`LineSource`.
    uri
        The URI as written; defaults to ``file:PATH``.

    :attr:`resumable` is True for a regular file, False for anything else that
    can be opened by name (a named pipe, a character device), since only a
    regular file can go back to a saved offset.

    A named pipe is opened without waiting for a writer: until one connects,
    reads return empty batches after their timeout (so a stop request is seen
    as promptly as on any other input); the stream ends when the last writer
    closes its end, after at least one has connected.

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
            # Non-blocking, or opening a named pipe would wait for a writer inside
            # open(), where no stop request (SIGTERM) can reach it.
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
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
        if not stat.S_ISFIFO(mode):
            os.set_blocking(fd, True)
        # A named pipe stays non-blocking: every read follows a poll() that saw it
        # readable, and until a first writer connects Linux's poll() reports nothing
        # (no hang-up), so a read waits for a writer as a blocking open() did, but
        # only up to its timeout.
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

    def _reached_followed_end(self) -> None:
        """Read the file now at the path, if it was rotated and the old one is read to its end.

        Nothing of the old file is left behind: not while records parsed from
        it wait to be returned, nor while it still grows (a writer that has not
        reopened yet); an unterminated last line is handed out as a record
        first, as at the end of a stream.
        """
        super()._reached_followed_end()
        try:
            info = os.stat(self.name)
        except OSError:
            # Removed and not made anew (yet): what is still written to it is read.
            return
        if (info.st_dev, info.st_ino) == self._identity or not stat.S_ISREG(info.st_mode):
            return
        if self._parsed_total > self._returned_total:
            return
        if os.fstat(self._fd).st_size > self._read_offset:
            self._at_end = False
            return
        if self._pending or self._long is not None:
            self._finish()
            self._eof = False
            return
        try:
            fd = os.open(self.name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        lines, size = self._line - 1, self._read_offset
        self._poller.unregister(self._fd)
        os.close(self._fd)
        self._fd = fd
        self._poller.register(fd, select.POLLIN)
        opened = os.fstat(fd)
        self._identity = (opened.st_dev, opened.st_ino)
        self._head = None
        self._reset(1, 0)
        self.rotations += 1
        write_stderr(
            f"stream-detect: {self.name}: the followed file was rotated (renamed or removed, "
            f"and made anew) after its {lines} lines ({size} bytes) were read; reading the "
            "new file from its start, whose positions count from line 1 again\n"
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

    def _rotated_while_stopped(self, token: dict[str, Any]) -> bool:
        """True if ``token`` names another file, by device or inode and by first bytes.

        Only then can the file at the path be a new one: the rotation that
        :meth:`_reached_followed_end` follows in a running follower. The same
        device and inode changed in place (truncated, as by a copy-and-truncate
        rotation, or rewritten) is refused by :meth:`_check_identity` instead,
        as a running follower refuses a file that shrank: what the bytes at the
        saved positions are now cannot be told (a new start, or the old events
        edited, which reading from the start would learn twice). Nor is another
        file with the same first bytes a new one: it is more likely a copy or a
        move to another file system, where reading from the start would learn
        the events before the position twice. A token without an identity (a
        checkpoint from before identities were kept) names no file.
        """
        length, digest = token.get("head_bytes"), token.get("head_sha256")
        if type(length) is not int or not 0 <= length <= IDENTITY_BYTES:
            return False
        if not isinstance(digest, str):
            return False
        if (token.get("device"), token.get("inode")) == self._identity:
            return False
        return self._head_digest(length) != digest

    def _start_anew_after_stop(self, line: int, offset: int) -> None:
        """Read from the start a followed file rotated while stopped, saying so on stderr."""
        self._reset(1, 0)
        self.rotations += 1
        write_stderr(
            f"stream-detect: warning: {self.name}: the followed file was replaced while the "
            f"run was stopped (rotated: another file than the one the checkpoint was written "
            f"for, after its {line - 1} lines ({offset} bytes)); whatever that old file held "
            "past them was not read; reading the file now at the path from its start, "
            "keeping the model\n"
        )

    def seek(self, token: dict[str, Any]) -> None:
        """Continue after the position ``token`` describes (from :meth:`resume_token`).

        The next record gets line number ``token["line"]`` and starts at byte
        ``token["offset"]``. Meant to be called before the first read; called
        later, it drops whatever was buffered.

        A followed file that is another file than the token names, by device
        or inode and by its first bytes, was rotated while the run was
        stopped: it is read from its start, :attr:`rotations` counts it, and
        one line on stderr says that what the old file held past the token
        was not read.

        Raises
        ------
        InputError
            The token is malformed, lies beyond the end of the file, or does not
            fall at the start of a line; the token names another file (other
            device or inode, or other first bytes: the file was replaced or
            rewritten) and the file is not followed, or is followed and is the
            same file changed in place (truncated or rewritten), or another
            file with the same first bytes (a copy); or the file is not a
            regular file (a named pipe cannot seek).
        """
        line, offset = self._validated_token(token)
        if not self._seekable:
            raise InputError("cannot resume: not a regular file", source=self.name)
        if self._rotated_while_stopped(token):
            if not self.follow:
                # Only a followed file is one whose path may name a new file.
                raise InputError(
                    "cannot resume: it is another file than the one the checkpoint was "
                    "written for (another device or inode, and its first bytes differ: "
                    "replaced or rotated since); follow it (?follow=true) to read it from "
                    "its start keeping the model, or use a new checkpoint file",
                    source=self.name,
                )
            self._start_anew_after_stop(line, offset)
            return
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
