"""Competitors: the daily capture (``competitor_snapshots``, business discovery of every account's competitors
and of itself) and the weekly benchmarks derived from it (``competitor_benchmarks``, through ``postgres_io``).

Partition D of ``competitor_snapshots`` is the public picture at the end of day D, taken on D + 1 (at 02:40 UTC,
after the 02:00 account sync, before the 03:00 reports). Public counts are only ever "now": a past day cannot be
captured, so a backfill of one is refused with that reason, instead of storing today's numbers under it.
"""

import time
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import sqlalchemy as sa

from ig_analytics import clock
from ig_analytics.defs.automation import SCHEDULE_STATUS
from ig_analytics.accounts import repository as accounts_repo
from ig_analytics.analytics import competitor_benchmarks as benchmarks
from ig_analytics.defs.catalog import table_asset
from ig_analytics.defs.account_runs import refuse_unstarted_partition
from ig_analytics.defs.partitions import snapshot_daily_partitions
from ig_analytics.defs.postgres_io import IO_MANAGER_KEY, Rows, write_metadata
from ig_analytics.defs.resources import AnalyticsDatabase, GraphApi
from ig_analytics.ingestion import competitors as capture
from ig_analytics.ingestion.circuit_breaker import CircuitBreaker
from ig_analytics.quality import competitors as quality
from ig_analytics.quality.result import CheckResult

BENCHMARK_WEEKS = 8  # recomputed every run: the newest posts of a week keep gaining likes for a while
COMPETITORS = dg.FreshnessPolicy.cron(deadline_cron="0 6 * * *", lower_bound_delta=timedelta(hours=3, minutes=20))
CHECKS = {  # name -> (rule, what it checks)
    "no_negative_counts": (quality.no_negative_counts, "ERROR: no negative follower, post, like or comment count."),
    "followers_consistent": (quality.followers_consistent, "WARN: no public follower count jumps by more than half "
                             "(and 1000) from one captured day to the next."),
    "every_competitor_captured_or_failure_recorded": (
        quality.every_competitor_accounted_for, "ERROR: every competitor of an active account was captured for the "
        "day, or its failure (status and reason) is recorded."),
}


class CompetitorConfig(dg.Config):
    ig_user_ids: list[str] = []  # empty: every active account
    # A day more than this many days ago cannot be captured (public counts are "now"). None disables the guard
    # (tests replaying a sandbox clock).
    max_capture_lag_days: int | None = 1


@dg.asset(
    deps=["accounts"],
    partitions_def=snapshot_daily_partitions,
    group_name="ingestion",
    kinds={"postgres"},
    **table_asset("competitor_profiles_daily"),
    freshness_policy=COMPETITORS,
    check_specs=[dg.AssetCheckSpec(name, asset="competitor_snapshots", description=what)
                 for name, (_rule, what) in CHECKS.items()],
    description=(
        "Every account's competitors (`ig-analytics competitors add`), read through business discovery once a "
        "day: public followers, posts and their like and comment counts (no reach, views or saves: Meta shows "
        "none for other accounts), and the account's own public numbers read the same way. A competitor that "
        "fails is recorded with its reason (instagram.competitors) and costs only itself. Partition D is the "
        "picture at the end of day D, taken on D + 1; past days cannot be captured."
    ),
)
def competitor_snapshots(context: dg.AssetExecutionContext, config: CompetitorConfig, database: AnalyticsDatabase,
                         graph_api: GraphApi):
    started = time.monotonic()
    day = date.fromisoformat(context.partition_key)
    now = clock.now()
    refuse_unstarted_partition(context, datetime(day.year, day.month, day.day, tzinfo=timezone.utc), now)
    if config.max_capture_lag_days is not None and day < now.date() - timedelta(days=config.max_capture_lag_days):
        raise dg.Failure(description=(
            f"{day} cannot be captured now: business discovery serves only the current public counts, so numbers "
            f"read today would be stored as {day}'s. Competitor days fill one by one, from the day they are added; "
            f"materialize yesterday's partition instead."), allow_retries=False)
    engine = database.engine()
    creds, problems = accounts_repo.active_credentials(engine, database.vault(), config.ig_user_ids or None)
    client = graph_api.client(database)
    results = []
    # a dead API is given up as in the other ingestion runs (and an earlier run of this sync may have found it so)
    breaker = CircuitBreaker.for_run(len(creds), getattr(client, "base_url", None))
    for cred in creds:
        if breaker.open:
            results.append(capture.CaptureResult(cred.ig_user_id, self_reason=breaker.reason()))
            continue
        api = client.account(cred.ig_user_id, cred.token, cred.login_kind)
        try:
            results.append(capture.capture_account(engine, api, cred.username, day, client.now(), cred.login_kind))
            breaker.record(True, None)
        except Exception as exc:  # the account's own failure (token, permission): the others go on
            context.log.warning(f"account {cred.ig_user_id}: competitors not captured: {exc}")
            results.append(capture.CaptureResult(cred.ig_user_id, self_reason=str(exc)))
            breaker.record(False, exc)
    with engine.connect() as conn:
        checks = [_check_result(name, rule(conn, day)) for name, (rule, _what) in CHECKS.items()]
    failed = {f"{r.ig_user_id}/{name}": why for r in results for name, why in r.failed.items()}
    return dg.MaterializeResult(metadata={
        "competitors_captured": dg.MetadataValue.int(sum(len(r.captured) for r in results)),
        "competitors_failed": dg.MetadataValue.json(failed),
        "accounts_not_captured": dg.MetadataValue.json(
            {**problems, **{r.ig_user_id: r.self_reason for r in results if not r.self_captured and r.self_reason}}),
        "rows_written": dg.MetadataValue.int(sum(r.rows_written for r in results)),
        "api_calls": dg.MetadataValue.int(sum(r.api_calls for r in results)),
        "duration_seconds": dg.MetadataValue.float(float(round(time.monotonic() - started, 3))),
    }, check_results=checks)


def _check_result(name: str, result: CheckResult) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(check_name=name, asset_key="competitor_snapshots", passed=result.passed,
                               severity=dg.AssetCheckSeverity(result.severity.value),
                               description=result.description, metadata=result.metadata)


@dg.asset(
    deps=["competitor_snapshots"],
    group_name="analytics",
    kinds={"postgres", "pandas"},
    io_manager_key=IO_MANAGER_KEY,
    **table_asset("competitor_benchmarks", write_metadata("replace", "week_start", ("computed_at",))),
    freshness_policy=COMPETITORS,
    description=(
        f"Each account against its active competitors, per week (Monday, UTC): followers, follower growth, posts "
        f"by format, likes + comments per post and per follower, and the ranks (1 = best). From public fields "
        f"only, the account's own row too, so the comparison is like for like. The last {BENCHMARK_WEEKS} weeks "
        f"are recomputed every run."
    ),
)
def competitor_benchmarks(database: AnalyticsDatabase) -> dg.Output:
    now = clock.now()
    last_week = benchmarks.week_start(now.date())
    first_week = last_week - timedelta(weeks=BENCHMARK_WEEKS - 1)
    with database.engine().connect() as conn:
        rows = compute_benchmarks(conn, first_week, last_week, now)
    start = datetime(first_week.year, first_week.month, first_week.day, tzinfo=timezone.utc)
    return dg.Output(Rows(rows, dg.TimeWindow(start, start + timedelta(weeks=BENCHMARK_WEEKS))),
                     metadata={"rows": dg.MetadataValue.int(len(rows))})


def compute_benchmarks(conn: sa.Connection, first_week: date, last_week: date, now: datetime):
    profiles = benchmarks.read_profiles(conn, last_week + timedelta(days=6))
    posts = benchmarks.read_posts(conn, first_week, last_week)
    return benchmarks.benchmark_rows(profiles, posts, first_week, last_week, now)


competitors_job = dg.define_asset_job(
    "competitors_job", selection=dg.AssetSelection.assets(competitor_snapshots, competitor_benchmarks),
    partitions_def=snapshot_daily_partitions,
    description="Yesterday's public picture of every account's competitors, then the weekly benchmarks.",
)


@dg.schedule(job=competitors_job, cron_schedule="40 2 * * *", execution_timezone="UTC",
             default_status=SCHEDULE_STATUS)
def daily_competitor_snapshots(context: dg.ScheduleEvaluationContext):
    # After the 02:00 account sync and before the 03:00 reports, which show the competitors section.
    day = (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=f"competitors-{day}", partition_key=day)
