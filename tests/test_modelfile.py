"""Tests of stream_detect.fitted_model, fitting and modelfile: fitting, scoring, the JSON file."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.stats

from stream_detect.density import gaussian_log_pdf
from stream_detect.errors import InputError, ModelError
from stream_detect.feature_transforms import FeatureTransforms
from stream_detect.fitted_model import FittedModel
from stream_detect.fitting import fit_model
from stream_detect.gaussian_model import GaussianModel
from stream_detect.model_dict import FORMAT, VERSION
from stream_detect.modelfile import check_model_path, load_model, save_model
from stream_detect.row_transforms import transform_rows
from stream_detect.stats import RunningMoments


@pytest.fixture
def data() -> np.ndarray:
    rng = np.random.default_rng(7)
    latency = rng.lognormal(3.0, 0.5, 500)
    load = rng.normal(10.0, 2.0, 500)
    return np.column_stack([latency, load, 0.5 * load + rng.normal(0.0, 0.3, 500)])


FEATURES = ["latency", "load", "echo"]


def test_diagonal_fit_matches_numpy_and_scipy(data: np.ndarray) -> None:
    model = fit_model(data, FEATURES)
    assert (model.kind, model.features, model.n, model.d) == ("diagonal", tuple(FEATURES), 500, 3)
    np.testing.assert_allclose(model.mean, data.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(model.var, data.var(axis=0), rtol=1e-12)
    assert model.cov is None
    expected = scipy.stats.multivariate_normal(model.mean, np.diag(model.var)).logpdf(data)
    np.testing.assert_allclose(model.log_p(data), expected, rtol=1e-12)


def test_full_fit_matches_numpy_and_scipy(data: np.ndarray) -> None:
    model = fit_model(data, FEATURES, kind="full")
    assert model.cov is not None
    np.testing.assert_allclose(model.cov, np.cov(data.T, bias=True), rtol=1e-12)
    np.testing.assert_array_equal(model.cov, model.cov.T)
    np.testing.assert_array_equal(model.var, np.diagonal(model.cov))
    expected = scipy.stats.multivariate_normal(model.mean, model.cov).logpdf(data)
    # The ridge of floor_covariance (about 1e-10 of the variances) is all that differs.
    np.testing.assert_allclose(model.log_p(data), expected, rtol=1e-8)


def test_fit_equals_event_by_event_learning(data: np.ndarray) -> None:
    model = fit_model(data, FEATURES)
    state = RunningMoments.empty(3)
    for row in data:
        state.update(row)
    np.testing.assert_allclose(model.mean, state.mean, rtol=1e-12)
    np.testing.assert_allclose(model.var, state.var, rtol=1e-10)


def test_transforms_are_applied_before_fitting_and_scoring(data: np.ndarray) -> None:
    transforms = FeatureTransforms.from_dict({"latency": "log"})
    model = fit_model(data, FEATURES, transforms=transforms)
    logged = data.copy()
    logged[:, 0] = np.log(logged[:, 0])
    np.testing.assert_allclose(model.mean, logged.mean(axis=0), rtol=1e-13)
    plain = fit_model(logged, FEATURES)
    np.testing.assert_allclose(model.log_p(data), plain.log_p(logged), rtol=1e-13)
    np.testing.assert_array_equal(model.transform(data), logged)


def test_a_constant_feature_scores_finitely() -> None:
    X = np.column_stack([np.arange(10.0), np.full(10, 3.0)])
    for kind in ("diagonal", "full"):
        model = fit_model(X, ["a", "b"], kind=kind)  # type: ignore[arg-type]
        log_p = model.log_p(np.array([[4.0, 3.0], [4.0, 3.1]]))
        assert np.all(np.isfinite(log_p))
        assert log_p[0] > log_p[1]


def test_values_outside_a_transform_domain_name_their_place() -> None:
    transforms = FeatureTransforms.from_dict({"b": "log"})
    with pytest.raises(InputError, match=r"^t\.csv: data row 2: feature 'b' = -1\.0 is outside"):
        fit_model([[1.0, 2.0], [1.0, -1.0]], ["a", "b"], transforms=transforms, source="t.csv")
    # Rows come as an array, without their lines: the place is the data row.
    with pytest.raises(
        InputError, match=r"^t\.csv: data row 2: feature 'a' = inf is not a finite number"
    ):
        transform_rows([[1.0, 2.0], [math.inf, 2.0]], ["a", "b"], transforms, source="t.csv")
    model = fit_model([[1.0, 2.0], [2.0, 3.0]], ["a", "b"], transforms=transforms)
    with pytest.raises(InputError, match=r"v\.csv: data row 1"):
        model.log_p([[1.0, 0.0]], source="v.csv")


def test_an_event_too_far_out_scores_at_the_saturated_distance() -> None:
    for kind in ("diagonal", "full"):
        model = fit_model([[0.0, 1.0], [1.0, 0.0]], ["a", "b"], kind=kind)  # type: ignore[arg-type]
        log_p = model.log_p([[1e200, 0.0], [0.5, 0.5]])
        assert -math.inf < log_p[0] < -1e307
        assert np.isfinite(log_p[1])


def test_overflowing_statistics_are_an_input_error() -> None:
    for kind in ("diagonal", "full"):
        with pytest.raises(InputError, match=r"^big\.csv: the variance of feature 'b' overflows"):
            fit_model(
                [[1.0, 1e300], [2.0, -1e300]],
                ["a", "b"],
                kind=kind,  # type: ignore[arg-type]
                source="big.csv",
            )


def test_fit_refuses_bad_arguments() -> None:
    with pytest.raises(InputError, match="no events"):
        fit_model(np.zeros((0, 1)), ["a"], source="empty.csv")
    with pytest.raises(ValueError, match="kind"):
        fit_model(np.zeros((1, 1)), ["a"], kind="tree")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="more than once"):
        fit_model(np.zeros((1, 2)), ["a", "a"])
    with pytest.raises(ValueError, match="rows of 2 features"):
        fit_model(np.zeros((1, 3)), ["a", "b"])


def test_threshold_and_flags(data: np.ndarray) -> None:
    model = fit_model(data, FEATURES)
    assert model.epsilon is None
    with pytest.raises(ModelError, match="no threshold"):
        model.flag(np.zeros(2))
    chosen = model.with_threshold(-12.0, "exact", {"f1": 0.5})
    assert chosen.epsilon == pytest.approx(math.exp(-12.0))
    assert chosen.flag(np.array([-13.0, -12.0, -11.0])).tolist() == [True, False, False]
    assert model.log_epsilon is None  # the original is unchanged
    with pytest.raises(ValueError, match="method"):
        model.with_threshold(-1.0, "magic")


@pytest.mark.parametrize("kind", ["diagonal", "full"])
def test_save_and_load_round_trip(tmp_path: Path, data: np.ndarray, kind: str) -> None:
    transforms = FeatureTransforms.from_dict({"latency": "log:1"})
    model = fit_model(data, FEATURES, kind=kind, transforms=transforms)  # type: ignore[arg-type]
    model = model.with_threshold(-9.5, "grid", {"tp": 3, "f1": 0.75})
    path = tmp_path / "model.json"
    save_model(model, path)
    text = path.read_text()
    content = json.loads(text)  # plain JSON, no pickle
    assert (content["format"], content["version"], content["kind"]) == (FORMAT, VERSION, kind)
    assert content["transforms"] == {"latency": "log:1"}
    assert content["n"] == 500
    assert ("cov" in content) == (kind == "full") and ("var" in content) == (kind == "diagonal")
    assert content["epsilon"] == pytest.approx(math.exp(-9.5))
    loaded = load_model(path)
    assert loaded.features == model.features
    assert loaded.transforms == model.transforms
    assert (loaded.log_epsilon, loaded.threshold_method) == (-9.5, "grid")
    assert loaded.validation == {"tp": 3, "f1": 0.75}
    np.testing.assert_array_equal(loaded.mean, model.mean)
    np.testing.assert_array_equal(loaded.var, model.var)
    np.testing.assert_array_equal(loaded.log_p(data), model.log_p(data))
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_infinite_log_epsilon_is_written_as_a_string(tmp_path: Path) -> None:
    model = fit_model([[1.0], [2.0]], ["x"]).with_threshold(-math.inf, "classic")
    path = tmp_path / "m.json"
    save_model(model, path)
    content = json.loads(path.read_text())
    assert (content["log_epsilon"], content["epsilon"]) == ("-inf", 0.0)
    assert load_model(path).log_epsilon == -math.inf


def test_saving_into_a_missing_folder_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "absent" / "m.json"
    with pytest.raises(ModelError, match=rf"cannot write model file {target}"):
        save_model(fit_model([[1.0]], ["x"]), target)


def test_saving_through_a_link_replaces_the_file_it_leads_to(tmp_path: Path) -> None:
    # A rename onto the link replaced the link: the file it led to kept the old model.
    real = tmp_path / "models" / "v2.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "current.json"
    link.symlink_to(real)
    save_model(fit_model([[1.0], [3.0]], ["x"]), link)
    assert link.is_symlink() and link.resolve() == real
    assert load_model(real).mean.tolist() == [2.0]
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "absent" / "m.json")
    with pytest.raises(
        ModelError, match=r"cannot write model file .*dangling.json: no such folder"
    ):
        check_model_path(dangling)


def test_a_link_to_an_open_descriptor_is_refused_and_kept(tmp_path: Path) -> None:
    # --out /dev/stdout with stdout sent to a file: the descriptor's link led to a regular
    # file, so the write was allowed and, as root, replaced /dev/stdout by a regular file.
    with (tmp_path / "report.txt").open("w") as report:
        link = tmp_path / "stdout"
        link.symlink_to(f"/proc/self/fd/{report.fileno()}")
        for attempt in (check_model_path, lambda path: save_model(fit_model([[1.0]], ["x"]), path)):
            with pytest.raises(ModelError, match=r"stdout: in /proc \(.*, not a file$"):
                attempt(link)
        assert link.is_symlink()
    assert (tmp_path / "report.txt").read_text() == ""


def _good_file() -> dict[str, Any]:
    model = fit_model(np.array([[1.0, 2.0], [3.0, 5.0], [4.0, 4.0]]), ["a", "b"], kind="full")
    return model.with_threshold(-3.0, "exact").to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "other"}, "it is not a stream_detect model"),
        ({"version": 2}, "it is version 2 of the model format; this stream_detect reads version 1"),
        ({"kind": "tree"}, "kind is 'tree'"),
        ({"features": []}, "features must be a non-empty list"),
        # fit wrote such a file from a JSON field named "", and evaluate then said only
        # "config key features: got ',b'", without the file's name.
        ({"features": ["", "b"]}, r"features hold a blank name \(''\), expected names"),
        ({"features": ["a", "a"]}, "features name 'a' more than once"),
        ({"mean": [1.0]}, r"mean has shape \(1,\), expected \(2,\)"),
        ({"mean": ["x", 1.0]}, "mean must hold numbers only"),
        # numpy reads text numbers and booleans as numbers; a model file holds neither.
        ({"mean": ["1", "2"]}, r"mean\[0\] is '1', expected a number$"),
        ({"mean": [1.0, True]}, r"mean\[1\] is True, expected a number$"),
        ({"cov": [[1.0, 0.0], [0.0, "1"]]}, r"cov\[1\]\[1\] is '1', expected a number$"),
        ({"version": True}, "version is True, expected the integer 1$"),
        ({"version": 1.0}, "version is 1.0, expected the integer 1$"),
        ({"version": "1"}, "version is '1', expected the integer 1$"),
        ({"transforms": False}, "transforms: config key transforms: got False"),
        ({"cov": [[1.0, 2.0], [0.0, 1.0]]}, "cov is not symmetric"),
        ({"cov": [[1.0, 2.0], [2.0, 1.0]]}, r"cov is not a covariance matrix \(not positive"),
        ({"n": -1}, "n is -1, expected a number >= 0"),
        ({"n": 1e300}, "n is 1e[+]300, expected a count at most 9223372036854775807"),
        ({"mean": [1e155, 1.0]}, r"mean holds 1e\+155, expected magnitudes at most 1e\+154"),
        ({"cov": [[1e308, 0.0], [0.0, 1.0]]}, "cov holds 1e[+]308, too large for n = 3"),
        ({"variance_floor": "big"}, "variance_floor is 'big'"),
        (
            {"variance_floor": 0.0},
            r"variance_floor is 0.0, expected a number >= 2.2250738585072014e-308",
        ),
        ({"transforms": {"a": "cube"}}, "transforms: config key transforms.a"),
        ({"transforms": {"zzz": "log"}}, "transforms: .*'zzz'"),
        ({"log_epsilon": "low"}, "log_epsilon is 'low'"),
        ({"threshold_method": "magic"}, "threshold_method is 'magic'"),
        ({"validation": [1]}, "validation must be an object"),
        # Ignored, they were: a misspelt key scored without the transforms it named.
        ({"transform": {"a": "log"}}, "unknown key 'transform'; a model file holds only format"),
        # Ignored on reading, it was: a hand edit of epsilon alone changed no decision.
        ({"epsilon": 0.001}, r"epsilon is 0.001 where log_epsilon is -3.0, whose exp is 0.04978"),
        ({"log_epsilon": None}, "epsilon is 0.04978.* where log_epsilon is None: log_eps"),
        ({"var": [1.0, 1.0]}, r"the key 'var' is not read in a full model \(its variances"),
        ({"kind": "diagonal", "var": [1.0, 1.0]}, "the key 'cov' is not read in a diagonal model"),
    ],
)
def test_a_bad_model_file_is_refused_with_its_name(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**_good_file(), **change}))
    with pytest.raises(ModelError, match=rf"^model file {re.escape(str(path))}: {message}"):
        load_model(path)


def test_missing_keys_and_negative_variances(tmp_path: Path) -> None:
    content = _good_file()
    del content["cov"]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ModelError, match="the key 'cov' is missing"):
        load_model(path)
    diagonal = fit_model([[1.0], [2.0]], ["x"]).to_dict()
    path.write_text(json.dumps({**diagonal, "var": [-1.0]}))
    with pytest.raises(ModelError, match="negative variance"):
        load_model(path)


def test_unreadable_or_non_json_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"cannot read model file .*absent\.json"):
        load_model(tmp_path / "absent.json")
    path = tmp_path / "text.json"
    path.write_text("{not json")
    with pytest.raises(ModelError, match=r"model file .*text\.json is not JSON: .* line 1"):
        load_model(path)
    path.write_text("[1, 2]")
    with pytest.raises(ModelError, match="not a stream_detect model"):
        load_model(path)


@pytest.mark.parametrize(("content", "start"), [(b"\x1f\x8b\x08", "byte 0x1f"), (b"x,y\n", "'x'")])
def test_a_file_that_cannot_be_json_is_refused_from_its_start(
    tmp_path: Path, content: bytes, start: str
) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(content)
    with pytest.raises(ModelError) as refused:
        load_model(path)
    assert str(refused.value) == (
        f"model file {path} is not JSON: it starts with {start}, "
        "where a model file starts with '{'"
    )


def test_a_model_file_that_never_ends_is_refused_without_reading_it_whole() -> None:
    # /dev/zero was read whole first, which never ends: with 4 GiB of address space,
    # MemoryError; without, the memory filled.
    if not Path("/dev/zero").exists():
        pytest.skip("needs /dev/zero")
    script = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
        "from stream_detect.errors import ModelError\n"
        "from stream_detect.modelfile import load_model\n"
        "try:\n"
        "    load_model('/dev/zero')\n"
        "except ModelError as error:\n"
        "    print(error)\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == (
        "model file /dev/zero is not JSON: it starts with byte 0x00, "
        "where a model file starts with '{'\n"
    )


def test_from_dict_round_trips_in_memory() -> None:
    content = _good_file()
    model = FittedModel.from_dict(json.loads(json.dumps(content)))
    assert model.to_dict() == content


@pytest.mark.parametrize("kind", ["diagonal", "full"])
def test_log_p_is_the_density_the_streaming_model_uses(data: np.ndarray, kind: str) -> None:
    # A constant feature makes the floor matter; both paths floor the same way.
    X = np.column_stack([data, np.full(len(data), 3.0)])
    model = fit_model(X, ["a", "b", "c", "d"], kind=kind)  # type: ignore[arg-type]
    spread = model.var if model.cov is None else model.cov
    expected = gaussian_log_pdf(X, model.mean, spread, model.variance_floor, model.relative_floor)
    np.testing.assert_array_equal(model.log_p(X), expected)
    streaming = GaussianModel(4, full=kind == "full")
    streaming.learn(X)
    np.testing.assert_allclose(model.log_p(X), streaming.score(X).log_p, rtol=1e-9)


def test_check_model_path_fails_before_any_work(tmp_path: Path) -> None:
    check_model_path(tmp_path / "m.json")  # a new file in a folder that exists: fine
    with pytest.raises(ModelError, match=r"cannot write model file .*: no such folder"):
        check_model_path(tmp_path / "absent" / "m.json")
    with pytest.raises(ModelError, match=r"cannot write model file .*: it is a folder"):
        check_model_path(tmp_path)


def test_a_model_file_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    # An editor may add a UTF-8 byte-order mark when the file is saved by hand.
    path = tmp_path / "model.json"
    model = fit_model([[1.0], [2.0], [4.0]], ["x"])
    save_model(model, path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_model(path).to_dict() == model.to_dict()


def test_a_model_file_that_is_not_utf8_says_where(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_bytes(b'{"x": "\xff"}')
    with pytest.raises(ModelError) as refused:
        load_model(path)
    assert str(refused.value) == (
        f"model file {path} is not UTF-8 text (at byte 7); a model file is the JSON "
        "`stream-detect fit --out` writes"
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # Each ended the command with a traceback (RecursionError, ValueError).
        (lambda text: "[" * 100_000 + "]" * 100_000, "is nested too deeply"),
        (
            lambda text: text.replace('"n": 3', '"n": 1' + "0" * 5000),
            "holds an integer of 5001 digits, beyond the range of a number",
        ),
        (
            lambda text: text.replace('"n": 3', '"n": 1' + "0" * 400),
            "holds an integer of 401 digits, beyond the range of a number",
        ),
        # Python's reader took these, JSON has none: an infinite floor was used as it was.
        (
            lambda text: text.replace('"variance_floor": 1e-12', '"variance_floor": Infinity'),
            "holds Infinity, which is not JSON",
        ),
        (
            lambda text: text.replace('"variance_floor": 1e-12', '"variance_floor": 1e400'),
            "holds 1e400, beyond the range of a number",
        ),
        (lambda text: text.replace('"n": 3', '"n": NaN'), "holds NaN, which is not JSON"),
        # Python's reader kept the last of the two: an edit took effect or not by its place.
        (lambda text: text.replace('"n": 3', '"n": 3, "n": 30'), "holds the key 'n' twice"),
    ],
)
def test_a_model_file_beyond_what_json_numbers_hold_is_one_line(
    tmp_path: Path, edit: Callable[[str], str], message: str
) -> None:
    path = tmp_path / "m.json"
    text = json.dumps(_good_file())
    assert '"n": 3' in text and '"variance_floor": 1e-12' in text
    path.write_text(edit(text))
    with pytest.raises(ModelError) as refused:
        load_model(path)
    assert str(refused.value).startswith(f"model file {path} ") and message in str(refused.value)
