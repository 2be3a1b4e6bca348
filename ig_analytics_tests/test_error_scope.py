"""Issue 22, errors by scope and a bounded give-up, end to end: `run_sync` (the CLI's in-process sync, real Dagster)
against the sandbox over HTTP and a real PostgreSQL.

- one post answering `(#10) Application does not have permission for this action` costs that post only: the
  account stays active, its other posts, account insights and audience are stored, the post is listed with its
  reason by `status`, and the sync exits 0;
- a caption holding a NUL (legal JSON, refused by PostgreSQL) is stored without it, and every account's
  engagement, trending and best times are computed that hour;
- `sync --account ID` against an API answering 500 to everything gives up after one call's retries, one line.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance

from ig_analytics.cli.status import render_status
from ig_analytics.cli.sync_command import run_sync
from ig_analytics.sandbox import Faults, SandboxServer, SandboxWorld
from ig_analytics_tests.ingestion_harness import register

pytestmark = pytest.mark.slow

# Other people's text: Latin with a combining mark, Devanagari, an emoji, a right-to-left override, and a NUL.
ODD_CAPTION = "Cafe\u0301 \U0001F642 \u0928\u092e\u0938\u094d\u0924\u0947 \u202eevil\u202c nul:\x00:end "
INSTAGRAM_CAPTION_LIMIT = 2200


@pytest.fixture()
def demo(engine, ig_home, monkeypatch):
    world = SandboxWorld.demo(now=datetime.now(timezone.utc))
    for name in ("DAGSTER_HOME", "IG_ANALYTICS_DAGSTER_PG_URL"):  # run_sync sets them: let monkeypatch undo it
        monkeypatch.setenv(name, "unset")
    monkeypatch.delenv("DAGSTER_HOME")
    with SandboxServer(world, port=0) as server:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        register(engine, world)
        yield world, server


def _recent_feed_post(world, account):
    since = world.clock.now() - timedelta(days=20)
    return next(m for m in account.history
                if m.published_at >= since and m.media_product_type == "FEED" and not m.pre_conversion)


def _scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def test_one_refused_post_and_one_nul_caption_cost_nothing_else(engine, demo):
    world, _server = demo
    refusing, odd = world.accounts[0], world.accounts[1]
    refused = _recent_feed_post(world, refusing)
    world.faults = Faults(refused_media_ids=(refused.media_id,))
    odd_post = _recent_feed_post(world, odd)
    odd_post.caption = ODD_CAPTION + "x" * (INSTAGRAM_CAPTION_LIMIT - len(ODD_CAPTION))
    ids = [a.ig_user_id for a in world.accounts]

    report = run_sync(ids, "full", None, None)

    assert report.exit_code == 0, [line.render() for line in report.lines] + report.run_errors
    assert _scalar(engine, "SELECT array_agg(DISTINCT status) FROM instagram.accounts") == ["active"]
    # the refused post: recorded with its code and the API's words, no snapshot; the account's other data stored
    row = _scalar(engine, "SELECT row(insights_refused_code, insights_refused_reason)::text FROM instagram.media"
                          " WHERE media_id = :id", id=refused.media_id)
    assert row.startswith("(10,") and "does not have permission" in row
    assert _scalar(engine, "SELECT count(*) FROM instagram.media_insights_snapshots WHERE media_id = :id",
                   id=refused.media_id) == 0
    for table in ("media_insights_snapshots", "account_insights_daily", "audience_demographics"):
        assert _scalar(engine, f"SELECT count(*) FROM instagram.{table} WHERE ig_user_id = :id",
                       id=refusing.ig_user_id) > 0, table
    status = render_status(engine)
    assert f"post refused:     {refused.media_id} (code 10" in status and "does not have permission" in status
    # the NUL caption: stored without the NUL, every other character kept, the full 2,200 characters otherwise
    stored = _scalar(engine, "SELECT caption FROM instagram.media WHERE media_id = :id", id=odd_post.media_id)
    assert stored == odd_post.caption.replace("\x00", "") and len(stored) == INSTAGRAM_CAPTION_LIMIT - 1
    # every account's analytics of that hour: rows for each account, and the media run's analytics and their
    # checks all executed (a failed ingestion step used to leave them "not executed")
    for table in ("media_engagement", "best_posting_times", "account_engagement_daily"):
        with engine.connect() as conn:
            per_account = set(conn.execute(sa.text(f"SELECT DISTINCT ig_user_id FROM instagram.{table}")).scalars())
        assert per_account == set(ids), table
    events = [e.dagster_event for e in DagsterInstance.get().all_logs(report.run_ids[0]) if e.dagster_event]
    materialized = {e.asset_key.path[-1] for e in events if e.is_step_materialization}
    assert {"media_engagement", "trending_posts", "best_posting_times", "account_engagement_daily"} <= materialized
    checked = {e.event_specific_data.asset_key.path[-1] for e in events
               if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert {"trending_posts", "media_engagement"} <= checked


def test_sync_of_one_account_gives_up_on_a_dead_api_after_one_call_and_says_so_in_one_line(engine, demo):
    world, server = demo
    world.faults = Faults(transient_error_rate=1.0)  # every request: HTTP 500 code 2 or HTTP 503
    account = world.accounts[0].ig_user_id
    server.reset_log()

    report = run_sync([account], "full", None, None)

    assert report.exit_code == 1 and not report.run_errors  # no run fails: the account's failure is reported
    [line] = report.lines
    text = line.render()
    assert text.startswith("FAIL") and "\n" not in text
    assert "server errors" in text and "next run tries again" in text.lower()
    # the client's 5 attempts of the first call, then nothing: no step retry, and the account insights and
    # audience runs of the same sync do not call the dead API again (a run of one account opens the breaker)
    requests = [r for r in server.request_log if not r.batch_item]
    assert len(requests) == 5, [(r.method, r.path, r.status) for r in requests]
    with engine.connect() as conn:
        outcomes = conn.execute(sa.text("SELECT sync_type, status, api_calls FROM instagram.sync_runs"
                                        " ORDER BY sync_type")).all()
    assert {o.status for o in outcomes} == {"failed"}
    assert sorted(o.api_calls for o in outcomes) == [0] * (len(outcomes) - 1) + [5]
