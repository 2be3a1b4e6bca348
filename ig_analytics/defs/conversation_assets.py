"""Conversation and content assets (issue 25): hashtags of the captions and how they perform (no API call), the
comments of the account's posts (hourly, frugal: only posts whose ``comments_count`` moved), the conversation
metrics derived from them, and the posts of others that tag the account (daily).

The derived tables are returned as frames and written by the ``postgres_io`` IO manager; the formulas are plain
Python in ``analytics/hashtags.py`` and ``analytics/conversation.py`` (docs/analytics.md)."""


import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

import dagster as dg

from ig_analytics import clock
from ig_analytics.accounts import repository as accounts_repo
from ig_analytics.analytics import conversation, hashtags
from ig_analytics.defs.analytics_assets import day_window, seconds_since
from ig_analytics.defs.catalog import HOURLY, table_asset
from ig_analytics.defs.checks import CheckDef, check_group
from ig_analytics.defs.account_runs import GRAPH_API_POOL, account_credentials, refuse_unstarted_partition
from ig_analytics.defs.ingestion_assets import MediaSyncConfig, media_and_snapshots
from ig_analytics.defs.partitions import hourly_partitions
from ig_analytics.defs.account_scope import AccountScope, run_scope
from ig_analytics.defs.postgres_io import IO_MANAGER_KEY, write_metadata
from ig_analytics.defs.resources import AnalyticsDatabase, GraphApi
from ig_analytics.graph_api.errors import GraphApiError, PermissionDeniedError
from ig_analytics.ingestion.circuit_breaker import CircuitBreaker
from ig_analytics.ingestion.comments import sync_comments
from ig_analytics.ingestion.tags import sync_tags, tags_due
from ig_analytics.quality import conversation as rules
from ig_analytics.settings import Settings

EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _scope(context, database: AnalyticsDatabase) -> AccountScope:
    """The accounts whose derived rows this run computes (its shard's; every account without a shard tag)."""
    return run_scope(context, lambda: accounts_repo.account_ids(database.engine()))


def _ids(scope: AccountScope, database: AnalyticsDatabase) -> list[str]:
    """The scope's accounts, listed (every registered account without a shard: their inputs are computed a slice
    of accounts at a time, analytics/slices.py)."""
    return scope.ids if scope.ids is not None else list(accounts_repo.account_ids(database.engine()))


@dg.asset(
    deps=["media"],
    group_name="analytics",
    kinds={"postgres", "pandas"},
    io_manager_key=IO_MANAGER_KEY,
    **table_asset("media_hashtags", write_metadata("replace")),
    freshness_policy=HOURLY,
    description=(
        "The hashtags of each post's caption (any script, case-folded, without '#'), parsed from the stored "
        "captions: no API call. Rebuilt every hour, so an edited caption is reflected."
    ),
)
def media_hashtags(context: dg.AssetExecutionContext, database: AnalyticsDatabase) -> dg.Output:
    started = time.monotonic()
    scope = _scope(context, database)
    with database.engine().connect() as conn:  # a slice of accounts at a time: the run's memory stays bounded
        rows = hashtags.tags_in_slices(conn, _ids(scope, database), EPOCH)
    return dg.Output(scope.rows(rows), metadata={"posts_with_hashtags": int(rows["media_id"].nunique()),
                                                 "hashtags": int(rows["hashtag"].nunique()),
                                                 **scope.metadata(), "duration_seconds": seconds_since(started)})


@dg.asset(
    deps=["media_hashtags", "media_engagement"],
    group_name="analytics",
    kinds={"postgres", "pandas"},
    io_manager_key=IO_MANAGER_KEY,
    **table_asset("hashtag_performance", write_metadata("replace", "period_end", ("computed_at",))),
    freshness_policy=HOURLY,
    description=(
        f"Which of the account's hashtags work: per account, trailing period ({' and '.join(map(str, hashtags.PERIOD_DAYS))} "
        f"days ending yesterday, the last complete UTC day) and hashtag used on at least {hashtags.MIN_POSTS} posts, the median engagement rate by "
        "reach and median reach of those posts and the lift against the account's median (1.0 = as usual)."
    ),
)
def hashtag_performance(context: dg.AssetExecutionContext, database: AnalyticsDatabase) -> dg.Output:
    started = time.monotonic()
    now = clock.now()
    last_day = now.date() - timedelta(days=1)  # complete days only: yesterday's report finds its rows
    since = now - timedelta(days=max(hashtags.PERIOD_DAYS) + 2)
    scope = _scope(context, database)
    with database.engine().connect() as conn:  # only the run's accounts' posts and tags, a slice at a time
        rows = hashtags.performance_in_slices(conn, _ids(scope, database), since, last_day, now)
    # the periods ending yesterday are the slice: earlier days' rows stay as history
    return dg.Output(scope.rows(rows, day_window(last_day, last_day)),
                     metadata={"rows": len(rows), **scope.metadata(), "duration_seconds": seconds_since(started)})


def _media_config(run_config: Mapping[str, Any]) -> MediaSyncConfig:
    """The media step's config of this run: the comments follow its accounts, its daily refresh (full reads)
    and its capture-lag guard, so the schedules and ``sync`` need not configure a second step."""
    op_config = ((run_config.get("ops") or {}).get(media_and_snapshots.op.name) or {}).get("config") or {}
    return MediaSyncConfig(**op_config)


def _refuse_unstarted_run(context) -> None:
    """An unpartitioned asset of the hourly job, in a run launched for an hour still to come: refused like the
    partitioned ones (ingestion_assets.refuse_unstarted_partition), before any call."""
    key = context.run.tags.get("dagster/partition") or ""
    try:
        start = datetime.strptime(key, "%Y-%m-%d-%H:%M").replace(tzinfo=timezone.utc)
    except ValueError:
        return  # no hourly partition: nothing to refuse
    if start > clock.now():
        raise dg.Failure(description=f"Partition {key} has not started yet: nothing is read for it. Launch a "
                                     "partition that has begun.", allow_retries=False)


def for_each_account(creds, work: Callable, max_workers: int, api: str | None = None) -> list[dict]:
    """``work(account) -> dict`` for every account in parallel; one account's failure is its own row. A dead API
    (the API at ``api``) is given up as in the other ingestion runs, which may have found it dead already."""
    breaker = CircuitBreaker.for_run(len(creds), api)

    def one(account) -> dict:
        if breaker.open:
            return {"ig_user_id": account.ig_user_id, "status": "failed", "error": breaker.reason()}
        try:
            row = {"ig_user_id": account.ig_user_id, "status": "success", **work(account)}
            breaker.record(True, None)
            return row
        except (GraphApiError, OSError) as exc:  # this account's trouble, never the run's (no text in it)
            breaker.record(False, exc)
            return {"ig_user_id": account.ig_user_id, "status": "failed", "error": str(exc)[:300]}

    if not creds:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(creds))), thread_name_prefix="ig-conv") as pool:
        return list(pool.map(one, creds))


def _outcomes(rows: list[dict], started: float) -> dict:
    lines = ["| account | status | detail |", "|---|---|---|"]
    for r in rows:
        detail = r.get("error") or r.get("denied") or ", ".join(
            f"{k} {v}" for k, v in r.items() if k not in ("ig_user_id", "status", "denied") and v)
        lines.append(f"| {r['ig_user_id']} | {r['status']} | {' '.join(str(detail).split()).replace('|', '/')} |")
    totals = {k: sum(int(r.get(k) or 0) for r in rows) for k in ("api_calls", "batch_items", "posts_read",
                                                                   "comments_written", "comments_deleted")}
    return {**{k: dg.MetadataValue.int(v) for k, v in totals.items()},
            "accounts_failed": dg.MetadataValue.int(sum(r["status"] == "failed" for r in rows)),
            "accounts_without_permission": dg.MetadataValue.int(sum(bool(r.get("denied")) for r in rows)),
            "accounts": dg.MetadataValue.md("\n".join(lines)), "duration_seconds": seconds_since(started)}


@dg.asset(
    deps=["media"],
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=GRAPH_API_POOL,
    group_name="ingestion",
    kinds={"postgres"},
    **table_asset("media_comments"),
    freshness_policy=HOURLY,
    description=(
        "Comments and replies on each account's posts of the last 30 days, read only when a post's comment count "
        "moved since the last read (newest pages first) and in full at the daily refresh, when comments deleted "
        "on Instagram leave the table. Text and commenters' usernames are blanked after "
        "IG_ANALYTICS_COMMENT_TEXT_DAYS days (default 90); counts and times stay."
    ),
)
def media_comments(context: dg.AssetExecutionContext, database: AnalyticsDatabase, graph_api: GraphApi):
    started = time.monotonic()
    config = _media_config(context.run.run_config)
    now = clock.now()
    slot_end = context.partition_time_window.end
    refuse_unstarted_partition(context, slot_end - timedelta(hours=1), now)
    if config.max_capture_lag_hours is not None and now - slot_end > timedelta(hours=config.max_capture_lag_hours):
        return dg.MaterializeResult(metadata={"skipped": "a past hour: comments are read as of now only"})
    engine, creds, _problems, _done = account_credentials(context, database, "comments", config.ig_user_ids)
    client = graph_api.client(database)
    reference = min(slot_end, now)
    full = config.refresh_all

    def work(account) -> dict:
        api = client.account(account.ig_user_id, account.token, account.login_kind)
        synced = sync_comments(engine, api, account.ig_user_id, account.username, reference, full=full,
                               window_days=config.window_days)
        return {"api_calls": api.stats.calls, "batch_items": api.stats.batch_items, "posts_read": synced.posts_read,
                "posts_refused": synced.posts_refused, "comments_written": synced.comments_written,
                "comments_deleted": synced.comments_deleted, "denied": synced.denied}

    rows = for_each_account(creds, work, config.max_concurrent_accounts, getattr(client, "base_url", None))
    return dg.MaterializeResult(metadata={**_outcomes(rows, started), "full_read": full})


@dg.multi_asset(
    name="conversation",
    specs=[
        dg.AssetSpec(
            "conversation_daily", deps=["media_comments"], group_name="analytics", kinds={"postgres", "pandas"},
            **table_asset("conversation_daily", write_metadata("replace", "date", ("computed_at",))),
            freshness_policy=HOURLY,
            description=(
                "Per account and UTC day: comments and replies written, top-level comments answered by the account "
                "and not, open questions, and the median and 90th-percentile minutes to the account's first reply. "
                f"The last {conversation.WINDOW_DAYS} days are recomputed every hour (replies keep arriving)."
            ),
        ).with_io_manager_key(IO_MANAGER_KEY),
        dg.AssetSpec(
            "conversation_posts", deps=["media_comments"], group_name="analytics", kinds={"postgres", "pandas"},
            **table_asset("conversation_posts", write_metadata("replace", "published_at", ("computed_at",))),
            freshness_policy=HOURLY,
            description=(
                "Per post with comments: comments, replies, answered and unanswered top-level comments, open "
                f"questions and the median minutes to the account's first reply. Posts of the last "
                f"{conversation.WINDOW_DAYS} days are recomputed every hour."
            ),
        ).with_io_manager_key(IO_MANAGER_KEY),
    ],
    can_subset=True,
)
def conversation_tables(context: dg.AssetExecutionContext, database: AnalyticsDatabase):
    """Both conversation tables from one read of each slice of accounts' comments (``tables_in_slices``)."""
    started = time.monotonic()
    now = clock.now()
    first = now.date() - timedelta(days=conversation.WINDOW_DAYS)
    scope = _scope(context, database)
    selected = {key.to_user_string() for key in context.selected_asset_keys}
    with database.engine().connect() as conn:  # a slice of accounts at a time: the run's memory stays bounded
        days, posts = conversation.tables_in_slices(conn, _ids(scope, database), first, now,
                                                    daily="conversation_daily" in selected,
                                                    posts="conversation_posts" in selected)
    window = day_window(first, now.date())
    for name, rows, count in (("conversation_daily", days, "days"), ("conversation_posts", posts, "posts")):
        if rows is not None:
            yield dg.Output(scope.rows(rows, window), output_name=name,
                            metadata={count: len(rows), **scope.metadata(), "duration_seconds": seconds_since(started)})


@dg.asset(
    deps=["accounts"],
    pool=GRAPH_API_POOL,
    group_name="ingestion",
    kinds={"postgres"},
    **table_asset("tagged_media"),
    freshness_policy=HOURLY,
    description=(
        "Public posts of other accounts that tag each account (user-generated content), with their like and "
        "comment counts and a link. Read about once a day per account (when its last read is 23 h old) in the "
        "hourly media job, and by every `ig-analytics sync`."
    ),
)
def tagged_media(context: dg.AssetExecutionContext, database: AnalyticsDatabase, graph_api: GraphApi):
    started = time.monotonic()
    _refuse_unstarted_run(context)
    config = _media_config(context.run.run_config)
    engine, creds, _problems, _done = account_credentials(context, database, "tags", config.ig_user_ids)
    client = graph_api.client(database)
    now = clock.now()
    text_days = database.settings().comment_text_days
    due = [c for c in creds if config.refresh_all or tags_due(engine, c.ig_user_id, now)]

    def work(account) -> dict:
        api = client.account(account.ig_user_id, account.token, account.login_kind)
        try:
            return {"posts": sync_tags(engine, api, account.ig_user_id, now, text_days), "api_calls": api.stats.calls}
        except PermissionDeniedError as exc:  # this account's token cannot read tags: say so, do not fail
            return {"denied": str(exc)[:300], "api_calls": api.stats.calls}

    rows = for_each_account(due, work, config.max_concurrent_accounts, getattr(client, "base_url", None))
    return dg.MaterializeResult(metadata={**_outcomes(rows, started), "accounts_due": len(due)})


conversation_assets = [media_hashtags, hashtag_performance, media_comments, conversation_tables, tagged_media]
# what the hourly media job adds (defs/jobs.py)
CONVERSATION_HOURLY = dg.AssetSelection.assets("media_hashtags", "hashtag_performance", "media_comments",
                                               "conversation_daily", "conversation_posts", "tagged_media")


def _checks() -> dg.AssetChecksDefinition:
    """Each run judges the rows of its own accounts (a shard run: its shard's, ``Scope.run_accounts``), so the
    checks of a tick read each account's rows once whatever the shard count; a run of every account judges all."""
    def comments(conn, s):
        return rules.media_comments_validity(conn, s.now, Settings.from_env().comment_text_days, s.run_accounts(conn))

    return check_group("conversation_checks", None, [
        CheckDef("media_comments", "media_comments_valid", comments,
                 "ERROR: no negative likes or future comments, replies one level deep, no text or username kept past "
                 "IG_ANALYTICS_COMMENT_TEXT_DAYS (a shard run: its accounts' comments)."),
        CheckDef("conversation_daily", "conversation_daily_valid",
                 lambda conn, s: rules.conversation_daily_validity(conn, s.now, s.run_accounts(conn)),
                 "ERROR, blocking: consistent counts, median <= p90, no future day (a shard run: its accounts' rows).",
                 blocking=True),
        CheckDef("tagged_media", "tagged_media_valid",
                 lambda conn, s: rules.tagged_media_validity(conn, s.now, s.run_accounts(conn)),
                 "ERROR: no negative counts, no future posts (a shard run: its accounts' rows)."),
        CheckDef("hashtag_performance", "hashtags_valid",
                 lambda conn, s: rules.hashtags_validity(conn, s.run_accounts(conn)),
                 "ERROR: normalised tags, at least 3 posts per tag, lift = tag median / account median (a shard run: "
                 "its accounts' rows)."),
    ])


conversation_checks = [_checks()]
