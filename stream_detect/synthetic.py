"""A realistic, labelled synthetic event stream with known anomalies.

:func:`generate_events` builds the stream that ``stream-detect demo`` runs
through the detector: server metrics from a few hosts, as a monitoring agent
would report them, with a ground truth for every event. Everything is drawn
from one seeded :func:`numpy.random.default_rng`, so a seed always gives the
same stream; nothing here does I/O.

The features
------------
Each event is a JSON-able dict::

    {"id": "evt-000042", "host": "web-1", "time": "2024-01-01T00:00:42Z",
     "requests": 203, "cpu": 36.4, "latency_ms": 41.7, "error_rate": 0.0112,
     "temperature_c": 44.1, "fan_rpm": 2231}

:mod:`stream_detect.synthetic_features` says how each feature is distributed
and which features move together.

The anomalies
-------------
About ``anomaly_rate`` of the events (1 % by default) are anomalous, none in
the first ``clean_start`` events, of three kinds (:data:`ANOMALY_KINDS`):
``point``, ``contextual`` and ``burst``, described in
:mod:`stream_detect.synthetic_anomalies`.

Labels
------
A few events carry an inline ``label`` field (1 anomaly, 0 normal), as an
operator confirming or dismissing alerts would provide: ``label_rate`` of the
events in all (3 % by default), with ``anomaly_label_share`` of the anomalies
(30 %) among them, so anomalies are over-represented. The other events carry no
label. Labels are always true (:attr:`SyntheticStream.truth`).

A step change
-------------
No level shift happens by default. ``step_at`` (an event index) and
``step_feature`` / ``step_size`` add one: from that event on, every host's
feature moves by ``step_size`` standard deviations of its latent normal. The
shifted events are not anomalies in :attr:`SyntheticStream.truth`: a shift is
the new normal, which a detector has to learn (a test of its drift handling).

>>> stream = generate_events(2000, seed=7)
>>> len(stream), stream.features[:3]
(2000, ('requests', 'cpu', 'latency_ms'))
>>> int(stream.truth.sum()), stream.kind_counts()
(20, {'point': 9, 'contextual': 3, 'burst': 8})
>>> sorted(stream.events[0])
['cpu', 'error_rate', 'fan_rpm', 'host', 'id', 'latency_ms', 'requests', 'temperature_c', 'time']
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.synthetic_anomalies import ANOMALY_KINDS, inject_anomalies
from stream_detect.synthetic_features import FEATURES, LATENT_CORRELATION, to_features
from stream_detect.synthetic_hosts import DECIMALS, HOST_PROFILES, HostProfile

__all__ = [
    "HOST_PROFILES",
    "HostProfile",
    "SyntheticStream",
    "generate_events",
]

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]

_START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class SyntheticStream:
    """A generated stream and its ground truth, row ``i`` describing ``events[i]``.

    Attributes
    ----------
    events
        JSON-able dicts in stream order (see the module docstring).
    truth
        1 where the event is an anomaly, 0 otherwise, shape ``(n,)``.
    features
        Names of the numeric features, the columns of ``X``.
    X
        The feature values exactly as written in the events, shape ``(n, d)``.
    kinds
        ``"normal"``, ``"point"``, ``"contextual"`` or ``"burst"`` per event.
    hosts
        The ``host`` field of each event.
    labelled
        True where the event carries a ``label`` field.
    """

    events: list[dict[str, Any]]
    truth: IntArray
    features: tuple[str, ...]
    X: Array
    kinds: tuple[str, ...]
    hosts: tuple[str, ...]
    labelled: NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.events)

    @property
    def ids(self) -> list[str]:
        """The ``id`` of every event, in order."""
        return [str(event["id"]) for event in self.events]

    def kind_counts(self) -> dict[str, int]:
        """Number of anomalies of each kind, in :data:`ANOMALY_KINDS` order.

        >>> generate_events(1000, seed=1, anomaly_rate=0.0).kind_counts()
        {'point': 0, 'contextual': 0, 'burst': 0}
        """
        counts = Counter(self.kinds)
        return {kind: counts.get(kind, 0) for kind in ANOMALY_KINDS}


def generate_events(
    n_events: int = 20_000,
    seed: int = 0,
    *,
    n_hosts: int = 3,
    anomaly_rate: float = 0.01,
    contextual_share: float = 0.4,
    burst_length: int = 8,
    clean_start: int = 300,
    label_rate: float = 0.03,
    anomaly_label_share: float = 0.3,
    step_at: int | None = None,
    step_feature: str = "latency_ms",
    step_size: float = 3.0,
) -> SyntheticStream:
    """Generate ``n_events`` labelled server-metric events; see the module docstring.

    Parameters
    ----------
    n_events
        Length of the stream.
    seed
        Seed of the random generator: equal arguments give equal streams.
    n_hosts
        How many of :data:`HOST_PROFILES` report (1 to 3); each event's host is
        drawn by the profiles' weights.
    anomaly_rate
        Share of anomalous events, rounded to a whole number of events.
    contextual_share
        Share of the anomalies (outside the burst) that are contextual; the
        rest are point anomalies.
    burst_length
        Length of the one burst (0 for none); it is part of ``anomaly_rate`` and
        happens only when the anomalies number at least twice as many.
    clean_start
        Events at the start with no anomaly (capped at half the stream).
    label_rate
        Share of events that carry a ``label`` field.
    anomaly_label_share
        Share of the anomalies that are labelled (capped by ``label_rate``).
    step_at, step_feature, step_size
        Optional level shift of one feature from event ``step_at`` on, in
        standard deviations of its latent normal (None: no shift).

    Returns
    -------
    SyntheticStream

    Examples
    --------
    >>> a = generate_events(500, seed=3)
    >>> a.events == generate_events(500, seed=3).events
    True
    >>> a.events == generate_events(500, seed=4).events
    False
    >>> labels = [(e["label"], t) for e, t in zip(a.events, a.truth.tolist()) if "label" in e]
    >>> len(labels), all(label == t for label, t in labels)
    (15, True)
    >>> shifted = generate_events(2000, seed=3, step_at=1000, step_feature="cpu", step_size=4.0)
    >>> bool(shifted.X[1000:, 1].mean() - shifted.X[:1000, 1].mean() > 15)
    True
    """
    _check(n_events, n_hosts, anomaly_rate, contextual_share, burst_length, clean_start)
    _check_share("label_rate", label_rate)
    _check_share("anomaly_label_share", anomaly_label_share)
    if step_feature not in FEATURES:
        raise ValueError(f"step_feature must be one of {', '.join(FEATURES)}, got {step_feature!r}")
    if not math.isfinite(step_size):
        raise ValueError(f"step_size must be a finite number, got {step_size!r}")
    if step_at is not None and not 0 <= step_at <= n_events:
        raise ValueError(f"step_at must be in [0, {n_events}] or None, got {step_at!r}")

    rng = np.random.default_rng(seed)
    profiles = HOST_PROFILES[:n_hosts]
    weights = np.array([p.weight for p in profiles])
    host_index = rng.choice(n_hosts, size=n_events, p=weights / weights.sum())
    latent = (
        rng.standard_normal((n_events, len(FEATURES))) @ np.linalg.cholesky(LATENT_CORRELATION).T
    )

    kinds = np.full(n_events, "normal", dtype=object)
    inject_anomalies(
        rng, latent, kinds, host_index, anomaly_rate, contextual_share, burst_length, clean_start
    )
    if step_at is not None:
        latent[step_at:, FEATURES.index(step_feature)] += step_size

    X = to_features(latent, host_index, profiles)
    truth = (kinds != "normal").astype(np.int64)
    labelled = _choose_labelled(rng, truth, label_rate, anomaly_label_share)
    hosts = tuple(profiles[i].name for i in host_index)
    events = _to_events(X, hosts, truth, labelled)
    return SyntheticStream(
        events=events,
        truth=truth,
        features=FEATURES,
        X=X,
        kinds=tuple(str(kind) for kind in kinds),
        hosts=hosts,
        labelled=labelled,
    )


def _check(
    n_events: int,
    n_hosts: int,
    anomaly_rate: float,
    contextual_share: float,
    burst_length: int,
    clean_start: int,
) -> None:
    """Raise ValueError naming the first argument outside its range."""
    if n_events < 1:
        raise ValueError(f"n_events must be >= 1, got {n_events!r}")
    if not 1 <= n_hosts <= len(HOST_PROFILES):
        raise ValueError(f"n_hosts must be in [1, {len(HOST_PROFILES)}], got {n_hosts!r}")
    if not 0.0 <= anomaly_rate <= 0.2:
        raise ValueError(f"anomaly_rate must be in [0, 0.2], got {anomaly_rate!r}")
    _check_share("contextual_share", contextual_share)
    if burst_length < 0:
        raise ValueError(f"burst_length must be >= 0, got {burst_length!r}")
    if clean_start < 0:
        raise ValueError(f"clean_start must be >= 0, got {clean_start!r}")


def _check_share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


def _choose_labelled(
    rng: np.random.Generator, truth: IntArray, label_rate: float, anomaly_label_share: float
) -> NDArray[np.bool_]:
    """Which events carry a label: a fixed number, anomalies over-represented."""
    n_events = truth.size
    anomalies = np.flatnonzero(truth == 1)
    normals = np.flatnonzero(truth == 0)
    n_labels = round(label_rate * n_events)
    n_positive = min(round(anomaly_label_share * anomalies.size), n_labels)
    n_negative = min(n_labels - n_positive, normals.size)
    labelled = np.zeros(n_events, dtype=bool)
    labelled[rng.choice(anomalies, size=n_positive, replace=False)] = True
    labelled[rng.choice(normals, size=n_negative, replace=False)] = True
    return labelled


def _to_events(
    X: Array, hosts: tuple[str, ...], truth: IntArray, labelled: NDArray[np.bool_]
) -> list[dict[str, Any]]:
    """Build the event dicts; integers stay ints so the JSON reads as an agent's would."""
    columns: list[list[Any]] = []
    for column, name in enumerate(FEATURES):
        whole = DECIMALS[name] == 0
        columns.append((X[:, column].astype(np.int64) if whole else X[:, column]).tolist())
    width = max(6, len(str(len(hosts))))
    events: list[dict[str, Any]] = []
    for i, host in enumerate(hosts):
        event: dict[str, Any] = {
            "id": f"evt-{i:0{width}d}",
            "host": host,
            "time": (_START + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        for name, values in zip(FEATURES, columns, strict=True):
            event[name] = values[i]
        if labelled[i]:
            event["label"] = int(truth[i])
        events.append(event)
    return events
