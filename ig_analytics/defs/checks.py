"""Data-quality checks on every table (docs/operations.md, "Checks and alerts", explains each one and what to do).

Where they run:
- Checks with ``partitions_def`` equal to their asset's run inside the asset's own job, for the same partition(s)
  (Dagster 1.13 partitioned asset checks); a partition-range run records one evaluation per partition.
- Unpartitioned checks (freshness, recent completeness, column schema, tokens) run in those jobs too (an asset
  selection includes every check of its assets) AND in ``data_quality_job`` every hour at :40, so they are
  evaluated even when ingestion stops. The factory freshness checks have their own sensor.

Severity: ERROR when a number users read is wrong or missing without explanation; WARN when the data is
suspicious but is what Meta reports (revisions, estimated reach). ``blocking=True`` only where a failure would make
downstream numbers wrong (negative counts, impossible dates, duplicates, rates inconsistent with their inputs): in a
run, the downstream assets then do not run and the run fails (one alert).

Rules on rates (docs/product.md: rates are percentages): every rate must be >= 0, NULL exactly when its
denominator is NULL or 0, and equal to its formula. There is no upper bound on ``engagement_rate_*``,
``comment_rate`` and ``share_rate``: they count actions (one account can comment or share many times, and
non-followers engage), so 100 is exceeded legitimately. ``like_rate`` and ``save_rate`` are one action per account,
so above 100 means Meta's reach estimate is low: a WARN, not an ERROR.
"""


import math
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator, Sequence

import dagster as dg
import sqlalchemy as sa
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluation,
    AssetCheckEvaluationTargetMaterializationData,
)
from sqlalchemy.engine import Connection

from ig_analytics.defs.partitions import daily_partitions, hourly_partitions, weekly_partitions
from ig_analytics.defs.resources import AnalyticsDatabase

ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN

# Tunables (documented in docs/operations.md).
ACCOUNT_INSIGHTS_DEADLINE_UTC = time(6, 0)  # yesterday's account insights must be in by then
SNAPSHOT_MAX_AGE = timedelta(hours=2)  # young posts (hourly captures) must have a snapshot at most this old
YOUNG_POST_HOURS = 48  # MediaSyncConfig.young_hours: posts captured every hour
RECENT_SNAPSHOT_WINDOW = timedelta(hours=26)  # every post of 30 days is captured daily (02:10) + slack
MEDIA_WINDOW_DAYS = 30
COUNTER_DROP_RELATIVE = 0.02  # Meta revises lifetime counters: a drop within 2 % ...
COUNTER_DROP_ABSOLUTE = 2  # ... or within 2 units (an unlike, a deleted comment on a small post) is tolerated
TOKEN_EXPIRY_WARN = timedelta(days=7)
SAMPLE_ROWS = 5

ACCOUNT_COUNT_COLUMNS = (
    "reach", "views", "impressions", "follower_count", "followers_total", "profile_views", "website_clicks",
    "accounts_engaged", "total_interactions", "likes", "comments", "saves", "shares", "replies", "reposts",
    "profile_links_taps",
)  # follows_and_unfollows is left out: Meta documents it as follows and unfollows, a net value may be negative
SNAPSHOT_COUNT_COLUMNS = (
    "reach", "views", "impressions", "likes", "comments", "saved", "shares", "total_interactions", "video_views",
    "plays", "follows", "profile_visits", "replies", "reposts", "avg_watch_time_ms", "total_watch_time_ms",
)
# Lifetime counters that should only grow (reach and views included: Meta revises them, hence the tolerance).
MONOTONIC_COLUMNS = ("reach", "views", "impressions", "likes", "comments", "saved", "shares", "total_interactions",
                     "video_views", "plays")
REPORT_KEYS = ("period", "account_metrics", "content_metrics", "engagement", "trends", "best_posting_times")


# ---- rule evaluation -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A violation query: ``SELECT {columns} FROM {from_where}`` lists the offending rows."""

    name: str
    from_where: str
    columns: str = "*"
    severity: dg.AssetCheckSeverity = ERROR


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def evaluate_rules(conn: Connection, rules: Sequence[Rule], params: dict, *, description: str,
                   extra_metadata: dict | None = None) -> dg.AssetCheckResult:
    """Count each rule's violations; fail with the worst severity among the violated rules."""
    counts: dict[str, int] = {}
    samples: dict[str, list] = {}
    worst: dg.AssetCheckSeverity | None = None
    for rule in rules:
        n = conn.execute(sa.text(f"SELECT count(*) FROM {rule.from_where}"), params).scalar_one()
        counts[rule.name] = int(n)
        if n:
            rows = conn.execute(sa.text(f"SELECT {rule.columns} FROM {rule.from_where} LIMIT {SAMPLE_ROWS}"), params)
            samples[rule.name] = [{k: _jsonable(v) for k, v in row._mapping.items()} for row in rows]
            if worst is None or rule.severity == ERROR:
                worst = rule.severity
    metadata = {
        "violations": dg.MetadataValue.json(counts),
        "total_violations": dg.MetadataValue.int(sum(counts.values())),
        **{k: dg.MetadataValue.text(str(v)) if isinstance(v, (date, datetime)) else v
           for k, v in (extra_metadata or {}).items()},
    }
    if samples:
        metadata["samples"] = dg.MetadataValue.json(samples)
    return dg.AssetCheckResult(passed=worst is None, severity=worst or ERROR, metadata=metadata,
                               description=description)


def _any_negative(columns: Iterable[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return "(" + " OR ".join(f"{prefix}{c} < 0" for c in columns) + ")"


def _now() -> datetime:
    return datetime.now(timezone.utc)


# ---- account_insights_daily ------------------------------------------------------------------------------


def account_insights_validity(conn: Connection, first_day: date, last_day: date) -> dg.AssetCheckResult:
    scope = "instagram.account_insights_daily WHERE date BETWEEN :first AND :last"
    rules = [
        Rule("negative_counts", f"{scope} AND {_any_negative(ACCOUNT_COUNT_COLUMNS)}",
             "ig_user_id, date, " + ", ".join(ACCOUNT_COUNT_COLUMNS)),
        # Dates are UTC-ish days (end_time minus a day); one day of slack for timezones ahead of UTC.
        Rule("future_dates", f"{scope} AND date > (now() AT TIME ZONE 'UTC')::date + 1", "ig_user_id, date"),
        Rule("duplicate_keys",
             f"(SELECT ig_user_id, date, count(*) AS n FROM {scope} GROUP BY 1, 2 HAVING count(*) > 1) d"),
    ]
    return evaluate_rules(conn, rules, {"first": first_day, "last": last_day},
                          description="No negative counts, no future dates, one row per account and day.",
                          extra_metadata={"first_day": first_day.isoformat(), "last_day": last_day.isoformat()})


def account_insights_reach_views(conn: Connection, first_day: date, last_day: date) -> dg.AssetCheckResult:
    rules = [Rule(
        "reach_above_views",
        "instagram.account_insights_daily WHERE date BETWEEN :first AND :last"
        " AND reach > COALESCE(views, impressions)",
        "ig_user_id, date, reach, views, impressions", severity=WARN,
    )]
    return evaluate_rules(conn, rules, {"first": first_day, "last": last_day},
                          description="Daily reach (unique accounts) is not above views (or impressions on "
                                      "API versions without views) where both are reported.")


def _covers(partition_key: str | None, day: date) -> bool:
    if not partition_key:
        return False
    first, _, last = partition_key.partition("...")
    try:
        return date.fromisoformat(first[:10]) <= day <= date.fromisoformat((last or first)[:10])
    except ValueError:
        return False


def _failure_reasons(conn: Connection, sync_type: str, ig_user_ids: Sequence[str], since: datetime | None = None):
    params: dict[str, Any] = {"t": sync_type, "ids": list(ig_user_ids)}
    where = "sync_type = :t AND ig_user_id = ANY(:ids)"
    if since is not None:
        where += " AND started_at >= :since"
        params["since"] = since
    return conn.execute(
        sa.text(f"SELECT ig_user_id, partition_key, status, error, started_at FROM instagram.sync_runs"
                f" WHERE {where} ORDER BY started_at DESC"), params
    ).all()


def _active_accounts(conn: Connection, only: Sequence[str] | None = None) -> list[str]:
    ids = [r[0] for r in conn.execute(sa.text(
        "SELECT ig_user_id FROM instagram.accounts WHERE status = 'active' ORDER BY ig_user_id"))]
    return [i for i in ids if i in set(only)] if only else ids


def account_insights_completeness(conn: Connection, first_day: date, last_day: date,
                                  only_accounts: Sequence[str] | None = None,
                                  check_description: str | None = None) -> dg.AssetCheckResult:
    """Every active account has a row for every day, or its newest sync covering that day failed (the reason)."""
    accounts = _active_accounts(conn, only_accounts)
    present = {
        (r[0], r[1]) for r in conn.execute(sa.text(
            "SELECT ig_user_id, date FROM instagram.account_insights_daily"
            " WHERE date BETWEEN :first AND :last AND ig_user_id = ANY(:ids)"),
            {"first": first_day, "last": last_day, "ids": accounts})
    }
    runs = _failure_reasons(conn, "account", accounts) if accounts else []
    explained: dict[str, dict[str, str]] = {}
    unexplained: dict[str, list[str]] = {}
    day = first_day
    while day <= last_day:
        for acc in accounts:
            if (acc, day) in present:
                continue
            newest = next((r for r in runs if r.ig_user_id == acc and _covers(r.partition_key, day)), None)
            if newest is not None and newest.status == "failed":
                explained.setdefault(acc, {})[day.isoformat()] = (newest.error or "failed")[:300]
            else:
                unexplained.setdefault(acc, []).append(day.isoformat())
        day += timedelta(days=1)
    return dg.AssetCheckResult(
        passed=not unexplained,
        severity=ERROR,
        metadata={
            "accounts_checked": dg.MetadataValue.int(len(accounts)),
            "missing_without_reason": dg.MetadataValue.json(unexplained),
            "missing_with_failure_reason": dg.MetadataValue.json(explained),
            "first_day": first_day.isoformat(),
            "last_day": last_day.isoformat(),
        },
        description=check_description or (
            "Every active account has a row for each day, or a failed sync of that day is recorded in "
            "instagram.sync_runs (the reason is listed)."),
    )


def expected_account_day(now: datetime) -> date:
    """The newest day that must be present: yesterday once 06:00 UTC has passed, else the day before."""
    today = now.astimezone(timezone.utc).date()
    return today - timedelta(days=1 if now.astimezone(timezone.utc).time() >= ACCOUNT_INSIGHTS_DEADLINE_UTC else 2)


def account_insights_freshness(conn: Connection, now: datetime) -> dg.AssetCheckResult:
    day = expected_account_day(now)
    return account_insights_completeness(
        conn, day, day,
        check_description=(f"Yesterday's account insights are present by {ACCOUNT_INSIGHTS_DEADLINE_UTC:%H:%M} UTC "
                           f"for every active account (or a failed sync is recorded); checked day {day}."),
    )


# ---- media and snapshots ---------------------------------------------------------------------------------


def media_validity(conn: Connection, window_end: datetime) -> dg.AssetCheckResult:
    scope = "instagram.media WHERE published_at >= :since"
    rules = [
        Rule("future_published_at", f"{scope} AND published_at > now() + interval '1 hour'",
             "media_id, ig_user_id, published_at"),
        Rule("negative_counts", f"{scope} AND (like_count < 0 OR comments_count < 0)",
             "media_id, like_count, comments_count"),
    ]
    return evaluate_rules(conn, rules, {"since": window_end - timedelta(days=MEDIA_WINDOW_DAYS + 1)},
                          description="Posts of the sync window: no publication in the future, no negative counts.")


def _snapshot_scope() -> str:
    return "instagram.media_insights_snapshots s WHERE s.captured_at >= :start AND s.captured_at < :end"


def snapshots_validity(conn: Connection, start: datetime, end: datetime) -> dg.AssetCheckResult:
    scope = _snapshot_scope()
    rules = [
        Rule("negative_counts", f"{scope} AND {_any_negative(SNAPSHOT_COUNT_COLUMNS, 's')}",
             "s.media_id, s.captured_at, " + ", ".join(f"s.{c}" for c in SNAPSHOT_COUNT_COLUMNS[:9])),
        Rule("future_timestamps",
             f"{scope} AND (s.captured_at > now() + interval '1 hour' OR s.fetched_at > now() + interval '5 minutes')",
             "s.media_id, s.captured_at, s.fetched_at"),
        Rule("duplicate_keys",
             f"(SELECT s.media_id, s.captured_at, count(*) AS n FROM {scope} GROUP BY 1, 2 HAVING count(*) > 1) d"),
    ]
    return evaluate_rules(conn, rules, {"start": start, "end": end},
                          description="Snapshots of the slot(s): no negative counts, no future timestamps, one row "
                                      "per post and capture slot.")


def snapshots_reach_views(conn: Connection, start: datetime, end: datetime) -> dg.AssetCheckResult:
    rules = [Rule("reach_above_views", f"{_snapshot_scope()} AND s.reach > COALESCE(s.views, s.impressions)",
                  "s.media_id, s.captured_at, s.reach, s.views, s.impressions", severity=WARN)]
    return evaluate_rules(conn, rules, {"start": start, "end": end},
                          description="A post's reach is not above its views (impressions on API versions "
                                      "without views) where both are reported.")


def snapshots_monotonic(conn: Connection, start: datetime, end: datetime) -> dg.AssetCheckResult:
    drops = " OR ".join(
        f"s.{c} < p.{c} - GREATEST(:abs, p.{c} * :rel)" for c in MONOTONIC_COLUMNS
    )
    from_where = (
        "instagram.media_insights_snapshots s"
        " JOIN LATERAL (SELECT * FROM instagram.media_insights_snapshots p WHERE p.media_id = s.media_id"
        "  AND p.captured_at < s.captured_at ORDER BY p.captured_at DESC LIMIT 1) p ON true"
        f" WHERE s.captured_at >= :start AND s.captured_at < :end AND ({drops})"
    )
    columns = "s.media_id, p.captured_at AS previous_at, s.captured_at, " + ", ".join(
        f"p.{c} AS previous_{c}, s.{c}" for c in ("reach", "views", "likes", "comments", "saved", "shares"))
    rules = [Rule("lifetime_counter_decreased", from_where, columns, severity=WARN)]
    return evaluate_rules(
        conn, rules, {"start": start, "end": end, "abs": COUNTER_DROP_ABSOLUTE, "rel": COUNTER_DROP_RELATIVE},
        description=(f"Lifetime counters never drop between successive snapshots of a post by more than "
                     f"{COUNTER_DROP_RELATIVE:.0%} or {COUNTER_DROP_ABSOLUTE} (Meta revises its numbers)."),
    )


def _accounts_with_recent_posts(conn: Connection, now: datetime, min_age: timedelta, max_age: timedelta) -> list[str]:
    return [r[0] for r in conn.execute(sa.text(
        "SELECT DISTINCT m.ig_user_id FROM instagram.media m JOIN instagram.accounts a USING (ig_user_id)"
        " WHERE a.status = 'active' AND m.insights_unavailable_reason IS NULL"
        " AND m.published_at <= :newest AND m.published_at > :oldest ORDER BY 1"),
        {"newest": now - min_age, "oldest": now - max_age})]


def _reasons_since(conn: Connection, sync_type: str, accounts: Sequence[str], since: datetime) -> dict[str, str]:
    """The newest failed (or partial, with details) sync of each account since ``since``."""
    reasons: dict[str, str] = {}
    for r in _failure_reasons(conn, sync_type, accounts, since):
        if r.ig_user_id not in reasons and r.status == "failed":
            reasons[r.ig_user_id] = (r.error or "failed")[:300]
    return reasons


def snapshots_recent_completeness(conn: Connection, now: datetime) -> dg.AssetCheckResult:
    since = now - RECENT_SNAPSHOT_WINDOW
    accounts = _accounts_with_recent_posts(conn, now, timedelta(hours=1), timedelta(days=MEDIA_WINDOW_DAYS))
    with_snapshots = {r[0] for r in conn.execute(sa.text(
        "SELECT DISTINCT ig_user_id FROM instagram.media_insights_snapshots WHERE captured_at >= :since"
        " AND ig_user_id = ANY(:ids)"), {"since": since, "ids": accounts})}
    lacking = [a for a in accounts if a not in with_snapshots]
    reasons = _reasons_since(conn, "media", lacking, since) if lacking else {}
    unexplained = [a for a in lacking if a not in reasons]
    return dg.AssetCheckResult(
        passed=not unexplained, severity=ERROR,
        metadata={"accounts_with_recent_posts": dg.MetadataValue.int(len(accounts)),
                  "without_snapshots_no_reason": dg.MetadataValue.json(unexplained),
                  "without_snapshots_failure_reason": dg.MetadataValue.json(reasons)},
        description=(f"Every active account with posts from the last {MEDIA_WINDOW_DAYS} days has snapshots "
                     f"captured in the last {RECENT_SNAPSHOT_WINDOW.total_seconds() / 3600:.0f} h, or a failed "
                     "media sync recorded in that time."),
    )


def snapshots_freshness(conn: Connection, now: datetime) -> dg.AssetCheckResult:
    """Young posts (captured hourly) have a snapshot no older than SNAPSHOT_MAX_AGE."""
    rows = conn.execute(sa.text(
        "SELECT m.ig_user_id, m.media_id, m.published_at,"
        "  (SELECT max(s.captured_at) FROM instagram.media_insights_snapshots s WHERE s.media_id = m.media_id) AS newest"
        " FROM instagram.media m JOIN instagram.accounts a USING (ig_user_id)"
        " WHERE a.status = 'active' AND m.insights_unavailable_reason IS NULL"
        " AND m.published_at > :young AND m.published_at <= :settled"),
        {"young": now - timedelta(hours=YOUNG_POST_HOURS), "settled": now - SNAPSHOT_MAX_AGE}).all()
    stale = [r for r in rows if r.newest is None or now - r.newest > SNAPSHOT_MAX_AGE]
    reasons = _reasons_since(conn, "media", sorted({r.ig_user_id for r in stale}), now - SNAPSHOT_MAX_AGE)
    unexplained = [r for r in stale if r.ig_user_id not in reasons]
    sample = [{"media_id": r.media_id, "ig_user_id": r.ig_user_id,
               "newest_capture": r.newest.isoformat() if r.newest else None} for r in unexplained[:SAMPLE_ROWS]]
    return dg.AssetCheckResult(
        passed=not unexplained, severity=ERROR,
        metadata={"young_posts": dg.MetadataValue.int(len(rows)),
                  "stale_posts": dg.MetadataValue.int(len(unexplained)),
                  "stale_sample": dg.MetadataValue.json(sample),
                  "stale_with_failure_reason": dg.MetadataValue.json(reasons)},
        description=(f"Posts younger than {YOUNG_POST_HOURS} h have a snapshot at most "
                     f"{SNAPSHOT_MAX_AGE.total_seconds() / 3600:.0f} h old (or a failed media sync is recorded)."),
    )


# ---- analytics tables ------------------------------------------------------------------------------------


def _rate_rules(alias: str = "e") -> list[Rule]:
    rates = ("engagement_rate_reach", "engagement_rate_views", "engagement_rate_followers", "like_rate",
             "comment_rate", "save_rate", "share_rate")
    return [
        Rule("negative_values", f"__SCOPE__ AND ({alias}.engagement < 0 OR "
             + " OR ".join(f"{alias}.{r} < 0 OR {alias}.{r} = 'NaN'::float8" for r in rates) + ")",
             f"{alias}.media_id, {alias}.engagement, " + ", ".join(f"{alias}.{r}" for r in rates)),
        Rule("rate_without_denominator",
             f"__SCOPE__ AND ({alias}.engagement_rate_reach IS NOT NULL OR {alias}.like_rate IS NOT NULL)"
             f" AND COALESCE({alias}.reach, 0) = 0",
             f"{alias}.media_id, {alias}.reach, {alias}.engagement_rate_reach, {alias}.like_rate"),
        Rule("rate_formula_mismatch",
             f"__SCOPE__ AND {alias}.reach > 0 AND {alias}.engagement IS NOT NULL AND"
             f" abs(COALESCE({alias}.engagement_rate_reach, -1) - {alias}.engagement * 100.0 / {alias}.reach)"
             f" > 1e-6 * GREATEST(1, abs({alias}.engagement * 100.0 / {alias}.reach))",
             f"{alias}.media_id, {alias}.engagement, {alias}.reach, {alias}.engagement_rate_reach"),
    ]


_ENGAGEMENT_SCOPE = (
    "instagram.media_engagement e WHERE e.media_id IN (SELECT media_id FROM instagram.media_insights_snapshots"
    " WHERE captured_at >= :start AND captured_at < :end)"
)


def media_engagement_validity(conn: Connection, start: datetime, end: datetime) -> dg.AssetCheckResult:
    rules = [Rule(r.name, r.from_where.replace("__SCOPE__", _ENGAGEMENT_SCOPE), r.columns, r.severity)
             for r in _rate_rules()]
    return evaluate_rules(conn, rules, {"start": start, "end": end},
                          description="Engagement and rates of the posts captured in the slot(s): never negative, "
                                      "NULL when reach is NULL or 0, engagement_rate_reach = engagement / reach * 100.")


def media_engagement_plausibility(conn: Connection, start: datetime, end: datetime) -> dg.AssetCheckResult:
    rules = [Rule("one_per_account_rate_above_100",
                  f"{_ENGAGEMENT_SCOPE} AND (e.like_rate > 100 OR e.save_rate > 100)",
                  "e.media_id, e.reach, e.like_rate, e.save_rate", severity=WARN)]
    return evaluate_rules(conn, rules, {"start": start, "end": end},
                          description="like_rate and save_rate (one per account) are at most 100; above means "
                                      "Meta's reach estimate is low. Engagement, comment and share rates may "
                                      "exceed 100 legitimately.")


def account_engagement_daily_validity(conn: Connection, now: datetime) -> dg.AssetCheckResult:
    scope = "instagram.account_engagement_daily WHERE date >= :since"
    rules = [
        Rule("negative_values",
             f"{scope} AND (posts < 0 OR engagement < 0 OR reach < 0 OR engagement_rate_reach < 0"
             " OR engagement_rate_reach = 'NaN'::float8)",
             "ig_user_id, date, posts, engagement, reach, engagement_rate_reach"),
        Rule("future_dates", f"{scope} AND date > (now() AT TIME ZONE 'UTC')::date + 1", "ig_user_id, date"),
        Rule("rate_without_reach", f"{scope} AND engagement_rate_reach IS NOT NULL AND COALESCE(reach, 0) = 0",
             "ig_user_id, date, reach, engagement_rate_reach"),
    ]
    return evaluate_rules(conn, rules, {"since": (now - timedelta(days=40)).date()},
                          description="The recomputed window (40 days): no negative values, no future days, "
                                      "no rate without reach.")


def trending_posts_validity(conn: Connection, start: datetime, end: datetime) -> dg.AssetCheckResult:
    scope = "instagram.trending_posts WHERE as_of >= :start AND as_of < :end"
    rules = [
        Rule("rank_below_1", f"{scope} AND rank < 1", "ig_user_id, as_of, rank, media_id"),
        Rule("score_not_finite", f"{scope} AND score IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)",
             "ig_user_id, as_of, media_id, score"),
        Rule("duplicate_posts_in_list",
             f"(SELECT ig_user_id, as_of, media_id, count(*) AS n FROM {scope} GROUP BY 1, 2, 3 HAVING count(*) > 1) d"),
    ]
    return evaluate_rules(conn, rules, {"start": start, "end": end},
                          description="Each trending list: ranks from 1, finite scores, a post at most once.")


def best_posting_times_validity(conn: Connection) -> dg.AssetCheckResult:
    scope = "instagram.best_posting_times WHERE true"
    rules = [Rule("negative_or_nan",
                  f"{scope} AND (posts < 0 OR avg_engagement_rate_reach < 0"
                  " OR avg_engagement_rate_reach = 'NaN'::float8 OR shrunk_engagement_rate_reach < 0"
                  " OR shrunk_engagement_rate_reach = 'NaN'::float8)",
                  "ig_user_id, weekday, hour, posts, avg_engagement_rate_reach")]
    return evaluate_rules(conn, rules, {}, description="No negative post counts or rates, no NaN.")


def performance_reports_validity(conn: Connection, kind: str, first_day: date, last_day: date) -> dg.AssetCheckResult:
    scope = "instagram.performance_reports WHERE kind = :kind AND period_end BETWEEN :first AND :last"
    missing_keys = " OR ".join(f"NOT (report ? '{k}')" for k in REPORT_KEYS)
    rules = [
        Rule("bad_period", f"{scope} AND (period_start > period_end OR period_end > (now() AT TIME ZONE 'UTC')::date)",
             "ig_user_id, period_start, period_end"),
        Rule("future_generated_at", f"{scope} AND generated_at > now() + interval '5 minutes'",
             "ig_user_id, period_end, generated_at"),
        Rule("report_missing_fields", f"{scope} AND ({missing_keys})", "ig_user_id, period_end"),
    ]
    return evaluate_rules(conn, rules, {"kind": kind, "first": first_day, "last": last_day},
                          description=f"Reports ({kind}) of the period: sane period, every contract field present.")


def accounts_tokens(conn: Connection, now: datetime) -> dg.AssetCheckResult:
    scope = "instagram.accounts WHERE status = 'active'"
    rules = [
        Rule("token_missing", f"{scope} AND token_ciphertext IS NULL", "ig_user_id, username"),
        Rule("token_expired", f"{scope} AND token_expires_at <= :now", "ig_user_id, username, token_expires_at"),
        Rule("token_expires_soon", f"{scope} AND token_expires_at > :now AND token_expires_at <= :soon",
             "ig_user_id, username, token_expires_at", severity=WARN),
        # Skipped by every sync until its owner reconnects it: keep it red in the UI, not only in one alert.
        Rule("needs_reauth", "instagram.accounts WHERE status = 'needs_reauth'", "ig_user_id, username, status_reason"),
        # From debug_token (token_lifecycle): a missing permission makes its syncs fail; so does lost data access.
        Rule("token_missing_permissions", f"{scope} AND cardinality(token_missing_scopes) > 0",
             "ig_user_id, username, token_missing_scopes"),
        Rule("data_access_expired", f"{scope} AND token_data_access_expires_at <= :now",
             "ig_user_id, username, token_data_access_expires_at"),
        # An Instagram-Login refresh failed: the old token still works until it expires.
        Rule("token_refresh_failed", f"{scope} AND token_refresh_error IS NOT NULL",
             "ig_user_id, username, token_refresh_error, token_expires_at", severity=WARN),
    ]
    return evaluate_rules(conn, rules, {"now": now, "soon": now + TOKEN_EXPIRY_WARN},
                          description=f"Active accounts have a stored token that is not expired, has the permissions "
                                      f"it needs and refreshes (WARN within {TOKEN_EXPIRY_WARN.days} days of expiry "
                                      f"or after a failed refresh).")


# ---- column schema ---------------------------------------------------------------------------------------

_PG_TYPES = {"timestamptz": "timestamp with time zone", "timestamp": "timestamp without time zone",
             "int": "integer", "float": "double precision", "double": "double precision", "bool": "boolean"}


def column_schema_diff(conn: Connection, table: str, expected: dg.TableSchema) -> dg.AssetCheckResult:
    """Compare information_schema with the asset's ``dagster/column_schema``: a missing or retyped column fails
    (ERROR: ingestion writes it, analysts query it); extra columns pass and are listed (the contract welcomes more
    columns; bookkeeping columns such as media.first_seen_at are not in the metadata)."""
    schema, name = table.split(".", 1)
    actual = {r[0]: r[1] for r in conn.execute(sa.text(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = :s AND table_name = :t"),
        {"s": schema, "t": name})}
    want = {c.name: _PG_TYPES.get(c.type, c.type) for c in expected.columns}
    missing = sorted(set(want) - set(actual))
    retyped = {c: {"expected": want[c], "actual": actual[c]} for c in want if c in actual and actual[c] != want[c]}
    extra = sorted(set(actual) - set(want))
    return dg.AssetCheckResult(
        passed=not (missing or retyped), severity=ERROR,
        metadata={"table": table, "missing_columns": dg.MetadataValue.json(missing),
                  "retyped_columns": dg.MetadataValue.json(retyped),
                  "unexpected_columns": dg.MetadataValue.json(extra)},
        description="The table's columns match the asset's dagster/column_schema metadata.",
    )


# ---- Dagster wrappers ------------------------------------------------------------------------------------
# One multi-asset check op per asset job stage: the checks of one stage share a step (and a database connection)
# instead of adding a dozen steps to the hourly job.


@dataclass(frozen=True)
class Scope:
    """What a check evaluation covers: the partition window (None when unpartitioned), now, the accounts."""

    start: datetime | None
    end: datetime | None
    now: datetime
    accounts: tuple[str, ...] = ()

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()


@dataclass(frozen=True)
class CheckDef:
    asset: str
    name: str
    evaluate: Callable[[Connection, Scope], dg.AssetCheckResult]
    description: str
    blocking: bool = False

    @property
    def key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(dg.AssetKey(self.asset), self.name)


def _configured_accounts(context: dg.AssetCheckExecutionContext) -> tuple[str, ...]:
    """The accounts the run was asked to sync (``ig-analytics sync --account``); empty: every active one."""
    try:
        ops = (context.run.run_config or {}).get("ops", {})
        for op_name in ("account_insights_daily", "media_and_snapshots"):
            ids = ops.get(op_name, {}).get("config", {}).get("ig_user_ids")
            if ids:
                return tuple(ids)
    except Exception:  # noqa: BLE001 - a check-only run has no asset config
        pass
    return ()


def scope_for(context: dg.AssetCheckExecutionContext, partitions_def) -> Scope:
    now = _now()
    if partitions_def is None:
        return Scope(None, None, now, _configured_accounts(context))
    key_range = context.partition_key_range
    return Scope(partitions_def.time_window_for_partition_key(key_range.start).start,
                 partitions_def.time_window_for_partition_key(key_range.end).end, now, _configured_accounts(context))


def _partition_scope(scope: Scope, partitions_def, partition_key: str) -> Scope:
    window = partitions_def.time_window_for_partition_key(partition_key)
    return Scope(window.start, window.end, scope.now, scope.accounts)


def _latest_materializations(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition_keys: Sequence[str]):
    """Newest materialization of each partition (one query), to link every partition's evaluation to its data."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=list(partition_keys)),
        limit=4 * len(partition_keys)).records
    latest: dict[str, AssetCheckEvaluationTargetMaterializationData] = {}
    for record in records:  # newest first
        latest.setdefault(record.partition_key, AssetCheckEvaluationTargetMaterializationData(
            storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp))
    return latest


def evaluate_per_partition(conn: Connection, c: "CheckDef", scope: Scope, partitions_def,
                           partition_keys: Sequence[str]) -> Iterator[tuple[str, dg.AssetCheckResult]]:
    """One result per partition of a range run, so each partition shows its own status in the UI (a range run
    would otherwise record one evaluation without a partition and leave every partition "Skipped").

    Every windowed rule is "no offending row in the window", so a range that passes passes for each of its
    partitions: evaluate the range once, and only when it fails evaluate each partition to find which failed.
    """
    whole = c.evaluate(conn, scope)
    for key in partition_keys:
        if whole.passed:
            yield key, whole
        else:
            yield key, c.evaluate(conn, _partition_scope(scope, partitions_def, key))


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
                                              severity=r.severity, metadata=r.metadata, description=r.description)
                    continue
                targets = _latest_materializations(context.instance, c.key.asset_key, range_keys)
                for key, r in evaluate_per_partition(conn, c, scope, partitions_def, range_keys):
                    yield AssetCheckEvaluation(
                        asset_key=c.key.asset_key, check_name=c.name, passed=r.passed, severity=r.severity,
                        metadata=r.metadata, description=r.description, blocking=c.blocking, partition=key,
                        target_materialization_data=targets.get(key))
                yield dg.Output(None, output_name=output_names[c.key])

    return _group


def expected_column_schema(asset: str) -> dg.TableSchema:
    """The ``dagster/column_schema`` of the ingestion asset's definition metadata."""
    from ig_analytics.defs import ingestion_assets

    key = dg.AssetKey(asset)
    for assets_def in (ingestion_assets.account_insights_daily, ingestion_assets.media_and_snapshots):
        spec = assets_def.specs_by_key.get(key)
        if spec is not None:
            return spec.metadata["dagster/column_schema"]
    raise KeyError(f"no dagster/column_schema metadata for {asset}")


def _schema_check(asset: str, table: str) -> CheckDef:
    def evaluate(conn: Connection, scope: Scope) -> dg.AssetCheckResult:
        return column_schema_diff(conn, table, expected_column_schema(asset))

    return CheckDef(asset, "column_schema_unchanged", evaluate,
                    f"ERROR: every column of {table} in the asset's dagster/column_schema exists with its type "
                    "(extra columns are allowed and listed).")


CHECKS: dict[str, CheckDef] = {f"{c.asset}:{c.name}": c for c in [
    # account_insights_daily, per daily partition (or range)
    CheckDef("account_insights_daily", "account_insights_valid",
             lambda conn, s: account_insights_validity(conn, s.first_day, s.last_day),
             "ERROR, blocking: no negative counts, no future dates, one row per account and day.", blocking=True),
    CheckDef("account_insights_daily", "account_insights_reach_within_views",
             lambda conn, s: account_insights_reach_views(conn, s.first_day, s.last_day),
             "WARN: daily reach is not above views (impressions without views)."),
    CheckDef("account_insights_daily", "account_insights_complete",
             lambda conn, s: account_insights_completeness(conn, s.first_day, s.last_day, s.accounts or None),
             "ERROR: every active account has each day, or a recorded failure reason."),
    # account_insights_daily, unpartitioned
    CheckDef("account_insights_daily", "account_insights_fresh",
             lambda conn, s: account_insights_freshness(conn, s.now),
             "ERROR: yesterday's rows exist for every active account once 06:00 UTC has passed (or a failure)."),
    _schema_check("account_insights_daily", "instagram.account_insights_daily"),
    # media and snapshots, per hourly partition
    CheckDef("media", "media_valid", lambda conn, s: media_validity(conn, s.end),
             "ERROR, blocking: posts of the window have no future publication time and no negative counts.",
             blocking=True),
    CheckDef("media_insights_snapshots", "snapshots_valid", lambda conn, s: snapshots_validity(conn, s.start, s.end),
             "ERROR, blocking: no negative counts, no future timestamps, no duplicate post x slot.", blocking=True),
    CheckDef("media_insights_snapshots", "snapshots_reach_within_views",
             lambda conn, s: snapshots_reach_views(conn, s.start, s.end),
             "WARN: a post's reach is not above its views (impressions without views)."),
    CheckDef("media_insights_snapshots", "snapshots_counters_monotonic",
             lambda conn, s: snapshots_monotonic(conn, s.start, s.end),
             "WARN: lifetime counters never drop between successive snapshots by more than 2 % or 2."),
    # media and snapshots, unpartitioned
    CheckDef("media_insights_snapshots", "snapshots_recent_complete",
             lambda conn, s: snapshots_recent_completeness(conn, s.now),
             "ERROR: every active account with recent posts has snapshots from the last 26 h, or a failure."),
    CheckDef("media_insights_snapshots", "snapshots_fresh", lambda conn, s: snapshots_freshness(conn, s.now),
             "ERROR: posts younger than 48 h have a snapshot at most 2 h old (or a recorded failure)."),
    _schema_check("media", "instagram.media"),
    _schema_check("media_insights_snapshots", "instagram.media_insights_snapshots"),
    # analytics
    CheckDef("media_engagement", "media_engagement_valid",
             lambda conn, s: media_engagement_validity(conn, s.start, s.end),
             "ERROR, blocking: rates never negative, NULL without reach, equal to engagement / reach * 100.",
             blocking=True),
    CheckDef("media_engagement", "media_engagement_rates_plausible",
             lambda conn, s: media_engagement_plausibility(conn, s.start, s.end),
             "WARN: like_rate and save_rate (one per account) are at most 100."),
    CheckDef("trending_posts", "trending_posts_valid", lambda conn, s: trending_posts_validity(conn, s.start, s.end),
             "ERROR, blocking: ranks from 1, finite scores, no post twice in a list.", blocking=True),
    CheckDef("account_engagement_daily", "account_engagement_daily_valid",
             lambda conn, s: account_engagement_daily_validity(conn, s.now),
             "ERROR, blocking: no negative values, future days or rate without reach.", blocking=True),
    CheckDef("best_posting_times", "best_posting_times_valid", lambda conn, s: best_posting_times_validity(conn),
             "ERROR: no negative or NaN values."),
    CheckDef("performance_reports", "performance_reports_valid",
             lambda conn, s: performance_reports_validity(conn, "rolling_7d", s.first_day, s.last_day),
             "ERROR: reports of the day have a sane period and every contract field."),
    CheckDef("weekly_performance_reports", "weekly_performance_reports_valid",
             lambda conn, s: performance_reports_validity(conn, "weekly", s.first_day, s.last_day),
             "ERROR: weekly reports have a sane period and every contract field."),
    # accounts
    CheckDef("accounts", "accounts_tokens_valid", lambda conn, s: accounts_tokens(conn, s.now),
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
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

check_jobs = [data_quality_job]
check_schedules = [data_quality_schedule]
