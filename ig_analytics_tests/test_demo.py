"""`ig-analytics demo --no-ui`: the README's run command without the UI — sandbox, demo accounts, a sync."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.slow


def test_demo_syncs_three_accounts_and_builds_reports(engine, ig_home, pg_url):
    env = dict(os.environ, IG_ANALYTICS_HOME=str(ig_home), DATABASE_URL=pg_url)
    env.pop("DAGSTER_HOME", None)
    env.pop("IG_GRAPH_API_URL", None)
    result = subprocess.run([sys.executable, "-m", "ig_analytics.cli", "demo", "--no-ui", "--days", "5"],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("\nOK ") + result.stdout.startswith("OK ") == 3, result.stdout
    with engine.connect() as conn:
        accounts = conn.execute(sa.text("SELECT count(*) FROM instagram.accounts WHERE status = 'active'")).scalar()
        days = conn.execute(sa.text("SELECT count(DISTINCT date) FROM instagram.account_insights_daily")).scalar()
        snapshots = conn.execute(sa.text("SELECT count(*) FROM instagram.media_insights_snapshots")).scalar()
        reports = conn.execute(sa.text("SELECT count(*) FROM instagram.performance_reports WHERE html_path IS NOT NULL")).scalar()
    assert accounts == 3 and days == 5 and snapshots > 50 and reports == 3
    assert len(list((ig_home / "reports").rglob("*.html"))) == 3
