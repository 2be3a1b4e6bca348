"""Which processes are PostgreSQL processes of one data folder, read from /proc.

A process counts only when its executable is a ``postgres`` binary AND its working directory is exactly the
data folder (the postmaster and every backend chdir there). A command line that merely mentions the folder
(an ``initdb`` of another command, an editor, ``tail -f``) never counts, so recovery never kills it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def is_postgres_of(pid: int, data_dir: Path, binaries: Path | None = None) -> bool:
    """Whether ``pid`` is a ``postgres`` process working in ``data_dir`` (and, if given, run from ``binaries``)."""
    proc = Path(f"/proc/{pid}")
    try:
        exe = Path(os.readlink(proc / "exe").removesuffix(" (deleted)"))
        cwd = os.readlink(proc / "cwd")
    except OSError:
        return False
    if binaries is not None and exe.parent != Path(binaries).resolve():
        return False
    return exe.name == "postgres" and Path(cwd) == Path(data_dir)


def postgres_pids(data_dir: Path) -> list[int]:
    """Every live PostgreSQL process (postmaster, backends, auxiliaries) of ``data_dir``."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and is_postgres_of(int(proc.name), data_dir) and process_alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def postmaster_pids(data_dir: Path) -> list[int]:
    """The postmasters of ``data_dir``: its PostgreSQL processes whose parent is not one of them."""
    pids = set(postgres_pids(data_dir))
    return sorted(p for p in pids if parent_pid(p) not in pids)


def wait_for_exit(data_dir: Path, timeout_s: float, binaries: Path | None = None) -> list[int]:
    """Wait (bounded) until no PostgreSQL process of ``data_dir`` is left; then SIGKILL the stragglers that are
    verified to run our binaries (``binaries``: the folder of our ``postgres``) in that folder.

    After ``kill -9`` of a postmaster its backends notice and exit by themselves within moments; they must be
    gone before a new postmaster starts, or two sets of processes would share the data folder.
    Returns the pids that had to be killed."""
    deadline = time.monotonic() + timeout_s
    while postgres_pids(data_dir):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    killed = []
    for pid in postgres_pids(data_dir):
        if is_postgres_of(pid, data_dir, binaries):  # re-checked just before the signal
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
    end = time.monotonic() + 10
    while postgres_pids(data_dir) and time.monotonic() < end:
        time.sleep(0.05)
    return killed
