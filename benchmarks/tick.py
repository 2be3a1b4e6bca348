"""Benchmark 3d (issue 27): the whole hourly tick with shards, and the daily 02:00-03:00 tick, through Dagster.

``benchmarks.hourly_job`` runs one ``media_sync_job`` run; this one runs what one schedule tick launches: S run
workers started together, each a child process (``hourly_job --child``: the code location imported, the
instance of a temporary ``DAGSTER_HOME`` with the project's ``dagster.yaml`` and the ``graph_api`` pool raised to S
slots as docs/deploy.md "Sizing" says, the run created with the code location's origins and executed in process)
executing the run of the hour tagged ``ig_analytics/shard=i/S``, as ``defs/jobs.per_shard`` asks (no tag with one
shard). Every step of the job runs: the capture, comments and tagged posts, the derived tables, the checks.

Hours, each on the same database, the product's clock (``ig_analytics.clock``, set in each run worker) and the
sandbox's moved together so every hour is a real, started partition: the first hour (empty database: every post
of 30 days due, every post's comments read) with S shards, the next hour (steady) with S shards, then with
``--one-shard`` the hour after with one run (the side-by-side of the analytics CPU); with ``--same-hour`` the last
hour again six times, S runs at once, one run, S runs one after another, in the order ABCCBA (``same_hour``: the
side-by-side on the same data, PostgreSQL's CPU of the derived steps included where a run is alone). With
``--daily``, then the daily tick as scheduled (defs/jobs.py, defs/audience_assets.py): 02:00
``account_insights_job`` per shard (the 3-day range), 02:10 ``media_sync_job`` per shard with ``refresh_all``
(every post of 30 days), 02:20 ``audience_demographics_job`` (one run), 03:00 ``reports_job`` (one run), one after
another.

Printed per tick: wall time from the start to the last run worker's end; each run's peak RSS (``ru_maxrss``);
each step's duration (``STEP_START`` to ``STEP_SUCCESS`` in ``event_logs``) and process CPU (read in the run
worker at the two events: the in-process executor runs one step at a time), summed per step name over the shard
runs; the analytics CPU seconds per tick (the sum of the derived steps' process CPU; checks apart); PostgreSQL's
CPU over the tick (every server process) and, in a tick of one run, per step (read at the same two events);
accounts counted in ``instagram.sync_runs``; the load average (``/proc/loadavg``) at the start and the end.

    .venv/bin/python -m benchmarks.tick --accounts 10000 --shards 4 [--one-shard] [--same-hour] [--daily] [--logs DIR]
    .venv/bin/python -m benchmarks.tick --accounts 1000 --shards 4 --daily-only   (the daily tick alone)
    .venv/bin/python -m benchmarks.tick --quick     (6 accounts x 20 posts, 2 shards, --one-shard --daily)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as c  # noqa: E402
from benchmarks.hourly_job import HOUR_FORMAT, child_env, run_events  # noqa: E402
from benchmarks.scale import LATENCY_MS, advance_sandbox_clock  # noqa: E402

NAME = "tick"
SHARD_TAG = "ig_analytics/shard"  # accounts/shards.SHARD_TAG (not imported: the parent stays light)


def load() -> str:
    """The load average (1, 5, 15 min) now, as `uptime` prints it."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def step_kinds() -> dict[str, str]:
    """Each step key of the jobs timed here: 'capture' (an asset in the graph_api pool: it calls the API),
    'derived' (an asset computed from the tables), 'checks' (a checks step)."""
    import ig_analytics.definitions as d

    graph = d.defs.resolve_asset_graph()
    kinds = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        kinds[key.to_user_string()] = "capture" if node.pools else "derived"
    kinds["media_and_snapshots"] = "capture"
    kinds["conversation"] = "derived"  # conversation_daily and conversation_posts, one step
    return kinds


@dataclass
class Bench:
    """What every tick of one benchmark shares."""
    n: int
    engine: object
    dagster_engine: object
    env: dict
    home: Path
    sandbox: object
    pg_port: int
    kinds: dict[str, str]
    analytics_cpu: dict[int, float] = field(default_factory=dict)
    logs: Path | None = None  # --logs: where the run workers' console logs are kept


def launch(bench: Bench, specs: list[dict], tag: str = "") -> tuple[float, list[dict]]:
    """Start one run worker per spec at once; wait for all. (wall from the start to the last end, reports)
    With ``--logs DIR``, each run's console log is kept there as ``<tag>.run-<i>.log``."""
    procs = []
    t = time.perf_counter()
    for i, spec in enumerate(specs):
        out = open(bench.home / f"run-{i}.out", "w+")
        err = open(bench.home / f"run-{i}.log", "w")  # the run's console output (INFO, as deployed)
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.hourly_job", "--child", json.dumps(spec)],
                                env=bench.env, cwd=str(c.REPO_ROOT), stdout=out, stderr=err, text=True)
        procs.append((proc, out, err))
    ends: dict[int, float] = {}
    while len(ends) < len(procs):
        for i, (proc, _, _) in enumerate(procs):
            if i not in ends and proc.poll() is not None:
                ends[i] = time.perf_counter() - t
        time.sleep(0.1)
    wall = max(ends.values())
    reports = []
    for i, (proc, out, err) in enumerate(procs):
        err.close()
        out.seek(0)
        lines = [line for line in out.read().splitlines() if line.startswith("{")]
        out.close()
        if bench.logs:
            shutil.copy(bench.home / f"run-{i}.log", bench.logs / f"{tag}.run-{i}.log")
        log = (bench.home / f"run-{i}.log").read_text()[-3000:]
        if not lines:
            raise RuntimeError(f"run worker {i} exited {proc.returncode}: {log}")
        report = json.loads(lines[-1])  # a failed run is reported (run_tick), not raised: the tick goes on
        if not report["success"]:
            print(f"run {i} failed; the end of its log:\n{log[-1500:]}", flush=True)
        report["wall_s"] = ends[i]
        reports.append(report)
    return wall, reports


def shard_specs(shards: int, **spec) -> list[dict]:
    """One run per shard with its shard tag (defs/jobs.per_shard); one shard: the run without the tag."""
    if shards == 1:
        return [spec]
    return [{**spec, "tags": {**(spec.get("tags") or {}), SHARD_TAG: f"{i}/{shards}"}} for i in range(shards)]


def accounts_done(engine, sync_type: str, partition_key: str) -> dict:
    """Accounts whose sync of ``sync_type`` for the partition ended in each status (instagram.sync_runs)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT status, count(DISTINCT ig_user_id) FROM instagram.sync_runs WHERE sync_type = :t"
            " AND partition_key = :k GROUP BY status"), {"t": sync_type, "k": partition_key}).all()
    counts = {status: int(n) for status, n in rows}
    counts["ok"] = counts.get("success", 0) + counts.get("partial", 0)
    return counts


def run_tick(bench: Bench, label: str, specs: list[dict], counted: tuple[str, str] | None,
             one_after_another: bool = False) -> dict[str, float]:
    """Run the specs as one tick (at once, or ``one_after_another``) and print its figures; returns the CPU per
    step kind."""
    load0, pg0, sbx0 = load(), c.postgres_cpu(bench.pg_port), c.process_cpu_seconds(bench.sandbox.pid)
    if len(specs) > 1 and not one_after_another:  # PostgreSQL's CPU per step: a run alone only (it reads /proc)
        specs = [{**spec, "step_pg_cpu": False} for spec in specs]
    if one_after_another:  # the same runs without their contention for the 2 cores (wall: their sum)
        parts = [launch(bench, [spec], f"{label}.{k}") for k, spec in enumerate(specs)]
        wall, reports = sum(w for w, _ in parts), [r for _, rs in parts for r in rs]
    else:
        wall, reports = launch(bench, specs, label)
    load1, pg_cpu = load(), c.postgres_cpu(bench.pg_port) - pg0
    sbx_cpu = c.process_cpu_seconds(bench.sandbox.pid) - sbx0
    how = "one after another, the sum of their walls" if one_after_another else "at once, start to the last end"
    c.result(f"{label}.seconds", wall, "s", f"{len(specs)} run(s) {how} (runs "
             + ", ".join(f"{r['wall_s']:.1f}" for r in reports) + f" s); load {load0} -> {load1}")
    if counted:
        done = accounts_done(bench.engine, *counted)
        c.result(f"{label}.accounts", done["ok"], "accounts", f"of {bench.n}, instagram.sync_runs "
                 f"{counted[0]} {counted[1]}: {done}")
    failed = [f"run {i} ({(specs[i].get('tags') or {}).get(SHARD_TAG, 'all')}): {r['failures'][0][:300]}"
              for i, r in enumerate(reports) if not r["success"]]
    c.result(f"{label}.runs_failed", len(failed), "runs", "; ".join(failed) or "every run succeeded")
    c.result(f"{label}.peak_rss_per_run", max(r["peak_rss_mb"] for r in reports), "MB",
             "ru_maxrss per run: " + ", ".join(f"{r['peak_rss_mb']:.0f}" for r in reports) + "; target < 500 MB")
    wall_by, cpu_by, rss_by, pg_by = defaultdict(float), defaultdict(float), defaultdict(float), defaultdict(float)
    for r in reports:
        _, _, steps = run_events(bench.dagster_engine, r["run_id"])
        for step, (begin, end) in steps.items():
            wall_by[step] += end - begin
            cpu_by[step] += r["step_cpu_s"].get(step, 0.0)
            pg_by[step] += r.get("step_pg_cpu_s", {}).get(step, 0.0)
            rss = [mb for at, mb in r["rss_samples"] if begin <= at <= end]  # RSS every 0.1 s in the run worker
            rss_by[step] = max([rss_by[step], *rss])
    by_kind: dict[str, float] = defaultdict(float)
    for step in sorted(wall_by, key=wall_by.get, reverse=True):
        kind = "checks" if step not in bench.kinds else bench.kinds[step]
        by_kind[kind] += cpu_by[step]
        by_kind[kind + "_wall"] += wall_by[step]
        by_kind[kind + "_pg"] += pg_by[step]
        c.result(f"{label}.step.{step}", wall_by[step], "s",
                 f"{kind}; summed over {len(reports)} run(s); process CPU {cpu_by[step]:.2f} s; RSS up to "
                 f"{rss_by[step]:.0f} MB" + (f"; PostgreSQL {pg_by[step]:.2f} CPU s meanwhile (the only run)"
                                             if len(reports) == 1 or one_after_another else ""))
    c.result(f"{label}.analytics_cpu", by_kind["derived"], "CPU s", "derived steps' process CPU, summed over the "
             f"runs (their wall {by_kind['derived_wall']:.1f} s); checks {by_kind['checks']:.2f} CPU s "
             f"(wall {by_kind['checks_wall']:.1f} s); capture steps {by_kind['capture']:.1f} CPU s")
    c.result(f"{label}.cpu", sum(r["cpu_s"] for r in reports), "CPU s",
             f"run workers in all (imports included); PostgreSQL {pg_cpu:.1f} CPU s, sandbox {sbx_cpu:.1f} CPU s; "
             f"{os.cpu_count()} cores x {wall:.0f} s = {os.cpu_count() * wall:.0f} CPU s available")
    return dict(by_kind)


def hour_key(offset_s: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=offset_s)).strftime(HOUR_FORMAT)


def hourly(bench: Bench, shards: int, one_shard: bool) -> float:
    """The first hour and the next with ``shards`` runs, then (``one_shard``) the hour after with one run.
    Product and sandbox clocks start 3 h back and move 1 h per tick. Returns the clock offset left (s)."""
    offset = -3 * 3600.0
    advance_sandbox_clock(bench.sandbox.base_url, offset)
    ticks = [("first_hour", shards), ("steady", shards)] + ([("steady", 1)] if one_shard and shards > 1 else [])
    for i, (kind, count) in enumerate(ticks):
        if i:
            offset += 3600
            advance_sandbox_clock(bench.sandbox.base_url, 3600)
        key = hour_key(offset)
        label = f"tick.N{bench.n}.S{count}.{kind}"
        print(f"--- {label}: media_sync_job {key}, {count} run(s), load {load()}", flush=True)
        specs = shard_specs(count, partition_key=key, clock_offset_s=offset)
        kinds = run_tick(bench, label, specs, ("media", key))
        if kind == "steady":
            bench.analytics_cpu[count] = kinds.get("derived", 0.0)
    if len(bench.analytics_cpu) == 2:
        one, many = bench.analytics_cpu[1], bench.analytics_cpu[shards]
        c.result(f"tick.N{bench.n}.analytics_cpu_ratio", c.ratio(many, one), "x",
                 f"steady hour's derived-steps CPU: {shards} shards {many:.2f} s / 1 shard {one:.2f} s "
                 "(issue 27's target: equal within noise)")
    return offset


SAME_HOUR_ORDER = ("at_once", "one_run", "one_after_another", "one_after_another", "one_run", "at_once")


def same_hour(bench: Bench, shards: int, offset: float) -> None:
    """The analytics CPU of one hour, the same data each time: the last hour's partition again, six times, in the
    order ABCCBA (``SAME_HOUR_ORDER``: S runs at once, one run, S runs one after another) so a drift of the machine's
    load or of the data (each run captures the hour again) weighs on each the same. The S runs one after another
    do what the S runs at once do without their contention for the cores: if they cost what one run costs, the
    excess of S at once is contention, not work that grows with S."""
    key = hour_key(offset)
    cpu: dict[str, list[float]] = defaultdict(list)
    for i, mode in enumerate(SAME_HOUR_ORDER):
        count = 1 if mode == "one_run" else shards
        label = f"tick.N{bench.n}.same_hour.{i + 1}.{mode}"
        print(f"--- {label}: media_sync_job {key} again, {count} run(s), load {load()}", flush=True)
        specs = shard_specs(count, partition_key=key, clock_offset_s=offset)
        kinds = run_tick(bench, label, specs, ("media", key), one_after_another=mode == "one_after_another")
        cpu[mode].append(kinds.get("derived", 0.0))
        if mode != "at_once":  # PostgreSQL's CPU during the derived steps: measurable for a run alone only
            cpu[mode + "_pg"].append(kinds.get("derived_pg", 0.0))
    mean = {mode: sum(v) / len(v) for mode, v in cpu.items()}
    spread = {mode: (max(v) - min(v)) / mean[mode] * 100 if mean[mode] else 0.0 for mode, v in cpu.items()}
    for mode, base, what in (("at_once", "one_run", "run workers'"), ("one_after_another", "one_run", "run workers'"),
                             ("one_after_another_pg", "one_run_pg", "PostgreSQL's")):
        c.result(f"tick.N{bench.n}.same_hour.analytics_cpu_ratio.{mode}", c.ratio(mean[mode], mean[base]), "x",
                 f"derived steps, {what} CPU: {shards} runs {mode.removesuffix('_pg').replace('_', ' ')} "
                 f"{mean[mode]:.2f} s / one run {mean[base]:.2f} s, the mean of two each; each pair differs by "
                 f"{spread[mode]:.0f} % and {spread[base]:.0f} % (the noise)")


def daily(bench: Bench, shards: int, offset: float) -> None:
    """The 02:00-03:00 tick, as scheduled, on the product's day (the clock ``offset`` from the wall clock)."""
    from ig_analytics.defs.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
    from ig_analytics.defs.jobs import REFETCH_DAYS

    if offset < 0:  # the clocks back on the wall clock: the day's runs happen "now"
        advance_sandbox_clock(bench.sandbox.base_url, -offset)
        offset = 0.0
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).date()
    first = yesterday - timedelta(days=REFETCH_DAYS)
    key = hour_key(offset)
    refresh = {"ops": {"media_and_snapshots": {"config": {"refresh_all": True}}}}
    label = f"daily.N{bench.n}.S{shards}"
    phases = [
        ("insights_0200", shard_specs(shards, job="account_insights_job", tags={
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: yesterday.isoformat()}),
         ("account", f"{first.isoformat()}...{yesterday.isoformat()}")),
        ("media_refresh_0210", shard_specs(shards, job="media_sync_job", partition_key=key, run_config=refresh),
         ("media", key)),
        ("audience_0220", [{"job": "audience_demographics_job", "partition_key": yesterday.isoformat()}],
         ("demographics", yesterday.isoformat())),
        ("reports_0300", [{"job": "reports_job", "partition_key": yesterday.isoformat()}], None),
    ]
    total = 0.0
    for name, specs, counted in phases:
        print(f"--- {label}.{name}: {specs[0]['job']}, {len(specs)} run(s), load {load()}", flush=True)
        t = time.perf_counter()
        run_tick(bench, f"{label}.{name}", specs, counted)
        total += time.perf_counter() - t
    c.result(f"{label}.seconds", total, "s", "the four runs' ticks one after another (02:00, 02:10, 02:20, 03:00)")


def create_pool(env: dict) -> None:
    """Create the graph_api pool's row (its default limit, from dagster.yaml) before the first runs, as an earlier
    run of a deployment has: S runs starting at once on a new instance race to insert it, and all but one fail
    with a unique violation on ``concurrency_limits`` (seen with 4 account-insights runs)."""
    code = ("import dagster as dg; i = dg.DagsterInstance.get(); "
            "i.event_log_storage.initialize_concurrency_limit_to_default('graph_api'); i.dispose()")
    subprocess.run([sys.executable, "-c", code], env=env, cwd=str(c.REPO_ROOT), check=True, capture_output=True)


def measure(n: int, shards: int, posts: int, one_shard: bool, with_daily: bool | str, server, url: str,
            same: bool = False, logs: Path | None = None) -> None:
    from sqlalchemy.engine import make_url as sa_url

    from ig_analytics.local.embedded_db import DAGSTER_DB
    from ig_analytics.storage import db

    dagster_url = server.url(DAGSTER_DB)
    with c.SandboxProcess(n, posts_per_account=posts, latency_ms=LATENCY_MS) as sandbox, \
            tempfile.TemporaryDirectory(prefix="ig-bench-tick-") as tmp:
        engine = c.fresh_schema(url)
        t = time.perf_counter()
        c.register_accounts(engine, sandbox.accounts)
        c.result(f"tick.N{n}.register_seconds", time.perf_counter() - t, "s", "set-up: accounts add (Fernet)")
        home = Path(tmp)
        env = child_env(url, dagster_url, sandbox.base_url, home, pool_limit=shards)
        bench = Bench(n, engine, db.get_engine(dagster_url), env, home, sandbox, sa_url(url).port, step_kinds(),
                      logs=logs)
        if logs:
            logs.mkdir(parents=True, exist_ok=True)
        create_pool(env)
        offset = hourly(bench, shards, one_shard) if with_daily != "only" else 0.0
        if same:
            same_hour(bench, shards, offset)
        if with_daily:
            daily(bench, shards, offset)
        c.result(f"tick.N{n}.sandbox_rss", c.process_rss_mb(sandbox.pid)[1], "MB", "peak of the sandbox child")


def main(argv: list[str] | None = None) -> int:
    quick, rest = c.quick_flag(argv)
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=None)
    parser.add_argument("--shards", type=int, default=None)
    parser.add_argument("--posts", type=int, default=None)
    parser.add_argument("--one-shard", action="store_true", help="then the next hour with one run (side by side)")
    parser.add_argument("--same-hour", action="store_true",
                        help="then the last hour again, 6 times: S runs at once, one run, S one after another (ABCCBA)")
    parser.add_argument("--daily", action="store_true", help="then the daily 02:00-03:00 tick")
    parser.add_argument("--logs", type=Path, default=None, help="keep each run's console log in this folder")
    parser.add_argument("--daily-only", action="store_true",
                        help="the daily tick on an empty database (its 02:10 refresh reads every post anyway)")
    args = parser.parse_args(rest)
    n = args.accounts or (6 if quick else 1000)
    shards = args.shards or (2 if quick else 4)
    posts = args.posts or (20 if quick else 100)
    c.header(NAME, quick)
    print(f"{n} accounts x {posts} posts, {shards} shards, latency {LATENCY_MS} ms per request; load {load()}",
          flush=True)
    with c.temp_postgres() as (server, url):
        daily_mode = "only" if args.daily_only else (args.daily or quick)
        measure(n, shards, posts, args.one_shard or quick, daily_mode, server, url, args.same_hour, args.logs)
    c.result("peak_rss", c.peak_rss_mb(), "MB", "the benchmark's own process (not the run workers)")
    c.done(NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
