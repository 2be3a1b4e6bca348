"""The report's audience sections, for many accounts at once: who follows the account (the newest
``audience_demographics`` snapshot in the period) and when its followers are online (``online_followers`` of the
30 days that end with the period, by weekday and hour in the account's time zone). Definitions: docs/analytics.md,
section 5 (`audience`, `followers_online`). Age x gender comes from the crossed picture (``breakdown = 'age,gender'``,
keys ``<age>|<gender>``); its shares are of the followers in it (those whose age Meta knows).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ig_analytics.analytics._common import ACCOUNT_TZ_CTE
from ig_analytics.analytics.charts import WEEKDAYS

TOP_PLACES = 5
TOP_ONLINE_HOURS = 5
ONLINE_DAYS = 30
METRIC = "follower_demographics"
AGE_ORDER = ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
GENDER_NAMES = {"F": "female", "M": "male", "U": "unknown"}
GENDERS = ("F", "M", "U")
AGE_GENDER = "age,gender"
BREAKDOWNS = ("age", "gender", "country", "city", AGE_GENDER)
COVERS = ("followers whose age, gender or location Meta knows (so shares add up to less than 100%); only the "
          "top 45 values of each breakdown")
NOT_AVAILABLE = ("Not available: Meta gives audience demographics only for accounts with at least 100 followers"
                 " ({followers} followers on {day}).")
NO_SNAPSHOT = "No audience snapshot was taken in this period (the daily audience_demographics sync had not run)."
NO_ONLINE = ("No data on when followers are online: Meta's online_followers is served only by API versions up to "
             "v24 (not v25) and only for accounts with at least 100 followers.")

_STATUS = f"""
WITH latest AS (
    SELECT ig_user_id, max(date) AS date FROM instagram.audience_demographics_status
    WHERE ig_user_id = ANY(CAST(:users AS text[])) AND metric = '{METRIC}' AND date BETWEEN :start AND :end
    GROUP BY ig_user_id
)
SELECT s.ig_user_id, s.date, s.breakdown, s.status, s.reason, s.followers_total
FROM latest l JOIN instagram.audience_demographics_status s USING (ig_user_id, date)
WHERE s.metric = '{METRIC}'
"""

_VALUES = f"""
WITH latest AS (
    SELECT ig_user_id, max(date) AS date FROM instagram.audience_demographics_status
    WHERE ig_user_id = ANY(CAST(:users AS text[])) AND metric = '{METRIC}' AND date BETWEEN :start AND :end
    GROUP BY ig_user_id
)
SELECT d.ig_user_id, d.breakdown, d.key, d.value
FROM latest l CROSS JOIN LATERAL (  -- the contract breakdowns, the crossed cells and the packed pictures
    SELECT * FROM instagram.audience_pictures a WHERE a.ig_user_id = l.ig_user_id AND a.date = l.date
    OFFSET 0  -- kept a subquery: its account and day reach the packed table's key (a join would scan it whole)
) d
WHERE d.metric = '{METRIC}'
ORDER BY d.ig_user_id, d.breakdown, d.value DESC, d.key
"""

# the hours of the 30 days ending with the period's last day, in the account's time zone
_ONLINE = f"""
WITH {ACCOUNT_TZ_CTE},
acc AS (
    SELECT t.ig_user_id, t.tz,
           (CAST(:end AS date) - {ONLINE_DAYS - 1})::timestamp AT TIME ZONE t.tz AS from_ts,
           (CAST(:end AS date) + 1)::timestamp AT TIME ZONE t.tz AS to_ts
    FROM account_tz t WHERE t.ig_user_id = ANY(CAST(:users AS text[]))
)
SELECT o.ig_user_id,
       EXTRACT(isodow FROM o.hour_start AT TIME ZONE acc.tz)::int AS weekday,
       EXTRACT(hour FROM o.hour_start AT TIME ZONE acc.tz)::int AS hour,
       avg(o.followers_online)::float8 AS avg_followers_online, count(*) AS hours_measured,
       min(o.hour_start) AS first_hour, max(o.hour_start) AS last_hour
FROM acc JOIN instagram.online_followers o ON o.ig_user_id = acc.ig_user_id
     AND o.hour_start >= acc.from_ts AND o.hour_start < acc.to_ts
GROUP BY o.ig_user_id, 2, 3
ORDER BY o.ig_user_id, 2, 3
"""


def _share(value: int, total: int | None) -> float | None:
    return round(value * 100.0 / total, 1) if total else None


def age_gender_table(cells: list[tuple[str, int]]) -> dict | None:
    """Rows: age ranges (youngest first); columns F, M, U; each cell's value and share of the known followers
    (the sum of all cells). None without a crossed picture (snapshots taken before it was asked)."""
    if not cells:
        return None
    values: dict[str, dict[str, int]] = {}
    for key, value in cells:
        age, _, gender = key.partition("|")
        values.setdefault(age, {})[gender] = value
    known = sum(v for _, v in cells)
    ages = sorted(values, key=lambda a: (AGE_ORDER.index(a) if a in AGE_ORDER else len(AGE_ORDER), a))
    genders = [*GENDERS, *sorted({g for row in values.values() for g in row} - set(GENDERS))]
    rows = [{"age": age,
             "values": {g: values[age].get(g, 0) for g in genders},
             "shares_of_known": {g: _share(values[age].get(g, 0), known) for g in genders},
             "share_of_known": _share(sum(values[age].values()), known)} for age in ages]
    return {"known_followers": known, "genders": genders, "gender_names": [GENDER_NAMES.get(g, g) for g in genders],
            "rows": rows}


def _audience(status_rows: list[Any], values: dict[str, list[tuple[str, int]]]) -> dict:
    if not status_rows:
        return {"as_of": None, "status": "no_snapshot", "note": NO_SNAPSHOT, "covers": COVERS,
                "followers_total": None, "top_countries": [], "top_cities": [], "age": [], "gender": [],
                "age_gender": None, "breakdowns": {}}
    day = status_rows[0].date
    followers = status_rows[0].followers_total
    breakdowns = {r.breakdown: {"status": r.status, "reason": r.reason} for r in status_rows}
    statuses = {b["status"] for b in breakdowns.values()}
    status = "ok" if statuses == {"ok"} else "not_available" if "ok" not in statuses else "partial"

    def items(breakdown: str, limit: int | None = None) -> list[dict]:
        rows = values.get(breakdown, [])
        if breakdown == "age":
            rows = sorted(rows, key=lambda kv: AGE_ORDER.index(kv[0]) if kv[0] in AGE_ORDER else len(AGE_ORDER))
        return [{"key": k, "value": v, "share_of_followers": _share(v, followers)} for k, v in rows[:limit]]

    note = None
    if statuses == {"not_available"} and (followers is None or followers < 100):  # else the stored reason says why
        note = NOT_AVAILABLE.format(followers=f"{followers:,}" if followers is not None else "an unknown number of",
                                    day=day.isoformat())
    elif status == "not_available":
        note = "Not available: " + next(b["reason"] or b["status"] for b in breakdowns.values())
    elif status == "partial":
        missing = sorted(b for b, s in breakdowns.items() if s["status"] != "ok")
        note = "Not available for " + ", ".join(missing) + " in this snapshot."
    gender = items("gender")
    for g in gender:
        g["name"] = GENDER_NAMES.get(g["key"], g["key"])
    return {"as_of": day.isoformat(), "status": status, "note": note, "covers": COVERS, "followers_total": followers,
            "top_countries": items("country", TOP_PLACES), "top_cities": items("city", TOP_PLACES),
            "age": items("age"), "gender": gender, "age_gender": age_gender_table(values.get(AGE_GENDER, [])),
            "breakdowns": breakdowns}


def _online(rows: list[Any]) -> dict:
    if not rows:
        return {"available": False, "note": NO_ONLINE, "from": None, "to": None, "grid": [], "peak_hours": []}
    grid = [{"weekday": r.weekday, "weekday_name": WEEKDAYS[r.weekday - 1], "hour": r.hour,
             "avg_followers_online": round(r.avg_followers_online, 1), "hours_measured": r.hours_measured}
            for r in rows]
    peak = sorted(grid, key=lambda c: (-c["avg_followers_online"], c["weekday"], c["hour"]))[:TOP_ONLINE_HOURS]
    return {"available": True, "note": None, "from": min(r.first_hour for r in rows).isoformat(),
            "to": max(r.last_hour for r in rows).isoformat(), "grid": grid, "peak_hours": peak}


def audience_sections(conn: Connection, ig_user_ids: Iterable[str], start: date, end: date) -> dict[str, dict]:
    """Per account: {"audience": ..., "followers_online": ...} (accounts without any data get the "not
    available" forms)."""
    users = list(ig_user_ids)
    params = {"users": users, "start": start, "end": end}
    status: dict[str, list[Any]] = defaultdict(list)
    for row in conn.execute(sa.text(_STATUS), params):
        status[row.ig_user_id].append(row)
    values: dict[str, dict[str, list[tuple[str, int]]]] = defaultdict(lambda: defaultdict(list))
    for row in conn.execute(sa.text(_VALUES), params):
        values[row.ig_user_id][row.breakdown].append((row.key, int(row.value)))
    online: dict[str, list[Any]] = defaultdict(list)
    for row in conn.execute(sa.text(_ONLINE), params):
        online[row.ig_user_id].append(row)
    return {u: {"audience": _audience(status.get(u, []), values.get(u, {})),
                "followers_online": _online(online.get(u, []))} for u in users}


def audience_lines(conn: Connection) -> list[str]:
    """One terminal line per account with an audience snapshot: its newest picture's top countries, or why there
    is none (the demo prints them after its sync)."""
    from ig_analytics.terminal_text import printable

    newest = conn.execute(sa.text(
        "SELECT a.ig_user_id, a.username, max(s.date) AS day FROM instagram.accounts a"
        " JOIN instagram.audience_demographics_status s USING (ig_user_id) GROUP BY 1, 2 ORDER BY 2, 1")).all()
    lines = []
    for row in newest:
        a = audience_sections(conn, [row.ig_user_id], row.day, row.day)[row.ig_user_id]["audience"]
        who = f"@{printable(row.username, 30)}" if row.username else row.ig_user_id
        if a["status"] in ("ok", "partial"):
            top = ", ".join(f"{printable(c['key'], 40)} {c['share_of_followers']:.1f}%" for c in a["top_countries"][:3])
            lines.append(f"Audience {who} ({a['as_of']}): top countries {top} of {a['followers_total']:,} followers")
        else:
            lines.append(f"Audience {who}: {a['note']}")
    return lines
