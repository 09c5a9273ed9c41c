"""Standard error shared by the threads of a run: one lock, so that each line lands whole.

A run writes to stderr from several threads: the loop (dead letters, when
their sink is ``stderr``; progress; warnings; what a scrape or a silences
poll had to say; the summary), the Alertmanager sender (delivery failing,
working again, a refusal), the metrics server (a request that failed). A
batch of dead letters reaches the descriptor in one or more writes, and a
write may be taken in pieces (a pipe whose reader is slow, a batch past
``PIPE_BUF``): a line another thread wrote between two pieces landed inside
a dead letter, and neither line could be read any more. Every writer to
stderr holds :data:`STDERR_LOCK` for the whole of what it writes, the
dead-letter sink too (:class:`~stream_detect.sinks.StderrSink`), so the
lines of each come out whole and in one piece.

The lock is reentrant: a signal handler that says something on stderr
(it runs in the main thread) while the main thread holds the lock goes on
instead of waiting for itself.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

__all__ = ["STDERR_LOCK", "write_stderr"]

#: Held by every writer to the process's standard error for the whole of what it writes.
STDERR_LOCK = threading.RLock()


def write_stderr(text: str, stream: TextIO | None = None) -> None:
    """Write ``text`` (whole lines) and flush, holding :data:`STDERR_LOCK` meanwhile.

    ``stream`` is ``sys.stderr`` as it is when written, unless given (a
    test's, or the buffer of a poll that says its lines later). What the
    stream raises is the caller's, as for a plain write.

    >>> import io
    >>> out = io.StringIO()
    >>> write_stderr("stream-detect: hello\\n", out)
    >>> out.getvalue()
    'stream-detect: hello\\n'
    """
    with STDERR_LOCK:
        target = sys.stderr if stream is None else stream
        target.write(text)
        target.flush()
