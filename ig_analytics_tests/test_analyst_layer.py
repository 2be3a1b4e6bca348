"""The analysts' layer on a synced demo: every recipe of docs/analyst-recipes.md runs and returns rows with its
documented columns, and the wide views equal an independent join of the base tables (computed here in Python:
time zones by zoneinfo, the newest snapshot by sorting, hashtags and trending from their own tables)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from ig_analytics.cli.sync_command import run_sync
from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics.storage import db
from ig_analytics_tests.ingestion_harness import register

pytestmark = pytest.mark.slow

RECIPES = Path(__file__).resolve().parents[1] / "docs" / "analyst-recipes.md"
RECIPE = re.compile(r"^### (\d+)\. (.+?)\nColumns: (.+?)\n\n```sql\n(.+?)```", re.M | re.S)


def recipes() -> list[tuple[str, list[str], str]]:
    found = [(f"{n}. {title}", re.findall(r"`(\w+)`", columns), sql)
             for n, title, columns, sql in RECIPE.findall(RECIPES.read_text())]
    assert len(found) >= 12, "docs/analyst-recipes.md: every recipe is '### N. title', 'Columns: ...', a sql block"
    return found


@pytest.fixture(scope="module")
def synced(pg_url, tmp_path_factory):
    """The demo's accounts after a full first sync (30 days of posts, 90 of account insights, audience)."""
    home = tmp_path_factory.mktemp("analyst") / "home"
    home.mkdir()
    engine = db.get_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS instagram CASCADE"))
    db.migrate(engine)
    world = SandboxWorld.demo(now=datetime.now(timezone.utc))
    with pytest.MonkeyPatch.context() as mp, SandboxServer(world, port=0) as server:
        mp.setenv("IG_ANALYTICS_HOME", str(home))
        mp.setenv("DATABASE_URL", pg_url)
        mp.delenv("IG_NOTIFY_WEBHOOK_URL", raising=False)
        for name in ("DAGSTER_HOME", "IG_ANALYTICS_DAGSTER_PG_URL"):
            mp.setenv(name, "unset")
            mp.delenv(name)
        mp.setenv("IG_GRAPH_API_URL", server.base_url)
        register(engine, world)
        report = run_sync([a.ig_user_id for a in world.accounts], "full", None, None)
        assert report.exit_code == 0, [line.render() for line in report.lines] + report.run_errors
        yield engine


@pytest.mark.parametrize("title, columns, sql", recipes(), ids=[r[0][:40] for r in recipes()])
def test_every_recipe_returns_rows_with_its_documented_columns(synced, title, columns, sql):
    with synced.connect() as conn:
        result = conn.execute(sa.text(sql))
        rows = result.all()
    assert list(result.keys()) == columns, title
    assert rows, f"recipe {title} returned no row on the demo"


def test_the_posts_view_equals_an_independent_join_of_the_base_tables(synced):
    def table(conn, sql):
        return [dict(r._mapping) for r in conn.execute(sa.text(sql))]

    with synced.connect() as conn:
        view = {r["media_id"]: r for r in table(conn, "SELECT * FROM instagram.posts")}
        media = table(conn, "SELECT media_id, ig_user_id, published_at FROM instagram.media")
        accounts = {r["ig_user_id"]: r for r in table(conn, "SELECT ig_user_id, username, timezone FROM instagram.accounts")}
        snaps = table(conn, "SELECT media_id, captured_at, reach, likes FROM instagram.media_insights_snapshots")
        rates = {r["media_id"]: r for r in table(conn, "SELECT media_id, engagement_rate_reach FROM instagram.media_engagement")}
        tags = table(conn, "SELECT media_id, hashtag FROM instagram.media_hashtags")
        trending = table(conn, "SELECT media_id, as_of FROM instagram.trending_posts")
    assert set(view) == {m["media_id"] for m in media} and len(view) > 50
    for m in media:
        got, account = view[m["media_id"]], accounts[m["ig_user_id"]]
        mine = sorted((s for s in snaps if s["media_id"] == m["media_id"]), key=lambda s: s["captured_at"])
        expected = {
            "username": account["username"],
            "published_local": m["published_at"].astimezone(ZoneInfo(account["timezone"])).replace(tzinfo=None),
            "reach": mine[-1]["reach"] if mine else None,
            "likes": mine[-1]["likes"] if mine else None,
            "snapshots": len(mine),
            "engagement_rate_reach": rates.get(m["media_id"], {}).get("engagement_rate_reach"),
            "hashtags": sorted(t["hashtag"] for t in tags if t["media_id"] == m["media_id"]),
            "trended": any(t["media_id"] == m["media_id"] for t in trending),
        }
        assert {k: got[k] for k in expected} == expected, m["media_id"]


def test_the_account_days_view_counts_posts_by_the_accounts_local_day(synced):
    with synced.connect() as conn:
        view = {(r.ig_user_id, r.date): (r.posts, r.stories) for r in conn.execute(sa.text(
            "SELECT ig_user_id, date, posts, stories FROM instagram.account_days"))}
        media = conn.execute(sa.text(
            "SELECT m.ig_user_id, a.timezone, m.published_at, m.media_product_type FROM instagram.media m"
            " JOIN instagram.accounts a USING (ig_user_id)")).all()
    counted: dict = {}
    for ig_user_id, tz, published_at, product in media:
        key = (ig_user_id, published_at.astimezone(ZoneInfo(tz)).date())
        posts, stories = counted.get(key, (0, 0))
        counted[key] = (posts, stories + 1) if product == "STORY" else (posts + 1, stories)
    assert sum(p for p, _ in view.values()) > 20
    for key, value in view.items():
        assert value == counted.get(key, (0, 0)), key
