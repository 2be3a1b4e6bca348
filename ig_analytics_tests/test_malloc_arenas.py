"""The code location caps glibc's malloc arenas (issue 27: a run worker's heap grew with the capture's threads)."""

import os
import subprocess
import sys

import pytest

from ig_analytics.malloc_arenas import ARENAS, limit_malloc_arenas

PROBE = """
import ctypes, sys, threading
if sys.argv[1] == "load":
    import ig_analytics.definitions  # noqa: F401 - what a run worker does before its steps
barrier = threading.Barrier(8)
def work():
    barrier.wait()
    for _ in range(200):
        junk = [bytearray(200) for _ in range(2000)]
        del junk
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL("libc.so.6").malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


def _arenas(mode: str, **env) -> int:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    result = subprocess.run([sys.executable, "-c", PROBE, mode], env={**environ, **env}, capture_output=True,
                            text=True, timeout=120, check=True)
    return sum(line.startswith("Arena ") for line in result.stderr.splitlines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_threads_of_a_process_that_loaded_the_code_location_share_two_arenas():
    assert _arenas("bare") > ARENAS  # 8 threads allocating at once get arenas of their own
    assert _arenas("load") == ARENAS


def test_the_operators_malloc_arena_max_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
