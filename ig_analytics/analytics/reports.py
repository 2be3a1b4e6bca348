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
from html import escape
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ig_analytics.analytics import charts
from ig_analytics.analytics._common import ACCOUNT_TZ_CTE, as_utc, id_list, utc_now
from ig_analytics.storage import db

REPORT_KINDS = ("rolling_7d", "weekly", "on_demand")
TOP_TRENDS = 5
TOP_SLOTS = 5
TOP_POSTS = 10
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
           e.engagement_rate_reach, e.engagement_rate_views, s.likes, s.comments, s.saved, s.shares,
           CASE WHEN m.media_product_type IN ('REELS', 'STORY') THEN m.media_product_type
                ELSE COALESCE(m.media_type, 'UNKNOWN') END AS post_type
    FROM acc
    JOIN instagram.media m ON m.ig_user_id = acc.ig_user_id
         AND m.published_at >= acc.from_ts AND m.published_at < acc.to_ts
    LEFT JOIN instagram.media_engagement e ON e.media_id = m.media_id
    LEFT JOIN instagram.media_insights_snapshots s ON s.media_id = e.media_id AND s.captured_at = e.captured_at
)"""

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
               avg(profile_views)::float8 AS avg_profile_views, sum(follower_count)::bigint AS new_followers_reported,
               count(followers_total) AS f_n,
               (array_agg(followers_total ORDER BY date) FILTER (WHERE followers_total IS NOT NULL))[1] AS f_first,
               (array_agg(date ORDER BY date) FILTER (WHERE followers_total IS NOT NULL))[1] AS f_first_date,
               (array_agg(followers_total ORDER BY date DESC) FILTER (WHERE followers_total IS NOT NULL))[1] AS f_last,
               (array_agg(date ORDER BY date DESC) FILTER (WHERE followers_total IS NOT NULL))[1] AS f_last_date
        FROM days GROUP BY ig_user_id
    """,
    # the running follower total from profile snapshots (the last one of each local day), the fallback
    "profile": f"""
        WITH {_ACC}, points AS (
            SELECT DISTINCT ON (p.ig_user_id, (p.captured_at AT TIME ZONE acc.tz)::date)
                   p.ig_user_id, (p.captured_at AT TIME ZONE acc.tz)::date AS date, p.followers_total
            FROM instagram.account_profile_snapshots p JOIN acc ON acc.ig_user_id = p.ig_user_id
            WHERE p.followers_total IS NOT NULL AND p.captured_at >= acc.from_ts AND p.captured_at < acc.to_ts
            ORDER BY p.ig_user_id, (p.captured_at AT TIME ZONE acc.tz)::date, p.captured_at DESC
        )
        SELECT ig_user_id, date, followers_total FROM points ORDER BY ig_user_id, date
    """,
    "daily": """
        SELECT ig_user_id, date, reach, views, impressions, followers_total
        FROM instagram.account_insights_daily
        WHERE ig_user_id = ANY(CAST(:users AS text[])) AND date BETWEEN :start AND :end ORDER BY ig_user_id, date
    """,
    "content": f"""
        WITH {_POSTS}
        SELECT ig_user_id, count(*) AS total_posts,
               avg(engagement_rate_reach)::float8 AS avg_engagement_rate, avg(reach)::float8 AS avg_reach,
               avg(views)::float8 AS avg_views, avg(impressions)::float8 AS avg_impressions,
               {_ros('engagement', 'reach')} AS engagement_rate_reach,
               {_ros('engagement', 'views_or_impressions')} AS engagement_rate_views,
               {_ros('engagement', 'followers_at_publish')} AS engagement_rate_followers,
               {_ros('likes', 'reach')} AS like_rate, {_ros('comments', 'reach')} AS comment_rate,
               {_ros('saved', 'reach')} AS save_rate, {_ros('shares', 'reach')} AS share_rate,
               avg(engagement)::float8 AS average_engagement, count(engagement) AS posts_with_engagement
        FROM posts GROUP BY ig_user_id
    """,
    "top_posts": f"""
        WITH {_POSTS}
        SELECT ig_user_id, media_id, media_type, media_product_type, caption, permalink, published_at,
               engagement, reach, views, engagement_rate_reach
        FROM (SELECT *, row_number() OVER (PARTITION BY ig_user_id
                        ORDER BY engagement DESC, engagement_rate_reach DESC NULLS LAST, media_id) AS rn
              FROM posts WHERE engagement IS NOT NULL) x
        WHERE rn <= {TOP_POSTS} ORDER BY ig_user_id, rn
    """,
    "by_post_type": f"""
        WITH {_POSTS}
        SELECT ig_user_id, post_type, count(*) AS posts, {_ros('engagement', 'reach')} AS engagement_rate_reach
        FROM posts GROUP BY ig_user_id, post_type ORDER BY ig_user_id, post_type
    """,
    # the account's newest trending evaluation before the end of the period
    "trends": f"""
        WITH {_ACC}, latest AS (
            SELECT e.ig_user_id, max(e.as_of) AS as_of FROM instagram.trending_evaluations e
            JOIN acc ON acc.ig_user_id = e.ig_user_id WHERE e.as_of < acc.to_ts GROUP BY e.ig_user_id
        )
        SELECT l.ig_user_id, l.as_of, t.rank, t.media_id, t.score, t.weighted_score, m.permalink,
               left(m.caption, 100) AS caption, m.media_type, m.media_product_type, m.published_at,
               (t.details ->> 'engagement')::float8 AS engagement, (t.details ->> 'reach')::float8 AS reach,
               (t.details ->> 'gain')::float8 AS gain, (t.details ->> 'z')::float8 AS z,
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
                    "comment_rate", "save_rate", "share_rate", "average_engagement")


def build_reports(conn: Connection, ig_user_ids: Iterable[str], period_start: date, period_end: date) -> dict[str, dict]:
    """The report JSON of each account (unknown ids are left out), computed with one query per section."""
    if period_end < period_start:
        raise ValueError(f"period_end {period_end} is before period_start {period_start}")
    params = {"users": list(ig_user_ids), "start": period_start, "end": period_end}
    data = {name: _rows_by_account(conn, sql, params) for name, sql in _SQL.items()}
    reports = {}
    for ig_user_id, (acc,) in data["accounts"].items():
        account = (data["account"].get(ig_user_id) or [{}])[0]
        content = (data["content"].get(ig_user_id) or [{}])[0]
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
            "account_metrics": _account_metrics(account, data["profile"].get(ig_user_id, [])),
            "content_metrics": {
                "total_posts": content.get("total_posts", 0),
                "avg_engagement_rate": content.get("avg_engagement_rate"),
                "avg_engagement_rate_basis": "reach",
                "avg_reach": content.get("avg_reach"),
                "avg_views": content.get("avg_views"),
                "avg_impressions": content.get("avg_impressions"),
                "best_performing_post": top[0] if top else None,
            },
            "engagement": {**{k: content.get(k) for k in _ENGAGEMENT_KEYS},
                           "posts_with_engagement": content.get("posts_with_engagement", 0)},
            "trends": trends,
            "trends_as_of": trends_as_of,
            "best_posting_times": [{k: v for k, v in s.items() if k != "rn"} for s in best_slots],
            # chart data, so the HTML page (or any other renderer) needs nothing but this JSON
            "daily": _daily_series(data["daily"].get(ig_user_id, []), data["profile"].get(ig_user_id, [])),
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


def _account_metrics(a: dict, profile: list[dict]) -> dict:
    # Followers: the running total (account_insights_daily.followers_total, else profile snapshots), last minus
    # first observation in the period. follower_count (new followers per day) is never used as a total.
    source, first, last = "account_insights_daily", None, None
    if a.get("f_n"):
        first = (a["f_first_date"], a["f_first"]) if a["f_n"] >= 2 else None
        last = (a["f_last_date"], a["f_last"])
    if (not a.get("f_n") or a["f_n"] < 2) and profile:
        source = "account_profile_snapshots"
        first = (profile[0]["date"], profile[0]["followers_total"]) if len(profile) >= 2 else None
        last = (profile[-1]["date"], profile[-1]["followers_total"])
    growth = last[1] - first[1] if first and last else None
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
        "follower_growth": growth,
        "follower_growth_from": first[0] if growth is not None else None,
        "follower_growth_to": last[0] if growth is not None else None,
        "follower_growth_source": source if growth is not None else None,
        "followers_total": last[1] if last else None,
        "new_followers_reported": a.get("new_followers_reported"),
    }


def _daily_series(days: list[dict], profile: list[dict]) -> list[dict]:
    series = {d["date"]: {k: v for k, v in d.items() if k != "ig_user_id"} for d in days}
    if not any(d.get("followers_total") is not None for d in series.values()):
        for p in profile:
            row = series.setdefault(p["date"], {"date": p["date"], "reach": None, "views": None, "impressions": None})
            row["followers_total"] = p["followers_total"]
    return [series[k] for k in sorted(series)]


# ---- HTML ----------------------------------------------------------------------------------------------------


def _n(value, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}{suffix}"
    return f"{int(value):,}{suffix}"


def render_html(report: dict) -> str:
    """A self-contained page: inline CSS and SVG, no scripts, no external resources."""
    am, cm, en = report["account_metrics"], report["content_metrics"], report["engagement"]
    who = escape(f"@{report['username']}" if report.get("username") else report["ig_user_id"])
    period = f"{report['period']['start']} to {report['period']['end']}"
    daily = report.get("daily") or []
    labels = [d["date"][5:] for d in daily]
    followers_chart = charts.line_chart(
        labels, [("followers", [d.get("followers_total") for d in daily])], title="Followers (running total)"
    )
    reach_chart = charts.line_chart(
        labels,
        [("reach (unique per day)", [d.get("reach") for d in daily]), ("views", [d.get("views") for d in daily])],
        title="Reach and views per day",
        bars=True,
    )
    type_chart = charts.hbar_chart(
        [(t["post_type"], t.get("engagement_rate_reach"), f"{_n(t.get('engagement_rate_reach'), '%')} ({t['posts']} posts)")
         for t in report.get("by_post_type") or []],
        title="Engagement rate by reach, by post type",
    )
    heat = charts.heatmap(
        [{"weekday": s["weekday"], "hour": s["hour"], "value": s.get("shrunk_engagement_rate_reach"),
          "posts": s.get("posts"), "reliable": s.get("reliable")} for s in report.get("best_posting_times_grid") or []],
        title=f"Best posting times ({escape(report.get('timezone') or 'UTC')}), all posts of the last 90 days",
    )
    rows = "".join(
        f"<tr><td>{escape((p.get('published_at') or '')[:16].replace('T', ' '))}</td>"
        f"<td>{escape(p.get('media_product_type') or p.get('media_type') or '')}</td>"
        f"<td>{_link(p)}</td><td class=n>{_n(p.get('engagement'))}</td><td class=n>{_n(p.get('reach'))}</td>"
        f"<td class=n>{_n(p.get('engagement_rate_reach'), '%')}</td></tr>"
        for p in report.get("top_posts") or []
    ) or "<tr><td colspan=6>No posts with data in this period.</td></tr>"
    trend_rows = "".join(
        f"<li>#{t['rank']} {_link(t)}: score {_n(t.get('score'))}, +{_n(t.get('gain'))} engagements in the "
        f"last hours vs {t.get('baseline_n')} earlier posts at the same age</li>"
        for t in report.get("trends") or []
    ) or "<li>No trending posts.</li>"
    cards = [
        ("Followers", _n(am.get("followers_total")), f"growth {_signed(am.get('follower_growth'))}"),
        ("Reach / day (avg)", _n(am.get("reach_daily_avg")), f"best day {_n(am.get('reach_daily_max'))}"),
        ("Views", _n(am.get("total_views")), "sum over the period"),
        ("Posts", _n(cm.get("total_posts")), f"avg reach {_n(cm.get('avg_reach'))}"),
        ("Engagement rate", _n(en.get("engagement_rate_reach"), "%"), "by reach"),
        ("Engagement rate", _n(en.get("engagement_rate_views"), "%"), "by views"),
    ]
    card_html = "".join(
        f"<div class=card><div class=k>{escape(k)}</div><div class=v>{escape(v)}</div><div class=s>{escape(s)}</div></div>"
        for k, v, s in cards
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Instagram report {who} {escape(period)}</title>
<style>
body {{ font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 24px; color: #0f172a; background: #f8fafc; }}
h1 {{ margin: 0 0 4px 0; font-size: 24px; }} .sub {{ color: #475569; margin-bottom: 16px; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 16px; }}
.card {{ background: #1e3a8a; color: #fff; border-radius: 8px; padding: 12px 16px; min-width: 150px; }}
.card .k {{ font-size: 12px; opacity: .85; }} .card .v {{ font-size: 24px; font-weight: bold; }} .card .s {{ font-size: 11px; opacity: .8; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 16px; }} .panel {{ background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 8px; }}
table {{ border-collapse: collapse; width: 100%; background: #fff; }} th, td {{ border-bottom: 1px solid #e2e8f0; padding: 6px 8px; font-size: 13px; text-align: left; }}
th {{ background: #e0e7ff; }} td.n {{ text-align: right; }} .note {{ color: #64748b; font-size: 12px; }}
</style></head><body>
<h1>Instagram performance: {who}</h1>
<div class="sub">{escape(period)} ({escape(report.get('timezone') or 'UTC')})</div>
<div class="cards">{card_html}</div>
<div class="grid"><div class="panel">{followers_chart}</div><div class="panel">{reach_chart}</div>
<div class="panel">{type_chart}</div></div>
<h2>Top posts</h2>
<table><tr><th>published</th><th>type</th><th>post</th><th>engagement</th><th>reach</th><th>rate by reach</th></tr>{rows}</table>
<h2>Trending now</h2><ul>{trend_rows}</ul>
<h2>Best posting times</h2><div class="panel">{heat}</div>
<p class="note">Reach is counted per day (unique accounts that day); a sum over days would count an account once per
day, so no period total is shown. Rates are percentages; n/a means the data was not reported.</p>
</body></html>
"""


def _signed(value) -> str:
    return "n/a" if value is None else f"{value:+,}"


def _link(post: dict) -> str:
    text = escape((post.get("caption") or post.get("media_id") or "")[:60])
    url = post.get("permalink") or ""
    if url.startswith("https://"):
        return f'<a href="{escape(url)}">{text or escape(post.get("media_id") or "")}</a>'
    return text


def report_markdown(report: dict) -> str:
    am, cm, en = report["account_metrics"], report["content_metrics"], report["engagement"]
    who = f"@{report['username']}" if report.get("username") else report["ig_user_id"]
    lines = [
        f"**{who}**, {report['period']['start']} to {report['period']['end']}",
        f"- followers: {_n(am.get('followers_total'))} ({_signed(am.get('follower_growth'))})",
        f"- reach per day: avg {_n(am.get('reach_daily_avg'))}, best day {_n(am.get('reach_daily_max'))}; views {_n(am.get('total_views'))}",
        f"- posts: {cm.get('total_posts')}, engagement rate by reach {_n(en.get('engagement_rate_reach'), '%')}",
    ]
    best = cm.get("best_performing_post")
    if best:
        lines.append(f"- best post: {best.get('permalink') or best['media_id']} ({_n(best.get('engagement'))} engagements)")
    if report.get("trends"):
        lines.append(f"- trending: {', '.join(t['media_id'] for t in report['trends'])}")
    return "\n".join(lines)


def _safe_name(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", value)[:100] or "account"


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
) -> list[ReportResult]:
    """Build the report of ``period_end - days + 1 .. period_end`` for each account (the given ones, else
    every account that is not disabled), upsert instagram.performance_reports and write
    ``reports_dir/<ig_user_id>/<kind>_<start>_<end>.html``."""
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
    results, rows = [], []
    for chunk_start in range(0, len(accounts), REPORT_BATCH):
        chunk = accounts[chunk_start:chunk_start + REPORT_BATCH]
        reports = build_reports(conn, chunk, period_start, period_end)
        for ig_user_id in chunk:
            report = reports[ig_user_id]
            report["kind"] = kind
            folder = Path(reports_dir) / _safe_name(ig_user_id)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{kind}_{period_start.isoformat()}_{period_end.isoformat()}.html"
            tmp = path.with_suffix(".html.tmp")
            tmp.write_text(render_html(report), encoding="utf-8")
            tmp.replace(path)
            rows.append((ig_user_id, period_start, period_end, kind, generated_at, report, str(path)))
            results.append(ReportResult(ig_user_id, report, path, report_markdown(report)))
    db.bulk_upsert(conn, "performance_reports", REPORT_COLUMNS, rows, ["ig_user_id", "kind", "period_start", "period_end"])
    return results
