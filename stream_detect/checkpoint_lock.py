"""One running stream per checkpoint file: an exclusive lock held for the whole run.

Two runs given the same ``--checkpoint`` would each replace the other's state
with their own every ``checkpoint_every`` events: a restart then resumes
whichever wrote last, and what the other learned is gone without a word (and
with a stdin source, nothing would even notice). So a run holds an exclusive
advisory lock (``flock``) on a small file beside its checkpoint,
``.NAME.lock``, from before it restores the checkpoint until it ends, and a
second run on the same checkpoint is refused at the start. The lock belongs
to the open file, so it goes with the process however that ends (a kill
included): a lock file left behind never blocks a restart. Once it holds the
lock, a run removes the temporary files that runs killed while writing the
checkpoint left beside it (:func:`~stream_detect.atomic.remove_leftovers`).

The partition checkpoints of a Kafka run (``--state-dir``) are not locked
here: the consumer group gives each partition, and its file, to one member
at a time. Members may share the directory, and a member the group has
dropped may still be finishing a write, so leftovers there are removed only
where no writer holds them
(:func:`~stream_detect.atomic.remove_shared_leftovers`).

>>> import pathlib, tempfile
>>> path = str(pathlib.Path(tempfile.mkdtemp()) / "state.json")
>>> first = hold_checkpoint(path)
>>> try:
...     hold_checkpoint(path)
... except ConfigError as refused:
...     print(refused.expected)  # doctest: +ELLIPSIS
a checkpoint no other running stream-detect uses (another run holds .../.state.json.lock)
>>> first.close()
>>> hold_checkpoint(path).close()  # free again
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from stream_detect.atomic import remove_leftovers, written_file
from stream_detect.errors import ConfigError

__all__ = ["CheckpointLock", "hold_checkpoint"]


class CheckpointLock:
    """The lock of one checkpoint file, held until :meth:`close` (or the process ends)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def close(self) -> None:
        """Let the checkpoint go; closing twice does nothing."""
        if self._fd is not None:
            # Closing the file releases the lock; the file stays, for the next run to lock.
            os.close(self._fd)
            self._fd = None


def hold_checkpoint(checkpoint: str) -> CheckpointLock:
    """Lock ``checkpoint`` for this run; its folder must exist.

    Raises
    ------
    ConfigError
        Another running process holds the lock, or the lock file cannot be made
        (the message names it and why).
    """
    # The file a link leads to, which is what the run writes: two links to one
    # checkpoint are one checkpoint, held by one run.
    target = written_file(checkpoint)
    path = target.with_name(f".{target.name}.lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(
            "checkpoint", checkpoint, f"a checkpoint whose lock {path} can be made ({exc.strerror})"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            # A file system without locks: run as before rather than refuse to run at all.
            return CheckpointLock(path, fd)
        os.close(fd)
        raise ConfigError(
            "checkpoint",
            checkpoint,
            f"a checkpoint no other running stream-detect uses (another run holds {path})",
        ) from exc
    # Held: no other run writes this checkpoint, so a temporary file beside it is what a
    # run killed mid-write left, which would otherwise pile up with every such kill.
    remove_leftovers(target)
    return CheckpointLock(path, fd)
