"""The synthetic stream keeps its promises: seeded, skewed, correlated, labelled, 1 % anomalies."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect.skewness import skewness
from stream_detect.synthetic import HOST_PROFILES, SyntheticStream, generate_events
from stream_detect.synthetic_anomalies import ANOMALY_KINDS, CORRELATED_PAIRS
from stream_detect.synthetic_features import FEATURES

SKEWED = ("latency_ms", "error_rate")


@pytest.fixture(scope="module")
def stream() -> SyntheticStream:
    return generate_events(20_000, seed=0)


def column(stream: SyntheticStream, name: str) -> np.ndarray:
    return stream.X[:, FEATURES.index(name)]


def normal_rows(stream: SyntheticStream, host: str) -> np.ndarray:
    return (stream.truth == 0) & (np.array(stream.hosts) == host)


def gaussian_view(stream: SyntheticStream) -> np.ndarray:
    """The features with the skewed ones logged: Gaussian per host, by construction."""
    X = stream.X.copy()
    for name in SKEWED:
        X[:, FEATURES.index(name)] = np.log(X[:, FEATURES.index(name)])
    return X


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    a, b, c = generate_events(3000, seed=11), generate_events(3000, seed=11), generate_events(3000)
    assert a.events == b.events
    assert np.array_equal(a.truth, b.truth)
    assert a.kinds == b.kinds
    assert a.events != c.events


def test_events_are_json_lines_with_unique_string_ids(stream: SyntheticStream) -> None:
    assert len(stream) == len(stream.events) == stream.truth.size == stream.X.shape[0]
    ids = stream.ids
    assert all(isinstance(i, str) for i in ids)
    assert len(set(ids)) == len(ids)
    for event in stream.events[:200]:
        assert orjson.loads(orjson.dumps(event)) == event
        assert {"id", "host", "time", *FEATURES} <= set(event)
    # The values written are the values in X, and the counts are whole numbers.
    for j, name in enumerate(FEATURES):
        assert [e[name] for e in stream.events] == stream.X[:, j].tolist()
    assert all(
        isinstance(e["requests"], int) and isinstance(e["fan_rpm"], int) for e in stream.events
    )


def test_anomaly_share_and_kinds(stream: SyntheticStream) -> None:
    assert stream.truth.sum() == 200  # 1 % of 20 000
    kinds = np.array(stream.kinds)
    assert np.array_equal(kinds != "normal", stream.truth == 1)
    counts = stream.kind_counts()
    assert set(counts) == set(ANOMALY_KINDS)
    assert counts["burst"] == 8
    assert 0.3 < counts["contextual"] / (200 - counts["burst"]) < 0.5
    assert not stream.truth[:300].any(), "the clean start has no anomaly"


def test_the_burst_is_one_host_in_a_row(stream: SyntheticStream) -> None:
    rows = np.flatnonzero(np.array(stream.kinds) == "burst")
    hosts = {stream.hosts[i] for i in rows}
    assert len(hosts) == 1
    same_host = np.flatnonzero(np.array(stream.hosts) == hosts.pop())
    first = np.searchsorted(same_host, rows[0])
    assert np.array_equal(same_host[first : first + rows.size], rows)


def test_skewed_features_are_skewed_and_the_others_are_not(stream: SyntheticStream) -> None:
    for profile in HOST_PROFILES:
        rows = normal_rows(stream, profile.name)
        for name in FEATURES:
            values = column(stream, name)[rows]
            if name in SKEWED:
                assert skewness(values) > 1.0, (profile.name, name)
                assert abs(skewness(np.log(values))) < 0.15, (profile.name, name)
            else:
                assert abs(skewness(values)) < 0.15, (profile.name, name)
    error_rate = column(stream, "error_rate")
    assert error_rate.min() > 0 and error_rate.max() < 1
    assert column(stream, "latency_ms").min() > 0


def test_correlated_pairs_are_correlated_and_the_rest_are_not(stream: SyntheticStream) -> None:
    X = gaussian_view(stream)
    for profile in HOST_PROFILES:
        corr = np.corrcoef(X[normal_rows(stream, profile.name)].T)
        for a, b in CORRELATED_PAIRS:
            assert corr[FEATURES.index(a), FEATURES.index(b)] > 0.85, (profile.name, a, b)
        assert abs(corr[FEATURES.index("requests"), FEATURES.index("temperature_c")]) < 0.05
        assert corr[FEATURES.index("latency_ms"), FEATURES.index("error_rate")] > 0.3


def test_hosts_have_different_scales(stream: SyntheticStream) -> None:
    assert set(stream.hosts) == {p.name for p in HOST_PROFILES}
    means = [column(stream, "requests")[normal_rows(stream, p.name)].mean() for p in HOST_PROFILES]
    assert means[0] > 1.5 * means[1] > 2.5 * means[2]
    assert set(generate_events(500, seed=1, n_hosts=1).hosts) == {"web-1"}


def host_z(stream: SyntheticStream) -> np.ndarray:
    """Each event standardised by its host's normal events (skewed features logged)."""
    X = gaussian_view(stream)
    Z = np.empty_like(X)
    for profile in HOST_PROFILES:
        host = np.array(stream.hosts) == profile.name
        normal = X[host & (stream.truth == 0)]
        Z[host] = (X[host] - normal.mean(0)) / normal.std(0)
    return Z


def test_point_anomalies_are_far_out_in_one_feature(stream: SyntheticStream) -> None:
    Z = host_z(stream)
    rows = np.array(stream.kinds) == "point"
    assert (np.abs(Z[rows]).max(axis=1) > 4.0).all()


def test_contextual_anomalies_hide_in_every_marginal_but_break_a_pair(
    stream: SyntheticStream,
) -> None:
    """Only a model of the pair's correlation sees them (what the full-covariance model adds)."""
    Z = host_z(stream)
    contextual = np.array(stream.kinds) == "contextual"
    normal = stream.truth == 0
    # The two values of the broken pair lie within the central 98 % of their host's normal values
    # (the other features are ordinary draws)...
    pair_columns = [[FEATURES.index(name) for name in pair] for pair in CORRELATED_PAIRS]
    in_pair = np.zeros_like(Z, dtype=bool)
    for i in np.flatnonzero(contextual):
        pair = max(pair_columns, key=lambda cols: abs(Z[i, cols[0]] - Z[i, cols[1]]))
        in_pair[i, pair] = True
    assert in_pair.sum() == 2 * contextual.sum()
    assert (np.abs(Z[in_pair]) < 2.33).all()
    # ...so the per-feature squared distance is ordinary: below the normal events' 99th percentile.
    diagonal = (Z**2).sum(axis=1)
    assert np.median(diagonal[contextual]) < np.quantile(diagonal[normal], 0.99)
    # But in the pair they break, the Mahalanobis distance is far beyond any normal event.
    broken = []
    for i in np.flatnonzero(contextual):
        distances = []
        for a, b in CORRELATED_PAIRS:
            ja, jb = FEATURES.index(a), FEATURES.index(b)
            host = np.array(stream.hosts) == stream.hosts[i]
            cov = np.cov(Z[host & normal][:, [ja, jb]].T)
            dev = Z[i, [ja, jb]]
            distances.append(float(dev @ np.linalg.solve(cov, dev)))
        broken.append(max(distances))
    assert min(broken) > 20.0  # chi-square, 2 degrees of freedom: p < 5e-5


def test_labels_are_a_true_subset_with_anomalies_over_represented(stream: SyntheticStream) -> None:
    labelled = np.array(["label" in e for e in stream.events])
    assert np.array_equal(labelled, stream.labelled)
    assert labelled.sum() == 600  # 3 % of 20 000
    labels = np.array([e["label"] for e in stream.events if "label" in e])
    assert np.array_equal(labels, stream.truth[labelled])
    assert labels.sum() == 60  # 30 % of the anomalies
    assert labels.mean() > 5 * stream.truth.mean()


def test_no_level_shift_by_default(stream: SyntheticStream) -> None:
    X = gaussian_view(stream)
    normal = stream.truth == 0
    host = np.array(stream.hosts) == "web-1"
    half = np.arange(len(stream)) < len(stream) // 2
    first, second = X[normal & host & half], X[normal & host & ~half]
    shift = np.abs(first.mean(0) - second.mean(0)) / first.std(0)
    assert (shift < 0.1).all()


def test_step_change_moves_one_feature_from_its_event_on() -> None:
    plain = generate_events(4000, seed=5)
    shifted = generate_events(4000, seed=5, step_at=2000, step_feature="cpu", step_size=4.0)
    assert shifted.events[:2000] == plain.events[:2000]
    assert np.array_equal(shifted.truth, plain.truth)
    cpu = FEATURES.index("cpu")
    moved = shifted.X[2000:] - plain.X[2000:]
    others = [j for j in range(len(FEATURES)) if j != cpu]
    assert (moved[:, others] == 0).all()
    web1 = np.array(plain.hosts[2000:]) == "web-1"
    sd = HOST_PROFILES[0].cpu[1]
    # 4 standard deviations, except where the 100 % ceiling or an anomaly's value clips it.
    assert np.median(moved[web1, cpu]) == pytest.approx(4.0 * sd, abs=0.1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_events": 0}, "n_events"),
        ({"n_hosts": 4}, "n_hosts"),
        ({"anomaly_rate": 0.5}, "anomaly_rate"),
        ({"label_rate": 1.5}, "label_rate"),
        ({"step_feature": "memory"}, "step_feature"),
        ({"step_at": -1}, "step_at"),
        ({"step_size": math.nan}, "step_size"),
        ({"burst_length": -1}, "burst_length"),
    ],
)
def test_bad_arguments_say_which(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_events(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(
    n_events=st.integers(1, 3000),
    seed=st.integers(0, 2**32 - 1),
    anomaly_rate=st.floats(0.0, 0.2),
    label_rate=st.floats(0.0, 1.0),
)
def test_any_size_gives_a_consistent_stream(
    n_events: int, seed: int, anomaly_rate: float, label_rate: float
) -> None:
    s = generate_events(n_events, seed, anomaly_rate=anomaly_rate, label_rate=label_rate)
    assert len(s.events) == s.truth.size == len(s.kinds) == s.labelled.size == n_events
    assert s.truth.sum() <= round(anomaly_rate * n_events)
    assert s.labelled.sum() <= round(label_rate * n_events)
    assert np.isfinite(s.X).all()
    assert (s.X[:, FEATURES.index("latency_ms")] > 0).all()
    assert (
        (s.X[:, FEATURES.index("error_rate")] > 0) & (s.X[:, FEATURES.index("error_rate")] < 1)
    ).all()
