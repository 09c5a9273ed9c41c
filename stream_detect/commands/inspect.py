"""``stream-detect inspect DATA``: describe each feature and suggest a transform towards Gaussian.

What is found, and how a file larger than memory is read, is
:mod:`stream_detect.inspection`; this module parses the flags and prints the
report as a table on stdout, or as one JSON object with ``--json``.
``--plot PATH`` draws the histograms before and after each suggested
transform (:func:`~stream_detect.histogram_plot.plot_histograms`). A progress bar
driven by the bytes read goes to stderr (only for reads longer than a second).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shlex
import sys
from collections.abc import Callable, Sequence

from stream_detect.commands.batch_options import (
    add_label_field_argument,
    add_plot_argument,
    check_plot_option,
    label_field_option,
)
from stream_detect.errors import ConfigError
from stream_detect.field_names import parse_feature_names, shown_name
from stream_detect.flags import StoreOnce, file_name
from stream_detect.inspection import DEFAULT_SAMPLE_ROWS, InspectReport, inspect_file

__all__ = ["add_arguments", "format_table", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``inspect``."""
    parser.add_argument(
        "data", type=file_name, metavar="DATA", help="CSV (with a header) or JSON-lines events"
    )
    add_plot_argument(
        parser,
        "draw each feature's histogram before and after its suggested transform"
        " (.png, .svg or .pdf)",
    )
    add_label_field_argument(
        parser,
        "never a feature, its counts are reported",
    )
    parser.add_argument(
        "--features",
        action=StoreOnce,
        metavar="A,B,...",
        help="comma-separated features to inspect (default: every numeric field)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )
    parser.add_argument(
        "--sample-rows",
        action=StoreOnce,
        type=int,
        default=DEFAULT_SAMPLE_ROWS,
        metavar="N",
        help="rows sampled uniformly for the suggestions and histograms of a larger file "
        f"(default: {DEFAULT_SAMPLE_ROWS})",
    )
    parser.add_argument(
        "--seed",
        action=StoreOnce,
        type=int,
        default=0,
        help="seed of the row sample, an integer >= 0 (default: 0)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    """Inspect, plot if asked, print the table or the JSON object."""
    if args.sample_rows < 1:
        raise ConfigError("--sample-rows", args.sample_rows, "an integer >= 1")
    if args.seed < 0:
        # Checked before the file is read: numpy refuses a negative seed only when sampling.
        raise ConfigError("--seed", args.seed, "an integer >= 0")
    # Fail on a destination that cannot be written now, not after reading a large file.
    check_plot_option(args.plot)
    label_field = label_field_option(args)
    features = parse_feature_names(args.features, "--features", {"label_field": label_field})
    check_plot_rows: Callable[[list[str]], None] | None = None
    if args.plot is not None:
        check_plot_rows = functools.partial(_check_plot_rows, args.plot)
        if features is not None:
            check_plot_rows(features)
    report = inspect_file(
        args.data,
        label_field=label_field,
        features=features,
        sample_rows=args.sample_rows,
        seed=args.seed,
        progress_stream=None if args.no_progress else sys.stderr,
        on_features=check_plot_rows,
    )
    if args.plot is not None:
        from stream_detect.histogram_plot import plot_histograms

        title = None
        if report.sample_rows < report.rows:
            title = f"uniform sample of {report.sample_rows:,} of {report.rows:,} rows"
        plot_histograms(
            report.sample, report.feature_names, report.transforms, args.plot, title=title
        )
    if args.json:
        print(json.dumps({**report.to_dict(), "plot": args.plot}, allow_nan=False))
    else:
        print(format_table(report, plot=args.plot))
    return 0


def _check_plot_rows(plot: str, features: list[str]) -> None:
    """Refuse ``--plot`` for more features than one image of histograms holds.

    Called as soon as the features are known (from ``--features``, or from the
    first rows), not after the whole file is read.
    """
    from stream_detect.histogram_plot import MAX_HISTOGRAM_FEATURES

    if len(features) > MAX_HISTOGRAM_FEATURES:
        raise ConfigError(
            "--plot",
            plot,
            f"at most {MAX_HISTOGRAM_FEATURES} features to draw, one row of histograms each; "
            f"there are {len(features)}: choose some with --features",
        )


def format_table(report: InspectReport, plot: str | None = None) -> str:
    """The terminal summary: a header line, one row per feature, then notes.

    >>> from types import SimpleNamespace
    >>> import numpy as np
    >>> from stream_detect.inspection import inspect_chunks
    >>> chunk = SimpleNamespace(X=np.array([[0.0, 1.0], [2.0, 1.0], [-1.0, 1.0]]), y=None,
    ...                         features=["x", "const"])
    >>> print(format_table(inspect_chunks([chunk], "tiny.csv")))
    tiny.csv: 3 rows, 2 features, no labels
    feature  count  mean  variance  skewness  zeros  negatives  suggested  skew after
    x            3 0.3333    1.556    0.3818  33.3%      33.3%  none          0.3818
    const        3      1        0         0   0.0%       0.0%  none               0
    """
    lines = [_headline(report)]
    header = (
        "feature",
        "count",
        "mean",
        "variance",
        "skewness",
        "zeros",
        "negatives",
        "suggested",
        "skew after",
    )
    body = [
        (
            shown_name(f.name),
            str(f.count),
            _fmt(f.mean),
            _fmt(f.variance),
            _fmt(f.skewness),
            _percent(f.zero_share),
            _percent(f.negative_share),
            f.suggestion.transform.spec,
            _fmt(f.suggestion.skew_after),
        )
        for f in report.features
    ]
    left = {0, 7}  # names and specs read best left-aligned, numbers right-aligned
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts)

    lines.append(line(header).rstrip())
    lines.extend(line(row).rstrip() for row in body)
    if report.sample_rows < report.rows:
        lines.append(
            f"suggestions and skew after: from a uniform sample of {report.sample_rows:,} "
            f"of {report.rows:,} rows"
        )
    # Quoted for a shell, so that the line can be pasted: a name may hold a space.
    flags = " ".join(
        f"--transform {_flag_value(f'{name}={spec}')}"
        for name, spec in report.transforms.to_dict().items()
    )
    if flags:
        lines.append(f"to fit with the suggestions: {flags}")
    if plot is not None:
        lines.append(f"histograms: {plot}")
    return "\n".join(lines)


def _headline(report: InspectReport) -> str:
    labels = "no labels"
    if report.labels is not None:
        labels = (
            f"labels: {report.labels['anomalous']:,} anomalous, {report.labels['normal']:,} normal"
        )
    d = len(report.features)
    rows = f"{report.rows:,} row{'s' if report.rows != 1 else ''}"
    return f"{report.source}: {rows}, {d} feature{'s' if d != 1 else ''}, {labels}"


def _flag_value(text: str) -> str:
    """``text`` quoted for a shell, where it needs to be; shown escaped if it does not print.

    >>> _flag_value("cpu=log"), _flag_value("cpu load=log")
    ('cpu=log', "'cpu load=log'")
    """
    return shlex.quote(text) if text.isprintable() else shown_name(text)


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4g}"


def _percent(share: float) -> str:
    """A share as a percentage to one decimal, never rounded to 0% or 100% that it is not.

    One zero in a million rows is what makes ``log`` refuse a feature, so it
    must not read as ``0.0%``.

    >>> _percent(0.0), _percent(1e-6), _percent(0.25), _percent(0.999999), _percent(1.0)
    ('0.0%', '<0.1%', '25.0%', '>99.9%', '100.0%')
    """
    if math.isnan(share):
        return "n/a"
    text = f"{100.0 * share:.1f}%"
    if text == "0.0%" and share > 0.0:
        return "<0.1%"
    if text == "100.0%" and share < 1.0:
        return ">99.9%"
    return text
