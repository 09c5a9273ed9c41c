"""Feature transforms towards a Gaussian shape: the specs and their maths.

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
missing value. :func:`~stream_detect.transform_suggestions.suggest_transform`
only proposes roots for data that are never negative, because bending data
around zero only helps when zero is where the data start.

Transforms never warn: values outside the domain (and NaN inputs) map to NaN,
and the caller decides what a NaN means. Mapping feature names to transforms
and applying them to the columns of a batch is
:class:`~stream_detect.feature_transforms.FeatureTransforms`.
Everything here is pure numpy with no I/O. Measuring skewness is
:mod:`stream_detect.skewness`; choosing a transform from it is
:mod:`stream_detect.transform_suggestions`.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.errors import ConfigError

__all__ = [
    "IDENTITY",
    "SPEC_HELP",
    "Transform",
    "parse_transform",
]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Kind = Literal["none", "log", "root"]

#: What a transform spec may be, as said in error messages.
SPEC_HELP = (
    "one of none, log, log:C (log(x + C), C a finite number), sqrt, "
    "root:K (x^(1/K), K an integer >= 2)"
)


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
