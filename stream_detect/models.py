"""Building a model from its name: ``diagonal``, ``full`` or ``river:NAME``.

:func:`build_model` is the one place a ``model`` setting becomes a
:class:`~stream_detect.model_interface.Model`: a
:class:`~stream_detect.gaussian_model.GaussianModel` for the Gaussian kinds,
a :class:`~stream_detect.river_model.RiverModel` for a river detector.
Which names exist and what each kind supports (a checkpoint, a Gaussian
score that is comparable across keys, learning clipped to the alert
boundary) is declared once, in :data:`~stream_detect.model_kinds.MODEL_KINDS`;
ask :func:`~stream_detect.model_kinds.model_kind` or
:func:`~stream_detect.model_kinds.supports` rather than testing a name's spelling.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.density import DEFAULT_VARIANCE_FLOOR
from stream_detect.errors import ConfigError
from stream_detect.gaussian_model import GaussianModel
from stream_detect.model_interface import Model
from stream_detect.model_kinds import model_kind
from stream_detect.prior import NormalInverseGammaPrior

__all__ = ["build_model", "direction_codes"]

#: Per-feature direction codes: +1 only high values count, -1 only low, 0 both.
DIRECTION_CODES = {"both": 0, "high": 1, "low": -1}


def build_model(
    kind: str,
    features: tuple[str, ...],
    *,
    half_life: float | None = None,
    variance_floor: float = DEFAULT_VARIANCE_FLOOR,
    params: dict[str, Any] | None = None,
    river_scaler: str = "minmax",
    prior: NormalInverseGammaPrior | None = None,
    direction: dict[str, str] | None = None,
) -> Model:
    """Build an empty model from its name: ``diagonal``, ``full`` or ``river:NAME``.

    ``prior`` gives a diagonal model Student-t tails; ``direction`` maps a
    feature to ``high``, ``low`` or ``both`` (the default) for a Gaussian model.

    >>> type(build_model("full", ("a", "b"))).__name__
    'GaussianModel'
    """
    if model_kind(kind).gaussian_score:
        return GaussianModel(
            len(features),
            full=kind == "full",
            half_life=half_life,
            variance_floor=variance_floor,
            prior=prior,
            direction=direction_codes(features, direction),
        )
    # Imported here: the river model's module imports this one for its interface.
    from stream_detect.river_model import RiverModel

    return RiverModel(kind.removeprefix("river:"), features, params, river_scaler)


def direction_codes(
    features: tuple[str, ...], direction: dict[str, str] | None
) -> NDArray[np.int8] | None:
    """Per-feature codes of a ``[direction]`` table (+1 high, -1 low, 0 both); None if empty.

    >>> direction_codes(("a", "b"), {"b": "low"}).tolist()
    [0, -1]
    """
    if not direction:
        return None
    for name, word in direction.items():
        if name not in features:
            raise ConfigError(f"direction.{name}", word, f"a feature among {list(features)}")
        if word not in DIRECTION_CODES:
            raise ConfigError(f"direction.{name}", word, "high, low or both")
    return np.array([DIRECTION_CODES[direction.get(f, "both")] for f in features], dtype=np.int8)
