"""Benchmark 1: API requests and wall time of a media-insights sync against the sandbox with 100 ms latency.

Ours: ``sync_media`` (the first pages of media + stories in one batch request, lifetime insights in batch
requests of 50, COPY-based write).
Baseline: the story's ``getBulkMediaInsights``/``getMediaInsights`` (WORKER-003): two GETs per post
(``/{id}/insights`` and ``/{id}?fields=like_count,comments_count``), groups of 10 posts in parallel threads,
a 1-second pause between groups, then one upsert per row (psycopg2, one transaction). The baseline gets the
post list for free (the story reads it from its own table) and asks the same metric set as ours, so only the
request pattern and the write differ. Also: 90 days of account insights (requests, wall time), and the comment
requests per 100 posts of a first sync (every post with comments read in full) and of a steady hour (only the
posts whose comments_count moved, newest pages only).

    .venv/bin/python -m benchmarks.api_calls [--quick]      (quick: 20 posts)
"""

from __future__ import annotations

import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as c  # noqa: E402

NAME = "api_calls"
LATENCY_MS = 100
IG_USER_ID = "17841400000000001"


def baseline_media_insights(base_url: str, client, token: str, media: list, engine) -> dict:
    """The story's algorithm, in Python: 2 GETs per post, groups of 10 in threads, 1 s between groups,
    then one upsert per row in one transaction."""
    import requests
    from requests.adapters import HTTPAdapter

    from ig_analytics.graph_api.catalogue import normalize_media_metric
    from ig_analytics.ingestion.media_snapshots import SNAPSHOT_METRIC_COLUMNS

    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=10))
    root = f"{base_url}/{client.version}"
    requests_sent = 0
    failures = 0

    def get_media_insights(post):
        nonlocal requests_sent
        metrics = client.catalogue.media_metrics_for(post.media_product_type, post.media_type)
        r1 = session.get(f"{root}/{post.media_id}/insights",
                         params={"metric": ",".join(metrics), "access_token": token}, timeout=30)
        r2 = session.get(f"{root}/{post.media_id}", params={"fields": "like_count,comments_count",
                                                           "access_token": token}, timeout=30)
        requests_sent += 2  # (+= on an int under the GIL from 10 threads: good enough for counting here)
        body1, body2 = r1.json(), r2.json()
        if "error" in body1 or "error" in body2:
            return post, None  # the story logs a warning and continues with the other posts
        values = {}
        for entry in body1.get("data", []):
            total = entry.get("total_value")
            raw = total.get("value") if isinstance(total, dict) else (entry.get("values") or [{}])[-1].get("value")
            values[normalize_media_metric(entry["name"])] = raw
        values.setdefault("likes", body2.get("like_count"))
        values.setdefault("comments", body2.get("comments_count"))
        return post, values

    started = time.perf_counter()
    results = {}
    for i in range(0, len(media), 10):
        group = media[i:i + 10]
        with ThreadPoolExecutor(max_workers=10) as pool:
            for post, values in pool.map(get_media_insights, group):
                if values is None:
                    failures += 1
                else:
                    results[post.media_id] = (post, values)
        if i + 10 < len(media):
            time.sleep(1.0)
    fetched = time.perf_counter()

    now = datetime.now(timezone.utc)
    slot = now.replace(minute=0, second=0, microsecond=0)
    cols = ("media_id", "captured_at", "fetched_at", "ig_user_id", *SNAPSHOT_METRIC_COLUMNS, "api_version")
    sql = (f"INSERT INTO instagram.media_insights_snapshots ({', '.join(cols)}) VALUES "
           f"({', '.join(['%s'] * len(cols))}) ON CONFLICT (media_id, captured_at) DO UPDATE SET "
           + ", ".join(f"{col} = EXCLUDED.{col}" for col in cols[2:]))
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for media_id, (post, values) in results.items():
            cur.execute(sql, (media_id, slot, now, post.ig_user_id,
                              *(values.get(m) for m in SNAPSHOT_METRIC_COLUMNS), client.version))
        raw.commit()
        cur.close()
    finally:
        raw.close()
    ended = time.perf_counter()
    session.close()
    return {"requests": requests_sent, "seconds": ended - started, "fetch_s": fetched - started,
            "write_s": ended - fetched, "rows": len(results), "failed": failures}


def ours_media_insights(client, token: str, engine) -> dict:
    from ig_analytics.ingestion.media_snapshots import CapturePolicy, sync_media

    api = client.account(IG_USER_ID, token)
    now = datetime.now(timezone.utc)
    slot_start = now.replace(minute=0, second=0, microsecond=0)
    started = time.perf_counter()
    synced = sync_media(engine, api, IG_USER_ID, slot_start, now, client.version, now, CapturePolicy(),
                        refresh_all=True)
    seconds = time.perf_counter() - started
    return {"requests": api.stats.calls, "seconds": seconds, "rows": synced.snapshot_rows,
            "media_rows": synced.media_rows, "due": synced.due, "skipped": synced.skipped,
            "batch_items": api.stats.batch_items}


def competitor_requests(engine, client, token: str, server, n_competitors: int) -> dict:
    """One daily competitor capture of ``n_competitors`` public accounts that need no paging (the sandbox's
    generated ones post less than once in three days): HTTP requests and Graph calls per competitor."""
    from ig_analytics.ingestion.competitors import capture_account
    from ig_analytics.storage import competitors

    competitors.add(engine, IG_USER_ID, [f"sbx_public_{i:05d}" for i in range(1, n_competitors + 1)])
    api = client.account(IG_USER_ID, token)
    now = datetime.now(timezone.utc)
    mark = len(server.request_log)
    started = time.perf_counter()
    result = capture_account(engine, api, None, now.date() - timedelta(days=1), now)
    return {"requests": http_requests(server, mark), "seconds": time.perf_counter() - started,
            "captured": len(result.captured), "failed": len(result.failed), "graph_calls": api.stats.batch_items,
            "paced_s": api.stats.throttle_wait_s}


def http_requests(server, since: int) -> int:
    """HTTP requests the sandbox received since log position ``since`` (a batch POST counts 1)."""
    return sum(1 for r in server.request_log[since:] if not r.batch_item)


def request_kinds(server, since: int) -> str:
    """The same requests by kind, e.g. "batch(media+stories) 1, batch(insights) 3" (a batch's items follow it in
    the log), so a change in the request count shows where it came from."""
    log = list(server.request_log[since:])
    kinds: dict[str, int] = {}
    for n, record in enumerate(log):
        if record.batch_item:
            continue
        if record.path == "/":
            items = []
            for later in log[n + 1:]:
                if not later.batch_item:
                    break
                items.append(later.path.rsplit("/", 1)[-1])
            kind = f"batch({'+'.join(dict.fromkeys(items))})"
        else:
            kind = f"GET {record.path.rsplit('/', 1)[-1]}"
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in kinds.items())


def comment_requests(server, world, client, token: str, engine, n_posts: int) -> None:
    """HTTP requests (and Graph calls) of the comment reads, per 100 posts: a first sync, then a steady hour."""
    from ig_analytics.ingestion.comments import sync_comments

    def read(full: bool) -> tuple[int, int, int, float]:
        api = client.account(IG_USER_ID, token)
        mark = len(server.request_log)
        t = time.perf_counter()
        synced = sync_comments(engine, api, IG_USER_ID, "bench_account", world.clock.now(), full=full)
        return http_requests(server, mark), api.stats.batch_items, synced.posts_read, time.perf_counter() - t

    per_100 = 100 / n_posts
    server.usage.reset()  # the media comparisons above used most of the account's hourly budget: start afresh
    first = read(full=True)
    c.result("comments.first_sync.requests_per_100_posts", round(first[0] * per_100, 1), "HTTP requests",
             f"{first[1]} Graph calls in batches; {first[2]} posts read in full; {first[3]:.2f} s")
    world.clock.advance(timedelta(hours=1))
    ours_media_insights(client, token, engine)  # the hourly media sync stores the new comments_count first
    steady = read(full=False)
    c.result("comments.steady_hour.requests_per_100_posts", round(steady[0] * per_100, 1), "HTTP requests",
             f"{steady[1]} Graph calls in batches; {steady[2]} posts whose count moved; {steady[3]:.2f} s")


def main(argv: list[str] | None = None) -> int:
    quick, _ = c.quick_flag(argv)
    from ig_analytics.graph_api import GraphApiClient
    from ig_analytics.ingestion.account_insights import sync_account_insights
    from ig_analytics.sandbox import AccountSpec, Faults, SandboxServer, SandboxWorld

    n_posts = 20 if quick else 100
    repeats = 1 if quick else 3
    c.header(NAME, quick)
    # Real-time sandbox clock (the client plans account-insight windows on the wall clock). 5 posts a day and no
    # stories: the last 30 days hold exactly n_posts posts of mixed types (FEED image/carousel/video, REELS).
    world = SandboxWorld([AccountSpec(IG_USER_ID, "bench_account", followers=25_000, timezone="UTC", posts=n_posts,
                                      posts_per_day=5.0, stories_per_day=0.0)], seed=3)
    world.faults = Faults(latency_ms=LATENCY_MS)
    token = world.accounts[0].token
    with c.temp_postgres() as (_pg, url), SandboxServer(world) as server:
        engine = c.fresh_schema(url)
        print(f"postgres: {c.postgres_version(engine)}; sandbox latency {LATENCY_MS} ms per HTTP request", flush=True)
        c.register_accounts(engine, c.world_accounts(world))
        client = GraphApiClient(server.base_url)
        media = client.account(IG_USER_ID, token).list_media(datetime.now(timezone.utc) - timedelta(days=30))
        kinds: dict[str, int] = {}
        for m in media:
            kinds[f"{m.media_product_type}/{m.media_type}"] = kinds.get(f"{m.media_product_type}/{m.media_type}", 0) + 1
        print(f"posts in the 30-day window: {len(media)} ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})")

        # warm-up: the catalogue row writes, connection pools, imports (not measured)
        ours_media_insights(client, token, engine)

        base_runs, our_runs = [], []
        for _ in range(repeats):  # alternate, so drift hits both
            mark = len(server.request_log)
            b = baseline_media_insights(server.base_url, client, token, media, engine)
            b["server_requests"] = http_requests(server, mark)
            base_runs.append(b)
            mark = len(server.request_log)
            o = ours_media_insights(client, token, engine)
            o["server_requests"] = http_requests(server, mark)
            o["kinds"] = request_kinds(server, mark)
            our_runs.append(o)
        b_s = statistics.median(r["seconds"] for r in base_runs)
        o_s = statistics.median(r["seconds"] for r in our_runs)
        b, o = base_runs[-1], our_runs[-1]
        print(f"baseline runs (s): {[round(r['seconds'], 3) for r in base_runs]}; ours: {[round(r['seconds'], 3) for r in our_runs]}")
        c.result("media.posts", len(media), "posts")
        c.result("media.baseline.requests", b["server_requests"], "HTTP requests")
        c.result("media.baseline.seconds", b_s, "s", f"fetch {b['fetch_s']:.2f} s + per-row write {b['write_s']:.3f} s; "
                 f"{b['rows']} rows, {b['failed']} posts failed")
        c.result("media.ours.requests", o["server_requests"], "HTTP requests",
                 f"{o['kinds']}; client stats.calls {o['requests']}, {o['batch_items']} Graph calls inside batches")
        c.result("media.ours.seconds", o_s, "s", f"{o['rows']} snapshot rows + {o['media_rows']} media rows, "
                 f"{o['skipped']} skipped")
        c.result("media.requests_ratio", c.ratio(b["server_requests"], o["server_requests"]), "x fewer requests")
        c.result("media.speedup", c.ratio(b_s, o_s), "x faster", "target >= 10x; ours target <= 4 requests")

        # ---- 90 days of account insights ------------------------------------------------------------------
        today = datetime.now(timezone.utc).date()
        first, last = today - timedelta(days=90), today - timedelta(days=1)
        fetch_runs, sync_runs = [], []
        for _ in range(repeats):
            api = client.account(IG_USER_ID, token)
            mark = len(server.request_log)
            t = time.perf_counter()
            days = api.account_insights(first, last)
            fetch_runs.append((time.perf_counter() - t, http_requests(server, mark), api.stats.batch_items, len(days)))
            api = client.account(IG_USER_ID, token)
            mark = len(server.request_log)
            t = time.perf_counter()
            rows = sync_account_insights(engine, api, IG_USER_ID, first, last, client.version,
                                         datetime.now(timezone.utc))
            sync_runs.append((time.perf_counter() - t, http_requests(server, mark), rows))
        f_s = statistics.median(r[0] for r in fetch_runs)
        s_s = statistics.median(r[0] for r in sync_runs)
        c.result("account90.fetch.requests", fetch_runs[-1][1], "HTTP requests",
                 f"{fetch_runs[-1][2]} Graph calls in batches; {fetch_runs[-1][3]} days")
        c.result("account90.fetch.seconds", f_s, "s", "account_insights(90 days) only")
        c.result("account90.sync.requests", sync_runs[-1][1], "HTTP requests", "profile + insights")
        c.result("account90.sync.seconds", s_s, "s", f"sync_account_insights incl. write of {sync_runs[-1][2]} rows; "
                 "target < 2 s")

        # ---- competitors: one daily capture (business discovery, 50 per batch) --------------------------------
        n_rivals = 50 if quick else 150
        comp = competitor_requests(engine, client, token, server, n_rivals)
        c.result("competitors.requests", comp["requests"], "HTTP requests",
                 f"{comp['captured']} of {n_rivals} competitors captured, {comp['failed']} failed; "
                 f"{comp['graph_calls']} Graph calls; target <= ceil({n_rivals}/50) = {-(-n_rivals // 50)}")
        c.result("competitors.requests_per_competitor_day", comp["requests"] / n_rivals, "HTTP requests",
                 "per competitor per day, nothing to page; target <= 1/50 = 0.02")
        c.result("competitors.seconds", comp["seconds"], "s", f"fetch + write of one daily capture, of which "
                 f"{comp['paced_s']:.1f} s pacing (the app's X-App-Usage after the calls above)")
        comment_requests(server, world, client, token, engine, len(media))
        client.close()
    c.result("peak_rss", c.peak_rss_mb(), "MB")
    c.done(NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
