"""Database access: where the database is, the schema migrations, and bulk writes.

Every write of more than a handful of rows goes through :func:`bulk_upsert` (COPY into a temporary table,
then one ``INSERT ... ON CONFLICT DO UPDATE``): about 30x faster than a row-per-statement upsert, and one
statement means a re-run leaves no duplicates.
"""

from __future__ import annotations

import io
import json
import math
import operator
import queue
import threading
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from itertools import chain, islice, repeat
from typing import Any, Callable, Iterable, Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ig_analytics import clock
from ig_analytics.local.embedded_db import ANALYTICS_DB, DAGSTER_DB, EmbeddedPostgres
from ig_analytics.settings import Settings
from ig_analytics.storage import comments
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
        # ~10 us of client CPU a checkout (benchmarks/db_writes.py): a connection the server dropped is replaced
        pool_pre_ping=True,
        # Room for the capture's 8 account threads (MediaSyncConfig.max_concurrent_accounts) and the step's own
        # thread: with 5, connections over the pool were closed on return and opened again (282 new sessions in
        # an hour of 1,000 accounts, each a server process; issue 27).
        pool_size=10,
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
            conn.execute(  # the product's clock, not the server's: the install marker starts the partitions here
                sa.text(f"INSERT INTO {SCHEMA}.schema_migrations (version, name, applied_at) VALUES (:v, :n, :at)"),
                {"v": version, "n": name, "at": clock.now()},
            )
            applied_now.append(name)
        comments.apply_comments(conn)  # descriptions from storage/tables.py, where they differ
    return applied_now


# ---- bulk writes -----------------------------------------------------------------------------------------
# Rows go to the server as COPY text (tab-separated, \N for NULL), CHUNK_ROWS rows at a time. The encoding is
# the Python cost of a write; with more than one chunk it overlaps with the server's work on the previous chunk
# (see _run_chunks), so on two cores a large write costs about the server's time alone.

CHUNK_ROWS = 10_000
COPY_NULL = "\\N"
# Cell types whose str() is their COPY text (escaping aside) and whose equal values have equal text, so one str()
# per distinct value is enough. (Every timestamp column is timestamptz: equal instants are equal values.) Not
# bool or float: True == 1 == 1.0 would share a text; a float takes the per-cell path, a bool a memo of its own
# column (_memo_lines).
_MEMO_TYPES = frozenset({str, int, type(None), datetime, date})
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class _TextMemo(dict):
    """str() of each distinct value of a chunk, computed once: timestamps and small counts repeat in every row."""

    def __missing__(self, value: Any) -> str:
        text = self[value] = str(value)
        return text


def _text_cell(value: Any) -> str:
    if value is None:
        return COPY_NULL
    if isinstance(value, float):
        if math.isnan(value):
            return COPY_NULL
        text = repr(value)
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"), default=str)
    elif hasattr(value, "isoformat"):
        text = value.isoformat()
    else:
        text = str(value)
    return text.translate(COPY_ESCAPES)


_BOOL_TEXT = {True: "True", False: "False", None: COPY_NULL}  # _text_cell's str() of a bool


def _memo_lines(rows: list[Sequence[Any]], types: set[type]) -> str | None:
    """The lines of ``rows`` with one str() per distinct value, or None when some cell's type forbids it. Bools
    (issue 27: media_comments' flags sent every comment chunk cell by cell, 3x slower) are memoised column by
    column, apart from the ints and their equal keys (True == 1)."""
    if types <= _MEMO_TYPES:
        cell = _TextMemo({None: COPY_NULL}).__getitem__
        return "\n".join(["\t".join(map(cell, row)) for row in rows])
    width = len(rows[0])
    if not types <= _MEMO_TYPES | {bool} or any(len(row) != width for row in rows):
        return None
    texts = []
    for column in zip(*rows):
        kinds = set(map(type, column))
        if kinds <= {bool, type(None)}:
            texts.append(list(map(_BOOL_TEXT.__getitem__, column)))
        elif bool in kinds:  # a column mixing bools with other values
            return None
        else:
            texts.append(list(map(_TextMemo({None: COPY_NULL}).__getitem__, column)))
    return "\n".join(map("\t".join, zip(*texts)))


def _encode_chunk(rows: list[Sequence[Any]]) -> str:
    """COPY text of ``rows`` (one line each)."""
    lines = _memo_lines(rows, set(map(type, chain.from_iterable(rows))))
    if lines is not None:
        text = lines + "\n"
        # Valid unless a str cell holds a tab, newline, CR or backslash (it would need escaping) or a row has
        # another length: counted on the whole text at C speed; else the chunk is encoded cell by cell.
        width = len(rows[0])
        if (text.count("\t") == len(rows) * (width - 1) and text.count("\n") == len(rows) and "\r" not in text
                and text.count("\\") == sum(map(operator.countOf, rows, repeat(None)))):
            return text
    return "".join(["\t".join(map(_text_cell, row)) + "\n" for row in rows])


class CopyChunks:
    """Rows already encoded as COPY text (e.g. by pandas, column by column): an iterable of (text, rows) pairs of
    at most CHUNK_ROWS lines each; pass it as ``rows`` to the writes below."""

    def __init__(self, chunks: Iterable[tuple[str, int]]) -> None:
        self.chunks = chunks


def _encoded_chunks(rows: Iterable[Sequence[Any]] | CopyChunks) -> Iterator[tuple[str, int]]:
    if isinstance(rows, CopyChunks):
        yield from rows.chunks
        return
    it = iter(rows)
    while chunk := list(islice(it, CHUNK_ROWS)):
        yield _encode_chunk(chunk), len(chunk)


def _run_chunks(rows: Iterable[Sequence[Any]], send: Callable[[str, bool], None]) -> int:
    """Encode ``rows`` chunk by chunk and ``send(text, large)`` each chunk (on the caller's cursor; ``large``: the
    write has more than one chunk). Returns the rows.

    With more than one chunk, ``send`` runs in a helper thread while this thread encodes the next chunk:
    psycopg2 releases the GIL while the server works, so encoding and the server overlap. The caller's
    connection is used by one thread at a time (never by this one meanwhile), and every statement is in the
    caller's transaction; the helper has finished (joined) when this returns or raises.
    """
    chunks = _encoded_chunks(rows)
    first = next(chunks, None)
    if first is None:
        return 0
    second = next(chunks, None)
    if second is None:
        send(first[0], False)
        return first[1]
    pending: queue.Queue[str | None] = queue.Queue(maxsize=1)
    failures: list[BaseException] = []

    def serve() -> None:
        while (text := pending.get()) is not None:
            if not failures:  # after a failure the transaction is aborted: drain the queue, send nothing
                try:
                    send(text, True)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
                    failures.append(exc)

    worker = threading.Thread(target=serve, name="bulk-write", daemon=True)
    worker.start()
    count = 0
    try:
        for text, n in chain((first, second), chunks):
            if failures:
                break
            pending.put(text)
            count += n
    finally:
        pending.put(None)
        worker.join()
    if failures:
        raise failures[0]
    return count


def _col_list(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _copy_sql(target: str, columns: Sequence[str]) -> str:
    return f"COPY {target} ({_col_list(columns)}) FROM STDIN"


def _copy(cur, copy_sql: str, text: str) -> None:
    # One read of the whole chunk: psycopg2 reads 8 KiB at a time by default, and in the helper thread each read
    # waits for the GIL (up to 5 ms) while the caller's thread encodes.
    cur.copy_expert(copy_sql, io.StringIO(text), size=len(text) + 1)


def _upsert_sql(table: str, columns: Sequence[str], key_columns: Sequence[str] | None,
                update_columns: Sequence[str] | None, only_if_changed: Sequence[str],
                keep_existing_when_null: Sequence[str], staging: str) -> str:
    """The INSERT ... SELECT ... ON CONFLICT that merges ``staging`` into the table (by its merge rule, if any)."""
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
    col_list, conflict = _col_list(columns), _col_list(key_columns)
    action = "DO UPDATE SET " + ", ".join(sets) if sets else "DO NOTHING"
    if sets and changed:
        old = ", ".join(f'target."{c}"' for c in changed)
        action += f" WHERE ({old}) IS DISTINCT FROM ({', '.join(merged)})"
    return (f"INSERT INTO {SCHEMA}.{table} AS target ({col_list}) SELECT {col_list} FROM {staging} "
            f"ON CONFLICT ({conflict}) {action}")


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
    of these columns differs. Rows go in chunks of :data:`CHUNK_ROWS` (one COPY + INSERT each): a key repeated
    within a chunk is an error, as in one INSERT; across chunks the later row is merged onto the earlier.

    A write of more than one chunk first COPYs each chunk straight into the table, under a savepoint: new rows
    need no merge, and the temporary table and the INSERT ... SELECT are a fifth of the server's work
    (benchmarks/db_writes.py). The first chunk that meets an existing key is rolled back to the savepoint (the
    server logs that one duplicate-key error) and goes, with every later chunk, through the merge.
    """
    import psycopg2.errors

    staging = f"_stage_{table}"
    insert_sql = _upsert_sql(table, columns, key_columns, update_columns, only_if_changed, keep_existing_when_null,
                             staging)
    copy_sql = _copy_sql(staging, columns)
    direct_sql = _copy_sql(f"{SCHEMA}.{table}", columns)
    with conn.connection.dbapi_connection.cursor() as cur:
        created = False
        direct = True  # until a chunk meets an existing key

        def send(text: str, large: bool) -> None:
            nonlocal created, direct
            if large and direct:
                cur.execute("SAVEPOINT ig_bulk_upsert")
                try:
                    _copy(cur, direct_sql, text)
                except psycopg2.errors.UniqueViolation:
                    cur.execute("ROLLBACK TO SAVEPOINT ig_bulk_upsert")
                    direct = False
                else:
                    cur.execute("RELEASE SAVEPOINT ig_bulk_upsert")
                    return
            if created:
                cur.execute(f"TRUNCATE {staging}")  # this call's previous chunk
            else:
                _empty_staging(cur, staging, table)
                created = True
            _copy(cur, copy_sql, text)
            cur.execute(insert_sql)

        return _run_chunks(rows, send)


def _empty_staging(cur, staging: str, table: str) -> None:
    """Make the session's staging table of ``table`` exist and be empty, without writing the catalogue when it
    exists: a TRUNCATE gives the table a new file (a pg_class update, WAL, a flush at commit) and CREATE ... IF NOT
    EXISTS still costs the server about 0.5 ms; both ran per call, several per account and hour. The table is
    emptied at every commit (ON COMMIT DELETE ROWS), so the DELETE finds rows only when an earlier write of the
    same transaction left them."""
    cur.execute("SELECT to_regclass(%s) IS NULL", (f"pg_temp.{staging}",))
    if cur.fetchone()[0]:
        cur.execute(f"CREATE TEMP TABLE {staging} (LIKE {SCHEMA}.{table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
    else:
        cur.execute(f"DELETE FROM {staging}")


def replace_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]] | CopyChunks,
    table_columns: Sequence[str],
    key_columns: Sequence[str],
    where: tuple[str, dict[str, Any]],
    keep_when_unchanged: Sequence[str] = (),
) -> tuple[int, int]:
    """Make the rows a computation owns (``where``: SQL on unqualified columns, its parameters) be ``rows``, writing
    only the difference (issue 27: a delete and a COPY of the whole slice every hour rewrote mostly unchanged rows):
    the rows go into the session's staging table, the owned rows whose key it lacks are deleted, and a row is
    inserted, or updated when one of ``table_columns`` (a column absent from ``columns``: its default) other than
    the key and ``keep_when_unchanged`` differs, a NULL replacing a value too. Same transaction as the caller.
    An empty slice (a first hour, a new evaluation) takes a plain COPY. Returns (rows inserted or updated, deleted)."""
    if not conn.execute(sa.text(f"SELECT EXISTS (SELECT FROM {SCHEMA}.{table} WHERE {where[0]})"), where[1]).scalar():
        with conn.connection.dbapi_connection.cursor() as cur:
            return _run_chunks(rows, lambda text, _large: _copy(cur, _copy_sql(f"{SCHEMA}.{table}", columns), text)), 0
    staging = f"_stage_{table}"
    compared = [c for c in table_columns if c not in key_columns and c not in keep_when_unchanged]
    insert_sql = _upsert_sql(table, table_columns, key_columns, None if compared else [], compared, (), staging)
    match = " AND ".join(f'staged."{c}" = target."{c}"' for c in key_columns)
    copy_sql = _copy_sql(staging, columns)
    with conn.connection.dbapi_connection.cursor() as cur:
        _empty_staging(cur, staging, table)
        _run_chunks(rows, lambda text, _large: _copy(cur, copy_sql, text))
        deleted = conn.execute(sa.text(f"DELETE FROM {SCHEMA}.{table} AS target WHERE {where[0]} AND NOT EXISTS "
                                       f"(SELECT 1 FROM {staging} AS staged WHERE {match})"), where[1]).rowcount
        cur.execute(insert_sql)
        return cur.rowcount, deleted
