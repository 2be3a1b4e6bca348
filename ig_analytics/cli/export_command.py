"""`ig-analytics export`: a table or view of schema ``instagram`` as CSV, streamed by PostgreSQL's COPY (memory stays
flat whatever the size), filtered by account and by days on the relation's time column.

Only declared relations (storage/tables.py) can be named, never SQL; secret columns (the encrypted token) are not
exported. A file is written beside its target and renamed into place, so a failed export leaves no half file."""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.engine import Engine

from ig_analytics.storage.tables import TABLES, Table

# The column --since/--until filter on, by preference: the day or instant a row is about.
TIME_COLUMNS = ("date", "week_start", "period_start", "as_of", "captured_at", "published_at", "started_at",
                "created_at", "observed_at", "applied_at")
SECRET_TYPES = ("bytea",)  # accounts.token_ciphertext: encrypted, and still not for a spreadsheet


class ExportUsageError(ValueError):
    """A usage mistake: exit 2 with this sentence."""


@dataclass(frozen=True)
class ExportQuery:
    sql: str  # psycopg2 %(name)s parameters
    params: dict
    columns: tuple[str, ...]


def time_column(table: Table) -> str | None:
    names = {c.name for c in table.columns}
    return next((c for c in TIME_COLUMNS if c in names), None)


def build_query(relation: str, account: str | None, since: date | None, until: date | None) -> ExportQuery:
    """The SELECT to export, or an ExportUsageError naming what is wrong."""
    table = TABLES.get(relation)
    if table is None:
        raise ExportUsageError(f"no table or view instagram.{relation[:60]!s}; one of: {', '.join(sorted(TABLES))}")
    columns = tuple(c.name for c in table.columns if c.type not in SECRET_TYPES)
    where, params = [], {}
    if account is not None:
        if "ig_user_id" not in columns:
            raise ExportUsageError(f"instagram.{relation} has no ig_user_id column: --account does not apply")
        where.append("ig_user_id = %(account)s")
        params["account"] = account
    if since is not None or until is not None:
        column = time_column(table)
        if column is None:
            raise ExportUsageError(f"instagram.{relation} has no time column: --since/--until do not apply")
        if since and until and since > until:
            raise ExportUsageError(f"--since {since} is after --until {until}")
        # whole UTC days on a timestamp column, the days themselves on a date column
        if since is not None:
            where.append(f'"{column}" >= %(since)s')
            params["since"] = since
        if until is not None:
            where.append(f'"{column}" < %(until_next)s')
            params["until_next"] = until + timedelta(days=1)
    key = [c.name for c in table.columns if c.key] or list(columns[:1])
    sql = (f'SELECT {_quoted(columns)} FROM instagram."{relation}"' + (f" WHERE {' AND '.join(where)}" if where else "")
           + f" ORDER BY {_quoted(key)}")
    return ExportQuery(sql, params, columns)


def _quoted(names) -> str:
    return ", ".join(f'"{name}"' for name in names)


def check_account(engine: Engine, account: str) -> None:
    with engine.connect() as conn:
        known = conn.exec_driver_sql("SELECT 1 FROM instagram.accounts WHERE ig_user_id = %(a)s", {"a": account}).first()
    if known is None:
        raise ExportUsageError(f"account {account} is not registered; see: ig-analytics accounts list")


def copy_csv(engine: Engine, query: ExportQuery, out: BinaryIO) -> None:
    """Stream the rows as CSV with a header line, in UTC, straight from the server into ``out``."""
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            statement = cur.mogrify(query.sql, query.params).decode()
            cur.copy_expert(f"COPY ({statement}) TO STDOUT WITH (FORMAT csv, HEADER true)", out)
        raw.rollback()  # read only
    finally:
        raw.close()


def export(engine: Engine, query: ExportQuery, output: Path | None) -> None:
    """To standard output, or to ``output`` through a temporary file in its folder (renamed when complete)."""
    if output is None:
        copy_csv(engine, query, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise ExportUsageError(f"--output {output}: the folder {folder} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            copy_csv(engine, query, out)
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
