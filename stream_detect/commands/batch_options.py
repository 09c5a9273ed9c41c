"""The options the batch tools share: ``--label-field`` and ``--plot``, defined once.

``fit``, ``evaluate`` and ``inspect`` read tables with a label column and may
draw a plot; each option means the same in all of them, given once
(:class:`~stream_detect.flags.StoreOnce`), and only the help says what the
command does with it. ``--label-field none`` (any case) says the events
carry no labels, as in ``run``, so a field named ``label`` is data
(:func:`label_field_option`); a command that needs labels refuses it in one
line saying why. :func:`check_plot_option` is the check every command
(``replay`` too) makes of ``--plot`` before it reads a file.
"""

from __future__ import annotations

import argparse

from stream_detect.field_names import optional_field_name
from stream_detect.flags import StoreOnce, file_name

__all__ = [
    "CURVES_HELP",
    "add_label_field_argument",
    "add_plot_argument",
    "check_plot_option",
    "label_field_option",
]

#: What ``--plot`` draws in ``fit`` and ``evaluate``.
CURVES_HELP = (
    "draw precision/recall/F1 against log epsilon and the log p histograms (.png, .svg or .pdf)"
)


def add_label_field_argument(parser: argparse.ArgumentParser, use: str = "") -> None:
    """Add ``--label-field NAME`` (default ``label``, ``none`` for no label column);
    ``use``, if any, adds to its help.

    >>> parser = argparse.ArgumentParser()
    >>> add_label_field_argument(parser, "never a feature")
    >>> parser.parse_args([]).label_field, parser.parse_args(["--label-field", "y"]).label_field
    ('label', 'y')
    """
    parser.add_argument(
        "--label-field",
        action=StoreOnce,
        default="label",
        metavar="NAME",
        help="column holding the labels, 1 anomaly and 0 normal"
        + (f"; {use}" if use else "")
        + " (default: label; none: the events carry no labels)",
    )


def add_plot_argument(parser: argparse.ArgumentParser, drawing: str = CURVES_HELP) -> None:
    """Add ``--plot PATH``; ``drawing`` is its help, what the plot shows."""
    parser.add_argument("--plot", type=file_name, action=StoreOnce, metavar="PATH", help=drawing)


def label_field_option(args: argparse.Namespace) -> str | None:
    """The ``--label-field`` given: a field name, or None for ``none`` (no label column).

    >>> label_field_option(argparse.Namespace(label_field="Label"))
    'Label'
    >>> label_field_option(argparse.Namespace(label_field="NONE")) is None
    True
    """
    return optional_field_name(args.label_field, "--label-field")


def check_plot_option(plot: str | None) -> None:
    """Fail now if ``--plot`` was given and cannot be written, before any file is read.

    See :func:`~stream_detect.plot_canvas.check_plot_path`; nothing to check without ``--plot``.
    """
    if plot is not None:
        from stream_detect.plot_canvas import check_plot_path  # only a command that plots needs it

        check_plot_path(plot)
