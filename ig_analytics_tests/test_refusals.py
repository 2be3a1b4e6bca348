"""What the API refuses comes back (issue 22 errors by scope, issue 28 row 4): the media assets against the sandbox
over HTTP and a real PostgreSQL, the sandbox clock moved by hours and days.

- a post refused with code 10 is not asked again the next hour, is asked again the next day, and forgets the
  refusal once served; a refusal of every post alike is the token's: the account is marked;
- a metric a post refused is asked again a day later, and a refusal never blanks a measured rate.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from ig_analytics.sandbox import AccountSpec, Faults, SandboxServer, SandboxWorld
from ig_analytics_tests.ingestion_harness import SANDBOX_NOW, hour_key, materialize_media, register


@pytest.fixture()
def shop(engine, ig_home, monkeypatch):
    world = SandboxWorld([AccountSpec("17841400000000001", "photo_shop", followers=4000, posts=12,
                                      posts_per_day=2.0)], seed=7, now=SANDBOX_NOW)
    with SandboxServer(world, port=0) as server:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        register(engine, world)
        yield world, server


def _capture(world, server, after: timedelta, results: list | None = None, **config):
    """Move the sandbox clock to SANDBOX_NOW + after, capture that hour; the insights calls it made, by post."""
    world.clock.advance(SANDBOX_NOW + after - world.clock.now())
    server.reset_log()
    config.setdefault("refresh_all", True)
    result = materialize_media(hour_key(SANDBOX_NOW + after), **config)
    assert result.success
    if results is not None:
        results.append(result)
    return {r.path.split("/")[1]: r.params.get("metric", "") for r in server.request_log
            if r.path.endswith("/insights")}


def _image(world):
    return next(m for m in world.accounts[0].history
                if m.media_type == "IMAGE" and m.media_product_type == "FEED" and not m.rejects
                and m.published_at >= SANDBOX_NOW - timedelta(days=20))


def _row(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).one()


def test_a_refused_post_is_asked_again_a_day_later_not_every_hour(engine, shop):
    world, server = shop
    post = _image(world)
    world.faults = Faults(refused_media_ids=(post.media_id,))
    results: list = []
    assert post.media_id in _capture(world, server, timedelta(0), results)
    metadata = results[0].asset_materializations_for_node("media_and_snapshots")[0].metadata
    [refused] = metadata["items_refused"].value["17841400000000001"]
    assert (refused["media_id"], refused["code"]) == (post.media_id, 10) and "permission" in refused["reason"]
    assert _row(engine, "SELECT insights_refused_code FROM instagram.media WHERE media_id = :id",
                id=post.media_id) == (10,)
    assert _row(engine, "SELECT status FROM instagram.accounts") == ("active",)
    world.faults = Faults()  # Meta serves it again
    assert post.media_id not in _capture(world, server, timedelta(hours=1))  # not asked every hour
    assert post.media_id in _capture(world, server, timedelta(days=1))
    refused, snapshots = _row(engine, "SELECT insights_refused_code, (SELECT count(*) FROM"
                                      " instagram.media_insights_snapshots s WHERE s.media_id = m.media_id)"
                                      " FROM instagram.media m WHERE media_id = :id", id=post.media_id)
    assert refused is None and snapshots == 1


def test_a_permission_refused_on_every_post_marks_the_account(engine, shop):
    world, server = shop
    account = world.accounts[0]
    today = SANDBOX_NOW.date()
    stories = [m for d in (today - timedelta(days=1), today, today + timedelta(days=1)) for m in account.on_date(1, d)]
    world.faults = Faults(refused_media_ids=tuple(m.media_id for m in account.history + stories))
    result = materialize_media(hour_key(SANDBOX_NOW), refresh_all=True)
    assert result.get_asset_check_evaluations()[0].passed is False
    status, reason = _row(engine, "SELECT status, status_reason FROM instagram.accounts")
    assert status == "needs_reauth" and "instagram_manage_insights" in reason


def test_a_refused_metric_is_asked_again_next_day_and_never_blanks_a_rate(engine, shop):
    world, server = shop
    post = _image(world)

    def share_rate():
        return _row(engine, "SELECT share_rate FROM instagram.media_engagement WHERE media_id = :id",
                    id=post.media_id)[0]

    assert "shares" in _capture(world, server, timedelta(0), with_analytics=True)[post.media_id]
    measured = share_rate()
    assert measured is not None
    post.rejects = frozenset({"shares"})  # refused at the next capture (Meta does this for a while)
    _capture(world, server, timedelta(hours=1), with_analytics=True)
    assert _row(engine, "SELECT rejected_metrics FROM instagram.media WHERE media_id = :id",
                id=post.media_id) == (["shares"],)
    assert share_rate() is not None  # the newest measured shares, not NULL
    post.rejects = frozenset()  # served again
    assert "shares" not in _capture(world, server, timedelta(hours=2), with_analytics=True)[post.media_id]
    assert share_rate() is not None
    asked = _capture(world, server, timedelta(days=1, hours=1), with_analytics=True)[post.media_id]
    assert "shares" in asked.split(",")  # a day later: asked again
    rejected, shares = _row(engine, "SELECT m.rejected_metrics, s.shares FROM instagram.media m JOIN"
                                    " instagram.media_insights_latest s USING (media_id) WHERE media_id = :id",
                            id=post.media_id)
    assert rejected is None and shares is not None
    assert share_rate() is not None


def test_an_api_message_holding_a_nul_is_stored_without_it(engine, shop):
    """PostgreSQL refuses NUL in text and in jsonb: an error or a skip reason quoting the API's words must not
    make the outcome of the account unrecordable."""
    from ig_analytics.ingestion import outcome as outcomes
    from ig_analytics.ingestion.stored_text import storable

    outcome = outcomes.AccountOutcome("17841400000000001", "media", "2026-11-20-12:00", started_at=SANDBOX_NOW)
    outcome.fail(ValueError("caf\u00e9 \U0001F642 \x00 end"))
    outcome.details["skipped"] = [{"media_id": "1", "reason": storable("refused: \x00 (#10)")}]
    outcomes.record(engine, "run-1", outcome)
    error, reason = _row(engine, "SELECT error, details->'skipped'->0->>'reason' FROM instagram.sync_runs")
    assert error == "caf\u00e9 \U0001F642  end" and reason == "refused:  (#10)"
