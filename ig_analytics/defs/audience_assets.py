"""``audience_demographics``: a daily snapshot of every active account's audience (followers and engaged
audience by age, gender, country, city). Meta only serves the current picture, so the daily snapshot is the
history; a partition far in the past cannot be filled (``max_snapshot_lag_days``)."""

import time
from datetime import date, timedelta

import dagster as dg
import sqlalchemy as sa

from ig_analytics import clock
from ig_analytics.defs.automation import SCHEDULE_STATUS
from ig_analytics.defs.catalog import ACCOUNTS, AUDIENCE, accounts_synced_check, table_asset
from ig_analytics.defs.account_runs import (
    GRAPH_API_POOL, SYNC_RETRY_POLICY, account_credentials, accounts_check, needs_reauth_alert, raise_for_retryable,
    refuse_unstarted_partition, run_metadata,
)
from ig_analytics.defs.partitions import snapshot_daily_partitions
from ig_analytics.defs.resources import AnalyticsDatabase, GraphApi
from ig_analytics.ingestion.demographics import sync_audience_demographics
from ig_analytics.ingestion.runner import sync_accounts

CHECK = "audience_demographics_valid"


class AudienceConfig(dg.Config):
    ig_user_ids: list[str] = []  # empty: every active account
    max_concurrent_accounts: int = 4
    # The API answers "as of now": a partition older than this many days gets no snapshot. None disables the
    # guard (tests replaying a sandbox clock).
    max_snapshot_lag_days: int | None = 1


def demographics_validity(conn, day: date) -> dg.AssetCheckResult:
    """No negative counts; per account, metric and breakdown the follower values add up to at most the
    follower total at fetch time (Meta counts only followers with known demographics)."""
    negative = conn.execute(sa.text("SELECT count(*) FROM instagram.audience_pictures WHERE date = :d AND value < 0"),
                            {"d": day}).scalar_one()
    over = conn.execute(sa.text(
        "SELECT d.ig_user_id, d.breakdown, sum(d.value) AS total, s.followers_total"
        " FROM instagram.audience_pictures d JOIN instagram.audience_demographics_status s"
        "   USING (ig_user_id, date, metric, breakdown)"
        " WHERE d.date = :d AND d.metric = 'follower_demographics'"
        " GROUP BY d.ig_user_id, d.breakdown, s.followers_total HAVING sum(d.value) > s.followers_total"),
        {"d": day}).all()
    counts = dict(conn.execute(sa.text(
        "SELECT status, count(*) FROM instagram.audience_demographics_status WHERE date = :d GROUP BY status"),
        {"d": day}).all())
    return dg.AssetCheckResult(
        check_name=CHECK, passed=not negative and not over, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"negative_values": dg.MetadataValue.int(int(negative)),
                  "above_follower_total": dg.MetadataValue.json(
                      [{"ig_user_id": r[0], "breakdown": r[1], "sum": int(r[2]), "followers_total": int(r[3])}
                       for r in over]),
                  "pictures_by_status": dg.MetadataValue.json({k: int(v) for k, v in counts.items()})},
        description="No negative counts; follower shares add up to at most the follower total.",
    )


@dg.asset(
    key="audience_demographics",
    deps=[ACCOUNTS],
    partitions_def=snapshot_daily_partitions,  # the install's first picture is its first partition
    pool=GRAPH_API_POOL,
    retry_policy=SYNC_RETRY_POLICY,
    # a day too far in the past cannot be captured: no materialization, so the UI does not show it filled
    output_required=False,
    group_name="ingestion",
    kinds={"postgres"},
    check_specs=[accounts_synced_check("audience_demographics"),
                 dg.AssetCheckSpec(CHECK, asset="audience_demographics",
                                   description="ERROR: no negative counts; per account and breakdown the follower "
                                               "shares add up to at most the follower total.")],
    **table_asset("audience_demographics"),
    freshness_policy=AUDIENCE,
    description=(
        "Who follows and who engages with each account, by age, gender, country and city (Meta's top 45 values), "
        "one picture per day taken at 02:20 UTC. Accounts under 100 followers are recorded as not available, "
        "not failed."
    ),
)
def audience_demographics(
    context: dg.AssetExecutionContext, config: AudienceConfig, database: AnalyticsDatabase, graph_api: GraphApi
):
    started = time.monotonic()
    window = context.partition_time_window
    day: date = window.start.date()
    now = clock.now()
    refuse_unstarted_partition(context, window.end - timedelta(days=1), now)
    today = now.date()
    if config.max_snapshot_lag_days is not None and day < today - timedelta(days=config.max_snapshot_lag_days):
        context.log.warning(f"{day} is more than {config.max_snapshot_lag_days} day(s) ago: Meta serves only "
                            "today's audience picture, so this day cannot be captured and stays unfilled")
        yield dg.AssetCheckResult(check_name="accounts_synced", passed=True, description="nothing to sync")
        with database.engine().connect() as conn:
            yield demographics_validity(conn, day)
        return
    engine, creds, problems, done = account_credentials(context, database, "demographics", config.ig_user_ids)
    client = graph_api.client(database)

    def work(api, account, result) -> None:
        result.rows_written = sync_audience_demographics(engine, api, account.ig_user_id, day, client.version,
                                                         client.now())  # one clock for fetched_at and the window

    results = sync_accounts(
        engine, client, creds, sync_type="demographics", partition_key=day.isoformat(), run_id=context.run_id,
        work=work, max_workers=config.max_concurrent_accounts, on_needs_reauth=needs_reauth_alert(database),
    )
    raise_for_retryable(context, results)
    metadata = run_metadata(results, started, done, problems)
    metadata["api_version"] = dg.MetadataValue.text(client.version)
    yield dg.MaterializeResult(metadata=metadata)
    yield accounts_check(dg.AssetKey("audience_demographics"), results, problems)
    with engine.connect() as conn:
        yield demographics_validity(conn, day)


audience_job = dg.define_asset_job(
    "audience_demographics_job", selection=dg.AssetSelection.assets("audience_demographics"),
    partitions_def=snapshot_daily_partitions, description="Today's audience demographics snapshot of every active account.",
)


@dg.schedule(job=audience_job, cron_schedule="20 2 * * *", execution_timezone="UTC",
             default_status=SCHEDULE_STATUS)
def daily_audience_demographics(context: dg.ScheduleEvaluationContext):
    # Partition D is the picture at the end of day D, taken at 02:20 UTC on D+1 (today has no partition yet).
    day = (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=f"audience-{day}", partition_key=day)
