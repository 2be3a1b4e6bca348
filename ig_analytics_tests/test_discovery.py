"""`accounts discover` and `accounts add` end to end: the CLI as a subprocess, the sandbox over HTTP, a real
PostgreSQL. Expected values come from the sandbox registry (which Pages link which accounts, which token each
Page has), never from our code."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics.sandbox.tokens import APP_ID, registry
from ig_analytics.settings import Settings
from ig_analytics.accounts.token_vault import TokenVault

pytestmark = pytest.mark.slow

SECRET = "sandbox-app-secret"
SMALL, MID, BIG = "17841400000000001", "17841400000000002", "17841400000000003"


@pytest.fixture()
def cli(engine, ig_home, pg_url):
    world = SandboxWorld.demo(app_secret=SECRET)  # real time: the CLI reads the wall clock
    server = SandboxServer(world).start()
    env = dict(os.environ, IG_ANALYTICS_HOME=str(ig_home), DATABASE_URL=pg_url, IG_GRAPH_API_URL=server.base_url,
               IG_APP_ID=APP_ID, IG_APP_SECRET=SECRET)
    env.pop("DAGSTER_HOME", None)
    env.pop("IG_TOKEN_KEY", None)

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ig_analytics.cli.main", *args], env=env, input=stdin,
                              capture_output=True, text=True, timeout=120)

    try:
        yield run, world, server
    finally:
        server.stop()


def _accounts(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT ig_user_id, username, login_kind, facebook_page_name, token_ciphertext, updated_at, token_scopes"
            " FROM instagram.accounts")).all()
    return {r.ig_user_id: tuple(r) for r in rows}


def _vault(ig_home) -> TokenVault:
    return TokenVault.from_settings(Settings.from_env({"IG_ANALYTICS_HOME": str(ig_home)}))


def test_discovery_of_3_pages_adds_the_2_linked_accounts_once(cli, engine, ig_home):
    run, world, _ = cli
    reg = registry(world)
    user = reg.add_facebook_user([("Corner Bakery", SMALL), ("Family Blog", None), ("Tokyo Shop", BIG)])
    page_tokens = {p.ig_user_id: p.token for p in reg.pages_of(reg.lookup(user).user_id) if p.ig_user_id}

    dry = run("accounts", "discover", "--facebook-token", "-", "--dry-run", stdin=user + "\n")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("WOULD ADD") == 2 and _accounts(engine) == {}

    first = run("accounts", "discover", "--facebook-token", "-", stdin=user + "\n")
    assert first.returncode == 0, first.stderr
    assert "SKIPPED Page 'Family Blog'" in first.stdout and "2 added" in first.stdout
    rows = _accounts(engine)
    assert set(rows) == {SMALL, BIG}
    vault = _vault(ig_home)
    for ig_user_id, row in rows.items():
        assert row[1] == world.account(ig_user_id).username and row[2] == "facebook"
        assert vault.decrypt(row[4]) == page_tokens[ig_user_id]  # the Page's own token, stored encrypted
        assert "instagram_manage_insights" in row[6]  # scopes read with debug_token
    assert rows[BIG][3] == "Tokyo Shop"

    again = run("accounts", "discover", "--facebook-token", "-", stdin=user + "\n")
    assert again.returncode == 0, again.stderr
    assert "0 added, 2 already known" in again.stdout and again.stdout.count("EXISTS") == 2
    assert _accounts(engine) == rows  # nothing else changed: same tokens, same updated_at

    # a Page linked later is added; the others stay as they are
    user2 = reg.add_facebook_user([("Corner Bakery", SMALL), ("Gym", MID)])
    third = run("accounts", "discover", "--facebook-token", "-", stdin=user2 + "\n")
    assert "1 added, 1 already known" in third.stdout, third.stdout + third.stderr
    after = _accounts(engine)
    assert set(after) == {SMALL, MID, BIG} and after[SMALL] == rows[SMALL]

    listed = run("accounts", "list")
    assert listed.returncode == 0 and "facebook" in listed.stdout and "never" in listed.stdout
    for result in (dry, first, again, third, listed):
        for token in (user, user2, *page_tokens.values()):
            assert token not in result.stdout + result.stderr


def test_add_names_a_missing_instagram_manage_insights(cli, engine):
    run, world, _ = cli
    token = registry(world).issue("page", ig_user_id=MID, lifetime=None,
                                  scopes=["instagram_basic", "pages_read_engagement", "pages_show_list"])
    result = run("accounts", "add", "--ig-user-id", MID, "--token", "-", stdin=token + "\n")
    assert result.returncode == 0, result.stderr
    assert "Login kind: facebook (detected" in result.stdout
    assert "lacks instagram_manage_insights" in result.stderr
    with engine.connect() as conn:
        missing = conn.execute(sa.text("SELECT token_missing_scopes FROM instagram.accounts WHERE ig_user_id = :i"),
                               {"i": MID}).scalar()
    assert missing == ["instagram_manage_insights"]
    listed = run("accounts", "list")
    status = run("status")
    assert "lacks instagram_manage_insights" in listed.stdout and "lacks instagram_manage_insights" in status.stdout
    for out in (result, listed, status):
        assert token not in out.stdout + out.stderr


def test_add_detects_instagram_login_and_stores_the_real_expiry(cli, engine):
    run, world, _ = cli
    reg = registry(world)
    token = reg.issue_instagram_login(SMALL)
    result = run("accounts", "add", "--ig-user-id", SMALL, "--token", "-", stdin=token + "\n")
    assert result.returncode == 0, result.stderr
    assert "Login kind: instagram (detected: the token starts with IG" in result.stdout
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT login_kind, token_expires_at, token_missing_scopes FROM instagram.accounts"
                                   " WHERE ig_user_id = :i"), {"i": SMALL}).one()
    assert row.login_kind == "instagram" and row.token_missing_scopes == []
    assert row.token_expires_at.replace(microsecond=0) == reg.lookup(token).expires_at.replace(microsecond=0)
    forced = run("accounts", "add", "--ig-user-id", MID, "--login", "facebook", "--token", "-",
                 stdin=world.account(MID).token + "\n")
    assert "Login kind: facebook (given with --login)" in forced.stdout, forced.stderr
