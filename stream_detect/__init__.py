"""stream_detect: streaming anomaly detection with running Gaussian density models."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
