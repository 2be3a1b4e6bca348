"""`ig-analytics demo`: the whole product on one machine, with nothing to configure.

Embedded PostgreSQL (unless DATABASE_URL is set), the sandbox Graph API in this process, its three demo accounts
registered, a backfill of the last N days through Dagster (with the daily and weekly reports of those days), then the Dagster UI (webserver + daemon) whose
schedules keep syncing from the sandbox until Ctrl-C.
"""

from __future__ import annotations

import os
from datetime import timedelta

from ig_analytics import clock
from ig_analytics.cli import runtime
from ig_analytics.cli.errors import say
from ig_analytics.settings import Settings


def run_demo(port: int = 3000, days: int = 30, start_ui: bool = True) -> int:
    from ig_analytics.accounts import repository as repo
    from ig_analytics.analytics.audience import audience_lines
    from ig_analytics.install_marker import ensure_marker
    from ig_analytics.sandbox import SandboxServer, SandboxWorld
    from ig_analytics.sandbox.competitors import DEMO_COMPETITORS
    from ig_analytics.storage import competitors
    from ig_analytics.storage import db
    from ig_analytics.cli.sync_command import run_sync
    from ig_analytics.accounts.token_vault import TokenVault

    world = SandboxWorld.demo()  # real time: the schedules of the UI keep finding fresh data
    server = SandboxServer(world, host="127.0.0.1", port=0)
    server.start()
    try:
        # Every process of this demo (this one, the webserver's code server, the daemon's runs) uses the sandbox.
        os.environ["IG_GRAPH_API_URL"] = server.base_url
        # A new demo home's partitions start where its data does: the days backfilled below, this hour.
        ensure_marker(Settings.from_env().home, clock.now(), history_days=days)
        settings = runtime.prepare(Settings.from_env())
        engine = db.get_engine(db.analytics_url(settings))
        vault = TokenVault.from_settings(settings)
        say(f"Sandbox Graph API: {server.base_url}")
        for account in world.accounts:
            repo.add_account(
                engine, vault, ig_user_id=account.ig_user_id, token=account.token, username=account.username,
                timezone_name=account.timezone,
                token_expires_at=clock.now() + timedelta(days=60),
            )
            say(f"Demo account {account.ig_user_id} (@{account.username}, {account.timezone})")
            rivals = DEMO_COMPETITORS.get(account.username, ())
            if rivals:
                competitors.add(engine, account.ig_user_id, list(rivals))
                say(f"  compared with {', '.join('@' + r for r in rivals)} (ig-analytics competitors list)")
        since = clock.now().date() - timedelta(days=days)
        say(f"Backfilling {days} days of account insights, capturing every recent post and writing the daily "
            "and weekly reports of those days ...")
        report = run_sync([a.ig_user_id for a in world.accounts], "full", since, None, every_report=True)
        for line in report.lines:
            say(line.render())
        for error in report.run_errors:
            say(f"ERROR {error}")
        for line in _trending_lines(engine):
            say(line)
        with engine.connect() as conn:  # the snapshot the sync took; the reports show it in full
            for line in audience_lines(conn):
                say(line)
        say(f"Analytics tables: {db.redact_url(db.analytics_url(settings)).replace('+psycopg2', '')} (schema instagram)")
        say(f"Reports: {settings.reports_dir}")
        if not start_ui:
            return report.exit_code
        return runtime.run_ui(settings, port=port)
    finally:
        server.stop()
        if Settings.from_env().uses_embedded_db:
            say("The embedded PostgreSQL keeps running for queries; stop it with: ig-analytics db stop")


def _trending_lines(engine) -> list[str]:
    """What the first sync found trending, per account (newest evaluation), labelled by method."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            """
            SELECT a.username, t.rank, t.media_id, t.method, t.engagement_rate
            FROM instagram.trending_posts t JOIN instagram.accounts a USING (ig_user_id)
            WHERE t.as_of = (SELECT max(as_of) FROM instagram.trending_posts x WHERE x.ig_user_id = t.ig_user_id)
              AND t.rank <= 3
            ORDER BY a.username, t.rank
            """
        )).all()
    return [f"Trending @{r.username} #{r.rank}: {r.media_id} ({r.method}"
            + (f", engagement rate {r.engagement_rate:.1f}%)" if r.engagement_rate is not None else ")") for r in rows]
