"""Descriptions in the database: ``COMMENT ON`` every table, view and column of schema ``instagram``, from the one
declaration (``storage/tables.py``), so psql's ``\\d+``, DBeaver, Metabase and notebooks show what each column
means without our code. ``db.migrate`` applies them after the SQL migrations, and only what differs: a second
run writes nothing."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ig_analytics.storage.tables import TABLES

_KIND = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW"}

_CURRENT_SQL = """
SELECT c.relname, c.relkind, NULL::text AS column_name, obj_description(c.oid, 'pg_class')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'instagram' AND c.relkind IN ('r', 'p', 'v', 'm')
UNION ALL
SELECT c.relname, c.relkind, a.attname, col_description(c.oid, a.attnum)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'instagram' AND c.relkind IN ('r', 'p', 'v', 'm')
"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def wanted_comments() -> dict[tuple[str, str | None], str]:
    """(relation, column or None) -> its description, from the declaration."""
    out: dict[tuple[str, str | None], str] = {}
    for table in TABLES.values():
        out[(table.name, None)] = f"{table.description} ({table.grain})" if table.description else table.grain
        for column in table.columns:
            out[(table.name, column.name)] = column.description
    return out


def comment_statements(conn: Connection) -> list[str]:
    """The ``COMMENT ON`` statements that bring the database's descriptions to the declaration's, for the
    relations that exist (a declared table a migration has not created yet is left for the migration that
    does)."""
    rows = conn.execute(sa.text(_CURRENT_SQL)).all()
    kinds = {name: kind for name, kind, column, _ in rows if column is None}
    current = {(name, column): text for name, _, column, text in rows}
    statements = []
    for (name, column), text in wanted_comments().items():
        if name not in kinds or (name, column) not in current or current[(name, column)] == text:
            continue
        if column is None:
            statements.append(f'COMMENT ON {_KIND[kinds[name]]} instagram."{name}" IS {_literal(text)}')
        else:
            statements.append(f'COMMENT ON COLUMN instagram."{name}"."{column}" IS {_literal(text)}')
    return statements


def apply_comments(conn: Connection) -> int:
    """Apply what differs, in the caller's transaction. Returns how many comments were written."""
    statements = comment_statements(conn)
    if statements:
        with conn.connection.dbapi_connection.cursor() as cur:
            cur.execute(";\n".join(statements))  # no parameters: a '%' in a description is not a placeholder
    return len(statements)
