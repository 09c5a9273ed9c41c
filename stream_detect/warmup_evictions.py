"""Noticing keyed models evicted before their warm-up ends.

A key's model raises no alert before it has learned ``min_samples`` events.
When more keys are live than ``--max-keys`` holds (or the key field names
events rather than entities: a request id, a timestamp), models are evicted
while still in warm-up, come back empty and are evicted again: those keys
never alert, and the run looks like a healthy, quiet one.
:class:`WarmupEvictionWatch` says so once, with what to do.

The rule compares warm-up evictions with the events scored, not with all
evictions. A healthy stream churns: hosts that come and go, a burst of
one-off keys, each evicted once the table is full, nearly always before its
warm-up ended, so among evictions warm-up ones are the rule even then, and
"the first one" would fire on nearly every keyed run that ever evicts. What
sets a table too small apart is how often: once full, it evicts a model in
warm-up for nearly every event, while churn evicts one for the few events
that start a short-lived key. So the warning waits for :data:`WARN_AFTER`
warm-up evictions (one stray burst early in a run is not enough) and for
them to be at least :data:`WARN_SHARE` of the events scored: far above
ordinary churn (a new short-lived key every few dozen events is a few per
cent), far below thrashing (close to every event).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

__all__ = ["WARN_AFTER", "WARN_SHARE", "WarmupEvictionWatch"]

#: Warm-up evictions before the warning may be given.
WARN_AFTER: Final = 100
#: Share of the events scored that warm-up evictions must reach for the warning.
WARN_SHARE: Final = 0.1


class WarmupEvictionWatch:
    """Warn once when models evicted in warm-up reach a meaningful share of the events.

    ``warn`` receives one line of text; ``key_field``, ``max_keys`` and
    ``min_samples`` are the run's, named in it.

    >>> lines = []
    >>> watch = WarmupEvictionWatch(lines.append, "host", 2, 50, after=3)
    >>> watch.observe(events=40, evicted=2, evicted_in_warmup=2)
    >>> watch.observe(events=60, evicted=12, evicted_in_warmup=3)  # 3 of 60: churn
    >>> lines
    []
    >>> watch.observe(events=80, evicted=30, evicted_in_warmup=9)
    >>> print(lines[0])
    9 of the 30 models evicted in the first 80 events (--max-keys 2) had learned fewer than \
the 50 events of their warm-up (--min-samples): keys evicted in warm-up never alert, so their \
silence is not health; raise --max-keys above the number of keys live at once, or check that \
--key-field 'host' names entities (hosts, sensors), not single events
    >>> watch.observe(events=100, evicted=50, evicted_in_warmup=29)
    >>> len(lines)
    1
    """

    def __init__(
        self,
        warn: Callable[[str], None],
        key_field: str,
        max_keys: int,
        min_samples: int,
        *,
        after: int = WARN_AFTER,
        share: float = WARN_SHARE,
    ) -> None:
        self.warn = warn
        self.key_field = key_field
        self.max_keys = max_keys
        self.min_samples = min_samples
        self.after = after
        self.share = share
        self._done = False

    def observe(self, *, events: int, evicted: int, evicted_in_warmup: int) -> None:
        """Take the detector's running totals after a batch (a restored run's included)."""
        if self._done or evicted_in_warmup < self.after:
            return
        if evicted_in_warmup < self.share * events:
            return
        self._done = True
        self.warn(
            f"{evicted_in_warmup} of the {evicted} models evicted in the first {events} events "
            f"(--max-keys {self.max_keys}) had learned fewer than the {self.min_samples} events "
            "of their warm-up (--min-samples): keys evicted in warm-up never alert, so their "
            "silence is not health; raise --max-keys above the number of keys live at once, or "
            f"check that --key-field {self.key_field!r} names entities (hosts, sensors), "
            "not single events"
        )
