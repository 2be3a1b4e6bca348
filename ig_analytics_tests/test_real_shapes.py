"""Real Graph API reply shapes (``real_shapes/``: recorded replies of public projects' test suites, and the shapes of
graph-api-facts.md section 9), each served over HTTP to the real client: what it stores, skips or reports.

Every file names its source in ``source``; ``status``, ``headers`` and ``body`` are what the stub serves."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ig_analytics.accounts.discovery import discover_accounts
from ig_analytics.accounts.token_vault import TokenVault
from ig_analytics.graph_api import InvalidRequestError
from ig_analytics.graph_api.demographics import fetch_demographics, fetch_online_followers
from ig_analytics.graph_api.follows import fetch_follow_types, reported_days
from ig_analytics.graph_api.models import AccountDay
from ig_analytics.graph_api.tokens import TokenApi
from ig_analytics.settings import Settings
from ig_analytics_tests.test_graph_api_errors import NOW, TOKEN, Reply, Req, make_client, stub  # noqa: F401

SHAPES = Path(__file__).parent / "real_shapes"
USER = "17841406338772941"  # the account of python-facebook's recorded media pages
IG_TOKEN = "IGQVJtestTOKEN0123456789"  # an Instagram-Login token: graph.instagram.com, one GET per call


def shape(name: str) -> dict[str, Any]:
    doc = json.loads((SHAPES / name).read_text())
    assert doc["source"] and {"status", "headers", "body"} <= set(doc)
    return doc


def served(name: str) -> Reply:
    doc = shape(name)
    return Reply(doc["status"], doc["body"], dict(doc["headers"]))


def test_every_shape_names_its_source_and_has_a_test():
    names = sorted(p.name for p in SHAPES.glob("*.json"))
    assert len(names) >= 10
    text = Path(__file__).read_text()
    for name in names:
        assert shape(name)["source"].startswith(("graph-api-facts.md", "airbytehq/", "sns-sdks/", "restfb/"))
        assert f'"{name}"' in text, f"{name} is served by no test"


# ---------------------------------------------------------------------------------------------- paging
def test_next_on_another_host_and_version_is_followed_on_ours_with_the_token_in_the_header(stub, caplog):
    pages = [served("media_next_on_another_host_and_version.json"), served("media_last_page_without_next.json")]
    stub.handler = lambda req: pages.pop(0)
    client, _ = make_client(stub)
    with caplog.at_level(logging.DEBUG, logger="ig_analytics.graph_api"):
        media = client.account(USER, TOKEN).list_media(datetime(2021, 1, 1, tzinfo=timezone.utc),
                                                       include_stories=False)
    assert [m.media_id for m in media] == ["17895731045244887", "17896622936197745", "17896129349106152",
                                           "17893085207160254"]
    second = stub.requests[1]
    assert second.path == f"/v25.0/{USER}/media"  # our host and version, not graph.facebook.com/v6.0
    assert second.query["after"] == "after" and "access_token" not in second.query and "pretty" not in second.query
    assert second.headers["authorization"] == f"Bearer {TOKEN}"
    assert "access_token" not in caplog.text and "graph.facebook.com" not in caplog.text
    assert len(stub.requests) == 2  # the last page has no next: the end


def test_me_accounts_page_without_name_or_token_says_the_user_token_is_used_and_when_it_expires(
        stub, engine, ig_home):
    expires = int((NOW + timedelta(days=50)).timestamp())
    debug = {"data": {"is_valid": True, "app_id": 1000000000000001, "user_id": 10000000000000001,  # numbers
                      "type": "USER", "expires_at": expires, "scopes": ["pages_show_list", "instagram_basic",
                                                                        "instagram_manage_insights",
                                                                        "pages_read_engagement"]}}
    stub.handler = lambda req: (Reply(200, debug) if req.path.endswith("/debug_token")
                                else served("me_accounts_page_without_name_or_token.json"))
    api = TokenApi(stub.base_url, "v25.0", app_id="1000000000000001", app_secret="s3cret-app-secret")
    vault = TokenVault.from_settings(Settings.from_env({"IG_ANALYTICS_HOME": str(ig_home)}))
    result = discover_accounts(engine, vault, api, TOKEN, now=NOW)
    lines = result.lines(dry_run=False)
    assert lines[0] == "ADDED 17841462785487205 (@?) via Page 118981261308043 (its name was not granted)"
    warning = next(line for line in lines if line.startswith("WARNING"))
    assert "gave no Page token" in warning and "uses your user token" in warning
    assert f"expires on {datetime.fromtimestamp(expires, timezone.utc):%Y-%m-%d}" in warning
    assert "None" not in "\n".join(lines)
    assert sum(1 for r in stub.requests if r.path.endswith("/me/accounts")) == 1  # only cursors.before: the end
    with engine.connect() as conn:
        page = conn.execute(sa.text("SELECT facebook_page_id FROM instagram.accounts")).scalar_one()
    assert page == "118981261308043"


# ------------------------------------------------------------------------------------ Instagram host
def test_instagram_host_usage_header_paces_the_account(stub):
    stub.handler = lambda req: served("instagram_host_usage_header.json")
    client, clock = make_client(stub)
    api = client.account(USER, IG_TOKEN, "instagram")
    api.profile()
    api.profile()
    assert max(clock.sleeps, default=0) >= 1.0  # 95 % of the app's calls: the next call waits (it read 0 % before)


def test_instagram_host_error_2500_is_a_bug_not_a_retry(stub):
    stub.handler = lambda req: served("instagram_host_error_2500.json")
    client, clock = make_client(stub)
    with pytest.raises(InvalidRequestError, match="Unknown path components"):
        client.account(USER, IG_TOKEN, "instagram").profile()
    assert len(stub.requests) == 1 and clock.sleeps == []


# ------------------------------------------------------------------------------------ account insights
def _insights_handler(refused_before: date):
    """follower_count is refused (the real 400) in the window that starts before ``refused_before``."""
    def handler(req: Req) -> Reply:
        metrics = req.query["metric"].split(",")
        since = datetime.fromtimestamp(int(req.query["since"]), timezone.utc).date()
        until = datetime.fromtimestamp(int(req.query["until"]), timezone.utc).date()
        if "follower_count" in metrics and since < refused_before:
            return served("follower_count_outside_window.json")
        days = [since + timedelta(days=i) for i in range((until - since).days)]
        if req.query.get("metric_type") == "total_value":
            return Reply(200, {"data": [{"name": m, "period": "day", "total_value": {"value": 5}} for m in metrics]})
        return Reply(200, {"data": [{"name": m, "period": "day", "values": [
            {"value": 7, "end_time": f"{d + timedelta(days=1)}T08:00:00+0000"} for d in days]} for m in metrics]})
    return handler


def test_follower_count_refusal_concerns_its_window_only(stub):
    today = NOW.date()
    # 30 days: two windows (29 days, then the oldest day alone); the API disagrees about the oldest one
    stub.handler = _insights_handler(refused_before=today - timedelta(days=29))
    client, _ = make_client(stub)
    api = client.account(USER, IG_TOKEN, "instagram")  # plain GETs (no batch to unwrap)
    days = api.account_insights(today - timedelta(days=30), today - timedelta(days=1))
    by_day = {d.date: d.values for d in days}
    assert by_day[today - timedelta(days=1)]["follower_count"] == 7  # the other window keeps it
    assert by_day[today - timedelta(days=30)]["follower_count"] is None  # refused there ...
    assert by_day[today - timedelta(days=30)]["reach"] == 7  # ... and the window's other metrics are stored
    assert api.stats.dropped_metrics == []  # not dropped for the account
    asked = [r.query["metric"] for r in stub.requests if "follower_count" in r.query.get("metric", "")]
    stub.requests.clear()
    api.account_insights(today - timedelta(days=3), today - timedelta(days=1))
    assert any("follower_count" in r.query.get("metric", "") for r in stub.requests)  # asked again next time
    assert asked


def test_follows_split_is_measured_without_a_total(stub):
    stub.handler = lambda req: served("follows_and_unfollows_breakdowns_only.json")
    client, _ = make_client(stub)
    api = client.account(USER, IG_TOKEN, "instagram")
    day = NOW.date() - timedelta(days=2)
    # the day's follows_and_unfollows total did not come back; reach did: the day is reported
    days = [AccountDay(day, {"reach": 40, "follows_and_unfollows": None}),
            AccountDay(day + timedelta(days=1), {"reach": None, "follows_and_unfollows": None})]
    split = fetch_follow_types(api, reported_days(days))
    assert list(split) == [day] and (split[day].follows, split[day].unfollows) == (17, 20)


# ------------------------------------------------------------------------------------------ ids
def test_ids_as_numbers_are_text(stub):
    stub.handler = lambda req: served("ids_as_numbers.json")
    client, _ = make_client(stub)
    media = client.account(USER, TOKEN).list_media(datetime(2021, 1, 1, tzinfo=timezone.utc), include_stories=False)
    assert [m.media_id for m in media] == ["17895731045244887"]


def test_an_id_that_is_not_a_graph_id_never_becomes_a_path(stub):
    page = shape("ids_as_numbers.json")["body"]
    hostile = {**page["data"][0], "id": "../../me/accounts?fields=access_token&x="}
    stub.handler = lambda req: (Reply(200, {"data": [hostile, page["data"][0]]}) if req.path.endswith("/media")
                                else Reply(200, [{"code": 200, "body": json.dumps({"data": []})}]))
    client, _ = make_client(stub)
    api = client.account(USER, TOKEN)
    media = api.list_media(datetime(2021, 1, 1, tzinfo=timezone.utc), include_stories=False)
    assert [m.media_id for m in media] == ["17895731045244887"]
    api.media_insights(media)
    sent = " ".join(r.raw_url + json.dumps(r.form) for r in stub.requests)
    assert "me/accounts" not in sent and "../" not in sent
    (skipped,) = api.stats.skipped
    assert "not a Graph id" in skipped.reason and "\x1b" not in skipped.media_id


# ---------------------------------------------------------------------------------------- demographics
def test_empty_demographics_of_a_large_account_are_not_called_under_100(stub):
    profile = served("profile_of_a_large_account.json")
    stub.handler = lambda req: served("demographics_empty.json") if "insights" in req.raw_url or req.form else profile
    client, _ = make_client(stub, version="v24.0")
    api = client.account("17841407673135339", IG_TOKEN, "instagram")
    followers = api.profile().followers_count
    pictures = fetch_demographics(api, followers)
    assert pictures and all(p.status == "not_available" for p in pictures)
    assert all("under 100" not in p.reason and "64363 followers" in p.reason for p in pictures)
    online = fetch_online_followers(api, NOW, followers)
    assert online.status == "not_available" and "under 100" not in online.reason
    small = fetch_demographics(api, 60)
    assert all("under 100 followers (this one has 60)" in p.reason for p in small)
