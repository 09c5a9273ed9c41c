"""Exceptions raised by stream_detect.

Every exception the package raises on purpose derives from one base, so a
caller can catch them all at once::

    StreamDetectError
    ├── ConfigError          a configuration key has a value outside its rules
    ├── InputError           an input file or record cannot be used
    │   └── RecordError      one record is bad (carries its position and reason)
    ├── ModelError           a model file or checkpoint cannot be loaded or is inconsistent
    └── DependencyError      an optional dependency is missing (names the extra to install)

The message of each is a sentence a user can act on; the data behind it is kept
as attributes so programs need not parse the message.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigError",
    "DependencyError",
    "InputError",
    "ModelError",
    "RecordError",
    "StreamDetectError",
]


class StreamDetectError(Exception):
    """Base of every error stream_detect raises on purpose."""


class ConfigError(StreamDetectError):
    """A configuration key got a value it does not accept.

    >>> str(ConfigError("batch_size", 0, "an integer >= 1"))
    'config key batch_size: got 0, expected an integer >= 1'
    """

    def __init__(self, key: str, value: Any, expected: str) -> None:
        self.key = key
        self.value = value
        self.expected = expected
        super().__init__(f"config key {key}: got {value!r}, expected {expected}")


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


class ModelError(StreamDetectError):
    """A model file or a checkpoint cannot be loaded, or does not fit the data."""


class DependencyError(StreamDetectError):
    """An optional dependency is missing.

    >>> str(DependencyError("matplotlib", "plot"))
    "this feature needs matplotlib: pip install 'stream-detect[plot]'"
    """

    def __init__(self, module: str, extra: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(f"this feature needs {module}: pip install 'stream-detect[{extra}]'")
