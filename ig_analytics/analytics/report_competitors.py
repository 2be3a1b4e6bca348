"""The "You vs competitors" part of the report: the JSON section (``competitors``: the newest benchmark week that
ends in the period, every subject's row with its ranks, and the follower counts of the period's days for the
chart) and its HTML and Markdown. Public fields only: followers, posts, likes and comments, for the account too."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from html import escape

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ig_analytics.analytics import charts

BASIS = ("public fields only (followers, posts, likes, comments), the account's own row read the same way; no "
         "reach, views or saves: Meta shows none for other accounts")
_ROW_KEYS = ("subject", "is_self", "followers", "follower_growth", "follower_growth_pct", "posts", "reels",
             "carousels", "images", "avg_interactions_per_post", "engagement_per_follower", "rank_follower_growth",
             "rank_follower_growth_pct", "rank_posts", "rank_avg_interactions", "rank_engagement_per_follower",
             "subjects")


def competitor_sections(conn: Connection, ig_user_ids: list[str], start: date, end: date) -> dict[str, dict]:
    """ig_user_id -> its ``competitors`` section, for the accounts with a benchmark week ending in the period
    (the newest such week; a week ends on its Sunday)."""
    rows = conn.execute(sa.text(
        """SELECT * FROM instagram.competitor_benchmarks b
           WHERE b.ig_user_id = ANY(:users) AND b.week_start = (
               SELECT max(week_start) FROM instagram.competitor_benchmarks x
               WHERE x.ig_user_id = b.ig_user_id AND x.week_start <= :end AND x.week_start + 6 >= :start)
           ORDER BY b.ig_user_id, b.is_self DESC, b.subject"""),
        {"users": ig_user_ids, "start": start, "end": end}).mappings().all()
    days = conn.execute(sa.text(
        """SELECT ig_user_id, username, date, followers_count FROM instagram.competitor_profiles_daily
           WHERE ig_user_id = ANY(:users) AND date BETWEEN :start AND :end ORDER BY date"""),
        {"users": ig_user_ids, "start": start - timedelta(days=1), "end": end}).all()
    followers: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for ig_user_id, username, day, count in days:
        followers[ig_user_id][username].append({"date": day.isoformat(), "followers": count})
    out: dict[str, dict] = {}
    for r in rows:
        section = out.setdefault(r["ig_user_id"], {
            "week_start": r["week_start"].isoformat(), "week_end": (r["week_start"] + timedelta(days=6)).isoformat(),
            "basis": BASIS, "subjects": []})
        section["subjects"].append({k: r[k] for k in _ROW_KEYS})
    for ig_user_id, section in out.items():
        names = {s["subject"] for s in section["subjects"]}
        section["followers_by_day"] = {k: v for k, v in followers[ig_user_id].items() if k in names}
        me = next((s for s in section["subjects"] if s["is_self"]), None)
        section["your_ranks"] = {k: me[k] for k in _ROW_KEYS if k.startswith("rank_")} if me else None
    return out


def _n(value, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{suffix}"


def _rank(value, of) -> str:
    return "-" if value is None else f"{value}/{of}"


def competitors_html(report: dict) -> str:
    """The section: a table with ranks, a follower-growth chart, the format mix (nothing without data)."""
    c = report.get("competitors")
    if not c:
        return ""
    rows = "".join(
        f"<tr{' class=self' if s['is_self'] else ''}><td>@{escape(s['subject'])}{' (you)' if s['is_self'] else ''}"
        f"</td><td class=n>{_n(s['followers'])}</td><td class=n>{_n(s['follower_growth_pct'], 2, '%')} "
        f"({_rank(s['rank_follower_growth_pct'], s['subjects'])})</td><td class=n>{_n(s['posts'])} "
        f"({_rank(s['rank_posts'], s['subjects'])})</td><td class=n>{_n(s['avg_interactions_per_post'], 1)} "
        f"({_rank(s['rank_avg_interactions'], s['subjects'])})</td><td class=n>"
        f"{_n(s['engagement_per_follower'], 2, '%')} ({_rank(s['rank_engagement_per_follower'], s['subjects'])})"
        f"</td></tr>" for s in c["subjects"])
    return (f'<h2>You vs competitors</h2><div class="sub">Week {escape(c["week_start"])} to '
            f'{escape(c["week_end"])}; rank 1 = best</div>'
            f'<table><tr><th>account</th><th>followers</th><th>follower growth</th><th>posts</th>'
            f'<th>likes + comments per post</th><th>engagement per follower</th></tr>{rows}</table>'
            f'<div class="grid"><div class="panel">{_growth_chart(c)}</div><div class="panel">{_mix_chart(c)}</div>'
            f'</div><p class="note">Compared on {escape(c["basis"])}. Posts whose owner hides like counts are left '
            f'out of the averages.</p>')


def _growth_chart(c: dict) -> str:
    """Followers of each subject as a change since the first day shown (%), so small and large accounts share
    one axis."""
    by_day = c.get("followers_by_day") or {}
    labels = sorted({p["date"] for points in by_day.values() for p in points})
    series = []
    for subject, points in sorted(by_day.items()):
        values = {p["date"]: p["followers"] for p in points}
        base = next((values[d] for d in labels if values.get(d)), None)
        series.append((f"@{subject}", [None if values.get(d) is None or not base else
                                       (values[d] - base) * 100.0 / base for d in labels]))
    return charts.line_chart([d[5:] for d in labels], series, title="Follower growth since the first day (%)",
                             markers=True)


def _mix_chart(c: dict) -> str:
    subjects = c["subjects"]
    return charts.line_chart([f"@{s['subject']}"[:14] for s in subjects],
                             [(kind, [s[kind] for s in subjects]) for kind in ("reels", "carousels", "images")],
                             title="Posts of the week by format", bars=True, integer=True)


def competitors_markdown(report: dict) -> list[str]:
    c = report.get("competitors")
    if not c:
        return []
    me = next((s for s in c["subjects"] if s["is_self"]), None)
    others = ", ".join(f"@{s['subject']} {_n(s['engagement_per_follower'], 2, '%')}" for s in c["subjects"]
                       if not s["is_self"])
    if me is None:
        return [f"- competitors (week of {c['week_start']}): {others}"]
    n = me["subjects"]
    return [f"- vs competitors (week of {c['week_start']}): engagement per follower "
            f"{_n(me['engagement_per_follower'], 2, '%')} (rank {_rank(me['rank_engagement_per_follower'], n)}), "
            f"follower growth {_n(me['follower_growth_pct'], 2, '%')} "
            f"(rank {_rank(me['rank_follower_growth_pct'], n)});"
            f" {others}"]
