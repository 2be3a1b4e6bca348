"""Today's audience demographics of one account into ``instagram.audience_demographics`` (one snapshot per
account and day; re-running a day replaces its snapshot; the crossed age x gender cells into
``audience_age_gender``) and ``audience_demographics_status`` (ok /
not_available / rejected per metric and breakdown, with the follower total at fetch time).

A picture the API did not give this time (not available, rejected) never erases one measured earlier that day.
Retention packs old pictures (``storage/audience_packing``); a day written again is unpacked first.
Where the API version offers it, the followers online per hour of the last 29 days go to
``instagram.online_followers`` (a later fetch of an hour replaces its value).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ig_analytics.graph_api.demographics import AGE_GENDER, fetch_demographics, fetch_online_followers
from ig_analytics.redaction import redact
from ig_analytics.storage.audience_packing import unpack_audience_day

_STATUS_UPSERT = """
INSERT INTO instagram.audience_demographics_status AS s (ig_user_id, date, metric, breakdown, status, reason,
    timeframe, followers_total, api_version, fetched_at)
VALUES (:id, :day, :metric, :breakdown, :status, :reason, :timeframe, :followers, :version, :at)
ON CONFLICT (ig_user_id, date, metric, breakdown) DO UPDATE SET
    status = EXCLUDED.status, reason = EXCLUDED.reason, timeframe = EXCLUDED.timeframe,
    followers_total = EXCLUDED.followers_total, api_version = EXCLUDED.api_version, fetched_at = EXCLUDED.fetched_at
WHERE EXCLUDED.status = 'ok' OR s.status <> 'ok'
RETURNING 1
"""

_ONLINE_UPSERT = """
INSERT INTO instagram.online_followers (ig_user_id, hour_start, followers_online, api_version, fetched_at)
VALUES (:id, :hour, :n, :version, :at)
ON CONFLICT (ig_user_id, hour_start) DO UPDATE SET followers_online = EXCLUDED.followers_online,
    api_version = EXCLUDED.api_version, fetched_at = EXCLUDED.fetched_at
"""


def _replace_picture(conn, key: dict, values: dict, timeframe: str | None, api_version: str, now: datetime) -> int:
    """One metric x breakdown picture replaces the day's previous one. The crossed age x gender cells have their
    own table (audience_demographics keeps the contract's breakdowns; the view audience_pictures joins both)."""
    extra = {"timeframe": timeframe, "version": api_version, "at": now}
    if key["breakdown"] == AGE_GENDER:
        conn.execute(sa.text("DELETE FROM instagram.audience_age_gender WHERE ig_user_id = :id AND date = :day"
                             " AND metric = :metric"), key)
        rows = [{**key, **extra, "age": k.split("|", 1)[0], "gender": k.split("|", 1)[1], "value": v}
                for k, v in values.items()]
        sql = ("INSERT INTO instagram.audience_age_gender (ig_user_id, date, metric, age, gender, value, timeframe,"
               " api_version, fetched_at) VALUES (:id, :day, :metric, :age, :gender, :value, :timeframe, :version, :at)")
    else:
        conn.execute(sa.text("DELETE FROM instagram.audience_demographics WHERE ig_user_id = :id AND date = :day"
                             " AND metric = :metric AND breakdown = :breakdown"), key)
        rows = [{**key, **extra, "key": k, "value": v} for k, v in values.items()]
        sql = ("INSERT INTO instagram.audience_demographics (ig_user_id, date, metric, breakdown, key, value,"
               " timeframe, api_version, fetched_at) VALUES (:id, :day, :metric, :breakdown, :key, :value,"
               " :timeframe, :version, :at)")
    if rows:
        conn.execute(sa.text(sql), rows)
    return len(rows)


def sync_audience_demographics(engine: Engine, api, ig_user_id: str, day: date, api_version: str,
                               now: datetime) -> int:
    """Fetch every metric x breakdown now and store it as the snapshot of ``day``. Returns rows written."""
    followers = api.profile().followers_count
    results = fetch_demographics(api, followers)  # the count words an empty answer's reason
    written = 0
    with engine.begin() as conn:
        unpack_audience_day(conn, ig_user_id, day)  # an old day re-synced: its rows are replaced or kept as rows
        for r in results:
            key = {"id": ig_user_id, "day": day, "metric": r.metric, "breakdown": r.breakdown}
            replaced = conn.execute(sa.text(_STATUS_UPSERT), {
                **key, "status": r.status, "reason": redact(r.reason) if r.reason else None,
                "timeframe": r.timeframe, "followers": followers, "version": api_version, "at": now,
            }).first()
            if replaced is None or r.status != "ok":
                continue
            written += _replace_picture(conn, key, r.values, r.timeframe, api_version, now)
    online = fetch_online_followers(api, now, followers)  # the API's "last 29 days", on the caller's (the client's) clock
    if online.hours:
        with engine.begin() as conn:
            conn.execute(sa.text(_ONLINE_UPSERT), [
                {"id": ig_user_id, "hour": hour, "n": n, "version": api_version, "at": now}
                for hour, n in sorted(online.hours.items())])
        written += len(online.hours)
    return written
