"""The ε ``fit`` chooses: the labelled events it is chosen on, and how.

:func:`labelled_scores` finds the labelled events -- those of ``--val``, or else
TRAIN's own labels -- and says why in a note when there are none;
:func:`label_problem` is the rule that labels must exist and hold both classes.
:func:`choose_threshold` then chooses log ε on them by ``--threshold``: the
exact F1 optimum, the grid in log space, or the classic grid in probability
space.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.errors import InputError
from stream_detect.fitted_model import FittedModel
from stream_detect.label_names import label_hint
from stream_detect.tables import load_table
from stream_detect.threshold import best_log_threshold
from stream_detect.threshold_grid import grid_log_threshold, select_threshold

__all__ = ["Labelled", "Threshold", "choose_threshold", "label_problem", "labelled_scores"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Labelled:
    """Labelled events scored under the model: where they came from, labels, log p."""

    source: str
    y: NDArray[np.int8]
    log_p: Array


def label_problem(
    y: NDArray[Any] | None, label_field: str, names: Sequence[str] = ()
) -> tuple[bool, str] | None:
    """Why labels ``y`` cannot choose ε, or None if they can: ``(fatal, reason)``.

    Labels must exist (otherwise ``fatal`` is True, and the reason names a field
    of ``names``, the file's ignored columns, that is ``label_field`` but for
    case) and include both classes (``fatal`` False: the file is fine, it just
    cannot choose ε). Unlabelled rows (-1) are left out; labels other than 0, 1
    and -1 never get here: the table decoder refuses them.

    >>> label_problem(np.array([0, 0]), "label")
    (False, "the 'label' column holds only 0 (2 events); choosing epsilon needs both \
normal (0) and anomalous (1) events")
    >>> label_problem(np.array([0, 1]), "label") is None
    True
    """
    if y is None:
        return (
            True,
            f"no row is labelled ({label_field!r} is missing or empty in every row); "
            "choosing epsilon needs labels (1 anomaly, 0 normal)" + label_hint(names, label_field),
        )
    labels = np.asarray(y).ravel()
    labels = labels[labels >= 0]
    classes = np.unique(labels)
    if len(classes) < 2:
        only = str(int(classes[0])) if len(classes) else "nothing"
        return False, (
            f"the {label_field!r} column holds only {only} ({len(labels)} events); choosing "
            "epsilon needs both normal (0) and anomalous (1) events"
        )
    return None


def labelled_scores(
    args: argparse.Namespace,
    label_field: str | None,
    model: FittedModel,
    train_y: NDArray[Any] | None,
    train_names: Sequence[str],
    train_log_p: Array,
) -> tuple[Labelled | None, str | None]:
    """The labelled events to choose ε on, or None and a note saying why there are none."""
    if label_field is None:
        return None, (
            "no epsilon chosen: --label-field none, so no event is labelled; run "
            "--initial-model with this model alerts on the tail probability "
            "(--log-tail-epsilon) instead"
        )
    if args.val is not None:
        val = load_table(
            args.val, label_field=label_field, features=list(model.features), progress=True
        )
        problem = label_problem(val.y, label_field, val.ignored_columns)
        if problem is not None:
            raise InputError(problem[1], source=args.val)
        assert val.y is not None
        log_p = model.log_p(val.X, source=args.val, lines=val.lines)
        return _labelled_only(args.val, val.y, log_p), None
    if train_y is None:
        return None, (
            f"no labels to choose epsilon with: no row of TRAIN is labelled in "
            f"{label_field!r} and no --val was given" + label_hint(train_names, label_field)
        )
    problem = label_problem(train_y, label_field)
    if problem is not None:
        fatal, reason = problem
        if fatal:
            raise InputError(reason, source=args.train)
        return None, f"no epsilon chosen: in TRAIN {reason}; pass --val FILE with labels of both"
    return _labelled_only(args.train, train_y, train_log_p), None


def _labelled_only(source: str, y: NDArray[Any], log_p: Array) -> Labelled:
    """The labelled events only: an unlabelled row (-1) neither helps nor hurts a threshold."""
    labels = np.asarray(y, dtype=np.int8).ravel()
    labelled = labels >= 0
    return Labelled(source, labels[labelled], log_p[labelled])


@dataclass(frozen=True)
class Threshold:
    """A chosen threshold and the flags it gives on the labelled and the training events."""

    log_epsilon: float
    epsilon: float
    flagged: NDArray[np.bool_]
    flagged_train: NDArray[np.bool_]


def choose_threshold(
    method: str, y: NDArray[np.int8], log_p: Array, train_log_p: Array, source: str
) -> Threshold:
    """Choose log ε by ``method``: exact, grid (both in log space) or classic.

    The flags of the labelled events (``log_p``) and of the training events
    (``train_log_p``) are those of that ε; ``source`` names the labelled file in
    an error.

    >>> y = np.array([0, 0, 0, 1], dtype=np.int8)
    >>> log_p = np.array([-1.0, -2.0, -3.0, -9.0])
    >>> chosen = choose_threshold("exact", y, log_p, log_p, "val.csv")
    >>> chosen.flagged.tolist()
    [False, False, False, True]
    """
    if method == "classic":
        # The exercise compares densities, not their logs; flag the same way, and report
        # its ε rather than exp(log ε), so that its published numbers come out exactly.
        with np.errstate(over="ignore"):
            p, p_train = np.exp(log_p), np.exp(train_log_p)
        if not np.all(np.isfinite(p)):
            raise InputError(
                "a density overflows float64 in probability space, where the classic "
                "threshold works; use --threshold exact, which works with log p",
                source=source,
            )
        if not np.any(p > 0.0):
            # Every candidate would be 0 and flag nothing: a model that never alerts,
            # where log p still tells the events apart.
            raise InputError(
                "every density of the labelled events underflows to 0 in probability "
                f"space (log p at most {float(np.max(log_p)):.4g}), where the classic "
                "threshold works; use --threshold exact, which works with log p",
                source=source,
            )
        epsilon, _ = select_threshold(y, p)
        log_epsilon = math.log(epsilon) if epsilon > 0 else -math.inf
        return Threshold(log_epsilon, epsilon, p < epsilon, p_train < epsilon)
    choice = best_log_threshold(y, log_p) if method == "exact" else grid_log_threshold(y, log_p)
    log_epsilon = choice.log_epsilon
    return Threshold(log_epsilon, choice.epsilon, log_p < log_epsilon, train_log_p < log_epsilon)
