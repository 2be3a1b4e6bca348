"""Shared plumbing of the benchmarks: a throwaway embedded PostgreSQL, a sandbox Graph API (in this process or
in a child process), account registration, machine facts, memory readings and uniform output.

Every benchmark prints ``RESULT <key> = <value> <unit>`` lines (machine-readable, the quick test checks them)
and ends with ``BENCHMARK <name> done``. Benchmarks print numbers; they never assert on timings.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/<name>.py` as well as `python -m benchmarks.<name>`
    sys.path.insert(0, str(REPO_ROOT))

import sqlalchemy as sa  # noqa: E402

TOKEN_KEY = "benchmark-token-key-not-a-secret"  # IG_TOKEN_KEY for the throwaway databases


# ---- output ------------------------------------------------------------------------------------------------

def header(name: str, quick: bool) -> None:
    print(f"=== benchmark {name} ({'quick' if quick else 'full'} mode) ===", flush=True)
    print(f"machine: {machine_summary()}", flush=True)


def result(key: str, value: Any, unit: str = "", note: str = "") -> None:
    if isinstance(value, float):
        text = f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    line = f"RESULT {key} = {text}" + (f" {unit}" if unit else "")
    if note:
        line += f"    # {note}"
    print(line, flush=True)


def done(name: str) -> None:
    print(f"BENCHMARK {name} done", flush=True)


def ratio(slow: float, fast: float) -> float:
    return slow / fast if fast > 0 else float("inf")


# ---- machine -----------------------------------------------------------------------------------------------

def machine_summary() -> str:
    mem_gb = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"nproc={os.cpu_count()}, mem={mem_gb:.1f} GB, cpu={cpu or platform.processor()}, "
            f"python={platform.python_version()}, {platform.system()} {platform.release()}")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM (Linux: write 5 to /proc/self/clear_refs); ru_maxrss cannot be reset."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def hwm_rss_mb() -> float:
    """Peak RSS since the last reset_peak_rss() (VmHWM), in MB."""
    return process_rss_mb(os.getpid())[1]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of another (running) process, from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def postgres_cpu(port: int) -> float:
    """CPU seconds of the PostgreSQL server so far: the postmaster, its live children and its exited (waited)
    children (``cutime``/``cstime``), found by its port on the postmaster's command line."""
    stats = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        stats[int(pid)] = (int(stat[1]), [int(x) for x in stat[11:15]], cmd)
    tick = os.sysconf("SC_CLK_TCK")
    masters = [pid for pid, (_, _, cmd) in stats.items() if f" -p {port} " in cmd]
    total = 0
    for master in masters:
        total += sum(stats[master][1])
        total += sum(sum(t[:2]) for pid, (ppid, t, _) in stats.items() if ppid == master)
    return total / tick


def process_rss_mb(pid: int) -> tuple[float, float]:
    """(current VmRSS, peak VmHWM) of another process, in MB."""
    rss = hwm = float("nan")
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss, hwm


# ---- PostgreSQL --------------------------------------------------------------------------------------------

@contextlib.contextmanager
def temp_postgres() -> Iterator[tuple[Any, str]]:
    """A throwaway embedded PostgreSQL: (server, analytics URL). Stopped and deleted afterwards."""
    from ig_analytics.local.embedded_db import ANALYTICS_DB, EmbeddedPostgres

    from ig_analytics.local.housekeeping import cleanup_guard

    home = Path(tempfile.mkdtemp(prefix="ig-bench-pg-"))
    os.chmod(home, 0o755)  # the server runs as 'nobody' when we are root
    # A benchmark killed by its timeout (SIGKILL) runs no finally: the guard process removes the server then.
    guard = cleanup_guard(home)
    server = EmbeddedPostgres(home)
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)  # SIGTERM: unwind through the finally below
    try:
        server.start()
        yield server, server.url(ANALYTICS_DB)
    finally:
        signal.signal(signal.SIGTERM, previous)
        try:
            server.destroy()
        finally:
            shutil.rmtree(home, ignore_errors=True)
            guard.stdin.close()


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


def postgres_version(engine) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.text("SHOW server_version")).scalar()


def fresh_schema(url: str):
    """An engine on a freshly migrated, empty ``instagram`` schema."""
    from ig_analytics.storage import db

    engine = db.get_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS instagram CASCADE"))
    db.migrate(engine)
    return engine


def vault():
    from ig_analytics.accounts.token_vault import TokenVault, _fernet_from_setting

    return TokenVault(_fernet_from_setting(TOKEN_KEY))


def register_accounts(engine, accounts: list[dict]) -> list:
    """Add the accounts ({ig_user_id, username, token, timezone}) to instagram.accounts; return credentials."""
    from ig_analytics.accounts import repository as repo
    from ig_analytics.accounts.repository import AccountCredentials

    v = vault()
    creds = []
    for a in accounts:
        repo.add_account(engine, v, ig_user_id=a["ig_user_id"], token=a["token"], username=a.get("username"),
                         timezone_name=a.get("timezone") or "UTC")
        creds.append(AccountCredentials(a["ig_user_id"], a.get("username"), a.get("timezone") or "UTC", a["token"]))
    return creds


def world_accounts(world) -> list[dict]:
    return [{"ig_user_id": a.ig_user_id, "username": a.username, "token": a.token, "timezone": a.timezone}
            for a in world.accounts]


# ---- sandbox in a child process ----------------------------------------------------------------------------

_CHILD_SANDBOX = r"""
import json, signal, sys, threading
from ig_analytics.sandbox import Faults, SandboxServer, SandboxWorld
n, posts, latency = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
world = SandboxWorld.generate(n_accounts=n, posts_per_account=posts)
world.faults = Faults(latency_ms=latency)
server = SandboxServer(world).start()
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
print(json.dumps({"base_url": server.base_url, "accounts": [
    {"ig_user_id": a.ig_user_id, "username": a.username, "token": a.token, "timezone": a.timezone}
    for a in world.accounts]}), flush=True)
while not stop.wait(0.5):
    pass
server.stop()
"""


def child_pythonpath() -> str:
    """PYTHONPATH of a benchmark's child processes: the repository first, then what this process was given (the
    test clock of ``./dev test --at``, ig_analytics_tests/clock_shift, must reach the children too)."""
    return os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)


class SandboxProcess:
    """``SandboxWorld.generate(n, posts)`` served from a child process (its CPU and memory apart from ours)."""

    def __init__(self, n_accounts: int, posts_per_account: int = 100, latency_ms: float = 100) -> None:
        self.args = [str(n_accounts), str(posts_per_account), str(latency_ms)]
        self.proc: subprocess.Popen | None = None
        self.base_url = ""
        self.accounts: list[dict] = []

    def __enter__(self) -> "SandboxProcess":
        env = dict(os.environ, PYTHONPATH=child_pythonpath())
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD_SANDBOX, *self.args], stdout=subprocess.PIPE,
                                     text=True, env=env, start_new_session=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            raise RuntimeError(f"sandbox child exited with {self.proc.returncode}")
        info = json.loads(line)
        self.base_url, self.accounts = info["base_url"], info["accounts"]
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_size(self) -> int:
        with urllib.request.urlopen(self.base_url + "/__sandbox/log", timeout=120) as resp:
            return len(json.loads(resp.read()))

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()


def quick_flag(argv: list[str] | None = None) -> tuple[bool, list[str]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in argv
    return quick, [a for a in argv if a != "--quick"]


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t
