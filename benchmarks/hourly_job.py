"""Benchmark 3c: one real hourly run of ``media_sync_job`` for N sandbox accounts, end to end, through Dagster.

``benchmarks.scale`` times the capture alone (the asset's per-account work called directly). This one runs the
whole hourly job as a run worker does: a child process imports the code location (``ig_analytics.definitions``),
opens the instance of a temporary ``DAGSTER_HOME`` with the project's ``dagster.yaml`` (PostgreSQL run, event and
schedule storage in the benchmark's server, database ``dagster``), creates the run of the hour's partition with
the code location's origins and executes it (``defs/launch.execute_linked_run``: ``execute_run``, the jobs'
in-process executor; no ``prepare_instance``, which only the CLI applies). Every step of the job runs: the
capture, then ``media_engagement``, ``account_engagement_daily``, ``best_posting_times`` (through
``postgres_io``) and ``trending_posts``, with their asset checks.

Run 1 is the first hour on an empty database (every post of the last 30 days is due); run 2 the next hour: the
steady state. Each run is a new child process. The product refuses a partition that has not begun, and the wall
clock cannot be moved, so run 1 captures the hour that has just ended (its partition key, the sandbox clock set
back 1 h) and run 2 the hour in progress with the sandbox on real time: exactly the run the hh:05 schedule
launches, an hour after the first capture. Printed per run: wall time of the child (start to exit) and of
the run, each step's duration (``STEP_START`` to ``STEP_SUCCESS`` in the event log), the child's peak RSS
(``ru_maxrss``, read by the child before it exits), and, counted independently in PostgreSQL: accounts captured
(``sync_runs``), posts captured in the slot and the posts of the 30-day window, rows written per table, events
stored for the run.

    .venv/bin/python -m benchmarks.hourly_job [--quick] [--accounts 1000] [--posts 100]   (quick: 5 accounts)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as c  # noqa: E402
from benchmarks.scale import LATENCY_MS, advance_sandbox_clock, media_rows_written  # noqa: E402

NAME = "hourly_job"
JOB = "media_sync_job"
HOUR_FORMAT = "%Y-%m-%d-%H:00"


def run_child(spec_text: str) -> int:
    """The run worker: import the code location, execute one run, print one JSON line.

    ``spec_text`` is a partition key (the hourly job's run of that hour) or a JSON object: ``job``,
    ``partition_key``, ``tags`` (a shard's tag, a partition range), ``run_config``, ``clock_offset_s`` (the
    product's clock, ``ig_analytics.clock``, set that far from the wall clock for the run, as the sandbox's), and
    ``step_pg_cpu`` (default true: read PostgreSQL's CPU at each step's start and end)."""
    spec = json.loads(spec_text) if spec_text.startswith("{") else {"partition_key": spec_text}
    t0 = time.perf_counter()
    import dagster as dg

    from sqlalchemy.engine import make_url

    import ig_analytics.definitions  # noqa: F401 - what a run worker loads before its run
    from ig_analytics import clock
    from ig_analytics.defs.launch import execute_linked_run

    import_s = time.perf_counter() - t0
    instance = dg.DagsterInstance.get()
    # PostgreSQL's CPU per step only where it means something (the server's only run): each reading scans /proc
    pg_port = make_url(os.environ["DATABASE_URL"]).port if spec.get("step_pg_cpu", True) else None
    steps, pg_steps = step_cpu_clock(instance, pg_port)
    samples: list[tuple[float, float]] = []  # (epoch s, RSS MB): which step holds the peak
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(samples, stop), daemon=True)
    sampler.start()
    offset = timedelta(seconds=float(spec.get("clock_offset_s") or 0))
    t = time.perf_counter()
    with clock.use(lambda: datetime.now(timezone.utc) + offset):
        outcome = execute_linked_run(instance, spec.get("job") or JOB, partition_key=spec.get("partition_key"),
                                     tags=spec.get("tags"), run_config=spec.get("run_config"))
    run_s = time.perf_counter() - t
    stop.set()
    sampler.join()
    _, hwm = c.process_rss_mb(os.getpid())
    print(json.dumps({"run_id": outcome.run_id, "success": outcome.success, "failures": outcome.failures[-3:],
                      "import_s": import_s, "run_s": run_s, "cpu_s": c.cpu_seconds(),
                      "peak_rss_mb": c.peak_rss_mb(), "vm_hwm_mb": hwm, "rss_samples": samples,
                      "step_cpu_s": {k: v[1] - v[0] for k, v in steps.items() if len(v) == 2},
                      "step_pg_cpu_s": {k: v[1] - v[0] for k, v in pg_steps.items() if len(v) == 2}}), flush=True)
    instance.dispose()
    return 0 if outcome.success else 1


def step_cpu_clock(instance, pg_port: int | None = None) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Process CPU seconds (all threads) at each step's STEP_START and STEP_SUCCESS/STEP_FAILURE, read as the
    run's events are handled: the in-process executor runs the steps one after another in this process, so the
    difference is the step's own CPU (plus the RSS sampler's, negligible). And the PostgreSQL server's CPU at
    the same events (``pg_port``): the step's share of it when this run is the server's only user."""
    steps: dict[str, list[float]] = {}
    pg: dict[str, list[float]] = {}
    handle = instance.handle_new_event

    def timed_handle(event, *args, **kwargs):
        kind = event.dagster_event.event_type_value if event.dagster_event is not None else None
        if kind in ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE") and event.step_key:
            start = kind == "STEP_START"
            if pg_port and start:  # read outside the step's CPU window: the /proc scan is not the step's
                pg.setdefault(event.step_key, []).append(c.postgres_cpu(pg_port))
            steps.setdefault(event.step_key, []).append(c.cpu_seconds())
            if pg_port and not start:
                pg.setdefault(event.step_key, []).append(c.postgres_cpu(pg_port))
        return handle(event, *args, **kwargs)

    instance.handle_new_event = timed_handle
    return steps, pg


def sample_rss(samples: list, stop: threading.Event) -> None:
    while not stop.wait(0.1):
        samples.append((time.time(), c.current_rss_mb()))


def child_env(url: str, dagster_url: str, base_url: str, home: Path, pool_limit: int = 1) -> dict:
    """What a run worker of a deployment has: the database, the Graph API (the sandbox), the token key, homes.
    ``pool_limit``: the ``graph_api`` pool's slots (the project's dagster.yaml has 1; docs/deploy.md "Sizing" says
    to raise it to the number of shards, or the shard runs' API steps wait for one another)."""
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    text = (c.REPO_ROOT / "dagster.yaml").read_text()
    if pool_limit != 1:
        assert "default_limit: 1" in text, "dagster.yaml's pools section changed: update the benchmark"
        text = text.replace("default_limit: 1", f"default_limit: {pool_limit}")
    (dagster_home / "dagster.yaml").write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IG_", "DAGSTER_"))}
    env.update(PYTHONPATH=c.child_pythonpath(), DATABASE_URL=url, IG_GRAPH_API_URL=base_url, IG_TOKEN_KEY=c.TOKEN_KEY,
               IG_ANALYTICS_HOME=str(home), DAGSTER_HOME=str(dagster_home), IG_ANALYTICS_DAGSTER_PG_URL=dagster_url)
    return env


def run_hour(env: dict, home: Path, partition_key: str) -> tuple[dict, float]:
    log = home / "child.log"  # the run's console output (INFO, as deployed): kept out of the benchmark's output
    t = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.hourly_job", "--child", partition_key], env=env, cwd=str(c.REPO_ROOT), stdout=subprocess.PIPE,
                              stderr=err, text=True)
    wall = time.perf_counter() - t
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"run worker exited {proc.returncode}: {proc.stdout[-1500:]} {log.read_text()[-3000:]}")
    report = json.loads(lines[-1])
    if not report["success"]:
        raise RuntimeError(f"{JOB} failed: {report['failures']}; {log.read_text()[-3000:]}")
    return report, wall


def run_events(dagster_engine, run_id: str) -> tuple[int, dict[str, int], dict[str, tuple[float, float]]]:
    """Events stored for the run (all, by type) and each step's STEP_START and STEP_SUCCESS (epoch s)."""
    import sqlalchemy as sa

    with dagster_engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM event_logs WHERE run_id = :r"), {"r": run_id}).scalar()
        types = conn.execute(sa.text(
            "SELECT coalesce(dagster_event_type, 'log message'), count(*) FROM event_logs WHERE run_id = :r"
            " GROUP BY 1 ORDER BY 2 DESC"), {"r": run_id}).all()
        steps = conn.execute(sa.text(
            "SELECT step_key, extract(epoch FROM min(timestamp) FILTER (WHERE dagster_event_type = 'STEP_START')),"
            " extract(epoch FROM max(timestamp) FILTER (WHERE dagster_event_type = 'STEP_SUCCESS')) FROM event_logs"
            " WHERE run_id = :r AND step_key IS NOT NULL GROUP BY step_key ORDER BY min(timestamp)"),
            {"r": run_id}).all()  # (event_logs.timestamp is UTC without a zone: its epoch is right)
    return (int(total), {t: int(n) for t, n in types},
            {k: (float(a), float(b)) for k, a, b in steps if a is not None and b is not None})


def top_log_messages(dagster_engine, run_id: str, limit: int = 3) -> list[tuple[str, int]]:
    """The most frequent log messages of the run (digits masked, 60 characters): what the log events are."""
    import sqlalchemy as sa

    with dagster_engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT left(regexp_replace(event::json->>'user_message', '[0-9]+', '#', 'g'), 60) AS m, count(*)"
            " FROM event_logs WHERE run_id = :r AND dagster_event_type IS NULL GROUP BY m ORDER BY 2 DESC"
            " LIMIT :n"), {"r": run_id, "n": limit}).all()
    return [(str(m), int(n)) for m, n in rows]


def rows_written(engine, started: datetime, slot_start: datetime) -> dict[str, int]:
    """Rows the run wrote, per table, from the tables' own stamps (not from the run's metadata)."""
    import sqlalchemy as sa

    window_start = slot_start + timedelta(hours=1) - timedelta(days=30)
    with engine.connect() as conn:
        row = conn.execute(sa.text("""
            SELECT (SELECT count(*) FROM instagram.media_insights_snapshots WHERE captured_at = :slot),
                   (SELECT count(DISTINCT media_id) FROM instagram.media_insights_snapshots WHERE captured_at = :slot),
                   (SELECT count(*) FROM instagram.media WHERE published_at >= :ws AND published_at < :se),
                   (SELECT count(*) FROM instagram.media_engagement WHERE computed_at >= :t),
                   (SELECT count(*) FROM instagram.account_engagement_daily WHERE computed_at >= :t),
                   (SELECT count(*) FROM instagram.best_posting_times WHERE computed_at >= :t),
                   (SELECT count(*) FROM instagram.trending_posts WHERE as_of = :slot)"""),
            {"slot": slot_start, "ws": window_start, "se": slot_start + timedelta(hours=1), "t": started}).one()
    keys = ("snapshots", "posts_captured", "posts_in_window", "media_engagement", "account_engagement_daily",
            "best_posting_times", "trending_posts")
    return dict(zip(keys, (int(v) for v in row)))


def previous_hour() -> datetime:
    """The start of the hour that has just ended; near the top of the hour, wait for the next one, so the first
    capture starts well within the asset's 1 h capture lag (MediaSyncConfig.max_capture_lag_hours)."""
    now = datetime.now(timezone.utc)
    if now.minute >= 58:
        wait = 3600 - now.minute * 60 - now.second + 5
        print(f"waiting {wait} s for the next hour", flush=True)
        time.sleep(wait)
        now = datetime.now(timezone.utc)
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def accounts_captured(engine, partition_key: str) -> dict:
    """Accounts whose media sync of the partition ended in each status (instagram.sync_runs)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT status, count(DISTINCT ig_user_id) FROM instagram.sync_runs WHERE sync_type = 'media'"
            " AND partition_key = :k GROUP BY status"), {"k": partition_key}).all()
    counts = {status: int(n) for status, n in rows}
    counts["ok"] = counts.get("success", 0) + counts.get("partial", 0)
    return counts


def measure(n: int, posts: int, server, url: str) -> None:
    from ig_analytics.local.embedded_db import DAGSTER_DB
    from ig_analytics.storage import db

    dagster_url = server.url(DAGSTER_DB)
    dagster_engine = db.get_engine(dagster_url)
    with c.SandboxProcess(n, posts_per_account=posts, latency_ms=LATENCY_MS) as sandbox, \
            tempfile.TemporaryDirectory(prefix="ig-bench-hourly-") as tmp:
        engine = c.fresh_schema(url)  # (the server is new: Dagster's schema is created by run 1)
        t = time.perf_counter()
        c.register_accounts(engine, sandbox.accounts)
        c.result(f"hourly_job.N{n}.register_seconds", time.perf_counter() - t, "s", "set-up: accounts add (Fernet)")
        home = Path(tmp)
        env = child_env(url, dagster_url, sandbox.base_url, home)
        slot = previous_hour()
        advance_sandbox_clock(sandbox.base_url, -3600)  # run 1 captures the hour that has just ended
        for run_no, kind in ((1, "first_hour"), (2, "next_hour")):
            slot_start = slot + timedelta(hours=run_no - 1)
            if run_no > 1:
                advance_sandbox_clock(sandbox.base_url, 3600)  # back on real time: the hour in progress
            started = datetime.now(timezone.utc)
            sbx_cpu0 = c.process_cpu_seconds(sandbox.pid)
            key = slot_start.strftime(HOUR_FORMAT)
            report, wall = run_hour(env, home, key)
            sbx_cpu = c.process_cpu_seconds(sandbox.pid) - sbx_cpu0
            label = f"hourly_job.N{n}.{kind}"
            captured = accounts_captured(engine, key)
            rows = rows_written(engine, started, slot_start)
            inserted, rewritten = media_rows_written(engine, started)
            events, by_type, steps = run_events(dagster_engine, report["run_id"])
            c.result(f"{label}.seconds", wall, "s", f"partition {key}: run worker process start to exit; the run "
                     f"{report['run_s']:.1f} s, imports {report['import_s']:.1f} s")
            for step, (begin, end) in steps.items():
                rss = [mb for at, mb in report["rss_samples"] if begin <= at <= end]
                c.result(f"{label}.step.{step}", end - begin, "s", "STEP_START -> STEP_SUCCESS; RSS up to "
                         + (f"{max(rss):.0f} MB" if rss else "(no sample)"))
            c.result(f"{label}.peak_rss", report["peak_rss_mb"], "MB",
                     f"ru_maxrss of the run worker (VmHWM {report['vm_hwm_mb']:.0f} MB); target < 500 MB")
            c.result(f"{label}.cpu", report["cpu_s"] / wall, "cores (run worker)",
                     f"sandbox process {sbx_cpu / wall:.2f} cores; the machine has {os.cpu_count()}")
            c.result(f"{label}.accounts_captured", captured["ok"], "accounts", f"of {n} (sync_runs: {captured})")
            c.result(f"{label}.posts_captured", rows["posts_captured"], "posts",
                     f"snapshots of the slot: {rows['snapshots']} rows")
            c.result(f"{label}.posts_in_window", rows["posts_in_window"], "posts",
                     "instagram.media published in the 30 days before the slot's end (first hour: all due)")
            c.result(f"{label}.media_rows_written", inserted + rewritten, "rows",
                     f"instagram.media inserted {inserted}, rewritten {rewritten}")
            for table in ("media_engagement", "account_engagement_daily", "best_posting_times", "trending_posts"):
                c.result(f"{label}.rows.{table}", rows[table], "rows", "written by this run (computed_at / as_of)")
            c.result(f"{label}.events", events, "events", "stored in event_logs for the run; "
                     + ", ".join(f"{k} {v}" for k, v in list(by_type.items())[:6]))
            for message, count in top_log_messages(dagster_engine, report["run_id"]):
                print(f"  {count} x log message: {message}", flush=True)
        c.result(f"hourly_job.N{n}.sandbox_rss", c.process_rss_mb(sandbox.pid)[1], "MB", "peak of the sandbox child")


def main(argv: list[str] | None = None) -> int:
    quick, rest = c.quick_flag(argv)
    if rest and rest[0] == "--child":
        return run_child(rest[1])
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=None)
    parser.add_argument("--posts", type=int, default=None)
    args = parser.parse_args(rest)
    n = args.accounts or (5 if quick else 1000)
    posts = args.posts or (30 if quick else 100)
    c.header(NAME, quick)
    print(f"{n} accounts x {posts} posts, latency {LATENCY_MS} ms per request, job {JOB} in a run worker process",
          flush=True)
    with c.temp_postgres() as (server, url):
        measure(n, posts, server, url)
    c.result("peak_rss", c.peak_rss_mb(), "MB", "the benchmark's own process (not the run worker)")
    c.done(NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
