"""`./dev demo --no-ui` as a new user runs it: no DATABASE_URL, so the embedded PostgreSQL under a fresh
IG_ANALYTICS_HOME; the sandbox, the three demo accounts, a sync through Dagster, the reports. Afterwards the
embedded server is stopped and its cluster removed, and nothing of it may remain."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from ig_analytics.local.embedded_db import process_alive
from ig_analytics.sandbox import SandboxWorld
from ig_analytics_tests.new_user import NewUser

pytestmark = pytest.mark.slow


def test_demo_on_the_embedded_server_then_stop_and_remove_it(monkeypatch):
    user = NewUser(monkeypatch, "demo")
    demo = SandboxWorld.demo()  # the same deterministic accounts the demo serves
    postmaster = None
    try:
        result = user.run("demo", "--no-ui", "--days", "3", timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        ok_lines = [line for line in result.stdout.splitlines() if line.startswith("OK ")]
        assert sorted(line.split()[1] for line in ok_lines) == sorted(a.ig_user_id for a in demo.accounts), result.stdout
        for a in demo.accounts:
            assert a.token not in result.stdout + result.stderr

        status = user.ok("db", "status").stdout
        postmaster = int(re.search(r"pid (\d+)", status).group(1))
        assert str(user.cluster_root) in status  # the embedded server, in the new user's home

        yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
        with user.engine.connect() as conn:
            def q(sql):
                return conn.execute(sa.text(sql)).all()

            assert sorted(q("SELECT ig_user_id, username, timezone, status FROM instagram.accounts")) == sorted(
                (a.ig_user_id, a.username, a.timezone, "active") for a in demo.accounts)
            days = {a.ig_user_id: [yesterday - timedelta(days=2), yesterday - timedelta(days=1), yesterday]
                    for a in demo.accounts}
            stored = {}
            for ig_user_id, day in q("SELECT ig_user_id, date FROM instagram.account_insights_daily ORDER BY 1, 2"):
                stored.setdefault(ig_user_id, []).append(day)
            assert stored == days
            # every post the demo accounts published in the media window has a snapshot and engagement
            since = datetime.now(timezone.utc) - timedelta(days=29)
            posted = {a.ig_user_id: len([m for m in a.posts if m.published_at >= since]) for a in demo.accounts}
            engaged = dict(conn.execute(sa.text(
                "SELECT e.ig_user_id, count(*) FROM instagram.media_engagement e JOIN instagram.media m USING (media_id)"
                " WHERE m.media_product_type <> 'STORY' AND m.published_at >= :since GROUP BY 1"), {"since": since}).all())
            assert engaged == posted
            reports = q("SELECT ig_user_id, html_path FROM instagram.performance_reports WHERE html_path IS NOT NULL")
            # two competitors per demo account, captured, and in the newest report ("You vs competitors")
            assert sorted(q("SELECT ig_user_id, count(*) FROM instagram.competitors WHERE status = 'active' "
                            "GROUP BY 1")) == sorted((a.ig_user_id, 2) for a in demo.accounts)
            newest = q("SELECT DISTINCT ON (ig_user_id) report -> 'competitors', html_path FROM "
                       "instagram.performance_reports WHERE kind = 'rolling_7d' ORDER BY ig_user_id, period_end DESC")
            assert len(newest) == 3 and all(len(section["subjects"]) == 3 for section, _ in newest)
            assert all("You vs competitors" in open(path).read() for _, path in newest)
            # the demo captures comments and tagged posts too, and its newest reports show them (issue 25)
            captured = dict(q("SELECT 'comments', count(*) FROM instagram.media_comments UNION ALL"
                              " SELECT 'tagged', count(*) FROM instagram.tagged_media"))
            latest = q("SELECT html_path FROM instagram.performance_reports WHERE html_path IS NOT NULL"
                       " ORDER BY period_end DESC, ig_user_id DESC LIMIT 1")[0][0]
        assert captured["comments"] > 0 and captured["tagged"] > 0
        assert all(f"<h2>{title}</h2>" in open(latest).read()
                   for title in ("Conversation", "Posts that tagged you", "Hashtags"))
        assert {r[0] for r in reports} == {a.ig_user_id for a in demo.accounts}  # every account has its report(s)
        assert all(path.startswith(str(user.home)) and open(path).read().lstrip().lower().startswith("<!doctype html")
                   for _, path in reports)
    finally:
        user.destroy()
    # stopped and removed: no postmaster, no home, no cluster folder (inside or outside the home)
    assert postmaster is not None and not process_alive(postmaster)
    assert not user.home.exists() and not user.cluster_root.exists()
