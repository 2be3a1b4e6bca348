"""Database access: where the database is, the schema migrations, and bulk writes.

Every write of more than a handful of rows goes through :func:`bulk_upsert` (COPY into a temporary table,
then one ``INSERT ... ON CONFLICT DO UPDATE``): about 30x faster than a row-per-statement upsert, and one
statement means a re-run leaves no duplicates.
"""

from __future__ import annotations

import csv
import io
import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ig_analytics.local.embedded_db import ANALYTICS_DB, DAGSTER_DB, EmbeddedPostgres
from ig_analytics.settings import Settings
from ig_analytics.storage.merge_rules import MERGE_RULES

SCHEMA = "instagram"


class DatabaseUnavailableError(RuntimeError):
    """The analytics database cannot be reached; the message says which one and what to do."""


def normalize_url(url: str) -> str:
    """Use psycopg2 explicitly: SQLAlchemy 2.1 picks psycopg 3 for a bare ``postgresql://``."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def analytics_url(settings: Settings) -> str:
    if settings.database_url:
        return normalize_url(settings.database_url)
    return EmbeddedPostgres(settings.home).url(ANALYTICS_DB)


def dagster_storage_url(settings: Settings) -> str:
    """Dagster's run/event/schedule storage: the same server as the analytics tables."""
    if settings.database_url:
        return normalize_url(settings.database_url)
    return EmbeddedPostgres(settings.home).url(DAGSTER_DB)


def redact_url(url: str) -> str:
    """A database URL fit for printing: the password is hidden."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


@lru_cache(maxsize=8)
def _cached_engine(url: str) -> Engine:
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": 10, "options": "-c timezone=UTC", "application_name": "ig-analytics"},
    )


def get_engine(url: str) -> Engine:
    return _cached_engine(normalize_url(url))


def check_connection(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        raise DatabaseUnavailableError(
            f"Cannot reach the analytics database at {redact_url(str(engine.url))}: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}. "
            "Start it with 'ig-analytics db start' (embedded), or check DATABASE_URL."
        ) from exc


def describe_database_failure(exc: BaseException) -> str | None:
    """One line for a lost or refused database connection anywhere in ``exc``'s chain (None: not one).

    The server's own words, first line only: never the SQL statement SQLAlchemy appends to its messages.
    """
    import psycopg2

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DatabaseUnavailableError):
            return str(current)
        if isinstance(current, sa.exc.DBAPIError) and current.connection_invalidated or isinstance(
            current, (sa.exc.OperationalError, sa.exc.InterfaceError, psycopg2.OperationalError, psycopg2.InterfaceError)
        ):
            orig = getattr(current, "orig", None) or current
            reason = (str(orig).strip().splitlines() or ["connection failed"])[0]
            return (f"The database connection failed ({reason}). Start the embedded server with 'ig-analytics db "
                    "start', or check that the server in DATABASE_URL is up and reachable; then run the command "
                    "again.")
        current = current.__cause__ or current.__context__
    return None


# ---- migrations ------------------------------------------------------------------------------------------


def _migration_files() -> list[tuple[int, str, str]]:
    folder = resources.files("ig_analytics.storage") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text()))
    return sorted(found)


def migrate(engine: Engine) -> list[str]:
    """Apply the migrations not applied yet, in order, each in its own transaction. Returns their names.

    An advisory lock makes concurrent callers (several runs starting at once) wait for one another.
    """
    applied_now: list[str] = []
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('ig_analytics.migrate'))"))
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        conn.execute(
            sa.text(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
        )
        done = {row[0] for row in conn.execute(sa.text(f"SELECT version FROM {SCHEMA}.schema_migrations"))}
        for version, name, sql in _migration_files():
            if version in done:
                continue
            with conn.connection.dbapi_connection.cursor() as cur:
                cur.execute(sql)  # no parameters: a '%' in a migration's comment is not a placeholder
            conn.execute(
                sa.text(f"INSERT INTO {SCHEMA}.schema_migrations (version, name) VALUES (:v, :n)"),
                {"v": version, "n": name},
            )
            applied_now.append(name)
    return applied_now


# ---- bulk writes -----------------------------------------------------------------------------------------


_NULL = "\\N"
_PASSTHROUGH = frozenset({int, str})  # most cells: written by csv as they are


def _copy_value(value: Any) -> Any:
    if value is None:
        return _NULL
    if isinstance(value, float):
        return _NULL if math.isnan(value) else value
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _csv_buffer(rows: Iterable[Sequence[Any]]) -> tuple[io.StringIO, int]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    count = 0
    passthrough = _PASSTHROUGH
    for row in rows:
        # The type test inline keeps the common cells free of a function call (this loop is the COPY path's
        # main Python cost).
        writer.writerow([value if type(value) in passthrough else _copy_value(value) for value in row])
        count += 1
    buffer.seek(0)
    return buffer, count


def _copy_into(cur, target: str, columns: Sequence[str], buffer: io.StringIO) -> None:
    col_list = ", ".join(f'"{c}"' for c in columns)
    cur.copy_expert(f"COPY {target} ({col_list}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer)


def bulk_upsert(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    key_columns: Sequence[str] | None = None,
    update_columns: Sequence[str] | None = None,
    only_if_changed: Sequence[str] = (),
    keep_existing_when_null: Sequence[str] = (),
) -> int:
    """COPY ``rows`` into a temporary table, then upsert them into ``instagram.<table>``.

    Runs inside the caller's transaction, so the caller decides what is atomic. Returns rows upserted.
    A table with a declared merge rule (:data:`MERGE_RULES`: the measured tables) is merged by that rule, and
    its key is the rule's: an incoming NULL never erases a measured value. Other tables (derived, recomputed
    whole): ``update_columns`` (default every non-key column; an empty list means insert-or-ignore) are
    overwritten, except ``keep_existing_when_null`` (COALESCE); ``only_if_changed``: update a row only when one
    of these columns differs.
    """
    buffer, count = _csv_buffer(rows)
    if count == 0:
        return 0
    rule = MERGE_RULES.get(table)
    if rule is not None:
        if key_columns is not None and tuple(key_columns) != rule.key:
            raise ValueError(f"{table} is keyed by {rule.key} (its merge rule), not {tuple(key_columns)}")
        if update_columns is not None or only_if_changed or set(keep_existing_when_null) & rule.overwrite:
            raise ValueError(f"{table} has a declared merge rule (storage/merge_rules.py): it decides the updates")
        key_columns = rule.key
        sets = [a for a in (rule.assignment(c) for c in columns) if a]
        changed = rule.measured(columns) if rule.skip_unchanged else []
        merged = [rule.merged(c) for c in changed]
    else:
        if key_columns is None:
            raise ValueError(f"{table} has no merge rule: pass key_columns")
        updates = [c for c in (update_columns if update_columns is not None else columns) if c not in key_columns]
        sets = [f'"{c}" = COALESCE(EXCLUDED."{c}", target."{c}")' if c in keep_existing_when_null
                else f'"{c}" = EXCLUDED."{c}"' for c in updates]
        changed = list(only_if_changed) if updates else []
        merged = [f'EXCLUDED."{c}"' for c in changed]
    staging = f"_stage_{table}"
    col_list = ", ".join(f'"{c}"' for c in columns)
    conflict = ", ".join(f'"{c}"' for c in key_columns)
    action = "DO UPDATE SET " + ", ".join(sets) if sets else "DO NOTHING"
    if sets and changed:
        old = ", ".join(f'target."{c}"' for c in changed)
        action += f" WHERE ({old}) IS DISTINCT FROM ({', '.join(merged)})"
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {SCHEMA}.{table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        cur.execute(f"TRUNCATE {staging}")
        _copy_into(cur, staging, columns, buffer)
        cur.execute(
            f"INSERT INTO {SCHEMA}.{table} AS target ({col_list}) SELECT {col_list} FROM {staging} "
            f"ON CONFLICT ({conflict}) {action}"
        )
    return count


def replace_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    where_sql: str,
    params: dict[str, Any],
) -> int:
    """Delete the rows a computation owns (``where_sql``), then COPY the new ones: the idempotent
    delete-then-insert of a derived table's partition. Same transaction as the caller."""
    conn.execute(sa.text(f"DELETE FROM {SCHEMA}.{table} WHERE {where_sql}"), params)
    buffer, count = _csv_buffer(rows)
    if count:
        with conn.connection.dbapi_connection.cursor() as cur:
            _copy_into(cur, f"{SCHEMA}.{table}", columns, buffer)
    return count
