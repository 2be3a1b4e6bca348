"""The recording (graph_api/recording.py) and the replay (sandbox/replay.py) at the client's level: real HTTP, the
sandbox, no database. The whole round trip through `sync` and Dagster is in test_record_replay.py."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import pytest
import requests

from ig_analytics.graph_api import GraphApiClient, InvalidRequestError
from ig_analytics.graph_api.recording import EXCHANGES_FILE, Recorder
from ig_analytics.sandbox import AccountSpec, Faults, SandboxServer, SandboxWorld
from ig_analytics.sandbox.replay import UNRECORDED_CODE, Recording, ReplayServer
from ig_analytics.sandbox.tokens import registry

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
ACCOUNT = "17841400000000001"
APP_SECRET = "recording-test-app-secret"


@pytest.fixture()
def world():
    return SandboxWorld([AccountSpec(ACCOUNT, "bakery", followers=900, timezone="UTC", posts=130,
                                     posts_per_day=2.0)], seed=5, now=NOW)


def _client(base_url: str, world, **kw) -> GraphApiClient:
    return GraphApiClient(base_url=base_url, app_secret=APP_SECRET, sleep=lambda s: None, now=world.clock.now,
                          media_page_limit=25, **kw)


def _sync_account(client: GraphApiClient, token: str, login: str = "facebook"):
    """What a sync asks: the profile, the posts of 60 days (several pages and batches), their insights, 40 days."""
    api = client.account(ACCOUNT, token, login)
    media = api.list_media(NOW - timedelta(days=60))
    return (api.profile(), media, api.media_insights(media),
            api.account_insights(date(2026, 10, 1), date(2026, 11, 9)))


@pytest.mark.parametrize("login", ["facebook", "instagram"])  # batches; plain GETs only (graph.instagram.com)
def test_a_recording_holds_every_reply_and_no_secret_and_replays_to_the_same_values(world, tmp_path, login):
    token = world.accounts[0].token
    if login == "instagram":
        token = registry(world).issue_instagram_login(ACCOUNT, age=timedelta(days=2))
    with SandboxServer(world, port=0) as server:
        recorder = Recorder(tmp_path, now=world.clock.now)
        recorded = _sync_account(_client(server.base_url, world, recorder=recorder), token, login)
        sent = sum(1 for r in server.request_log if not r.batch_item)
    lines = (tmp_path / EXCHANGES_FILE).read_text(encoding="utf-8").splitlines()
    text = "\n".join(lines)
    for secret in (token, APP_SECRET, "appsecret_proof", "access_token", "Bearer"):
        assert secret not in text, secret
    exchanges = [json.loads(line) for line in lines]
    assert [e["seq"] for e in exchanges] == list(range(1, len(exchanges) + 1))
    assert len(exchanges) == sent  # every HTTP request, batches once each
    assert all("x-app-usage" in e["headers"] for e in exchanges)
    assert {e["status"] for e in exchanges} == ({200} if login == "facebook" else {200, 400})  # a refused metric
    nexts = [e["body"]["paging"]["next"] for e in exchanges
             if isinstance(e.get("body"), dict) and "next" in e["body"].get("paging", {})]
    media_pages = [url for url in nexts if "/media?" in url]
    assert media_pages and all("after=" in url for url in media_pages)  # the cursors stay, the token went

    # The replay, as a test of a user's recording is written: a developer's client (another token, no app secret)
    # on the recording's clock gets the same values.
    recording = Recording.load(tmp_path)
    assert recording.recorded_at == NOW
    with ReplayServer(recording) as replay:
        replayed = _sync_account(GraphApiClient(base_url=replay.base_url, sleep=lambda s: None,
                                                now=lambda: recording.recorded_at, media_page_limit=25),
                                 "another-token", login)
    assert replay.unrecorded == []
    assert replayed == recorded


def test_a_media_sync_replays_on_a_later_day_its_batches_answered_item_by_item(world, tmp_path):
    """Posts and their insights name no date: three days later fewer posts are in the window, so the batches hold
    other posts than recorded, and each post's insights still come from the recording."""
    with SandboxServer(world, port=0) as server:
        api = _client(server.base_url, world, recorder=Recorder(tmp_path)).account(ACCOUNT, world.accounts[0].token)
        recorded = api.media_insights(api.list_media(NOW - timedelta(days=60)))
    later = NOW + timedelta(days=3)
    with ReplayServer(Recording.load(tmp_path)) as replay:
        api = GraphApiClient(base_url=replay.base_url, sleep=lambda s: None, now=lambda: later,
                             media_page_limit=25).account(ACCOUNT, "dev-token")
        media = api.list_media(later - timedelta(days=60))
        replayed = api.media_insights(media)
    assert replay.unrecorded == []
    assert 0 < len(replayed) < len(recorded)
    assert replayed == {media_id: recorded[media_id] for media_id in replayed}


def test_replies_of_one_request_come_in_their_order_then_the_last_again(world, tmp_path):
    """A 500 then the retry's 200: the replaying client meets the same failure and the same recovery."""
    token = world.accounts[0].token
    world.faults = Faults(transient_error_rate=0.5)
    with SandboxServer(world, port=0) as server:
        client = _client(server.base_url, world, recorder=Recorder(tmp_path), max_attempts=20)
        profile = client.account(ACCOUNT, token).profile()
    statuses = [json.loads(line)["status"] for line in (tmp_path / EXCHANGES_FILE).read_text().splitlines()]
    assert statuses[-1] == 200 and len(statuses) >= 2, statuses  # seed 5: the first answer is a 500
    recording = Recording.load(tmp_path)
    replies = [recording.reply("GET", f"/v25.0/{ACCOUNT}", {"fields": "id,username,followers_count,follows_count,"
                                                                        "media_count"}) for _ in statuses]
    assert [r.status for r in replies] == statuses
    with ReplayServer(Recording.load(tmp_path)) as replay:
        again = GraphApiClient(base_url=replay.base_url, sleep=lambda s: None, max_attempts=20)
        assert again.account(ACCOUNT, "t0ken-of-dev").profile() == profile
        assert again.account(ACCOUNT, "t0ken-of-dev").profile() == profile  # the last reply, once more


def _exchange(method: str, url: str, status: int, body, **more) -> dict:
    return {"method": method, "url": url, "query": [], "status": status, "headers": {}, "body": body, **more}


def _write(tmp_path, exchanges: list[dict]) -> Recording:
    (tmp_path / EXCHANGES_FILE).write_text("".join(json.dumps(e) + "\n" for e in exchanges))
    return Recording.load(tmp_path)


def test_an_unrecorded_request_answers_a_graph_error_naming_it(tmp_path):
    recording = _write(tmp_path, [_exchange("GET", "https://graph.facebook.com/v25.0/1", 200, {"id": "1"})])
    with ReplayServer(recording) as replay:
        reply = requests.get(f"{replay.base_url}/v25.0/2/insights?metric=reach&appsecret_proof=x")
        client = GraphApiClient(base_url=replay.base_url, max_attempts=1)
        with pytest.raises(InvalidRequestError) as raised:
            client.account("2", "some-token").profile()
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == UNRECORDED_CODE
    assert "GET /v25.0/2/insights?metric=reach" in error["message"] and "appsecret_proof" not in error["message"]
    assert str(tmp_path) in error["message"]
    assert "GET /v25.0/2?fields=" in str(raised.value)
    assert replay.unrecorded[0] == "GET /v25.0/2/insights?metric=reach" and len(replay.unrecorded) == 2


def test_a_batch_is_matched_whole_else_item_by_item_and_windows_by_the_nearest_time(tmp_path):
    items = [{"method": "GET", "relative_url": "1/insights?metric=views,reach&period=day"},
             {"method": "GET", "relative_url": "2/insights?period=day&metric=reach"}]
    entries = [{"code": 200, "body": '{"data":[1]}'}, {"code": 200, "body": '{"data":[2]}'}]
    day = 86400
    recording = _write(tmp_path, [
        _exchange("POST", "https://graph.facebook.com/v25.0/", 200, entries, batch=items,
                  form={"include_headers": "false"}, headers={"x-app-usage": '{"call_count":7}'}),
        _exchange("GET", "https://graph.facebook.com/v25.0/1/insights", 200, {"data": ["older"]},
                  query=[["metric", "online_followers"], ["since", str(10 * day)], ["until", str(20 * day)]]),
        _exchange("GET", "https://graph.facebook.com/v25.0/1/insights", 200, {"data": ["newer"]},
                  query=[["metric", "online_followers"], ["since", str(30 * day)], ["until", str(40 * day)]]),
    ])
    form = {"include_headers": "false", "access_token": "dev-token"}
    whole = recording.reply("POST", "/v25.0/", {**form, "batch": json.dumps(
        [{"method": "GET", "relative_url": "1/insights?period=day&metric=reach,views"}, items[1]])})
    assert json.loads(whole.body) == entries
    alone = recording.reply("POST", "/v25.0", {**form, "batch": json.dumps(
        [{"method": "GET", "relative_url": "2/insights?metric=reach&period=day&access_token=x"},
         {"method": "GET", "relative_url": "3/insights?metric=reach&period=day"}])})
    first, missing = json.loads(alone.body)
    assert first == entries[1] and alone.headers == {"x-app-usage": '{"call_count":7}'}
    assert missing["code"] == 400 and "GET /3/insights?metric=reach&period=day" in missing["body"]
    nearest = recording.reply("GET", "/v25.0/1/insights", {"metric": "online_followers", "since": str(31 * day),
                                                           "until": str(41 * day)})
    assert json.loads(nearest.body) == {"data": ["newer"]}


def test_command_line_mistakes_with_a_recording_are_one_line_and_exit_2(tmp_path, ig_home):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / EXCHANGES_FILE).write_text("")
    env = {"IG_ANALYTICS_HOME": str(ig_home), "PATH": "/usr/bin:/bin"}
    for args, says in ((["sandbox", "--port", "0", "--replay", str(tmp_path / "nothing")], "no recording at"),
                       (["sync", "--record", str(tmp_path / "used")], "already holds a recording")):
        result = subprocess.run([sys.executable, "-m", "ig_analytics.cli.main", *args], env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and says in lines[0], result.stderr


def test_text_from_meta_is_kept_to_the_character_only_urls_lose_their_secrets():
    from ig_analytics.graph_api.recording import scrub

    caption = "Where is my access_token? Ask\x00 \u202e? appsecret_proof=1&x"
    reply = {"data": [{"caption": caption, "id": 1.0}],
             "paging": {"next": "https://graph.facebook.com/v22.0/1/media?access_token=EAAB&pretty=0&after=QVF"}}
    assert scrub(reply) == {"data": [{"caption": caption, "id": 1.0}],
                            "paging": {"next": "https://graph.facebook.com/v22.0/1/media?pretty=0&after=QVF"}}


def test_any_text_meta_sends_is_recorded_and_replayed_unchanged(tmp_path):
    """NUL, a right-to-left override, emoji, a lone surrogate (legal JSON, not UTF-8): the bug reports of issue 22."""
    reply = '{"id":"1","caption":"a\\u0000b \\u202eevil \\ud83d\\ude00 \\ud800 caf\\u00e9"}'.encode()
    Recorder(tmp_path).record("GET", "https://graph.facebook.com/v25.0/1", {"fields": "id,caption"}, None, 200,
                              {"Content-Type": "application/json"}, reply)
    served = Recording.load(tmp_path).reply("GET", "/v25.0/1", {"fields": "id,caption"})
    assert json.loads(served.body) == json.loads(reply)
