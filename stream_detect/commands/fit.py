"""``stream-detect fit TRAIN``: fit a Gaussian on a file, choose ε on labelled events, report.

The model (mean and population variance, or covariance, of the transformed
features) is fitted on every event of TRAIN. ε is chosen by best F1 on the
labelled events of ``--val``; without ``--val``, on TRAIN's own label column if
it has one with both classes. Otherwise there is nothing to choose ε with, and
the report says so (``log_epsilon`` null) rather than inventing one; so with
``--label-field none`` (no label column, as in ``run``), which also refuses
``--val`` and ``--plot`` before any file is read, since both need labels.

The features are TRAIN's numeric columns (inferred from its first data row,
see :mod:`stream_detect.tables`), or those named by ``--features``; other
columns are ignored and listed as ``ignored_columns``. The destinations of
``--plot`` and ``--out`` are checked before any file is read.

Prints one JSON object on stdout: the model (n, d, features, ignored_columns,
transforms, mean, var or cov, and ``unit_exponents`` where a tiny feature is
held times a power of two, see :mod:`stream_detect.feature_units`), the
threshold (log_epsilon, epsilon, threshold_method), what it achieves on the
labelled events (tp, fp, fn, tn, precision, recall, f1, n_flagged) and
``n_flagged_train``, the events of TRAIN it flags. The labelled events and
the choice of ε are those of :mod:`stream_detect.commands.fit_epsilon`.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.commands.batch_options import (
    add_label_field_argument,
    add_plot_argument,
    check_plot_option,
    label_field_option,
)
from stream_detect.commands.fit_epsilon import Labelled, choose_threshold, labelled_scores
from stream_detect.confusion import ConfusionCounts, confusion_counts
from stream_detect.distinct_files import named_path, refuse_output_over_input
from stream_detect.errors import ConfigError
from stream_detect.feature_transforms import FeatureTransforms
from stream_detect.field_names import parse_feature_names
from stream_detect.fitted_model import FittedModel
from stream_detect.fitting import fit_model
from stream_detect.flags import StoreOnce, file_name
from stream_detect.modelfile import check_model_path, save_model
from stream_detect.tables import load_table
from stream_detect.transform_suggestions import suggest_transforms
from stream_detect.transforms import SPEC_HELP

__all__ = ["add_arguments", "parse_transforms", "run"]

Array = NDArray[np.float64]

_AUTO = "auto"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``fit``."""
    parser.add_argument(
        "train", type=file_name, metavar="TRAIN", help="CSV or JSON-lines events to fit on"
    )
    parser.add_argument(
        "--features",
        action=StoreOnce,
        metavar="A,B,...",
        help="comma-separated feature columns, in order; other columns are ignored "
        "(default: the numeric columns of the first data row, except the label)",
    )
    parser.add_argument(
        "--val",
        type=file_name,
        action=StoreOnce,
        metavar="VAL",
        help="labelled events (CSV or JSON lines) to choose epsilon on "
        "(default: TRAIN's own label column, if it has one)",
    )
    parser.add_argument(
        "--model",
        action=StoreOnce,
        choices=("diagonal", "full"),
        default="diagonal",
        help="independent features (diagonal) or a full covariance (default: diagonal)",
    )
    parser.add_argument(
        "--transform",
        action="append",
        default=[],
        metavar="FEATURE=SPEC",
        help=f"transform a feature before fitting; SPEC is {SPEC_HELP}, or auto for the "
        "suggestion from its skewness; a bare 'auto' suggests for every feature not named "
        "otherwise (repeatable)",
    )
    add_label_field_argument(parser, "never a feature")
    parser.add_argument(
        "--threshold",
        action=StoreOnce,
        choices=("exact", "grid", "classic"),
        default="exact",
        help="exact F1 optimum (default), a 1000-step grid in log space, or classic: "
        "the 1000-step grid in probability space of the course exercise",
    )
    parser.add_argument(
        "--out",
        type=file_name,
        action=StoreOnce,
        metavar="MODEL.json",
        help="write the fitted model here",
    )
    add_plot_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Fit, choose ε, write the model and the plot if asked, print the JSON report."""
    # Fail on a destination that cannot be written now, not after reading large files.
    refuse_output_over_input(
        {"--out": named_path(args.out), "--plot": named_path(args.plot)},
        {"TRAIN": named_path(args.train), "--val": named_path(args.val)},
    )
    label_field = label_field_option(args)
    if label_field is None:
        _refuse_without_labels(args)
    check_plot_option(args.plot)
    if args.out is not None:
        check_model_path(args.out)
    chosen_features = parse_feature_names(args.features, "--features", {"label_field": label_field})
    train = load_table(args.train, label_field=label_field, features=chosen_features, progress=True)
    features = list(train.features)
    transforms = parse_transforms(args.transform, train.X, features)
    model = fit_model(
        train.X,
        features,
        kind=args.model,
        transforms=transforms,
        source=args.train,
        lines=train.lines,
    )
    train_log_p = model.log_p(train.X, source=args.train, lines=train.lines)

    labelled, note = labelled_scores(
        args, label_field, model, train.y, train.ignored_columns, train_log_p
    )
    extra: dict[str, Any] = {} if note is None else {"note": note}

    counts: ConfusionCounts | None = None
    n_flagged_train: int | None = None
    if labelled is not None:
        threshold = choose_threshold(
            args.threshold, labelled.y, labelled.log_p, train_log_p, labelled.source
        )
        counts = confusion_counts(labelled.y, threshold.flagged)
        n_flagged_train = int(np.count_nonzero(threshold.flagged_train))
        # The model file says null where a ratio is undefined, as the printed report does;
        # the block is kept as written on reading, so files that hold 0.0 there still load.
        validation = {"source": labelled.source, "n": len(labelled.y), **counts.to_report()}
        model = model.with_threshold(threshold.log_epsilon, args.threshold, validation)
        extra["epsilon"] = threshold.epsilon

    if args.plot is not None:
        if labelled is None:
            # The note says which: no labels at all, or a label column of one class only.
            raise ConfigError(
                "--plot", args.plot, f"labels of both classes to draw the curves with ({note})"
            )
        from stream_detect.threshold_plot import plot_threshold_curves

        assert model.log_epsilon is not None
        plot_threshold_curves(labelled.y, labelled.log_p, model.log_epsilon, args.plot)
    if args.out is not None:
        save_model(model, args.out)

    report = _report(model, train.ignored_columns, counts, n_flagged_train, labelled, args, extra)
    print(json.dumps(report))
    return 0


def _refuse_without_labels(args: argparse.Namespace) -> None:
    """Refuse, before any work, what ``--label-field none`` (no labels) leaves undoable."""
    if args.val is not None:
        raise ConfigError(
            "label_field",
            args.label_field,
            "the column holding --val's labels (1 anomaly, 0 normal): epsilon is chosen on "
            "them, so --val needs labels (without labels, leave out --val: fit then chooses "
            "no epsilon)",
            flag="--label-field",
        )
    if args.plot is not None:
        raise ConfigError(
            "--plot",
            args.plot,
            "labels of both classes to draw the curves with (--label-field none: the "
            "events carry no labels)",
        )


def parse_transforms(
    items: list[str], X: Array, features: list[str], key: str = "--transform"
) -> FeatureTransforms:
    """Transforms from ``--transform`` items: ``FEATURE=SPEC``, ``FEATURE=auto`` or ``auto``.

    ``auto`` takes the suggestion of
    :func:`~stream_detect.transform_suggestions.suggest_transforms` from the skewness of
    the feature's values in ``X``; a feature named explicitly keeps its own spec.

    >>> X = np.column_stack([np.exp(np.linspace(0.0, 5.0, 200)), np.linspace(0.0, 1.0, 200)])
    >>> parse_transforms(["auto", "b=sqrt"], X, ["a", "b"]).to_dict()
    {'a': 'log', 'b': 'sqrt'}
    """
    explicit: list[str] = []
    auto_features: list[str] = []
    for item in items:
        if item.strip().lower() == _AUTO:
            auto_features.extend(features)
            continue
        name, sep, spec = item.rpartition("=")
        if sep and spec.strip().lower() == _AUTO:
            if name.strip() not in features:
                names = ", ".join(repr(f) for f in features)
                raise ConfigError(key, item, f"FEATURE=SPEC with FEATURE one of {names}")
            auto_features.append(name.strip())
        else:
            explicit.append(item)
    chosen = dict(FeatureTransforms.parse(explicit, features=features, key=key))
    wanted = [f for f in dict.fromkeys(auto_features) if f not in chosen]
    if wanted:
        columns = [features.index(f) for f in wanted]
        suggestions = suggest_transforms(X[:, columns], wanted)
        chosen.update(FeatureTransforms.from_suggestions(suggestions))
    # Keep the feature order of the data, whatever the order of the options.
    return FeatureTransforms({f: chosen[f] for f in features if f in chosen})


def _report(
    model: FittedModel,
    ignored_columns: list[str],
    counts: ConfusionCounts | None,
    n_flagged_train: int | None,
    labelled: Labelled | None,
    args: argparse.Namespace,
    extra: dict[str, Any],
) -> dict[str, Any]:
    data = model.to_dict()
    report: dict[str, Any] = {
        "n": data["n"],
        "d": model.d,
        "features": data["features"],
        "ignored_columns": ignored_columns,
        "kind": model.kind,
        "transforms": data["transforms"],
        "mean": data["mean"],
        "var": model.var.tolist(),
        # Floored at 1/12 when scoring: integers that varied in training.
        "integer_floor": data["integer_floor"],
    }
    if "unit_exponents" in data:
        # Tiny features: mean and var are of their values times 2**k, as the model file holds.
        report["unit_exponents"] = data["unit_exponents"]
    if model.cov is not None:
        report["cov"] = data["cov"]
    report.update(
        log_epsilon=data["log_epsilon"],
        epsilon=data["epsilon"],
        threshold_method=data["threshold_method"],
        validation_source=None if labelled is None else labelled.source,
        n_validation=None if labelled is None else len(labelled.y),
    )
    metrics: dict[str, int | float | None] = dict.fromkeys(
        ("tp", "fp", "fn", "tn", "precision", "recall", "f1", "n_flagged")
    )
    if counts is not None:
        # A ratio with nothing to divide by is null, as evaluate and replay say it.
        metrics.update(counts.to_report())
    report.update(metrics)
    report["n_flagged_train"] = n_flagged_train
    report["model_file"] = args.out
    report["plot"] = args.plot
    report.update(extra)
    if isinstance(report.get("epsilon"), float) and not math.isfinite(report["epsilon"]):
        report["epsilon"] = "inf"
    return report
