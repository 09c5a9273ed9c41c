"""The anomalies of the synthetic stream: which events, of which kind, and how far off.

:func:`inject_anomalies` overwrites rows of the latent normals behind the
events (:mod:`stream_detect.synthetic_features`) before they are mapped onto
the hosts' scales, and records each anomaly's kind.

About ``anomaly_rate`` of the events (1 % by default) are anomalous, none in
the first ``clean_start`` events (a detector needs a normal start to learn
from). Three kinds, in :attr:`stream_detect.synthetic.SyntheticStream.kinds`:

``point``
    one feature far outside its normal range (5 to 8 standard deviations of
    its latent normal, in the direction a fault would push it): any model
    catches most of these.
``contextual``
    a correlated pair broken: ``requests`` high while ``cpu`` is low (or the
    reverse), or ``temperature_c`` high while ``fan_rpm`` is low. Each value
    stays within its normal range (1.4 to 2 standard deviations), so a
    per-feature (diagonal) model scores the event as ordinary; only the
    full-covariance model, which knows the pair moves together, sees the
    deviation (a squared Mahalanobis distance of 40 to 80 in the pair).
``burst``
    a short incident: ``burst_length`` consecutive events of one host with
    ``latency_ms`` and ``error_rate`` both raised by 4 to 6 standard deviations.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from stream_detect.synthetic_features import FEATURES

__all__ = ["ANOMALY_KINDS", "CORRELATED_PAIRS", "inject_anomalies"]

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Kinds of anomaly, as in :attr:`stream_detect.synthetic.SyntheticStream.kinds`
#: (``"normal"`` otherwise).
ANOMALY_KINDS: tuple[str, ...] = ("point", "contextual", "burst")

#: The correlated pairs a contextual anomaly breaks: (feature, feature).
CORRELATED_PAIRS: tuple[tuple[str, str], ...] = (
    ("requests", "cpu"),
    ("temperature_c", "fan_rpm"),
)

#: Direction a fault pushes each feature in a point anomaly (0: either way).
_FAULT_DIRECTION = {
    FEATURES.index("requests"): 0.0,
    FEATURES.index("cpu"): 1.0,
    FEATURES.index("latency_ms"): 1.0,
    FEATURES.index("error_rate"): 1.0,
    FEATURES.index("temperature_c"): 1.0,
    FEATURES.index("fan_rpm"): -1.0,
}
#: The features an incident raises together in a burst.
_BURST_COLUMNS = (FEATURES.index("latency_ms"), FEATURES.index("error_rate"))


def inject_anomalies(
    rng: np.random.Generator,
    latent: Array,
    kinds: NDArray[np.object_],
    host_index: IntArray,
    anomaly_rate: float,
    contextual_share: float,
    burst_length: int,
    clean_start: int,
) -> None:
    """Overwrite latent rows with anomalies and record their kind, in place.

    ``kinds`` holds ``"normal"`` for every row on entry; ``rng`` draws which
    rows become anomalies, so equal seeds give equal anomalies.

    >>> rng = np.random.default_rng(0)
    >>> latent = np.zeros((1000, len(FEATURES)))
    >>> kinds = np.full(1000, "normal", dtype=object)
    >>> inject_anomalies(rng, latent, kinds, np.zeros(1000, dtype=np.int64), 0.02, 0.4, 8, 300)
    >>> [int((kinds == kind).sum()) for kind in ANOMALY_KINDS]
    [8, 4, 8]
    >>> bool((kinds[:300] == "normal").all())
    True
    >>> np.flatnonzero(kinds == "burst").tolist()
    [827, 828, 829, 830, 831, 832, 833, 834]
    """
    n_events = latent.shape[0]
    n_anomalies = round(anomaly_rate * n_events)
    first = min(clean_start, n_events // 2)
    if n_anomalies == 0 or first >= n_events:
        return
    free = np.ones(n_events, dtype=bool)
    free[:first] = False

    if burst_length and n_anomalies >= 2 * burst_length and n_events - first > 10 * burst_length:
        # One host's incident: its next ``burst_length`` events, wherever other hosts' fall.
        start = int(rng.integers(first, n_events - 10 * burst_length))
        host = host_index[start]
        rows = np.flatnonzero(host_index[start:] == host)[:burst_length] + start
        for column in _BURST_COLUMNS:
            latent[rows, column] = rng.uniform(4.0, 6.0, rows.size)
        kinds[rows] = "burst"
        free[rows.min() : rows.max() + 1] = False
        n_anomalies -= rows.size

    n_anomalies = min(n_anomalies, int(free.sum()))
    rows = np.sort(rng.choice(np.flatnonzero(free), size=n_anomalies, replace=False))
    contextual = rng.random(n_anomalies) < contextual_share
    for row, is_contextual in zip(rows.tolist(), contextual.tolist(), strict=True):
        if is_contextual:
            pair = CORRELATED_PAIRS[int(rng.integers(len(CORRELATED_PAIRS)))]
            high, low = (FEATURES.index(name) for name in pair)
            if rng.random() < 0.5:
                high, low = low, high
            # Both within the normal range; only their disagreement is abnormal.
            latent[row, high] = rng.uniform(1.4, 2.0)
            latent[row, low] = -rng.uniform(1.4, 2.0)
            kinds[row] = "contextual"
        else:
            column = int(rng.integers(len(FEATURES)))
            direction = _FAULT_DIRECTION[column] or float(rng.choice([-1.0, 1.0]))
            latent[row, column] = direction * rng.uniform(5.0, 8.0)
            kinds[row] = "point"
