"""A file source for a file that may not exist yet, read once it appears.

Feedback labels use it: a run can start before anyone has written a label
(a config that names ``feedback/labels.jsonl`` works from an empty directory).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from stream_detect.formats import format_for_path
from stream_detect.sources.base import RawBatch, Source
from stream_detect.sources.files import FileSource
from stream_detect.sources.lines import DEFAULT_MAX_LINE_BYTES, DEFAULT_POLL_INTERVAL_S

__all__ = ["AwaitedFileSource"]


class AwaitedFileSource(Source):
    """A :class:`FileSource` for a file that may not exist yet: read once it appears.

    Until the file exists every read returns an empty batch (after waiting
    up to ``timeout_s`` for it to appear) and the source is not exhausted;
    from then on it reads exactly as a :class:`FileSource` with the same
    arguments. Feedback labels use it, so a run can start before anyone has
    written a label. A file that appears should appear whole (written, then
    renamed into place), or be followed (``follow=True``), since a file that
    is not followed is read up to the end it has when it is first read.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.jsonl"
    >>> source = AwaitedFileSource(path)
    >>> len(source.read_batch(10, 0.0, 0.0)), source.exhausted
    (0, False)
    >>> _ = path.write_bytes(b'{"id": "a", "label": 1}\\n')
    >>> source.read_batch(10, 0.0, 1.0).payloads
    [b'{"id": "a", "label": 1}']
    >>> source.read_batch(10, 0.0, 1.0).payloads, source.exhausted
    ([], True)
    >>> source.close()
    """

    resumable = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        follow: bool = False,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        uri: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.uri = uri if uri is not None else f"file:{os.fspath(path)}"
        self.follow = follow
        self.max_line_bytes = max_line_bytes
        self.poll_interval_s = poll_interval_s
        self.format_hint = format_for_path(self.path)
        self._file: FileSource | None = None
        self._token: dict[str, Any] | None = None
        self._closed = False

    def _opened(self) -> FileSource | None:
        """The file source, opened (and moved to a saved position) once the file exists."""
        if self._file is None and not self._closed and self.path.exists():
            self._file = FileSource(
                self.path,
                follow=self.follow,
                max_line_bytes=self.max_line_bytes,
                poll_interval_s=self.poll_interval_s,
                uri=self.uri,
            )
            if self._token is not None:
                self._file.seek(self._token)
        return self._file

    @property
    def exhausted(self) -> bool:
        """True once the file exists and has been read to its end (never while it is missing)."""
        return self._file is not None and self._file.exhausted

    def read_batch(self, max_records: int, linger_s: float, timeout_s: float) -> RawBatch:
        """As :meth:`FileSource.read_batch`; empty while the file does not exist."""
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while (opened := self._opened()) is None:
            left = deadline - time.monotonic()
            if left <= 0 or self._closed:
                return RawBatch()
            time.sleep(min(self.poll_interval_s, left))
        batch = opened.read_batch(max_records, linger_s, max(deadline - time.monotonic(), 0.0))
        # The file's rotations (while running, or while stopped: found when it is opened).
        self.rotations = opened.rotations
        return batch

    def take_buffered(self, max_records: int) -> RawBatch:
        """As :meth:`FileSource.take_buffered`; empty while the file does not exist."""
        return RawBatch() if self._file is None else self._file.take_buffered(max_records)

    def resume_token(self) -> dict[str, Any]:
        """The file's token; before the file appeared, the saved one or the start."""
        if self._file is not None:
            return self._file.resume_token()
        return dict(self._token) if self._token is not None else {"line": 1, "offset": 0}

    def identity(self) -> dict[str, Any]:
        """The file's identity (:meth:`FileSource.identity`); before it appeared, none.

        Before the file appeared, :meth:`resume_token` is the saved token,
        with the identity it was saved with.
        """
        return {} if self._file is None else self._file.identity()

    def seek(self, token: dict[str, Any]) -> None:
        """Continue after ``token``: now if the file exists, else once it appears."""
        self._token = dict(token)
        if self._file is not None:
            self._file.seek(token)

    def close(self) -> None:
        """Close the file, if it was opened."""
        self._closed = True
        if self._file is not None:
            self._file.close()
