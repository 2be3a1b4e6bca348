"""Bounded transactions over many accounts (issue 27): retention's packing of the audience pictures, merge of the
old hourly sync_runs and compactions of the snapshots (with their curves), the audience pictures and the comment rows
work on ``BATCH_ACCOUNTS`` accounts per transaction, each committed before the next.
The first run after an upgrade of a database with months of history then holds a few hundred accounts' rows in
a transaction (their locks, their WAL) instead of every account's (~50 million audience rows at 10,000 accounts in
one statement); a crash between batches leaves the committed batches done and the rest untouched, and the next
run continues. The work of a batch must be per account (an account's rows never depend on another's), so the
result is the same as in one statement; 200 accounts of a first run are ~1.5 million audience rows, ~7 s
(BENCHMARKS.md, ``benchmarks/first_retention.py``)."""

from __future__ import annotations

from typing import Callable, Iterator, Sequence, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

BATCH_ACCOUNTS = 200
T = TypeVar("T")

# The distinct accounts of a table by its index on ig_user_id (a loose index scan: one descent per account, not a
# read of every row; PostgreSQL 15 has no skip scan of its own).
_ACCOUNTS_OF = """
WITH RECURSIVE ids AS (
    (SELECT ig_user_id FROM instagram.{table} ORDER BY ig_user_id LIMIT 1)
    UNION ALL
    SELECT (SELECT t.ig_user_id FROM instagram.{table} t WHERE t.ig_user_id > ids.ig_user_id
            ORDER BY t.ig_user_id LIMIT 1)
    FROM ids WHERE ids.ig_user_id IS NOT NULL
)
SELECT ig_user_id FROM ids WHERE ig_user_id IS NOT NULL
"""


def accounts_in(conn: Connection, tables: Sequence[str]) -> list[str]:
    """The accounts with rows in any of ``tables`` (each with an index whose first column is ig_user_id), sorted."""
    ids: set[str] = set()
    for table in tables:
        ids.update(conn.execute(sa.text(_ACCOUNTS_OF.format(table=table))).scalars())
    return sorted(ids)


def account_batches(engine: Engine, tables: Sequence[str], size: int = BATCH_ACCOUNTS) -> Iterator[list[str]]:
    """The accounts with rows in ``tables`` (as they are when the first batch is asked for), ``size`` at a time;
    the caller runs each batch in its own transaction."""
    if size < 1:
        raise ValueError(f"a batch holds at least one account, not {size}")
    with engine.connect() as conn:
        ids = accounts_in(conn, tables)
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def each_batch(engine: Engine, tables: Sequence[str], work: Callable[[Connection, list[str]], T],
               size: int = BATCH_ACCOUNTS) -> list[T]:
    """``work(conn, ids)`` for each batch of :func:`account_batches`, each in its own transaction, committed before
    the next begins (a failure rolls back its batch only and stops); returns each batch's result."""
    results = []
    for ids in account_batches(engine, tables, size):
        with engine.begin() as conn:
            results.append(work(conn, ids))
    return results
