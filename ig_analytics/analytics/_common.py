"""Helpers shared by the analytics computations: fast reads into pandas, safe time zones, row conversion."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

# engagement of a snapshot row ``s`` (docs/product.md): total_interactions when reported, else the sum of the
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
    return datetime.now(timezone.utc)


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


def read_frame(
    conn: Connection,
    sql: str,
    params: dict[str, Any] | None = None,
    *,
    text_columns: Sequence[str] = (),
    date_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """Run ``sql`` (psycopg2 ``%(name)s`` parameters) and return its rows as a DataFrame, via
    ``COPY (query) TO STDOUT``: several times faster than fetching rows for large results."""
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        query = cur.mogrify(sql, params or {}).decode()
        buffer = io.StringIO()
        cur.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
    buffer.seek(0)
    frame = pd.read_csv(
        buffer,
        dtype={c: str for c in text_columns},
        keep_default_na=False,
        na_values=[""],
    )
    for column in date_columns:
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


def frame_rows(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple]:
    """Rows for COPY: NaN / NA become None, numpy scalars plain Python."""
    sub = frame[list(columns)].astype(object)
    sub = sub.where(pd.notna(sub), None)
    return list(sub.itertuples(index=False, name=None))


def copy_frame(conn: Connection, table: str, frame: pd.DataFrame, json_columns: Sequence[str] = ()) -> int:
    """COPY ``frame``'s rows into ``instagram.<table>`` as they are (no upsert: the caller deleted the rows it
    replaces, in the same transaction). pandas encodes the CSV in C, so a derived table's recomputation does not
    pay a Python loop per cell. NaN / NA / None are NULL; ``json_columns`` are serialized as JSON."""
    if frame.empty:
        return 0
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if column in json_columns:
            out[column] = values.map(lambda v: None if v is None else json.dumps(v, separators=(",", ":"), default=str))
        elif values.dtype.kind == "f":  # repr of each float: exact, and about twice as fast as to_csv's formatting
            out[column] = [None if v != v else repr(v) for v in values.tolist()]
        elif isinstance(values.dtype, pd.DatetimeTZDtype):  # few distinct instants (computed_at): format each once
            codes, uniques = pd.factorize(values)
            out[column] = np.array([u.isoformat() for u in uniques] + [None], dtype=object)[codes]
    buffer = io.StringIO()
    out.to_csv(buffer, index=False, header=False, na_rep="\\N")
    buffer.seek(0)
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert(f"COPY instagram.\"{table}\" ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer)
    return len(frame)
