"""Every paging loop ends (issue 28 rows 2 and 3): ``/media`` and ``/stories`` stop on a repeated cursor, on a page
of posts listed already and after a page cap; ``/me/accounts`` on a repeated cursor or page. Each stop is one
line, and the account's sync is ``partial``. A scripted stub over real HTTP plays the hostile API."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from ig_analytics.accounts.repository import AccountCredentials
from ig_analytics.graph_api import paging
from ig_analytics.graph_api.tokens import TokenApi
from ig_analytics.ingestion.runner import sync_accounts
from ig_analytics_tests.test_graph_api_errors import NOW, TOKEN, USER, Reply, Req, make_client, stub  # noqa: F401

SINCE = NOW - timedelta(days=30)


def _posts(first: int, n: int) -> list[dict]:
    return [{"id": f"1789{i:06d}", "media_type": "IMAGE", "timestamp": (NOW - timedelta(hours=i)).strftime(
        "%Y-%m-%dT%H:%M:%S+0000")} for i in range(first, first + n)]


def _next(cursor: str) -> dict:
    return {"cursors": {"after": cursor},
            "next": f"https://graph.facebook.com/v6.0/{USER}/media?access_token=x&pretty=0&limit=25&after={cursor}"}


def test_a_new_cursor_over_the_same_page_stops_the_media_list(stub):
    counter = iter(range(10_000))
    stub.handler = lambda req: Reply(200, {"data": _posts(0, 3), "paging": _next(f"c{next(counter)}")})
    client, _ = make_client(stub)
    api = client.account(USER, TOKEN)
    media = api.list_media(SINCE, include_stories=False)
    assert len(media) == 3 and len(stub.requests) == 2  # the second page repeats the first: the end
    (line,) = api.stats.incomplete
    assert line == "/media listing stopped early: a page of posts listed already (the cursor moved, the page did not)"


def test_a_repeated_cursor_stops_the_media_list(stub):
    pages = iter(range(10_000))
    stub.handler = lambda req: Reply(200, {"data": _posts(3 * next(pages), 3), "paging": _next("same")})
    client, _ = make_client(stub)
    api = client.account(USER, TOKEN)
    assert len(api.list_media(SINCE, include_stories=False)) == 6 and len(stub.requests) == 2
    assert api.stats.incomplete == ["/media listing stopped early: paging.next repeats a page already followed"]


def test_endless_empty_pages_stop_at_the_page_cap(stub, monkeypatch):
    monkeypatch.setattr(paging, "MAX_LIST_PAGES", 5)
    counter = iter(range(10_000))
    stub.handler = lambda req: Reply(200, {"data": [], "paging": _next(f"c{next(counter)}")})
    client, _ = make_client(stub)
    api = client.account(USER, TOKEN)
    assert api.list_media(SINCE, include_stories=False) == [] and len(stub.requests) == 5
    assert api.stats.incomplete == ["/media listing stopped early: 5 pages and still a next one"]


def test_me_accounts_with_a_repeating_cursor_ends_with_a_note(stub):
    page = {"data": [{"id": "118981261308043", "name": "Shop", "instagram_business_account": {"id": USER}}],
            "paging": {"cursors": {"before": "b", "after": "same"}, "next": "https://graph.facebook.com/v6.0/x"}}
    stub.handler = lambda req: Reply(200, page)
    notes: list[str] = []
    pages = TokenApi(stub.base_url, "v25.0").list_pages(TOKEN, notes)
    assert [p.page_id for p in pages] == ["118981261308043"] and len(stub.requests) == 2  # was 1,000 requests
    assert notes == ["/me/accounts repeated a page; stopped listing there (Pages after it may be missing)"]


def test_a_list_cut_short_makes_the_account_sync_partial_with_one_line(stub, engine):
    stub.handler = lambda req: Reply(200, {"data": _posts(0, 2), "paging": _next("same")})
    client, _ = make_client(stub)

    def work(api, creds, outcome):
        api.list_media(SINCE, include_stories=False)

    (result,) = sync_accounts(engine, client, [AccountCredentials(USER, "shop", "UTC", TOKEN)], sync_type="media",
                              partition_key="2026-11-28-12:00", run_id="run-paging", work=work)
    assert result.status == "partial"
    assert result.error == "/media listing stopped early: a page of posts listed already (the cursor moved, the " \
                           "page did not)"
    with engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM instagram.sync_runs WHERE dagster_run_id = 'run-paging'"))
        assert status.scalar_one() == "partial"
