"""Checkpoints: the detector's state together with the input positions it reflects.

A checkpoint is one JSON document (never pickle: a state file is data, not
code) written atomically by :func:`~stream_detect.atomic.write_atomically`,
so a crash leaves either the old checkpoint or the new one, never half of one.

Restoring the detector and resuming the source from the saved position means
every event is learned exactly once across a restart; results written after
the checkpoint are written again (at-least-once delivery).
"""

from __future__ import annotations

import codecs
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from stream_detect.atomic import check_replaceable, write_atomically
from stream_detect.errors import ModelError

__all__ = ["Checkpoint", "load_checkpoint", "save_checkpoint"]

FORMAT = "stream-detect-checkpoint"
VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """What a restart needs: detector state, source positions, decoder context.

    ``source`` is the token of :meth:`Source.resume_token` after the last
    event the detector state includes; ``labels`` the same for the feedback
    source; ``header`` the CSV header line of the input, if any, since a
    resumed CSV file starts after it; ``held_feedback`` the feedback labels
    already read that name events not seen yet (see
    :class:`~stream_detect.recent.HeldFeedback`), so a restart keeps them.

    The settings the detector state only means something under travel inside
    ``detector`` (its fingerprint) and are checked when it is restored.
    """

    detector: dict[str, Any]
    source: dict[str, Any]
    labels: dict[str, Any] | None = None
    header: str | None = None
    held_feedback: list[dict[str, Any]] = field(default_factory=list)
    written_at: float = 0.0


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically (temp file, fsync, rename).

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "state.json"
    >>> save_checkpoint(target, Checkpoint({"n": 1}, {"line": 3, "offset": 20}))
    >>> load_checkpoint(target).source
    {'line': 3, 'offset': 20}
    """
    target = Path(path)
    document = {
        "format": FORMAT,
        "version": VERSION,
        "written_at": checkpoint.written_at or time.time(),
        "source": checkpoint.source,
        "labels": checkpoint.labels,
        "header": checkpoint.header,
        "held_feedback": checkpoint.held_feedback,
        "detector": checkpoint.detector,
    }
    payload = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    try:
        write_atomically(target, payload)
    except OSError as exc:
        raise ModelError(f"checkpoint {target}: cannot be written ({exc.strerror})") from exc


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint | None:
    """Read a checkpoint; None if the file does not exist, :class:`ModelError` if unusable."""
    target = Path(path)
    try:
        # The next checkpoint replaces the file, so only a regular file will do; and
        # opening a FIFO to read it would wait, deaf to signals, for a writer.
        check_replaceable(target)
        raw = target.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ModelError(f"checkpoint {target}: cannot be read ({exc.strerror})") from exc
    # An editor's byte-order mark is not content.
    raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise ModelError(
                f"checkpoint {target}: not valid JSON: not UTF-8 text (at byte {bad.start}); "
                "a checkpoint is the JSON stream-detect writes"
            ) from None
        raise ModelError(f"checkpoint {target}: not valid JSON ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        hint = ""
        if isinstance(document, dict) and document.get("format") == "stream_detect.model":
            hint = (
                "; it is a model written by `stream-detect fit --out`: "
                "start from it with --initial-model instead"
            )
        raise ModelError(f"checkpoint {target}: not a stream-detect checkpoint{hint}")
    version = document.get("version")
    # true == 1 in Python, not in a checkpoint.
    if isinstance(version, bool) or version != VERSION:
        raise ModelError(
            f"checkpoint {target}: version {document.get('version')!r}, this build reads {VERSION}"
        )
    for name, (kinds, expected) in _PARTS.items():
        if name in ("detector", "source") and name not in document:
            raise ModelError(
                f"checkpoint {target}: the field {name!r} is missing, expected {expected}"
            )
        value = document.get(name)
        if not isinstance(value, kinds):
            raise ModelError(
                f"checkpoint {target}: the field {name!r} is {_shown(value)}, expected {expected}"
            )
    for i, item in enumerate(document.get("held_feedback") or []):
        problem = _held_feedback_problem(item)
        if problem is not None:
            raise ModelError(f"checkpoint {target}: the field 'held_feedback[{i}]{problem}")
    written_at = document.get("written_at")
    if written_at is not None and (
        isinstance(written_at, bool) or not isinstance(written_at, (int, float))
    ):
        raise ModelError(
            f"checkpoint {target}: the field 'written_at' is {_shown(written_at)}, "
            "expected a time in seconds since 1970 or null"
        )
    return Checkpoint(
        detector=document["detector"],
        source=document["source"],
        labels=document.get("labels"),
        header=document.get("header"),
        held_feedback=document.get("held_feedback") or [],
        written_at=float(written_at or 0.0),
    )


#: The parts of a checkpoint document: the types each may have, and those in words.
_PARTS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "detector": (dict, "a table (the detector's state)"),
    "source": (dict, "a table (the input's position)"),
    "labels": ((dict, type(None)), "a table (the labels input's position) or null"),
    "header": ((str, type(None)), "a string (the CSV header line) or null"),
    "held_feedback": ((list, type(None)), "a list of held feedback labels or null"),
}


def _held_feedback_problem(item: Any) -> str | None:
    """What is wrong with a held feedback label (its field, what it is, what was expected).

    The label is applied to its event when the event arrives, and goes to the
    dead letters (with its position and payload) if it never does, so each
    part must be what :meth:`~stream_detect.recent.HeldFeedback.to_list` writes.

    >>> _held_feedback_problem({"id": "e1", "label": 1, "position": {"line": 3}, "payload": ""})
    >>> _held_feedback_problem({"id": "e1", "label": "x", "position": {}, "payload": ""})
    ".label' is 'x', expected 0 or 1"
    >>> _held_feedback_problem({"label": 1})
    ".id' is missing, expected a string (the event's id)"
    """
    if not isinstance(item, dict):
        return f"' is {_shown(item)}, expected a table with id, label, position and payload"
    label = item.get("label")
    for name, valid, expected in (
        ("id", isinstance(item.get("id"), str), "a string (the event's id)"),
        ("label", not isinstance(label, bool) and label in (0, 1), "0 or 1"),
        ("position", isinstance(item.get("position"), dict), "a table (where it was read)"),
        ("payload", isinstance(item.get("payload"), str), "a string (the record read)"),
    ):
        if not valid:
            shown = _shown(item[name]) if name in item else "missing"
            return f".{name}' is {shown}, expected {expected}"
    return None


def _shown(value: Any) -> str:
    """``value`` as the other checkpoint messages quote it (:mod:`stream_detect.checkpoint_rules`).

    >>> _shown(7), _shown("x"), _shown(list(range(40)))[-5:]
    ('7', "'x'", '16...')
    """
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
