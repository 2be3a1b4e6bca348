"""The audience parts of the report page and its Markdown summary: who follows the account (top countries, top
cities, age, gender, the age x gender table) and when its followers are online, beside when its posts did best.
Input: the report JSON's ``audience`` and ``followers_online`` (audience.py), nothing else."""

from __future__ import annotations

from html import escape

from ig_analytics.analytics import charts


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _bars(items: list[dict], title: str, label_key: str = "key") -> str:
    return charts.hbar_chart(
        [(str(i.get(label_key) or i["key"])[:24], i.get("share_of_followers") if i.get("share_of_followers") is not None
          else float(i["value"]), f"{i['value']:,} ({_pct(i.get('share_of_followers'))})") for i in items],
        title=title, width=420)


def age_gender_html(table: dict | None) -> str:
    """Rows: age ranges; columns F, M, U (and the row's total); cells: share of the known followers."""
    if not table:
        return ('<p class="note">No age x gender table in this snapshot: Meta gave age and gender as separate '
                'pictures.</p>')
    head = "".join(f"<th>{escape(n)} ({escape(g)})</th>" for g, n in zip(table["genders"], table["gender_names"]))
    rows = "".join(
        f"<tr><td>{escape(r['age'])}</td>"
        + "".join(f"<td class=n title=\"{r['values'][g]:,}\">{_pct(r['shares_of_known'][g])}</td>"
                  for g in table["genders"])
        + f"<td class=n>{_pct(r['share_of_known'])}</td></tr>" for r in table["rows"])
    return (f'<h3>Age x gender (share of the {table["known_followers"]:,} followers whose age Meta knows)</h3>'
            f'<table class="age-gender"><tr><th>age</th>{head}<th>all</th></tr>{rows}</table>')


def audience_html(report: dict) -> str:
    """The "Audience" section: four small bar charts and the age x gender table, or why there is nothing to show."""
    a = report.get("audience") or {}
    if a.get("status") in (None, "no_snapshot", "not_available"):
        return f'<h2>Audience</h2><p class="note">{escape(a.get("note") or "No audience data.")}</p>'
    charts_html = "".join(f'<div class="panel">{c}</div>' for c in (
        _bars(a.get("top_countries") or [], "Top countries (share of followers)"),
        _bars(a.get("top_cities") or [], "Top cities (share of followers)"),
        _bars(a.get("age") or [], "Age (share of followers)"),
        _bars(a.get("gender") or [], "Gender (share of followers)", label_key="name"),
    ))
    extra = f' {escape(a["note"])}' if a.get("note") else ""
    total = f': {a["followers_total"]:,} in total' if a.get("followers_total") is not None else ""
    return (f'<h2>Audience</h2><div class="sub">Followers as of {escape(a["as_of"])}{total}</div>'
            f'<div class="grid">{charts_html}</div><p class="note">Shares are of all followers and cover '
            f'{escape(a.get("covers") or "")}.{extra}</p>{age_gender_html(a.get("age_gender"))}')


def online_html(report: dict) -> str:
    """When followers are online (30 days ending with the period), for the side of the best posting times."""
    o = report.get("followers_online") or {}
    tz = report.get("timezone") or "UTC"
    if not o.get("available"):
        return f'<h3>When your followers are online</h3><p class="note">{escape(o.get("note") or "")}</p>'
    heat = charts.heatmap(
        [{"weekday": c["weekday"], "hour": c["hour"], "value": c["avg_followers_online"]} for c in o["grid"]],
        title=f"When your followers are online ({tz}), average of the 30 days to the period's end",
        unit="", legend="followers online (average per hour)",
        footer="Colour: followers online in that hour, averaged over the days measured (Meta's online_followers).")
    peaks = ", ".join(f"{p['weekday_name']} {p['hour']:02d}:00 ({p['avg_followers_online']:,.0f})"
                      for p in o.get("peak_hours") or [])
    return (f'<h3>When your followers are online</h3><div class="panel">{heat}</div>'
            f'<p class="note">Most online: {escape(peaks)}.</p>')


def best_times_note(report: dict) -> str:
    """One line comparing when posts did best with when followers are online."""
    best = report.get("best_posting_times") or []
    did_best = ", ".join(f"{s['weekday_name']} {s['hour']:02d}:00" for s in best[:3]) or "not enough posts yet"
    o = report.get("followers_online") or {}
    online = ", ".join(f"{p['weekday_name']} {p['hour']:02d}:00" for p in (o.get("peak_hours") or [])[:3])
    return f"when your posts did best: {did_best}; when your followers are online: {online or 'not available'}"


def audience_markdown(report: dict) -> list[str]:
    a = report.get("audience") or {}
    lines = []
    if a.get("status") in ("ok", "partial"):
        def top(key: str, label: str = "key") -> str:
            return ", ".join(f"{i.get(label) or i['key']} {_pct(i.get('share_of_followers'))}"
                             for i in a.get(key) or []) or "n/a"
        lines.append(f"- audience ({a['as_of']}): countries {top('top_countries')}; cities {top('top_cities')}")
        lines.append(f"- age {top('age')}; gender {top('gender', 'name')}")
        table = a.get("age_gender")
        if table:
            cells = "; ".join(
                f"{r['age']} " + " ".join(f"{g} {_pct(r['shares_of_known'][g])}" for g in table["genders"])
                for r in table["rows"])
            lines.append(f"- age x gender (of {table['known_followers']:,} known): {cells}")
    else:
        lines.append(f"- audience: {a.get('note') or 'no data'}")
    lines.append(f"- {best_times_note(report)}")
    return lines
