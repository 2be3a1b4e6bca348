"""The sandbox's token endpoints over real HTTP (debug_token, refresh_access_token, /me/accounts, scopes) and the
client side of them (graph_api/tokens.py): values checked against the sandbox registry, not against our client."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from ig_analytics.graph_api.errors import InvalidRequestError, PermissionDeniedError, TokenInvalidError
from ig_analytics.graph_api.tokens import (
    FACEBOOK_HOST,
    INSTAGRAM_HOST,
    TokenApi,
    base_url_for,
    detect_login_kind,
    missing_scopes,
)
from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics.sandbox.tokens import APP_ID, registry

NOW = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
SECRET = "sandbox-app-secret"
SMALL, MID, BIG = "17841400000000001", "17841400000000002", "17841400000000003"


@pytest.fixture()
def sandbox():
    world = SandboxWorld.demo(now=NOW, app_secret=SECRET)
    server = SandboxServer(world).start()
    try:
        yield world, server
    finally:
        server.stop()


def _get(server, path, **params):
    return requests.get(f"{server.base_url}{path}", params=params, timeout=5).json()


def test_debug_token_reports_expiry_scopes_and_type(sandbox):
    world, server = sandbox
    token = registry(world).issue_instagram_login(BIG, age=timedelta(days=10))
    app = f"{APP_ID}|{SECRET}"
    data = _get(server, "/v25.0/debug_token", input_token=token, access_token=app)["data"]
    assert data["is_valid"] is True and data["type"] == "USER"
    assert data["issued_at"] == int((NOW - timedelta(days=10)).timestamp())
    assert data["expires_at"] == int((NOW + timedelta(days=50)).timestamp())
    assert data["data_access_expires_at"] > data["issued_at"]
    assert data["scopes"] == ["instagram_business_basic", "instagram_business_manage_insights"]
    assert {g["scope"] for g in data["granular_scopes"]} == set(data["scopes"])
    # a built-in account token: a long-lived user token issued the day before the world's reference time
    user = _get(server, "/v25.0/debug_token", input_token=world.account(MID).token, access_token=app)["data"]
    assert user["type"] == "USER" and user["expires_at"] == int((NOW + timedelta(days=59)).timestamp())
    assert "instagram_manage_insights" in user["scopes"]
    page = registry(world).issue("page", ig_user_id=MID, lifetime=None)
    assert _get(server, "/v25.0/debug_token", input_token=page, access_token=app)["data"]["expires_at"] == 0
    assert _get(server, "/v25.0/debug_token", input_token="nope", access_token=app)["data"]["is_valid"] is False
    wrong = _get(server, "/v25.0/debug_token", input_token=token, access_token=f"{APP_ID}|wrong")
    assert wrong["error"]["code"] == 100


def test_refresh_needs_24_hours_keeps_the_old_token_and_refuses_expired_ones(sandbox):
    world, server = sandbox
    reg = registry(world)
    young = reg.issue_instagram_login(SMALL, age=timedelta(hours=23))
    too_young = _get(server, "/refresh_access_token", grant_type="ig_refresh_token", access_token=young)
    assert too_young["error"]["code"] == 100 and "24" in too_young["error"]["message"]
    old = reg.issue_instagram_login(SMALL, age=timedelta(days=59))
    reply = _get(server, "/refresh_access_token", grant_type="ig_refresh_token", access_token=old)
    assert set(reply) == {"access_token", "token_type", "expires_in"} and reply["expires_in"] == 60 * 86400
    new = reply["access_token"]
    assert new != old and new.startswith("IG") and reg.lookup(new).expires_at == NOW + timedelta(days=60)
    for token in (old, new):  # the old one keeps working until it expires
        assert _get(server, "/v25.0/me", access_token=token, fields="username")["username"] == "corner_bakery"
    world.clock.advance(timedelta(days=1, seconds=1))
    assert _get(server, "/v25.0/me", access_token=old, fields="username")["error"]["code"] == 190
    assert _get(server, "/refresh_access_token", grant_type="ig_refresh_token", access_token=old)["error"]["code"] == 190
    assert _get(server, "/v25.0/me", access_token=new, fields="username")["username"] == "corner_bakery"
    wrong_grant = _get(server, "/refresh_access_token", grant_type="fb_exchange_token", access_token=new)
    assert wrong_grant["error"]["code"] == 100


def test_me_accounts_pages_with_cursors_and_pages_without_instagram(sandbox):
    world, server = sandbox
    user = registry(world).add_facebook_user([("Bakery", SMALL), ("Blog", None), ("Gym", MID)])
    fields = "id,name,access_token,instagram_business_account{id,username}"
    seen, params = [], {"access_token": user, "fields": fields, "limit": 1}
    while True:
        page = _get(server, "/v25.0/me/accounts", **params)
        seen += page["data"]
        if "next" not in page.get("paging", {}):
            break
        params["after"] = page["paging"]["cursors"]["after"]
    assert [p["name"] for p in seen] == ["Bakery", "Blog", "Gym"]
    assert "instagram_business_account" not in seen[1]
    assert seen[2]["instagram_business_account"] == {"id": MID, "username": "nyc_fitness_lab"}
    # a Page token works for its linked account only
    assert _get(server, f"/v25.0/{MID}", access_token=seen[2]["access_token"], fields="id")["id"] == MID
    assert "error" in _get(server, f"/v25.0/{SMALL}", access_token=seen[2]["access_token"], fields="id")


def test_a_token_without_instagram_manage_insights_cannot_read_insights(sandbox):
    world, server = sandbox
    token = registry(world).issue("page", ig_user_id=MID, lifetime=None, scopes=["instagram_basic"])
    assert _get(server, f"/v25.0/{MID}", access_token=token, fields="username")["username"] == "nyc_fitness_lab"
    error = _get(server, f"/v25.0/{MID}/insights", access_token=token, metric="reach", period="day")["error"]
    assert error["code"] == 10 and "instagram_manage_insights" in error["message"]


def test_token_api_client_against_the_sandbox(sandbox):
    world, server = sandbox
    reg = registry(world)
    pages = [(f"Page {i}", None) for i in range(130)] + [("Bakery", SMALL), ("Shop", BIG)]
    user = reg.add_facebook_user(pages)
    api = TokenApi(server.base_url, app_id=APP_ID, app_secret=SECRET, backoff_s=0)
    found = api.list_pages(user)  # 132 Pages: two result pages of 100
    assert len(found) == 132 and server.calls(path_contains="me/accounts") == 2
    linked = {p.ig_user_id: p for p in found if p.ig_user_id}
    assert set(linked) == {SMALL, BIG} and linked[BIG].username == "tokyo_streetwear"
    assert reg.lookup(linked[BIG].token).ig_user_id == BIG and user not in repr(found)
    info = api.debug_token(linked[BIG].token)
    assert info.is_valid and info.expires_at is None and missing_scopes("facebook", info.scopes) == []
    old = reg.issue_instagram_login(BIG, age=timedelta(days=30))
    refreshed = api.refresh_instagram_token(old, NOW)
    assert reg.lookup(refreshed.token).ig_user_id == BIG and refreshed.expires_at == NOW + timedelta(days=60)
    assert refreshed.token not in repr(refreshed)
    with pytest.raises(InvalidRequestError, match="24 hours"):
        api.refresh_instagram_token(refreshed.token, NOW)
    with pytest.raises(TokenInvalidError):
        api.list_pages("EAAnot-a-real-token-at-all-0000000000")
    no_pages = reg.add_facebook_user([("Bakery", SMALL)], scopes=["instagram_basic"])
    with pytest.raises(PermissionDeniedError):
        api.list_pages(no_pages)


def test_login_kind_detection_hosts_and_missing_scopes():
    assert detect_login_kind("IGAAabc") == "instagram" and detect_login_kind("EAAabc") == "facebook"
    assert base_url_for("instagram", FACEBOOK_HOST) == INSTAGRAM_HOST
    assert base_url_for("facebook", FACEBOOK_HOST) == FACEBOOK_HOST
    assert base_url_for("instagram", "http://127.0.0.1:9/") == "http://127.0.0.1:9"  # IG_GRAPH_API_URL wins
    assert missing_scopes("facebook", ["instagram_basic", "pages_read_engagement"]) == ["instagram_manage_insights"]
    assert missing_scopes("instagram", ["instagram_basic", "instagram_manage_insights"]) == []
    assert missing_scopes("instagram", ["instagram_business_basic"]) == ["instagram_business_manage_insights"]


def test_each_account_is_called_on_the_host_of_its_login_kind(sandbox):
    from ig_analytics.graph_api import GraphApiClient

    world, server = sandbox
    meta = GraphApiClient(base_url=FACEBOOK_HOST, version="v25.0")
    assert meta.api_root("facebook") == f"{FACEBOOK_HOST}/v25.0"  # what each account handle calls
    assert meta.api_root("instagram") == f"{INSTAGRAM_HOST}/v25.0"
    # IG_GRAPH_API_URL (here: the sandbox) serves both kinds: an Instagram-Login account syncs through it
    local = GraphApiClient(base_url=server.base_url, version="v25.0")
    token = registry(world).issue_instagram_login(MID, age=timedelta(days=3))
    profile = local.account(MID, token, "instagram").profile()
    assert profile.username == "nyc_fitness_lab" and registry(world).uses(token) == 1


def test_control_api_issues_tokens_for_out_of_process_use(sandbox):
    world, server = sandbox
    url = f"{server.base_url}/__sandbox/tokens"
    ig = requests.post(url, json={"kind": "instagram_login", "ig_user_id": SMALL, "age_seconds": 86400 * 59},
                       timeout=5).json()["token"]
    assert registry(world).lookup(ig).issued_at == NOW - timedelta(days=59)
    user = requests.post(url, json={"kind": "facebook_user", "pages": [{"name": "Gym", "ig_user_id": MID}]},
                         timeout=5).json()["token"]
    pages = _get(server, "/v25.0/me/accounts", access_token=user, fields="id,instagram_business_account")["data"]
    assert [p["instagram_business_account"]["id"] for p in pages] == [MID]
    default = requests.get(url, timeout=5).json()["token"]
    linked = _get(server, "/v25.0/me/accounts", access_token=default, fields="name,instagram_business_account")
    assert len(linked["data"]) == len(world.accounts) + 1  # every account, plus a Page without one
    assert requests.post(url, json={"kind": "nope"}, timeout=5).status_code == 400


def test_me_accounts_serves_pages_without_name_or_token_and_ids_as_numbers(sandbox):
    """Real shapes (graph-api-facts.md, section 9): a Page without the fields not granted, the last page with only
    ``cursors.before``, and debug_token's ids as JSON numbers; the client keeps ids as text."""
    world, server = sandbox
    user = registry(world).add_facebook_user([(None, MID)])
    page = _get(server, "/v25.0/me/accounts", access_token=user,
                fields="id,name,access_token,instagram_business_account{id,username}")
    (item,) = page["data"]
    assert "name" not in item and "access_token" not in item and item["instagram_business_account"]["id"] == MID
    assert page["paging"] == {"cursors": {"before": page["paging"]["cursors"]["before"]}}
    debug = _get(server, "/v25.0/debug_token", input_token=user, access_token=f"{APP_ID}|{SECRET}")
    assert isinstance(debug["data"]["app_id"], int) and isinstance(debug["data"]["user_id"], int)
    (found,) = TokenApi(server.base_url, "v25.0").list_pages(user)
    assert (found.name, found.token, found.ig_user_id) == (None, None, MID)
