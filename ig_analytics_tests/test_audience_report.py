"""The report's audience section and "when your followers are online", end to end: the sandbox over HTTP, the
ingestion into a real PostgreSQL, the report. Expected values come from the sandbox's own truth, computed here."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from ig_analytics.analytics.reports import build_report
from ig_analytics.analytics.report_html import render_html, report_markdown
from ig_analytics.graph_api import GraphApiClient
from ig_analytics.ingestion.demographics import sync_audience_demographics
from ig_analytics.sandbox import AccountSpec, SandboxServer, SandboxWorld
from ig_analytics.sandbox import online_followers
from ig_analytics.sandbox.account import day_end
from ig_analytics.sandbox.demographics import AGES, GENDERS, truth

BIG, TINY = "17841400000000002", "17841400000000004"
DAY = date(2026, 9, 19)  # the snapshot's day, taken at 02:20 UTC the next day
NOW = datetime(2026, 9, 20, 2, 20, tzinfo=timezone.utc)
START = DAY - timedelta(days=6)


@pytest.fixture()
def sandbox(engine):
    from ig_analytics_tests.ingestion_harness import register

    world = SandboxWorld([AccountSpec(BIG, "gym", followers=24_300, timezone="America/New_York", posts=10),
                          AccountSpec(TINY, "tiny_studio", followers=40, posts=3)], seed=5, now=NOW)
    server = SandboxServer(world).start()
    try:
        register(engine, world)
        yield world, server
    finally:
        server.stop()


def _sync(engine, world, server, version: str) -> None:
    client = GraphApiClient(base_url=server.base_url, version=version, now=world.clock.now, backoff_base_s=0.01)
    for acct in world.accounts:
        sync_audience_demographics(engine, client.account(acct.ig_user_id, acct.token), acct.ig_user_id, DAY,
                                   client.version, world.clock.now())


def _report(engine, ig_user_id: str, start: date = START, end: date = DAY) -> dict:
    with engine.connect() as conn:
        return build_report(conn, ig_user_id, start, end)


def _expected_online(acct) -> dict[tuple[int, int], float]:
    """(ISO weekday, hour) in the account's zone -> the average followers online, from the sandbox's truth over
    the hours it served (the last 29 finished days) within the 30 local days ending with DAY."""
    tz = acct.tz
    window = (datetime.combine(DAY - timedelta(days=29), datetime.min.time(), tz),
              datetime.combine(DAY + timedelta(days=1), datetime.min.time(), tz))
    cells = defaultdict(list)
    served = [d for d in online_followers.visible_days(NOW) if NOW - timedelta(days=29) < day_end(d) <= NOW]
    for d in served:
        start = day_end(d) - timedelta(days=1)
        for hour, n in online_followers.truth(acct, d).items():
            at = start + timedelta(hours=int(hour))
            if window[0] <= at < window[1]:
                local = at.astimezone(tz)
                cells[(local.isoweekday(), local.hour)].append(n)
    return {k: round(sum(v) / len(v), 1) for k, v in cells.items()}


def test_the_audience_section_shows_the_sandbox_truth(engine, sandbox):
    world, server = sandbox
    _sync(engine, world, server, "v24.0")
    big = world.account(BIG)
    report = _report(engine, BIG)
    audience = report["audience"]
    followers = big.followers_at(NOW)
    assert audience["status"] == "ok" and audience["as_of"] == DAY.isoformat()
    assert audience["followers_total"] == followers

    crossed = truth(big, "follower_demographics", "age,gender", None, NOW)

    def expected(breakdown: str, n: int | None = None) -> list[tuple[str, int, float]]:
        if breakdown in ("age", "gender"):  # the margins of the crossed picture
            pos = 0 if breakdown == "age" else 1
            values = {}
            for cell, v in crossed.items():
                values[cell[pos]] = values.get(cell[pos], 0) + v
        else:
            values = truth(big, "follower_demographics", breakdown, None, NOW)
        ranked = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(k, v, round(v * 100.0 / followers, 1)) for k, v in ranked[:n]]

    def got(key: str) -> list[tuple[str, int, float]]:
        return [(i["key"], i["value"], i["share_of_followers"]) for i in audience[key]]

    assert got("top_countries") == expected("country", 5)
    assert got("top_cities") == expected("city", 5)
    assert sorted(got("age")) == sorted(expected("age"))
    assert [i["key"] for i in audience["age"]] == [k for k in ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64",
                                                              "65+") if k in dict((e[0], 1) for e in expected("age"))]
    assert sorted(got("gender")) == sorted(expected("gender"))
    assert sum(i["share_of_followers"] for i in audience["gender"]) < 100  # only known genders

    # age x gender: rows age ranges, columns F, M, U, shares of the followers in the crossed picture
    table = audience["age_gender"]
    known = sum(crossed.values())
    assert table["known_followers"] == known and table["genders"] == ["F", "M", "U"]
    assert [r["age"] for r in table["rows"]] == [a for a in AGES if any(c[0] == a for c in crossed)]
    for row in table["rows"]:
        for g in GENDERS:
            value = crossed.get((row["age"], g), 0)
            assert row["values"][g] == value
            assert row["shares_of_known"][g] == round(value * 100.0 / known, 1)
    assert sum(sum(r["values"].values()) for r in table["rows"]) == known <= followers

    online = report["followers_online"]
    assert online["available"]
    grid = {(c["weekday"], c["hour"]): c["avg_followers_online"] for c in online["grid"]}
    assert len(grid) == 7 * 24 and grid == _expected_online(big)
    top = max(grid.values())
    assert online["peak_hours"][0]["avg_followers_online"] == top

    html = render_html(report)
    assert "Top countries" in html and "When your followers are online" in html and "When your posts did best" in html
    first = table["rows"][0]
    assert "Age x gender" in html and f"<td>{first['age']}</td><td class=n title=" in html
    assert f"{first['shares_of_known']['F']:.1f}%</td>" in html
    markdown = report_markdown(report)
    assert f"audience ({DAY.isoformat()})" in markdown and "when your followers are online:" in markdown
    first_country = audience["top_countries"][0]
    assert f"{first_country['key']} {first_country['share_of_followers']:.1f}%" in markdown
    assert f"- age x gender (of {known:,} known): {first['age']} F {first['shares_of_known']['F']:.1f}%" in markdown


def test_under_100_followers_is_not_available_and_said_so(engine, sandbox):
    world, server = sandbox
    _sync(engine, world, server, "v24.0")
    report = _report(engine, TINY)
    assert report["audience"]["status"] == "not_available"
    assert "at least 100 followers" in report["audience"]["note"]
    assert f"({world.account(TINY).followers_at(NOW)} followers on {DAY.isoformat()})" in report["audience"]["note"]
    assert report["followers_online"]["available"] is False
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM instagram.online_followers WHERE ig_user_id = :i"),
                            {"i": TINY}).scalar() == 0
    html = render_html(report)
    assert "at least 100 followers" in html and "Top countries" not in html
    assert "audience: Not available" in report_markdown(report)


def test_v25_has_no_online_followers_and_asks_for_none(engine, sandbox):
    world, server = sandbox
    server.reset_log()
    _sync(engine, world, server, "v25.0")
    assert not any("online_followers" in (r.params.get("metric") or "") for r in server.request_log)
    report = _report(engine, BIG)
    assert report["audience"]["status"] == "ok"
    assert report["followers_online"]["available"] is False
    assert "v24" in report["followers_online"]["note"]
    assert "when your followers are online: not available" in report_markdown(report)


def test_a_period_without_a_snapshot_says_so(engine, sandbox):
    world, server = sandbox
    _sync(engine, world, server, "v24.0")
    report = _report(engine, BIG, DAY - timedelta(days=20), DAY - timedelta(days=10))
    assert report["audience"]["status"] == "no_snapshot" and report["audience"]["top_countries"] == []
    assert "No audience snapshot" in render_html(report)


def test_the_demo_lines_name_the_top_countries_or_why_not(engine, sandbox):
    from ig_analytics.analytics.audience import audience_lines

    world, server = sandbox
    _sync(engine, world, server, "v25.0")
    with engine.connect() as conn:
        gym, tiny = audience_lines(conn)
    values = truth(world.account(BIG), "follower_demographics", "country", None, NOW)
    followers = world.account(BIG).followers_at(NOW)
    top = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    assert gym == (f"Audience @gym ({DAY.isoformat()}): top countries "
                   + ", ".join(f"{k} {v * 100.0 / followers:.1f}%" for k, v in top) + f" of {followers:,} followers")
    assert tiny.startswith("Audience @tiny_studio: Not available") and "100 followers" in tiny


def test_empty_demographics_of_a_large_account_get_an_honest_reason(engine):
    """64,363 followers and {"data": []} (graph-api-facts.md, section 9): stored and shown as "not available",
    never as "accounts under 100 followers"; a small account keeps that reason, with its count."""
    from ig_analytics_tests.ingestion_harness import register

    world = SandboxWorld([AccountSpec(BIG, "facebookfordevelopers", followers=64_363, posts=3,
                                      demographics_withheld=True),
                          AccountSpec(TINY, "tiny_studio", followers=40, posts=3)], seed=5, now=NOW)
    with SandboxServer(world) as server:
        register(engine, world)
        _sync(engine, world, server, "v24.0")
    with engine.connect() as conn:
        reasons = dict(conn.execute(sa.text(
            "SELECT ig_user_id, string_agg(DISTINCT reason, ' | ') FROM instagram.audience_demographics_status"
            " GROUP BY ig_user_id")).all())
    assert "under 100" not in reasons[BIG] and "although the account has" in reasons[BIG]
    assert "under 100 followers (this one has 40)" in reasons[TINY]
    note = _report(engine, BIG)["audience"]["note"]
    assert note.startswith("Not available: Meta returned no") and "under 100" not in note
    assert "at least 100 followers" in _report(engine, TINY)["audience"]["note"]
