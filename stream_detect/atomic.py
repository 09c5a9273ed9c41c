"""Atomic file replacement: a temporary file beside the target, flushed to disk, then renamed.

A crash leaves either the old file or the new one, never half of one. Model
files and checkpoints are both written this way.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import time
from contextlib import suppress
from pathlib import Path

__all__ = [
    "check_replaceable",
    "check_writable_file",
    "check_writable_folder",
    "remove_leftovers",
    "remove_shared_leftovers",
    "write_atomically",
    "written_file",
]

#: A temporary file modified this recently is kept by :func:`remove_shared_leftovers`: its
#: writer locks it at once, but not in the same step as making it, and on a shared disk
#: the clocks of two hosts may differ by a little.
SHARED_LEFTOVER_AGE_S = 60.0


def written_file(path: str | os.PathLike[str]) -> Path:
    """The file a write to ``path`` replaces: the one a symbolic link leads to, if it is one.

    A rename replaces what it is given: given a link, the link, and the file the
    link leads to would keep the old content. So writes, their temporary files,
    their leftovers and a checkpoint's lock all go by this file.

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "link.json").symlink_to(folder / "state.json")
    >>> written_file(folder / "link.json").name
    'state.json'
    """
    return Path(os.path.realpath(path))


def check_replaceable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`OSError` if ``path`` exists and is not a regular file (or a link to one).

    A rename over a device, a FIFO or a socket would not write into it but
    replace it: as root, ``/dev/null`` would become a regular file. So would
    ``/dev/stdout`` when it leads to a regular file (a shell's ``>``): a
    path through ``/proc`` (an open descriptor's link) is refused too.

    >>> check_replaceable("/dev/null")
    Traceback (most recent call last):
    ...
    OSError: [Errno 22] not a regular file: '/dev/null'
    >>> check_replaceable("/dev/fd/1")
    Traceback (most recent call last):
    ...
    OSError: [Errno 22] in /proc (an open stream, as /dev/stdout is), not a file: '/dev/fd/1'
    """
    if _through_proc(Path(path)):
        raise OSError(
            errno.EINVAL,
            "in /proc (an open stream, as /dev/stdout is), not a file",
            os.fspath(path),
        )
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


def check_writable_file(path: str | os.PathLike[str], *, by_rename: bool) -> None:
    """Raise :class:`OSError` now if a file could not be written at ``path`` later.

    The one rule for an output named before the work that makes it (a model
    file, a plot): the folder the file goes to must exist (a symbolic link's
    target's folder, as the write follows the link) and a file must be
    possible there, and ``path`` must not be a folder. With ``by_rename``
    (:func:`write_atomically` replaces the file) ``path`` must also be
    :func:`check_replaceable`. The error's ``strerror`` is a phrase a caller
    puts after its own words ("cannot write the plot: no such folder").

    >>> check_writable_file("/no/such/folder/model.json", by_rename=True)
    Traceback (most recent call last):
    ...
    FileNotFoundError: [Errno 2] no such folder: '/no/such/folder/model.json'
    """
    target = Path(path)
    folder = written_file(target).parent
    if not target.absolute().parent.is_dir() or not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder", os.fspath(path))
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "it is a folder", os.fspath(path))
    if by_rename:
        check_replaceable(target)
    # Permission bits alone would not say it: root may write where /sys or a
    # read-only mount refuses, and a user may not where the bits seem to allow.
    check_writable_folder(folder)


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` by a file holding ``data``, atomically and durably.

    The bytes go to a temporary file in the same directory (a rename is only
    atomic within one file system), which is fsynced, renamed over ``path``,
    and then the directory is fsynced too, so the rename itself survives a
    power cut where the platform allows opening a directory. A ``path`` that
    is not a regular file is refused (:func:`check_replaceable`); a symbolic
    link stays one, and the file it leads to is replaced. On failure the
    temporary file is removed and the :class:`OSError` propagates: the caller
    words the message, since only it knows what the file is.

    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "state.json"
    >>> write_atomically(target, b"{}")
    >>> target.read_bytes(), [p.name for p in target.parent.iterdir()]
    (b'{}', ['state.json'])
    """
    import tempfile  # only runs that write state need it

    check_replaceable(path)
    target = written_file(path)
    directory = target.parent
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with suppress(OSError):
            # Locked until renamed, so that a process cleaning a folder others write
            # (remove_shared_leftovers) leaves it alone; where files cannot be locked,
            # nothing is cleaned there, so nothing is lost either.
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
            os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_directory(directory)


def _through_proc(path: Path) -> bool:
    """True if ``path``, its symbolic links followed, passes through ``/proc``.

    There live the links to a process's open descriptors (``/dev/stdout`` leads
    to ``/proc/self/fd/1``), which resolve to whatever the descriptor is open on.
    Nothing there is a file to write a result into.

    >>> _through_proc(Path("/dev/stdout")), _through_proc(Path("/tmp/model.json"))
    (True, False)
    """
    pending = list(Path(os.path.abspath(path)).parts[1:])
    current = Path("/")
    hops = 0
    while pending:
        candidate = current / pending.pop(0)
        if candidate == Path("/proc"):
            return True
        if hops < 40 and candidate.is_symlink():
            hops += 1
            # A relative target is read from the link's folder; ".." is taken lexically.
            target = Path(os.path.normpath(current / os.readlink(candidate)))
            pending = list(target.parts[1:]) + pending
            current = Path("/")
        else:
            current = candidate
    return False


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
    # Beside the file a link leads to, where write_atomically makes them.
    target = written_file(path)
    return _remove_leftovers(target.parent, [target.name], shared=False)


def remove_shared_leftovers(folder: str | os.PathLike[str], names: list[str]) -> int:
    """Remove what killed writers of the files ``names`` left in ``folder``; return how many.

    For a folder that several processes write, each its own files but a file
    handed from one process to another (a Kafka group's shared state
    directory, a partition's checkpoint going to the member the group
    assigns it to), called by the process ``names`` were just handed to. A
    process that held one of them before may still be writing it (stopped for
    longer than the group waits, then going on), so a temporary file is
    removed only when no process holds the lock its writer takes
    (:func:`write_atomically`) and it has not been modified for
    :data:`SHARED_LEFTOVER_AGE_S` seconds; where files cannot be locked, none
    is removed. Other files' temporary files are left alone.

    >>> import os, pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in (".t-0.json.k3_9ab0z.tmp", ".t-0.json.newer000.tmp", ".t-1.json.k3_9ab0z.tmp"):
    ...     _ = (folder / name).write_bytes(b"{}")
    ...     if "newer" not in name:
    ...         os.utime(folder / name, (0, 0))  # modified long ago
    >>> remove_shared_leftovers(folder, ["t-0.json"])
    1
    >>> sorted(p.name for p in folder.iterdir())
    ['.t-0.json.newer000.tmp', '.t-1.json.k3_9ab0z.tmp']
    """
    return _remove_leftovers(Path(folder), names, shared=True)


def _remove_leftovers(folder: Path, names: list[str], *, shared: bool) -> int:
    """Remove the temporary files of ``names`` in ``folder`` (if ``shared``, abandoned ones)."""
    if not names:
        return 0
    # tempfile.mkstemp's names: the prefix, 8 characters of its alphabet, the suffix.
    alternatives = "|".join(re.escape(name) for name in names)
    leftover = re.compile(rf"\.(?:{alternatives})\.[a-z0-9_]{{8}}\.tmp")
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    now = time.time()
    for entry in entries:
        if not leftover.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        if shared and not _abandoned(entry.path, now):
            continue
        try:
            os.unlink(entry.path)
        except OSError:
            continue
        removed += 1
    return removed


def _abandoned(path: str, now: float) -> bool:
    """True if no process holds the temporary file ``path`` and it is not new."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if now - os.fstat(fd).st_mtime < SHARED_LEFTOVER_AGE_S:
            return False
        try:
            # Shared: it conflicts only with a writer's lock, which ends with the writer.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return False  # held by its writer, or no locks here: cannot tell, so kept
        return True
    finally:
        os.close(fd)


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
