"""One process at a time changes the embedded PostgreSQL: an exclusive ``flock`` on a file in the cluster folder.

initdb, start, stop, stale-lock recovery and removal all run under it, so two commands started at once never
run two initdbs or two postmasters on one data folder: the second waits for the first and then finds its server
running. The kernel releases the lock when the holder exits, even after ``kill -9``, so a crash leaves no stale
lock behind. Nested use in one process (start() called from a command that already holds the lock) is allowed.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LOCK_FILE_NAME = "cluster.lock"
DEFAULT_WAIT_S = 180.0

_held: dict[str, list] = {}  # path -> [fd, depth]; the lock is per process, threads take turns
_guard = threading.RLock()


class EmbeddedDbError(RuntimeError):
    """The embedded PostgreSQL could not be started, stopped or reached; the message says what to do.
    (Defined here, the module every embedded_* module imports, and re-exported by embedded_db.)"""


class ClusterLockTimeout(EmbeddedDbError):
    pass


@contextmanager
def cluster_lock(folder: Path, wait_s: float = DEFAULT_WAIT_S, *, blocking: bool = True) -> Iterator[bool]:
    """Hold the folder's lock; yields True. With ``blocking=False`` yields False at once when someone holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = str(folder / LOCK_FILE_NAME)
    with _guard:
        entry = _held.get(path)
        if entry is not None:  # this process holds it already
            entry[1] += 1
            try:
                yield True
            finally:
                entry[1] -= 1
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if not _acquire(fd, wait_s, blocking):
                if not blocking:
                    os.close(fd)
                    fd = -1
                    yield False
                    return
                raise ClusterLockTimeout(
                    f"Another ig-analytics command has held {path} for over {int(wait_s)} s while starting or "
                    "stopping the embedded PostgreSQL. Wait for it to finish, then retry; "
                    "see: ig-analytics db status"
                )
            _held[path] = [fd, 1]
            try:
                yield True
            finally:
                del _held[path]
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            if fd >= 0:
                os.close(fd)


def _acquire(fd: int, wait_s: float, blocking: bool) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
        if not blocking or time.monotonic() > deadline:
            return False
        time.sleep(0.05)
