"""The Dagster wiring of the data-quality checks: which rule of ``ig_analytics.quality`` checks which asset, in
which partitions, with which severity and blocking flag (docs/operations.md, "Checks and alerts").

Where they run:
- Checks with ``partitions_def`` equal to their asset's run inside the asset's own job, for the same partition(s)
  (Dagster 1.13 partitioned asset checks); a partition-range run records one evaluation per partition
  (``check_ranges.py``).
- Unpartitioned checks (freshness, recent completeness, column schema, tokens) run in those jobs too (an asset
  selection includes every check of its assets) AND in ``data_quality_job`` every hour at :40, so they are
  evaluated even when ingestion stops.

``blocking=True`` only where a failure would make downstream numbers wrong (negative counts, impossible dates,
duplicates, rates inconsistent with their inputs): in a run, the downstream assets then do not run and the run
fails (one alert).
"""

# No `from __future__ import annotations` here: Dagster reads the check function's context annotation.
import warnings
from dataclasses import dataclass
from typing import Sequence

import dagster as dg
from sqlalchemy.engine import Connection

from ig_analytics.defs.automation import SCHEDULE_STATUS
from ig_analytics.constants import YOUNG_POST_HOURS
from ig_analytics.defs import ingestion_assets
from ig_analytics.defs.check_ranges import Evaluate, Scope, evaluate_per_partition, latest_materializations, scope_for
from ig_analytics.defs.partitions import daily_partitions, hourly_partitions, weekly_partitions
from ig_analytics.defs.resources import AnalyticsDatabase
from ig_analytics.defs.shard_checks import shard_checks
from ig_analytics.quality import accounts, analytics, media, schema
from ig_analytics.quality import account_insights as insights
from ig_analytics.quality.result import CheckResult


@dataclass(frozen=True)
class CheckDef:
    asset: str
    name: str
    evaluate: Evaluate
    description: str
    blocking: bool = False

    @property
    def key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(dg.AssetKey(self.asset), self.name)


def _severity(result: CheckResult) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity(result.severity.value)


# One multi-asset check op per stage of an asset job: the checks of a stage share a step and a database
# connection. Steps run in the job's process (in-process executor), but each still costs its own events, logs and
# a line in the run view; a step per check would add a dozen to every hourly run.
def check_group(name: str, partitions_def, checks: Sequence[CheckDef]) -> dg.AssetChecksDefinition:
    with warnings.catch_warnings():  # partitioned check specs are a 1.13 preview: the warning is known
        warnings.simplefilter("ignore", dg.PreviewWarning)
        specs = [dg.AssetCheckSpec(c.name, asset=c.asset, blocking=c.blocking, description=c.description,
                                   partitions_def=partitions_def) for c in checks]
    output_names = {spec.key: spec.get_python_identifier() for spec in specs}

    @dg.multi_asset_check(name=name, specs=specs, can_subset=True,
                          description="; ".join(f"{c.name}: {c.description}" for c in checks))
    def _group(context: dg.AssetCheckExecutionContext, database: AnalyticsDatabase):
        scope = scope_for(context, partitions_def)
        selected = context.selected_asset_check_keys
        range_keys = (list(context.partition_keys)
                      if partitions_def is not None and len(context.partition_keys) > 1 else None)
        with database.engine().connect() as conn:
            for c in checks:
                if c.key not in selected:
                    continue
                if range_keys is None:
                    r = c.evaluate(conn, scope)
                    yield dg.AssetCheckResult(asset_key=c.key.asset_key, check_name=c.name, passed=r.passed,
                                              severity=_severity(r), metadata=r.metadata, description=r.description)
                    continue
                targets = latest_materializations(context.instance, c.key.asset_key, range_keys)
                for key, r in evaluate_per_partition(conn, c.evaluate, scope, partitions_def, range_keys):
                    yield dg.AssetCheckEvaluation(
                        asset_key=c.key.asset_key, check_name=c.name, passed=r.passed, severity=_severity(r),
                        metadata=r.metadata, description=r.description, blocking=c.blocking, partition=key,
                        target_materialization_data=targets.get(key))
                yield dg.Output(None, output_name=output_names[c.key])

    return _group


def expected_columns(asset: str) -> dict[str, str]:
    """Column name -> type, from the ``dagster/column_schema`` of the ingestion asset's definition metadata."""
    key = dg.AssetKey(asset)
    for assets_def in (ingestion_assets.account_insights_daily, ingestion_assets.media_and_snapshots):
        spec = assets_def.specs_by_key.get(key)
        if spec is not None:
            return {c.name: c.type for c in spec.metadata["dagster/column_schema"].columns}
    raise KeyError(f"no dagster/column_schema metadata for {asset}")


def _schema_check(asset: str, table: str) -> CheckDef:
    def evaluate(conn: Connection, scope: Scope) -> CheckResult:
        return schema.column_schema_diff(conn, table, expected_columns(asset))

    return CheckDef(asset, "column_schema_unchanged", evaluate,
                    f"ERROR: every column of {table} in the asset's dagster/column_schema exists with its type "
                    "(extra columns are allowed and listed).")


CHECKS: dict[str, CheckDef] = {f"{c.asset}:{c.name}": c for c in [
    # account_insights_daily, per daily partition (or range)
    CheckDef("account_insights_daily", "account_insights_valid",
             lambda conn, s: insights.account_insights_validity(conn, s.first_day, s.last_day, s.now),
             "ERROR, blocking: no negative counts, no future dates, one row per account and day.", blocking=True),
    CheckDef("account_insights_daily", "account_insights_reach_within_views",
             lambda conn, s: insights.account_insights_reach_views(conn, s.first_day, s.last_day),
             "WARN: daily reach is not above views (impressions without views)."),
    CheckDef("account_insights_daily", "account_insights_complete",
             lambda conn, s: insights.account_insights_completeness(conn, s.first_day, s.last_day,
                                                                    s.accounts or None),
             "ERROR: every active account has each day, or a recorded failure reason."),
    # account_insights_daily, unpartitioned
    CheckDef("account_insights_daily", "account_insights_fresh",
             lambda conn, s: insights.account_insights_freshness(conn, s.now),
             "ERROR: yesterday's rows exist for every active account once 06:00 UTC has passed (or a failure)."),
    _schema_check("account_insights_daily", "instagram.account_insights_daily"),
    # media and snapshots, per hourly partition
    CheckDef("media", "media_valid", lambda conn, s: media.media_validity(conn, s.end, s.now),
             "ERROR, blocking: posts of the window have no future publication time and no negative counts.",
             blocking=True),
    CheckDef("media_insights_snapshots", "snapshots_valid",
             lambda conn, s: media.snapshots_validity(conn, s.start, s.end, s.now),
             "ERROR, blocking: no negative counts, no future timestamps, no duplicate post x slot.", blocking=True),
    CheckDef("media_insights_snapshots", "snapshots_reach_within_views",
             lambda conn, s: media.snapshots_reach_views(conn, s.start, s.end),
             "WARN: a post's reach is not above its views (impressions without views)."),
    CheckDef("media_insights_snapshots", "snapshots_counters_monotonic",
             lambda conn, s: media.snapshots_monotonic(conn, s.start, s.end),
             "WARN: lifetime counters never drop between successive snapshots by more than 2 % or 2."),
    # media and snapshots, unpartitioned
    CheckDef("media_insights_snapshots", "snapshots_recent_complete",
             lambda conn, s: media.snapshots_recent_completeness(conn, s.now),
             "ERROR: every active account with recent posts has snapshots from the last 26 h, or a failure."),
    CheckDef("media_insights_snapshots", "snapshots_fresh", lambda conn, s: media.snapshots_freshness(conn, s.now),
             f"ERROR: posts younger than {YOUNG_POST_HOURS} h have a snapshot at most 2 h old (or a recorded "
             "failure)."),
    _schema_check("media", "instagram.media"),
    _schema_check("media_insights_snapshots", "instagram.media_insights_snapshots"),
    # analytics
    CheckDef("media_engagement", "media_engagement_valid",
             lambda conn, s: analytics.media_engagement_validity(conn, s.start, s.end),
             "ERROR, blocking: rates never negative, NULL without reach, equal to engagement / reach * 100.",
             blocking=True),
    CheckDef("media_engagement", "media_engagement_rates_plausible",
             lambda conn, s: analytics.media_engagement_plausibility(conn, s.start, s.end),
             "WARN: like_rate and save_rate (one per account) are at most 100."),
    CheckDef("trending_posts", "trending_posts_valid",
             lambda conn, s: analytics.trending_posts_validity(conn, s.start, s.end),
             "ERROR, blocking: ranks from 1, finite scores, no post twice in a list.", blocking=True),
    CheckDef("account_engagement_daily", "account_engagement_daily_valid",
             lambda conn, s: analytics.account_engagement_daily_validity(conn, s.now),
             "ERROR, blocking: no negative values, future days or rate without reach.", blocking=True),
    CheckDef("best_posting_times", "best_posting_times_valid",
             lambda conn, s: analytics.best_posting_times_validity(conn),
             "ERROR: no negative or NaN values."),
    CheckDef("performance_reports", "performance_reports_valid",
             lambda conn, s: analytics.performance_reports_validity(conn, "rolling_7d", s.first_day, s.last_day, s.now),
             "ERROR: reports of the day have a sane period and every contract field."),
    CheckDef("weekly_performance_reports", "weekly_performance_reports_valid",
             lambda conn, s: analytics.performance_reports_validity(conn, "weekly", s.first_day, s.last_day, s.now),
             "ERROR: weekly reports have a sane period and every contract field."),
    # accounts
    CheckDef("accounts", "accounts_tokens_valid", lambda conn, s: accounts.accounts_tokens(conn, s.now),
             "ERROR: an active account has no token or an expired one, or an account needs re-authentication; "
             "WARN: a token expires within 7 days."),
]}


def _pick(*names: str) -> list[CheckDef]:
    return [CHECKS[n] for n in names]


account_insights_checks = check_group("account_insights_checks", daily_partitions, _pick(
    "account_insights_daily:account_insights_valid", "account_insights_daily:account_insights_reach_within_views",
    "account_insights_daily:account_insights_complete"))
account_insights_recent_checks = check_group("account_insights_recent_checks", None, _pick(
    "account_insights_daily:account_insights_fresh", "account_insights_daily:column_schema_unchanged"))
ingestion_checks = check_group("media_ingestion_checks", hourly_partitions, _pick(
    "media:media_valid", "media_insights_snapshots:snapshots_valid",
    "media_insights_snapshots:snapshots_reach_within_views", "media_insights_snapshots:snapshots_counters_monotonic"))
ingestion_recent_checks = check_group("media_ingestion_recent_checks", None, _pick(
    "media_insights_snapshots:snapshots_recent_complete", "media_insights_snapshots:snapshots_fresh",
    "media:column_schema_unchanged", "media_insights_snapshots:column_schema_unchanged"))
media_engagement_checks = check_group("media_engagement_checks", hourly_partitions, _pick(
    "media_engagement:media_engagement_valid", "media_engagement:media_engagement_rates_plausible"))
trending_posts_checks = check_group("trending_posts_checks", hourly_partitions, _pick(
    "trending_posts:trending_posts_valid"))
analytics_checks = check_group("analytics_checks", None, _pick(
    "account_engagement_daily:account_engagement_daily_valid", "best_posting_times:best_posting_times_valid"))
performance_reports_checks = check_group("performance_reports_checks", daily_partitions, _pick(
    "performance_reports:performance_reports_valid"))
weekly_reports_checks = check_group("weekly_reports_checks", weekly_partitions, _pick(
    "weekly_performance_reports:weekly_performance_reports_valid"))
accounts_checks = check_group("accounts_checks", None, _pick("accounts:accounts_tokens_valid"))

unpartitioned_checks = [account_insights_recent_checks, ingestion_recent_checks, analytics_checks, accounts_checks]
asset_checks = [
    account_insights_checks, ingestion_checks, media_engagement_checks, trending_posts_checks,
    performance_reports_checks, weekly_reports_checks, *unpartitioned_checks,
    *shard_checks,  # every_shard_captured, per hour / day (defs/shard_checks.py)
]

# The unpartitioned checks (freshness, recent completeness, tokens, column schema) also run on their own every
# hour, so they fail when ingestion stops altogether. Custom SQL rather than Dagster's freshness-check factories:
# those read materialization events (an hourly run that captured nothing still "materializes"), and as checks of
# the ingestion assets they would add a step to every ingestion run.
data_quality_job = dg.define_asset_job(
    "data_quality_job",
    # + the observation of the accounts table (its data version shows when accounts or tokens changed)
    selection=dg.AssetSelection.checks(*unpartitioned_checks) | dg.AssetSelection.assets("accounts"),
    description="Observes the accounts table, then runs the freshness, recent completeness, token expiry and "
                "column-schema checks (materializes nothing).",
)
data_quality_schedule = dg.ScheduleDefinition(
    name="hourly_data_quality", job=data_quality_job, cron_schedule="40 * * * *", execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
)

check_jobs = [data_quality_job]
check_schedules = [data_quality_schedule]
