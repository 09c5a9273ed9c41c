"""``stream-detect replay DATA``: run the detector over a file as it would stream, and score it.

Every setting of ``stream-detect run`` applies (``--config``, ``--derive``,
``--likelihood``, ...); the source is ``DATA`` and every event's result is
kept. Labels come from ``--labels-column`` (1 anomaly, 0 normal, per row;
they reach the detector as inline labels, learned like other events, as
they would in the stream; without it a label column is held out as ``run``
holds it, and a file whose every row is labelled is warned of, since its
model learns no row) or from ``--windows FILE.json`` (NAB's format: a
list of ``[start, end]`` timestamps, or a table of such lists by file path;
needs ``--timestamp-field``). The report (text, or ``--json``) gives
point-wise and window-wise precision / recall / F1, the NAB score per
profile when windows are given, and alerts per day; ``--plot OUT.png`` draws
value and score over time (the ``plot`` extra). Rows that are not usable
events go to ``--dead-letter`` (stderr by default), with their position and
reason, as in ``run``; a file none of whose rows is usable exits 3, as ``run``
does.

The run settings replay decides itself (:data:`NOT_USED`: it reads ``DATA``,
keeps every result, prints a report) are refused as flags, with one line
saying why; in a ``--config`` file, which may serve ``run`` too, they are
ignored.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from stream_detect.assembly import run_stream
from stream_detect.commands.batch_options import check_plot_option
from stream_detect.distinct_files import named_path, refuse_output_over_input
from stream_detect.errors import ConfigError, InputError
from stream_detect.flags import (
    StoreOnce,
    add_settings_arguments,
    file_name,
    load_settings,
    locate_error_in_args,
)
from stream_detect.formats import missing_file_text, not_a_table
from stream_detect.records.field_paths import get
from stream_detect.records.labels import cell_label, json_label
from stream_detect.records.reject import Reject
from stream_detect.replay import (
    ReplayReport,
    evaluate,
    label_windows,
    time_windows,
    window_limits,
    windows_for,
)
from stream_detect.settings import DetectorSettings, RunSettings
from stream_detect.small_files import WINDOWS_FILE_LIMIT, read_small_file
from stream_detect.stderr_lines import write_stderr
from stream_detect.testing import ListSink
from stream_detect.timestamps import wall_clock_reasons
from stream_detect.unusable import refuse_if_nothing_usable
from stream_detect.uris import file_uri

__all__ = ["NOT_USED", "add_arguments", "replay", "run"]

#: Run settings replay decides itself -> why a flag giving one is refused.
NOT_USED: dict[str, str] = {
    "source": "it reads DATA",
    "sink": "it prints a report, not each row's result; "
    "stream-detect run --source file:DATA --emit all --sink URI writes those",
    "emit": "it keeps every row's result for the report",
    "checkpoint": "it starts from nothing and saves no state",
    "state_dir": "it starts from nothing and saves no state",
    "labels": "its labels come from --labels-column or --windows",
    "http": "it serves no metrics",
    "summary": "it prints its report instead",
    "progress": "it shows no progress bar",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``DATA``, the evaluation options, and every run and detector setting."""
    parser.add_argument(
        "data", type=file_name, metavar="DATA", help="CSV or JSON-lines file to replay"
    )
    labels = parser.add_mutually_exclusive_group()
    # Each given once, as every run flag is: a second value would silently replace the first.
    labels.add_argument(
        "--labels-column", action=StoreOnce, metavar="NAME", help="column of 0/1 labels per row"
    )
    labels.add_argument(
        "--windows",
        action=StoreOnce,
        type=file_name,
        metavar="FILE.json",
        help="NAB-style anomaly windows",
    )
    parser.add_argument(
        "--plot",
        action=StoreOnce,
        type=file_name,
        metavar="OUT.png",
        help="draw value and score over time",
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    add_settings_arguments(parser, RunSettings, DetectorSettings)
    refused = ", ".join("--" + name.replace("_", "-") for name in NOT_USED)
    parser.epilog = (
        "exit status: 0 the report was printed; 2 a bad setting or input; 3 no row was usable. "
        f"The run flags {refused} are refused: replay reads DATA and prints a report."
    )


def replay(
    data: str,
    run_settings: RunSettings,
    detector_settings: DetectorSettings,
    *,
    labels_column: str | None = None,
    windows: list[tuple[str, str]] | None = None,
    plot: str | None = None,
) -> tuple[ReplayReport, list[dict[str, Any]]]:
    """Replay ``data`` through :func:`~stream_detect.assembly.run_stream`: report and results.

    The settings of :data:`NOT_USED` in ``run_settings`` are replaced, not used.

    Raises
    ------
    NothingUsable
        ``data`` holds records and every one is a dead letter.
    """
    if not Path(data).exists() or Path(data).is_dir():
        # The words of `run --source file:` and of fit, for the same two cases. Anything
        # else (a named pipe, /dev/stdin, <(...)) is read as `run --source file:` reads it.
        reason = "is a directory, not a file" if Path(data).is_dir() else missing_file_text(data)
        raise InputError(reason, source=data)
    refusal = not_a_table(data)
    if refusal is not None:
        # As fit and inspect say it: read as text, it would fail saying only "UTF-8".
        raise InputError(refusal, source=data)
    refuse_output_over_input({"--plot": named_path(plot)}, {"DATA": named_path(data)})
    # A plot that cannot be written fails now, not after the whole replay.
    check_plot_option(plot)
    if windows is not None and detector_settings.timestamp_field is None:
        raise ConfigError("timestamp_field", None, "a timestamp field to place --windows in time")
    limits = None if windows is None else window_limits(windows, detector_settings.time_zone)
    detector = detector_settings
    if labels_column is not None:
        detector = replace(detector, label_field=labels_column, learn_labelled=True)
    run = replace(
        run_settings,
        source=file_uri(data),
        emit="all",
        checkpoint=None,
        state_dir=None,
        labels=None,
        http=None,
        summary=False,
        progress=False,
    )
    sink = ListSink()
    # Bad rows go where --dead-letter says (stderr by default), as in `run`: never nowhere.
    refuse_if_nothing_usable(run_stream(run, detector, sink=sink, on_warning=_warn))
    records = sink.records
    alert = np.array([bool(r["alert"]) for r in records], dtype=bool)
    stamps = None
    if detector.timestamp_field is not None:
        stamps = _row_times(records, detector.timestamp_field, detector.time_zone, data)
    labels = None
    if labels_column is not None:
        labels = np.array(
            [_is_anomaly(get(r, labels_column), labels_column) for r in records], dtype=bool
        )
    try:
        report = evaluate(alert, labels=labels, timestamps=stamps, windows=limits)
    except (InputError, ValueError) as error:
        # A window that holds no row, or rows out of time order for NAB's placing of one.
        raise InputError(str(error), source=data) from None
    # Once the report stands: a replay that ends in an error says only that.
    _warn_if_nothing_learned(records, detector)
    if plot is not None:
        from stream_detect.replay_plot import plot_replay

        pairs = None
        if limits is not None and stamps is not None:
            pairs = time_windows(stamps, limits)
        elif labels is not None:
            pairs = label_windows(labels)
        shown = _value_column(records, detector)
        plot_replay(
            plot,
            [_number(get(r, shown)) for r in records],
            [_number(r["score"]) for r in records],
            [_number(r["log_epsilon"]) for r in records],
            alert,
            pairs,
            value_name=shown,
            title=Path(data).name,
        )
    return report, records


def run(args: argparse.Namespace) -> int:
    """Replay, print the report; exit 0 (by the CLI: 2 on bad input, 3 if no row was usable)."""
    _refuse_unused_flags(args)
    run_settings, detector_settings = load_settings(args)
    windows = None
    if args.windows is not None:
        try:
            table = json.loads(read_small_file(args.windows, WINDOWS_FILE_LIMIT, "windows file"))
            windows = windows_for(table, args.data)
            # Checked here, before the replay, so that its errors name the file.
            window_limits(windows, detector_settings.time_zone)
        except InputError as error:
            raise InputError(error.reason, source=args.windows) from None
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read windows: {exc}", source=args.windows) from exc
        except KeyError:
            raise InputError(f"{args.windows} has no windows for {args.data}") from None
    try:
        report, _ = replay(
            args.data,
            run_settings,
            detector_settings,
            labels_column=args.labels_column,
            windows=windows,
            plot=args.plot,
        )
    except ConfigError as error:
        raise locate_error_in_args(error, args) from None
    if args.json:
        print(orjson.dumps(report.to_dict()).decode())
    else:
        print(_text(report))
    return 0


def _warn(message: str) -> None:
    """A warning line named after the command, as ``run`` names its own."""
    write_stderr(f"stream-detect replay: warning: {message}\n")


def _warn_if_nothing_learned(records: list[dict[str, Any]], detector: DetectorSettings) -> None:
    """Say so when every row held a label, since labelled rows are held out, not learned.

    Then the model learned no row of the file and its alerts (likely none) say
    nothing about it; the rule is "every row", as a single unlabelled row is learned.
    """
    name = detector.label_field
    if name is None or detector.learn_labelled or not records:
        return
    if any(_label(get(record, name), name) == -1 for record in records):
        return
    _warn(
        f"all {len(records)} rows hold a label in {name!r}, and labelled rows are held out "
        f"for validation, not learned: no row was learned; --labels-column {name} learns "
        "them and scores the alerts against them, --learn-labelled learns them"
    )


def _refuse_unused_flags(args: argparse.Namespace) -> None:
    """Refuse a flag that gives a setting of :data:`NOT_USED`, rather than drop it in silence.

    ``--no-summary`` and ``--no-progress`` ask for what replay does anyway.
    """
    for name, why in NOT_USED.items():
        value = getattr(args, name, None)
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        raise ConfigError(name, value, f"no {flag}: replay does not use it ({why})", flag=flag)


def _text(report: ReplayReport) -> str:
    lines = [f"rows {report.rows}, alerts {report.alerts}"]
    if report.alerts_per_day is not None:
        lines.append(f"alerts per day {report.alerts_per_day:.3f}")
    for name, metrics in (("point-wise", report.pointwise), ("window-wise", report.windowwise)):
        if metrics is not None:
            lines.append(
                f"{name}: precision {_fmt(metrics.precision)}, recall {_fmt(metrics.recall)}, "
                f"F1 {_fmt(metrics.f1)} (tp {metrics.true_positives}, "
                f"fp {metrics.false_positives}, fn {metrics.false_negatives})"
            )
    if report.nab is not None:
        lines.append("NAB " + ", ".join(f"{k} {v:.2f}" for k, v in report.nab.items()))
    return "\n".join(lines)


def _row_times(
    records: list[dict[str, Any]], field: str, time_zone: str, data: str
) -> NDArray[np.datetime64]:
    """Each row's wall-clock time to the second; NaT where its timestamp has none.

    Such a row was scored (without a seasonal feature, ``run`` needs no time) but
    cannot be placed in time: it is left out of alerts per day and the windows,
    and one warning line says how many there are and why the first has none.
    """
    seconds, reasons = wall_clock_reasons([get(r, field) for r in records], time_zone)
    untimed = [row for row, reason in enumerate(reasons) if reason is not None]
    if untimed:
        first = untimed[0]
        line = (records[first].get("position") or {}).get("line")
        where = f"{data}:{line}" if line is not None else data
        _warn(
            f"{len(untimed)} of {len(records)} rows have no time in {field!r} and are left out "
            f"of alerts per day and the windows (the first, {where}: {reasons[first]})"
        )
    stamps = np.full(len(records), np.datetime64("NaT"), dtype="datetime64[s]")
    timed = np.isfinite(seconds)
    stamps[timed] = np.round(seconds[timed]).astype("int64").astype("datetime64[s]")
    return stamps


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def _is_anomaly(value: Any, name: str) -> bool:
    """The stream's label rule on a row's label as written: a CSV cell or a JSON value."""
    return _label(value, name) == 1


def _label(value: Any, name: str) -> int:
    """A row's label as written, by the stream's rule: 1, 0, or -1 (unlabelled)."""
    try:
        if isinstance(value, str):
            return cell_label(value, name)
        return json_label({name: value}, name)
    except Reject:
        # The decoder sent such a row to the dead letters: it is not among the results.
        return -1


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _value_column(records: list[dict[str, Any]], detector: DetectorSettings) -> str:
    """The field drawn: the first derived feature's source, else the first feature."""
    if detector.derived:
        return str(next(iter(detector.derived.values()))["of"])
    if detector.features:
        return detector.features[0]
    roles = {detector.timestamp_field, detector.label_field, detector.key_field, detector.id_field}
    skip = roles | {"log_p", "score", "mahalanobis_sq", "log_epsilon", "alert", "warmup", "n"}
    first = records[0] if records else {}
    return next((k for k, v in first.items() if k not in skip and _number(v) == _number(v)), "")
