"""Exceptions raised by stream_detect.

Every exception the package raises on purpose derives from one base, so a
caller can catch them all at once::

    StreamDetectError
    ├── ConfigError          a configuration key has a value outside its rules
    ├── InputError           an input file or record cannot be used
    │   ├── RecordError      one record is bad (carries its position and reason)
    │   └── NothingUsable    records were read but every one was a dead letter (exit 3)
    ├── ModelError           a model file or checkpoint cannot be loaded or is inconsistent
    ├── OutputError          a sink's destination refused the data (disk full, I/O error)
    ├── WriteInterrupted     a stop request ended a write the destination was not taking
    └── DependencyError      an optional dependency is missing (names the extra to install)

A reader that went away (a broken pipe on stdout) is not an error of the
program and stays the built-in :class:`BrokenPipeError`.

The message of each is a sentence a user can act on; the data behind it is kept
as attributes so programs need not parse the message. ``exit_status`` is the
status the command line exits with after printing it: 2, except where noted.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigError",
    "DependencyError",
    "InputError",
    "ModelError",
    "NothingUsable",
    "OutputError",
    "RecordError",
    "StreamDetectError",
    "WriteInterrupted",
]


class StreamDetectError(Exception):
    """Base of every error stream_detect raises on purpose."""

    #: The command line's exit status for this error.
    exit_status = 2


class ConfigError(StreamDetectError):
    """A configuration key got a value it does not accept.

    ``key`` is always the config key (``batch_size``, ``transforms.x``).
    When the value came from a flag, ``flag`` names it; when it came from a
    config file, ``source`` names the file; the message says which:

    >>> str(ConfigError("batch_size", 0, "an integer >= 1"))
    'config key batch_size: got 0, expected an integer >= 1'
    >>> str(ConfigError("batch_size", "0", "an integer >= 1", flag="--batch-size"))
    "option --batch-size: got '0', expected an integer >= 1"
    >>> str(ConfigError("batch_size", 0, "an integer >= 1", source="run.toml"))
    'config key batch_size in run.toml: got 0, expected an integer >= 1'
    """

    def __init__(
        self,
        key: str,
        value: Any,
        expected: str,
        *,
        flag: str | None = None,
        source: str | None = None,
    ) -> None:
        self.key = key
        self.value = value
        self.expected = expected
        self.flag = flag
        self.source = source
        if flag is not None:
            where = f"option {flag}"
        else:
            where = f"config key {key}" + ("" if source is None else f" in {source}")
        super().__init__(f"{where}: got {value!r}, expected {expected}")


class InputError(StreamDetectError):
    """An input cannot be used; ``source`` and ``line`` say where, when known.

    >>> print(InputError("non-numeric cell 'abc' in column x", source="train.csv", line=3))
    train.csv:3: non-numeric cell 'abc' in column x
    """

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        self.source = source
        self.line = line
        self.reason = message
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(f"{where}{message}")


class RecordError(InputError):
    """One record in a stream is bad; the stream goes on and the record goes to dead letters."""


class NothingUsable(InputError):
    """Records were read but every one was a dead letter, so no event was scored.

    ``bad_records`` is how many were read, ``reason`` the one given most often
    (None when no reason is known: the message then names none).
    Commands exit with status 3 for it, apart from the 2 of other bad input: the
    input was there and was read, and the dead letters say what is wrong with it.

    >>> print(NothingUsable(2000, "missing feature 'nope'"))
    no event was usable: all 2000 records were dead letters (most common reason: \
missing feature 'nope')
    >>> print(NothingUsable(3, None))
    no event was usable: all 3 records were dead letters; each dead letter gives its reason
    """

    exit_status = 3

    def __init__(self, bad_records: int, reason: str | None) -> None:
        self.bad_records = bad_records
        self.most_common_reason = reason
        why = (
            "; each dead letter gives its reason"
            if reason is None
            else f" (most common reason: {reason})"
        )
        super().__init__(f"no event was usable: all {bad_records} records were dead letters{why}")


class ModelError(StreamDetectError):
    """A model file or a checkpoint cannot be loaded, or does not fit the data."""


class OutputError(StreamDetectError):
    """A sink's destination refused the data: a full disk, an I/O error, a closed descriptor.

    ``destination`` names it (a path, ``stdout``), ``action`` is what failed
    (``"write to"``, ``"fsync"``, ``"close"``), ``errno`` and ``reason`` come
    from the operating system. Whatever the sink still held is lost; the
    positions of its records must not be committed.

    >>> import errno, os
    >>> error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    >>> print(OutputError.from_os_error("/dev/full", error))
    cannot write to /dev/full: No space left on device
    """

    def __init__(
        self, destination: str, reason: str, *, action: str = "write to", errno: int | None = None
    ) -> None:
        self.destination = destination
        self.reason = reason
        self.action = action
        self.errno = errno
        super().__init__(f"cannot {action} {destination}: {reason}")

    @classmethod
    def from_os_error(
        cls, destination: str, error: OSError, *, action: str = "write to"
    ) -> OutputError:
        """The error for ``error``, raised by the OS while doing ``action`` on ``destination``."""
        reason = error.strerror or str(error)
        return cls(destination, reason, action=action, errno=error.errno)


class DependencyError(StreamDetectError):
    """An optional dependency is missing.

    >>> str(DependencyError("matplotlib", "plot"))
    "this feature needs matplotlib: pip install 'stream-detect[plot]'"
    """

    def __init__(self, module: str, extra: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(f"this feature needs {module}: pip install 'stream-detect[{extra}]'")


class WriteInterrupted(StreamDetectError):
    """A stop request arrived while a sink waited for its destination to take data.

    The records of the write in hand were not (all) delivered, so their input
    positions must not be committed or checkpointed; the run ends at once
    rather than waiting for a stalled reader.

    >>> str(WriteInterrupted("stdout"))
    'stopped while stdout was not taking output; the last batch was not delivered'
    """

    def __init__(self, destination: str) -> None:
        self.destination = destination
        super().__init__(
            f"stopped while {destination} was not taking output; the last batch was not delivered"
        )
