"""The audience pictures' two forms (issue 27). A day's picture is written as rows (``audience_demographics``,
``audience_age_gender``); once older than retention's ``audience_pack_after_days`` (1 day: the daily sync writes
only the newest day) it is moved into one row per account and day of ``audience_pictures_packed`` (parallel arrays in ``audience_pictures``' shape, compressed by
TOAST: ~2 kB instead of ~160 rows x ~255 B). The view ``audience_pictures`` shows both forms alike, so what reads
it (the report's audience section, the demographics check, the analysts) gets the same rows either way.

An account-day is in one form only: packing moves a batch of accounts' rows in one statement (retention runs
one transaction per batch, ``storage/account_batches``), and a write to a packed day (a re-sync of an old
partition) first moves it back (``unpack_audience_day``)."""

from __future__ import annotations

from datetime import date
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_COLUMNS = "metric, breakdown, key, value, timeframe, api_version, fetched_at"
_ORDER = "ORDER BY metric, breakdown, key"  # the same order in every array: element i of each is row i

# The tables a picture's rows are in: the accounts that may have a picture to pack.
PACKED_FROM = ("audience_demographics", "audience_age_gender")

# One statement: it packs exactly the rows it deletes (a row written meanwhile stays a row); each account's old days
# are read by the primary key (ig_user_id, date, ...).
_PACK = f"""
WITH demographics AS (
    DELETE FROM instagram.audience_demographics WHERE ig_user_id = ANY(:ids) AND date < :before
    RETURNING ig_user_id, date, {_COLUMNS}
), age_gender AS (
    DELETE FROM instagram.audience_age_gender WHERE ig_user_id = ANY(:ids) AND date < :before
    RETURNING ig_user_id, date, metric, 'age,gender' AS breakdown, age || '|' || gender AS key, value, timeframe,
              api_version, fetched_at
), moved AS (SELECT * FROM demographics UNION ALL SELECT * FROM age_gender)
INSERT INTO instagram.audience_pictures_packed (ig_user_id, date, {_COLUMNS})
SELECT ig_user_id, date, array_agg(metric {_ORDER}), array_agg(breakdown {_ORDER}), array_agg(key {_ORDER}),
       array_agg(value {_ORDER}), array_agg(timeframe {_ORDER}), array_agg(api_version {_ORDER}),
       array_agg(fetched_at {_ORDER})
FROM moved GROUP BY ig_user_id, date
"""

_UNPACK = f"""
WITH packed AS (
    DELETE FROM instagram.audience_pictures_packed WHERE ig_user_id = :id AND date = :day
    RETURNING ig_user_id, date, {_COLUMNS}
), rows AS (
    SELECT p.ig_user_id, p.date, u.* FROM packed p,
           unnest(p.metric, p.breakdown, p.key, p.value, p.timeframe, p.api_version, p.fetched_at)
               AS u({_COLUMNS})
), age_gender AS (
    INSERT INTO instagram.audience_age_gender (ig_user_id, date, metric, age, gender, value, timeframe, api_version,
                                               fetched_at)
    SELECT ig_user_id, date, metric, split_part(key, '|', 1), substr(key, strpos(key, '|') + 1), value, timeframe,
           api_version, fetched_at FROM rows WHERE breakdown = 'age,gender'
)
INSERT INTO instagram.audience_demographics (ig_user_id, date, {_COLUMNS})
SELECT ig_user_id, date, {_COLUMNS} FROM rows WHERE breakdown <> 'age,gender'
"""


def pack_audience(conn: Connection, before: date, ig_user_ids: Sequence[str]) -> int:
    """Move these accounts' pictures of the days before ``before`` from the row tables into
    ``audience_pictures_packed``; returns the account-days packed."""
    return conn.execute(sa.text(_PACK), {"before": before, "ids": list(ig_user_ids)}).rowcount


def unpack_audience_day(conn: Connection, ig_user_id: str, day: date) -> None:
    """Move one account-day's packed picture back into the row tables (nothing if it is not packed), so that a
    write to that day replaces or keeps its rows as it does for a recent day."""
    conn.execute(sa.text(_UNPACK), {"id": ig_user_id, "day": day})
