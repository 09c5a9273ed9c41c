"""Atomic file replacement: a temporary file beside the target, flushed to disk, then renamed.

A crash leaves either the old file or the new one, never half of one. Model
files and checkpoints are both written this way.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import time
from pathlib import Path

__all__ = [
    "check_replaceable",
    "check_writable_folder",
    "remove_leftovers",
    "write_atomically",
]


def check_replaceable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`OSError` if ``path`` exists and is not a regular file (or a link to one).

    A rename over a device, a FIFO or a socket would not write into it but
    replace it: as root, ``/dev/null`` would become a regular file.

    >>> check_replaceable("/dev/null")
    Traceback (most recent call last):
    ...
    OSError: [Errno 22] not a regular file: '/dev/null'
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
    if not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))


def check_writable_folder(folder: str | os.PathLike[str]) -> None:
    """Raise :class:`OSError` unless a file can be made in ``folder`` (one is made and removed).

    Asked before a run writes results, so that a checkpoint that could never
    be written is refused at the start, not after the first results.
    Permission bits alone would not say it: root may write where a
    read-only or virtual file system (``/proc``) still refuses.

    >>> check_writable_folder("/proc")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: [Errno 2] No such file or directory: ...
    """
    # A name of its own (not tempfile's, whose import costs start-up time).
    probe = Path(folder, f".stream-detect-probe-{os.getpid()}-{time.monotonic_ns()}")
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.unlink(probe)


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` by a file holding ``data``, atomically and durably.

    The bytes go to a temporary file in the same directory (a rename is only
    atomic within one file system), which is fsynced, renamed over ``path``,
    and then the directory is fsynced too, so the rename itself survives a
    power cut where the platform allows opening a directory. A ``path`` that
    is not a regular file is refused (:func:`check_replaceable`). On failure the
    temporary file is removed and the :class:`OSError` propagates: the caller
    words the message, since only it knows what the file is.

    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "state.json"
    >>> write_atomically(target, b"{}")
    >>> target.read_bytes(), [p.name for p in target.parent.iterdir()]
    (b'{}', ['state.json'])
    """
    import tempfile  # only runs that write state need it

    target = Path(path)
    check_replaceable(target)
    directory = target.parent
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_directory(directory)


def remove_leftovers(path: str | os.PathLike[str]) -> int:
    """Remove the temporary files :func:`write_atomically` left beside ``path``; return how many.

    A process killed while writing leaves its temporary file (``.NAME.XXXXXXXX.tmp``,
    as large as the file it was to replace), and a run killed again and again
    would leave one each time. Call only while no other process may be writing
    ``path`` (a run holding its checkpoint's lock): a write in progress looks
    the same. The temporary files of other files in the folder are left alone.

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in (".state.json.k3_9ab0z.tmp", ".state.json.bak.k3_9ab0z.tmp", "state.json"):
    ...     _ = (folder / name).write_bytes(b"{}")
    >>> remove_leftovers(folder / "state.json")
    1
    >>> sorted(p.name for p in folder.iterdir())
    ['.state.json.bak.k3_9ab0z.tmp', 'state.json']
    """
    target = Path(path)
    # tempfile.mkstemp's names: the prefix, 8 characters of its alphabet, the suffix.
    leftover = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.tmp")
    removed = 0
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return 0
    for entry in entries:
        if leftover.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except OSError:
                continue
            removed += 1
    return removed


def _sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable, where the platform allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
