"""The sandbox Graph API over real HTTP (requests against a ThreadingHTTPServer on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone

import pytest
import requests

from ig_analytics.sandbox import AccountSpec, Faults, SandboxServer, SandboxWorld
from ig_analytics.sandbox.protocol import rebase_page_url
from ig_analytics_tests.procs import child, free_port, wait_until

pytestmark = pytest.mark.slow

NOW = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
TODAY = date(2026, 11, 1)  # the insights day containing NOW (days end at 07:00 UTC)
SMALL = "17841400000000001"  # corner_bakery, UTC, 850 followers, 4 pre-conversion posts
MID = "17841400000000002"  # nyc_fitness_lab
BIG = "17841400000000003"  # tokyo_streetwear, 10 pre-conversion posts


def day_ts(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp())


@pytest.fixture(scope="module")
def world():
    return SandboxWorld.demo(now=NOW)


@pytest.fixture(scope="module")
def server(world):
    with SandboxServer(world) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(request):
    yield
    if "server" in request.fixturenames:
        request.getfixturevalue("server").reset()


@pytest.fixture(scope="module")
def http():
    with requests.Session() as s:
        yield s


def call(http, server, path, version="v25.0", account=None, token=None, **params):
    world = server.world
    acct = world.account(account) if account else None
    if token is None and acct is not None:
        token = acct.token
    if token is not None:
        params["access_token"] = token
    return http.get(f"{server.base_url}/{version}/{path}", params=params, timeout=10)


def err(resp):
    return resp.json()["error"]


def insights(http, server, acct, version="v25.0", **params):
    return call(http, server, f"{acct}/insights", version=version, account=acct, **params)


# ---------------------------------------------------------------------- profile, auth, versions
def test_profile_fields(http, server, world):
    r = call(http, server, BIG, account=BIG, fields="id,username,followers_count,follows_count,media_count,name")
    assert r.status_code == 200
    body = r.json()
    acct = world.account(BIG)
    assert body["id"] == BIG and body["username"] == "tokyo_streetwear"
    assert body["followers_count"] == acct.followers_total == 312_000
    assert body["media_count"] == len(acct.posts) == 200
    assert {"X-App-Usage", "X-Business-Use-Case-Usage"} <= set(r.headers)


def test_auth_errors_and_header_tokens(http, server, world):
    r = call(http, server, SMALL, fields="id")
    assert r.status_code == 400 and err(r)["code"] == 190 and err(r)["type"] == "OAuthException"
    r = call(http, server, SMALL, token="sbx_nope", fields="id")
    assert err(r)["code"] == 190
    for scheme in ("Bearer", "OAuth"):
        auth = {"Authorization": f"{scheme} {world.account(SMALL).token}"}
        r = http.get(f"{server.base_url}/v25.0/{SMALL}", headers=auth)
        assert r.status_code == 200 and r.json() == {"id": SMALL}
    # another account's token cannot read this one: "does not exist ... missing permissions" (subcode 33)
    r = call(http, server, SMALL, token=world.account(MID).token)
    assert err(r)["code"] == 100 and err(r)["error_subcode"] == 33
    e = err(call(http, server, SMALL, token="x"))
    assert set(e) >= {"message", "type", "code", "error_user_title", "error_user_msg", "fbtrace_id", "is_transient"}


def test_expired_token_and_appsecret_proof():
    world = SandboxWorld(
        [AccountSpec("17841400000000011", "expired_one", expired_token=True), AccountSpec("17841400000000012", "ok")],
        now=NOW, app_secret="s3cret",
    )
    with SandboxServer(world) as srv, requests.Session() as http:
        r = call(http, srv, "17841400000000011", account="17841400000000011")
        assert r.status_code == 400
        assert err(r)["code"] == 190 and err(r)["error_subcode"] == 463
        assert "Session has expired on" in err(r)["message"]
        tok = world.account("17841400000000012").token
        good = hmac.new(b"s3cret", tok.encode(), hashlib.sha256).hexdigest()
        assert call(http, srv, "17841400000000012", token=tok, appsecret_proof=good).status_code == 200
        r = call(http, srv, "17841400000000012", token=tok, appsecret_proof="00" * 32)
        assert err(r)["code"] == 100 and "Invalid appsecret_proof" in err(r)["message"]
        assert call(http, srv, "17841400000000012", token=tok).status_code == 200  # not required unless asked


def test_versions(http, server):
    assert call(http, server, SMALL, version="v17.0", account=SMALL).status_code == 400
    assert call(http, server, SMALL, version="v18.5", account=SMALL).status_code == 400
    r = call(http, server, SMALL, version="v26.0", account=SMALL)
    assert r.status_code == 200 and r.headers["facebook-api-version"] == "v26.0"


# ---------------------------------------------------------------------- account insights
def test_metric_sets_by_version(http, server):
    win = dict(period="day", since=day_ts(TODAY - timedelta(days=5)), until=day_ts(TODAY - timedelta(days=1)))
    ok = insights(http, server, MID, "v18.0", metric="impressions,reach,profile_views,website_clicks", **win)
    assert ok.status_code == 200 and [d["name"] for d in ok.json()["data"]] == [
        "impressions", "reach", "profile_views", "website_clicks"]
    r = insights(http, server, MID, "v21.0", metric="reach,profile_views", **win)
    assert r.status_code == 400 and err(r)["code"] == 100 and "profile_views" in err(r)["message"]
    r = insights(http, server, MID, "v25.0", metric="reach,impressions", **win)
    assert err(r)["code"] == 100 and "impressions" in err(r)["message"]
    r = insights(http, server, MID, "v25.0", metric="reach,audience_city", **win)
    msg = err(r)["message"]
    assert msg.startswith("(#100) metric[1] must be one of the following values:") and "audience_city" in msg
    # views does not exist before v22; time series of a total_value-only metric is refused
    assert insights(http, server, MID, "v18.0", metric="views", metric_type="total_value", **win).status_code == 400
    r = insights(http, server, MID, "v25.0", metric="reach,views,accounts_engaged", **win)
    assert "should be specified with parameter metric_type=total_value" in err(r)["message"]
    assert "views" in err(r)["message"] and "accounts_engaged" in err(r)["message"]
    r = insights(http, server, MID, "v18.0", metric="total_interactions", **win)
    assert "metric_type=total_value" in err(r)["message"]
    r = insights(http, server, MID, "v25.0", metric="follower_count", metric_type="total_value", **win)
    assert r.status_code == 400 and err(r)["code"] == 100
    assert insights(http, server, MID, metric="reach", **{**win, "period": "week"}).status_code == 400


def test_retirements_enforced_on_all_versions_when_asked():
    world = SandboxWorld([AccountSpec("17841400000000041", "strict")], now=NOW, enforce_retirements=True)
    with SandboxServer(world) as srv, requests.Session() as http:
        acct = "17841400000000041"
        win = dict(period="day", since=day_ts(TODAY - timedelta(days=3)), until=day_ts(TODAY - timedelta(days=1)))
        r = insights(http, srv, acct, "v18.0", metric="reach,impressions", **win)
        assert r.status_code == 400 and "impressions" in err(r)["message"]
        assert insights(http, srv, acct, "v18.0", metric="views", metric_type="total_value", **win).status_code == 200
        world.clock.set(datetime(2025, 3, 1, tzinfo=timezone.utc))  # v21 removals enforced, v22 not yet
        win = dict(period="day", since=day_ts(date(2025, 2, 20)), until=day_ts(date(2025, 2, 25)))
        assert insights(http, srv, acct, "v18.0", metric="reach,impressions", **win).status_code == 200
        assert insights(http, srv, acct, "v18.0", metric="profile_views", **win).status_code == 400


def test_time_series_shape_matches_truth(http, server, world):
    first, last = TODAY - timedelta(days=10), TODAY - timedelta(days=1)
    r = insights(http, server, MID, metric="reach,follower_count", period="day", metric_type="time_series",
                 since=day_ts(first), until=day_ts(last + timedelta(days=1)))
    body = r.json()
    reach = body["data"][0]
    assert reach["period"] == "day" and reach["id"] == f"{MID}/insights/reach/day" and reach["title"]
    days = [datetime.strptime(v["end_time"], "%Y-%m-%dT%H:%M:%S%z").date() - timedelta(days=1) for v in reach["values"]]
    assert days == [first + timedelta(days=i) for i in range(10)]
    for v in reach["values"]:
        assert v["end_time"].endswith("T07:00:00+0000")
    for d, v in zip(days, reach["values"]):
        assert v["value"] == world.account_metric(MID, "reach", d)
    fc = body["data"][1]
    assert [v["value"] for v in fc["values"]] == [world.account_metric(MID, "follower_count", d) for d in days]
    assert "access_token=" in body["paging"]["next"]
    # followers_total moves exactly by follower_count
    for d in days:
        total, prev = (world.account_metric(MID, "followers_total", x) for x in (d, d - timedelta(days=1)))
        assert total - prev == world.account_metric(MID, "follower_count", d)
        vals = {m: world.account_metric(MID, m, d) for m in ("reach", "views", "accounts_engaged", "follower_count")}
        assert vals["reach"] < vals["views"] and vals["accounts_engaged"] <= vals["reach"]
        assert 0 <= vals["follower_count"] < 0.01 * world.account_metric(MID, "followers_total", d)


def test_total_value_is_one_number_and_unique_reach(http, server, world):
    first = TODAY - timedelta(days=8)
    days = [first + timedelta(days=i) for i in range(7)]
    r = insights(http, server, BIG, metric="reach,views,likes", period="day", metric_type="total_value",
                 since=day_ts(first), until=day_ts(first + timedelta(days=7)))
    data = {d["name"]: d for d in r.json()["data"]}
    assert set(data["reach"]) >= {"name", "period", "total_value", "id"} and "values" not in data["reach"]
    daily = [world.account_metric(BIG, "reach", d) for d in days]
    assert max(daily) < data["reach"]["total_value"]["value"] < sum(daily)
    assert data["reach"]["total_value"]["value"] == world.account_metric_total(BIG, "reach", days)
    assert data["views"]["total_value"]["value"] == sum(world.account_metric(BIG, "views", d) for d in days)
    one = insights(http, server, BIG, metric="reach", period="day", metric_type="total_value",
                   since=day_ts(days[0]), until=day_ts(days[1])).json()["data"][0]["total_value"]["value"]
    assert one == daily[0]
    r = insights(http, server, BIG, metric="reach", period="day", metric_type="total_value", breakdown="follow_type",
                 since=day_ts(days[0]), until=day_ts(days[1]))
    tv = r.json()["data"][0]["total_value"]
    assert sum(x["value"] for x in tv["breakdowns"][0]["results"]) == tv["value"]


def test_thirty_day_window(http, server):
    end = TODAY - timedelta(days=1)
    r = insights(http, server, MID, metric="reach", period="day", since=day_ts(end - timedelta(days=31)),
                 until=day_ts(end))
    assert r.status_code == 400 and "There cannot be more than 30 days" in err(r)["message"]
    r = insights(http, server, MID, metric="reach", period="day", since=day_ts(end - timedelta(days=29)),
                 until=day_ts(end))
    assert r.status_code == 200 and len(r.json()["data"][0]["values"]) == 29
    # a bare-date until is stretched to the end of that day: a 30-day date window does not fit, 29 days do
    r = insights(http, server, MID, metric="reach", period="day", since="2026-09-01", until="2026-10-01")
    assert r.status_code == 400
    r = insights(http, server, MID, metric="reach", period="day", since="2026-09-01", until="2026-09-30")
    assert r.status_code == 200 and len(r.json()["data"][0]["values"]) == 30


def test_follower_count_rules_late_data_and_retention(http, server):
    def values(acct, metric, first, n, metric_type="time_series"):
        r = insights(http, server, acct, metric=metric, period="day", metric_type=metric_type,
                     since=day_ts(first), until=day_ts(first + timedelta(days=n)))
        assert r.status_code == 200, r.text
        return r.json()["data"]

    recent = values(MID, "follower_count,reach", TODAY - timedelta(days=3), 4)
    assert len(recent[0]["values"]) == 3  # today excluded
    assert len(recent[1]["values"]) == 3  # today not over yet; yesterday's reach already in (fast metric)
    # follower_count: last 30 days only; a window reaching past them is refused whole, as the real API does
    for first, n in ((TODAY - timedelta(days=55), 20), (TODAY - timedelta(days=35), 10)):
        r = insights(http, server, MID, metric="follower_count,reach", period="day", metric_type="time_series",
                     since=day_ts(first), until=day_ts(first + timedelta(days=n)))
        assert r.status_code == 400 and "(follower_count) metric only supports querying data for the last 30 " \
            "days excluding the current day" in err(r)["message"]
    assert len(values(MID, "reach", TODAY - timedelta(days=55), 20)[0]["values"]) == 20
    edge = values(MID, "follower_count", TODAY - timedelta(days=30), 5)[0]["values"]
    assert [v["end_time"][:10] for v in edge] == [
        (TODAY - timedelta(days=30 - i) + timedelta(days=1)).isoformat() for i in range(5)]
    assert values(SMALL, "reach", TODAY - timedelta(days=800), 5)[0]["values"] == []  # retention ~2 years
    # slow metrics: today and yesterday are missing (never 0), the day before is there
    for d, present in ((TODAY - timedelta(days=1), False), (TODAY - timedelta(days=2), True)):
        data = values(MID, "accounts_engaged", d, 1, "total_value")
        assert bool(data) is present
    small = SandboxWorld([AccountSpec("17841400000000021", "tiny", followers=60)], now=NOW)
    with SandboxServer(small) as srv, requests.Session() as s:
        r = insights(s, srv, "17841400000000021", metric="reach,follower_count", period="day",
                     since=day_ts(TODAY - timedelta(days=5)), until=day_ts(TODAY))
        assert [d["name"] for d in r.json()["data"]] == ["reach"]  # absent under 100 followers


# ---------------------------------------------------------------------- media
def test_media_paging_all_pages(http, server, world):
    acct = world.account(MID)
    url = f"{server.base_url}/v25.0/{MID}/media"
    params = {"fields": "id,caption,media_type,media_product_type,timestamp,permalink,like_count,comments_count",
              "limit": 7, "access_token": acct.token}
    seen, pages = [], 0
    r = http.get(url, params=params)
    while True:
        body = r.json()
        assert r.status_code == 200, body
        seen.extend(body["data"])
        pages += 1
        nxt = body.get("paging", {}).get("next")
        if not nxt:
            break
        assert f"access_token={acct.token}" in nxt and "after=" in nxt and "pretty=0" in nxt
        assert nxt.startswith("https://graph.facebook.com/v6.0/")  # another host and version, as Meta may write
        r = http.get(rebase_page_url(nxt, server.base_url, "v25.0"))
    assert pages == 18
    ids = [m["id"] for m in seen]
    assert ids == [m.media_id for m in acct.posts] and len(set(ids)) == 120
    times = [m["timestamp"] for m in seen]
    assert times == sorted(times, reverse=True) and times[0].endswith("+0000")
    assert all(m["media_product_type"] in ("FEED", "REELS") for m in seen)
    first = seen[0]
    assert first["like_count"] == world.media_metric(first["id"], "likes")
    # limit above 100 is served as 100; the reduce-data fault refuses big pages
    assert len(http.get(url, params={**params, "limit": 500}).json()["data"]) == 100
    acct.faults = Faults(reduce_data_limit=50)
    r = http.get(url, params={**params, "limit": 100})
    assert r.status_code == 500 and err(r)["code"] == 1 and "reduce the amount of data" in err(r)["message"]
    assert http.get(url, params={**params, "limit": 50}).status_code == 200
    since = int((NOW - timedelta(days=3)).timestamp())
    recent = http.get(url, params={**params, "since": since, "limit": 50}).json()["data"]
    assert recent and all(datetime.strptime(m["timestamp"], "%Y-%m-%dT%H:%M:%S%z").timestamp() >= since for m in recent)


def test_short_and_empty_pages_are_not_the_end(http, server, world):
    acct = world.account(MID)
    acct.faults = Faults(short_page_rate=0.6, seed=5)
    r = http.get(f"{server.base_url}/v25.0/{MID}/media", params={"limit": 10, "access_token": acct.token})
    ids, sizes = [], []
    while True:
        body = r.json()
        ids.extend(m["id"] for m in body["data"])
        sizes.append(len(body["data"]))
        if "next" not in body.get("paging", {}):
            assert set(body["paging"]["cursors"]) <= {"before"}  # the last page: only cursors.before
            break
        r = http.get(rebase_page_url(body["paging"]["next"], server.base_url, "v25.0"))
    assert ids == [m.media_id for m in acct.posts]
    assert min(sizes[:-1]) < 10


def test_field_expansion_fails_page_with_pre_conversion_post(http, server, world):
    acct = world.account(BIG)
    url = f"{server.base_url}/v25.0/{BIG}/media"
    fields = "id,timestamp,insights.metric(reach,saved)"
    r = http.get(url, params={"fields": fields, "limit": 25, "access_token": acct.token})
    assert r.status_code == 200
    first = r.json()["data"][0]
    assert first["insights"]["data"][0]["name"] == "reach"
    assert first["insights"]["data"][0]["values"] == [{"value": world.media_metric(first["id"], "reach")}]
    old = [m for m in acct.posts if m.pre_conversion]
    assert len(old) == 10
    r = http.get(url, params={"fields": fields, "limit": 100, "access_token": acct.token,
                              "until": int(old[0].published_at.timestamp()) + 86400 * 5})
    assert r.status_code == 400 and err(r)["code"] == 100 and err(r)["error_subcode"] == 2108006
    r = call(http, server, f"{old[0].media_id}/insights", account=BIG, metric="reach")
    assert err(r)["error_subcode"] == 2108006


def test_media_insights_by_version_and_quirks(http, server, world):
    posts = world.account(BIG).posts
    image = next(m for m in posts if m.media_type == "IMAGE" and not m.rejects and not m.pre_conversion)
    reel = next(m for m in posts if m.media_product_type == "REELS" and not m.pre_conversion)
    r = call(http, server, f"{image.media_id}/insights", "v18.0", account=BIG,
             metric="impressions,reach,saved,likes,comments,shares,total_interactions")
    data = r.json()["data"]
    assert r.status_code == 200 and all(d["period"] == "lifetime" and list(d["values"][0]) == ["value"] for d in data)
    v = {d["name"]: d["values"][0]["value"] for d in data}
    assert v["total_interactions"] == v["likes"] + v["comments"] + v["saved"] + v["shares"]
    assert v["reach"] <= v["impressions"]
    r = call(http, server, f"{image.media_id}/insights", "v25.0", account=BIG, metric="impressions")
    assert r.status_code == 400 and "impressions" in err(r)["message"]
    r = call(http, server, f"{image.media_id}/insights", "v25.0", account=BIG, metric="views,reach")
    views, reach = (d["values"][0]["value"] for d in r.json()["data"])
    assert reach <= views
    r = call(http, server, f"{image.media_id}/insights", "v18.0", account=BIG, metric="reach,engagement")
    assert "metric[1] must be one of the following values" in err(r)["message"] and "engagement" in err(r)["message"]
    reel_url = f"{reel.media_id}/insights"
    assert call(http, server, reel_url, "v18.0", account=BIG, metric="plays,reach").status_code == 200
    assert call(http, server, reel_url, "v25.0", account=BIG, metric="plays").status_code == 400
    video = next(m for m in world.account(MID).posts if m.media_type == "VIDEO" and m.media_product_type == "FEED")
    video_url = f"{video.media_id}/insights"
    assert call(http, server, video_url, "v18.0", account=MID, metric="video_views").status_code == 200
    assert call(http, server, video_url, "v21.0", account=MID, metric="video_views").status_code == 400
    # per-post quirks (deterministic): an IMAGE refusing shares, an old FEED video refusing views
    noshare = next(m for m in posts if "shares" in m.rejects and not m.pre_conversion)
    r = call(http, server, f"{noshare.media_id}/insights", account=BIG, metric="reach,shares")
    assert err(r)["message"] == ("(#100) The Media Insights API does not support the shares metric for this media "
                                 "product type.")
    assert call(http, server, f"{noshare.media_id}/insights", account=BIG, metric="reach").status_code == 200
    noviews = next(m for a in world.accounts for m in a.posts if "views" in m.rejects and not m.pre_conversion)
    r = call(http, server, f"{noviews.media_id}/insights", account=noviews.ig_user_id, metric="views")
    assert "does not support the views metric" in err(r)["message"]
    # carousel children have no insights; unknown ids are subcode 33
    album = next(m for m in posts if m.media_type == "CAROUSEL_ALBUM")
    kids = call(http, server, f"{album.media_id}/children", account=BIG, fields="id,media_type").json()["data"]
    assert len(kids) >= 2
    assert call(http, server, f"{kids[0]['id']}/insights", account=BIG, metric="reach").status_code == 400
    r = call(http, server, "17900000020999999/insights", account=BIG, metric="reach")
    assert err(r)["code"] == 100 and err(r)["error_subcode"] == 33


def test_stories_live_24h_and_not_enough_viewers():
    world = SandboxWorld([AccountSpec("17841400000000031", "story_shop", followers=90, posts=5, stories_per_day=4)],
                         now=NOW)
    acct = world.account("17841400000000031")
    with SandboxServer(world) as srv, requests.Session() as http:
        uid = acct.ig_user_id
        r = call(http, srv, f"{uid}/stories", account=uid, fields="id,media_product_type,timestamp")
        listed = r.json()["data"]
        live = acct.live_stories(NOW)
        assert [s["id"] for s in listed] == [s.media_id for s in live] and listed
        assert all(s["media_product_type"] == "STORY" for s in listed)
        media_ids = {m["id"] for m in call(http, srv, f"{uid}/media", account=uid).json()["data"]}
        assert not media_ids & {s["id"] for s in listed}
        few = next((s for s in live if (s.metric_at("reach", NOW) or 0) < 5), None)
        assert few is not None
        r = call(http, srv, f"{few.media_id}/insights", account=acct.ig_user_id, metric="reach")
        assert err(r)["code"] == 10 and "Not enough viewers" in err(r)["message"]
        world.clock.advance(timedelta(hours=25))
        later = call(http, srv, f"{acct.ig_user_id}/stories", account=acct.ig_user_id).json()["data"]
        assert not {s["id"] for s in listed} & {s["id"] for s in later}
        r = call(http, srv, f"{listed[0]['id']}/insights", account=acct.ig_user_id, metric="reach")
        assert r.status_code == 400


def test_growth_over_clock_advances(world):
    acct = world.account(MID)
    viral = next(m for m in acct.posts if m.viral and (NOW - m.published_at) < timedelta(days=3))
    old = acct.posts[-1]
    snaps_v, snaps_o = [], []
    for h in range(4):
        at = NOW + timedelta(hours=h)
        snaps_v.append(world.media_metric(viral.media_id, "reach", at))
        snaps_o.append(world.media_metric(old.media_id, "reach", at))
    gains_v = [b - a for a, b in zip(snaps_v, snaps_v[1:])]
    assert all(g > 0.005 * snaps_v[0] for g in gains_v)  # > 0.5 % per hour
    assert snaps_o[-1] - snaps_o[0] <= 0.001 * snaps_o[0] and snaps_o[0] > 0
    normal = next(m for m in acct.posts
                  if not m.viral and timedelta(days=3) < NOW - m.published_at < timedelta(days=20))
    assert snaps_v[0] > 5 * world.media_metric(normal.media_id, "reach")
    # brand new posts appear as the clock moves on, and values never decrease
    before = len(acct.posts)
    world.clock.advance(timedelta(days=3))
    try:
        assert len(acct.posts) > before
        assert world.media_metric(viral.media_id, "reach") >= snaps_v[-1]
    finally:
        world.clock.set(NOW)


def test_determinism():
    a = SandboxWorld.demo(now=NOW)
    b = SandboxWorld.demo(now=NOW)
    c = SandboxWorld.demo(now=NOW, seed=8)
    ids_a = [m.media_id for m in a.account(BIG).posts]
    assert ids_a == [m.media_id for m in b.account(BIG).posts]
    assert [a.media_metric(i, "reach") for i in ids_a[:20]] == [b.media_metric(i, "reach") for i in ids_a[:20]]
    d = TODAY - timedelta(days=3)
    assert a.account_metric(SMALL, "reach", d) == b.account_metric(SMALL, "reach", d)
    assert a.account(SMALL).token == b.account(SMALL).token != c.account(SMALL).token
    assert [a.account_metric(MID, "reach", d - timedelta(days=i)) for i in range(5)] != [
        c.account_metric(MID, "reach", d - timedelta(days=i)) for i in range(5)]
    g1 = SandboxWorld.generate(1000, 100, seed=3, now=NOW)
    g2 = SandboxWorld.generate(1000, 100, seed=3, now=NOW)
    assert [x.ig_user_id for x in g1.accounts] == [x.ig_user_id for x in g2.accounts]
    assert len({x.ig_user_id for x in g1.accounts}) == 1000
    acct = g1.accounts[500]
    assert [m.media_id for m in acct.posts] == [m.media_id for m in g2.accounts[500].posts] and len(acct.posts) == 100


def test_generate_is_lazy():
    # how long it takes is measured by benchmarks/responsiveness.py (a timing here would flake under load)
    world = SandboxWorld.generate(n_accounts=1000, posts_per_account=100, seed=1, now=NOW)
    assert all("history" not in a.__dict__ for a in world.accounts)  # nothing generated yet


# ---------------------------------------------------------------------- batch
def test_batch(http, server, world):
    acct = world.account(SMALL)
    post = acct.posts[0]
    batch = [
        {"method": "GET", "relative_url": f"{post.media_id}/insights?metric=reach,likes"},
        {"method": "GET", "relative_url": f"{post.media_id}/insights?metric=engagement"},
        {"method": "GET", "relative_url": f"v18.0/{SMALL}?fields=username"},
        {"method": "GET", "relative_url": f"{MID}?fields=username&access_token={world.account(MID).token}"},
    ]
    r = http.post(f"{server.base_url}/v25.0/", data={"batch": json.dumps(batch), "access_token": acct.token})
    assert r.status_code == 200
    out = r.json()
    assert [o["code"] for o in out] == [200, 400, 200, 200]
    assert json.loads(out[0]["body"])["data"][0]["values"][0]["value"] == world.media_metric(post.media_id, "reach")
    assert json.loads(out[1]["body"])["error"]["code"] == 100
    assert json.loads(out[2]["body"]) == {"username": "corner_bakery", "id": SMALL}
    assert json.loads(out[3]["body"])["username"] == "nyc_fitness_lab"
    assert {h["name"] for h in out[0]["headers"]} >= {"Content-Type", "X-Business-Use-Case-Usage"}
    assert server.calls(ig_user_id=SMALL) == 3  # every item counts
    r = http.post(f"{server.base_url}/", data={"batch": json.dumps(batch * 13), "access_token": acct.token})
    assert r.status_code == 400 and "Maximum batch size is 50" in err(r)["message"]
    assert all("access_token" not in rec.params for rec in server.request_log)


# ---------------------------------------------------------------------- rate limits and faults
def test_throttling_and_usage_headers(http, server, world):
    world.account(SMALL).faults = Faults(throttle_after_calls=3, throttle_minutes=5)
    usages = []
    for _ in range(3):
        r = call(http, server, SMALL, account=SMALL)
        assert r.status_code == 200
        usages.append(json.loads(r.headers["X-Business-Use-Case-Usage"])[SMALL][0]["call_count"])
    assert usages == sorted(usages) and usages[-1] == 100
    r = call(http, server, SMALL, account=SMALL)
    assert r.status_code == 400 and err(r)["code"] == 80002
    assert "too many calls to this Instagram account" in err(r)["message"]
    buc = json.loads(r.headers["X-Business-Use-Case-Usage"])[SMALL][0]
    assert buc["type"] == "instagram" and buc["estimated_time_to_regain_access"] == 5
    assert call(http, server, MID, account=MID).status_code == 200  # other accounts go on
    world.clock.advance(timedelta(minutes=5))
    assert call(http, server, SMALL, account=SMALL).status_code == 200
    app = json.loads(r.headers["X-App-Usage"])
    assert set(app) == {"call_count", "total_time", "total_cputime"}


def test_transient_malformed_truncated_faults(http, server, world):
    world.faults = Faults(transient_error_rate=1.0, seed=1)
    statuses = {call(http, server, SMALL, account=SMALL).status_code for _ in range(12)}
    assert statuses == {500, 503}
    r = call(http, server, SMALL, account=SMALL)
    assert err(r)["is_transient"] is True and err(r)["code"] == 2
    world.faults = Faults(malformed_body_rate=1.0)
    r = call(http, server, SMALL, account=SMALL)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    world.faults = Faults(truncated_body_rate=1.0)
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(f"{server.base_url}/v25.0/{SMALL}", params={"access_token": world.account(SMALL).token}, timeout=5)
    # the same seed gives the same sequence of faults
    seqs = []
    for _ in range(2):
        world.faults = Faults(transient_error_rate=0.5, seed=42)
        seqs.append([call(http, server, SMALL, account=SMALL).status_code for _ in range(10)])
    assert seqs[0] == seqs[1] and len(set(seqs[0])) > 1


def _requests_being_served() -> int:
    """Threads of this process that are inside the sandbox's request handling right now."""
    busy = 0
    for frame in sys._current_frames().values():
        while frame is not None:
            if frame.f_code.co_name == "serve_api":
                busy += 1
                break
            frame = frame.f_back
    return busy


def test_latency_does_not_block_other_requests(server, world):
    # Not a timing (benchmarks/responsiveness.py measures that): all 8 slow requests are seen in the server at
    # the same moment, which a server answering one at a time can never show.
    world.faults = Faults(latency_ms=3000)
    tok = world.account(SMALL).token
    results = []

    def one():
        r = requests.get(f"{server.base_url}/v25.0/{SMALL}", params={"access_token": tok}, timeout=60)
        results.append(r.status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30
        most = 0
        while most < 8 and time.monotonic() < deadline:
            most = max(most, _requests_being_served())
            time.sleep(0.01)
    finally:
        for t in threads:
            t.join(timeout=90)
    assert most == 8 and results == [200] * 8


# ---------------------------------------------------------------------- control API and CLI
def test_control_api(http, server, world):
    accounts = http.get(f"{server.base_url}/__sandbox/accounts").json()
    assert [a["ig_user_id"] for a in accounts] == [SMALL, MID, BIG]
    assert accounts[1]["timezone"] == "America/New_York" and accounts[0]["token"].startswith("sbx_")
    r = http.post(f"{server.base_url}/__sandbox/clock", json={"advance_seconds": 3600})
    assert datetime.fromisoformat(r.json()["now"]) == NOW + timedelta(hours=1) == world.clock.now()
    http.post(f"{server.base_url}/__sandbox/clock", json={"now": "2026-11-02T00:00:00+00:00"})
    assert world.clock.now() == datetime(2026, 11, 2, tzinfo=timezone.utc)
    r = http.post(f"{server.base_url}/__sandbox/faults", json={"throttle_after_calls": 1, "ig_user_id": MID})
    assert r.status_code == 200 and world.account(MID).faults.throttle_after_calls == 1
    assert world.faults.throttle_after_calls is None
    assert http.post(f"{server.base_url}/__sandbox/faults", json={"bogus": 1}).status_code == 400
    http.post(f"{server.base_url}/__sandbox/reset")
    assert world.clock.now() == NOW and world.account(MID).faults is None and server.request_log == []


def test_cli_prints_accounts_and_stops_on_sigterm():
    port = free_port()
    with child([sys.executable, "-m", "ig_analytics.sandbox", "--port", str(port)],
               env={**os.environ, "PYTHONUNBUFFERED": "1"}) as proc:
        lines = [json.loads(line) for line in proc.read_lines(3, timeout_s=60)]
        assert [set(x) for x in lines] == [{"ig_user_id", "username", "token"}] * 3

        def answer():
            try:
                return requests.get(f"http://127.0.0.1:{port}/v25.0/{lines[0]['ig_user_id']}",
                                    params={"access_token": lines[0]["token"], "fields": "username"}, timeout=10)
            except requests.ConnectionError:
                return None

        assert wait_until(answer, 60, "the sandbox to accept connections").json()["username"] == lines[0]["username"]
        code, _ = proc.stop(signal.SIGTERM, timeout_s=60)
        assert code == 0, proc.stderr


# ---------------------------------------------------------------------- audience: age x gender, follow types
def test_age_gender_is_one_crossed_picture_whose_margins_are_the_single_ones(http, server, world):
    def picture(breakdown):
        r = insights(http, server, MID, metric="follower_demographics", period="lifetime",
                     metric_type="total_value", breakdown=breakdown)
        assert r.status_code == 200, r.text
        block = r.json()["data"][0]["total_value"]["breakdowns"][0]
        return block["dimension_keys"], {tuple(x["dimension_values"]): x["value"] for x in block["results"]}

    keys, crossed = picture("age,gender")
    assert keys == ["age", "gender"] and 0 < len(crossed) <= 21
    assert {a for a, _ in crossed} <= {"13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"}
    assert {g for _, g in crossed} <= {"F", "M", "U"}
    assert sum(crossed.values()) <= world.account(MID).followers_at(NOW)  # only known demographics
    swapped_keys, swapped = picture("gender,age")  # the dimensions follow the order asked
    assert swapped_keys == ["gender", "age"] and swapped == {(g, a): v for (a, g), v in crossed.items()}
    for pos, single, cells in ((0, "age", 3), (1, "gender", 7)):
        _, alone = picture(single)
        margin = {}
        for cell, v in crossed.items():
            margin[cell[pos]] = margin.get(cell[pos], 0) + v
        for (key,), v in alone.items():  # each answer is rounded down on its own
            assert v - cells < margin.get(key, 0) <= v, (single, key)
    r = insights(http, server, MID, metric="follower_demographics", period="lifetime", metric_type="total_value",
                 breakdown="age,country")
    assert r.status_code == 400 and "Incompatible breakdowns" in err(r)["message"]


def test_under_100_followers_no_demographics_and_no_follows_and_unfollows(http, server):
    tiny = SandboxWorld([AccountSpec("17841400000000009", "tiny", followers=40, posts=2)], seed=1, now=NOW)
    with SandboxServer(tiny) as srv:
        r = insights(http, srv, "17841400000000009", metric="follower_demographics", period="lifetime",
                     metric_type="total_value", breakdown="age,gender")
        day = TODAY - timedelta(days=3)
        split = insights(http, srv, "17841400000000009", metric="follows_and_unfollows,likes", period="day",
                         metric_type="total_value", since=day_ts(day), until=day_ts(day + timedelta(days=1)))
    assert r.status_code == 200 and r.json() == {"data": []}
    assert [d["name"] for d in split.json()["data"]] == ["likes"]  # follows_and_unfollows: not under 100 either


def test_follow_type_splits_follows_and_unfollows_into_the_truth(http, server, world):
    acct = world.account(BIG)  # tokyo_streetwear loses followers every day
    day = TODAY - timedelta(days=3)
    assert acct.unfollows(day) > 0
    r = insights(http, server, BIG, metric="follows_and_unfollows", period="day", metric_type="total_value",
                 breakdown="follow_type", since=day_ts(day), until=day_ts(day + timedelta(days=1)))
    tv = r.json()["data"][0]["total_value"]
    split = {x["dimension_values"][0]: x["value"] for x in tv["breakdowns"][0]["results"]}
    assert split == {"FOLLOWER": world.account_metric(BIG, "follower_count", day),
                     "NON_FOLLOWER": acct.unfollows(day)}
    assert "value" not in tv  # by follow_type the live reply has only the breakdowns (graph-api-facts.md s. 9)


def test_a_posts_comments_are_built_once_and_served_the_same_at_any_instant(monkeypatch):
    """Each page of a read asks for the post's whole comment stream (issue 27: rebuilding it per page was most of
    the sandbox's CPU in a benchmark tick): a unit is built once, whatever the instants asked and their order,
    and what is served equals a fresh world's."""
    from ig_analytics.sandbox import comments

    built = []
    real = comments.comment
    monkeypatch.setattr(comments, "comment", lambda acct, m, k: built.append(k) or real(acct, m, k))
    world, fresh = SandboxWorld.demo(now=NOW), SandboxWorld.demo(now=NOW)
    acct, other = world.account(BIG), fresh.account(BIG)
    m, same = acct.posts_until(NOW)[-3], other.posts_until(NOW)[-3]
    instants = [NOW - timedelta(hours=h) for h in (30, 2, 50, 0, 2, 1)]
    served = [comments.visible_comments(acct, m, at) for at in instants]
    assert len(built) == len(set(built)) == max(m.metric_at("comments", at) or 0 for at in instants) > 20
    monkeypatch.setattr(comments, "comment", real)
    assert served == [comments.visible_comments(other, same, at) for at in instants]
