"""Comments against the sandbox's truth (over HTTP, real PostgreSQL, real Dagster): stored once each, read only
when a post's count moved, refusals cost one post, an account without the permission is told, not failed, and
deleted comments leave at the next full read.

The sandbox's comment shapes follow recorded replies of sns-sdks/python-facebook
(testdata/instagram/apidata/medias/comments_p1.json: newest first, cursor paging; comments_fields.json)."""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from ig_analytics import clock
from ig_analytics.constants import MEDIA_WINDOW_DAYS
from ig_analytics.defs import conversation_assets, ingestion_assets
from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics.sandbox import comments as truth
from ig_analytics_tests.ingestion_harness import RESOURCES, SANDBOX_NOW, hour_key, register, served


@pytest.fixture()
def sandbox(engine, ig_home, monkeypatch):
    world = SandboxWorld.demo(now=SANDBOX_NOW)
    for server in served(engine, monkeypatch, world):
        yield world


def run_hour(world, refresh_all: bool = False) -> dg.ExecuteInProcessResult:
    config = {"max_capture_lag_hours": None, "refresh_all": refresh_all}
    assets = [ingestion_assets.ACCOUNTS, ingestion_assets.media_and_snapshots, conversation_assets.media_comments]
    result = dg.materialize(assets, selection=assets[1:], resources=RESOURCES, partition_key=hour_key(world.clock.now()),
                            run_config={"ops": {"media_and_snapshots": {"config": config}}}, raise_on_error=False)
    assert result.success
    return result


def comments_metadata(result) -> dict:
    [mat] = [m for m in result.asset_materializations_for_node("media_comments")]
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def expected(world, skip: set[str] = frozenset()) -> dict[str, tuple]:
    """comment_id -> (media_id, parent_id, username, text, is_own, hidden) for every comment the API serves."""
    now = world.clock.now()
    out = {}
    for acct in world.accounts:
        if acct.ig_user_id in skip:
            continue
        for m in acct.posts_until(now):
            if now - m.published_at > timedelta(days=MEDIA_WINDOW_DAYS) or truth.refuses_comments(m):
                continue
            visible = truth.visible_comments(acct, m, now)
            ids = {c.unit: c.comment_id for c in visible}
            for c in visible:
                out[c.comment_id] = (m.media_id, ids.get(c.parent_unit), c.username, c.text, c.is_own, c.hidden)
    return out


def stored(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT comment_id, media_id, parent_id, username, text, is_own, hidden"
                                    " FROM instagram.media_comments")).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_comments_and_replies_are_stored_once_each_and_a_quiet_hour_reads_none(engine, sandbox):
    world = sandbox
    first = run_hour(world)
    want = expected(world)
    assert len(want) > 1000 and any(v[1] for v in want.values()) and any(v[4] for v in want.values())
    assert stored(engine) == want  # ids are the key: each comment and reply once
    refused = [m.media_id for a in world.accounts for m in a.posts_until(world.clock.now())
               if truth.refuses_comments(m) and m.metric_at("comments", world.clock.now())
               and world.clock.now() - m.published_at < timedelta(days=MEDIA_WINDOW_DAYS)]
    with engine.connect() as conn:
        marked = conn.execute(sa.text("SELECT media_id FROM instagram.media_comment_reads"
                                      " WHERE refused_reason IS NOT NULL")).scalars().all()
    assert refused and sorted(marked) == sorted(refused)  # each refusal cost its post only
    assert comments_metadata(first)["accounts_failed"] == 0

    again = run_hour(world)  # the same instant: no count moved
    assert comments_metadata(again)["api_calls"] == 0
    assert stored(engine) == want

    world.clock.advance(timedelta(hours=1))
    later = comments_metadata(run_hour(world))
    now_stored, now_truth = stored(engine), expected(world)
    assert {k: now_stored[k] for k in now_truth} == now_truth  # the new comments and replies, once each
    assert set(now_stored) - set(now_truth) <= set(want)  # extra: deleted since, until the next full read
    assert 0 < later["posts_read"] < 20  # only the posts whose count moved


def test_an_account_without_the_permission_is_told_once_and_not_failed(engine, sandbox, caplog):
    world = sandbox
    denied = world.accounts[1].ig_user_id
    world.comments_denied.add(denied)
    caplog.set_level("DEBUG")
    run = run_hour(world)
    result = comments_metadata(run)
    texts = {v[3] for v in expected(world).values() if len(v[3]) > 12}
    logged = "\n".join(r.getMessage() for r in caplog.records) + str(
        [e.event_specific_data for e in run.all_events])
    assert texts and not [t for t in texts if t in logged]  # no comment text in logs or run metadata
    assert sum("comments not stored" in r.getMessage() for r in caplog.records) == 1  # told once
    assert result["accounts_failed"] == 0 and result["accounts_without_permission"] == 1
    assert stored(engine) == expected(world, skip={denied})
    with engine.connect() as conn:
        access = dict(conn.execute(sa.text("SELECT ig_user_id, status FROM instagram.comment_access")).all())
    assert access[denied] == "denied" and list(access.values()).count("granted") == 2
    from ig_analytics.cli.status import render_status

    told = [line for line in render_status(engine).splitlines() if "comments not stored" in line]
    assert len(told) == 1 and "instagram_manage_comments" in told[0]  # status (and accounts list) say it
    world.clock.advance(timedelta(hours=1))
    assert comments_metadata(run_hour(world))["accounts_without_permission"] == 1  # not asked again this hour


def test_a_deleted_comment_leaves_at_the_next_full_read(engine, sandbox):
    world = sandbox
    run_hour(world)
    before = stored(engine)
    world.clock.advance(truth.DELETED_AFTER + timedelta(minutes=5))
    run_hour(world)
    gone = set(before) - set(expected(world))
    assert gone, "some comment of the last hours was deleted on Instagram"
    assert gone & set(stored(engine))  # an incremental read does not see deletions
    run_hour(world, refresh_all=True)
    assert stored(engine) == expected(world)


def _published(post: dict) -> datetime:
    return datetime.strptime(post["timestamp"], "%Y-%m-%dT%H:%M:%S%z")


def test_posts_that_tag_the_account_are_read_once_a_day(engine, sandbox):
    from ig_analytics.sandbox import tags as tag_truth

    world = sandbox
    assets = [ingestion_assets.ACCOUNTS, conversation_assets.tagged_media]

    def run() -> dict:
        with clock.use(world.clock.now):  # the product's clock is the world's: "90 days ago" means the same
            result = dg.materialize(assets, selection=assets[1:], resources=RESOURCES, raise_on_error=False)
        assert result.success
        [mat] = result.asset_materializations_for_node("tagged_media")
        return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}

    first = run()
    first_calls = first["api_calls"]
    assert first["accounts_due"] == 3
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT ig_user_id, media_id, username, like_count, comments_count, permalink"
                                    " FROM instagram.tagged_media")).all()
    # the username of a post published over IG_ANALYTICS_COMMENT_TEXT_DAYS (90) ago is not kept: not our user's
    keep_since = world.clock.now() - timedelta(days=90)
    want = {(a.ig_user_id, p["id"], p["username"] if _published(p) >= keep_since else None, p["like_count"],
             p["comments_count"], p["permalink"])
            for a in world.accounts for p in tag_truth.tagged_posts(a, world.clock.now())[:20 * 50]}
    assert set(map(tuple, rows)) == want and any(r[3] is None for r in rows)  # a hidden like count stays NULL
    assert any(r[2] is None for r in rows) and any(r[2] is not None for r in rows)
    assert run()["api_calls"] == 0  # read again only when a day old
    with engine.begin() as conn:  # a day later: only the pages of the last 30 days, whose counts still move
        conn.execute(sa.text("UPDATE instagram.tag_reads SET read_at = read_at - interval '1 day'"))
    later = run()["api_calls"]
    assert 0 < later < first_calls and later <= 2 * len(world.accounts)  # at most 60 tagged posts in 30 days


def test_the_report_shows_conversation_tags_and_hashtags(engine, ig_home, monkeypatch, tmp_path):
    """What the demo's report shows: the three sections, in the JSON and the HTML (a world on the wall clock, so
    the report's period, the hashtag periods and the sandbox's comments agree)."""
    from datetime import datetime, timezone

    from ig_analytics.analytics.reports import write_reports
    from ig_analytics.defs import analytics_assets

    now = datetime.now(timezone.utc)
    world = SandboxWorld.demo(now=now)
    with SandboxServer(world, port=0) as server:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        register(engine, world)
        assets = [ingestion_assets.ACCOUNTS, ingestion_assets.media_and_snapshots, analytics_assets.media_engagement,
                  *conversation_assets.conversation_assets]
        result = dg.materialize(assets, selection=assets[1:], resources=RESOURCES, partition_key=hour_key(now),
                                run_config={"ops": {"media_and_snapshots": {"config": {"refresh_all": True}}}},
                                raise_on_error=False)
    assert result.success
    with engine.begin() as conn:
        results = write_reports(conn, period_end=now.date(), days=7, kind="rolling_7d", reports_dir=tmp_path,
                                ig_user_ids=[world.accounts[2].ig_user_id])
    report, html = results[0].report, results[0].html_path.read_text()
    assert {"conversation", "tagged_media", "hashtags"} <= set(report)
    conversation = report["conversation"]
    assert conversation["comments"] > 0 and 0 < conversation["response_rate"] <= 100
    assert conversation["unanswered_questions"] and conversation["unanswered_questions"][0]["permalink"]
    assert report["hashtags"]["tags"][0]["posts"] >= 3
    for title in ("<h2>Conversation</h2>", "<h2>Posts that tagged you</h2>", "<h2>Hashtags</h2>"):
        assert title in html
    question = conversation["unanswered_questions"][0]["text"]
    assert question in html and question not in results[0].markdown  # the webhook's summary carries no comment

    # retention with a 3-day setting: the tagged posts of the report's first days lose caption and username, in
    # the table and in the stored report; the newer ones keep them
    from ig_analytics.defs.retention import RetentionConfig, apply_retention

    before = now - timedelta(days=3)
    counts = apply_retention(dg.DagsterInstance.ephemeral(), engine, RetentionConfig(), now, comment_text_days=3)
    assert counts.tagged_posts_blanked > 0
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT published_at < :b, bool_and(caption IS NULL AND username IS NULL),"
                                    " bool_or(caption IS NOT NULL) FROM instagram.tagged_media GROUP BY 1"),
                            {"b": before}).all()
        stored = conn.execute(sa.text("SELECT report->'tagged_media'->'posts' FROM instagram.performance_reports"
                                      " WHERE ig_user_id = :id"), {"id": world.accounts[2].ig_user_id}).scalar_one()
    assert {old: (blank, any_text) for old, blank, any_text in kept} == {True: (True, False), False: (False, True)}
    posts = [(datetime.fromisoformat(p["published_at"]) < before, p["caption"], p["username"]) for p in stored]
    assert {old for old, *_ in posts} == {True, False}  # the report lists both
    assert all((c, u) == (None, None) for old, c, u in posts if old)
    assert all(u is not None for old, c, u in posts if not old)


def test_a_comment_read_again_unchanged_is_not_rewritten(engine, sandbox):
    """Issue 27: a full read rewrote every comment of its post for last_seen_at alone (about half the server's WAL
    in a steady hour). Read again unchanged, a row keeps its version; a row that differs from the API is mended."""
    world = sandbox
    run_hour(world)
    versions = "SELECT comment_id, xmin::text FROM instagram.media_comments"
    with engine.begin() as conn:
        before = dict(conn.execute(sa.text(versions)).all())
        wrong = conn.execute(sa.text("UPDATE instagram.media_comments SET like_count = -1 WHERE comment_id IN"
                                     " (SELECT comment_id FROM instagram.media_comments ORDER BY comment_id LIMIT 3)"
                                     " RETURNING comment_id")).scalars().all()
    with engine.connect() as conn:
        marked = dict(conn.execute(sa.text(versions)).all())
    run_hour(world, refresh_all=True)  # the same instant: every comment read again, as it was
    with engine.connect() as conn:
        after = dict(conn.execute(sa.text(versions)).all())
        mended = conn.execute(sa.text("SELECT count(*) FROM instagram.media_comments WHERE like_count < 0")).scalar()
    assert len(before) > 1000 and set(after) == set(before) and len(wrong) == 3
    assert {c for c in after if after[c] != marked[c]} == set(wrong) and mended == 0
    assert stored(engine) == expected(world)


def test_the_newest_comment_is_looked_up_only_for_a_post_whose_count_moved(engine, sandbox):
    """Issue 27: the incremental read's start (the newest stored top-level comment) was read for every post of the
    window every hour, though only a post whose count moved is read; it is looked up for those only now."""
    from ig_analytics.ingestion.comments import _posts

    run_hour(sandbox)
    account = sandbox.accounts[0].ig_user_id
    since = SANDBOX_NOW - timedelta(days=MEDIA_WINDOW_DAYS)
    with engine.begin() as conn:
        posts = _posts(conn, account, since)
        newest = dict(conn.execute(sa.text("SELECT media_id, max(published_at) FROM instagram.media_comments"
                                           " WHERE parent_id IS NULL AND ig_user_id = :a GROUP BY 1"), {"a": account}).all())
        moved = next(p.media_id for p in posts if p.media_id in newest and p.read and not p.refused)
        conn.execute(sa.text("UPDATE instagram.media SET comments_count = comments_count + 1 WHERE media_id = :m"),
                     {"m": moved})
        after = _posts(conn, account, since)
    assert len(newest) > 1 and all(p.newest_top is None for p in posts)
    assert {p.media_id: p.newest_top for p in after if p.newest_top is not None} == {moved: newest[moved]}
