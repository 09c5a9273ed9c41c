"""Sinks that write JSON lines to a file descriptor: stdout, stderr, a pipe or a file.

One implementation, :class:`JsonLinesSink`, writes to any file descriptor;
:class:`StdoutSink` and :class:`StderrSink` only choose the descriptor, and
:class:`~stream_detect.sinks.files.FileSink` opens (and repairs) a file for it.
Records are encoded one line each by
:func:`~stream_detect.sinks.json_encoding.encode_json_line`; a batch that
offers its own JSON lines (:class:`~stream_detect.sinks.base.EncodedAsJsonLines`)
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

>>> read_end, write_end = os.pipe()
>>> sink = JsonLinesSink(write_end, uri="pipe", name="a pipe", close_fd=True)
>>> sink.write_batch([{"alert": True, "log_p": -31.5}, {"alert": False, "log_p": -2.0}])
>>> sink.flush(); sink.close()
>>> os.read(read_end, 100)
b'{"alert":true,"log_p":-31.5}\\n{"alert":false,"log_p":-2.0}\\n'
>>> os.close(read_end)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from stream_detect.errors import OutputError, WriteInterrupted
from stream_detect.sinks.base import EncodedAsJsonLines, Sink, StopFlag
from stream_detect.sinks.json_encoding import encode_json_line
from stream_detect.stderr_lines import STDERR_LOCK

__all__ = ["DEFAULT_BUFFER_BYTES", "JsonLinesSink", "StderrSink", "StdoutSink"]

#: Buffered bytes beyond which ``write_batch`` hands data to the OS without waiting for ``flush``.
DEFAULT_BUFFER_BYTES = 1 << 20

#: Longest a write waiting for a stalled reader goes without looking at the stop flag.
_STALL_POLL_MS = 100


def writes_where_stderr_does(fd: int) -> bool:
    """True if ``fd`` is stderr's file: fd 2, ``/dev/stderr`` opened again, stdout with ``2>&1``.

    A sink on such a descriptor holds :data:`~stream_detect.stderr_lines.STDERR_LOCK`
    as it writes, so no line of another thread lands inside its batch.

    >>> writes_where_stderr_does(2)
    True
    """
    if fd == 2:
        return True
    try:
        return os.path.samestat(os.fstat(fd), os.fstat(2))
    except OSError:
        return False


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
        # Other threads write lines to stderr too: a batch goes out whole between them.
        self._shares_stderr = writes_where_stderr_does(fd)

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
        if not self._close_fd or self._fd < 0:  # -1: a named pipe never opened
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
        with self._stderr_turn(), memoryview(self._buffer) as buffer:
            if not self._may_stall:
                self._write_all(buffer[:size])
                return
            flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
            fcntl.fcntl(self._fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
            try:
                self._write_all(buffer[:size])
            finally:
                fcntl.fcntl(self._fd, fcntl.F_SETFL, flags)

    @contextlib.contextmanager
    def _stderr_turn(self) -> Iterator[None]:
        """Hold the stderr lock if this sink writes to stderr's file; a stop ends the wait.

        The lock's holder may be stuck writing to the same stalled pipe.
        """
        if not self._shares_stderr:
            yield
            return
        while not STDERR_LOCK.acquire(timeout=_STALL_POLL_MS / 1000):
            self._give_up_if_stopped()
        try:
            yield
        finally:
            STDERR_LOCK.release()

    def _give_up_if_stopped(self) -> None:
        """Raise :class:`WriteInterrupted` (the sink failed) if a stop was requested."""
        if self._stop is not None and self._stop.is_set():
            self._failure = OutputError(self.name, "a stop was requested")
            raise WriteInterrupted(self.name) from None

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
                        self._give_up_if_stopped()
                    self._give_up_if_stopped()
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
