"""The model kinds: which ``model`` names exist and what each kind supports.

Declared once, in :data:`MODEL_KINDS`: a checkpoint, a Gaussian score that is
comparable across keys, learning clipped to the alert boundary. Ask
:func:`model_kind` or :func:`supports` rather than testing a name's spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from stream_detect.errors import ConfigError

__all__ = [
    "MODEL_KINDS",
    "MODEL_PATTERN",
    "Capability",
    "ModelKind",
    "model_kind",
    "model_kinds",
    "supports",
]

Capability = Literal["checkpointable", "gaussian_score", "clipped_learning"]


@dataclass(frozen=True)
class ModelKind:
    """A kind of model and what it supports.

    ``spelling`` is how the ``model`` setting names it (``river:NAME`` for a
    family); ``checkpointable`` says its state can be saved as data;
    ``gaussian_score`` that it gives log p(x) and a Mahalanobis distance
    (so a scale-free score and contributions); ``clipped_learning`` that a
    flagged event can be learned clipped to the alert boundary (it needs a mean).
    """

    spelling: str
    pattern: str
    description: str
    checkpointable: bool
    gaussian_score: bool
    clipped_learning: bool

    def matches(self, model: str) -> bool:
        """True if ``model`` names this kind."""
        return re.fullmatch(self.pattern, model) is not None

    def supports(self, capability: Capability) -> bool:
        """True if this kind has ``capability``."""
        return bool(getattr(self, capability))


#: Every model kind, in the order they are listed to users.
MODEL_KINDS: tuple[ModelKind, ...] = (
    ModelKind("diagonal", "diagonal", "per-feature Gaussians", True, True, True),
    ModelKind("full", "full", "the multivariate Gaussian", True, True, True),
    ModelKind(
        "river:NAME",
        r"river:[A-Za-z_][A-Za-z0-9_]*",
        "a river.anomaly detector, for comparison",
        False,
        False,
        False,
    ),
)

#: A regular expression every valid ``model`` setting matches.
MODEL_PATTERN = "^(" + "|".join(kind.pattern for kind in MODEL_KINDS) + ")$"


def model_kinds() -> tuple[ModelKind, ...]:
    """Every model kind.

    >>> [kind.spelling for kind in model_kinds()]
    ['diagonal', 'full', 'river:NAME']
    """
    return MODEL_KINDS


def model_kind(model: str) -> ModelKind:
    """The kind ``model`` names; :class:`ConfigError` listing the choices if none.

    >>> model_kind("river:LODA").checkpointable
    False
    """
    for kind in MODEL_KINDS:
        if kind.matches(model):
            return kind
    choices = ", ".join(kind.spelling for kind in MODEL_KINDS[:-1])
    raise ConfigError("model", model, f"{choices} or {MODEL_KINDS[-1].spelling}")


def supports(model: str, capability: Capability) -> bool:
    """True if the model ``model`` names has ``capability``; False for an unknown name.

    >>> supports("full", "clipped_learning"), supports("river:LODA", "checkpointable")
    (True, False)
    """
    try:
        return model_kind(model).supports(capability)
    except ConfigError:
        return False
