"""Tests of stream_detect.transforms (specs, round trips, domains) and feature_transforms."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from stream_detect.errors import ConfigError
from stream_detect.feature_transforms import FeatureTransforms
from stream_detect.transforms import SPEC_HELP, Transform, parse_transform

# ---------------------------------------------------------------- specs


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("none", Transform()),
        ("identity", Transform()),
        ("log", Transform("log")),
        ("log:0", Transform("log")),
        ("log:1", Transform("log", shift=1.0)),
        ("log:-2.5", Transform("log", shift=-2.5)),
        ("log:1e-05", Transform("log", shift=1e-5)),
        ("sqrt", Transform("root", degree=2)),
        ("root:2", Transform("root", degree=2)),
        ("root:3", Transform("root", degree=3)),
        (" Root : 7 ", Transform("root", degree=7)),
        ("LOG", Transform("log")),
    ],
)
def test_parse_transform_accepts_every_documented_spec(spec: str, expected: Transform) -> None:
    assert parse_transform(spec) == expected


@pytest.mark.parametrize(
    "spec",
    ["none", "log", "log:1", "log:-2.5", "log:0.1", "log:1e-05", "sqrt", "root:3", "root:12"],
)
def test_canonical_spec_round_trips(spec: str) -> None:
    transform = parse_transform(spec)
    assert transform.spec == spec
    assert parse_transform(transform.spec) == transform
    assert str(transform) == spec


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("cube", SPEC_HELP),
        ("", SPEC_HELP),
        ("exp", SPEC_HELP),
        ("sqrt:2", SPEC_HELP),
        ("log:abc", "log:C with C a finite number"),
        ("log:", "log:C with C a finite number"),
        ("log:nan", "log:C with C a finite number"),
        ("log:inf", "log:C with C a finite number"),
        ("root:1", "K an integer >= 2"),
        ("root:0", "K an integer >= 2"),
        ("root:2.5", "K an integer >= 2"),
        ("root:", "K an integer >= 2"),
    ],
)
def test_parse_transform_rejects_bad_specs_with_a_config_error(spec: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_transform(spec, key="features.bytes.transform")
    assert info.value.key == "features.bytes.transform"
    assert info.value.value == spec
    assert fragment in info.value.expected
    assert "\n" not in str(info.value)


def test_parse_transform_rejects_a_non_string() -> None:
    with pytest.raises(ConfigError):
        parse_transform(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "exp"},
        {"kind": "log", "shift": math.nan},
        {"kind": "log", "shift": math.inf},
        {"kind": "root", "degree": 1},
        {"kind": "root", "degree": True},
        {"kind": "root", "degree": 2.5},
    ],
)
def test_transform_constructor_validates(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Transform(**kwargs)  # type: ignore[arg-type]


def test_transforms_are_normalised_hashable_and_accept_numpy_integers() -> None:
    assert Transform("root", degree=np.int64(3)) == Transform("root", degree=3)
    assert Transform("none", shift=5.0) == Transform()
    assert Transform("log", degree=4) == Transform("log")
    assert len({Transform("log"), parse_transform("log:0"), parse_transform("log")}) == 1


# ---------------------------------------------------------------- forward / inverse


def test_forward_values() -> None:
    x = np.array([0.0, 1.0, 4.0, 8.0])
    np.testing.assert_allclose(
        parse_transform("sqrt").forward(x), [0.0, 1.0, 2.0, 2.0 * math.sqrt(2)]
    )
    np.testing.assert_allclose(parse_transform("root:3").forward(x), [0.0, 1.0, 4 ** (1 / 3), 2.0])
    np.testing.assert_allclose(parse_transform("root:4").forward([16.0, 81.0]), [2.0, 3.0])
    np.testing.assert_allclose(parse_transform("root:5").forward([-32.0, 32.0]), [-2.0, 2.0])
    np.testing.assert_allclose(parse_transform("log:1").forward(x), np.log1p(x))
    np.testing.assert_array_equal(parse_transform("none").forward(x), x)


def test_forward_returns_a_new_array_and_keeps_the_shape() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    for spec in ("none", "log", "sqrt", "root:3"):
        out = parse_transform(spec).forward(x)
        assert out.shape == x.shape
        assert out is not x
    assert parse_transform("log").forward(1.0).shape == ()


EDGE_VALUES = np.array([-np.inf, -1e300, -8.0, -1.0, -0.0, 0.0, 1e-310, 1.0, 1e300, np.inf, np.nan])


@pytest.mark.parametrize(
    "spec", ["none", "log", "log:1", "log:-3", "sqrt", "root:3", "root:4", "root:5"]
)
def test_forward_and_inverse_never_warn_and_give_nan_outside_the_domain(spec: str) -> None:
    transform = parse_transform(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = transform.forward(EDGE_VALUES)
        back = transform.inverse(np.concatenate([EDGE_VALUES, [800.0, -800.0]]))
    inside = transform.in_domain(EDGE_VALUES)
    assert np.array_equal(np.isnan(out), ~inside)
    assert back.shape == (EDGE_VALUES.size + 2,)


def test_domains() -> None:
    x = np.array([-1.0, 0.0, 0.5, np.nan])
    assert parse_transform("log").in_domain(x).tolist() == [False, False, True, False]
    assert parse_transform("log:1").in_domain(x).tolist() == [False, True, True, False]
    assert parse_transform("sqrt").in_domain(x).tolist() == [False, True, True, False]
    assert parse_transform("root:3").in_domain(x).tolist() == [True, True, True, False]
    assert parse_transform("none").in_domain(x).tolist() == [True, True, True, False]


def test_inverse_outside_the_image_of_an_even_root_is_nan() -> None:
    assert np.isnan(parse_transform("root:4").inverse([-1.0])).all()


def test_inverse_overflow_is_inf_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parse_transform("log").inverse([1000.0]).tolist() == [math.inf]
        assert parse_transform("root:5").inverse([1e100]).tolist() == [math.inf]


transforms_strategy = st.one_of(
    st.just(Transform()),
    st.builds(
        lambda shift: Transform("log", shift=shift),
        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    ),
    st.builds(lambda degree: Transform("root", degree=degree), st.integers(2, 9)),
)


@settings(max_examples=300, deadline=None)
@given(
    transform=transforms_strategy,
    raw=hnp.arrays(
        np.float64,
        st.integers(1, 50),
        elements=st.floats(-1e100, 1e100, allow_nan=False, allow_subnormal=False),
    ),
)
def test_inverse_undoes_forward_in_the_domain(transform: Transform, raw: np.ndarray) -> None:
    if transform.kind == "log":
        # Put every value inside the domain: x + C > 0 with some room.
        x = np.abs(raw) % 1e6 + 1e-3 - transform.shift
    elif transform.kind == "root" and transform.degree % 2 == 0:
        x = np.abs(raw)
    else:
        x = raw
    assert transform.in_domain(x).all()
    back = transform.inverse(transform.forward(x))
    scale = np.abs(x) + abs(transform.shift)
    assert np.all(np.abs(back - x) <= 1e-12 * scale)


@settings(max_examples=100, deadline=None)
@given(
    transform=transforms_strategy,
    raw=hnp.arrays(np.float64, st.integers(2, 30), elements=st.floats(-1e6, 1e6)),
)
def test_forward_is_monotone_increasing_in_the_domain(
    transform: Transform, raw: np.ndarray
) -> None:
    x = np.sort(raw[transform.in_domain(raw)])
    y = transform.forward(x)
    assert np.all(np.diff(y) >= 0)


# ---------------------------------------------------------------- FeatureTransforms


def test_feature_transforms_parse_apply_and_pass_through() -> None:
    ft = FeatureTransforms.parse(["b=log:1", "c = sqrt"], features=["a", "b", "c"])
    X = np.array([[-5.0, 0.0, 9.0], [2.0, math.e - 1, 16.0]])
    original = X.copy()
    out = ft.apply(X, ["a", "b", "c"])
    np.testing.assert_allclose(out, [[-5.0, 0.0, 3.0], [2.0, 1.0, 4.0]])
    np.testing.assert_array_equal(X, original)
    np.testing.assert_allclose(ft.invert(out, ["a", "b", "c"]), X)
    assert ft.get_transform("a") == Transform()
    assert ft["c"] == parse_transform("sqrt")
    assert set(ft) == {"b", "c"} and len(ft) == 2


def test_feature_transforms_apply_in_another_column_order() -> None:
    ft = FeatureTransforms({"x": parse_transform("sqrt")})
    out = ft.apply([[4.0, 4.0]], ["y", "x"])
    assert out.tolist() == [[4.0, 2.0]]


def test_feature_transforms_reject_unknown_repeated_and_malformed_items() -> None:
    with pytest.raises(ConfigError, match="FEATURE one of 'a', 'b'"):
        FeatureTransforms.parse(["z=log"], features=["a", "b"])
    with pytest.raises(ConfigError, match="at most once"):
        FeatureTransforms.parse(["a=log", "a=sqrt"])
    for bad in ("log", "=log", "a=", "a=cube"):
        with pytest.raises(ConfigError):
            FeatureTransforms.parse([bad])
    # Without a feature list any name is accepted (checked when applied).
    assert FeatureTransforms.parse(["z=log"]).to_dict() == {"z": "log"}


def test_feature_transforms_apply_rejects_a_feature_the_data_lack() -> None:
    ft = FeatureTransforms.parse(["z=log"])
    with pytest.raises(ConfigError, match="a feature of the data"):
        ft.apply(np.ones((2, 1)), ["a"])
    with pytest.raises(ValueError, match="expected rows of 2 features"):
        ft.apply(np.ones((2, 3)), ["a", "z"])


def test_feature_transforms_dict_round_trip_through_json() -> None:
    ft = FeatureTransforms.parse(["a=log:0.1", "b=root:3", "c=none", "d=log:-1e-05"])
    data = json.loads(json.dumps(ft.to_dict()))
    assert data == {"a": "log:0.1", "b": "root:3", "d": "log:-1e-05"}
    assert FeatureTransforms.from_dict(data) == ft
    with pytest.raises(ConfigError) as info:
        FeatureTransforms.from_dict({"a": "bad"})
    assert info.value.key == "transforms.a"
    with pytest.raises(ConfigError):
        FeatureTransforms.from_dict(["a=log"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        FeatureTransforms({"a": "log"})  # type: ignore[dict-item]


def test_identity_entries_are_not_stored() -> None:
    assert FeatureTransforms({"a": Transform()}) == FeatureTransforms()
    assert repr(FeatureTransforms({"a": Transform("log")})) == "FeatureTransforms({'a': 'log'})"
