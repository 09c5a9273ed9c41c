"""Recency stamps and their eviction queue against an ordered dict (the plain LRU)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detect.recency import Recency


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["mark", "many", "evict"]), st.integers(0, 7))))
def test_the_oldest_live_slot_is_the_least_recently_used_one(
    steps: list[tuple[str, int]],
) -> None:
    recency = Recency()
    recency.resize(8)
    lru: OrderedDict[int, None] = OrderedDict()
    rng = np.random.default_rng(len(steps))
    for action, slot in steps:
        if action == "mark":
            recency.mark_one(slot)
            lru[slot] = None
            lru.move_to_end(slot)
        elif action == "many":
            slots = rng.permutation(8)[: slot + 1]
            recency.mark(slots)
            for each in slots.tolist():
                lru[each] = None
                lru.move_to_end(each)
        elif lru:
            oldest = recency.oldest(
                lambda: np.fromiter(lru, np.intp, count=len(lru)), lambda s: s in lru
            )
            assert oldest == next(iter(lru))
            del lru[oldest]
    live = np.fromiter(lru, np.intp, count=len(lru))
    assert live[recency.order(live)].tolist() == list(lru)
