"""Keep the memory a batch frees for the next batch, instead of giving it back to the system.

Every loop turn allocates and frees about the same few megabytes (the decoded
events, their arrays, the output). With its default settings, glibc's
``free`` hands the top of the heap back to the kernel as soon as more than
128 KiB of it is free, so the next batch faults the same pages in again: a
page fault for every event or so, all system time. :func:`hold_freed_memory`
raises the two thresholds once, for a long-running process (``stream-detect
run``): freed memory up to ``trim_bytes`` stays in the heap for reuse, and
blocks up to ``mmap_bytes`` come from the heap rather than from a fresh
mapping each time. The process then keeps at most ``trim_bytes`` more than it
uses; memory still returns to the system past that.

Elsewhere than glibc (macOS, musl) this does nothing and says so.

>>> import platform
>>> hold_freed_memory() == (platform.libc_ver()[0] == "glibc")
True
"""

from __future__ import annotations

import ctypes
import sys
from typing import Final

__all__ = ["DEFAULT_MMAP_BYTES", "DEFAULT_TRIM_BYTES", "hold_freed_memory"]

#: Freed heap kept for reuse at most.
DEFAULT_TRIM_BYTES: Final = 32 << 20
#: Blocks smaller than this come from the heap (larger ones are mapped and unmapped).
DEFAULT_MMAP_BYTES: Final = 4 << 20

# glibc's mallopt parameter numbers (malloc.h).
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3


def hold_freed_memory(
    trim_bytes: int = DEFAULT_TRIM_BYTES, mmap_bytes: int = DEFAULT_MMAP_BYTES
) -> bool:
    """Set glibc's trim and mmap thresholds; return False where there is no glibc to set.

    Parameters
    ----------
    trim_bytes
        Free memory at the top of the heap beyond which it is given back.
    mmap_bytes
        Allocations of at least this size are mapped on their own.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False  # a C library without mallopt (musl)
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_TRIM_THRESHOLD, trim_bytes)) and bool(
        mallopt(_M_MMAP_THRESHOLD, mmap_bytes)
    )
