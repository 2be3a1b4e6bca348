"""Fewer glibc malloc arenas in the processes that run steps.

glibc gives threads that allocate at once their own malloc arena (up to 8 per core), and memory freed in an arena
stays with it. The capture steps' account threads (8 per run) so grew a run worker's heap, and the conversation
steps that follow started on it: a first hour of 1,000 accounts in one run peaked at 473 MB, 391 MB with two
arenas (``MALLOC_ARENA_MAX=2``, the same benchmark; issue 27, BENCHMARKS.md 3d). The variable only works when set
before a process starts, and Dagster starts the run workers, so the code location sets the same limit with
``mallopt`` when it loads, before any step's threads. A ``MALLOC_ARENA_MAX`` set by the operator wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap this process's malloc arenas; False where there is nothing to do (not glibc, or the operator's setting)."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt  # glibc only (musl has none)
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))
