"""Feature transforms towards a Gaussian shape, and suggestions from skewness.

The density model assumes each feature looks roughly Gaussian. A skewed
feature (a latency, a byte count, a queue length) is better modelled after a
monotone transform that pulls in its long right tail:

============  ===================  ===========================================
spec          forward              domain (outside it ``forward`` gives NaN)
============  ===================  ===========================================
``none``      x                    every number
``log``       log(x)               x > 0
``log:C``     log(x + C)           x > -C          (C any finite number)
``sqrt``      sqrt(x)              x >= 0          (same as ``root:2``)
``root:K``    x ** (1/K)           x >= 0 for even K; every number for odd K
============  ===================  ===========================================

For odd K the root is sign-preserving, ``sign(x) * |x| ** (1/K)`` (the real
cube root for K = 3): it is defined and invertible on the whole line, so a
transform chosen on positive data does not turn a rare negative event into a
missing value. :func:`suggest_transform` only proposes roots for data that are
never negative, because bending data around zero only helps when zero is where
the data start.

Transforms never warn: values outside the domain (and NaN inputs) map to NaN,
and the caller decides what a NaN means. Everything here is pure numpy with no
I/O; :class:`ThirdMoments` gives the exact skewness of data too large to hold,
one chunk at a time.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.errors import ConfigError

__all__ = [
    "IDENTITY",
    "SPEC_HELP",
    "FeatureTransforms",
    "Suggestion",
    "ThirdMoments",
    "Transform",
    "parse_transform",
    "skewness",
    "suggest_transform",
    "suggest_transforms",
]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Kind = Literal["none", "log", "root"]

#: What a transform spec may be, as said in error messages.
SPEC_HELP = (
    "one of none, log, log:C (log(x + C), C a finite number), sqrt, "
    "root:K (x^(1/K), K an integer >= 2)"
)

#: Skewness below which a feature is left alone by :func:`suggest_transform`.
DEFAULT_MAX_ABS_SKEW = 0.5
#: A candidate is preferred over a less simple one unless the latter's
#: |skewness| is lower by more than this (sampling noise of the skewness of a
#: few thousand values is about 0.05).
DEFAULT_TOLERANCE = 0.1
#: Root degrees tried by the suggestion, from mild (2) to strong; log is the limit.
_ROOT_DEGREES = (2, 3, 4, 5, 6)
#: Margins below the smallest value tried for log(x + C), in standard deviations.
#: None is tiny: a future event just below the smallest one seen must stay in the domain.
_LOG_MARGINS = (10.0, 5.0, 2.0, 1.0, 0.5, 0.2, 0.1, 0.05)
_EPS = float(np.finfo(np.float64).eps)
#: Above this magnitude, sums and differences of values may overflow float64.
_LARGE = 1e300
#: Share of the values left out at each end before a suggestion is measured.
_TRIM_SHARE = 0.005


def _format_number(value: float) -> str:
    """Shortest text that parses back to exactly ``value`` ("2" rather than "2.0").

    >>> _format_number(2.0), _format_number(0.1), _format_number(-1e-05)
    ('2', '0.1', '-1e-05')
    """
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


@dataclass(frozen=True)
class Transform:
    """One invertible monotone transform of a feature; see the module docstring.

    Build one with :func:`parse_transform` from its spec, or directly:
    ``Transform("log", shift=C)`` is log(x + C), ``Transform("root", degree=K)``
    is x^(1/K). The default is the identity. Equal transforms have equal specs,
    and ``parse_transform(t.spec) == t``.

    >>> t = Transform("log", shift=1.0)
    >>> t.spec, t.forward([0.0, -2.0]).tolist()
    ('log:1', [0.0, nan])
    >>> Transform("root", degree=3).forward([-8.0, 27.0]).tolist()
    [-2.0, 3.0]
    """

    kind: Kind = "none"
    shift: float = 0.0
    degree: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("none", "log", "root"):
            raise ConfigError("transform", self.kind, SPEC_HELP)
        if not math.isfinite(self.shift):
            raise ConfigError("transform", self._spec_hint(), "a finite shift C in log:C")
        if self.kind == "root":
            try:
                degree = operator.index(self.degree)
            except TypeError:
                degree = 0
            if isinstance(self.degree, bool) or degree < 2:
                raise ConfigError(
                    "transform", f"root:{self.degree}", "root:K with K an integer >= 2"
                )
            object.__setattr__(self, "degree", int(degree))
        # Normalise so that equal functions compare (and hash) equal.
        object.__setattr__(self, "shift", float(self.shift) if self.kind == "log" else 0.0)
        if self.kind != "root":
            object.__setattr__(self, "degree", 1)

    def _spec_hint(self) -> str:
        """The spec as far as it can be written, for error messages."""
        return f"{self.kind}:{self.shift}" if self.kind == "log" else self.kind

    @property
    def spec(self) -> str:
        """The canonical spec string, parseable by :func:`parse_transform`.

        >>> [Transform().spec, Transform("log").spec, Transform("root", degree=2).spec]
        ['none', 'log', 'sqrt']
        """
        if self.kind == "log":
            return "log" if self.shift == 0.0 else f"log:{_format_number(self.shift)}"
        if self.kind == "root":
            return "sqrt" if self.degree == 2 else f"root:{self.degree}"
        return "none"

    @property
    def is_identity(self) -> bool:
        """True for ``none``."""
        return self.kind == "none"

    def __str__(self) -> str:
        return self.spec

    def in_domain(self, x: ArrayLike) -> BoolArray:
        """Where ``forward`` gives a number (NaN inputs are never in the domain).

        >>> Transform("log").in_domain([1.0, 0.0, np.nan]).tolist()
        [True, False, False]
        """
        values = np.asarray(x, dtype=np.float64)
        if self.kind == "log":
            out: BoolArray = values + self.shift > 0
        elif self.kind == "root" and self.degree % 2 == 0:
            out = values >= 0
        else:
            out = ~np.isnan(values)
        return out

    def forward(self, x: ArrayLike) -> Array:
        """Transform ``x`` elementwise; NaN outside the domain, never a warning.

        >>> Transform("root", degree=2).forward([4.0, -1.0, np.inf]).tolist()
        [2.0, nan, inf]
        """
        values = np.asarray(x, dtype=np.float64)
        if self.kind == "none":
            return values.copy()
        out = np.full(values.shape, np.nan)
        if self.kind == "log":
            with np.errstate(over="ignore"):  # x + C beyond the float range is inf, log inf
                shifted = values + self.shift
            np.log(shifted, out=out, where=shifted > 0)
        elif self.degree == 2:
            np.sqrt(values, out=out, where=values >= 0)
        elif self.degree == 3:
            np.cbrt(values, out=out)
        elif self.degree % 2 == 0:
            np.power(values, 1.0 / self.degree, out=out, where=values >= 0)
        else:
            finite = ~np.isnan(values)
            np.power(np.abs(values), 1.0 / self.degree, out=out, where=finite)
            out = np.copysign(out, values)
        return out

    def inverse(self, y: ArrayLike) -> Array:
        """Undo :meth:`forward`; NaN where ``y`` is not a value ``forward`` can produce.

        Results too large for float64 become inf, without a warning.

        >>> t = parse_transform("log:2.5")
        >>> t.inverse(t.forward([0.0, 10.0])).round(12).tolist()
        [0.0, 10.0]
        >>> parse_transform("sqrt").inverse([3.0, -1.0]).tolist()
        [9.0, nan]
        """
        values = np.asarray(y, dtype=np.float64)
        if self.kind == "none":
            return values.copy()
        with np.errstate(over="ignore"):
            if self.kind == "log":
                out: Array = np.exp(values) - self.shift
                return out
            if self.degree % 2 == 0:
                out = np.full(values.shape, np.nan)
                np.power(values, float(self.degree), out=out, where=values >= 0)
                return out
            out = np.copysign(np.power(np.abs(values), float(self.degree)), values)
            return out


#: The transform that changes nothing (spec ``none``).
IDENTITY = Transform()


def parse_transform(spec: str, key: str = "transform") -> Transform:
    """Parse a transform spec (see the module docstring); :class:`ConfigError` if it is not one.

    Names are case-insensitive and spaces around the parts are ignored.
    ``root:2`` is ``sqrt`` and ``log:0`` is ``log``. ``key`` names the
    configuration key or option in the error message.

    >>> parse_transform("log:1.5")
    Transform(kind='log', shift=1.5, degree=1)
    >>> parse_transform("ROOT: 3").spec
    'root:3'
    >>> parse_transform("cube")
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key transform: got 'cube', expected one of none, \
log, log:C (log(x + C), C a finite number), sqrt, root:K (x^(1/K), K an integer >= 2)
    """
    if not isinstance(spec, str):
        raise ConfigError(key, spec, SPEC_HELP)
    name, sep, argument = (part.strip() for part in spec.partition(":"))
    name = name.lower()
    if not sep:
        if name in ("none", "identity"):
            return IDENTITY
        if name == "log":
            return Transform("log")
        if name == "sqrt":
            return Transform("root", degree=2)
        raise ConfigError(key, spec, SPEC_HELP)
    if name == "log":
        try:
            shift = float(argument)
        except ValueError:
            raise ConfigError(key, spec, "log:C with C a finite number, e.g. log:1") from None
        if not math.isfinite(shift):
            raise ConfigError(key, spec, "log:C with C a finite number, e.g. log:1")
        return Transform("log", shift=shift)
    if name == "root":
        try:
            degree = int(argument)
        except ValueError:
            raise ConfigError(key, spec, "root:K with K an integer >= 2, e.g. root:3") from None
        if degree < 2:
            raise ConfigError(key, spec, "root:K with K an integer >= 2, e.g. root:3")
        return Transform("root", degree=degree)
    raise ConfigError(key, spec, SPEC_HELP)


class FeatureTransforms(Mapping[str, Transform]):
    """Transforms by feature name; features not named pass through unchanged.

    Immutable. Identity transforms are not stored, so two objects that
    transform data the same way compare equal.

    >>> ft = FeatureTransforms.parse(["bytes=log:1", "latency=sqrt"], features=["bytes", "latency"])
    >>> ft.to_dict()
    {'bytes': 'log:1', 'latency': 'sqrt'}
    >>> ft.apply(np.array([[0.0, 9.0, 5.0]]), ["bytes", "latency", "cpu"]).tolist()
    [[0.0, 3.0, 5.0]]
    """

    def __init__(self, transforms: Mapping[str, Transform] | None = None) -> None:
        items = dict(transforms or {})
        for name, transform in items.items():
            if not isinstance(transform, Transform):
                raise TypeError(f"transform of {name!r} is {transform!r}, not a Transform")
        self._transforms = {name: t for name, t in items.items() if not t.is_identity}

    def __getitem__(self, feature: str) -> Transform:
        return self._transforms[feature]

    def __iter__(self) -> Iterator[str]:
        return iter(self._transforms)

    def __len__(self) -> int:
        return len(self._transforms)

    def __repr__(self) -> str:
        return f"FeatureTransforms({self.to_dict()!r})"

    def get_transform(self, feature: str) -> Transform:
        """The transform of ``feature`` (the identity when it is not named)."""
        return self._transforms.get(feature, IDENTITY)

    @classmethod
    def parse(
        cls,
        items: Iterable[str],
        features: Sequence[str] | None = None,
        key: str = "transform",
    ) -> FeatureTransforms:
        """Parse ``"FEATURE=SPEC"`` strings (as given to ``--transform``).

        With ``features``, a name that is not among them is a
        :class:`ConfigError`, as is a feature named twice.

        >>> FeatureTransforms.parse(["x=log"], features=["y"])
        Traceback (most recent call last):
        ...
        stream_detect.errors.ConfigError: config key transform: got 'x=log', expected \
FEATURE=SPEC with FEATURE one of 'y'
        """
        known = None if features is None else list(features)
        parsed: dict[str, Transform] = {}
        for item in items:
            name, sep, spec = item.rpartition("=")
            name = name.strip()
            if not sep or not name:
                raise ConfigError(key, item, f"FEATURE=SPEC with SPEC {SPEC_HELP}")
            if known is not None and name not in known:
                names = ", ".join(repr(f) for f in known)
                raise ConfigError(key, item, f"FEATURE=SPEC with FEATURE one of {names}")
            if name in parsed:
                raise ConfigError(key, item, f"each feature at most once ({name!r} is repeated)")
            parsed[name] = parse_transform(spec, key=key)
        return cls(parsed)

    def to_dict(self) -> dict[str, str]:
        """``{feature: spec}``, JSON-able; :meth:`from_dict` restores it."""
        return {name: t.spec for name, t in self._transforms.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, str], key: str = "transforms") -> FeatureTransforms:
        """Restore from :meth:`to_dict` output (ConfigError on a bad spec).

        >>> FeatureTransforms.from_dict({"x": "root:3", "y": "none"})
        FeatureTransforms({'x': 'root:3'})
        """
        if not isinstance(data, Mapping):
            raise ConfigError(key, data, "a mapping of feature name to transform spec")
        return cls(
            {str(name): parse_transform(spec, key=f"{key}.{name}") for name, spec in data.items()}
        )

    def _columns(self, features: Sequence[str]) -> list[tuple[int, Transform]]:
        """Column index and transform of every named feature; ConfigError if one is missing."""
        names = list(features)
        missing = [name for name in self._transforms if name not in names]
        if missing:
            raise ConfigError(
                "transform",
                missing[0],
                "a feature of the data (" + ", ".join(repr(n) for n in names) + ")",
            )
        return [(names.index(name), t) for name, t in self._transforms.items()]

    def _map(self, X: ArrayLike, features: Sequence[str], inverse: bool) -> Array:
        values = np.array(X, dtype=np.float64)  # a copy: the caller's array never changes
        if values.ndim != 2 or values.shape[1] != len(features):
            raise ValueError(f"expected rows of {len(features)} features, got shape {values.shape}")
        for column, transform in self._columns(features):
            apply = transform.inverse if inverse else transform.forward
            values[:, column] = apply(values[:, column])
        return values

    def apply(self, X: ArrayLike, features: Sequence[str]) -> Array:
        """Return a transformed copy of ``X`` (rows of ``features``); NaN outside a domain."""
        return self._map(X, features, inverse=False)

    def invert(self, X: ArrayLike, features: Sequence[str]) -> Array:
        """Return ``X`` mapped back to the original units (the inverse of :meth:`apply`).

        >>> ft = FeatureTransforms({"x": Transform("log")})
        >>> ft.invert(ft.apply([[1.0, 2.0]], ["x", "y"]), ["x", "y"]).tolist()
        [[1.0, 2.0]]
        """
        return self._map(X, features, inverse=True)

    @classmethod
    def from_suggestions(cls, suggestions: Mapping[str, Suggestion]) -> FeatureTransforms:
        """The transforms of :func:`suggest_transforms` output (``--transform auto``)."""
        return cls({name: s.transform for name, s in suggestions.items()})


def skewness(x: ArrayLike) -> float:
    """Population skewness m3 / m2^1.5 of the values of ``x``, as ``scipy.stats.skew(bias=True)``.

    NaN for no values or when a value is not finite; 0.0 for constant values,
    which are symmetric (SciPy gives NaN there).

    >>> skewness([1.0, 2.0, 3.0]), skewness([5.0, 5.0])
    (0.0, 0.0)
    >>> round(skewness([0.0, 0.0, 0.0, 1.0]), 6)
    1.154701
    """
    values = np.asarray(x, dtype=np.float64).ravel()
    if values.size == 0 or not np.isfinite(values).all():
        return math.nan
    magnitude = float(np.max(np.abs(values)))
    if magnitude > _LARGE:
        # The mean and the deviations of values near ±1e308 overflow. Skewness does not
        # change with the scale, and a power of two scales exactly, so nothing else changes.
        values = np.ldexp(values, -math.frexp(magnitude)[1])
    mean = float(values.mean())
    dev = values - mean
    # Scaled deviations neither overflow when cubed nor underflow when squared.
    scale = float(np.max(np.abs(dev)))
    if scale == 0.0 or values.min() == values.max():
        # Constant: the rounding of the mean may leave deviations, but no shape.
        return 0.0
    z = dev / scale
    m2 = float(np.mean(z * z))
    m3 = float(np.mean(z * z * z))
    # A spread within rounding noise of the mean is no spread (SciPy's test too).
    if scale * math.sqrt(m2) <= _EPS * abs(mean):
        return 0.0
    return m3 / (m2 * math.sqrt(m2))


class ThirdMoments:
    """Per-feature count, mean, m2, m3, min and max of the finite values seen; mergeable.

    ``m2`` and ``m3`` are sums of squared and cubed deviations from the mean.
    :meth:`learn` takes one chunk at a time and merges it with the formulas of
    Chan et al. and Pébay (2008), so the result equals the moments of all the
    chunks concatenated, whatever their sizes. Non-finite values (NaN, inf) are
    left out and counted in ``non_finite``; ``n`` is therefore per feature.
    Deviations beyond about 1e100 overflow the third moment: the skewness is
    then NaN, without a warning.

    >>> m = ThirdMoments(1).learn([[0.0], [0.0]]).learn([[0.0], [1.0]])
    >>> m.n.tolist(), m.mean.tolist(), m.var.tolist(), m.skewness.round(6).tolist()
    ([4.0], [0.25], [0.1875], [1.154701])
    """

    def __init__(self, d: int) -> None:
        if d < 1:
            raise ValueError(f"d must be >= 1 feature, got {d}")
        self.n: Array = np.zeros(d)
        self.mean: Array = np.zeros(d)
        self.m2: Array = np.zeros(d)
        self.m3: Array = np.zeros(d)
        self.non_finite: NDArray[np.int64] = np.zeros(d, dtype=np.int64)
        self.min: Array = np.full(d, np.inf)
        self.max: Array = np.full(d, -np.inf)

    @property
    def d(self) -> int:
        """Number of features."""
        return int(self.n.shape[0])

    @property
    def var(self) -> Array:
        """Population variance m2 / n per feature (NaN where nothing was seen)."""
        out: Array = np.divide(self.m2, self.n, out=np.full(self.d, np.nan), where=self.n > 0)
        return out

    @property
    def skewness(self) -> Array:
        """Population skewness per feature, as :func:`skewness` (NaN where nothing was seen)."""
        out = np.full(self.d, np.nan)
        var = self.var
        seen = self.n > 0
        # Equal extremes: constant, whatever the rounding of the mean left in m2.
        # sqrt(var) <= eps |mean| is var <= (eps mean)², without squaring a huge mean.
        flat = seen & ((self.min == self.max) | (np.sqrt(var) <= _EPS * np.abs(self.mean)))
        shaped = seen & ~flat
        out[flat] = 0.0
        # Moments of values near ±1e308 overflow to inf: the skewness is then NaN, quietly.
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            third = self.m3[shaped] / self.n[shaped]
            out[shaped] = third / var[shaped] / np.sqrt(var[shaped])
        return out

    def copy(self) -> ThirdMoments:
        """An independent copy."""
        other = ThirdMoments(self.d)
        other.n, other.mean = self.n.copy(), self.mean.copy()
        other.m2, other.m3 = self.m2.copy(), self.m3.copy()
        other.non_finite = self.non_finite.copy()
        other.min, other.max = self.min.copy(), self.max.copy()
        return other

    def learn(self, X: ArrayLike) -> ThirdMoments:
        """Add the rows of ``X`` (shape ``(rows, d)``); return ``self``."""
        values = np.asarray(X, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != self.d:
            raise ValueError(f"expected rows of {self.d} features, got shape {values.shape}")
        if values.shape[0] == 0:
            return self
        finite = np.isfinite(values)
        with np.errstate(over="ignore", invalid="ignore"):
            batch = self._batch(values, finite)
            merged = self.merge(batch)
        self.n, self.mean, self.m2, self.m3 = merged.n, merged.mean, merged.m2, merged.m3
        self.non_finite = merged.non_finite
        self.min, self.max = merged.min, merged.max
        return self

    def _batch(self, values: Array, finite: BoolArray) -> ThirdMoments:
        """The moments of one chunk, around its own mean."""
        batch = ThirdMoments(self.d)
        batch.non_finite = (~finite).sum(axis=0).astype(np.int64)
        batch.n = finite.sum(axis=0).astype(np.float64)
        total = np.where(finite, values, 0.0).sum(axis=0)
        np.divide(total, batch.n, out=batch.mean, where=batch.n > 0)
        dev = np.where(finite, values - batch.mean, 0.0)
        square = dev * dev
        batch.m2 = square.sum(axis=0)
        batch.m3 = (square * dev).sum(axis=0)
        batch.min = np.min(values, axis=0, where=finite, initial=np.inf)
        batch.max = np.max(values, axis=0, where=finite, initial=-np.inf)
        return batch

    def merge(self, other: ThirdMoments) -> ThirdMoments:
        """The moments of both value sets together; neither input changes.

        >>> a = ThirdMoments(1).learn([[1.0], [2.0]])
        >>> b = ThirdMoments(1).learn([[9.0]])
        >>> bool(np.isclose(a.merge(b).skewness[0], skewness([1.0, 2.0, 9.0])))
        True
        """
        if other.d != self.d:
            raise ValueError(f"cannot merge moments of {self.d} and {other.d} features")
        out = ThirdMoments(self.d)
        with np.errstate(over="ignore", invalid="ignore"):
            self._merge_into(other, out)
        return out

    def _merge_into(self, other: ThirdMoments, out: ThirdMoments) -> None:
        n_a, n_b = self.n, other.n
        n = n_a + n_b
        safe_n = np.where(n > 0, n, 1.0)
        delta = other.mean - self.mean
        out.n = n
        out.mean = self.mean + delta * (n_b / safe_n)
        out.m2 = self.m2 + other.m2 + delta * delta * (n_a * n_b / safe_n)
        out.m3 = (
            self.m3
            + other.m3
            + delta**3 * (n_a * n_b * (n_a - n_b) / (safe_n * safe_n))
            + 3.0 * delta * (n_a * other.m2 - n_b * self.m2) / safe_n
        )
        out.non_finite = self.non_finite + other.non_finite
        out.min = np.minimum(self.min, other.min)
        out.max = np.maximum(self.max, other.max)


@dataclass(frozen=True)
class Suggestion:
    """The transform suggested for one feature and the skewness before and after it.

    >>> Suggestion(Transform("log"), 6.2, 0.01).to_dict()
    {'transform': 'log', 'skew_before': 6.2, 'skew_after': 0.01}
    """

    transform: Transform
    skew_before: float
    skew_after: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (NaN skewness becomes None)."""
        return {
            "transform": self.transform.spec,
            "skew_before": None if math.isnan(self.skew_before) else self.skew_before,
            "skew_after": None if math.isnan(self.skew_after) else self.skew_after,
        }


def _log_shifts(low: float, spread: float) -> list[float]:
    """Shifts C for log(x + C) that keep a margin below ``low``, rounded to short numbers.

    Ordered from the largest margin (mildest, safest for future data) down.
    Each C is rounded *up* at the second digit of its margin, so the margin is
    kept (it grows by at most a tenth) and the spec stays short, e.g. ``log:2.09``.

    >>> _log_shifts(0.0, 1.0)[:3]
    [10.0, 5.0, 2.0]
    >>> _log_shifts(-1.99, 2.0)[-1]
    2.09
    """
    shifts: list[float] = []
    for margin in (m * spread for m in _LOG_MARGINS):
        if not 0.0 < margin < math.inf:
            continue
        exponent = math.floor(math.log10(margin)) - 1
        step = 10.0**exponent
        steps = (margin - low) / step
        if not math.isfinite(steps):
            continue  # C itself would be beyond the float range
        shift = round(math.ceil(steps) * step, max(0, -exponent))
        if math.isfinite(shift) and shift + low > 0 and shift not in shifts:
            shifts.append(shift)
    return shifts


def suggest_transform(
    x: ArrayLike,
    max_abs_skew: float = DEFAULT_MAX_ABS_SKEW,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Suggestion:
    """Suggest the transform that brings the skewness of ``x`` closest to zero.

    Only finite values count. The suggestion is made on the **central 99 %**
    of them: the ``floor(n / 200)`` smallest and as many largest values are
    left out (none for fewer than 200 values), so that a few anomalies in the
    data -- the events the model is meant to flag -- do not choose the
    transform. Domains are checked on **all** the values: ``log`` only when
    every value is positive, roots only when none is negative, and ``log:C``
    only with C above ``-min(x)``.

    Candidates, from simplest to least simple: ``none``; ``log``; ``sqrt``
    and ``root:K`` (K = 3..6); ``log:C`` when some value is zero or negative,
    with C a little above ``-min(x)`` (margins from 10 down to 0.05 standard
    deviations of the central values, so an event a little below the
    smallest one seen still has a logarithm). The simplest candidate whose
    |skewness| on the central values is within ``tolerance`` of the best is
    chosen, and ``none`` is kept when the |skewness| of the central values is
    already below ``max_abs_skew``, or below ``2 * sqrt(6 / n)`` (twice its
    standard error for n Gaussian values: with few values a skewness that
    size is noise, e.g. |skew| < 1.1 for 20 values). Left-skewed data keep
    ``none``: every candidate pulls in the right tail and would make them worse.

    The returned ``skew_before`` and ``skew_after`` are those of all the
    finite values, before and after the suggested transform.

    >>> rng = np.random.default_rng(0)
    >>> suggest_transform(rng.lognormal(0.0, 1.0, 10_000)).transform.spec
    'log'
    >>> suggest_transform(rng.normal(0.0, 1.0, 10_000)).transform.spec
    'none'
    >>> normal = rng.normal(0.0, 1.0, 10_000)
    >>> normal[:50] += 6.0  # 0.5 % anomalies far out do not make it skewed
    >>> suggest_transform(normal).transform.spec
    'none'
    """
    values = np.asarray(x, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    before = skewness(values)
    central = _central(values)
    central_before = skewness(central)
    # Twice the standard error of the skewness of n Gaussian values, sqrt(6/n):
    # below it, a few rows' skewness is noise, not a shape worth transforming.
    noise = 2.0 * math.sqrt(6.0 / values.size) if values.size else math.inf
    if (
        values.size < 3
        or math.isnan(central_before)
        or abs(central_before) < max(max_abs_skew, noise)
    ):
        return Suggestion(IDENTITY, before, before)
    low = float(values.min())
    candidates: list[Transform] = []
    if low > 0:
        candidates.append(Transform("log"))
    if low >= 0:
        candidates.extend(Transform("root", degree=k) for k in _ROOT_DEGREES)
    if low <= 0:
        spread = _spread(central)
        if math.isfinite(spread) and spread > 0:
            shifts = _log_shifts(low, spread)
            candidates.extend(Transform("log", shift=c) for c in shifts if math.isfinite(c))
    scored = [(IDENTITY, central_before)] + [(t, skewness(t.forward(central))) for t in candidates]
    finite_scores = [abs(s) for _, s in scored if math.isfinite(s)]
    best = min(finite_scores)
    for transform, after in scored:
        if math.isfinite(after) and abs(after) <= best + tolerance:
            if transform.is_identity:
                return Suggestion(IDENTITY, before, before)
            return Suggestion(transform, before, skewness(transform.forward(values)))
    raise AssertionError("unreachable: the best candidate is within tolerance of itself")


def _central(values: Array) -> Array:
    """``values`` without their ``floor(n * 0.005)`` smallest and as many largest, sorted.

    >>> _central(np.arange(400.0))[[0, -1]].tolist()
    [2.0, 397.0]
    >>> _central(np.arange(199.0)).size
    199
    """
    cut = math.floor(values.size * _TRIM_SHARE)
    ordered = np.sort(values)
    return ordered[cut : values.size - cut]


def _spread(values: Array) -> float:
    """Standard deviation of ``values``; inf, without a warning, beyond the float range."""
    magnitude = float(np.max(np.abs(values))) if values.size else 0.0
    if not magnitude > _LARGE:
        return float(values.std())
    exponent = math.frexp(magnitude)[1]
    scaled = float(np.ldexp(values, -exponent).std())
    try:
        return math.ldexp(scaled, exponent)
    except OverflowError:
        return math.inf


def suggest_transforms(
    X: ArrayLike,
    features: Sequence[str],
    max_abs_skew: float = DEFAULT_MAX_ABS_SKEW,
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict[str, Suggestion]:
    """:func:`suggest_transform` for every column of ``X``, by feature name.

    >>> rng = np.random.default_rng(1)
    >>> X = np.column_stack([rng.normal(size=5000), rng.lognormal(size=5000)])
    >>> {k: s.transform.spec for k, s in suggest_transforms(X, ["a", "b"]).items()}
    {'a': 'none', 'b': 'log'}
    """
    values = np.asarray(X, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(features):
        raise ValueError(f"expected rows of {len(features)} features, got shape {values.shape}")
    return {
        name: suggest_transform(values[:, j], max_abs_skew, tolerance)
        for j, name in enumerate(features)
    }
