"""Benchmark 3: one hourly media sync of N sandbox accounts (100 posts each) with 100 ms latency per request,
through the production path: ``ingestion.runner.sync_accounts`` with the asset's per-account work
(``sync_media``) and the asset's concurrency (``MediaSyncConfig.max_concurrent_accounts``, 8).

Per N, on a fresh schema: run 1 is the first sync of an hour with an empty database (every post of the last
30 days is due: the heaviest hour); run 2 is the next hour (sandbox clock +1 h; only posts under 48 h old, live
stories and daily captures that are due): the steady state, in a process that has seen the tokens before;
run 3 is the hour after, with the process-wide token registry of ``ig_analytics.redaction`` emptied first, as
in a production run (every hourly run is a new run worker process that registers every token again). The sandbox runs in a child process, so its CPU
and memory are reported apart from the sync's (which has the client, the runner and the database driver).

    .venv/bin/python -m benchmarks.scale [--quick] [--sizes 10,100,1000] [--workers 8]
    (quick: sizes 3,10)

Shards (issue 15): ``--accounts N --shards S`` instead measures N accounts split into S shards
(``accounts/shards.py``), each shard's hourly run a process of its own started at the same time, as the run
workers of one schedule tick: run 1 the first hour (every post due), run 2 the next hour (steady), both with S
shards, then (with S > 1) run 3 the hour after with one shard (all accounts in one process), for the scaling. Each shard
process imports the code location first (``ig_analytics.definitions``, as a run worker does), loads the
credentials of its shard as the asset does, and runs the asset's capture with ``MediaSyncConfig``'s concurrency.
Printed: wall time from start to the last process's end, each process's peak RSS (ru_maxrss), CPU, and the
accounts captured, counted independently in ``instagram.sync_runs``.

    .venv/bin/python -m benchmarks.scale --accounts 10000 --shards 4 [--posts 100] [--workers 8]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as c  # noqa: E402

NAME = "scale"
LATENCY_MS = 100


def production_workers() -> int:
    from ig_analytics.defs.ingestion_assets import MediaSyncConfig

    return MediaSyncConfig().max_concurrent_accounts


def advance_sandbox_clock(base_url: str, seconds: float) -> None:
    req = urllib.request.Request(base_url + "/__sandbox/clock", data=json.dumps({"advance_seconds": seconds}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=30).read()


def forget_registered_tokens() -> None:
    """What a new run process starts with: no token registered for redaction yet (production runs each hourly
    sync in a fresh run worker process, so every run registers every account's token again)."""
    from ig_analytics import redaction

    with redaction._lock:  # (the module's state since register_secret became O(1): a set of plain tokens)
        redaction._plain_secrets.clear()
        redaction._shortest_plain = 0
        redaction._other_secrets = frozenset()
        redaction._other_pattern = None


def hourly_sync(engine, client, creds, slot_start: datetime, workers: int) -> dict:
    """What the media_and_snapshots asset does for one hourly partition (minus Dagster itself)."""
    from ig_analytics.defs.ingestion_assets import MediaSyncConfig
    from ig_analytics.ingestion.media_snapshots import CapturePolicy, sync_media
    from ig_analytics.ingestion.runner import sync_accounts

    config = MediaSyncConfig()
    policy = CapturePolicy(config.window_days, config.young_hours, config.daily_interval_hours)
    slot_end = slot_start + timedelta(hours=1)
    totals = {"media_rows": 0, "snapshot_rows": 0, "due": 0, "batch_items": 0}

    def work(api, account, result) -> None:
        synced = sync_media(engine, api, account.ig_user_id, slot_start, slot_end, client.version,
                            datetime.now(timezone.utc), policy, refresh_all=False, capture_snapshots=True)
        result.rows_written = synced.rows_written
        result.items_skipped = synced.skipped
        for key in ("media_rows", "snapshot_rows", "due"):
            totals[key] += getattr(synced, key)  # (+= from worker threads: counts only, as in the asset)
        totals["batch_items"] += api.stats.batch_items  # Graph calls inside batch requests (Meta counts each)
        result.finish("partial" if synced.not_captured else "success")

    t = time.perf_counter()
    outcomes = sync_accounts(engine, client, creds, sync_type="media", partition_key=slot_start.isoformat(),
                             run_id=f"bench-{uuid.uuid4()}", work=work, max_workers=workers)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "calls": sum(o.api_calls for o in outcomes),
            "failed": sum(1 for o in outcomes if not o.ok), "skipped": sum(o.items_skipped for o in outcomes),
            "errors": sorted({(o.error or "")[:120] for o in outcomes if not o.ok})[:3], **totals}


def media_rows_written(engine, since: datetime) -> tuple[int, int]:
    """instagram.media rows (inserted, updated) since ``since`` (sync_media stamps both with the run's now)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT count(*) FILTER (WHERE first_seen_at >= :t),"
            " count(*) FILTER (WHERE updated_at >= :t AND first_seen_at < :t) FROM instagram.media"), {"t": since}).one()
    return int(row[0]), int(row[1])


def run_size(n: int, workers: int, url: str) -> None:
    from ig_analytics.graph_api import GraphApiClient

    with c.SandboxProcess(n, posts_per_account=100, latency_ms=LATENCY_MS) as sandbox:
        engine = c.fresh_schema(url)
        t = time.perf_counter()
        creds = c.register_accounts(engine, sandbox.accounts)
        setup_s = time.perf_counter() - t
        gc.collect()
        rss_before = c.current_rss_mb()
        client = GraphApiClient(sandbox.base_url, pool_size=max(16, workers))
        now = datetime.now(timezone.utc)
        slot = now.replace(minute=0, second=0, microsecond=0)
        # (a slot whose end is in the future, like the asset's hour in progress: reference_end = now)
        label = f"N{n}"
        runs = ((1, "cold", slot), (2, "steady", slot + timedelta(hours=1)),
                (3, "steady_new_process", slot + timedelta(hours=2)))
        for run_no, kind, slot_start in runs:
            if run_no > 1:
                advance_sandbox_clock(sandbox.base_url, 3600)
            if kind == "steady_new_process":
                forget_registered_tokens()
            cpu0, sbx_cpu0 = c.cpu_seconds(), c.process_cpu_seconds(sandbox.pid)
            started = datetime.now(timezone.utc)
            r = hourly_sync(engine, client, creds, slot_start, workers)
            cpu = c.cpu_seconds() - cpu0
            sbx_cpu = c.process_cpu_seconds(sandbox.pid) - sbx_cpu0
            c.result(f"scale.{label}.{kind}.seconds", r["seconds"], "s",
                     f"{n} accounts, {workers} workers; {r['failed']} failed" + (f" {r['errors']}" if r["failed"] else ""))
            c.result(f"scale.{label}.{kind}.calls", r["calls"], "HTTP requests",
                     f"{r['calls'] / n:.2f} per account; {r['due']} posts due, {r['snapshot_rows']} snapshots, "
                     f"{r['media_rows']} media rows, {r['skipped']} skipped")
            inserted, rewritten = media_rows_written(engine, started)
            c.result(f"scale.{label}.{kind}.media_rows_written", inserted + rewritten, "rows",
                     f"instagram.media rows inserted ({inserted}) or rewritten ({rewritten}) by this run, of "
                     f"{r['media_rows']} sent (unchanged rows are not rewritten)")
            c.result(f"scale.{label}.{kind}.accounts_per_s", n / r["seconds"], "accounts/s")
            c.result(f"scale.{label}.{kind}.cpu", cpu / r["seconds"], "cores (sync process)",
                     f"sandbox process {sbx_cpu / r['seconds']:.2f} cores")
            c.result(f"scale.{label}.{kind}.rss", c.current_rss_mb(), "MB", "sync process RSS after the run")
        gc.collect()
        rss_after = c.current_rss_mb()
        sbx_rss, sbx_hwm = c.process_rss_mb(sandbox.pid)
        c.result(f"scale.{label}.rss_growth", rss_after - rss_before, "MB",
                 f"sync process RSS {rss_before:.0f} -> {rss_after:.0f} MB over the three runs")
        c.result(f"scale.{label}.peak_rss", c.peak_rss_mb(), "MB", "ru_maxrss of the sync process so far; target < 1 GB")
        c.result(f"scale.{label}.sandbox_rss", sbx_hwm, "MB", "peak of the sandbox child (not ours)")
        c.result(f"scale.{label}.register_seconds", setup_s, "s", "set-up: accounts add (Fernet) for N accounts")
        client.close()


def shard_child(url: str, base_url: str, shard_text: str, slot_iso: str, workers: int) -> int:
    """One shard's hourly capture in this process (a run worker): prints one JSON line with its numbers."""
    t0 = time.perf_counter()
    importlib.import_module("ig_analytics.definitions")  # a run worker loads the code location before its step

    from ig_analytics.accounts import repository as repo
    from ig_analytics.accounts.shards import SHARD_TAG, in_shard, shard_from_tags
    from ig_analytics.graph_api import GraphApiClient
    from ig_analytics.storage import db

    startup_s = time.perf_counter() - t0
    shard = shard_from_tags({SHARD_TAG: shard_text})
    engine = db.get_engine(url)
    t = time.perf_counter()
    creds, problems = repo.active_credentials(engine, c.vault(), None)  # as the asset's _credentials does
    creds = [x for x in creds if in_shard(x.ig_user_id, shard)]
    credentials_s = time.perf_counter() - t
    client = GraphApiClient(base_url, pool_size=max(16, workers))
    r = hourly_sync(engine, client, creds, datetime.fromisoformat(slot_iso), workers)
    client.close()
    print(json.dumps({"shard": shard_text, "accounts": len(creds), "problems": len(problems), "startup_s": startup_s,
                      "credentials_s": credentials_s, "sync_s": r["seconds"], "calls": r["calls"],
                      "failed": r["failed"], "errors": r["errors"], "snapshots": r["snapshot_rows"],
                      "batch_items": r["batch_items"],
                      "cpu_s": c.cpu_seconds(), "peak_rss_mb": c.peak_rss_mb()}), flush=True)
    return 0


def run_shards(n: int, shards: int, workers: int, posts: int, url: str) -> None:
    with c.SandboxProcess(n, posts_per_account=posts, latency_ms=LATENCY_MS) as sandbox:
        engine = c.fresh_schema(url)
        t = time.perf_counter()
        c.register_accounts(engine, sandbox.accounts)
        c.result(f"shards.N{n}.register_seconds", time.perf_counter() - t, "s", "set-up: accounts add (Fernet)")
        slot = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        hours = [("cold", shards), ("steady", shards)] + ([("steady", 1)] if shards > 1 else [])
        for run_no, (kind, count) in enumerate(hours, start=1):
            slot_start = slot + timedelta(hours=run_no - 1)
            if run_no > 1:
                advance_sandbox_clock(sandbox.base_url, 3600)
            label = f"shards.N{n}.S{count}.{kind}"
            sbx_cpu0 = c.process_cpu_seconds(sandbox.pid)
            env = dict(os.environ, PYTHONPATH=c.child_pythonpath(), IG_ANALYTICS_LOG_LEVEL="WARNING")
            sampler = ConnectionSampler(engine)
            t = time.perf_counter()
            procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.scale", "--child", url, sandbox.base_url,
                                       f"{i}/{count}", slot_start.isoformat(), str(workers)],
                                      stdout=subprocess.PIPE, text=True, env=env, cwd=str(c.REPO_ROOT))
                     for i in range(count)]
            outs = [proc.communicate()[0] for proc in procs]
            wall = time.perf_counter() - t
            sampler.stop()
            sbx_cpu = c.process_cpu_seconds(sandbox.pid) - sbx_cpu0
            reports = []
            for proc, out in zip(procs, outs):
                lines = [line for line in out.splitlines() if line.startswith("{")]
                if proc.returncode != 0 or not lines:
                    raise RuntimeError(f"shard process exited {proc.returncode}: {out[-2000:]}")
                reports.append(json.loads(lines[-1]))
            captured = accounts_captured(engine, slot_start)
            peak = max(r["peak_rss_mb"] for r in reports)
            c.result(f"{label}.seconds", wall, "s",
                     f"{n} accounts in {count} process(es) at once, {workers} workers each; first start to last end")
            c.result(f"{label}.accounts_captured", captured["ok"], "accounts",
                     f"of {n} (instagram.sync_runs of the slot: {captured}); shard processes report "
                     f"{sum(r['accounts'] for r in reports)} accounts, {sum(r['failed'] for r in reports)} failed "
                     + (f"{reports[0]['errors']}" if any(r["failed"] for r in reports) else ""))
            c.result(f"{label}.peak_rss_per_run", peak, "MB", "largest ru_maxrss of the shard processes; per shard: "
                     + ", ".join(f"{r['peak_rss_mb']:.0f}" for r in reports) + "; target < 500 MB")
            requests, items = sum(r["calls"] for r in reports), sum(r["batch_items"] for r in reports)
            c.result(f"{label}.calls", requests, "HTTP requests",
                     f"{sum(r['snapshots'] for r in reports)} snapshots written; {items:,} Graph calls inside batches")
            c.result(f"{label}.graph_calls_per_account", (requests + items) / n, "calls",
                     "upper bound of what Meta counts per account for this hour (requests + batch items; a batch "
                     "envelope is not a call)")
            c.result(f"{label}.pg_connections", sampler.peak, "connections",
                     "peak client connections to PostgreSQL during the run (pg_stat_activity, sampled every 0.5 s)")
            c.result(f"{label}.split", max(r["sync_s"] for r in reports), "s",
                     "longest capture (sync_accounts) of a shard; start-up (imports) "
                     + ", ".join(f"{r['startup_s']:.1f}" for r in reports) + " s; credentials "
                     + ", ".join(f"{r['credentials_s']:.1f}" for r in reports) + " s")
            c.result(f"{label}.cpu", sum(r["cpu_s"] for r in reports) / wall, "cores (shard processes)",
                     f"sandbox process {sbx_cpu / wall:.2f} cores; the machine has {os.cpu_count()}")
        sbx_rss, sbx_hwm = c.process_rss_mb(sandbox.pid)
        c.result(f"shards.N{n}.sandbox_rss", sbx_hwm, "MB", "peak of the sandbox child (not ours)")


class ConnectionSampler:
    """Peak number of client backends of the server while the shard processes run (a thread, every 0.5 s)."""

    def __init__(self, engine) -> None:
        import threading

        self.engine, self.peak, self._stop = engine, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            while not self._stop.wait(0.5):
                n = conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                                         " AND pid <> pg_backend_pid()")).scalar()
                self.peak = max(self.peak, int(n))
                conn.rollback()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def accounts_captured(engine, slot_start: datetime) -> dict:
    """Accounts whose media sync of the slot ended in each status (what `ig-analytics status` reads)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT status, count(DISTINCT ig_user_id) FROM instagram.sync_runs WHERE sync_type = 'media'"
            " AND partition_key = :k GROUP BY status"), {"k": slot_start.isoformat()}).all()
    counts = {status: int(n) for status, n in rows}
    counts["ok"] = counts.get("success", 0) + counts.get("partial", 0)
    return counts


def main(argv: list[str] | None = None) -> int:
    quick, rest = c.quick_flag(argv)
    if rest and rest[0] == "--child":
        return shard_child(*rest[1:5], int(rest[5]))
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--accounts", type=int, default=None, help="shard mode: this many accounts")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--posts", type=int, default=100)
    args = parser.parse_args(rest)
    if args.accounts:
        workers = args.workers or production_workers()
        c.header(NAME + " (shards)", quick)
        print(f"{args.accounts} accounts x {args.posts} posts, {args.shards} shards, {workers} workers per shard, "
              f"latency {LATENCY_MS} ms per request", flush=True)
        with c.temp_postgres() as (_pg, url):
            run_shards(args.accounts, args.shards, workers, args.posts, url)
        c.result("peak_rss", c.peak_rss_mb(), "MB", "the benchmark's own process")
        c.done(NAME)
        return 0
    sizes = [int(s) for s in (args.sizes or ("3,10" if quick else "10,100,1000")).split(",")]
    workers = args.workers or production_workers()
    c.header(NAME, quick)
    print(f"production concurrency (MediaSyncConfig.max_concurrent_accounts): {production_workers()}; "
          f"using {workers}; latency {LATENCY_MS} ms per request", flush=True)
    with c.temp_postgres() as (_pg, url):
        from ig_analytics.storage import db

        print(f"postgres: {c.postgres_version(db.get_engine(url))}", flush=True)
        for n in sizes:
            run_size(n, workers, url)
    # CPU of registering N tokens for redaction in a new process (client.account() -> redaction.register_secret)
    import secrets

    from ig_analytics import redaction

    forget_registered_tokens()
    n = max(sizes)
    t = time.perf_counter()
    for _ in range(n):
        redaction.register_secret("sbx_" + secrets.token_hex(20))
    reg_s = time.perf_counter() - t
    t = time.perf_counter()
    redaction.register_secret("sbx_" + secrets.token_hex(20))
    last_ms = (time.perf_counter() - t) * 1000
    forget_registered_tokens()
    c.result(f"scale.register_secret.N{n}.seconds", reg_s, "s",
             f"registering {n} tokens in a fresh process (before the fix: a regex of all secrets recompiled "
             f"on each, 27.6-30.7 s at 1,000); the next one costs {last_ms:.3f} ms")
    c.result("peak_rss", c.peak_rss_mb(), "MB")
    c.done(NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
