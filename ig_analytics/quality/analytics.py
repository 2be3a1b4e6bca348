"""Rules on the analytics tables: engagement rates, daily account engagement, trending lists, best posting times
and performance reports (the rate rules are explained in the package docstring)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy.engine import Connection

from ig_analytics.quality.result import WARN, CheckResult, Rule, evaluate_rules, utc_day

REPORT_KEYS = ("period", "account_metrics", "content_metrics", "engagement", "trends", "best_posting_times")
ACCOUNT_ENGAGEMENT_WINDOW_DAYS = 40  # the window the asset recomputes (35 days) + slack

_RATES = ("engagement_rate_reach", "engagement_rate_views", "engagement_rate_followers", "like_rate",
          "comment_rate", "save_rate", "share_rate")
_ENGAGEMENT_SCOPE = (
    "instagram.media_engagement e WHERE e.media_id IN (SELECT media_id FROM instagram.media_insights_snapshots"
    " WHERE captured_at >= :start AND captured_at < :end)"
)


def _rate_rules(scope: str, alias: str = "e") -> list[Rule]:
    a = alias
    return [
        Rule("negative_values", f"{scope} AND ({a}.engagement < 0 OR "
             + " OR ".join(f"{a}.{r} < 0 OR {a}.{r} = 'NaN'::float8" for r in _RATES) + ")",
             f"{a}.media_id, {a}.engagement, " + ", ".join(f"{a}.{r}" for r in _RATES)),
        Rule("rate_without_denominator",
             f"{scope} AND ({a}.engagement_rate_reach IS NOT NULL OR {a}.like_rate IS NOT NULL)"
             f" AND COALESCE({a}.reach, 0) = 0",
             f"{a}.media_id, {a}.reach, {a}.engagement_rate_reach, {a}.like_rate"),
        Rule("rate_formula_mismatch",
             f"{scope} AND {a}.reach > 0 AND {a}.engagement IS NOT NULL AND"
             f" abs(COALESCE({a}.engagement_rate_reach, -1) - {a}.engagement * 100.0 / {a}.reach)"
             f" > 1e-6 * GREATEST(1, abs({a}.engagement * 100.0 / {a}.reach))",
             f"{a}.media_id, {a}.engagement, {a}.reach, {a}.engagement_rate_reach"),
    ]


def media_engagement_validity(conn: Connection, start: datetime, end: datetime) -> CheckResult:
    return evaluate_rules(conn, _rate_rules(_ENGAGEMENT_SCOPE), {"start": start, "end": end},
                          description="Engagement and rates of the posts captured in the slot(s): never negative, "
                                      "NULL when reach is NULL or 0, engagement_rate_reach = engagement / reach * 100.")


def media_engagement_plausibility(conn: Connection, start: datetime, end: datetime) -> CheckResult:
    rules = [Rule("one_per_account_rate_above_100",
                  f"{_ENGAGEMENT_SCOPE} AND (e.like_rate > 100 OR e.save_rate > 100)",
                  "e.media_id, e.reach, e.like_rate, e.save_rate", severity=WARN)]
    return evaluate_rules(conn, rules, {"start": start, "end": end},
                          description="like_rate and save_rate (one per account) are at most 100; above means "
                                      "Meta's reach estimate is low. Engagement, comment and share rates may "
                                      "exceed 100 legitimately.")


def account_engagement_daily_validity(conn: Connection, now: datetime) -> CheckResult:
    scope = "instagram.account_engagement_daily WHERE date >= :since"
    rules = [
        Rule("negative_values",
             f"{scope} AND (posts < 0 OR engagement < 0 OR reach < 0 OR engagement_rate_reach < 0"
             " OR engagement_rate_reach = 'NaN'::float8)",
             "ig_user_id, date, posts, engagement, reach, engagement_rate_reach"),
        Rule("future_dates", f"{scope} AND date > CAST(:today AS date) + 1", "ig_user_id, date"),
        Rule("rate_without_reach", f"{scope} AND engagement_rate_reach IS NOT NULL AND COALESCE(reach, 0) = 0",
             "ig_user_id, date, reach, engagement_rate_reach"),
    ]
    return evaluate_rules(conn, rules, {"since": (now - timedelta(days=ACCOUNT_ENGAGEMENT_WINDOW_DAYS)).date(),
                                        "today": utc_day(now)},
                          description=f"The recomputed window ({ACCOUNT_ENGAGEMENT_WINDOW_DAYS} days): no negative "
                                      "values, no future days, no rate without reach.")


def trending_posts_validity(conn: Connection, start: datetime, end: datetime) -> CheckResult:
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


def best_posting_times_validity(conn: Connection) -> CheckResult:
    scope = "instagram.best_posting_times WHERE true"
    rules = [Rule("negative_or_nan",
                  f"{scope} AND (posts < 0 OR avg_engagement_rate_reach < 0"
                  " OR avg_engagement_rate_reach = 'NaN'::float8 OR shrunk_engagement_rate_reach < 0"
                  " OR shrunk_engagement_rate_reach = 'NaN'::float8)",
                  "ig_user_id, weekday, hour, posts, avg_engagement_rate_reach")]
    return evaluate_rules(conn, rules, {}, description="No negative post counts or rates, no NaN.")


def performance_reports_validity(conn: Connection, kind: str, first_day: date, last_day: date,
                                 now: datetime) -> CheckResult:
    scope = "instagram.performance_reports WHERE kind = :kind AND period_end BETWEEN :first AND :last"
    missing_keys = " OR ".join(f"NOT (report ? '{k}')" for k in REPORT_KEYS)
    rules = [
        Rule("bad_period", f"{scope} AND (period_start > period_end OR period_end > CAST(:today AS date))",
             "ig_user_id, period_start, period_end"),
        Rule("future_generated_at", f"{scope} AND generated_at > CAST(:now AS timestamptz) + interval '5 minutes'",
             "ig_user_id, period_end, generated_at"),
        Rule("report_missing_fields", f"{scope} AND ({missing_keys})", "ig_user_id, period_end"),
    ]
    return evaluate_rules(conn, rules, {"kind": kind, "first": first_day, "last": last_day, "now": now,
                                        "today": utc_day(now)},
                          description=f"Reports ({kind}) of the period: sane period, every contract field present.")
