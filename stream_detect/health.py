"""Liveness and readiness of the loop, as it reports them and the HTTP endpoint reads them.

Kept apart from :mod:`stream_detect.server` so that a run without an HTTP
endpoint tracks its health without loading the HTTP server.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Health"]


class Health:
    """Liveness and readiness as the loop reports them; read by the HTTP thread.

    >>> health = Health(clock=lambda: 10.0)
    >>> health.alive(stale_after_s=5.0), health.ready
    (True, False)
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.last_turn = clock()
        self.ready = False

    def turned(self, *, ready: bool) -> None:
        """The loop finished a turn; ``ready`` says whether it is past warm-up."""
        self.last_turn = self.clock()
        self.ready = ready

    def alive(self, stale_after_s: float) -> bool:
        """True if the loop turned within the last ``stale_after_s`` seconds."""
        return self.clock() - self.last_turn <= stale_after_s
