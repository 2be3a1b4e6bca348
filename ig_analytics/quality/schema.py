"""Rule on a table's columns: the live table still has every declared column with its declared type."""

from __future__ import annotations

from typing import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ig_analytics.quality.result import ERROR, CheckResult

# the short type names of the column declarations, as information_schema spells them
_PG_TYPES = {"timestamptz": "timestamp with time zone", "timestamp": "timestamp without time zone",
             "int": "integer", "float": "double precision", "double": "double precision", "bool": "boolean"}


def column_schema_diff(conn: Connection, table: str, expected: Mapping[str, str]) -> CheckResult:
    """Compare information_schema with ``expected`` (column name -> declared type, e.g. the asset's
    ``dagster/column_schema``): a missing or retyped column fails (ERROR: ingestion writes it, analysts query it);
    extra columns pass and are listed (the contract welcomes more columns; bookkeeping columns such as
    media.first_seen_at are not declared)."""
    schema, name = table.split(".", 1)
    actual = {r[0]: (r[2].lstrip("_") + "[]" if r[1] == "ARRAY" else r[1]) for r in conn.execute(sa.text(
        "SELECT column_name, data_type, udt_name FROM information_schema.columns"
        " WHERE table_schema = :s AND table_name = :t"), {"s": schema, "t": name})}  # arrays: '_text' -> 'text[]'
    want = {column: _PG_TYPES.get(kind, kind) for column, kind in expected.items()}
    missing = sorted(set(want) - set(actual))
    retyped = {c: {"expected": want[c], "actual": actual[c]} for c in want if c in actual and actual[c] != want[c]}
    extra = sorted(set(actual) - set(want))
    return CheckResult(
        passed=not (missing or retyped), severity=ERROR,
        metadata={"table": table, "missing_columns": missing, "retyped_columns": retyped,
                  "unexpected_columns": extra},
        description="The table's columns match the asset's dagster/column_schema metadata.",
    )
