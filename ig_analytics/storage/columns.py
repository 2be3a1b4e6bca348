"""The declaration's vocabulary: a column (name, PostgreSQL type, description, key) and a table or view. The
declarations themselves: storage/tables.py, and the social tables in storage/tables_social.py."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # PostgreSQL type as written in the migrations (timestamptz, double precision, text[] ...)
    description: str
    key: bool = False  # part of the primary key


@dataclass(frozen=True)
class Table:
    name: str
    grain: str  # "one row per ..."
    columns: list[Column]
    description: str = ""  # what the table holds, in one sentence (its COMMENT in the database)
    kind: str = "table"  # or "view"
