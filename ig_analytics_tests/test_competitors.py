"""Competitors against the sandbox (real HTTP, real PostgreSQL): 14 sandbox days of captures, the weekly
benchmarks against a computation by hand from the sandbox's truth, every failing kind of competitor recorded with
its reason while the others are captured, the batching and the Platform budget, and no token anywhere."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

from ig_analytics.defs.competitor_assets import compute_benchmarks
from ig_analytics.graph_api import business_discovery as bd
from ig_analytics.graph_api.client import GraphApiClient
from ig_analytics.ingestion.competitors import capture_account
from ig_analytics.sandbox import AccountSpec, SandboxServer, SandboxWorld
from ig_analytics.sandbox.competitors import public_account
from ig_analytics.storage import competitors as repo
from ig_analytics_tests.ingestion_harness import register

START = datetime(2026, 11, 3, 2, 40, tzinfo=timezone.utc)  # a Tuesday: the first week is a part week
DAYS = 14
OWN = "my_corner_shop"
WATCHED = ["harbor_bakehouse", "sourdough_society", "queens_yoga_club"]  # the last hides its like counts
FAILING = {"nobody_by_this_name": "not_found", "just_a_person_42": "not_found", "late_night_spirits": "unavailable"}


@pytest.fixture()
def world_server(engine, ig_home, monkeypatch):
    world = SandboxWorld([AccountSpec("17841400000000101", OWN, followers=2_400, posts=40, posts_per_day=0.8,
                                      name="My Corner Shop")], now=START, frozen=True)
    with SandboxServer(world, port=0) as server:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        register(engine, world)
        yield world, server


def _client(world, server) -> GraphApiClient:
    return GraphApiClient(base_url=server.base_url, now=world.clock.now, backoff_base_s=0.01)


def _capture_days(engine, world, server, days: int = DAYS):
    acct = world.accounts[0]
    client = _client(world, server)
    results, times = [], []
    for d in range(days):
        world.clock.set(START + timedelta(days=d))
        now = world.clock.now()
        api = client.account(acct.ig_user_id, acct.token)
        results.append(capture_account(engine, api, OWN, (now - timedelta(days=1)).date(), now))
        times.append(now)
    return results, times


# ------------------------------------------------------------------------------ the truth, worked out by hand
def _truth(world, subject: str):
    """followers(t) and the posts (published, product, type, likes(t), comments(t)) of a subject."""
    if subject == OWN:
        acct = world.accounts[0]
        return acct.followers_at, lambda t: [
            (p.published_at, p.media_product_type, p.media_type, p.metric_at("likes", t), p.metric_at("comments", t))
            for p in acct.posts_until(t)]
    pub = public_account(world, subject)
    return pub.followers_at, lambda t: [
        (p.published_at, p.media_product_type, p.media_type, p.like_count_at(t), p.comments_count_at(t))
        for p in pub.posts_until(t)]


def _expected(world, times: list[datetime]) -> dict:
    labels = [(t - timedelta(days=1)).date() for t in times]
    last = times[-1]
    out = {}
    for subject in [OWN, *WATCHED]:
        followers_at, posts_at = _truth(world, subject)
        by_day = {day: followers_at(t) for day, t in zip(labels, times)}
        weeks = sorted({day - timedelta(days=day.weekday()) for day in labels})
        for week in weeks:
            inside = [day for day in labels if week <= day < week + timedelta(days=7)]
            before = [day for day in labels if day < week]
            followers = by_day[max(inside)]
            base = by_day[max(before)] if before else by_day[min(inside)]
            posts = [p for p in posts_at(last) if week <= p[0].date() < week + timedelta(days=7)]
            public = [p[3] + p[4] for p in posts if p[3] is not None]
            avg = sum(public) / len(public) if public else None
            out[(week, subject)] = {
                "followers": followers, "follower_growth": followers - base,
                "follower_growth_pct": (followers - base) * 100.0 / base, "posts": len(posts),
                "reels": sum(p[1] == "REELS" for p in posts),
                "carousels": sum(p[1] == "FEED" and p[2] == "CAROUSEL_ALBUM" for p in posts),
                "images": sum(p[1] == "FEED" and p[2] == "IMAGE" for p in posts),
                "avg_interactions_per_post": avg,
                "engagement_per_follower": avg * 100.0 / followers if avg is not None else None,
            }
    for week in {w for w, _ in out}:  # ranks: 1 = the highest value that week, ties share the best rank
        for metric in ("engagement_per_follower", "follower_growth_pct", "posts"):
            values = {s: out[(week, s)][metric] for s in [OWN, *WATCHED]}
            for s, v in values.items():
                out[(week, s)]["rank_" + metric] = None if v is None else 1 + sum(
                    1 for o in values.values() if o is not None and o > v)
    return out


def test_three_competitors_over_14_sandbox_days_give_the_benchmarks_worked_out_by_hand(engine, world_server):
    world, server = world_server
    acct = world.accounts[0]
    assert repo.add(engine, acct.ig_user_id, WATCHED + list(FAILING)) == sorted(WATCHED + list(FAILING))
    results, times = _capture_days(engine, world, server)

    for r in results:  # every day: the three captured, the account itself too, each failing kind on its own
        assert sorted(r.captured) == sorted(WATCHED) and r.self_captured
        assert sorted(r.failed) == sorted(FAILING)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT username, count(*), bool_and(is_self = (username = :o)) "
                                    "FROM instagram.competitor_profiles_daily GROUP BY 1 ORDER BY 1"), {"o": OWN}).all()
        hidden = conn.execute(sa.text(
            "SELECT count(*), count(s.like_count) FROM instagram.competitor_media m JOIN "
            "instagram.competitor_media_snapshots s USING (media_id) WHERE m.username = 'queens_yoga_club'")).one()
        first_week, last_week = date(2026, 11, 2), date(2026, 11, 16)
        bench = compute_benchmarks(conn, first_week, last_week, times[-1])
    assert [tuple(r) for r in rows] == [(s, DAYS, True) for s in sorted([OWN, *WATCHED])]
    assert hidden[0] > 0 and hidden[1] == 0  # hidden like counts stay NULL, never 0

    expected = _expected(world, times)
    got = {(r.week_start, r.subject): r for r in bench.itertuples()}
    assert set(got) == set(expected)
    for key, want in expected.items():
        row = got[key]
        assert bool(row.is_self) == (key[1] == OWN)
        for metric, value in want.items():
            actual = getattr(row, metric)
            if value is None:
                assert pd.isna(actual), (key, metric)
            else:
                assert actual == pytest.approx(value), (key, metric, actual, value)
    assert {r.subjects for r in bench.itertuples()} == {4}


def test_each_failing_kind_is_recorded_with_its_reason_while_the_others_are_captured(engine, world_server, caplog):
    world, server = world_server
    acct = world.accounts[0]
    repo.add(engine, acct.ig_user_id, WATCHED + list(FAILING))
    caplog.set_level(logging.DEBUG)
    results, _times = _capture_days(engine, world, server, days=1)
    rows = {r.username: r for r in repo.list_competitors(engine, acct.ig_user_id)}
    for name, status in FAILING.items():
        assert rows[name].status == status and rows[name].status_reason, name
    assert "personal account" in rows["just_a_person_42"].status_reason
    assert "age-gated" in rows["late_night_spirits"].status_reason
    assert all(rows[n].status == "active" and rows[n].last_captured_at is not None for n in WATCHED)
    with engine.connect() as conn:  # no token in anything written or logged
        text = " ".join(str(v) for row in conn.execute(sa.text("SELECT * FROM instagram.competitors")) for v in row)
    said = text + caplog.text + repr(results) + " ".join(r.status_reason or "" for r in rows.values())
    assert acct.token not in said and "access_token" not in said


def test_one_http_request_per_50_competitors_when_nothing_needs_paging(engine, world_server):
    world, server = world_server
    acct = world.accounts[0]
    names = [f"sbx_public_{i:05d}" for i in range(1, 121)]
    repo.add(engine, acct.ig_user_id, names)
    before = len(server.request_log)
    client = _client(world, server)
    result = capture_account(engine, client.account(acct.ig_user_id, acct.token), None, START.date(), START)
    http = [r for r in server.request_log[before:] if not r.batch_item]
    assert len(result.captured) == 120 and result.api_calls == 3
    assert len(http) == 3 and all(r.method == "POST" for r in http)


def test_paging_follows_older_posts_to_the_window_and_the_platform_budget_defers_the_rest(world_server):
    world, server = world_server
    acct = world.accounts[0]
    api = _client(world, server).account(acct.ig_user_id, acct.token)
    since = START - timedelta(days=30)
    found = bd.discover(api, ["shibuya_threads"], since)  # two posts a day: 25 a page cover 12 days
    posts = found["shibuya_threads"].profile.media
    truth = [p for p in public_account(world, "shibuya_threads").posts_until(START) if p.published_at >= since]
    assert {p.media_id for p in truth} <= {p.media_id for p in posts} and api.stats.calls == 3
    names = [f"sbx_public_{i:05d}" for i in range(1, 71)]
    found = bd.discover(api, names, since, budget=60)
    assert sum(d.status == "active" for d in found.values()) == 60
    deferred = [d for d in found.values() if d.status == "deferred"]
    assert len(deferred) == 10 and all("Platform rate limit" in d.reason for d in deferred)


@pytest.mark.parametrize("bad", ["has space", "..dots", "trailing.", "a" * 31, "x)&fields=id", "", "émoji"])
def test_usernames_are_checked_against_instagrams_rules_before_any_url(bad):
    with pytest.raises(bd.InvalidUsername, match="not an Instagram username"):
        bd.discovery_url("1", bad)
    assert bd.normalize_username("@Some.Brand_1") == "some.brand_1"


# ------------------------------------------------------------------------------ the assets (real Dagster)
def _materialize(day: date, **config):
    import dagster as dg

    from ig_analytics.defs import competitor_assets
    from ig_analytics_tests.ingestion_harness import RESOURCES

    assets = [competitor_assets.competitor_snapshots, competitor_assets.competitor_benchmarks]
    return dg.materialize(assets, resources=RESOURCES, partition_key=day.isoformat(), raise_on_error=False,
                          run_config={"ops": {"competitor_snapshots": {"config": config}}} if config else None)


def test_the_assets_capture_yesterday_with_checks_and_refuse_a_past_day(engine, ig_home, monkeypatch, tmp_path):
    now = datetime.now(timezone.utc)
    world = SandboxWorld.demo(now=now)
    with SandboxServer(world, port=0) as server:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        register(engine, world)
        acct = world.accounts[1]
        repo.add(engine, acct.ig_user_id, ["brooklyn_strength", "queens_yoga_club", "just_a_person_42"])
        yesterday = now.date() - timedelta(days=1)
        result = _materialize(yesterday)
        refused = _materialize(yesterday - timedelta(days=3))
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"no_negative_counts": True, "followers_consistent": True,
                      "every_competitor_captured_or_failure_recorded": True}
    meta = result.asset_materializations_for_node("competitor_snapshots")[0].metadata
    assert meta["competitors_captured"].value == 2 and list(meta["competitors_failed"].value) == [
        f"{acct.ig_user_id}/just_a_person_42"]
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT subject, is_self, rank_engagement_per_follower FROM "
                                    "instagram.competitor_benchmarks WHERE ig_user_id = :i ORDER BY 1"),
                            {"i": acct.ig_user_id}).all()
        captured_days = conn.execute(sa.text("SELECT DISTINCT date FROM instagram.competitor_profiles_daily")).all()
    assert {r.subject for r in rows} >= {"brooklyn_strength", "queens_yoga_club", acct.username}
    assert [tuple(r) for r in captured_days] == [(yesterday,)]
    assert not refused.success
    failure = refused.get_step_failure_events()[0].event_specific_data.error.message
    assert "cannot be captured now" in failure and "only the current public counts" in failure
    _report_shows_the_section(engine, acct, yesterday, tmp_path)


def _report_shows_the_section(engine, acct, day: date, tmp_path) -> None:
    """The JSON report's `competitors` and the HTML page's "You vs competitors" (rendered when chromium is
    installed)."""
    import shutil
    import subprocess

    from ig_analytics.analytics.report_html import render_html, report_markdown
    from ig_analytics.analytics.reports import build_report

    with engine.connect() as conn:
        report = build_report(conn, acct.ig_user_id, day - timedelta(days=6), day)
    section = report["competitors"]
    subjects = {s["subject"]: s for s in section["subjects"]}
    assert set(subjects) == {acct.username, "brooklyn_strength", "queens_yoga_club"}
    assert subjects[acct.username]["is_self"] and section["your_ranks"]["rank_posts"] is not None
    assert subjects["queens_yoga_club"]["avg_interactions_per_post"] is None  # hides its likes
    html = render_html(report)
    assert "You vs competitors" in html and "@brooklyn_strength" in html and "(you)" in html
    assert "Follower growth since the first day" in html and "Posts of the week by format" in html
    assert "vs competitors" in report_markdown(report)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        return  # the HTML is checked above; CI renders it
    page, png = tmp_path / "report.html", tmp_path / "competitors.png"
    page.write_text(html, encoding="utf-8")
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1200,3000",
                    page.as_uri()], check=True, timeout=60, capture_output=True)
    from ig_analytics_tests.test_analytics_reports import _png_colors

    assert _png_colors(png) >= 20


def test_the_checks_fail_on_an_unaccounted_competitor_and_warn_on_a_follower_jump(engine, world_server):
    from ig_analytics.quality import competitors as quality

    world, server = world_server
    acct = world.accounts[0]
    repo.add(engine, acct.ig_user_id, WATCHED)
    _results, times = _capture_days(engine, world, server, days=1)
    day = (times[0] - timedelta(days=1)).date()
    with engine.begin() as conn:
        assert quality.every_competitor_accounted_for(conn, day).passed
        assert quality.followers_consistent(conn, day).passed
        conn.execute(sa.text("INSERT INTO instagram.competitors (ig_user_id, username, added_at) "
                             "VALUES (:i, 'never_asked', :t)"),
                     {"i": acct.ig_user_id, "t": times[0] - timedelta(days=2)})
        conn.execute(sa.text("INSERT INTO instagram.competitor_profiles_daily (ig_user_id, username, date, "
                             "followers_count, fetched_at) VALUES (:i, 'harbor_bakehouse', :d, 100, :t)"),
                     {"i": acct.ig_user_id, "d": day - timedelta(days=1), "t": times[0] - timedelta(days=1)})
        missing = quality.every_competitor_accounted_for(conn, day)
        jump = quality.followers_consistent(conn, day)
    assert not missing.passed and missing.metadata["samples"]["competitors_not_accounted_for"][0]["username"] == \
        "never_asked"
    assert not jump.passed and jump.severity.value == "WARN"


# Recorded shapes (values our own): a business discovery reply as in sns-sdks/python-facebook
# testdata/instagram/apidata/discovery/medias_p1.json (the expansion's media page carries only `paging.cursors`,
# no `next` URL; `id` at both levels), and the error for a username that is missing or personal, code 110 /
# subcode 2207013 "Invalid user id", as public business-discovery clients mock it (one notes that Meta answers a
# personal account the same way).
RECORDED_REPLY = {"business_discovery": {"media": {"data": [
    {"id": "17800000000000001", "caption": "c", "comments_count": 3, "like_count": 40, "media_type": "IMAGE",
     "permalink": "https://www.instagram.com/p/x/", "timestamp": "2026-11-01T10:00:00+0000"}],
    "paging": {"cursors": {"after": "QVFIUk9"}}}, "id": "17841400000009999"}, "id": "17841400000000101"}
RECORDED_NOT_FOUND = {"error": {"message": "Invalid user id", "type": "OAuthException", "code": 110,
                                "error_subcode": 2207013, "fbtrace_id": "AbCdEf"}}


def _keys(node):
    if isinstance(node, dict):
        return {k: _keys(v) for k, v in node.items() if k not in ("before",)}
    if isinstance(node, list):
        return [_keys(node[0])] if node else []
    return type(node).__name__


def test_the_sandbox_answers_in_the_recorded_shapes(world_server):
    import requests

    world, server = world_server
    acct = world.accounts[0]
    fields = ("business_discovery.username(harbor_bakehouse){media.limit(1){id,caption,comments_count,like_count,"
              "media_type,permalink,timestamp}}")
    ok = requests.get(f"{server.base_url}/v25.0/{acct.ig_user_id}",
                      params={"fields": fields, "access_token": acct.token}, timeout=10).json()
    assert _keys(ok) == _keys(RECORDED_REPLY)
    bad = requests.get(f"{server.base_url}/v25.0/{acct.ig_user_id}", timeout=10, params={
        "fields": fields.replace("harbor_bakehouse", "just_a_person_42"), "access_token": acct.token})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert {k: error[k] for k in ("message", "type", "code", "error_subcode")} == {
        k: RECORDED_NOT_FOUND["error"][k] for k in ("message", "type", "code", "error_subcode")}


def test_the_client_reads_the_recorded_shapes():
    from ig_analytics.graph_api.errors import classify_error

    class Recorded:  # answers each call with the recorded reply, or the recorded error
        ig_user_id = "17841400000000101"

        def fetch_many(self, urls, is_retry=False, validate=None):
            return [RECORDED_REPLY if "username(harbor" in u else
                    classify_error(400, RECORDED_NOT_FOUND["error"], ig_user_id=self.ig_user_id, endpoint="/")
                    for u in urls]

    found = bd.discover(Recorded(), ["harbor_bakehouse", "someone_else"], datetime(2026, 11, 2, tzinfo=timezone.utc),
                        page_size=1)
    post = found["harbor_bakehouse"].profile.media[0]
    assert (post.like_count, post.comments_count, post.media_type) == (40, 3, "IMAGE")
    assert found["harbor_bakehouse"].profile.competitor_ig_user_id == "17841400000009999"
    assert found["someone_else"].status == "not_found" and "2207013" in found["someone_else"].reason
