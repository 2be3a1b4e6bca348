"""Helpers shared by the analytics computations: the engagement formula in SQL, safe time zones, ids.
(Frames in and out of PostgreSQL: storage/frames.py.)"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

from ig_analytics import clock

# engagement of a snapshot row ``s`` (docs/analytics.md): total_interactions when reported, else the sum of the
# parts, NULL parts counting as 0 only when at least one part is known.
ENGAGEMENT_SQL = (
    "COALESCE({s}.total_interactions, CASE WHEN {s}.likes IS NULL AND {s}.comments IS NULL AND {s}.saved IS NULL "
    "AND {s}.shares IS NULL THEN NULL ELSE COALESCE({s}.likes, 0) + COALESCE({s}.comments, 0) "
    "+ COALESCE({s}.saved, 0) + COALESCE({s}.shares, 0) END)"
)


def engagement_sql(alias: str = "s") -> str:
    return ENGAGEMENT_SQL.format(s=alias)


# An account's time zone, or UTC when the stored name is unknown to PostgreSQL (so one bad row cannot fail
# every account's computation). Use as ``{ACCOUNT_TZ_SQL}`` with the accounts table aliased ``a``.
ACCOUNT_TZ_CTE = (
    "account_tz AS (SELECT a.ig_user_id, COALESCE(z.name, 'UTC') AS tz FROM instagram.accounts a "
    "LEFT JOIN pg_timezone_names z ON z.name = a.timezone)"
)


def utc_now() -> datetime:
    return clock.now()


def as_utc(value: datetime | None) -> datetime:
    if value is None:
        return utc_now()
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
    return value.astimezone(timezone.utc)


def id_list(values: Iterable[str] | None) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        return [values]
    return [str(v) for v in values]
