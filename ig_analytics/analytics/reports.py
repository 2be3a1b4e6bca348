"""Performance reports: the contract's ``report`` JSON per account and period (instagram.performance_reports)
and a self-contained HTML page with inline SVG charts. Definitions: docs/analytics.md, section "Reports".

Values the data does not have are null, never 0.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ig_analytics.analytics import charts
from ig_analytics.analytics._common import ACCOUNT_TZ_CTE, as_utc, id_list, utc_now
from ig_analytics.analytics.audience import audience_sections
from ig_analytics.analytics.report_competitors import competitor_sections
from ig_analytics.analytics.report_conversation import conversation_sections
from ig_analytics.analytics.report_html import render_html, report_markdown
from ig_analytics.storage import db

REPORT_KINDS = ("rolling_7d", "weekly", "on_demand")
TOP_TRENDS = 5
TOP_SLOTS = 5
TOP_POSTS = 10
TRENDS_GRACE_DAYS = 2  # trending evaluations up to this long after the period's end count
REPORT_BATCH = 250  # accounts per batch of queries


@dataclass(frozen=True)
class ReportResult:
    ig_user_id: str
    report: dict
    html_path: Path | None
    markdown: str


# ---- small helpers ----------------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """JSON-safe: NaN -> None, Decimal/numpy -> float/int, timestamps/dates -> ISO strings."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, (datetime, date, pd.Timestamp)):
        return value.isoformat()
    return value


def _rows_by_account(conn: Connection, sql: str, params: dict) -> dict[str, list[dict]]:
    """Run a query whose first column is ig_user_id; its rows as JSON-safe dicts, grouped by account."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    result = conn.execute(sa.text(sql), params)
    keys = list(result.keys())
    for row in result:
        grouped[row[0]].append({k: _clean(v) for k, v in zip(keys, row)})
    return grouped


# ---- the report: batched queries, one per report section for many accounts at once ---------------------

# The accounts and each one's period as instants in its own time zone.
_ACC = f"""
{ACCOUNT_TZ_CTE},
acc AS (
    SELECT a.ig_user_id, a.username, t.tz,
           (CAST(:start AS date))::timestamp AT TIME ZONE t.tz AS from_ts,
           (CAST(:end AS date) + 1)::timestamp AT TIME ZONE t.tz AS to_ts
    FROM instagram.accounts a JOIN account_tz t ON t.ig_user_id = a.ig_user_id
    WHERE a.ig_user_id = ANY(CAST(:users AS text[]))
)"""

# Averages of stored float8 rates are summed as numeric: a float8 sum depends on the order the rows are read in,
# which an upsert changes, and a second identical sync must not change a report in its last digits.
# ratio of sums over the rows where numerator and denominator are known (denominator > 0), * 100
def _ros(num: str, den: str) -> str:
    cond = f"{num} IS NOT NULL AND {den} > 0"
    return f"(sum({num}) FILTER (WHERE {cond}) * 100.0 / NULLIF(sum({den}) FILTER (WHERE {cond}), 0))::float8"


_POSTS = f"""
{_ACC},
posts AS (
    SELECT m.ig_user_id, m.media_id, m.media_type, m.media_product_type, left(m.caption, 100) AS caption,
           m.permalink, m.published_at, e.engagement, e.reach, e.views, e.impressions,
           COALESCE(e.views, e.impressions) AS views_or_impressions, e.followers_at_publish,
           e.engagement_rate_reach, e.engagement_rate_views, e.performance_score, s.likes, s.comments, s.saved,
           s.shares, s.replies,
           CASE WHEN m.media_product_type IN ('REELS', 'STORY') THEN m.media_product_type
                ELSE COALESCE(m.media_type, 'UNKNOWN') END AS post_type
    FROM acc
    JOIN instagram.media m ON m.ig_user_id = acc.ig_user_id
         AND m.published_at >= acc.from_ts AND m.published_at < acc.to_ts
    LEFT JOIN instagram.media_engagement e ON e.media_id = m.media_id
    LEFT JOIN instagram.media_insights_snapshots s ON s.media_id = e.media_id AND s.captured_at = e.captured_at
)"""

# Posts are FEED and REELS; stories (24 h, no saves, counted apart) are left out of every post average.
_NOT_STORY = "post_type <> 'STORY'"

_SQL = {
    "accounts": f"WITH {_ACC} SELECT ig_user_id, username, tz FROM acc",
    # account-level daily values: sums only of summable metrics; reach is unique per day
    "account": f"""
        WITH {_ACC}, days AS (
            SELECT d.* FROM instagram.account_insights_daily d JOIN acc ON acc.ig_user_id = d.ig_user_id
            WHERE d.date BETWEEN :start AND :end
        )
        SELECT ig_user_id, avg(reach)::float8 AS reach_daily_avg, max(reach) AS reach_daily_max,
               sum(reach)::bigint AS reach_daily_sum_not_unique, count(reach) AS reach_days,
               CASE WHEN CAST(:start AS date) = CAST(:end AS date) THEN max(reach) END AS single_reach,
               sum(views)::bigint AS total_views, sum(impressions)::bigint AS total_impressions,
               avg(profile_views)::float8 AS avg_profile_views, sum(follower_count)::bigint AS new_followers_reported
        FROM days GROUP BY ig_user_id
    """,
    # the day before the period too: growth over the period counts its first day's change
    "daily": """
        SELECT ig_user_id, date, reach, views, impressions, followers_total, followers_total_source,
               follower_count AS new_followers, unfollows
        FROM instagram.account_insights_daily
        WHERE ig_user_id = ANY(CAST(:users AS text[])) AND date BETWEEN CAST(:start AS date) - 1 AND :end
        ORDER BY ig_user_id, date
    """,
    "content": f"""
        WITH {_POSTS}
        SELECT ig_user_id, count(*) AS total_posts,
               avg(engagement_rate_reach::numeric)::float8 AS avg_engagement_rate, avg(reach)::float8 AS avg_reach,
               avg(views)::float8 AS avg_views, avg(impressions)::float8 AS avg_impressions,
               avg(performance_score::numeric)::float8 AS avg_performance_score,
               {_ros('engagement', 'reach')} AS engagement_rate_reach,
               {_ros('engagement', 'views_or_impressions')} AS engagement_rate_views,
               {_ros('engagement', 'followers_at_publish')} AS engagement_rate_followers,
               {_ros('likes', 'reach')} AS like_rate, {_ros('comments', 'reach')} AS comment_rate,
               {_ros('saved', 'reach')} AS save_rate, {_ros('shares', 'reach')} AS share_rate,
               avg(engagement)::float8 AS average_engagement, count(engagement) AS posts_with_engagement
        FROM posts WHERE {_NOT_STORY} GROUP BY ig_user_id
    """,
    "stories": f"""
        WITH {_POSTS}
        SELECT ig_user_id, count(*) AS total_stories, sum(reach)::bigint AS story_reach,
               avg(reach)::float8 AS avg_story_reach, sum(replies)::bigint AS story_replies,
               count(reach) AS stories_with_insights
        FROM posts WHERE post_type = 'STORY' GROUP BY ig_user_id
    """,
    "top_posts": f"""
        WITH {_POSTS}
        SELECT ig_user_id, media_id, media_type, media_product_type, caption, permalink, published_at,
               engagement, reach, views, engagement_rate_reach, performance_score
        FROM (SELECT *, row_number() OVER (PARTITION BY ig_user_id
                        ORDER BY engagement DESC, engagement_rate_reach DESC NULLS LAST, media_id) AS rn
              FROM posts WHERE engagement IS NOT NULL AND {_NOT_STORY}) x
        WHERE rn <= {TOP_POSTS} ORDER BY ig_user_id, rn
    """,
    "by_post_type": f"""
        WITH {_POSTS}
        SELECT ig_user_id, post_type, count(*) AS posts, {_ros('engagement', 'reach')} AS engagement_rate_reach
        FROM posts GROUP BY ig_user_id, post_type ORDER BY ig_user_id, post_type
    """,
    # the account's newest trending evaluation up to 2 days after the period (a report is built the day after
    # its period; a report of a past period shows what was trending at its end, not today)
    "trends": f"""
        WITH {_ACC}, latest AS (
            SELECT e.ig_user_id, max(e.as_of) AS as_of FROM instagram.trending_evaluations e
            JOIN acc ON acc.ig_user_id = e.ig_user_id WHERE e.as_of < acc.to_ts + interval '{TRENDS_GRACE_DAYS} days'
            GROUP BY e.ig_user_id
        )
        SELECT l.ig_user_id, l.as_of, t.rank, t.media_id, t.method, t.score, t.weighted_score, m.permalink,
               left(m.caption, 100) AS caption, m.media_type, m.media_product_type, m.published_at,
               round((t.details ->> 'engagement')::float8)::bigint AS engagement, t.reach, t.engagement_rate,
               (t.details ->> 'gain')::float8 AS gain, (t.details ->> 'z')::float8 AS z,
               round((t.details ->> 'expected_engagement')::float8)::bigint AS expected_engagement,
               (t.details ->> 'baseline_n')::int AS baseline_n, (t.details ->> 'age_hours')::float8 AS age_hours
        FROM latest l
        LEFT JOIN instagram.trending_posts t ON t.ig_user_id = l.ig_user_id AND t.as_of = l.as_of
             AND t.rank <= {TOP_TRENDS}
        LEFT JOIN instagram.media m ON m.media_id = t.media_id
        ORDER BY l.ig_user_id, t.rank
    """,
    "slots": """
        SELECT ig_user_id, weekday, hour, posts, avg_engagement_rate_reach, shrunk_engagement_rate_reach, reliable,
               row_number() OVER (PARTITION BY ig_user_id, reliable
                                  ORDER BY shrunk_engagement_rate_reach DESC NULLS LAST, posts DESC) AS rn
        FROM instagram.best_posting_times WHERE ig_user_id = ANY(CAST(:users AS text[]))
        ORDER BY ig_user_id, weekday, hour
    """,
}

WEEKDAY_NAMES = charts.WEEKDAYS
_ENGAGEMENT_KEYS = ("engagement_rate_reach", "engagement_rate_views", "engagement_rate_followers", "like_rate",
                    "comment_rate", "save_rate", "share_rate", "average_engagement", "avg_performance_score")
POSTS_SET = "posts (FEED and REELS) published in the period; stories excluded"


def build_reports(conn: Connection, ig_user_ids: Iterable[str], period_start: date, period_end: date) -> dict[str, dict]:
    """The report JSON of each account (unknown ids are left out), computed with one query per section."""
    if period_end < period_start:
        raise ValueError(f"period_end {period_end} is before period_start {period_start}")
    params = {"users": list(ig_user_ids), "start": period_start, "end": period_end}
    data = {name: _rows_by_account(conn, sql, params) for name, sql in _SQL.items()}
    audience = audience_sections(conn, list(data["accounts"]), period_start, period_end)
    rivals = competitor_sections(conn, list(data["accounts"]), period_start, period_end)
    reports = {}
    for ig_user_id, (acc,) in data["accounts"].items():
        account = (data["account"].get(ig_user_id) or [{}])[0]
        content = (data["content"].get(ig_user_id) or [{}])[0]
        stories = (data["stories"].get(ig_user_id) or [{}])[0]
        days = data["daily"].get(ig_user_id, [])
        top = data["top_posts"].get(ig_user_id, [])
        trends = [t for t in data["trends"].get(ig_user_id, []) if t["rank"] is not None]
        slots = data["slots"].get(ig_user_id, [])
        best_slots = sorted((s for s in slots if s["reliable"] and s["rn"] <= TOP_SLOTS), key=lambda s: s["rn"])
        for s in slots:
            s.pop("ig_user_id")
            s["weekday_name"] = WEEKDAY_NAMES[s["weekday"] - 1]
        for row in top + trends:
            row.pop("ig_user_id")
        trends_as_of = data["trends"][ig_user_id][0]["as_of"] if ig_user_id in data["trends"] else None
        for t in trends:
            t.pop("as_of")
        reports[ig_user_id] = {
            "ig_user_id": ig_user_id,
            "username": acc["username"],
            "timezone": acc["tz"],
            "period": {"start": period_start.isoformat(), "end": period_end.isoformat(),
                       "days": (period_end - period_start).days + 1},
            "account_metrics": {**_account_metrics(account), **_follower_metrics(days, period_start, period_end)},
            "content_metrics": {
                "total_posts": content.get("total_posts", 0),
                "total_stories": stories.get("total_stories", 0),
                "averages_cover": POSTS_SET,
                "avg_engagement_rate": content.get("avg_engagement_rate"),
                "avg_engagement_rate_basis": "reach",
                "avg_reach": content.get("avg_reach"),
                "avg_views": content.get("avg_views"),
                "avg_impressions": content.get("avg_impressions"),
                "best_performing_post": top[0] if top else None,
                "stories": {"covers": "stories published in the period", "total_stories": stories.get("total_stories", 0),
                            "stories_with_insights": stories.get("stories_with_insights", 0),
                            "story_reach": stories.get("story_reach"), "avg_story_reach": stories.get("avg_story_reach"),
                            "story_replies": stories.get("story_replies")},
            },
            "engagement": {**{k: content.get(k) for k in _ENGAGEMENT_KEYS},
                           "posts_with_engagement": content.get("posts_with_engagement", 0), "covers": POSTS_SET},
            "trends": trends,
            "trends_as_of": trends_as_of,
            "best_posting_times": [{k: v for k, v in s.items() if k != "rn"} for s in best_slots],
            # who follows the account (newest snapshot in the period) and when they are online (audience.py)
            **_clean(audience[ig_user_id]),
            # you vs competitors: the newest benchmark week ending in the period, when there is one
            **({"competitors": _clean(rivals[ig_user_id])} if ig_user_id in rivals else {}),
            # comments, posts that tagged the account, hashtags: only the sections with data (report_conversation.py)
            **_clean(conversation_sections(conn, ig_user_id, period_start, period_end)),
            # chart data, so the HTML page (or any other renderer) needs nothing but this JSON
            "daily": _daily_series(days, period_start, period_end),
            "by_post_type": [{k: v for k, v in r.items() if k != "ig_user_id"} for r in data["by_post_type"].get(ig_user_id, [])],
            "top_posts": top,
            "best_posting_times_grid": [{k: v for k, v in s.items() if k != "rn"} for s in slots],
        }
    return reports


def build_report(conn: Connection, ig_user_id: str, period_start: date, period_end: date) -> dict:
    """The report JSON for one account and the days ``period_start..period_end`` (inclusive; account-level
    daily values by their ``date``, posts by their day of publication in the account's time zone)."""
    reports = build_reports(conn, [ig_user_id], period_start, period_end)
    if ig_user_id not in reports:
        raise KeyError(f"unknown account {ig_user_id!r}")
    return reports[ig_user_id]


def _account_metrics(a: dict) -> dict:
    return {
        # Unique accounts over several days cannot be derived from daily unique reach (the sum counts an account
        # once per day it was reached): total_reach is given only for a one-day period. See docs/analytics.md.
        "total_reach": a.get("single_reach"),
        "reach_daily_avg": a.get("reach_daily_avg"),
        "reach_daily_max": a.get("reach_daily_max"),
        "reach_daily_sum_not_unique": a.get("reach_daily_sum_not_unique"),
        "reach_days": a.get("reach_days", 0),
        "total_views": a.get("total_views"),
        "total_impressions": a.get("total_impressions"),
        "avg_profile_views": a.get("avg_profile_views"),
        "new_followers_reported": a.get("new_followers_reported"),
    }


def _follower_metrics(days: list[dict], start: date, end: date) -> dict:
    """follower_growth = total at the end of the period - total at its start (the end of the day before it),
    from the follower history (observed or derived). When the day before has no total, the growth starts at the
    first day that has one (``follower_growth_from`` says which). new_followers / unfollows: the daily counts of
    the days the growth covers (new_followers NULL when one of them is not reported; unfollows not reported yet
    are new_followers - follower_growth, with ``unfollows_estimated``)."""
    known = [d for d in days if d["followers_total"] is not None and d["date"] <= end.isoformat()]
    last = known[-1] if known else None
    first = known[0] if len(known) >= 2 else None
    growth = last["followers_total"] - first["followers_total"] if first and last else None
    covered = [d for d in days if first and first["date"] < d["date"] <= last["date"]]

    def total(key: str):
        values = [d[key] for d in covered]
        return sum(values) if values and all(v is not None for v in values) else None

    new_followers = total("new_followers") if growth is not None else None
    unfollows = total("unfollows") if growth is not None else None
    # a day's unfollows arrive a day after its follows: until then they are what the growth implies (the
    # history estimated them, see followers.py), flagged as such
    estimated = unfollows is None and new_followers is not None
    return {
        "follower_growth": growth,
        "follower_growth_from": first["date"] if growth is not None else None,
        "follower_growth_to": last["date"] if growth is not None else None,
        "new_followers": new_followers,
        "unfollows": new_followers - growth if estimated else unfollows,
        "unfollows_estimated": estimated,
        "followers_total": last["followers_total"] if last else None,
        "followers_total_date": last["date"] if last else None,
        "followers_total_source": last["followers_total_source"] if last else None,
    }


def _daily_series(days: list[dict], start: date, end: date) -> list[dict]:
    """One entry per day of the period (chart data), NULL values where a day has no row."""
    by_day = {d["date"]: d for d in days}
    out = []
    for i in range((end - start).days + 1):
        key = (start + timedelta(days=i)).isoformat()
        row = by_day.get(key, {})
        out.append({"date": key, **{k: row.get(k) for k in ("reach", "views", "impressions", "followers_total",
                                                               "followers_total_source", "new_followers", "unfollows")}})
    return out


META_API_HOSTS = frozenset({"graph.facebook.com", "graph.instagram.com"})


def permalinks_synthetic(graph_api_url: str | None) -> bool:
    """Data from another Graph API than Meta's (the sandbox) has permalinks that lead nowhere."""
    return bool(graph_api_url) and (urlsplit(graph_api_url).hostname or "") not in META_API_HOSTS


def _safe_name(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", value)[:100] or "account"


# What alerts.notify reads of a report besides its markdown: the fields a run of many accounts keeps.
NOTICE_FIELDS = ("ig_user_id", "username", "kind", "period", "account_metrics")
REPORT_COLUMNS = ("ig_user_id", "period_start", "period_end", "kind", "generated_at", "report", "html_path")


def write_reports(
    conn: Connection,
    *,
    period_end: date,
    days: int,
    kind: str,
    reports_dir: Path,
    ig_user_ids: Iterable[str] | None = None,
    now: datetime | None = None,
    synthetic_permalinks: bool = False,
    keep_reports: bool = True,
) -> list[ReportResult]:
    """Build the report of ``period_end - days + 1 .. period_end`` for each account (the given ones, else
    every account that is not disabled), upsert instagram.performance_reports and write
    ``reports_dir/<ig_user_id>/<kind>_<start>_<end>.html``. ``synthetic_permalinks``: the data comes from the
    sandbox, whose permalinks lead nowhere (the page says so beside each link). Each batch of accounts is
    written before the next is built; ``keep_reports=False`` returns each report's notice fields only
    (:data:`NOTICE_FIELDS`), so a run of 10,000 accounts does not hold every report (issue 27: 2.2 GB)."""
    if kind not in REPORT_KINDS:
        raise ValueError(f"kind must be one of {REPORT_KINDS}, not {kind!r}")
    if days < 1:
        raise ValueError("days must be >= 1")
    generated_at = as_utc(now) if now is not None else utc_now()
    period_start = period_end - timedelta(days=days - 1)
    users = id_list(ig_user_ids)
    where = "ig_user_id = ANY(:users)" if users is not None else "status <> 'disabled'"
    accounts = [r[0] for r in conn.execute(
        sa.text(f"SELECT ig_user_id FROM instagram.accounts WHERE {where} ORDER BY ig_user_id"), {"users": users}
    )]
    results = []
    for chunk_start in range(0, len(accounts), REPORT_BATCH):
        chunk = accounts[chunk_start:chunk_start + REPORT_BATCH]
        reports, rows = build_reports(conn, chunk, period_start, period_end), []
        for ig_user_id in chunk:
            report = reports[ig_user_id]
            report["kind"] = kind
            report["permalinks_synthetic"] = synthetic_permalinks
            folder = Path(reports_dir) / _safe_name(ig_user_id)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{kind}_{period_start.isoformat()}_{period_end.isoformat()}.html"
            tmp = path.with_suffix(".html.tmp")
            tmp.write_text(render_html(report), encoding="utf-8")
            tmp.replace(path)
            rows.append((ig_user_id, period_start, period_end, kind, generated_at, report, str(path)))
            kept = report if keep_reports else {k: report[k] for k in NOTICE_FIELDS if k in report}
            results.append(ReportResult(ig_user_id, kept, path, report_markdown(report)))
        db.bulk_upsert(conn, "performance_reports", REPORT_COLUMNS, rows,
                       ["ig_user_id", "kind", "period_start", "period_end"])
    return results
