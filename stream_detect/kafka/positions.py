"""Kafka positions as run state holds them: each partition's next offset, in a JSON token.

A token is ``{"offsets": [{"topic", "partition", "offset"}, ...]}``: what a
checkpoint, a commit and a partition's resume point write, and what a seek reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Partition", "position_token", "token_offsets"]

#: A topic partition as a plain pair: (topic, number).
Partition = tuple[str, int]


def position_token(offsets: Mapping[Partition, int]) -> dict[str, Any]:
    """The position token of ``offsets`` (each partition's next offset), partitions in order.

    >>> position_token({("t", 1): 5, ("t", 0): 7})
    {'offsets': [{'topic': 't', 'partition': 0, 'offset': 7}, {'topic': 't', 'partition': 1, \
'offset': 5}]}
    """
    return {
        "offsets": [
            {"topic": topic, "partition": number, "offset": offset}
            for (topic, number), offset in sorted(offsets.items())
        ]
    }


def token_offsets(token: Any) -> dict[Partition, int]:
    """The offsets a position token holds; KeyError, TypeError or ValueError if it holds none.

    >>> token_offsets({"offsets": [{"topic": "t", "partition": 0, "offset": 7}]})
    {('t', 0): 7}
    """
    return {(str(e["topic"]), int(e["partition"])): int(e["offset"]) for e in token["offsets"]}
