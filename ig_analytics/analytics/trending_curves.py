"""Where trending's engagement curves live: a post's snapshots (``instagram.media_insights_snapshots``) and, for
the rows retention deleted, its packed row of ``instagram.media_curves`` (issue 27). Each point is in exactly one
of them: retention's compaction (``compact_snapshots``) moves the deleted rows trending reads into the curve row in
the transaction that deletes them, and trending reads the union (``POINTS_SQL``) with its usual filters, so an
evaluation (a backfilled past hour too) sees the same points after the compaction as before it.

Before, retention kept every snapshot of a post's first ``curve_span`` while the post was in trending's baseline:
~5,600 of the 9,621 snapshot rows a year of one account keeps, ~300 B a row; packed, a point costs ~40 B
(docs/deploy.md, "Data growth")."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ig_analytics.analytics.trending_scores import TrendingParams
from ig_analytics.storage.account_batches import BATCH_ACCOUNTS, each_batch

# The snapshot columns trending reads (the engagement's raw counters, not the engagement: a changed definition,
# _common.engagement_sql, still applies to packed points), as both the snapshots and the view
# ``instagram.media_curve_points`` (the packed points as rows) name them.
CURVE_COLUMNS = ("captured_at", "fetched_at", "reach", "likes", "comments", "saved", "shares", "total_interactions")
_COUNTERS = CURVE_COLUMNS[2:]

# Every point of the posts of ``_trend_posts`` (idx, published_at and CURVE_COLUMNS), as the alias ``s``: the
# snapshots and the packed points. A filter on ``s`` applies to both branches (PostgreSQL pushes it into each).
POINTS_SQL = f"""(
    SELECT p.idx, p.published_at, {", ".join(f"s.{col}" for col in CURVE_COLUMNS)}
    FROM _trend_posts p JOIN instagram.media_insights_snapshots s ON s.media_id = p.media_id
    UNION ALL
    SELECT p.idx, p.published_at, {", ".join(f"c.{col}" for col in CURVE_COLUMNS)}
    FROM _trend_posts p JOIN instagram.media_curve_points c ON c.media_id = p.media_id
) s"""


def curve_span(params: TrendingParams = TrendingParams()) -> timedelta:
    """How long after publication a post's snapshots are read for its curve: the candidates' ages, plus the widest
    gap interpolated across, the window and the fetch grace. The snapshots of a post published within
    ``params.baseline_days`` and read within this span are what trending reads (retention packs them)."""
    max_age_h = params.max_age.total_seconds() / 3600.0
    return timedelta(hours=max_age_h + params.max_gap_hours + params.window_hours + params.fetch_grace_hours)


_SNAPSHOTS_GONE = """
WITH ranked AS (
    SELECT media_id, captured_at, row_number() OVER (PARTITION BY media_id,
        date_trunc(CAST(:period AS text), captured_at AT TIME ZONE 'UTC') ORDER BY captured_at DESC) AS rn
    FROM instagram.media_insights_snapshots WHERE captured_at < :before
      AND media_id IN (SELECT media_id FROM instagram.media WHERE ig_user_id = ANY(:ids))),
gone AS (
    DELETE FROM instagram.media_insights_snapshots s USING ranked r
    WHERE s.media_id = r.media_id AND s.captured_at = r.captured_at AND r.rn > 1
    RETURNING s.media_id, s.captured_at, s.fetched_at, s.reach, s.likes, s.comments, s.saved, s.shares,
              s.total_interactions)
INSERT INTO _snapshots_gone SELECT * FROM gone"""
# The deleted rows trending reads (POINTS_SQL's filters in trending.py) with the points the post's row holds, packed
# again (times in milliseconds after the publication, the fetch time floored: migration 0022).
_MS = "CAST(floor(EXTRACT(epoch FROM {} - m.published_at) * 1000) AS integer)"
_CURVES_MOVED = f"""
WITH moved AS (
    SELECT g.* FROM _snapshots_gone g JOIN instagram.media m ON m.media_id = g.media_id
    WHERE m.published_at > :baseline_from AND m.media_product_type IS DISTINCT FROM 'STORY'
      AND g.fetched_at > m.published_at AND g.fetched_at <= m.published_at + :span),
points AS (  -- a slot deleted again (captured anew after it moved): the newer values
    SELECT DISTINCT ON (media_id, captured_at) * FROM (
        SELECT 0 AS older, * FROM moved
        UNION ALL
        SELECT 1, * FROM instagram.media_curve_points WHERE media_id IN (SELECT media_id FROM moved)) a
    ORDER BY media_id, captured_at, older)
INSERT INTO instagram.media_curves (media_id, published_at, captured_after_ms, fetched_after_ms, {", ".join(_COUNTERS)})
SELECT p.media_id, m.published_at, array_agg({_MS.format("p.captured_at")} ORDER BY p.captured_at),
       array_agg({_MS.format("p.fetched_at")} ORDER BY p.captured_at),
       {", ".join(f"array_agg(p.{col} ORDER BY p.captured_at)" for col in _COUNTERS)}
FROM points p JOIN instagram.media m ON m.media_id = p.media_id GROUP BY p.media_id, m.published_at
ON CONFLICT (media_id) DO UPDATE SET published_at = EXCLUDED.published_at,
    captured_after_ms = EXCLUDED.captured_after_ms, fetched_after_ms = EXCLUDED.fetched_after_ms,
    {", ".join(f"{col} = EXCLUDED.{col}" for col in _COUNTERS)}"""
_MAX_SPAN = timedelta(days=24)  # int4 milliseconds after the publication


def compact_snapshots(engine: Engine, before: datetime, now: datetime | None = None,
                      params: TrendingParams = TrendingParams(), period: str = "day",
                      batch_accounts: int = BATCH_ACCOUNTS) -> int:
    """Keep the last snapshot of each post and UTC ``period`` (day, or ISO week) among those captured before
    ``before``. The deleted rows that trending reads at ``now`` (a non-story post published within
    ``params.baseline_days``, fetched within its ``curve_span``) move to the post's ``media_curves`` row in the
    same transaction (each point is in one place: trending reads both). ``now`` None: nothing moves.
    The posts of ``batch_accounts`` accounts (their owners in ``instagram.media``) per transaction, each committed
    (``storage/account_batches``: the first run after an upgrade compacts months of every account's hours)."""
    return sum(each_batch(engine, ("media",), lambda conn, ids: compact_accounts_snapshots(
        conn, ids, before, now, params, period), batch_accounts))


def compact_accounts_snapshots(conn: Connection, ig_user_ids: Sequence[str], before: datetime,
                               now: datetime | None = None, params: TrendingParams = TrendingParams(),
                               period: str = "day") -> int:
    """:func:`compact_snapshots` of these accounts' posts, in the caller's transaction."""
    conn.execute(sa.text(
        "CREATE TEMP TABLE _snapshots_gone ON COMMIT DROP AS SELECT media_id, "
        + ", ".join(CURVE_COLUMNS) + " FROM instagram.media_insights_snapshots WITH NO DATA"))
    deleted = conn.execute(sa.text(_SNAPSHOTS_GONE),
                           {"before": before, "period": period, "ids": list(ig_user_ids)}).rowcount
    if now is not None and deleted:
        if curve_span(params) > _MAX_SPAN:
            raise ValueError(f"curve_span {curve_span(params)} exceeds what media_curves holds ({_MAX_SPAN})")
        conn.execute(sa.text(_CURVES_MOVED), {"baseline_from": now - timedelta(days=params.baseline_days),
                                              "span": curve_span(params)})
    return deleted


def drop_curves(engine: Engine, now: datetime, params: TrendingParams = TrendingParams()) -> int:
    """Delete the ``media_curves`` rows of the posts no longer in trending's baseline at ``now`` (published
    ``params.baseline_days`` before it or earlier): what remains of their first days are their compacted snapshots,
    as before the curves were packed."""
    with engine.begin() as conn:
        return conn.execute(sa.text(
            "DELETE FROM instagram.media_curves c USING instagram.media m"
            " WHERE m.media_id = c.media_id AND m.published_at <= :baseline_from"),
            {"baseline_from": now - timedelta(days=params.baseline_days)}).rowcount


