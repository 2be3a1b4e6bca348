"""``follower_anchors``: every active account's follower total read just after Meta's day ends (Pacific midnight),
so each day's ``followers_total`` is observed and the derived days hang from it (docs/analytics.md, section 0).
The schedule runs in America/Los_Angeles, so it follows Meta's day end across daylight saving time (08:01 UTC in
winter, 07:01 UTC in summer)."""

import time
from datetime import timedelta

import dagster as dg

from ig_analytics.defs.automation import SCHEDULE_STATUS
from ig_analytics.analytics.followers import insights_day
from ig_analytics.constants import META_DAY_TIMEZONE
from ig_analytics.defs.catalog import ACCOUNTS, OWNERS, accounts_synced_check
from ig_analytics.defs.account_runs import (
    GRAPH_API_POOL, account_credentials, accounts_check, needs_reauth_alert, run_metadata,
)
from ig_analytics.defs.resources import AnalyticsDatabase, GraphApi
from ig_analytics.ingestion.follower_anchor import record_follower_anchor
from ig_analytics.ingestion.runner import sync_accounts

SYNC_TYPE = "followers"  # instagram.sync_runs.sync_type of these reads


class FollowerAnchorConfig(dg.Config):
    ig_user_ids: list[str] = []  # empty: every active account
    max_concurrent_accounts: int = 8  # one light profile read each


@dg.asset(
    key="follower_anchors",
    deps=[ACCOUNTS],
    pool=GRAPH_API_POOL,
    # no step retry: a read an hour late is no longer the day's end; the account insights sync still anchors
    # that day from the next reading (derived), and tomorrow's read is on time
    group_name="ingestion",
    kinds={"postgres"},
    owners=OWNERS,
    check_specs=[accounts_synced_check("follower_anchors")],
    freshness_policy=dg.FreshnessPolicy.cron(deadline_cron="0 1 * * *", lower_bound_delta=timedelta(hours=1),
                                             timezone=META_DAY_TIMEZONE),
    description=(
        "Each account's follower total read once a day at 00:01 Pacific time, right after Meta's day ends: it is "
        "that day's observed end-of-day total (account_insights_daily.followers_total_source = 'observed'), and "
        "the other days' totals are derived from the nearest one. One profile call per account."
    ),
)
def follower_anchors(context: dg.AssetExecutionContext, config: FollowerAnchorConfig, database: AnalyticsDatabase,
                     graph_api: GraphApi):
    started = time.monotonic()
    ended = insights_day(graph_api.client(database).now()) - timedelta(days=1)  # the day this read observes
    engine, creds, problems, done = account_credentials(context, database, SYNC_TYPE, config.ig_user_ids)
    client = graph_api.client(database)

    def work(api, account, result) -> None:
        result.rows_written = record_follower_anchor(engine, api, account.ig_user_id, client.now())

    results = sync_accounts(
        engine, client, creds, sync_type=SYNC_TYPE, partition_key=ended.isoformat(),
        run_id=context.run_id, work=work, max_workers=config.max_concurrent_accounts,
        on_needs_reauth=needs_reauth_alert(database),
    )
    yield dg.MaterializeResult(metadata=run_metadata(results, started, done, problems))
    yield accounts_check(dg.AssetKey("follower_anchors"), results, problems)


follower_anchor_job = dg.define_asset_job(
    "follower_anchor_job", selection=dg.AssetSelection.assets("follower_anchors"),
    description="Every active account's follower total, read right after Meta's day ends (Pacific midnight).",
)

# 00:01 Pacific: a minute after the day ends, so the reading holds at most a minute or two of the new day
daily_follower_anchors = dg.ScheduleDefinition(
    name="daily_follower_anchors", job=follower_anchor_job, cron_schedule="1 0 * * *",
    execution_timezone=META_DAY_TIMEZONE, default_status=SCHEDULE_STATUS,
)
