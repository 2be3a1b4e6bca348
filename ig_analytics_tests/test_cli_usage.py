"""Usage mistakes exit 2 with a one-line message; --help lists only working commands."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "ig_analytics.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(
    "args",
    [
        ["no-such-command"],
        ["sync", "--type", "bogus"],
        ["sync", "--since", "2026-13-01"],
        ["accounts", "add", "--ig-user-id", "123"],  # missing --token
        ["report", "--account", "1", "--days", "0"],
    ],
)
def test_usage_errors_exit_2_with_one_line(args):
    result = _cli(*args)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ig-analytics:"), result.stderr


def test_help_lists_the_contract_commands():
    result = _cli("--help")
    assert result.returncode == 0
    for command in ("db", "accounts", "sync", "sandbox", "demo", "ui", "report", "status"):
        assert f"  {command}" in result.stdout


def test_bad_timezone_is_a_usage_error(ig_home):
    result = _cli("accounts", "add", "--ig-user-id", "17841400000000001", "--token", "secret-token-value",
                  "--timezone", "Mars/Olympus")
    assert result.returncode == 2
    assert "IANA timezone" in result.stderr and "secret-token-value" not in result.stderr


def test_token_from_stdin_is_stored_encrypted_and_never_listed(ig_home, engine):
    token = "EAAGsecret-token-from-stdin-0123456789"
    added = subprocess.run(
        [sys.executable, "-m", "ig_analytics.cli", "accounts", "add", "--ig-user-id", "17841400000000042",
         "--token", "-", "--username", "shop"],
        input=token + "\n", capture_output=True, text=True, timeout=120,
    )
    assert added.returncode == 0, added.stderr
    listed = _cli("accounts", "list")
    assert listed.returncode == 0 and "17841400000000042" in listed.stdout
    assert token not in added.stdout + added.stderr + listed.stdout + listed.stderr
    import sqlalchemy as sa

    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT token_ciphertext FROM instagram.accounts")).scalar()
    assert token.encode() not in bytes(stored)

    from ig_analytics import accounts
    from ig_analytics.settings import Settings
    from ig_analytics.token_vault import TokenVault

    creds, problems = accounts.active_credentials(engine, TokenVault.from_settings(Settings.from_env()))
    assert problems == {} and creds[0].token == token and token not in repr(creds[0])
