"""``stream-detect run``: score a stream of events and emit alerts.

Every flag has a config key of the same name (``--max-latency-ms`` is
``max_latency_ms``), except the repeatable ``--transform FEATURE=SPEC``,
``--direction FEATURE=high|low|both`` and ``--derive NAME=KIND:FIELD[:ARG]``,
which each add one entry to the ``[transforms]``, ``[direction]`` or
``[derived]`` table; ``[model_params]`` and ``[kafka]`` are config tables only.
Flags override the ``--config`` file, which overrides the defaults. SIGINT and
SIGTERM stop reading, flush, checkpoint and exit 0 with a summary on stderr; a
second signal exits at once with status 130, and one that comes once the run has
finished (its summary being written, the process exiting) is ignored. SIGHUP
re-reads the config file and applies what may change while running
(:mod:`stream_detect.reload`).

Exit status: 0 when the stream was processed; 2 for a bad setting or input
that stops the run; :data:`NOTHING_USABLE` (3) when records were read but every
one was a dead letter, so nothing was scored.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from types import FrameType

import orjson

from stream_detect.diagnostics import json_line_for
from stream_detect.errors import ConfigError, InputError, NothingUsable, OutputError
from stream_detect.flags import add_settings_arguments, load_settings, locate_error_in_args
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.stderr_lines import write_stderr

__all__ = ["NOTHING_USABLE", "add_arguments", "run"]

#: Exit status of a run that read records but could score none of them.
NOTHING_USABLE = NothingUsable.exit_status

#: Shown under ``stream-detect run --help``.
EPILOG = (
    "exit status: 0 the stream was processed; 2 a bad setting or input stopped the run; "
    "3 records were read but every one was a dead letter, so nothing was scored "
    "(the reason is on stderr). Output URIs take ?fsync=true (file:alerts.jsonl?fsync=true): "
    "every flush then also syncs the file to disk. A flag given twice is refused "
    "(only --transform, --direction and --derive repeat): give every feature in one "
    "--features a,b."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register every run and detector setting as a flag, plus ``--config``."""
    add_settings_arguments(parser, RunSettings, DetectorSettings)
    parser.epilog = EPILOG


def run(args: argparse.Namespace) -> int:
    """Run the stream until its end or a signal; return the exit status (see the module)."""
    # Imported here: ``run --help`` needs the flags, not the detector.
    from stream_detect.allocator import hold_freed_memory
    from stream_detect.assembly import run_stream
    from stream_detect.sidecar import Sidecar
    from stream_detect.unusable import refuse_if_nothing_usable

    run_settings, detector_settings = load_settings(args)
    # A long run: keep what each batch frees for the next one (see the module).
    hold_freed_memory()
    try:
        _refuse_closed_outputs(run_settings, getattr(args, "closed_streams", frozenset()))
        # Binds --http now: an address in use is named as the flag or the config key it came from.
        sidecar = Sidecar(run_settings, detector_settings)
    except ConfigError as error:
        raise locate_error_in_args(error, args) from None
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def request_stop(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            # A second signal means "now": give the default behaviour back.
            signal.signal(signum, signal.SIG_DFL)
            raise KeyboardInterrupt
        stop.set()

    for sig in previous:
        signal.signal(sig, request_stop)

    def request_reload(signum: int, frame: FrameType | None) -> None:
        sidecar.request_reload(lambda: load_settings(args))

    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, request_reload)
    # Only on a terminal: a log or pipe on stderr already carries dead letters.
    progress = None
    if run_settings.progress and sys.stderr.isatty():
        from stream_detect.progress import Progress  # only --progress on a terminal

        progress = Progress(None, "stream-detect run", unit="events", tty=True)
    try:
        with progress or contextlib.nullcontext():
            summary = run_stream(
                run_settings,
                detector_settings,
                stop=stop,
                on_progress=None if progress is None else progress.advance,
                on_warning=_warn,
                on_features=lambda line: write_stderr(json_line_for(sys.stderr, line) + "\n"),
                sidecar=sidecar,
            )
    except ConfigError as error:
        raise locate_error_in_args(error, args) from None
    finally:
        # The run has finished (or a second signal ended it): from now on a signal must
        # neither cut its summary short nor turn its status into the default action's
        # 143. They stay ignored until the process exits; main() gives an in-process
        # caller its own handlers back.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
    if run_settings.summary:
        write_stderr(orjson.dumps({"summary": summary.to_dict()}).decode() + "\n")
    # After the summary, so the error is the last line; the command line exits 3 for it.
    refuse_if_nothing_usable(summary)
    return 0


def _warn(message: str) -> None:
    write_stderr(f"stream-detect run: warning: {message}\n")


def _refuse_closed_outputs(settings: RunSettings, closed: frozenset[int]) -> None:
    """Refuse to read a closed stdin, or send results or dead letters to a closed stdout/stderr.

    Raises
    ------
    InputError
        stdin (descriptor 0) is closed and the source is ``-``.
    OutputError
        stdout (descriptor 1) is closed and results go there: the default sink,
        so the line names what the user may never have set.
    ConfigError
        stderr (descriptor 2) is closed and dead letters go there (a line no one
        can read: the exit status says it).
    """
    if 0 in closed and settings.source == "-":
        raise InputError(
            "stdin is closed; pipe or redirect the input into it, or read a file with file:PATH",
            source="<stdin>",
        )
    if 1 in closed and settings.sink in ("-", "stdout"):
        raise OutputError(
            "standard output",
            "it is closed; redirect it, or choose another sink with --sink file:PATH",
            action="send results to",
        )
    if 2 in closed and settings.dead_letter == "stderr":
        raise ConfigError(
            "dead_letter",
            settings.dead_letter,
            "an open destination: standard error is closed; name a file:PATH instead",
        )
