"""The report as a self-contained HTML page (inline CSS and SVG, no scripts, no external resources) and as a
short Markdown summary. Input: the report JSON of reports.py, nothing else. Counts are shown as integers,
averages and rates with one decimal."""

from __future__ import annotations

from html import escape

from ig_analytics.analytics import charts
from ig_analytics.analytics.report_conversation import conversation_html
from ig_analytics.analytics.report_audience import audience_html, audience_markdown, best_times_note, online_html
from ig_analytics.analytics.report_competitors import competitors_html, competitors_markdown


def _n(value, suffix: str = "") -> str:
    """A count as an integer, anything fractional with one decimal; n/a for NULL."""
    if value is None:
        return "n/a"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}{suffix}"
    return f"{int(value):,}{suffix}"


def _avg(value, suffix: str = "") -> str:
    """An average or a rate: always one decimal."""
    return "n/a" if value is None else f"{value:,.1f}{suffix}"


def _signed(value) -> str:
    return "n/a" if value is None else f"{value:+,}"


def _plural(count, word: str, plural: str | None = None) -> str:
    """ "1 post", "2 posts" ("n/a" for NULL)."""
    if count is None:
        return "n/a"
    count = int(count)
    return f"{count:,} {word if count == 1 else (plural or word + 's')}"


def _link(post: dict, synthetic: bool = False) -> str:
    text = escape((post.get("caption") or post.get("media_id") or "")[:60]) or escape(post.get("media_id") or "")
    url = post.get("permalink") or ""
    if not url.startswith("https://"):
        return text
    if synthetic:
        return (f'<a href="{escape(url)}" title="sandbox data: this permalink is synthetic and leads nowhere">'
                f'{text}</a> <span class="note">(synthetic link)</span>')
    return f'<a href="{escape(url)}">{text}</a>'


def _follower_note(am: dict) -> str:
    parts = [f"growth {_signed(am.get('follower_growth'))}"]
    if am.get("new_followers") is not None:
        parts.append(f"+{am['new_followers']:,} new")
    if am.get("unfollows") is not None:
        parts.append(f"-{am['unfollows']:,} unfollows")
    return ", ".join(parts)


def _type_note(t: dict) -> str:
    count = _plural(t["posts"], "story", "stories") if t["post_type"] == "STORY" else _plural(t["posts"], "post")
    return f"{_avg(t.get('engagement_rate_reach'), '%')} ({count})"


def _trend_item(t: dict, synthetic: bool) -> str:
    how = (f"{_n(t.get('engagement'))} engagements vs {_n(t.get('expected_engagement'))} expected at its age "
           f"(curve of {_plural(t.get('baseline_n'), 'other post')})" if t.get("method") == "cross_sectional"
           else f"+{_n(t.get('gain'))} engagements in the last hours vs {_plural(t.get('baseline_n'), 'earlier post')} "
                "at the same age")
    return (f"<li>#{t['rank']} {_link(t, synthetic)}: score {_avg(t.get('score'))} "
            f"<span class=\"tag\">{escape(str(t.get('method') or 'same_age_growth'))}</span>, {how}; "
            f"engagement rate {_avg(t.get('engagement_rate'), '%')}, reach {_n(t.get('reach'))}</li>")


_STYLE = """body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 24px; color: #0f172a; background: #f8fafc; }
h1 { margin: 0 0 4px 0; font-size: 24px; } .sub { color: #475569; margin-bottom: 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 16px; }
.card { background: #1e3a8a; color: #fff; border-radius: 8px; padding: 12px 16px; min-width: 150px; }
.card .k { font-size: 12px; opacity: .85; } .card .v { font-size: 24px; font-weight: bold; } .card .s { font-size: 11px; opacity: .8; }
.grid { display: flex; flex-wrap: wrap; gap: 16px; } .panel { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 8px; }
table { border-collapse: collapse; width: 100%; background: #fff; } th, td { border-bottom: 1px solid #e2e8f0; padding: 6px 8px; font-size: 13px; text-align: left; }
th { background: #e0e7ff; } td.n { text-align: right; } .note { color: #64748b; font-size: 12px; }
.tag { background: #e0e7ff; border-radius: 4px; padding: 0 4px; font-size: 11px; }"""


def _charts_html(report: dict) -> str:
    """Followers, reach and views per day, and the engagement rate by post type: the report's first panels."""
    daily = report.get("daily") or []
    labels = [d["date"][5:] for d in daily]
    followers_chart = charts.line_chart(
        labels, [("followers (end of day)", [d.get("followers_total") for d in daily])],
        title="Followers (running total)", integer=True, markers=True,
    )
    reach_chart = charts.line_chart(
        labels,
        [("reach (unique per day)", [d.get("reach") for d in daily]), ("views", [d.get("views") for d in daily])],
        title="Reach and views per day", bars=True, integer=True,
    )
    type_chart = charts.hbar_chart(
        [(t["post_type"], t.get("engagement_rate_reach"), _type_note(t)) for t in report.get("by_post_type") or []],
        title="Engagement rate by reach, by post type",
    )
    return (f'<div class="grid"><div class="panel">{followers_chart}</div><div class="panel">{reach_chart}</div>\n'
            f'<div class="panel">{type_chart}</div></div>')


def _top_posts_rows(report: dict, synthetic: bool) -> str:
    return "".join(
        f"<tr><td>{escape((p.get('published_at') or '')[:16].replace('T', ' '))}</td>"
        f"<td>{escape(p.get('media_product_type') or p.get('media_type') or '')}</td>"
        f"<td>{_link(p, synthetic)}</td><td class=n>{_n(p.get('engagement'))}</td>"
        f"<td class=n>{_n(p.get('reach'))}</td><td class=n>{_avg(p.get('engagement_rate_reach'), '%')}</td>"
        f"<td class=n>{_avg(p.get('performance_score'))}</td></tr>"
        for p in report.get("top_posts") or []
    ) or "<tr><td colspan=7>No posts with data in this period.</td></tr>"


def _cards_html(report: dict) -> str:
    am, cm, en = report["account_metrics"], report["content_metrics"], report["engagement"]
    stories = cm.get("stories") or {}
    cards = [
        ("Followers", _n(am.get("followers_total")), _follower_note(am)),
        ("Reach / day (avg)", _avg(am.get("reach_daily_avg")), f"best day {_n(am.get('reach_daily_max'))}"),
        ("Views", _n(am.get("total_views")), "sum over the period"),
        ("Posts", _n(cm.get("total_posts")), f"avg reach {_avg(cm.get('avg_reach'))} (stories excluded)"),
        ("Stories", _n(cm.get("total_stories")),
         f"reach {_n(stories.get('story_reach'))}, {_plural(stories.get('story_replies'), 'reply', 'replies')}"),
        ("Engagement rate", _avg(en.get("engagement_rate_reach"), "%"), "by reach, posts"),
        ("Engagement rate", _avg(en.get("engagement_rate_views"), "%"), "by views, posts"),
    ]
    return "".join(f"<div class=card><div class=k>{escape(k)}</div><div class=v>{escape(v)}</div>"
                   f"<div class=s>{escape(s)}</div></div>" for k, v, s in cards)


def render_html(report: dict) -> str:
    en = report["engagement"]
    synthetic = bool(report.get("permalinks_synthetic"))
    who = escape(f"@{report['username']}" if report.get("username") else report["ig_user_id"])
    period = f"{report['period']['start']} to {report['period']['end']}"
    heat = charts.heatmap(
        [{"weekday": s["weekday"], "hour": s["hour"], "value": s.get("shrunk_engagement_rate_reach"),
          "posts": s.get("posts"), "reliable": s.get("reliable")} for s in report.get("best_posting_times_grid") or []],
        title=f"Best posting times ({report.get('timezone') or 'UTC'}), posts of the last 90 days",
    )
    trend_rows = "".join(_trend_item(t, synthetic) for t in report.get("trends") or []) or "<li>No trending posts.</li>"
    synthetic_note = (" Links marked <em>synthetic</em> come from the local sandbox and lead nowhere."
                      if synthetic else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Instagram report {who} {escape(period)}</title>
<style>
{_STYLE}
</style></head><body>
<h1>Instagram performance: {who}</h1>
<div class="sub">{escape(period)} ({escape(report.get('timezone') or 'UTC')})</div>
<div class="cards">{_cards_html(report)}</div>
{_charts_html(report)}
<h2>Top posts</h2>
<table><tr><th>published</th><th>type</th><th>post</th><th>engagement</th><th>reach</th><th>rate by reach</th><th>score</th></tr>{_top_posts_rows(report, synthetic)}</table>
<h2>Trending now</h2><ul>{trend_rows}</ul>
<h2>Best posting times</h2><p class="note">{escape(best_times_note(report)).capitalize()}.</p>
<h3>When your posts did best</h3><div class="panel">{heat}</div>
{online_html(report)}
{audience_html(report)}
{competitors_html(report)}
{conversation_html(report)}
<p class="note">Reach is counted per day (unique accounts that day); a sum over days would count an account once per
day, so no period total is shown. Rates are percentages; n/a means the data was not reported. Post averages and
rates cover {escape(en.get('covers') or 'posts')}. Followers: end-of-day totals, observed or derived from the daily
follows and unfollows.{synthetic_note}</p>
</body></html>
"""


def report_markdown(report: dict) -> str:
    am, cm, en = report["account_metrics"], report["content_metrics"], report["engagement"]
    who = f"@{report['username']}" if report.get("username") else report["ig_user_id"]
    lines = [
        f"**{who}**, {report['period']['start']} to {report['period']['end']}",
        f"- followers: {_n(am.get('followers_total'))} ({_follower_note(am)})",
        f"- reach per day: avg {_avg(am.get('reach_daily_avg'))}, best day {_n(am.get('reach_daily_max'))}; "
        f"views {_n(am.get('total_views'))}",
        f"- {_plural(cm.get('total_posts'), 'post')} and {_plural(cm.get('total_stories'), 'story', 'stories')}; "
        f"engagement rate by reach {_avg(en.get('engagement_rate_reach'), '%')} (posts)",
    ]
    best = cm.get("best_performing_post")
    if best:
        lines.append(f"- best post: {best.get('permalink') or best['media_id']} "
                     f"({_n(best.get('engagement'))} engagements)")
    if report.get("trends"):
        lines.append("- trending: " + ", ".join(f"{t['media_id']} ({t.get('method')})" for t in report["trends"]))
    lines.extend(audience_markdown(report))
    lines.extend(competitors_markdown(report))
    return "\n".join(lines)
