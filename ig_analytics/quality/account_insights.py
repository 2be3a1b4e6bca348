"""Rules on ``instagram.account_insights_daily``: validity, reach within views, completeness and freshness."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ig_analytics.quality.result import ERROR, WARN, CheckResult, Rule, any_negative, evaluate_rules, utc_day
from ig_analytics.storage import sync_runs

ACCOUNT_INSIGHTS_DEADLINE_UTC = time(6, 0)  # yesterday's account insights must be in by then

ACCOUNT_COUNT_COLUMNS = (
    "reach", "views", "impressions", "follower_count", "followers_total", "profile_views", "website_clicks",
    "accounts_engaged", "total_interactions", "likes", "comments", "saves", "shares", "replies", "reposts",
    "profile_links_taps",
)  # follows_and_unfollows is left out: Meta documents it as follows and unfollows, a net value may be negative


def account_insights_validity(conn: Connection, first_day: date, last_day: date, now: datetime) -> CheckResult:
    scope = "instagram.account_insights_daily WHERE date BETWEEN :first AND :last"
    rules = [
        Rule("negative_counts", f"{scope} AND {any_negative(ACCOUNT_COUNT_COLUMNS)}",
             "ig_user_id, date, " + ", ".join(ACCOUNT_COUNT_COLUMNS)),
        # Dates are UTC-ish days (end_time minus a day); one day of slack for timezones ahead of UTC.
        Rule("future_dates", f"{scope} AND date > CAST(:today AS date) + 1", "ig_user_id, date"),
        Rule("duplicate_keys",
             f"(SELECT ig_user_id, date, count(*) AS n FROM {scope} GROUP BY 1, 2 HAVING count(*) > 1) d"),
    ]
    return evaluate_rules(conn, rules, {"first": first_day, "last": last_day, "today": utc_day(now)},
                          description="No negative counts, no future dates, one row per account and day.",
                          extra_metadata={"first_day": first_day.isoformat(), "last_day": last_day.isoformat()})


def account_insights_reach_views(conn: Connection, first_day: date, last_day: date) -> CheckResult:
    rules = [Rule(
        "reach_above_views",
        "instagram.account_insights_daily WHERE date BETWEEN :first AND :last"
        " AND reach > COALESCE(views, impressions)",
        "ig_user_id, date, reach, views, impressions", severity=WARN,
    )]
    return evaluate_rules(conn, rules, {"first": first_day, "last": last_day},
                          description="Daily reach (unique accounts) is not above views (or impressions on "
                                      "API versions without views) where both are reported.")


def covers(partition_key: str | None, day: date) -> bool:
    """Whether a sync's partition key (a day, or a range ``first...last``) covers ``day``."""
    if not partition_key:
        return False
    first, _, last = partition_key.partition("...")
    try:
        return date.fromisoformat(first[:10]) <= day <= date.fromisoformat((last or first)[:10])
    except ValueError:
        return False


def active_accounts(conn: Connection, only: Sequence[str] | None = None) -> list[str]:
    ids = [r[0] for r in conn.execute(sa.text(
        "SELECT ig_user_id FROM instagram.accounts WHERE status = 'active' ORDER BY ig_user_id"))]
    return [i for i in ids if i in set(only)] if only else ids


def account_insights_completeness(conn: Connection, first_day: date, last_day: date,
                                  only_accounts: Sequence[str] | None = None,
                                  check_description: str | None = None) -> CheckResult:
    """Every active account has a row for every day, or its newest sync covering that day failed (the reason)."""
    accounts = active_accounts(conn, only_accounts)
    present = {
        (r[0], r[1]) for r in conn.execute(sa.text(
            "SELECT ig_user_id, date FROM instagram.account_insights_daily"
            " WHERE date BETWEEN :first AND :last AND ig_user_id = ANY(:ids)"),
            {"first": first_day, "last": last_day, "ids": accounts})
    }
    runs = sync_runs.account_runs(conn, "account", accounts) if accounts else []
    explained: dict[str, dict[str, str]] = {}
    unexplained: dict[str, list[str]] = {}
    day = first_day
    while day <= last_day:
        for acc in accounts:
            if (acc, day) in present:
                continue
            newest = next((r for r in runs if r.ig_user_id == acc and covers(r.partition_key, day)), None)
            if newest is not None and newest.status == "failed":
                explained.setdefault(acc, {})[day.isoformat()] = (newest.error or "failed")[:300]
            else:
                unexplained.setdefault(acc, []).append(day.isoformat())
        day += timedelta(days=1)
    return CheckResult(
        passed=not unexplained,
        severity=ERROR,
        metadata={
            "accounts_checked": len(accounts),
            "missing_without_reason": unexplained,
            "missing_with_failure_reason": explained,
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


def account_insights_freshness(conn: Connection, now: datetime) -> CheckResult:
    day = expected_account_day(now)
    return account_insights_completeness(
        conn, day, day,
        check_description=(f"Yesterday's account insights are present by {ACCOUNT_INSIGHTS_DEADLINE_UTC:%H:%M} UTC "
                           f"for every active account (or a failed sync is recorded); checked day {day}."),
    )
