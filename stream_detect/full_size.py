"""How large full-covariance models may grow: refused at start, not killed by the kernel later.

A full covariance over d features keeps d × d numbers per model and costs
about d² per event (more while a model factorises its matrix afresh, d³). A
stream whose features are inferred can bring far more than a user meant: an
exporter of 30,000 series made one model whose matrix alone took 6.7 GiB, and the
process was killed for memory with nothing said. So a detector refuses, in
one line, before it allocates anything:

* more than :data:`MAX_FULL_FEATURES` features for ``--model full`` (the
  diagonal model takes any number, a few numbers per feature);
* keyed full models whose matrices could, once ``--max-keys`` keys are held,
  take more than :data:`FULL_MODELS_MEMORY` (two d × d matrices a model: its
  co-moments and a factor kept to score with); the message says how many
  keys fit.

>>> check_full_size(3, keyed=True, max_keys=10_000)
>>> check_full_size(30_000, keyed=False, max_keys=10_000)
Traceback (most recent call last):
...
stream_detect.errors.ConfigError: config key model: got 'full', expected at most 1,024 \
features for a full covariance, got 30,000 (one 30,000 × 30,000 matrix takes 6.7 GiB, and \
each event costs d²): use the diagonal model, or name fewer features (--features)
"""

from __future__ import annotations

from typing import Final

from stream_detect.errors import ConfigError
from stream_detect.small_files import shown_size

__all__ = ["FULL_MODELS_MEMORY", "MAX_FULL_FEATURES", "check_full_size"]

#: Most features a full covariance takes.
MAX_FULL_FEATURES: Final = 1024
#: Most memory the matrices of every keyed full model a run may hold may take.
FULL_MODELS_MEMORY: Final = 4 << 30
#: d × d matrices of float64 a full model keeps: the co-moments and a factor.
_MATRICES_PER_MODEL: Final = 2


def check_full_size(d: int, *, keyed: bool, max_keys: int) -> None:
    """Raise :class:`ConfigError` if full models of ``d`` features would be too large.

    ``keyed``: the run holds a model per key, at most ``max_keys`` of them.

    >>> check_full_size(256, keyed=True, max_keys=10_000)
    Traceback (most recent call last):
    ...
    stream_detect.errors.ConfigError: config key max_keys: got 10000, expected at most 4,096 \
with --model full and 256 features (each key's model keeps 1 MiB of matrices, 4 GiB in all \
at most): lower --max-keys, or name fewer features
    """
    if d > MAX_FULL_FEATURES:
        raise ConfigError(
            "model",
            "full",
            f"at most {MAX_FULL_FEATURES:,} features for a full covariance, got {d:,} "
            f"(one {d:,} × {d:,} matrix takes {shown_size(d * d * 8)}, and each event costs "
            "d²): use the diagonal model, or name fewer features (--features)",
        )
    per_model = _MATRICES_PER_MODEL * d * d * 8
    if keyed and max_keys * per_model > FULL_MODELS_MEMORY:
        most = FULL_MODELS_MEMORY // per_model
        raise ConfigError(
            "max_keys",
            max_keys,
            f"at most {most:,} with --model full and {d:,} features (each key's model keeps "
            f"{shown_size(per_model)} of matrices, {shown_size(FULL_MODELS_MEMORY)} in all at "
            "most): lower --max-keys, or name fewer features",
        )
