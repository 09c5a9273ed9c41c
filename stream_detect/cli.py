"""The ``stream-detect`` command line: parse, hand over to a command module, report errors.

Each sub-command lives in its own module, which exposes
``add_arguments(parser)`` and ``run(args) -> int``. This module only wires
them together and turns every :class:`~stream_detect.errors.StreamDetectError`
into one line on stderr and its exit status (2, or 3 for
:class:`~stream_detect.errors.NothingUsable`), never a traceback. A
:class:`~stream_detect.errors.ConfigError` about a command-line option (its key
starts with ``--``) is worded "option --plot: got ...", not "config key".
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

# The command scores small matrices batch by batch, where BLAS worker threads add CPU
# time (spinning, waiting) without making a batch faster: one thread unless the user
# asks for more. It must be set before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from stream_detect import __version__
from stream_detect.diagnostics import best_effort_stderr, checked_stdout
from stream_detect.errors import ConfigError, OutputError, StreamDetectError
from stream_detect.stderr_lines import write_stderr

__all__ = ["main"]

#: sub-command -> (module under stream_detect.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "score a stream of events and emit alerts"),
    "fit": ("fit", "fit a Gaussian model on a file and choose epsilon on a labelled one"),
    "evaluate": ("evaluate", "score a labelled file with a saved model"),
    "inspect": ("inspect", "describe features, suggest transforms, plot histograms"),
    "demo": ("demo", "run the detector on a generated labelled stream"),
    "replay": ("replay", "run the detector over a file as it would stream, and score it"),
}


#: A command-line word that is a negative number (or minus infinity / NaN), not an option.
_NEGATIVE_NUMBER = re.compile(r"^-(\d|\.\d|inf$|infinity$|nan$)", re.IGNORECASE)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, as every other error is.

    argparse prints the whole usage before its message; for ``run`` that is
    dozens of lines above the one that says what is wrong.

    A value that starts with a minus and reads as a number in any notation
    (``-1e5``, ``-.5``, ``-inf``) is a value, not an unknown option: argparse
    alone knows only ``-5`` and ``-0.5``, and says "expected one argument" to
    ``--log-epsilon -1e5``. No option of this command line starts with a digit.

    >>> _Parser()._negative_number_matcher.match("-1e5") is not None
    True
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Return the argument parser; with ``command``, only that sub-command gets its options.

    Every sub-command is listed in ``--help``, but a command module is imported
    only when its options are needed, so ``stream-detect run`` does not pay for
    the imports of ``fit`` or ``inspect``.

    >>> build_parser().prog
    'stream-detect'
    >>> build_parser("run").parse_args(["run"]).handler.__module__
    'stream_detect.commands.run'
    """
    parser = _Parser(
        prog="stream-detect",
        description="Streaming anomaly detection with running Gaussian density models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if command is None or name == command:
            module = importlib.import_module(f"stream_detect.commands.{module_name}")
            module.add_arguments(command_parser)
            command_parser.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    0 success, 1 out of memory, 2 a usage or input error, 3 a ``run`` or ``replay``
    that read records but could use none.
    A closed standard output or error (``2>&-``) that the command would write
    to is a usage error (2), though with stderr closed nothing can say so. A
    stderr that refuses writes (``2>/dev/full``) loses the messages, never the
    work or the exit status (:mod:`stream_detect.diagnostics`).
    Called as the program (no ``argv``), a ``run`` leaves SIGHUP, SIGINT and
    SIGTERM ignored once it has finished, until the process exits; an in-process
    caller gets its own handlers back.
    """
    closed_streams = _occupy_closed_standard_streams()
    arguments = sys.argv[1:] if argv is None else list(argv)
    if not arguments or arguments[0] != "run":
        with best_effort_stderr():
            return _run_command(arguments, closed_streams)
    # SIGHUP asks a run to re-read its config. Its default action would end the run
    # silently while the run's own handler is not in place yet (the imports and the
    # settings take a good part of a second: the config is read after such a SIGHUP),
    # so it is ignored then. Once the run has finished, the run leaves SIGHUP, SIGINT
    # and SIGTERM ignored: the summary is being written and the status decided.
    previous = {
        sig: signal.getsignal(sig) for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)
    }
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with best_effort_stderr():
            return _run_command(arguments, closed_streams)
    finally:
        # As the program (no argv), the process exits next: the default actions back
        # would let a late signal kill it (status 143 for SIGTERM) after its status was
        # decided. An in-process caller gets its own handlers back.
        if argv is not None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _run_command(arguments: list[str], closed_streams: frozenset[int]) -> int:
    """Parse ``arguments`` and run its command: :func:`main` after the standard streams are set."""
    chosen = arguments[0] if arguments and arguments[0] in COMMANDS else None
    parser = build_parser(chosen)
    try:
        # A flag given twice is refused while parsing (config.StoreOnce).
        args = parser.parse_args(arguments)
    except StreamDetectError as exc:
        prefix = "stream-detect" if chosen is None else f"stream-detect {chosen}"
        write_stderr(f"{prefix}: error: {_error_message(exc)}\n")
        return 2
    args.closed_streams = closed_streams
    try:
        with checked_stdout():
            if 1 in closed_streams and args.command != "run":
                # Every command but run prints its report on stdout; run checks its sink itself.
                raise OutputError("stdout", "it is closed; redirect it to a file or /dev/null")
            status: int = args.handler(args)
            # Written now, while a refusal is still one line; at exit it is a traceback.
            sys.stdout.flush()
    except StreamDetectError as exc:
        if isinstance(exc, OutputError) and exc.destination == "stdout":
            # What stdout still holds would fail again at the interpreter's final flush.
            _silence_stdout()
        write_stderr(f"stream-detect {args.command}: error: {_error_message(exc)}\n")
        return exc.exit_status
    except BrokenPipeError:
        # The reader went away (``| head``): not an error of ours, and nothing more to say.
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        return 130
    except MemoryError as exc:
        # numpy says what it could not allocate ("Unable to allocate 2.98 GiB for an
        # array with shape (20000, 20000)..."): worth one line, not a traceback. What
        # was written before stays written (stdout is flushed at exit as usual).
        said = str(exc) or "an allocation failed"
        # Only run has a batch size and keys to name.
        less = (
            "fewer features, the diagonal model instead of the full one, a smaller "
            "--batch-size or fewer --max-keys"
            if args.command == "run"
            else "fewer features or the diagonal model instead of the full one"
        )
        write_stderr(
            f"stream-detect {args.command}: error: out of memory: {said}; {less} need less\n"
        )
        return 1
    return status


def _error_message(error: StreamDetectError) -> str:
    """The one line shown for ``error``: its message, with an option called an option.

    >>> _error_message(ConfigError("--events", 10, "an integer >= 500"))
    'option --events: got 10, expected an integer >= 500'
    >>> _error_message(ConfigError("batch_size", 0, "an integer >= 1"))
    'config key batch_size: got 0, expected an integer >= 1'
    """
    if isinstance(error, ConfigError) and error.key.startswith("--"):
        return f"option {error.key}: got {error.value!r}, expected {error.expected}"
    return str(error)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def _occupy_closed_standard_streams() -> frozenset[int]:
    """Open /dev/null on whichever of descriptors 0, 1, 2 is closed; return which were.

    Otherwise the next file opened (a checkpoint, the input) would get the
    number and text meant for stderr would land in it. Commands refuse to
    write to a stream that was closed (see ``closed_streams``).
    """
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.add(fd)
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if 2 in closed:
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - lives as long as the process
    if 1 in closed:
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - lives as long as the process
    return frozenset(closed)
