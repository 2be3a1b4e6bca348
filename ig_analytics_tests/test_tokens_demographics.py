"""`audience_demographics` end to end: 90 consecutive days of sandbox clock, one Dagster run per day, values equal
to the sandbox's own truth (age x gender crossed, its age and gender margins); an account under 100 followers is
"not available", not failed; a version that rejects a breakdown; an Instagram-Login account (no batch endpoint on
its host). Real PostgreSQL, HTTP, Dagster."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest
import sqlalchemy as sa

from ig_analytics.defs import audience_assets, ingestion_assets
from ig_analytics.defs.resources import AnalyticsDatabase, GraphApi
from ig_analytics.graph_api import GraphApiClient
from ig_analytics.graph_api.demographics import BREAKDOWNS, METRICS, fetch_demographics
from ig_analytics.sandbox import AccountSpec, SandboxServer, SandboxWorld
from ig_analytics.sandbox import demographics as sandbox_demographics
from ig_analytics.sandbox.demographics import AGES, GENDERS, truth
from ig_analytics.sandbox.tokens import registry
from ig_analytics_tests.ingestion_harness import register

pytestmark = pytest.mark.slow

FIRST_DAY = date(2026, 8, 1)
DAYS = 90
TINY = "17841400000000004"


def _taken_at(day: date) -> datetime:  # the schedule's time: 02:20 UTC the next day
    return datetime(day.year, day.month, day.day, 2, 20, tzinfo=timezone.utc) + timedelta(days=1)


def _world() -> SandboxWorld:
    specs = [
        AccountSpec("17841400000000001", "bakery", followers=850, posts=20),
        AccountSpec("17841400000000002", "gym", followers=24_300, timezone="America/New_York", posts=30),
        AccountSpec("17841400000000003", "streetwear", followers=312_000, timezone="Asia/Tokyo", posts=30),
        AccountSpec(TINY, "tiny_studio", followers=40, posts=5),
    ]
    return SandboxWorld(specs, seed=5, now=_taken_at(FIRST_DAY))


@pytest.fixture()
def sandbox(engine, ig_home, monkeypatch):
    world = _world()
    server = SandboxServer(world).start()
    monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
    try:
        yield world, server
    finally:
        server.stop()


def _materialize(day: date, instance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [ingestion_assets.ACCOUNTS, audience_assets.audience_demographics],
        selection=[audience_assets.audience_demographics], instance=instance, partition_key=day.isoformat(),
        resources={"database": AnalyticsDatabase(), "graph_api": GraphApi(backoff_base_s=0.01)},
        run_config={"ops": {"audience_demographics": {"config": {"max_snapshot_lag_days": None}}}},
        raise_on_error=False,
    )


def _stored(engine) -> dict:
    out: dict = defaultdict(dict)
    with engine.connect() as conn:
        for r in conn.execute(sa.text("SELECT ig_user_id, date, metric, breakdown, key, value, timeframe"
                                      " FROM instagram.audience_pictures")):
            out[(r.ig_user_id, r.date, r.metric, r.breakdown, r.timeframe)][r.key] = r.value
    return out


def _expected(acct, metric: str, timeframe: str | None, at: datetime) -> dict[str, dict[str, int]] | None:
    """breakdown -> key -> value as stored: the sandbox's answers, the crossed one keyed "age|gender", and age and
    gender as the crossed picture's margins (sums over the other dimension)."""
    crossed = truth(acct, metric, "age,gender", timeframe, at)
    if crossed is None:
        return None
    out = {b: truth(acct, metric, b, timeframe, at) for b in ("country", "city")}
    out["age,gender"] = {f"{a}|{g}": v for (a, g), v in crossed.items()}
    out["age"] = {a: s for a in AGES if (s := sum(v for (x, _), v in crossed.items() if x == a))}
    out["gender"] = {g: s for g in GENDERS if (s := sum(v for (_, y), v in crossed.items() if y == g))}
    # independently: the margins are what the API answers for age and gender alone, up to its rounding down of
    # each cell (at most 3 cells per age, 7 per gender); 21 cells: the top-45 cut drops none
    for b, cells in (("age", len(GENDERS)), ("gender", len(AGES))):
        alone = truth(acct, metric, b, timeframe, at)
        assert set(alone) == set(out[b]) and all(0 <= out[b][k] - alone[k] + cells - 1 < cells for k in alone)
    return out


def test_90_days_of_snapshots_equal_the_sandbox_truth(sandbox, engine):
    world, server = sandbox
    register(engine, world)
    started = time.monotonic()
    with dg.instance_for_test() as instance:
        for i in range(DAYS):
            day = FIRST_DAY + timedelta(days=i)
            world.clock.set(_taken_at(day))
            result = _materialize(day, instance)
            assert result.success, day
            checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
            assert checks == {"accounts_synced": True, "audience_demographics_valid": True}, (day, checks)
        rerun = _materialize(FIRST_DAY + timedelta(days=DAYS - 1), instance)  # same day again: no duplicates
        assert rerun.success
    print(f"{DAYS} daily audience_demographics runs of 4 accounts: {time.monotonic() - started:.1f} s")

    stored = _stored(engine)
    expected = {}
    for i in range(DAYS):
        day = FIRST_DAY + timedelta(days=i)
        for acct in world.accounts:
            for metric in METRICS:
                timeframe = "this_month" if metric == "engaged_audience_demographics" else None
                for breakdown, values in (_expected(acct, metric, timeframe, _taken_at(day)) or {}).items():
                    expected[(acct.ig_user_id, day, metric, breakdown, timeframe)] = values
    assert len(expected) == DAYS * 3 * len(METRICS) * len(BREAKDOWNS)  # the tiny account never has a picture
    assert dict(stored) == expected
    with engine.connect() as conn:
        per_day = conn.execute(sa.text("SELECT ig_user_id, count(DISTINCT date) FROM instagram.audience_demographics"
                                       " GROUP BY 1 ORDER BY 1")).all()
        tiny = conn.execute(sa.text("SELECT status, count(*), count(DISTINCT date) FROM"
                                    " instagram.audience_demographics_status WHERE ig_user_id = :i GROUP BY 1"),
                            {"i": TINY}).all()
        failed = conn.execute(sa.text("SELECT count(*) FROM instagram.sync_runs WHERE sync_type = 'demographics'"
                                      " AND status <> 'success'")).scalar()
    assert [tuple(r) for r in per_day] == [(a.ig_user_id, DAYS) for a in world.accounts[:3]]
    assert [tuple(r) for r in tiny] == [("not_available", DAYS * len(METRICS) * len(BREAKDOWNS), DAYS)]
    assert failed == 0


def test_a_rejected_breakdown_is_recorded_and_the_rest_kept(sandbox):
    world, server = sandbox
    acct = world.accounts[2]
    old = GraphApiClient(base_url=server.base_url, version="v19.0")
    results = {(r.metric, r.breakdown): r for r in fetch_demographics(old.account(acct.ig_user_id, acct.token))}
    rejected = results[("engaged_audience_demographics", "city")]
    assert rejected.status == "rejected" and "city is not supported" in rejected.reason
    assert all(r.status == "ok" for key, r in results.items() if key != ("engaged_audience_demographics", "city"))


def test_instagram_login_accounts_call_one_by_one_and_batch_otherwise(sandbox):
    world, server = sandbox
    acct = world.accounts[1]
    client = GraphApiClient(base_url=server.base_url, version="v25.0")
    server.reset_log()
    fetch_demographics(client.account(acct.ig_user_id, acct.token, "facebook"))
    assert [r.path for r in server.request_log if not r.batch_item] == ["/"]  # one batch POST of 6 items
    assert sorted(r.params["breakdown"] for r in server.request_log if r.batch_item) == [
        "age,gender", "age,gender", "city", "city", "country", "country"]
    token = registry(world).issue_instagram_login(acct.ig_user_id, age=timedelta(days=2))
    server.reset_log()
    results = fetch_demographics(client.account(acct.ig_user_id, token, "instagram"))
    assert len(server.request_log) == 6 and all(not r.batch_item for r in server.request_log)
    now = world.clock.now()
    assert len(results) == len(METRICS) * len(BREAKDOWNS)
    for r in results:
        assert r.values == _expected(acct, r.metric, r.timeframe, now)[r.breakdown]


def test_a_version_without_the_crossed_breakdown_gets_age_and_gender_alone(sandbox, monkeypatch):
    world, server = sandbox
    acct = world.accounts[1]

    def refuse(asked: str):
        if "," in asked:
            raise sandbox_demographics.errors.param(f"(#100) Incompatible breakdowns: {asked}")
        return asked, (asked,)

    monkeypatch.setattr(sandbox_demographics, "_breakdown", refuse)
    client = GraphApiClient(base_url=server.base_url, version="v25.0")
    server.reset_log()
    results = {(r.metric, r.breakdown): r for r in fetch_demographics(client.account(acct.ig_user_id, acct.token))}
    assert len([r for r in server.request_log if not r.batch_item]) == 2  # the 6 calls, then age and gender x 2
    now = world.clock.now()
    for metric in METRICS:
        assert results[(metric, "age,gender")].status == "rejected"
        for b in ("age", "gender", "country", "city"):
            timeframe = "this_month" if metric == "engaged_audience_demographics" else None
            assert results[(metric, b)].values == truth(acct, metric, b, timeframe, now)


def test_the_asset_syncs_an_instagram_login_account_without_batches(sandbox, engine, ig_home):
    from ig_analytics.accounts import repository as repo
    from ig_analytics.settings import Settings
    from ig_analytics.accounts.token_vault import TokenVault

    world, server = sandbox
    acct = world.accounts[1]
    token = registry(world).issue_instagram_login(acct.ig_user_id, age=timedelta(days=2))
    repo.add_account(engine, TokenVault.from_settings(Settings.from_env()), ig_user_id=acct.ig_user_id,
                     token=token, login_kind="instagram")
    server.reset_log()
    with dg.instance_for_test() as instance:
        assert _materialize(FIRST_DAY, instance).success
    assert server.request_log and not any(r.batch_item or r.path == "/" for r in server.request_log)
    assert registry(world).uses(token) == 7  # the profile + 6 pictures, each its own call


def test_a_day_in_the_past_is_not_marked_filled(sandbox, engine):
    world, server = sandbox
    register(engine, world)
    old = datetime.now(timezone.utc).date() - timedelta(days=10)  # the guard compares with the real clock
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [ingestion_assets.ACCOUNTS, audience_assets.audience_demographics],
            selection=[audience_assets.audience_demographics], instance=instance, partition_key=old.isoformat(),
            resources={"database": AnalyticsDatabase(), "graph_api": GraphApi(backoff_base_s=0.01)},
            raise_on_error=False)
        assert result.success  # not a failure: nothing could be captured
        assert instance.get_materialized_partitions(dg.AssetKey("audience_demographics")) == set()
    assert not server.request_log  # and not one call spent


def test_the_check_holds_for_the_crossed_breakdown_and_catches_it_overflowing(sandbox, engine):
    world, server = sandbox
    register(engine, world)
    acct = world.accounts[1]
    day = FIRST_DAY
    world.clock.set(_taken_at(day))
    client = GraphApiClient(base_url=server.base_url, version="v25.0", now=world.clock.now)
    from ig_analytics.ingestion.demographics import sync_audience_demographics

    sync_audience_demographics(engine, client.account(acct.ig_user_id, acct.token), acct.ig_user_id, day,
                               client.version, world.clock.now())
    with engine.connect() as conn:
        assert audience_assets.demographics_validity(conn, day).passed
    with engine.begin() as conn:  # one crossed cell now exceeds the follower total on its own
        conn.execute(sa.text("UPDATE instagram.audience_age_gender SET value = value + :n WHERE ig_user_id = :i"
                             " AND date = :d AND metric = 'follower_demographics' AND age = '18-24'"
                             " AND gender = 'F'"), {"n": acct.followers_at(world.clock.now()), "i": acct.ig_user_id,
                                                    "d": day})
    with engine.connect() as conn:
        check = audience_assets.demographics_validity(conn, day)
    assert not check.passed
    assert [r["breakdown"] for r in check.metadata["above_follower_total"].value] == ["age,gender"]
