"""Process-level wiring shared by the CLI commands: make sure the database is up, prepare Dagster's home and
environment, and run child processes (webserver, daemon, sandbox) so that none outlives us."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from ig_analytics.local.embedded_db import EmbeddedPostgres
from ig_analytics.settings import Settings, SettingsError
from ig_analytics.storage import db

REPO_ROOT = Path(__file__).resolve().parents[2]
_DAGSTER_YAML = REPO_ROOT / "dagster.yaml"
_WORKSPACE_YAML = REPO_ROOT / "workspace.yaml"
log = logging.getLogger("ig_analytics.cli.main")


def ensure_database(settings: Settings) -> str:
    """Start the embedded server when it is the one in use, migrate the schema; return the analytics URL."""
    settings.ensure_home()
    if settings.uses_embedded_db:
        EmbeddedPostgres(settings.home).start()
    url = db.analytics_url(settings)
    engine = db.get_engine(url)
    db.check_connection(engine)
    migrate(engine)
    _ensure_install_marker(settings, engine)
    return url


def migrate(engine) -> None:
    """The schema migrations; a DATABASE_URL whose role cannot write (e.g. the analysts' read-only role) is a
    setting error of one line, not PostgreSQL's ReadOnlySqlTransaction."""
    import sqlalchemy as sa

    try:
        db.migrate(engine)
    except sa.exc.DBAPIError as exc:
        code = getattr(exc.orig, "pgcode", None)
        if code not in ("25006", "42501"):  # read_only_sql_transaction, insufficient_privilege
            raise
        who = f"role '{engine.url.username}'" if engine.url.username else "its role"
        raise SettingsError(
            f"DATABASE_URL connects as {who}, which cannot write ({str(exc.orig).strip().splitlines()[0]}): the "
            "product needs a role that owns schema instagram; the read-only URL is for analysts' tools only"
        ) from exc


def _ensure_install_marker(settings: Settings, engine) -> None:
    """Fix where the partitions start (install_marker.py), once: at the first migration's time, so a home from
    before the marker gets the start of its real install."""
    import sqlalchemy as sa

    from ig_analytics.install_marker import ensure_marker, read_marker

    if read_marker(settings.home) is None:
        with engine.connect() as conn:
            first = conn.execute(sa.text(f"SELECT min(applied_at) FROM {db.SCHEMA}.schema_migrations")).scalar_one()
        ensure_marker(settings.home, first)


def prepare_dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME with the project's dagster.yaml, and the environment it reads. Returns DAGSTER_HOME."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    if not _DAGSTER_YAML.exists():
        raise FileNotFoundError(f"{_DAGSTER_YAML} is missing: reinstall the project with ./dev setup")
    for source in (_DAGSTER_YAML, _WORKSPACE_YAML):  # the workspace names the code location "ig_analytics"
        target = home / source.name
        if not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["IG_ANALYTICS_HOME"] = str(settings.home)
    os.environ["IG_ANALYTICS_DAGSTER_PG_URL"] = db.dagster_storage_url(settings)
    return home


def prepare(settings: Settings | None = None) -> Settings:
    """Everything a command that runs Dagster needs: database up and migrated, DAGSTER_HOME ready."""
    settings = settings or Settings.from_env()
    ensure_database(settings)
    prepare_dagster_home(settings)
    return settings


def dagster_bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


class ChildProcesses:
    """Children in their own process groups; stop() ends them all (SIGTERM, then SIGKILL after a grace)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def spawn(self, args: Sequence[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(list(args), start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def first_exited(self) -> subprocess.Popen | None:
        return next((p for p in self.procs if p.poll() is not None), None)

    def stop(self, grace_s: float = 7.0) -> None:
        for proc in self.procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs:
            _signal_group(proc, signal.SIGKILL)  # the group: grandchildren (code servers, run workers) too
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@contextmanager
def terminate_on_signals() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so one cleanup path handles Ctrl-C and `kill`."""

    def _raise(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def port_taken(host: str, port: int) -> bool:
    """Whether something already listens on host:port (the webserver would fail there with 48 lines of gRPC)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror:
        return False  # an unknown host: the webserver says so itself
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like the webserver: TIME_WAIT is no owner
        try:
            sock.bind(address)
        except OSError as exc:  # only "in use": an address of another machine is the webserver's to report
            return exc.errno == errno.EADDRINUSE
    return False


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _start_code_server(children: "ChildProcesses", env: dict, log_format: list[str], attempts: int = 3) -> int:
    """Start the code server on a port the kernel just gave out; another process may bind that port between our
    probe and the server's bind, so an early exit on a port now taken is retried on a new one. Returns the port."""
    for attempt in range(1, attempts + 1):
        port = _free_port("127.0.0.1")
        server = children.spawn([
            dagster_bin("dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(port),
            "-m", "ig_analytics.definitions", "--location-name", "ig_analytics", *log_format], env=env)
        try:
            _wait_for_code_server(server, "127.0.0.1", port)
            return port
        except RuntimeError:
            if attempt == attempts or server.poll() is None or not port_taken("127.0.0.1", port):
                raise
            children.procs.remove(server)  # exited: not a child to watch or stop any more
            log.warning("port %s was taken before the code server bound it; trying another", port)
    raise AssertionError("unreachable")


def _wait_for_code_server(proc: subprocess.Popen, host: str, port: int, timeout_s: float = 180.0) -> None:
    """Poll the code server until it answers (loading the definitions takes a few seconds on two cores)."""
    from ig_analytics.defs.dagster_internals import grpc_client

    client = grpc_client(host, port)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Dagster code server exited with code {proc.returncode} while loading "
                               "ig_analytics.definitions; run 'dagster definitions validate -w workspace.yaml' "
                               "from the repository root to see why")
        try:
            if client.health_check_query() == "SERVING":
                return
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the Dagster code server did not answer on {host}:{port} within {timeout_s:.0f} s")


def write_grpc_workspace(dagster_home: Path, host: str, port: int) -> Path:
    """A workspace that points the webserver and the daemon at one running code server."""
    path = dagster_home / "workspace-grpc.yaml"
    path.write_text("# Written by `ig-analytics ui`: the webserver and the daemon share one code server.\n"
                    f"load_from:\n  - grpc_server:\n      host: {host}\n      port: {port}\n"
                    "      location_name: ig_analytics\n")
    return path


def run_ui(settings: Settings, host: str = "127.0.0.1", port: int = 3000) -> int:
    """Dagster's webserver and daemon on the same instance, until Ctrl-C/SIGTERM or a child dies.

    One code server serves both, started here without a heartbeat: with a ``python_module`` workspace the
    webserver and the daemon each spawn (and the daemon periodically re-spawns) code servers that shut down when
    their heartbeat is late, which on a busy 2-core machine logged "No heartbeat received" every minute. This is
    also the production topology (deploy/docker): a long-running code server that the other processes call.
    """
    from ig_analytics.logging_setup import wants_json

    env = dict(os.environ)
    # Dagster's own processes log in its formats; with IG_ANALYTICS_LOG_FORMAT=json every line must be JSON.
    log_format = ["--log-format", "json" if wants_json() else "colored"]
    children = ChildProcesses()
    with terminate_on_signals():
        try:
            code_port = _start_code_server(children, env, log_format)
            workspace = str(write_grpc_workspace(settings.dagster_home, "127.0.0.1", code_port))
            children.spawn([dagster_bin("dagster-daemon"), "run", "-w", workspace, *log_format], env=env)
            children.spawn([dagster_bin("dagster-webserver"), "-h", host, "-p", str(port), "-w", workspace,
                            *log_format], env=env)
            print(f"Dagster UI: http://{host}:{port}  (Ctrl-C stops the webserver and the daemon)", flush=True)
            while True:
                dead = children.first_exited()
                if dead is not None:  # through the logger: one JSON line with IG_ANALYTICS_LOG_FORMAT=json
                    log.error("%s exited with code %s; stopping.", Path(dead.args[0]).name, dead.returncode)
                    return 1
                time.sleep(0.5)
        except KeyboardInterrupt:
            return 0
        except RuntimeError as exc:
            log.error("ig-analytics ui: %s", exc)
            return 1
        finally:
            children.stop()
