"""Issue 27: the conversation checks of a shard run judge its own accounts' rows only (N shard runs scanned the
whole comment, tagged-post, hashtag and conversation tables N times a tick); a run of every account judges all.
Real PostgreSQL, real Dagster runs of the check step."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest
import sqlalchemy as sa

from ig_analytics import clock
from ig_analytics.accounts.shards import SHARD_TAG, shard_of
from ig_analytics.defs import conversation_assets
from ig_analytics_tests.analytics_data import add_account, ts
from ig_analytics_tests.ingestion_harness import RESOURCES

NOW = ts(2026, 1, 10, 12)
MINE, OTHER = "acct-1", "acct-4"  # in different shards of 2 (asserted below)
CHECKS = ["media_comments_valid", "conversation_daily_valid", "tagged_media_valid", "hashtags_valid"]


def _violations_of(conn, account: str) -> None:
    """One broken row of ``account`` in each table the conversation checks judge."""
    t = {"a": account, "t": ts(2026, 1, 9)}
    conn.execute(sa.text(
        "INSERT INTO instagram.media_comments (comment_id, media_id, ig_user_id, parent_id, like_count, published_at,"
        " is_own, is_question, first_seen_at, last_seen_at) VALUES"
        " (:a || '-c1', :a || '-m', :a, NULL, -1, :t, false, false, :t, :t),"  # negative likes
        " (:a || '-c2', :a || '-m', :a, :a || '-c1', 0, :t, false, false, :t, :t),"
        " (:a || '-c3', :a || '-m', :a, :a || '-c2', 0, :t, false, false, :t, :t)"), t)  # a reply to a reply
    conn.execute(sa.text(
        "INSERT INTO instagram.conversation_daily (ig_user_id, date, comments, replies, top_level, top_level_answered,"
        " top_level_unanswered, unanswered_questions, answered_that_day, computed_at)"
        " VALUES (:a, '2026-01-09', 1, 0, 1, 1, 1, 0, 0, :t)"), t)  # answered + unanswered <> top-level
    conn.execute(sa.text("INSERT INTO instagram.tagged_media (ig_user_id, media_id, like_count, first_seen_at,"
                         " last_seen_at) VALUES (:a, 'tagged', -3, :t, :t)"), t)
    conn.execute(sa.text(
        "INSERT INTO instagram.hashtag_performance (ig_user_id, period_start, period_end, hashtag, posts, computed_at)"
        " VALUES (:a, :s, :e, 'tag', 1, :t)"), {**t, "s": date(2025, 12, 10), "e": date(2026, 1, 9)})


def _check_run(tags: dict) -> dict[str, tuple[bool, int]]:
    """Run the conversation checks as a run with ``tags``: each check's (passed, violations)."""
    with clock.frozen(NOW):
        result = dg.materialize(
            [*conversation_assets.conversation_assets, *conversation_assets.conversation_checks],
            selection=dg.AssetSelection.checks(*conversation_assets.conversation_checks),
            resources=RESOURCES,
            tags=tags, raise_on_error=False)
    evaluations = result.get_asset_check_evaluations()
    return {e.check_name: (e.passed, e.metadata["total_violations"].value) for e in evaluations}


@pytest.fixture()
def broken_other_shard(engine, ig_home):
    assert shard_of(MINE, 2) != shard_of(OTHER, 2)
    with engine.begin() as conn:
        add_account(conn, MINE)
        add_account(conn, OTHER)
        _violations_of(conn, OTHER)


def test_a_shard_run_does_not_report_another_shards_violation_and_a_run_of_every_account_does(broken_other_shard):
    mine = _check_run({SHARD_TAG: f"{shard_of(MINE, 2)}/2"})
    assert mine == {name: (True, 0) for name in CHECKS}
    other = _check_run({SHARD_TAG: f"{shard_of(OTHER, 2)}/2"})
    everyone = _check_run({})
    assert other == everyone
    assert everyone == {"media_comments_valid": (False, 2), "conversation_daily_valid": (False, 1),
                        "tagged_media_valid": (False, 1), "hashtags_valid": (False, 1)}


def test_every_scoped_rule_of_the_big_tables_reads_an_index(engine, ig_home):
    """A shard's quarter of media_comments or tagged_media was still a whole scan (``= ANY(:accounts)`` alone does
    not make the planner use an index for a quarter of the rows). On 40,000 comments and tagged posts of 4 accounts
    (analysed), the rules that scanned those tables read migration 0021's indexes, and no plan holds a Seq Scan."""
    from ig_analytics.quality import conversation as rules
    from ig_analytics.quality import result

    accounts = ["acct-1", "acct-2", "acct-3", "acct-4"]
    with engine.begin() as conn:
        for account in accounts:
            add_account(conn, account)
        conn.execute(sa.text(
            "INSERT INTO instagram.media_comments (comment_id, media_id, ig_user_id, parent_id, like_count, published_at,"
            " is_own, is_question, first_seen_at, last_seen_at) SELECT 'c' || i, 'm' || (i / 50),"
            " (:accounts)[1 + i % 4], CASE WHEN i % 3 = 0 THEN 'c' || (i - 1) END, i % 7, :t, false, false, :t, :t"
            " FROM generate_series(1, 40000) i"), {"accounts": accounts, "t": ts(2026, 1, 9)})
        conn.execute(sa.text(
            "INSERT INTO instagram.tagged_media (ig_user_id, media_id, like_count, comments_count, published_at,"
            " first_seen_at, last_seen_at) SELECT (:accounts)[1 + i % 4], 't' || i, i % 9, i % 5,"
            " :t - i * interval '1 minute', :t, :t FROM generate_series(1, 40000) i"), {"accounts": accounts,
                                                                                      "t": ts(2026, 1, 9)})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE instagram.media_comments"))
        conn.execute(sa.text("VACUUM ANALYZE instagram.tagged_media"))
    seen = []
    real = result.evaluate_rules

    def explain(conn, checked, params, **kw):
        for rule in checked:
            plan = "\n".join(r[0] for r in conn.execute(sa.text(f"EXPLAIN SELECT count(*) FROM {rule.from_where}"),
                                                        params))
            seen.append((rule.name, plan))
        return real(conn, checked, params, **kw)

    rules.evaluate_rules = explain
    try:
        with engine.connect() as conn:
            rules.media_comments_validity(conn, NOW, 90, [MINE])
            rules.tagged_media_validity(conn, NOW, [MINE])
    finally:
        rules.evaluate_rules = real
    plans = dict(seen)
    assert len(plans) == 6 and not [name for name, plan in seen if "Seq Scan" in plan], seen
    assert "media_comments_negative_likes" in plans["negative_likes"]
    assert "media_comments_replies" in plans["reply_to_a_reply"]
    assert "tagged_media_negative_counts" in plans["negative_counts"]
    assert "tagged_media_published" in plans["future_post"]
