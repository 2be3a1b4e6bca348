"""Retention's compaction of old posts' comment rows into counts (issue 27: ``media_comments`` was 2.9 MB of a
10.9 MB account-year): the report's conversation section reads the same numbers of every period after it, the
rows past the horizon are gone but the open questions (a report lists them), and a compacted post is never read
again (a full read would store its comments beside their counts, or delete its open questions).

The comments are the sandbox's (over HTTP, real PostgreSQL, real Dagster: answered and open questions, replies of
others and of the account); the horizon is moved inside their 30 days by calling ``compact_comment_rows`` with
an earlier cutoff (the job's own cutoff is never under ``COMMENT_ROWS_MIN_DAYS``)."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from ig_analytics.analytics.report_conversation import conversation_sections
from ig_analytics.defs.retention import COMMENT_ROWS_MIN_DAYS, RetentionConfig, apply_retention
from ig_analytics.storage.comment_retention import compact_comment_rows
from ig_analytics_tests.analytics_data import add_account, add_media
from ig_analytics_tests.ops_data import hour_floor, now_utc
from ig_analytics_tests.test_comments import run_hour, sandbox  # noqa: F401 (the fixture)

pytestmark = pytest.mark.slow


def _periods(now) -> list[tuple]:
    """Every UTC day of the last 32, every 7-day window ending on one of them, and the whole 32 days."""
    today = now.date()
    days = [today - timedelta(days=d) for d in range(32)]
    return [(d, d) for d in days] + [(d - timedelta(days=6), d) for d in days] + [(days[-1], today)]


def _sections(engine, world) -> dict:
    now = world.clock.now()
    with engine.connect() as conn:
        return {(a.ig_user_id, s, e): conversation_sections(conn, a.ig_user_id, s, e).get("conversation")
                for a in world.accounts for s, e in _periods(now)}


def _rows(engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def _compact(engine, world) -> tuple:
    """Compact the posts published more than 5 days before the world's now; (posts, cutoff)."""
    now = world.clock.now()
    before = now - timedelta(days=5)
    return compact_comment_rows(engine, before, now), before


def test_the_reports_conversation_of_every_period_is_the_same_after_compaction(engine, sandbox):  # noqa: F811
    world = sandbox
    run_hour(world)
    sections = _sections(engine, world)
    assert sum(1 for s in sections.values() if s and s["median_first_response_minutes"] is not None) > 50
    assert any(s and s["unanswered_questions"] for s in sections.values())
    old = "SELECT count(*) FROM instagram.media_comments c JOIN instagram.media m USING (media_id) WHERE {}"
    [(rows_before,)] = _rows(engine, old.format("m.published_at < :b"), b=world.clock.now() - timedelta(days=5))
    posts, before = _compact(engine, world)
    assert posts > 10
    assert _sections(engine, world) == sections  # every figure and list, every period, every account
    # of the old posts only the open questions stay as rows: top-level questions of others without the account's reply
    kept = _rows(engine, old.format("m.published_at < :b AND NOT (c.parent_id IS NULL AND NOT c.is_own AND"
                                    " c.is_question AND NOT EXISTS (SELECT 1 FROM instagram.media_comments r"
                                    " WHERE r.parent_id = c.comment_id AND r.is_own))"), b=before)
    [(questions,)] = _rows(engine, old.format("m.published_at < :b"), b=before)
    assert kept == [(0,)] and 0 < questions < rows_before / 5
    [(counted,)] = _rows(engine, "SELECT sum(comments_and_replies) FROM instagram.comment_day_counts")
    assert counted + questions == rows_before
    # a second run finds nothing more to compact and changes nothing
    assert _compact(engine, world)[0] == 0 and _sections(engine, world) == sections


def test_a_compacted_post_is_not_read_again_by_a_full_read(engine, sandbox):  # noqa: F811
    world = sandbox
    run_hour(world)
    _compact(engine, world)
    sections = _sections(engine, world)
    table = "SELECT comment_id FROM instagram.media_comments ORDER BY 1"
    stored, counts = _rows(engine, table), _rows(engine, "SELECT * FROM instagram.comment_day_counts ORDER BY 1, 2, 3")
    run_hour(world, refresh_all=True)  # the daily full read: every post of the window with comments, same hour
    after = _rows(engine, "SELECT c.comment_id FROM instagram.media_comments c JOIN instagram.media_comment_reads r"
                          " USING (media_id) WHERE r.rows_compacted_at IS NOT NULL ORDER BY 1")
    compacted_before = [r for r in stored if r in set(after)]
    assert after == compacted_before  # no comment of a compacted post stored again, none of its open questions deleted
    assert _rows(engine, "SELECT * FROM instagram.comment_day_counts ORDER BY 1, 2, 3") == counts
    assert _sections(engine, world) == sections  # nothing counted twice


def test_the_job_compacts_the_posts_older_than_its_horizon_only(engine):
    now = hour_floor(now_utc()) + timedelta(minutes=5)
    horizon = RetentionConfig().comment_rows_compact_after_days
    assert horizon >= COMMENT_ROWS_MIN_DAYS
    ages = {"OLD": horizon + 2, "NEW": horizon - 2}
    with engine.begin() as conn:
        add_account(conn, "1001")
        add_media(conn, [{"media_id": m, "ig_user_id": "1001", "published_at": now - timedelta(days=d),
                          "media_product_type": "FEED"} for m, d in ages.items()])
        for media_id, days in ages.items():
            t = now - timedelta(days=days - 1)
            for cid, parent, own, question, minutes in [("q1", None, False, True, 0), ("q2", None, False, True, 1),
                                                       ("a2", "q2", True, False, 50), ("c3", None, False, False, 3),
                                                       ("r3", "c3", False, False, 9), ("o4", None, True, False, 4)]:
                conn.execute(sa.text(
                    "INSERT INTO instagram.media_comments (comment_id, media_id, ig_user_id, parent_id, published_at,"
                    " is_own, is_question, first_seen_at, last_seen_at) VALUES (:c, :m, '1001', :p, :t, :o, :q, :t, :t)"),
                    {"c": f"{media_id}-{cid}", "m": media_id, "p": parent and f"{media_id}-{parent}",
                     "t": t + timedelta(minutes=minutes), "o": own, "q": question})
    with engine.connect() as conn:
        before = conversation_sections(conn, "1001", (now - timedelta(days=horizon + 5)).date(), now.date())
    counts = apply_retention(dg.DagsterInstance.ephemeral(), engine, RetentionConfig(), now)
    assert counts.comment_posts_compacted == 1
    ids = [r[0] for r in _rows(engine, "SELECT comment_id FROM instagram.media_comments ORDER BY 1")]
    assert ids == ["NEW-a2", "NEW-c3", "NEW-o4", "NEW-q1", "NEW-q2", "NEW-r3", "OLD-q1"]
    assert _rows(engine, "SELECT media_id, comments_and_replies, top_level, replies, response_minutes"
                         " FROM instagram.comment_day_counts") == [("OLD", 5, 2, 2, [49.0])]
    with engine.connect() as conn:
        assert conversation_sections(conn, "1001", (now - timedelta(days=horizon + 5)).date(), now.date()) == before


_COMMENT_TABLES = ("media_comments", "comment_day_counts", "media_comment_reads")
# A fault in one account's batch, raised by PostgreSQL itself: the mark of its compacted posts (the batch's last
# statement, after its rows were deleted and counted) is refused.
_REFUSE_MARK = """
CREATE FUNCTION instagram.refuse_mark() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'refused: %', NEW.media_id; END $$;
CREATE TRIGGER refuse_mark BEFORE INSERT ON instagram.media_comment_reads FOR EACH ROW
    WHEN (NEW.ig_user_id = :id AND NEW.rows_compacted_at IS NOT NULL) EXECUTE FUNCTION instagram.refuse_mark();
"""


def _comment_tables(engine) -> dict:
    return {t: _rows(engine, f"SELECT * FROM instagram.{t} ORDER BY 1, 2, 3") for t in _COMMENT_TABLES}


def _accounts_rows(tables: dict, ids) -> dict:
    return {t: [r for r in rows if r.ig_user_id in ids] for t, rows in tables.items()}


def test_the_compaction_commits_each_batch_of_accounts_and_a_rerun_finishes(engine, sandbox):  # noqa: F811
    """The first compaction after an upgrade (the rows were kept forever) has every account's older posts: it
    compacts the posts of ``batch_accounts`` accounts per transaction, a post's rows, counts and mark in one. In
    batches of one account the tables end as after one batch of all; a failure in the second batch leaves the
    first account compacted and the other two's rows as they were, and the next run compacts them: the same
    tables as in one batch."""
    from ig_analytics_tests.analytics_data import restore_tables, save_tables

    world = sandbox
    run_hour(world)
    with engine.begin() as conn:
        save_tables(conn, _COMMENT_TABLES)
    original, now = _comment_tables(engine), world.clock.now()
    ids = sorted({r.ig_user_id for r in original["media_comments"]})
    before = now - timedelta(days=5)

    whole = compact_comment_rows(engine, before, now, batch_accounts=3)
    compacted = _comment_tables(engine)
    assert len(ids) == 3 and {r.ig_user_id for r in compacted["comment_day_counts"]} == set(ids)
    with engine.begin() as conn:
        restore_tables(conn, _COMMENT_TABLES)
    assert compact_comment_rows(engine, before, now, batch_accounts=1) == whole
    assert _comment_tables(engine) == compacted

    with engine.begin() as conn:
        restore_tables(conn, _COMMENT_TABLES)
        conn.execute(sa.text(_REFUSE_MARK.replace(":id", f"'{ids[1]}'")))
    with pytest.raises(sa.exc.DBAPIError, match="refused"):
        compact_comment_rows(engine, before, now, batch_accounts=1)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER refuse_mark ON instagram.media_comment_reads"))
    after_failure = _comment_tables(engine)
    assert _accounts_rows(after_failure, ids[:1]) == _accounts_rows(compacted, ids[:1])
    assert _accounts_rows(after_failure, ids[1:]) == _accounts_rows(original, ids[1:])
    rest = compact_comment_rows(engine, before, now, batch_accounts=1)
    assert _comment_tables(engine) == compacted and 0 < rest < whole
