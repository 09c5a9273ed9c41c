"""The file sink: JSON lines appended to a file, which a cut-short last write never spoils.

:class:`FileSink` opens the file for :class:`~stream_detect.sinks.streams.JsonLinesSink`
(everything about buffering, errors and fsync is there) and first removes a
partial last line, the trace of a write cut short by a full disk or a crash:
those records were never delivered, so a restart delivers them again, and a
new line must not join the broken one.

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

import errno
import os
import stat
import time
from pathlib import Path

from stream_detect.errors import ConfigError, OutputError, WriteInterrupted
from stream_detect.sinks.streams import DEFAULT_BUFFER_BYTES, JsonLinesSink

__all__ = ["FileSink"]

#: How often a sink on a named pipe looks for a first reader.
_READER_POLL_S = 0.1


class FileSink(JsonLinesSink):
    """JSON lines appended to a file (URI ``file:PATH``), created if missing.

    The directory must exist: a typo in it should fail loudly, not create a
    tree somewhere unexpected.

    A file whose last line has no newline holds a write that was cut short (a
    full disk, a crash in mid-write): its records were never delivered, so
    their input positions were never checkpointed and a restart delivers
    them again. Opening such a file removes that partial last line first, so
    new lines never join it; complete lines are never touched.

    A named pipe is opened for writing only, as a shell's ``>`` does: the
    first write waits for a reader (a stop request given to
    :meth:`interrupt_on` ends the wait with WriteInterrupted), and a reader
    that goes away raises BrokenPipeError, as it does on stdout.

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
        fifo = _is_fifo(name)
        try:
            if fifo:
                fd = _open_fifo(name)
            else:
                # Read access too: a partial last line is found by reading the end.
                fd = os.open(name, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except IsADirectoryError:
            raise ConfigError(config_key, uri, f"a file, but {name!r} is a directory") from None
        except OSError as error:
            raise ConfigError(
                config_key, uri, f"a writable file; {name!r}: {error.strerror}"
            ) from None
        try:
            if not fifo:
                _drop_partial_last_line(fd)
        except OSError as error:
            os.close(fd)
            raise ConfigError(
                config_key, uri, f"a file whose end can be repaired; {name!r}: {error.strerror}"
            ) from None
        super().__init__(
            fd, uri=uri, name=name, close_fd=True, fsync=fsync, buffer_bytes=buffer_bytes
        )
        # A named pipe waits on its reader, for room and (fd -1) for a first one.
        self._may_stall = self._may_stall or fifo

    def _write_out(self) -> None:
        if self._fd < 0 and self._buffered:
            self._fd = self._await_reader()
        super()._write_out()

    def _await_reader(self) -> int:
        """The named pipe opened for writing once a reader has it open; a stop ends the wait."""
        while True:
            try:
                fd = _open_fifo(self.name)
            except OSError as error:
                raise self._fail(error, "open") from error
            if fd >= 0:
                return fd
            if self._stop is not None and self._stop.is_set():
                self._failure = OutputError(self.name, "a stop was requested")
                raise WriteInterrupted(self.name)
            time.sleep(_READER_POLL_S)


def _is_fifo(name: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(name).st_mode)
    except OSError:
        return False


def _open_fifo(name: str) -> int:
    """A named pipe opened for writing only, or -1 while no reader has it open.

    Write only: a sink that could read its own pipe would be a reader itself, so a
    reader that went away would never break the pipe, and once the pipe was full
    the run would wait for ever. Non-blocking: a blocking open waits for a reader
    inside open(), where no stop request reaches it.
    """
    try:
        fd = os.open(name, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ENXIO:  # no reader yet
            return -1
        raise
    os.set_blocking(fd, True)
    return fd


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
