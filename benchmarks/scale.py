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
"""

from __future__ import annotations

import argparse
import gc
import json
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
    totals = {"media_rows": 0, "snapshot_rows": 0, "due": 0}

    def work(api, account, result) -> None:
        synced = sync_media(engine, api, account.ig_user_id, slot_start, slot_end, client.version,
                            datetime.now(timezone.utc), policy, refresh_all=False, capture_snapshots=True)
        result.rows_written = synced.rows_written
        result.items_skipped = synced.skipped
        for key in totals:
            totals[key] += getattr(synced, key)  # (+= from worker threads: counts only, as in the asset)
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


def main(argv: list[str] | None = None) -> int:
    quick, rest = c.quick_flag(argv)
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default=None)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(rest)
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
