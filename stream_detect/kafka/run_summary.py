"""What a partitioned Kafka run reports: its partitions' summaries added up into one.

A member of a consumer group runs one pipeline per partition assigned to it
(:class:`~stream_detect.kafka.partitioned.PartitionedRun`); its closing
summary reads as a single-stream run's does. :func:`counted` adds up the
counts, :func:`features_read` says which features the partitions read,
:func:`resumed_from` where their state came from,
:func:`most_common_reason` why their records were dead letters, and
:func:`detector_summary` lists every partition assigned during the run.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from stream_detect.kafka.positions import Partition
from stream_detect.pipeline import Pipeline, Summary

__all__ = ["counted", "detector_summary", "features_read", "most_common_reason", "resumed_from"]

_ADDED_UP = (
    "events",
    "alerts",
    "bad_records",
    "blank_lines",
    "header_lines",
    "checkpoints",
    "evicted_models",
    "evicted_in_warmup",
)
#: Counted by the run (labels it read) and by its partitions (labels held for their events).
_FEEDBACK = (
    "feedback_labels",
    "repeated_feedback",
    "corrected_feedback",
    "bad_feedback",
    "unmatched_feedback",
)


def counted(own: Summary, parts: list[Summary]) -> Summary:
    """The run's summary ``own`` with its partitions' counts added (``own`` is not changed).

    A partition's pipeline counts the held labels it joined (or sent to the
    dead letters); the run counts the labels it joined or dropped itself.
    Feedback labels sent to the dead letters are counted as such
    (``bad_feedback``, ``unmatched_feedback``), never in ``bad_records``,
    which counts the events topic's records alone, as a single-stream run's does.

    >>> run, part = Summary(), Summary()
    >>> part.events, part.alerts, run.feedback_labels, part.feedback_labels = 10, 2, 1, 3
    >>> total = counted(run, [part, part])
    >>> total.events, total.alerts, total.feedback_labels
    (20, 4, 7)
    >>> run.unmatched_feedback = 1
    >>> counted(run, []).bad_records, counted(run, []).unmatched_feedback
    (0, 1)
    """
    totals = dataclasses.replace(own)
    for name in _ADDED_UP:
        setattr(totals, name, sum(getattr(part, name) for part in parts))
    for name in _FEEDBACK:
        setattr(totals, name, getattr(own, name) + sum(getattr(part, name) for part in parts))
    # Said by every Kafka run, 0 included: how much of a replay was not written again.
    totals.already_delivered = sum(part.already_delivered or 0 for part in parts)
    return totals


def features_read(latest: Mapping[Partition, Pipeline]) -> list[str] | dict[str, list[str]] | None:
    """The features the partitions read: one list, or ``{"TOPIC/N": features}`` if they differ.

    ``latest`` holds each partition's latest pipeline. None until a partition
    has read an event (or restored a checkpoint), unless the features were given.
    """
    known = {
        f"{topic}/{number}": pipeline.summary.features
        for (topic, number), pipeline in sorted(latest.items())
        if pipeline.summary.features is not None
    }
    distinct = {tuple(features) for features in known.values()}
    if len(distinct) > 1:
        return {name: list(features) for name, features in known.items()}
    return list(distinct.pop()) if distinct else None


def most_common_reason(partitions: Iterable[Mapping[str, int]]) -> str | None:
    """The reason given most often, over the partitions' counts of reasons; None: no reason.

    Each of ``partitions`` counts the reasons of the dead letters a partition
    read after its last scored event (its stream's
    :class:`~stream_detect.unusable.UnusableStreamWatch`), so with one
    partition this is a single-stream run's ``bad_reason``. A tie goes to the
    reason counted first.

    >>> most_common_reason([{"invalid JSON": 2}, {"missing feature 'x'": 3, "invalid JSON": 2}])
    'invalid JSON'
    >>> most_common_reason([{}, {}]) is None
    True
    """
    reasons: Counter[str] = Counter()
    for counts in partitions:
        reasons.update(counts)
    common = reasons.most_common(1)
    return common[0][0] if common else None


def resumed_from(
    otherwise: Mapping[str, Any], offsets: Mapping[Partition, dict[str, Any]]
) -> dict[str, Any] | None:
    """Where the partitions' state came from, in a single-stream run's shape; None: nowhere.

    ``offsets`` holds the partitions restored from checkpoints this run did
    not write (an earlier run's, another member's), each as a Kafka position
    entry at the offset it was first restored at; they become one position,
    ``{"offsets": [{"topic", "partition", "offset"}, ...]}``, as a
    checkpoint of the whole topic would hold it. ``otherwise`` holds what
    partitions that did not resume started from (``"initial_model"``).

    >>> resumed_from({}, {("t", 1): {"topic": "t", "partition": 1, "offset": 7}})
    {'offsets': [{'topic': 't', 'partition': 1, 'offset': 7}]}
    >>> resumed_from({}, {}) is None
    True
    """
    resumed = dict(otherwise)
    if offsets:
        resumed["offsets"] = [entry for _, entry in sorted(offsets.items())]
    return resumed or None


def detector_summary(latest: Mapping[Partition, Pipeline], restored: int) -> dict[str, Any]:
    """The run's ``detector`` summary: every partition assigned, and each one's detector.

    ``latest`` holds the latest pipeline of each partition the member
    handled, revoked ones too; ``restored`` counts the partitions restored
    from a checkpoint this run did not write (an earlier run's, another
    member's), as :func:`resumed_from` lists them. With one partition, its
    detector's summary reads as a single-stream run's does; with more, each is
    under ``by_partition``.
    """
    detectors = {
        f"{topic}/{number}": pipeline.detector.summary()
        for (topic, number), pipeline in latest.items()
        if pipeline.detector is not None
    }
    only = next(iter(detectors.values())) if len(detectors) == 1 else {}
    summary: dict[str, Any] = {
        **{k: v for k, v in only.items() if k not in ("events", "alerts")},
        # Every partition assigned during the run, those that held no event too.
        "partitions": [f"{topic}/{number}" for topic, number in sorted(latest)],
        "partitions_restored": restored,
    }
    if len(detectors) > 1:
        summary["by_partition"] = detectors
    return summary
