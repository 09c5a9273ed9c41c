"""Sinks that write JSON lines to a stream: stdout, stderr or a file.

One implementation, :class:`JsonLinesSink`, writes to any file descriptor;
:class:`StdoutSink`, :class:`StderrSink` and :class:`FileSink` only choose the
descriptor. Records are encoded with orjson, one line each (numpy scalars and
arrays are fine; bytes become text, invalid UTF-8 as ``\\xNN`` escapes); a batch
that offers its own JSON lines (:class:`~stream_detect.sinks.base.EncodedAsJsonLines`)
is taken as it is. The lines are kept in memory until :meth:`~JsonLinesSink.flush`
(or until ``buffer_bytes`` have piled up). Writes go straight to the descriptor
with ``os.write``, bypassing ``sys.stdout``'s buffer, so that after ``flush``
returns the bytes are in the OS and nothing is left for the interpreter to
flush at exit.

**Broken pipe.** When the reader of stdout goes away (``stream-detect run |
head``), ``write_batch``, ``flush`` or ``close`` raise :class:`BrokenPipeError`
and the sink drops what it buffered: the caller should stop reading, skip
committing positions (the records were not delivered), and exit quietly;
:func:`stream_detect.cli.main` does so and points stdout at ``/dev/null``.
After the first, every ``write_batch`` and ``flush`` raise it again, while
``close`` then only releases the sink. Python ignores SIGPIPE, which is what
turns the signal into this exception.

**Output errors.** Any other failure of the destination (``file:/dev/full``:
no space left; an I/O error; stdout closed with ``>&-``) raises
:class:`~stream_detect.errors.OutputError`, which names the destination and
the OS error, and the sink drops what it buffered. As with a broken pipe, the
records were not delivered, so their positions must not be committed; every
later ``write_batch`` and ``flush`` raise it again, and ``close`` only
releases the sink.

**A stalled reader.** A pipe or socket whose reader stops reading would
block a write forever. Such a descriptor is written non-blocking (its mode is
restored after each write), waiting for room in short polls; once the flag
given to :meth:`~JsonLinesSink.interrupt_on` is set (SIGTERM), the write is
given up with :class:`~stream_detect.errors.WriteInterrupted`, so a stop
request is honoured within a fraction of a second whatever the reader does.
The batch in hand is then not delivered (the reader may see its last line
cut off) and the sink behaves as failed. Regular files and terminals are
written as before.

**fsync.** With ``fsync=True``, ``flush`` fsyncs the descriptor when bytes were
written since the last fsync (a flush with nothing new costs no disk sync).

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "alerts.jsonl")
>>> sink = FileSink(path)
>>> sink.write_batch([{"alert": True, "log_p": -31.5}, {"alert": False, "log_p": -2.0}])
>>> sink.flush()
>>> open(path, "rb").read()
b'{"alert":true,"log_p":-31.5}\\n{"alert":false,"log_p":-2.0}\\n'
>>> sink.close()
"""

from __future__ import annotations

import fcntl
import os
import select
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from stream_detect.errors import ConfigError, OutputError, WriteInterrupted
from stream_detect.sinks.base import EncodedAsJsonLines, Sink, StopFlag

__all__ = [
    "DEFAULT_BUFFER_BYTES",
    "FileSink",
    "JsonLinesSink",
    "StderrSink",
    "StdoutSink",
    "encode_json_line",
    "json_default",
]

#: Buffered bytes beyond which ``write_batch`` hands data to the OS without waiting for ``flush``.
DEFAULT_BUFFER_BYTES = 1 << 20

#: Longest a write waiting for a stalled reader goes without looking at the stop flag.
_STALL_POLL_MS = 100

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE


def json_default(value: Any) -> Any:
    """What orjson writes for a value it cannot encode itself: bytes as text.

    Dead letters carry the raw line, which may not be valid UTF-8: invalid
    bytes become ``\\xNN`` escapes, which keep it readable.

    >>> json_default(b"caf\\xc3\\xa9 \\xff")
    'café \\\\xff'

    Raises
    ------
    TypeError
        Any other type (orjson then raises ``JSONEncodeError``).
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    raise TypeError(f"type {type(value).__name__} is not JSON serializable")


def encode_json_line(record: Mapping[str, Any]) -> bytes:
    """Encode one record as a JSON line (with its ``"\\n"``), as every stream sink does.

    NaN and infinities become ``null`` (JSON has no such numbers).

    >>> import numpy as np
    >>> encode_json_line({"x": np.float64(1.5), "v": np.array([1, 2]), "raw": b"ok"})
    b'{"x":1.5,"v":[1,2],"raw":"ok"}\\n'

    Raises
    ------
    TypeError
        A value has a type JSON cannot represent (``orjson.JSONEncodeError``).
    """
    if not isinstance(record, dict):
        record = dict(record)
    return orjson.dumps(record, default=json_default, option=_JSON_OPTIONS)


class JsonLinesSink(Sink):
    """JSON lines written to a file descriptor; see the module docstring.

    Parameters
    ----------
    fd
        A writable descriptor.
    uri
        The URI as the user wrote it (kept in :attr:`uri`).
    name
        What messages call the destination.
    close_fd
        Close ``fd`` in :meth:`close`.
    fsync
        After writing, ``flush`` also calls ``os.fsync`` so the data survives a
        crash of the machine, not only of the process (slower; files only). A
        flush with nothing written since the last fsync does not fsync again.
    buffer_bytes
        Buffered bytes beyond which ``write_batch`` writes without waiting for ``flush``.
    """

    def __init__(
        self,
        fd: int,
        *,
        uri: str,
        name: str,
        close_fd: bool = False,
        fsync: bool = False,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    ) -> None:
        self.uri = uri
        self.name = name
        self.fsync = fsync
        self.buffer_bytes = buffer_bytes
        self._fd = fd
        self._close_fd = close_fd
        # One buffer for the sink's life: filled from the start after each write,
        # never shrunk, so a batch's output costs no allocation once it is big enough.
        self._buffer = bytearray()
        self._buffered = 0
        self._broken = False
        self._failure: OutputError | None = None
        # Bytes reached the descriptor since the last fsync (or since opening).
        self._unsynced = False
        self._closed = False
        self._stop: StopFlag | None = None
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            mode = 0
        # Only a pipe or a socket waits on a reader; toggling a terminal's mode could
        # disturb the shell that shares it.
        self._may_stall = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)

    def interrupt_on(self, stop: StopFlag | None) -> None:
        """Give up a write to a stalled pipe or socket once ``stop`` is set (see the module)."""
        self._stop = stop

    @property
    def broken(self) -> bool:
        """True once the reader went away (a broken pipe); nothing more can be written."""
        return self._broken

    def write_batch(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Encode ``records`` as JSON lines and buffer them, in order.

        Raises
        ------
        BrokenPipeError
            The reader went away (possibly detected now because the buffer was full).
        OutputError
            The destination refused the data (now or earlier); what was buffered is dropped.
        TypeError
            A record holds a value JSON cannot represent; nothing of the batch is queued.
        ValueError
            The sink is closed.
        """
        self._check_usable()
        if not records:
            return
        pieces: Iterable[bytes]
        if isinstance(records, EncodedAsJsonLines):
            pieces = records.json_lines()
        else:
            pieces = map(encode_json_line, records)
        start = self._buffered
        try:
            for piece in pieces:
                end = self._buffered + len(piece)
                # Overwrites the buffer in place; grows it only past its end.
                self._buffer[self._buffered : end] = piece
                self._buffered = end
        except BaseException:
            self._buffered = start
            raise
        if self._buffered >= self.buffer_bytes:
            self._write_out()

    def flush(self) -> None:
        """Write everything buffered to the descriptor (and fsync it if asked).

        With ``fsync``, the descriptor is fsynced only if bytes were written
        since the last fsync.

        Raises
        ------
        BrokenPipeError
            The reader went away; what was buffered is dropped.
        OutputError
            The destination refused the data or the fsync (now or earlier); what
            was buffered is dropped.
        ValueError
            The sink is closed.
        """
        self._check_usable()
        self._write_out()
        if self.fsync and self._unsynced:
            try:
                os.fsync(self._fd)
            except OSError as error:
                raise self._fail(error, "fsync") from error
            self._unsynced = False

    def close(self) -> None:
        """Flush and release; a sink that already failed is released silently.

        "Failed" means a broken pipe or an output error was raised before.

        Raises
        ------
        BrokenPipeError
            The reader went away and this is the first the caller hears of it.
        OutputError
            The final flush, or closing the descriptor, failed, and this is the
            first the caller hears of it.
        """
        if self._closed:
            return
        try:
            if not self._broken and self._failure is None:
                self.flush()
        except BaseException:
            # The flush's error is the one to report; a close error now would hide it.
            self._release(report=False)
            raise
        self._release(report=self._failure is None and not self._broken)

    def _release(self, *, report: bool) -> None:
        self._closed = True
        self._buffer = bytearray()
        self._buffered = 0
        if not self._close_fd:
            return
        try:
            os.close(self._fd)
        except OSError as error:
            # Some file systems (NFS) report a failed write-back only here.
            if report:
                raise OutputError.from_os_error(self.name, error, action="close") from error

    def _check_usable(self) -> None:
        if self._closed:
            raise ValueError(f"sink {self.uri!r} is closed")
        if self._broken:
            raise BrokenPipeError(f"the reader of {self.name} went away")
        if self._failure is not None:
            failure = self._failure
            raise OutputError(
                failure.destination, failure.reason, action=failure.action, errno=failure.errno
            )

    def _fail(self, error: OSError, action: str) -> OutputError:
        """Remember that the destination failed; return the error to raise."""
        self._failure = OutputError.from_os_error(self.name, error, action=action)
        return self._failure

    def _write_out(self) -> None:
        if not self._buffered:
            return
        size = self._buffered
        self._buffered = 0
        with memoryview(self._buffer) as buffer:
            if not self._may_stall:
                self._write_all(buffer[:size])
                return
            flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
            fcntl.fcntl(self._fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
            try:
                self._write_all(buffer[:size])
            finally:
                fcntl.fcntl(self._fd, fcntl.F_SETFL, flags)

    def _write_all(self, view: memoryview) -> None:
        poller: select.poll | None = None
        try:
            while view:
                try:
                    written = os.write(self._fd, view)
                except BlockingIOError:
                    # The reader is not keeping up: wait for room, a stop request ends the wait.
                    if poller is None:
                        poller = select.poll()
                        poller.register(self._fd, select.POLLOUT)
                    while not poller.poll(_STALL_POLL_MS):
                        if self._stop is not None and self._stop.is_set():
                            self._failure = OutputError(self.name, "a stop was requested")
                            raise WriteInterrupted(self.name) from None
                    if self._stop is not None and self._stop.is_set():
                        self._failure = OutputError(self.name, "a stop was requested")
                        raise WriteInterrupted(self.name) from None
                    continue
                except BrokenPipeError:
                    self._broken = True
                    raise
                except OSError as error:
                    raise self._fail(error, "write to") from error
                self._unsynced = True
                view = view[written:]
        finally:
            # The buffer may only grow again once no view of it is left.
            view.release()


class StdoutSink(JsonLinesSink):
    """JSON lines on standard output (URI ``-``); the descriptor is left open."""

    def __init__(self, *, uri: str = "-", buffer_bytes: int = DEFAULT_BUFFER_BYTES) -> None:
        super().__init__(1, uri=uri, name="stdout", buffer_bytes=buffer_bytes)


class StderrSink(JsonLinesSink):
    """JSON lines on standard error (URI ``stderr``); the default for dead letters."""

    def __init__(self, *, uri: str = "stderr", buffer_bytes: int = DEFAULT_BUFFER_BYTES) -> None:
        super().__init__(2, uri=uri, name="stderr", buffer_bytes=buffer_bytes)


class FileSink(JsonLinesSink):
    """JSON lines appended to a file (URI ``file:PATH``), created if missing.

    The directory must exist: a typo in it should fail loudly, not create a
    tree somewhere unexpected.

    A file whose last line has no newline holds a write that was cut short (a
    full disk, a crash in mid-write): its records were never delivered, so
    their input positions were never checkpointed and a restart delivers
    them again. Opening such a file removes that partial last line first, so
    new lines never join it; complete lines are never touched.

    Parameters
    ----------
    path
        The file; existing content is kept and new lines are appended.
    fsync
        ``flush`` also fsyncs (``file:PATH?fsync=true``).
    uri
        The URI as written; defaults to ``file:PATH``.
    config_key
        The setting the path came from, named in errors.

    Raises
    ------
    ConfigError
        The directory does not exist, the path is a directory, or it cannot be
        written; the message names the path.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = False,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        uri: str | None = None,
        config_key: str = "sink",
    ) -> None:
        name = os.fspath(path)
        uri = uri if uri is not None else f"file:{name}"
        directory = Path(name).parent
        if not directory.is_dir():
            raise ConfigError(
                config_key,
                uri,
                f"a file in an existing directory; {str(directory)!r} does not exist",
            )
        try:
            # Read access too: a partial last line is found by reading the end.
            fd = os.open(name, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except IsADirectoryError:
            raise ConfigError(config_key, uri, f"a file, but {name!r} is a directory") from None
        except OSError as error:
            raise ConfigError(
                config_key, uri, f"a writable file; {name!r}: {error.strerror}"
            ) from None
        try:
            _drop_partial_last_line(fd)
        except OSError as error:
            os.close(fd)
            raise ConfigError(
                config_key, uri, f"a file whose end can be repaired; {name!r}: {error.strerror}"
            ) from None
        super().__init__(
            fd, uri=uri, name=name, close_fd=True, fsync=fsync, buffer_bytes=buffer_bytes
        )


def _drop_partial_last_line(fd: int, chunk: int = 1 << 16) -> None:
    """Truncate a regular file after its last newline (nothing if it ends with one or is empty).

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "out.jsonl")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b'{"a":1}\\n{"a":2}\\n{"a"')
    >>> fd = os.open(path, os.O_RDWR)
    >>> _drop_partial_last_line(fd, chunk=4); os.close(fd)
    >>> open(path, "rb").read()
    b'{"a":1}\\n{"a":2}\\n'
    """
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
        return
    end = info.st_size
    if os.pread(fd, 1, end - 1) == b"\n":
        return
    start = end
    while start > 0:
        start = max(0, start - chunk)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            os.truncate(fd, start + newline + 1)
            return
        end = start
    os.truncate(fd, 0)
