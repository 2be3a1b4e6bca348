"""Benchmark 2: writing media snapshot rows (22 columns) into PostgreSQL.

Ours: ``storage.db.bulk_upsert`` (COPY into a temporary table, then one INSERT ... ON CONFLICT DO UPDATE), as
``sync_media`` calls it; measured on new rows (inserts) and again on the same keys (every row a conflict ->
update). Baseline: one upsert statement per row (``cursor.execute`` per row, psycopg2, one transaction), what
the story's Prisma loop does. Both include building the rows' values in Python.

    .venv/bin/python -m benchmarks.db_writes [--quick]     (full: 100,000 rows ours, 5,000 per-row; quick: 10,000 / 1,000)
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as c  # noqa: E402

NAME = "db_writes"
T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)


def snapshot_rows(n: int, media_ids: list[str], ig_user_id: str, offset_hours: int, bump: int = 0):
    """n realistic snapshot rows: media x hourly capture slots (keys unique within the batch)."""
    from ig_analytics.ingestion.media_snapshots import SNAPSHOT_METRIC_COLUMNS

    n_metrics = len(SNAPSHOT_METRIC_COLUMNS)
    per_media = -(-n // len(media_ids))
    out = 0
    fetched = T0 + timedelta(minutes=4)
    for h in range(per_media):
        slot = T0 + timedelta(hours=offset_hours + h)
        for i, mid in enumerate(media_ids):
            if out == n:
                return
            base = (i * 7 + h * 13) % 5000 + bump
            metrics = [base * (k + 1) if k % 5 != 4 else None for k in range(n_metrics)]
            yield (mid, slot, fetched, ig_user_id, *metrics, None, "v25.0")
            out += 1


def count(engine) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM instagram.media_insights_snapshots")).scalar()


def main(argv: list[str] | None = None) -> int:
    quick, _ = c.quick_flag(argv)
    import sqlalchemy as sa

    from ig_analytics.ingestion.media_snapshots import _SNAPSHOT_COLUMNS, SNAPSHOT_METRIC_COLUMNS
    from ig_analytics.storage.db import _csv_buffer, bulk_upsert

    n_ours = 10_000 if quick else 100_000
    n_row = 1_000 if quick else 5_000
    c.header(NAME, quick)
    with c.temp_postgres() as (_pg, url):
        engine = c.fresh_schema(url)
        print(f"postgres: {c.postgres_version(engine)}", flush=True)
        ig_user_id = "17841400000000001"
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO instagram.accounts (ig_user_id, username) VALUES (:i, 'bench')"),
                         {"i": ig_user_id})
            conn.execute(sa.text(
                "INSERT INTO instagram.media (media_id, ig_user_id, media_type, published_at, first_seen_at, updated_at)"
                " SELECT 'm' || g, :i, 'IMAGE', CAST(:t AS timestamptz), now(), now() FROM generate_series(1, 1000) g"),
                {"i": ig_user_id, "t": T0})
        media_ids = [f"m{g}" for g in range(1, 1001)]

        # warm-up (temp table creation, plan caches), not measured
        with engine.begin() as conn:
            bulk_upsert(conn, "media_insights_snapshots", _SNAPSHOT_COLUMNS,
                        snapshot_rows(1000, media_ids, ig_user_id, offset_hours=-10_000), ("media_id", "captured_at"))

        # ---- ours: COPY + ON CONFLICT, new rows ----------------------------------------------------------
        t = time.perf_counter()
        with engine.begin() as conn:
            written = bulk_upsert(conn, "media_insights_snapshots", _SNAPSHOT_COLUMNS,
                                  snapshot_rows(n_ours, media_ids, ig_user_id, 0), ("media_id", "captured_at"))
        ours_insert_s = time.perf_counter() - t
        # ---- ours: the same keys again: every row is a conflict (update) -------------------------------
        t = time.perf_counter()
        with engine.begin() as conn:
            bulk_upsert(conn, "media_insights_snapshots", _SNAPSHOT_COLUMNS,
                        snapshot_rows(n_ours, media_ids, ig_user_id, 0, bump=1), ("media_id", "captured_at"))
        ours_update_s = time.perf_counter() - t
        assert written == n_ours

        # ---- baseline: one upsert statement per row, one transaction --------------------------------------
        cols = _SNAPSHOT_COLUMNS
        sql = (f"INSERT INTO instagram.media_insights_snapshots ({', '.join(cols)}) VALUES "
               f"({', '.join(['%s'] * len(cols))}) ON CONFLICT (media_id, captured_at) DO UPDATE SET "
               + ", ".join(f"{col} = EXCLUDED.{col}" for col in cols[2:]))
        before = count(engine)
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            t = time.perf_counter()
            for row in snapshot_rows(n_row, media_ids, ig_user_id, 50_000):
                cur.execute(sql, row)
            raw.commit()
            per_row_s = time.perf_counter() - t
            cur.close()
        finally:
            raw.close()
        assert count(engine) - before == n_row

        # where ours spends its time: building the rows and the CSV text in Python vs the server's work
        t = time.perf_counter()
        rows = list(snapshot_rows(n_ours, media_ids, ig_user_id, 0))
        gen_s = time.perf_counter() - t
        t = time.perf_counter()
        _csv_buffer(rows)
        csv_s = time.perf_counter() - t
        del rows

        ours_rps = n_ours / ours_insert_s
        ours_upd_rps = n_ours / ours_update_s
        row_rps = n_row / per_row_s
        c.result("writes.columns", len(cols), "columns", f"{len(SNAPSHOT_METRIC_COLUMNS)} metric columns + keys/jsonb/version")
        c.result("writes.ours.insert.rows", n_ours, "rows")
        c.result("writes.ours.insert.seconds", ours_insert_s, "s")
        c.result("writes.ours.insert.rows_per_s", round(ours_rps), "rows/s", "target >= 50,000")
        c.result("writes.ours.insert.python_csv_seconds", csv_s, "s",
                 f"of the insert: CSV encoding in bulk_upsert ({100 * csv_s / ours_insert_s:.0f} %); "
                 f"generating the tuples {gen_s:.3f} s; the rest is COPY + INSERT ... ON CONFLICT in the server")
        c.result("writes.ours.update.seconds", ours_update_s, "s", "same keys again: every row ON CONFLICT DO UPDATE")
        c.result("writes.ours.update.rows_per_s", round(ours_upd_rps), "rows/s")
        c.result("writes.per_row.rows", n_row, "rows")
        c.result("writes.per_row.seconds", per_row_s, "s")
        c.result("writes.per_row.rows_per_s", round(row_rps), "rows/s")
        c.result("writes.speedup.insert", c.ratio(ours_rps, row_rps), "x", "ours (insert) / per-row; target >= 25x")
        c.result("writes.speedup.update", c.ratio(ours_upd_rps, row_rps), "x", "ours (update) / per-row")
    c.result("peak_rss", c.peak_rss_mb(), "MB", "bulk_upsert holds the whole batch as CSV text in memory")
    c.done(NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
