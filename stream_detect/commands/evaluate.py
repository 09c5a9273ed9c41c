"""``stream-detect evaluate MODEL.json TEST``: score labelled events with a saved model.

Reads a model written by ``stream-detect fit --out``, scores every event of
TEST (CSV or JSON lines, with the model's features and a label column) and
flags those with log p(x) < log ε. Prints one JSON object: tp, fp, fn, tn,
precision, recall, f1 and n_flagged, with n and the log ε used; a ratio whose
denominator is 0 is null (precision when nothing is flagged, recall without an
anomaly label), as ``replay`` says n/a. ``--label-field none`` (no label
column) is refused at once: there is nothing to judge the flags against.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from stream_detect.commands.batch_options import (
    add_label_field_argument,
    add_plot_argument,
    check_plot_option,
    label_field_option,
)
from stream_detect.confusion import confusion_counts
from stream_detect.distinct_files import named_path, refuse_output_over_input
from stream_detect.errors import ConfigError, InputError, ModelError
from stream_detect.flags import file_name
from stream_detect.label_names import label_hint
from stream_detect.modelfile import load_model
from stream_detect.tables import load_table

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``evaluate``."""
    parser.add_argument(
        "model", type=file_name, metavar="MODEL.json", help="a model written by fit --out"
    )
    parser.add_argument(
        "test", type=file_name, metavar="TEST", help="labelled events, CSV or JSON lines"
    )
    add_label_field_argument(parser)
    add_plot_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Score TEST with the model, compare with its labels, print the JSON report."""
    refuse_output_over_input(
        {"--plot": named_path(args.plot)},
        {"MODEL.json": named_path(args.model), "TEST": named_path(args.test)},
    )
    label_field = label_field_option(args)
    if label_field is None:
        raise ConfigError(
            "label_field",
            args.label_field,
            "the column holding TEST's labels (1 anomaly, 0 normal): evaluate judges the "
            "model's flags against them, so it needs labels",
            flag="--label-field",
        )
    # Fail on a destination that cannot be written now, not after reading TEST.
    check_plot_option(args.plot)
    model = load_model(args.model)
    if model.log_epsilon is None:
        raise ModelError(
            f"model file {args.model} has no threshold (log_epsilon is null): "
            "fit it with labelled data (--val) to choose one"
        )
    if label_field in model.features:
        # The features are the model file's, the label column this command's.
        raise ModelError(
            f"model file {args.model}: features is {list(model.features)!r}, one of them "
            f"{label_field!r}, the --label-field (a field cannot be both): name another "
            "--label-field or fit the model without it"
        )
    test = load_table(
        args.test, label_field=label_field, features=list(model.features), progress=True
    )
    if test.y is None:
        raise InputError(
            f"no row is labelled ({label_field!r} is missing or empty in every row); "
            "evaluating needs labels (1 anomaly, 0 normal)"
            + label_hint(test.ignored_columns, label_field),
            source=args.test,
        )
    # The table decoder has refused labels other than 0 and 1; unlabelled rows (-1) are
    # not evaluated.
    labels = np.asarray(test.y).ravel()
    labelled = labels >= 0
    labels = labels[labelled]
    log_p = model.log_p(test.X, source=args.test, lines=test.lines)[labelled]
    counts = confusion_counts(labels, model.flag(log_p))
    if args.plot is not None:
        from stream_detect.threshold_plot import plot_threshold_curves

        plot_threshold_curves(labels, log_p, model.log_epsilon, args.plot)
    report = {
        "model_file": args.model,
        "test": args.test,
        "n": len(labels),
        "log_epsilon": model.to_dict()["log_epsilon"],
        **counts.to_report(),
        "plot": args.plot,
    }
    print(json.dumps(report))
    return 0
