"""Instagram-Login accounts (graph.instagram.com) get no batch requests: Meta documents `POST /` with `batch=` for
graph.facebook.com only, so the sandbox refuses it for Instagram-Login tokens and the client sends plain GETs.
The values must be the same as the Facebook-Login (batched) path gives. Real HTTP against the sandbox."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
import requests

from ig_analytics.graph_api import GraphApiClient
from ig_analytics.sandbox import AccountSpec, SandboxServer, SandboxWorld
from ig_analytics.sandbox.tokens import registry

ACCOUNT = "17841400000000002"


@pytest.fixture()
def sandbox():
    world = SandboxWorld([AccountSpec(ACCOUNT, "gym", followers=24_300, posts=30)], seed=7,
                         now=datetime(2026, 9, 20, 12, tzinfo=timezone.utc))
    server = SandboxServer(world).start()
    try:
        yield world, server
    finally:
        server.stop()


def test_the_sandbox_refuses_a_batch_on_an_instagram_login_token(sandbox):
    world, server = sandbox
    token = registry(world).issue_instagram_login(ACCOUNT, age=timedelta(days=2))
    batch = json.dumps([{"method": "GET", "relative_url": f"{ACCOUNT}?fields=id"}])
    refused = requests.post(f"{server.base_url}/v25.0/", data={"batch": batch, "access_token": token}, timeout=30)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == 100
    accepted = requests.post(f"{server.base_url}/v25.0/", timeout=30,
                             data={"batch": batch, "access_token": world.accounts[0].token})
    assert accepted.status_code == 200 and json.loads(accepted.json()[0]["body"])["id"] == ACCOUNT


def test_instagram_login_insights_are_plain_gets_with_the_same_values(sandbox):
    world, server = sandbox
    acct = world.accounts[0]
    token = registry(world).issue_instagram_login(ACCOUNT, age=timedelta(days=2))
    client = GraphApiClient(base_url=server.base_url, version="v25.0", backoff_base_s=0.01)
    since, until = date(2026, 9, 1), date(2026, 9, 18)
    facebook = client.account(ACCOUNT, acct.token, "facebook")
    fb_days = facebook.account_insights(since, until)
    media = facebook.list_media(datetime(2026, 8, 1, tzinfo=timezone.utc))
    fb_media = facebook.media_insights(media)
    assert any(r.batch_item for r in server.request_log)  # the Facebook path batches

    server.reset_log()
    instagram = client.account(ACCOUNT, token, "instagram")
    ig_days = instagram.account_insights(since, until)
    ig_media = instagram.media_insights(media)
    log = list(server.request_log)
    assert log and not any(r.batch_item or r.method == "POST" for r in log)
    assert {r.path.rsplit("/", 1)[-1] for r in log} == {"insights"}
    # one GET per planned call: as many as the batch path had items
    assert instagram.stats.batch_items == 0 and instagram.stats.calls == len(log)
    assert [(d.date, d.values) for d in ig_days] == [(d.date, d.values) for d in fb_days]
    assert ig_media == fb_media and len(ig_media) == len(media) > 0
    assert any(v is not None for d in ig_days for v in d.values.values())


def test_the_instagram_host_speaks_its_own_usage_header_and_error_type(sandbox):
    """graph.instagram.com's shapes (graph-api-facts.md, section 9): `X-App-Usage` as call_volume/cpu_time, errors
    of type IGApiException (a token error stays OAuthException); graph.facebook.com keeps its own."""
    world, server = sandbox
    server.usage.set_app_limit(5)  # 20 % per call: the figure is visible at once
    token = registry(world).issue_instagram_login(ACCOUNT, age=timedelta(days=2))
    headers = {"Authorization": f"Bearer {token}"}
    ok = requests.get(f"{server.base_url}/v25.0/{ACCOUNT}", params={"fields": "id"}, headers=headers, timeout=30)
    usage = json.loads(ok.headers["X-App-Usage"])
    assert set(usage) == {"call_volume", "cpu_time"} and usage["call_volume"] > 0
    bad = requests.get(f"{server.base_url}/v25.0/{ACCOUNT}/insights/impressions/day", headers=headers, timeout=30)
    error = bad.json()["error"]
    assert bad.status_code == 400 and error["type"] == "IGApiException" and error["code"] == 2500
    old_token = registry(world).issue_instagram_login(ACCOUNT, age=timedelta(days=61))  # expired
    expired = requests.get(f"{server.base_url}/v25.0/{ACCOUNT}", headers={"Authorization": f"Bearer {old_token}"},
                           timeout=30)
    assert expired.json()["error"]["code"] == 190 and expired.json()["error"]["type"] == "OAuthException"
    facebook = requests.get(f"{server.base_url}/v25.0/{ACCOUNT}", params={"fields": "id"}, timeout=30,
                            headers={"Authorization": f"Bearer {world.accounts[0].token}"})
    assert "call_count" in json.loads(facebook.headers["X-App-Usage"])
    # the client paces an Instagram-Login account on that header (it read 0 % before)
    client = GraphApiClient(base_url=server.base_url, version="v25.0", sleep=lambda s: None)
    api = client.account(ACCOUNT, token, "instagram")
    for _ in range(3):
        api.profile()
    assert api.stats.throttle_wait_s > 0
