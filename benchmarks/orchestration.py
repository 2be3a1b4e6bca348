"""Benchmark 5: orchestration overhead of ``ig-analytics sync`` for one account, end to end.

The CLI runs as a subprocess (DATABASE_URL, IG_GRAPH_API_URL, IG_ANALYTICS_HOME set to this benchmark's own
PostgreSQL, sandbox and temp dir): a full sync (media of 30 days + 90 days of account insights + the
analytics + the rolling 7-day report), through Dagster (``execute_in_process`` of three jobs). Run twice: the
first on a fresh Dagster storage (its schema is created), the second warm. Then the same work is called
directly in this process (no Dagster, no new interpreter): the difference is the orchestration overhead. The
API time alone (the same Graph calls, nothing written) is measured too, so the CLI's wall time splits into
API, SQL + Python of the work, and orchestration (interpreter start, imports, Dagster).

    .venv/bin/python -m benchmarks.orchestration [--quick]    (quick: no latency, one CLI run)
    --profile: also profile one CLI run (cProfile, top 30 cumulative)
    --without-event-batches: the CLI and the in-process syncs with defs/event_batches.batch_events a no-op
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as c  # noqa: E402

NAME = "orchestration"
IG_USER_ID = "17841400000000001"


def timed_subprocess(args: list[str], env: dict, timeout: float = 600) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=str(c.REPO_ROOT))
    return time.perf_counter() - t, proc


def database_epoch(url: str) -> float:
    """The database server's clock (epoch s): what ``runs.create_timestamp`` is compared with."""
    import sqlalchemy as sa

    from ig_analytics.storage import db

    with db.get_engine(url).connect() as conn:
        return float(conn.execute(sa.text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())


def event_histogram(url: str, since: float) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """The runs created since ``since`` (epoch s) with their event counts, and the counts by event type."""
    import sqlalchemy as sa

    from ig_analytics.storage import db

    engine = db.get_engine(url)
    with engine.connect() as conn:
        runs = conn.execute(sa.text(
            "SELECT r.pipeline_name, count(e.id) FROM runs r LEFT JOIN event_logs e ON e.run_id = r.run_id"
            " WHERE r.create_timestamp >= to_timestamp(:t) AT TIME ZONE 'UTC' GROUP BY r.run_id, r.pipeline_name,"
            " r.create_timestamp ORDER BY r.create_timestamp"), {"t": since}).all()
        types = conn.execute(sa.text(
            "SELECT coalesce(e.dagster_event_type, 'log message'), count(*) FROM event_logs e JOIN runs r"
            " ON e.run_id = r.run_id WHERE r.create_timestamp >= to_timestamp(:t) AT TIME ZONE 'UTC'"
            " GROUP BY 1 ORDER BY 2 DESC"), {"t": since}).all()
    return [(r[0], int(r[1])) for r in runs], {t[0]: int(t[1]) for t in types}


def direct_work(engine, client, token: str, reports_dir: Path) -> dict:
    """What the jobs of a full `sync` do for one account, called directly (no Dagster)."""
    import sqlalchemy as sa

    from ig_analytics.analytics import refresh_trending_posts, write_reports
    from benchmarks.direct_writes import (
        refresh_account_engagement_daily, refresh_best_posting_times, refresh_media_engagement,
    )
    from ig_analytics.ingestion.account_insights import sync_account_insights
    from ig_analytics.ingestion.media_snapshots import CapturePolicy, sync_media

    now = datetime.now(timezone.utc)
    slot_start = now.replace(minute=0, second=0, microsecond=0)
    yesterday = now.date() - timedelta(days=1)
    parts = {}
    t = time.perf_counter()
    api = client.account(IG_USER_ID, token)
    sync_media(engine, api, IG_USER_ID, slot_start, min(slot_start + timedelta(hours=1), now), client.version, now,
               CapturePolicy(), refresh_all=True)
    parts["media"] = time.perf_counter() - t
    t = time.perf_counter()
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(sa.text(
            "SELECT DISTINCT media_id FROM instagram.media_insights_snapshots WHERE captured_at >= :s"), {"s": slot_start})]
        refresh_media_engagement(conn, media_ids=ids)
    with engine.begin() as conn:
        refresh_trending_posts(conn, as_of=slot_start)
    with engine.begin() as conn:
        today = now.date() + timedelta(days=1)
        refresh_account_engagement_daily(conn, day_from=today - timedelta(days=35), day_to=today)
    with engine.begin() as conn:
        refresh_best_posting_times(conn)
    parts["analytics"] = time.perf_counter() - t
    t = time.perf_counter()
    api2 = client.account(IG_USER_ID, token)
    sync_account_insights(engine, api2, IG_USER_ID, yesterday - timedelta(days=89), yesterday, client.version, now)
    parts["account"] = time.perf_counter() - t
    t = time.perf_counter()
    with engine.begin() as conn:
        write_reports(conn, period_end=yesterday, days=7, kind="rolling_7d", reports_dir=reports_dir)
    parts["reports"] = time.perf_counter() - t
    parts["calls"] = api.stats.calls + api2.stats.calls + conversation_work(engine, client, token, now, parts)
    return parts


def conversation_work(engine, client, token: str, now: datetime, parts: dict) -> int:
    """What a full sync does besides since issues 24-25: the audience picture, every post's comments read in
    full, the tagged posts, and the hashtag and conversation frames computed (not written: a few rows for one
    account). Returns the calls made."""
    from ig_analytics.analytics import conversation, hashtags
    from ig_analytics.ingestion.comments import sync_comments
    from ig_analytics.ingestion.demographics import sync_audience_demographics
    from ig_analytics.ingestion.tags import sync_tags
    from ig_analytics.settings import Settings

    t = time.perf_counter()
    api = client.account(IG_USER_ID, token)
    sync_audience_demographics(engine, api, IG_USER_ID, now.date() - timedelta(days=1), client.version, now)
    sync_comments(engine, api, IG_USER_ID, "bench_account", now, full=True)
    sync_tags(engine, api, IG_USER_ID, now, Settings.from_env({}).comment_text_days)  # the default: 90 days
    parts["audience_comments_tags"] = time.perf_counter() - t
    t = time.perf_counter()
    with engine.connect() as conn:
        posts = hashtags.read_posts(conn, now - timedelta(days=max(hashtags.PERIOD_DAYS) + 2))
        tags = hashtags.hashtag_rows(posts)
        hashtags.performance_rows(posts, tags, now.date() - timedelta(days=1), now)
        first = now.date() - timedelta(days=conversation.WINDOW_DAYS)
        since = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
        conversation.daily_rows(conversation.read_comments(conn, since - timedelta(days=7)), first, now)
        conversation.post_rows(conversation.read_comments(conn, since, by_post=True), now)
    parts["conversation_analytics"] = time.perf_counter() - t
    return api.stats.calls


def fresh_budget(server, engine) -> None:
    """Each measured phase starts within the app's hourly budget: this benchmark makes many hours' worth of one
    account's calls in minutes, and past 80 % of the sandbox's app usage the client rightly slows down."""
    import sqlalchemy as sa

    server.usage.reset()
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM instagram.api_budget"))


def cli_command(py: str, batches: bool) -> list[str]:
    """The CLI; without ``batches``, with ``defs/event_batches.batch_events`` made a no-op in that process (the
    question of issue 23: does a sync stay under 2x without it?). The product is not changed."""
    if batches:
        return [py, "-m", "ig_analytics.cli.main"]
    return [py, "-c", NO_BATCHES + "from ig_analytics.cli.main import main; sys.exit(main())"]


NO_BATCHES = "import sys; from ig_analytics.defs import event_batches; event_batches.batch_events = lambda s: None; "


def per_job_seconds(env: dict, batches: bool = True) -> tuple[float, dict[str, float], float, float]:
    """``run_sync`` in this process (imports and the Dagster instance already paid by a first sync), with the
    wall time of each job's run: where the seconds of the CLI's runs go, job by job."""
    from unittest import mock

    with mock.patch.dict(os.environ, {k: v for k, v in env.items() if k != "PYTHONPATH"}, clear=True):
        import ig_analytics.definitions  # noqa: F401
        from ig_analytics.cli import sync_command
        from ig_analytics.defs import launch

        timings: dict[str, float] = {}
        original = launch.execute_linked_run

        def timed(instance, job_name, **kwargs):
            t = time.perf_counter()
            try:
                return original(instance, job_name, **kwargs)
            finally:
                timings[job_name] = timings.get(job_name, 0.0) + time.perf_counter() - t

        batching = launch.event_batches.batch_events if batches else (lambda storage: None)
        with mock.patch.object(launch, "execute_linked_run", timed), \
                mock.patch.object(launch.event_batches, "batch_events", batching):
            t = time.perf_counter()
            sync_command.run_sync([IG_USER_ID], "full", None, None)
            first_s = time.perf_counter() - t
            timings.clear()
            t, cpu = time.perf_counter(), c.cpu_seconds()
            sync_command.run_sync([IG_USER_ID], "full", None, None)
            return first_s, dict(timings), time.perf_counter() - t, c.cpu_seconds() - cpu


def api_only(client, token: str) -> tuple[float, int]:
    """The same Graph API calls as the sync (list, insights of every post, profile, 90 days), nothing written."""
    now = datetime.now(timezone.utc)
    yesterday = now.date() - timedelta(days=1)
    t = time.perf_counter()
    api = client.account(IG_USER_ID, token)
    media = api.list_media(now - timedelta(days=30))
    api.media_insights(media)
    api.profile()
    api.account_insights(yesterday - timedelta(days=89), yesterday)
    return time.perf_counter() - t, api.stats.calls


def main(argv: list[str] | None = None) -> int:
    quick, rest = c.quick_flag(argv)
    profile = "--profile" in rest  # also run the CLI once under cProfile and print where its time goes
    batches = "--without-event-batches" not in rest  # issue 23's question, measured without changing the product
    from ig_analytics.graph_api import GraphApiClient
    from ig_analytics.sandbox import AccountSpec, Faults, SandboxServer, SandboxWorld

    latency = 0 if quick else 100
    cli_runs = 1 if quick else 2
    c.header(NAME, quick)
    world = SandboxWorld([AccountSpec(IG_USER_ID, "bench_account", followers=25_000, timezone="Europe/Berlin",
                                      posts=100, posts_per_day=2.0)], seed=5)
    world.faults = Faults(latency_ms=latency)
    token = world.accounts[0].token
    home = Path(tempfile.mkdtemp(prefix="ig-bench-home-"))
    os.chmod(home, 0o755)
    try:
        with c.temp_postgres() as (_pg, url), SandboxServer(world) as server:
            engine = c.fresh_schema(url)
            print(f"postgres: {c.postgres_version(engine)}; sandbox latency {latency} ms per request", flush=True)
            c.register_accounts(engine, c.world_accounts(world))
            env = dict(os.environ, DATABASE_URL=url, IG_GRAPH_API_URL=server.base_url,
                       IG_ANALYTICS_HOME=str(home / "cli"), IG_TOKEN_KEY=c.TOKEN_KEY, PYTHONPATH=c.child_pythonpath())
            for var in ("DAGSTER_HOME", "IG_NOTIFY_WEBHOOK_URL", "IG_APP_SECRET", "IG_GRAPH_API_VERSION"):
                env.pop(var, None)
            py = sys.executable

            # interpreter + imports alone
            start_s, _ = timed_subprocess([py, "-c", "pass"], env)
            import_cli_s, _ = timed_subprocess([py, "-c", "import ig_analytics.cli.main"], env)
            import_defs_s, _ = timed_subprocess([py, "-c", "import ig_analytics.definitions"], env)

            cli = []
            for i in range(cli_runs):
                fresh_budget(server, engine)
                mark = len(server.request_log)
                run_started = database_epoch(url)  # Dagster stamps runs with the database's clock
                seconds, proc = timed_subprocess(cli_command(py, batches) + ["sync", "--account", IG_USER_ID], env)
                requests_sent = sum(1 for r in server.request_log[mark:] if not r.batch_item)
                out = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
                cli.append((seconds, requests_sent, proc.returncode, out))
                print(f"cli run {i + 1}: exit {proc.returncode}, {seconds:.2f} s, {requests_sent} requests: {out}",
                      flush=True)
                if proc.returncode != 0:
                    print(proc.stderr[-3000:], flush=True)
                sync_runs, types = event_histogram(url, run_started)
                print(f"  runs: {', '.join(f'{job} ({n} events)' for job, n in sync_runs)}; by type: "
                      + ", ".join(f"{t} {n}" for t, n in types.items()), flush=True)

            if profile:
                prof_file = home / "cli.prof"
                seconds, proc = timed_subprocess([py, "-m", "cProfile", "-o", str(prof_file), "-m", "ig_analytics.cli.main",
                                                  "sync", "--account", IG_USER_ID], env)
                import pstats

                print(f"--- cProfile of one more CLI run ({seconds:.2f} s, exit {proc.returncode}), top 45 cumulative:")
                pstats.Stats(str(prof_file)).sort_stats("cumulative").print_stats(45)
                print("--- the same, top 30 by own time:")
                pstats.Stats(str(prof_file)).sort_stats("tottime").print_stats(30)
                if os.environ.get("IG_BENCH_PROFILE_OUT"):  # keep the profile for reading by hand
                    shutil.copyfile(prof_file, os.environ["IG_BENCH_PROFILE_OUT"])

            # Dagster's PostgreSQL event log storage uses NullPool: one new connection per stored event
            import psycopg2

            dsn = url.replace("postgresql+psycopg2://", "postgresql://")
            t = time.perf_counter()
            for _ in range(50):
                psycopg2.connect(dsn).close()
            connect_ms = (time.perf_counter() - t) / 50 * 1000
            # ... and stores each event in its own autocommit transaction (one WAL flush per commit)
            conn = psycopg2.connect(dsn)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("CREATE TEMP TABLE _commit_probe (x int)")
                t = time.perf_counter()
                for i in range(50):
                    cur.execute("INSERT INTO _commit_probe VALUES (%s)", (i,))
                commit_ms = (time.perf_counter() - t) / 50 * 1000
                cur.execute("CREATE TABLE IF NOT EXISTS public._commit_probe (x int)")
                t = time.perf_counter()
                for i in range(50):
                    cur.execute("INSERT INTO public._commit_probe VALUES (%s)", (i,))
                commit_logged_ms = (time.perf_counter() - t) / 50 * 1000
                cur.execute("DROP TABLE public._commit_probe")
            conn.close()

            client = GraphApiClient(server.base_url)
            fresh_budget(server, engine)
            direct_work(engine, client, token, home / "reports-warmup")  # warm-up: imports, pools, plans
            runs = [direct_work(engine, client, token, home / "reports") for _ in range(2)]
            direct = min(runs, key=lambda p: sum(v for k, v in p.items() if k != "calls"))
            direct_s = sum(v for k, v in direct.items() if k != "calls")
            api_s, api_calls = min((api_only(client, token) for _ in range(2)), key=lambda x: x[0])
            client.close()
            fresh_budget(server, engine)
            first_in_process_s, per_job, in_process_s, in_process_cpu = per_job_seconds(env, batches)

            cli_s = cli[-1][0]
            c.result("cli.sync.runs", len(sync_runs), "runs", ", ".join(job for job, _ in sync_runs))
            c.result("cli.sync.events", sum(n for _, n in sync_runs), "events", "stored in Dagster's event log by the last sync")
            overhead = cli_s - direct_s
            c.result("cli.python_start.seconds", start_s, "s", "python -c pass")
            c.result("cli.import_cli.seconds", import_cli_s, "s", "python -c 'import ig_analytics.cli.main'")
            c.result("cli.import_definitions.seconds", import_defs_s, "s",
                     "python -c 'import ig_analytics.definitions' (Dagster and every asset)")
            if cli_runs > 1:
                c.result("cli.first_run.seconds", cli[0][0], "s", "fresh Dagster storage (schema created)")
            c.result("cli.sync.seconds", cli_s, "s", f"ig-analytics sync --account (full), exit {cli[-1][2]}, "
                     f"{cli[-1][1]} HTTP requests")
            c.result("in_process.first_sync.seconds", first_in_process_s, "s",
                     "run_sync in an interpreter with the definitions imported: the instance and cold caches paid")
            c.result("in_process.sync.cpu_seconds", in_process_cpu, "CPU s", "process CPU of that second run_sync "
                     "(less sensitive to the machine's load than its wall time); event batches "
                     + ("on" if batches else "OFF (--without-event-batches)"))
            c.result("in_process.sync.seconds", in_process_s, "s", "the next run_sync of the same process; its runs: "
                     + ", ".join(f"{job} {s:.2f} s" for job, s in per_job.items()))
            c.result("direct.seconds", direct_s, "s",
                     "same work in-process, no Dagster: " + ", ".join(f"{k} {v:.2f} s" for k, v in direct.items()
                                                                     if k != "calls") + f"; {direct['calls']} requests")
            c.result("direct.api_only.seconds", api_s, "s", f"the Graph calls alone ({api_calls} requests)")
            no_dagster_s = start_s + import_defs_s + direct_s
            c.result("orchestration.ratio", c.ratio(cli_s, no_dagster_s), "x",
                     f"the CLI's {cli_s:.2f} s / the same work with no Dagster run {no_dagster_s:.2f} s (interpreter "
                     f"{start_s:.2f} + imports {import_defs_s:.2f} + the work called directly {direct_s:.2f}); "
                     "issues 23 and 27: keep it under 2x")
            c.result("orchestration.overhead.seconds", overhead, "s", "CLI wall time - direct in-process time")
            c.result("orchestration.overhead.share", 100 * overhead / cli_s, "%",
                     f"of the CLI's wall time; API {100 * api_s / cli_s:.0f} %, SQL + Python of the work "
                     f"{100 * (direct_s - api_s) / cli_s:.0f} %")
            c.result("pg.connect.ms", connect_ms, "ms", "one new PostgreSQL connection (what Dagster's event log storage "
                     "opens per event)")
            c.result("pg.commit.ms", commit_logged_ms, "ms", f"one autocommit INSERT into a logged table (temp table: "
                     f"{commit_ms:.2f} ms): a commit is cheap here, so the per-event cost is Dagster-side")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    c.result("peak_rss", c.peak_rss_mb(), "MB")
    c.done(NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
