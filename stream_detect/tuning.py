"""The threshold schedule: when log ε is re-chosen, on what, and what holds without labels.

:class:`ThresholdTuner` is the one home of every rule about log ε in a stream:

* **when** -- every ``retune_every`` events, after ``retune_labels`` new
  labels (at exactly those events, whatever the batching), and every
  ``retune_seconds`` on a clock passed in (``time.monotonic`` by default);
* **on what** -- the labelled raw feature vectors of a
  :class:`~stream_detect.threshold.ValidationBuffer`, re-scored under the
  current models by a function the caller passes to :meth:`ThresholdTuner.retune`,
  and cut at the exact best F1 (:func:`~stream_detect.threshold.best_log_threshold`);
* **without labels** -- :meth:`ThresholdTuner._no_label_threshold`: the
  ``log_epsilon`` the user gave, else the fixed ``log_tail_epsilon`` on the
  calibrated log tail (a model without a tail, river, has none: it raises no
  alert until labels set log ε). Nothing is ever learned from the scores of
  unlabelled events, so alerts cannot lower the bar they are judged by;
* **with an alert budget** (``alerts_per_day``) -- at each re-tune without
  enough labels, log ε on the log tail is re-chosen by
  :class:`~stream_detect.budget.AlertBudget` from the scores of events that
  did not alert (:meth:`ThresholdTuner.observe` feeds it), so about that many
  alerts a day are raised on normal events and an incident's own alerts do
  not move the bar.
* **on a reload** -- :meth:`ThresholdTuner.reconfigure`: which new values
  are in force at once, and which wait for the next re-tune.

The event rate measured from timestamps serves the budget and the acceptance
time; the tuner keeps both in its checkpoint, but when and how the acceptance
time is re-read is :class:`~stream_detect.acceptance_time.AcceptanceTime`'s.
The tuner does no scoring and no I/O; it holds numbers and decides.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.acceptance_time import AcceptanceTime
from stream_detect.model_kinds import model_kind
from stream_detect.settings import DetectorSettings
from stream_detect.validation_buffer import ValidationBuffer

if TYPE_CHECKING:
    # The budget, the event rate and the F1 search are imported where a run that
    # uses them needs them: a plain run does not pay for them at start-up.
    from stream_detect.budget import AlertBudget
    from stream_detect.event_rate import EventRate
    from stream_detect.threshold_choice import ThresholdChoice

__all__ = ["UNSET_RETUNE_EVERY", "ThresholdTuner"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
#: Scores the caller gives for validation rows: (raw rows, their keys) -> scores.
RowScorer = Callable[[Array, list[str | None]], Array]

#: While no ε is set, re-tuning is tried this often (in events).
UNSET_RETUNE_EVERY = 100
#: Far enough that a count-based re-tune that is off never comes due.
_NEVER = 1 << 62


class ThresholdTuner:
    """Holds log ε and decides when and how it is re-chosen.

    Parameters
    ----------
    settings
        The detector settings; the tuner reads ``log_epsilon``,
        ``log_tail_epsilon``, ``model``, ``retune_every``, ``retune_labels``,
        ``retune_seconds``, ``min_positive_labels``, ``min_negative_labels``
        and ``validation_size``.
    n_features
        Width of the rows the validation buffer holds.
    clock
        Seconds on a monotonic clock, for ``retune_seconds``.

    Examples
    --------
    >>> tuner = ThresholdTuner(DetectorSettings(log_epsilon=-5.0, retune_every=10), 1)
    >>> tuner.rows_until_due(np.zeros(25, dtype=bool)), tuner.threshold
    (10, -5.0)
    >>> tuner.advance(10, 0)
    True
    """

    def __init__(
        self,
        settings: DetectorSettings,
        n_features: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.n_features = n_features
        self.clock = clock
        self.log_epsilon: float | None = None
        self.epsilon_source = "unset"
        self.reset_default()
        self.last_choice: ThresholdChoice | None = None
        self.validation = ValidationBuffer(settings.validation_size, n_features)
        #: The event rate, measured from the events' timestamps when they carry them.
        self.rate: EventRate | None = None
        if settings.timestamp_field is not None:
            from stream_detect.event_rate import EventRate

            self.rate = EventRate()
        self.budget: AlertBudget | None = None
        if settings.alerts_per_day is not None:
            from stream_detect.budget import AlertBudget

            self.budget = AlertBudget(
                settings.alerts_per_day, settings.events_per_day, measured=self.rate
            )
        #: Events a persistent deviation takes to be accepted, read from the rate.
        self.acceptance = AcceptanceTime(settings, self.rate)
        self.events = 0
        self.retunes = 0
        self.labels_since_retune = 0
        self.next_retune_at = self._interval_end()
        self.last_retune_time = clock()

    # ----------------------------------------------------------------- state

    @property
    def threshold(self) -> float:
        """The log ε events are compared with now; -inf (nothing flagged) while none is set."""
        return -math.inf if self.log_epsilon is None else self.log_epsilon

    @property
    def accept_after(self) -> int:
        """Events a persistent deviation takes to be accepted now (see :attr:`acceptance`)."""
        return self.acceptance.accept_after

    # -------------------------------------------------------------- schedule

    def rows_until_due(self, labelled: BoolArray) -> int:
        """How many of the next rows (``labelled`` marks those with a label) end at a re-tune.

        The count- and label-based re-tunes fall at exactly these events, so
        the caller scores this many rows, calls :meth:`advance`, and goes on.
        Returns at least 1 and at most ``len(labelled)``.
        """
        rows = labelled.size
        stop = min(rows, max(1, self.next_retune_at - self.events))
        need = self.settings.retune_labels - self.labels_since_retune
        if self.settings.retune_labels and need >= 1:
            positions = np.flatnonzero(labelled[:stop])
            if positions.size >= need:
                stop = int(positions[need - 1]) + 1
        return stop

    def advance(self, events: int, labels: int) -> bool:
        """Count ``events`` processed and ``labels`` new labels; return True if a re-tune is due."""
        self.events += events
        self.labels_since_retune += labels
        return self._due_by_count()

    def due_by_time(self) -> bool:
        """True if ``retune_seconds`` have passed on the clock since the last re-tune."""
        seconds = self.settings.retune_seconds
        return bool(seconds) and self.clock() - self.last_retune_time >= seconds

    def _due_by_count(self) -> bool:
        by_labels = 0 < self.settings.retune_labels <= self.labels_since_retune
        return by_labels or self.events >= self.next_retune_at

    def _interval_end(self) -> int:
        every = self.settings.retune_every or _NEVER
        if self.log_epsilon is None:
            every = min(every, UNSET_RETUNE_EVERY)
        return self.events + every

    # ------------------------------------------------------------ evidence

    def add_labelled(
        self,
        X: Array,
        labels: NDArray[np.int8],
        keys: list[str | None] | None,
        ids: list[str | None] | None = None,
    ) -> None:
        """Keep labelled raw rows for re-tuning (labels 0 or 1), with their events' ids."""
        if X.shape[0]:
            self.validation.add(X, labels, keys, ids)

    def observe_times(self, timestamps: Sequence[Any]) -> None:
        """Take the timestamps of the next rows, before they are scored (the event rate)."""
        if self.rate is not None:
            self.rate.observe(timestamps)

    def observe(
        self, scores: Array, alert: BoolArray, warmup: BoolArray, thresholds: Array
    ) -> None:
        """Take the decision scores of rows just scored and the log ε each was judged by."""
        if self.budget is not None:
            self.budget.observe(scores, alert, warmup, thresholds)

    # --------------------------------------------------------------- tuning

    def retune(self, score_rows: RowScorer) -> bool:
        """Re-choose log ε now; return True if it was set.

        With enough labels of both classes, log ε is the exact best-F1
        threshold on the validation buffer scored by ``score_rows`` (which
        returns NaN for rows it cannot score). Otherwise log ε stays as it
        is. Either way the schedule restarts from now.
        """
        self.retunes += 1
        self.labels_since_retune = 0
        # Without enough labels the threshold stays (the given one, the default, or a
        # tuned one), unless an alert budget re-chooses it.
        chosen = self._by_labels(score_rows) or self._by_budget()
        self.next_retune_at = self._interval_end()
        self.last_retune_time = self.clock()
        return chosen

    def can_choose(self) -> bool:
        """True if a re-tune now may change log ε: an alert budget, or enough labels.

        While it is False, a re-tune leaves log ε as it is without scoring anything.
        """
        return self.budget is not None or self._enough_labels()

    def _enough_labels(self) -> bool:
        """True if the validation buffer holds enough labels of each class to choose log ε."""
        settings = self.settings
        return (
            self.validation.n_positive >= settings.min_positive_labels
            and self.validation.n_negative >= settings.min_negative_labels
        )

    def _by_labels(self, score_rows: RowScorer) -> bool:
        settings = self.settings
        if not self._enough_labels():
            return False
        X, y, keys = self.validation.arrays()
        scores = score_rows(X, keys)
        usable = np.isfinite(scores)
        y = y[usable]
        if np.count_nonzero(y) < settings.min_positive_labels or np.count_nonzero(y == 0) < (
            settings.min_negative_labels
        ):
            return False
        from stream_detect.threshold import best_log_threshold

        choice = best_log_threshold(y, scores[usable])
        if not math.isfinite(choice.log_epsilon):
            return False
        self.log_epsilon = choice.log_epsilon
        self.last_choice = choice
        self.epsilon_source = "f1"
        return True

    def _by_budget(self) -> bool:
        """Re-choose log ε from the alert budget; False without a budget or enough evidence."""
        if self.budget is None or self.epsilon_source == "f1":
            return False
        chosen = self.budget.log_epsilon(self.threshold)
        if chosen is None:
            return False
        self.log_epsilon, self.epsilon_source = chosen, "budget"
        return True

    def _no_label_threshold(self) -> tuple[float | None, str]:
        """The log ε in force before any label, and where it comes from.

        The user's ``log_epsilon`` (``initial``); else ``log_tail_epsilon``
        on the log tail (``default``); else, for a model without a tail,
        none (``unset``).
        """
        settings = self.settings
        if settings.log_epsilon is not None:
            return settings.log_epsilon, "initial"
        if model_kind(settings.model).gaussian_score:
            return settings.log_tail_epsilon, "default"
        return None, "unset"

    def reset_default(self) -> None:
        """Put the threshold of :meth:`_no_label_threshold` in force (forgetting a tuned one)."""
        self.log_epsilon, self.epsilon_source = self._no_label_threshold()
        self.last_choice = None

    def override(self, log_epsilon: float) -> None:
        """Put ``log_epsilon`` in force as a threshold the user gave (until labels re-tune it)."""
        self.log_epsilon, self.epsilon_source, self.last_choice = log_epsilon, "initial", None

    def reconfigure(self, settings: DetectorSettings) -> None:
        """Take new settings while running (a config reload).

        The schedule reads the new values from the next event on; a
        ``log_epsilon`` that changes is in force at once, as a threshold the
        user gave, and so is a changed ``log_tail_epsilon`` while that is the
        threshold. The caller keeps ``log_epsilon`` given, or unset, as it was:
        that chooses the score the threshold is compared with.

        >>> tuner = ThresholdTuner(DetectorSettings(log_epsilon=-9.0), 1)
        >>> tuner.reconfigure(DetectorSettings(log_epsilon=-6.0))
        >>> tuner.log_epsilon, tuner.epsilon_source
        (-6.0, 'initial')
        >>> tuner = ThresholdTuner(DetectorSettings(), 1)
        >>> tuner.reconfigure(DetectorSettings(log_tail_epsilon=-8.0))
        >>> tuner.log_epsilon, tuner.epsilon_source
        (-8.0, 'default')
        """
        old_tail = self.settings.log_tail_epsilon
        self.settings = settings
        if settings.log_epsilon is not None and settings.log_epsilon != self.log_epsilon:
            self.override(settings.log_epsilon)
        elif self.epsilon_source == "default" and settings.log_tail_epsilon != old_tail:
            self.reset_default()

    # ----------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """The tuner's state, JSON-able, in the detector checkpoint's layout."""
        return {
            "log_epsilon": self.log_epsilon,
            "epsilon_source": self.epsilon_source,
            "given_log_epsilon": self.settings.log_epsilon,
            "last_choice": None if self.last_choice is None else vars(self.last_choice),
            "validation": self.validation.to_dict(),
            "budget": None if self.budget is None else self.budget.to_dict(),
            "rate": None if self.rate is None else self.rate.to_dict(),
            **self.acceptance.to_dict(),
        }

    def restore(self, data: dict[str, Any], counters: dict[str, Any]) -> None:
        """Load what :meth:`to_dict` wrote (and the schedule's counters).

        A ``log_epsilon`` given in this run's settings that differs from the
        one the saved run was given wins over the saved threshold: what the
        user says this run is in force (``epsilon_source`` "initial") until
        labels re-tune it. Given unchanged, the saved threshold resumes, so a
        restart continues exactly where the run stopped.
        """
        given = self.settings.log_epsilon
        saved_given = data.get("given_log_epsilon", given)
        choice = data.get("last_choice")
        from stream_detect.threshold_choice import ThresholdChoice

        self.last_choice = None if choice is None else ThresholdChoice(**choice)
        if given is not None and given != saved_given:
            # The saved choice's F1 describes a threshold no longer in force.
            self.override(given)
        else:
            self.log_epsilon = data["log_epsilon"]
            self.epsilon_source = data["epsilon_source"]
        self.events = int(counters["events"])
        self.retunes = int(counters["retunes"])
        self.labels_since_retune = int(counters["labels_since_retune"])
        self.next_retune_at = int(counters["next_retune_at"])
        if self.budget is not None and data.get("budget") is not None:
            self.budget.restore(data["budget"])
        if self.rate is not None and data.get("rate") is not None:
            self.rate.restore(data["rate"])
            # The acceptance time is re-read from the rate, on a schedule saved beside it.
            self.acceptance.restore(data)
        # This run's validation_size holds (the newest labels of each class are kept); the
        # saved capacity is never allocated, so an edited one cannot exhaust memory.
        self.validation = ValidationBuffer.from_dict(
            data["validation"], self.settings.validation_size
        )
