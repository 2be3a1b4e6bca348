"""Benchmark 2: writing media snapshot rows (22 columns) into PostgreSQL.

Ours: ``storage.db.bulk_upsert`` (chunks of COPY text, straight into the table while they meet no existing key,
else into a temporary table merged by one INSERT ... ON CONFLICT with the table's merge rule; the next chunk is
encoded while the server writes the last), as ``sync_media`` calls it; measured on new rows (inserts) and again on the same keys with changed values (every row
a conflict -> update). Baseline: one upsert statement per row (``cursor.execute`` per row, psycopg2, one
transaction), what the story's Prisma loop does. Both include building the rows' values in Python. Each is run
``--repeats`` times, alternating, on an emptied table; best and median are printed.

Then where the time goes, each measured alone: generating the tuples (benchmark side), encoding them (ours, and
the CSV writer this replaced), and the server's work on pre-encoded chunks, COPYed straight into the table (new
rows) or merged through the temporary table (updates). Last, what a pooled connection's checkout costs with
and without ``pool_pre_ping``.

    .venv/bin/python -m benchmarks.db_writes [--quick] [--repeats 5]
    (full: 100,000 rows ours, 5,000 per row; quick: 10,000 / 1,000, one repeat)
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as c  # noqa: E402

NAME = "db_writes"
T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)
IG_USER_ID = "17841400000000001"
SNAPSHOT_KEY = ("media_id", "captured_at")


def snapshot_rows(n: int, media_ids: list[str], ig_user_id: str, offset_hours: int, bump: int = 0):
    """n snapshot rows: media x hourly capture slots (keys unique within the batch). Metric values are spread
    like real counts (a pool of 10,007 random readings, so a chunk of 10,000 rows has few repeated values for
    the encoder's per-value memo), a fifth of them NULL."""
    from ig_analytics.ingestion.media_snapshots import SNAPSHOT_METRIC_COLUMNS

    pool = _metric_pool(len(SNAPSHOT_METRIC_COLUMNS), bump)
    per_media = -(-n // len(media_ids))
    out = 0
    fetched = T0 + timedelta(minutes=4)
    for h in range(per_media):
        slot = T0 + timedelta(hours=offset_hours + h)
        for i, mid in enumerate(media_ids):
            if out == n:
                return
            yield (mid, slot, fetched, ig_user_id, *pool[(i * 7919 + h * 31) % len(pool)], None, "v25.0")
            out += 1


@functools.lru_cache(maxsize=None)
def _metric_pool(n_metrics: int, bump: int) -> list[tuple]:  # made once per bump, before the timed runs
    rng = random.Random(bump)
    return [tuple(rng.randrange(10 ** rng.randrange(1, 8)) if k % 5 != 4 else None for k in range(n_metrics))
            for _ in range(10_007)]


def old_csv_text(rows) -> str:
    """The CSV encoding bulk_upsert used before (csv.writer, one Python check per cell): for comparison."""
    import json
    import math

    def value(v):
        if v is None:
            return "\\N"
        if isinstance(v, float):
            return "\\N" if math.isnan(v) else v
        if isinstance(v, (dict, list)):
            return json.dumps(v, separators=(",", ":"), default=str)
        return v.isoformat() if hasattr(v, "isoformat") else v

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    passthrough = frozenset({int, str})
    for row in rows:
        writer.writerow([v if type(v) in passthrough else value(v) for v in row])
    return buffer.getvalue()


def count(engine) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM instagram.media_insights_snapshots")).scalar()


def empty_table(engine) -> None:
    import sqlalchemy as sa

    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE instagram.media_insights_snapshots"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE instagram.media_insights_snapshots"))


def ours(engine, n: int, media_ids: list[str], offset: int, bump: int = 0) -> float:
    from ig_analytics.ingestion.media_snapshots import _SNAPSHOT_COLUMNS
    from ig_analytics.storage.db import bulk_upsert

    t = time.perf_counter()
    with engine.begin() as conn:
        written = bulk_upsert(conn, "media_insights_snapshots", _SNAPSHOT_COLUMNS,
                              snapshot_rows(n, media_ids, IG_USER_ID, offset, bump), SNAPSHOT_KEY)
    seconds = time.perf_counter() - t
    assert written == n
    return seconds


def per_row(engine, n: int, media_ids: list[str], offset: int) -> float:
    from ig_analytics.ingestion.media_snapshots import _SNAPSHOT_COLUMNS as cols

    sql = (f"INSERT INTO instagram.media_insights_snapshots ({', '.join(cols)}) VALUES "
           f"({', '.join(['%s'] * len(cols))}) ON CONFLICT (media_id, captured_at) DO UPDATE SET "
           + ", ".join(f"{col} = EXCLUDED.{col}" for col in cols[2:]))
    before = count(engine)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        t = time.perf_counter()
        for row in snapshot_rows(n, media_ids, IG_USER_ID, offset):
            cur.execute(sql, row)
        raw.commit()
        seconds = time.perf_counter() - t
        cur.close()
    finally:
        raw.close()
    assert count(engine) - before == n
    return seconds


def server_only(engine, chunks: list[str], direct: bool) -> float:
    """The server's share of ours on already encoded chunks, one after the other: each chunk COPYed straight into
    the table under a savepoint (``direct``: new rows in a large write), or into the temporary table and merged
    by INSERT ... ON CONFLICT (the merge path: updates, and every small write)."""
    from ig_analytics.ingestion.media_snapshots import _SNAPSHOT_COLUMNS
    from ig_analytics.storage import db

    staging = "_stage_media_insights_snapshots"
    insert_sql = db._upsert_sql("media_insights_snapshots", _SNAPSHOT_COLUMNS, SNAPSHOT_KEY, None, (), (), staging)
    copy_sql = db._copy_sql(staging, _SNAPSHOT_COLUMNS)
    direct_sql = db._copy_sql("instagram.media_insights_snapshots", _SNAPSHOT_COLUMNS)
    t = time.perf_counter()
    with engine.begin() as conn:
        with conn.connection.dbapi_connection.cursor() as cur:
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staging} "
                        "(LIKE instagram.media_insights_snapshots INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
            for text in chunks:
                if direct:
                    cur.execute("SAVEPOINT bench")
                    db._copy(cur, direct_sql, text)
                    cur.execute("RELEASE SAVEPOINT bench")
                else:
                    cur.execute(f"TRUNCATE {staging}")
                    db._copy(cur, copy_sql, text)
                    cur.execute(insert_sql)
    return time.perf_counter() - t


def checkout_cost(url: str, pre_ping: bool, n: int) -> tuple[float, float]:
    """Client CPU and wall per ``engine.connect()`` of a pooled connection, with or without SQLAlchemy's
    ``pool_pre_ping`` (a ``SELECT 1`` per checkout: storage/db.py keeps it on)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, pool_pre_ping=pre_ping, pool_size=2)
    try:
        with engine.connect():
            pass
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n):
            with engine.connect():
                pass
        return (time.process_time() - cpu) / n, (time.perf_counter() - wall) / n
    finally:
        engine.dispose()


def spread(values: list[float]) -> str:
    return f"best {min(values):.3f} s, median {statistics.median(values):.3f} s over {len(values)}"


def main(argv: list[str] | None = None) -> int:
    quick, rest = c.quick_flag(argv)
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(rest)
    import sqlalchemy as sa

    from ig_analytics.ingestion.media_snapshots import _SNAPSHOT_COLUMNS, SNAPSHOT_METRIC_COLUMNS
    from ig_analytics.storage import db

    n_ours = 10_000 if quick else 100_000
    n_row = 1_000 if quick else 5_000
    repeats = args.repeats or (1 if quick else 5)
    c.header(NAME, quick)
    with c.temp_postgres() as (_pg, url):
        engine = c.fresh_schema(url)
        print(f"postgres: {c.postgres_version(engine)}; chunks of {db.CHUNK_ROWS:,} rows; {repeats} repeats",
              flush=True)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO instagram.accounts (ig_user_id, username) VALUES (:i, 'bench')"),
                         {"i": IG_USER_ID})
            conn.execute(sa.text(
                "INSERT INTO instagram.media (media_id, ig_user_id, media_type, published_at, first_seen_at, updated_at)"
                " SELECT 'm' || g, :i, 'IMAGE', CAST(:t AS timestamptz), now(), now() FROM generate_series(1, 1000) g"),
                {"i": IG_USER_ID, "t": T0})
        media_ids = [f"m{g}" for g in range(1, 1001)]
        hours = -(-n_ours // len(media_ids))
        ours(engine, 1000, media_ids, offset=-10_000)  # warm-up (temp table, plan caches), not measured
        for bump in (0, 1):
            _metric_pool(len(SNAPSHOT_METRIC_COLUMNS), bump)  # the readings the rows are made of, not measured

        inserts, updates, rows = [], [], []
        for r in range(repeats):  # alternating, each on an emptied table: the same work every time
            empty_table(engine)
            inserts.append(ours(engine, n_ours, media_ids, offset=0))
            updates.append(ours(engine, n_ours, media_ids, offset=0, bump=1))
            rows.append(per_row(engine, n_row, media_ids, offset=50_000 + r * 10))
            print(f"repeat {r + 1}: ours insert {inserts[-1]:.3f} s, update {updates[-1]:.3f} s; per row "
                  f"{rows[-1]:.3f} s ({n_row:,} rows)", flush=True)

        # ---- where ours spends its time ------------------------------------------------------------------
        t = time.perf_counter()
        tuples = list(snapshot_rows(n_ours, media_ids, IG_USER_ID, 0))
        gen_s = time.perf_counter() - t
        enc, old = [], []
        for _ in range(3):
            t = time.perf_counter()
            chunks = [db._encode_chunk(tuples[i:i + db.CHUNK_ROWS]) for i in range(0, n_ours, db.CHUNK_ROWS)]
            enc.append(time.perf_counter() - t)
            t = time.perf_counter()
            old_csv_text(tuples)
            old.append(time.perf_counter() - t)
        del tuples
        server = {True: [], False: []}
        for _ in range(min(repeats, 3)):
            for direct in (True, False):
                empty_table(engine)
                server[direct].append(server_only(engine, chunks, direct))
        without_fk = []  # the foreign key to instagram.media checked per row (this throwaway database only)
        with engine.begin() as conn:
            fk = conn.execute(sa.text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f'"
                " AND conrelid = 'instagram.media_insights_snapshots'::regclass")).one()
            conn.execute(sa.text(f'ALTER TABLE instagram.media_insights_snapshots DROP CONSTRAINT "{fk[0]}"'))
        try:
            for _ in range(min(repeats, 3)):
                empty_table(engine)
                without_fk.append(server_only(engine, chunks, True))
        finally:
            empty_table(engine)
            with engine.begin() as conn:
                conn.execute(sa.text(f'ALTER TABLE instagram.media_insights_snapshots ADD CONSTRAINT "{fk[0]}" {fk[1]}'))

        n_checkouts = 1_000 if quick else 5_000
        pinged, plain = zip(*[(checkout_cost(url, True, n_checkouts), checkout_cost(url, False, n_checkouts))
                              for _ in range(2)])
        ins, upd, row = statistics.median(inserts), statistics.median(updates), statistics.median(rows)
        row_rps = n_row / row
        c.result("writes.columns", len(_SNAPSHOT_COLUMNS), "columns",
                 f"{len(SNAPSHOT_METRIC_COLUMNS)} metric columns + keys/jsonb/version")
        c.result("writes.ours.insert.rows", n_ours, "rows", f"{hours} hourly slots x {len(media_ids)} posts")
        c.result("writes.ours.insert.seconds", ins, "s", spread(inserts))
        c.result("writes.ours.insert.rows_per_s", round(n_ours / ins), "rows/s",
                 f"median; best {n_ours / min(inserts):,.0f}; target >= 80,000")
        c.result("writes.ours.update.seconds", upd, "s", "same keys, changed values: every row ON CONFLICT DO UPDATE; "
                 + spread(updates))
        c.result("writes.ours.update.rows_per_s", round(n_ours / upd), "rows/s", f"median; best {n_ours / min(updates):,.0f}")
        c.result("writes.per_row.rows", n_row, "rows")
        c.result("writes.per_row.seconds", row, "s", spread(rows))
        c.result("writes.per_row.rows_per_s", round(row_rps), "rows/s", f"median; best {n_row / min(rows):,.0f}")
        c.result("writes.speedup.insert", c.ratio(n_ours / ins, row_rps), "x", "ours (insert) / per row, medians")
        c.result("writes.speedup.update", c.ratio(n_ours / upd, row_rps), "x", "ours (update) / per row, medians")
        c.result("writes.split.tuples_seconds", gen_s, "s", "generating the tuples (benchmark side, inside ours)")
        c.result("writes.split.encode_seconds", min(enc), "s", f"COPY text of all chunks (db._encode_chunk), best of 3; "
                 f"the CSV writer it replaced: {min(old):.3f} s")
        direct_s, merge_s = statistics.median(server[True]), statistics.median(server[False])
        c.result("writes.split.server_seconds", direct_s, "s",
                 "the server's share of an insert: the encoded chunks COPYed straight into the table (savepoint "
                 "each), one after the other; " + spread(server[True]))
        c.result("writes.split.server_merge_seconds", merge_s, "s",
                 "the same through the temporary table + INSERT ... ON CONFLICT (the update path, and what every "
                 f"insert took before): {100 * (merge_s - direct_s) / merge_s:.0f} % more; " + spread(server[False]))
        no_fk_s = statistics.median(without_fk)
        c.result("writes.split.server_without_fk_seconds", no_fk_s, "s",
                 f"the direct path with the foreign key to instagram.media dropped: the per-row check is "
                 f"{100 * (direct_s - no_fk_s) / direct_s:.0f} % of the server's share; " + spread(without_fk))
        c.result("writes.split.sequential_seconds", gen_s + min(enc) + direct_s, "s",
                 f"tuples + encoding + server one after the other ({n_ours / (gen_s + min(enc) + direct_s):,.0f} "
                 "rows/s): ours overlaps the encoding with the server's work on the previous chunk")
        for label, costs in (("pre_ping", pinged), ("no_ping", plain)):
            cpu_us, wall_us = (min(x[i] for x in costs) * 1e6 for i in (0, 1))
            c.result(f"writes.checkout.{label}.cpu_us", cpu_us, "us",
                     f"client CPU per engine.connect() of a pooled connection, best of 2 x {n_checkouts:,}; "
                     f"wall {wall_us:.1f} us")
    c.result("peak_rss", c.peak_rss_mb(), "MB", "the benchmark holds the whole batch (tuples, chunks) for the split")
    c.done(NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
