"""One file, one role: an output is never the file an input is read from.

A command reads some files (the events, feedback labels, a model, a
checkpoint) and writes others (results, dead letters, a checkpoint, a model).
Naming one file for both is always a slip, and never a harmless one: results
appended to the file being read are read again, scored again and appended
again, so the file grows until the disk is full; a model written over the
training data destroys it; a sink opened on a checkpoint or a model file
appends to it (or cuts its last line), so the next start cannot read it.
:func:`refuse_output_over_input` refuses such a command before any file is
opened, naming both settings. The ``--config`` file is an input too, read
at the start and again at every reload:
:func:`stream_detect.flags.load_settings` refuses an output over it.

Two outputs may share a file: results and dead letters appended to one file
stay whole lines, told apart by the dead letters' ``reason``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from stream_detect.errors import ConfigError
from stream_detect.settings import RunSettings
from stream_detect.uris import parse_uri

__all__ = ["named_path", "refuse_output_over_input", "run_files", "same_file", "uri_file"]

#: A file as a setting names it: (the value as written, a URI or a path; the path).
NamedFile = tuple[str, str]
#: A setting's name -> the file it names (None: none, or not a file).
Files = Mapping[str, "NamedFile | None"]


def uri_file(uri: str | None) -> NamedFile | None:
    """The file a ``file:PATH`` URI names; None for any other URI (stdin, Kafka...).

    >>> uri_file("file:events.jsonl?follow=true"), uri_file("-"), uri_file(None)
    (('file:events.jsonl?follow=true', 'events.jsonl'), None, None)
    """
    if uri is None:
        return None
    parsed = parse_uri(uri)
    return (uri, parsed.target) if parsed.scheme == "file" and parsed.target else None


def named_path(path: str | None) -> NamedFile | None:
    """A file named by its path (a checkpoint, a model, a command's argument); None for none.

    >>> named_path("model.json"), named_path(None)
    (('model.json', 'model.json'), None)
    """
    return None if path is None else (path, path)


def run_files(run: RunSettings) -> tuple[Files, Files]:
    """The files a run writes and those it reads, by config key (the checkpoint is both).

    >>> outputs, inputs = run_files(RunSettings(source="file:in.csv", checkpoint="state.json"))
    >>> dict(outputs), dict(inputs)["source"]
    ({'sink': None, 'dead_letter': None, 'checkpoint': ('state.json', 'state.json')}, \
('file:in.csv', 'in.csv'))
    """
    checkpoint = named_path(run.checkpoint)
    outputs = {
        "sink": uri_file(run.sink),
        "dead_letter": uri_file(run.dead_letter),
        "checkpoint": checkpoint,
    }
    inputs = {
        "source": uri_file(run.source),
        "labels": uri_file(run.labels),
        "initial_model": named_path(run.initial_model),
        "checkpoint": checkpoint,
    }
    return outputs, inputs


def same_file(first: str, second: str) -> bool:
    """True if two paths name one file: the same path once links and ``..`` are resolved,
    or, when both exist, the same file on disk (a hard link).

    >>> same_file("a/../events.jsonl", "./events.jsonl"), same_file("a.jsonl", "b.jsonl")
    (True, False)
    """
    if os.path.realpath(first) == os.path.realpath(second):
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:
        # One of them does not exist (yet): only the resolved paths can tell.
        return False


def refuse_output_over_input(outputs: Files, inputs: Files) -> None:
    """Raise :class:`ConfigError` if an output names the file of an input.

    ``outputs`` and ``inputs`` map a setting's name to the file it names: the
    config key, or for a command without config keys its flag (``--out``,
    named as the option in the error) or argument (``TRAIN``). A setting
    that is both (a checkpoint is read at start and written later) may appear
    in both and is not compared with itself. The error is about the output.

    >>> refuse_output_over_input({"sink": ("file:ev.jsonl", "ev.jsonl")},
    ...                          {"source": ("file:./ev.jsonl", "./ev.jsonl")})
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key sink: got 'file:ev.jsonl', expected a file \
other than the one source reads ('file:./ev.jsonl'): writing there would change or destroy \
what is read
    >>> refuse_output_over_input({"sink": ("file:out.jsonl", "out.jsonl")},
    ...                          {"source": ("file:ev.jsonl", "ev.jsonl")})
    """
    for output_key, output in outputs.items():
        if output is None:
            continue
        for input_key, read in inputs.items():
            if read is None or input_key == output_key or not same_file(output[1], read[1]):
                continue
            raise ConfigError(
                output_key,
                output[0],
                f"a file other than the one {input_key} reads ({read[0]!r}): "
                "writing there would change or destroy what is read",
                flag=output_key if output_key.startswith("-") else None,
            )
