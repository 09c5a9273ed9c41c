"""What a run warns about its stream as a whole, beyond the bad records one by one.

:class:`StreamWatches` holds the watches a :class:`~stream_detect.pipeline.Pipeline`
shows each batch to, and says which of them a run needs:

- every run: a stream none of whose records can be used
  (:class:`~stream_detect.unusable.UnusableStreamWatch`);
- a ``timestamp_field``: events that lack their time
  (:class:`~stream_detect.missing_times.MissingTimesWatch`);
- alerts that compare a tail probability of the fields as read: a feature whose
  values recur (:class:`~stream_detect.recurring_values.RecurringValuesWatch`)
  and, without keys, one whose long tail rather than its anomalies will alert
  (:class:`~stream_detect.skewed_features.SkewedFeaturesWatch`);
- a keyed run: models evicted while still in warm-up
  (:class:`~stream_detect.warmup_evictions.WarmupEvictionWatch`).

Each warning is one line given to ``warn`` (by default :func:`warn_on_stderr`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.recurring_values import RecurringValuesWatch
from stream_detect.settings import DetectorSettings
from stream_detect.skewed_features import SkewedFeaturesWatch
from stream_detect.stderr_lines import write_stderr
from stream_detect.unusable import UnusableStreamWatch

if TYPE_CHECKING:
    from stream_detect.detector import Detector
    from stream_detect.missing_times import MissingTimesWatch
    from stream_detect.warmup_evictions import WarmupEvictionWatch

__all__ = ["StreamWatches", "warn_on_stderr"]


def warn_on_stderr(message: str) -> None:
    """Write ``message`` to stderr as one warning line."""
    write_stderr(f"stream-detect: warning: {message}\n")


class StreamWatches:
    """The watches of one run's stream, made as the run learns what it needs.

    Examples
    --------
    >>> said = []
    >>> watches = StreamWatches(DetectorSettings(), said.append)
    >>> watches.features_known(["x"], DetectorSettings())
    >>> watches.recurring is not None, watches.skewed is not None, watches.missing_times
    (True, True, None)
    """

    def __init__(self, settings: DetectorSettings, warn: Callable[[str], None]) -> None:
        self.warn = warn
        self.unusable = UnusableStreamWatch(warn)
        self.missing_times: MissingTimesWatch | None = None
        if settings.timestamp_field is not None:
            # Imported here: a run without a timestamp field does not load it.
            from stream_detect.missing_times import MissingTimesWatch

            self.missing_times = MissingTimesWatch(settings.timestamp_field, warn)
        #: Made once the features are known, when alerts compare a tail probability.
        self.recurring: RecurringValuesWatch | None = None
        #: Made with it: a feature whose long tail, not its anomalies, will alert.
        self.skewed: SkewedFeaturesWatch | None = None
        #: Made with the detector, if it is keyed (it knows the warm-up's length).
        self.warmup_evictions: WarmupEvictionWatch | None = None

    def features_known(self, features: list[str], settings: DetectorSettings) -> None:
        """Make the watches that look at the values of ``features``, if ``settings`` need them."""
        # Said of the fields as read, so only where the model sees them so, judged by a tail.
        if (
            settings.log_epsilon is None
            and settings.alerts_per_day is None
            and not settings.likelihood
            and not settings.model.startswith("river:")
            and not settings.derived
            and not settings.transforms
        ):
            self.recurring = RecurringValuesWatch(features, settings.log_tail_epsilon, self.warn)
            if settings.key_field is None:
                # Keys on different scales pool into a skewed mixture of Gaussians.
                self.skewed = SkewedFeaturesWatch(features, settings.log_tail_epsilon, self.warn)

    def observe_events(self, values: NDArray[np.float64], timestamps: Sequence[Any] | None) -> None:
        """Show the watches the values (as read) and times of a batch's scored events."""
        if self.missing_times is not None and timestamps is not None:
            self.missing_times.observe(timestamps)
        if self.recurring is not None:
            self.recurring.observe(values)
        if self.skewed is not None and not self.skewed.done:
            self.skewed.observe(values)

    def observe_evictions(self, detector: Detector, key_field: str) -> None:
        """Show the warm-up eviction watch a keyed ``detector``'s counters after a batch."""
        if self.warmup_evictions is None:
            from stream_detect.warmup_evictions import WarmupEvictionWatch  # keyed runs only

            self.warmup_evictions = WarmupEvictionWatch(
                self.warn, key_field, detector.settings.max_keys, detector.min_samples
            )
        self.warmup_evictions.observe(
            events=detector.events,
            evicted=detector.evicted,
            evicted_in_warmup=detector.evicted_in_warmup,
        )
