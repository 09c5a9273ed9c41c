"""Noticing a feature so skewed that a Gaussian calls its ordinary high values anomalies.

A latency, a byte count or a queue length is often log-normal or heavier:
its long right tail is normal, but a Gaussian fitted to it puts the top
percent or so of its values past any small ε, so they alert at the rate they
occur (measured: log-normal latencies about 60 alerts per 10,000 events,
Pareto sizes about 110, against the 1e-6 the default threshold promises).
A transform towards a Gaussian (``--transform latency=log``) is the cure, and
``stream-detect inspect`` suggests one, but a user who pipes a stream into
``run`` never sees that. :class:`SkewedFeaturesWatch` looks once at the first
:data:`SAMPLE` scored values of each feature and says, once per feature,
when all three hold:

* the Gaussian of the sample puts at least :data:`MIN_SHARE` of the sample
  past ε (a Gaussian feature puts ε of it there, 1e-6);
* the middle half of the sample is skewed itself: its quartile skewness
  (Q3 + Q1 - 2 median) / (Q3 - Q1) is at least :data:`MIN_QUARTILE_SKEW`
  (an exponential's is 0.26, a log-normal's 0.17 to 0.34; 2,000 Gaussian
  values stay within 0.12 of 0 in 2,000 tries); and
* the transform :func:`~stream_detect.transform_suggestions.suggest_transform`
  suggests for the sample puts fewer past ε under the Gaussian of the
  transformed values.

The quartiles keep real anomalies out of it: spikes far out, even a tenth
of the sample at one end, do not move the quartiles much, while they make
the moment skewness (what the transform is chosen by) as large as a long
tail does. A feature of at most 16 distinct values is left to
:mod:`stream_detect.recurring_values`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

from stream_detect.gamma_tails import normal_log_tail

if TYPE_CHECKING:
    from stream_detect.transforms import Transform

__all__ = ["MIN_QUARTILE_SKEW", "MIN_SHARE", "SAMPLE", "SkewedFeaturesWatch", "quartile_skewness"]

#: Scored values per feature looked at, from the stream's start.
SAMPLE: Final = 2000
#: Share of the sample past ε under its Gaussian from which a feature is looked at
#: (two values of 2,000: about 10 alerts per 10,000 events to come).
MIN_SHARE: Final = 0.001
#: Quartile skewness from which the middle half of the values is skewed, not noise.
MIN_QUARTILE_SKEW: Final = 0.15
#: Distinct values up to which a feature is another module's (a few values, not a shape).
_FEW_VALUES: Final = 16


class SkewedFeaturesWatch:
    """Warn once per feature whose skew, not its anomalies, puts many values past ``log_epsilon``.

    ``warn`` receives one line of text; ``log_epsilon`` is the log tail
    probability events are judged by. The features are looked at once, when
    :data:`SAMPLE` rows have been observed (or ``sample`` in tests).

    >>> lines = []
    >>> watch = SkewedFeaturesWatch(["latency", "cpu"], -13.8, lines.append)
    >>> rng = np.random.default_rng(0)
    >>> watch.observe(np.column_stack([rng.lognormal(3.0, 1.0, 2000), rng.normal(size=2000)]))
    >>> print(lines[0])
    feature 'latency' is skewed (skewness 3.62 in its first 2000 values): a Gaussian model \
puts 0.7% of them past the threshold (a Gaussian feature 1e-06), so the values of its long \
tail will alert; --transform latency=log brings its skewness to -0.06 and that share to 0.0% \
(it takes values above 0 only: any other becomes a dead letter)
    >>> len(lines), watch.done
    (1, True)
    """

    def __init__(
        self,
        features: Sequence[str],
        log_epsilon: float,
        warn: Callable[[str], None],
        *,
        sample: int = SAMPLE,
    ) -> None:
        self.features = list(features)
        self.log_epsilon = log_epsilon
        self.warn = warn
        self.sample = sample
        self._rows: list[NDArray[np.float64]] = []
        self._held = 0
        self.done = False

    def observe(self, values: NDArray[np.float64]) -> None:
        """Take a batch's scored feature rows, (B, d); look once the sample is full."""
        if self.done or len(values) == 0:
            return
        taken = values[: self.sample - self._held]
        self._rows.append(taken.copy())
        self._held += len(taken)
        if self._held < self.sample:
            return
        self.done = True
        sample = np.concatenate(self._rows)
        self._rows = []
        for column, name in enumerate(self.features):
            line = self._skew_line(name, sample[:, column])
            if line is not None:
                self.warn(line)

    def _share_past(self, values: NDArray[np.float64]) -> float:
        """Share of ``values`` past ε under the Gaussian of ``values`` (0 if constant)."""
        spread = float(values.std())
        if not np.isfinite(spread) or spread <= 0.0:
            return 0.0
        z = (values - values.mean()) / spread
        return float(np.mean(normal_log_tail(z) < self.log_epsilon))

    def _skew_line(self, name: str, values: NDArray[np.float64]) -> str | None:
        """The warning for one feature's sample, or None."""
        share = self._share_past(values)
        if share < MIN_SHARE or len(np.unique(values)) <= _FEW_VALUES:
            return None
        if not quartile_skewness(values) >= MIN_QUARTILE_SKEW:
            return None
        # Imported here: every run builds this watch, few reach a skewed feature's check.
        from stream_detect.transform_suggestions import suggest_transform

        suggestion = suggest_transform(values)
        transform = suggestion.transform
        if transform.is_identity:
            return None
        after = self._share_past(transform.forward(values))
        if not after < share:
            return None  # what lies out there stays out there: anomalies, not a shape
        return (
            f"feature {name!r} is skewed (skewness {suggestion.skew_before:.2f} in its first "
            f"{len(values)} values): a Gaussian model puts {share:.1%} of them past the "
            f"threshold (a Gaussian feature {np.exp(self.log_epsilon):.0e}), so the values of its "
            f"long tail will alert; --transform {name}={transform.spec} brings its skewness "
            f"to {suggestion.skew_after:.2f} and that share to {after:.1%}{_domain(transform)}"
        )


def _domain(transform: Transform) -> str:
    """What values ``transform`` takes, said where it does not take them all.

    >>> from stream_detect.transforms import Transform
    >>> print(_domain(Transform("log", shift=2.5)))
     (it takes values above -2.5 only: any other becomes a dead letter)
    >>> _domain(Transform("root", degree=3))
    ''
    """
    if transform.kind == "log":
        limit = f"above {-transform.shift:g}" if transform.shift else "above 0"
    elif transform.kind == "root" and transform.degree % 2 == 0:
        limit = "of 0 and above"
    else:
        return ""
    return f" (it takes values {limit} only: any other becomes a dead letter)"


def quartile_skewness(values: NDArray[np.float64]) -> float:
    """Bowley's skewness (Q3 + Q1 - 2 median) / (Q3 - Q1): from -1 to 1, NaN if Q3 = Q1.

    >>> round(quartile_skewness(np.exp(np.linspace(-3, 3, 1001))), 3)
    0.635
    >>> quartile_skewness(np.linspace(-3, 3, 1001))
    0.0
    """
    q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
    spread = q3 - q1
    return float((q3 + q1 - 2.0 * median) / spread) if spread > 0 else float("nan")
