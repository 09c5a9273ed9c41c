"""Transforms by feature name: a set of per-feature transforms, applied to a batch's columns.

:class:`FeatureTransforms` maps feature names to the transforms of
:mod:`stream_detect.transforms` (features not named pass through unchanged),
parses them from ``FEATURE=SPEC`` strings and from their dict form, and
applies them, or their inverses, to the columns of a batch of rows. Pure
numpy with no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream_detect.errors import ConfigError
from stream_detect.transforms import IDENTITY, SPEC_HELP, Transform, parse_transform

if TYPE_CHECKING:
    from stream_detect.transform_suggestions import Suggestion

__all__ = ["FeatureTransforms"]

Array = NDArray[np.float64]


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
        """The transforms of ``suggest_transforms`` output (``--transform auto``).

        See :func:`~stream_detect.transform_suggestions.suggest_transforms`.
        """
        return cls({name: s.transform for name, s in suggestions.items()})
