"""Usage mistakes exit 2 with a one-line message; --help lists only working commands."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "ig_analytics.cli.main", *args], env=env, capture_output=True,
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
        [sys.executable, "-m", "ig_analytics.cli.main", "accounts", "add", "--ig-user-id", "17841400000000042",
         "--token", "-", "--username", "shop", "--no-verify"],
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

    from ig_analytics.accounts import repository as accounts
    from ig_analytics.settings import Settings
    from ig_analytics.accounts.token_vault import TokenVault

    creds, problems = accounts.active_credentials(engine, TokenVault.from_settings(Settings.from_env()))
    assert problems == {} and creds[0].token == token and token not in repr(creds[0])


def test_accounts_add_verifies_the_token_against_the_api(ig_home, engine):
    from ig_analytics.sandbox import AccountSpec, SandboxServer, SandboxWorld

    world = SandboxWorld([AccountSpec("17841400000000001", "good_shop", followers=1200),
                          AccountSpec("17841400000000002", "stale_shop", expired_token=True)], seed=2)
    good, stale = world.accounts
    with SandboxServer(world, port=0) as server:
        api = {"IG_GRAPH_API_URL": server.base_url}
        ok = _cli("accounts", "add", "--ig-user-id", good.ig_user_id, "--token", good.token, env_extra=api)
        rejected = _cli("accounts", "add", "--ig-user-id", stale.ig_user_id, "--token", stale.token, env_extra=api)
    unreachable = _cli("accounts", "add", "--ig-user-id", good.ig_user_id, "--token", good.token,
                       env_extra={"IG_GRAPH_API_URL": "http://127.0.0.1:9"})
    assert ok.returncode == 0 and "@good_shop" in ok.stdout, ok.stderr
    assert rejected.returncode == 1 and "was not stored" in rejected.stderr and "accounts add" in rejected.stderr
    assert unreachable.returncode == 1 and "--no-verify" in unreachable.stderr
    for result in (ok, rejected, unreachable):
        assert good.token not in result.stdout + result.stderr and stale.token not in result.stdout + result.stderr
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT ig_user_id, username FROM instagram.accounts")).all()
    assert [tuple(r) for r in rows] == [(good.ig_user_id, "good_shop")]  # username from the profile


def test_another_accounts_token_gets_a_hint_about_the_id_not_the_api_version(ig_home, engine):
    """Issue 11 row 13: code 100 subcode 33 blamed the API version."""
    from ig_analytics.sandbox import AccountSpec, SandboxServer, SandboxWorld

    world = SandboxWorld([AccountSpec("17841400000000001", "shop_one"), AccountSpec("17841400000000002", "shop_two")],
                         seed=4)
    one, two = world.accounts
    with SandboxServer(world, port=0) as server:
        result = _cli("accounts", "add", "--ig-user-id", one.ig_user_id, "--token", two.token,
                      env_extra={"IG_GRAPH_API_URL": server.base_url})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "code 100/33" in lines[0] and f"cannot see account {one.ig_user_id}" in lines[0]
    assert "token belongs to another account" in lines[0] and "API version" not in lines[0]
    assert two.token not in result.stdout + result.stderr


def test_stored_fields_with_control_characters_print_on_one_line_each(ig_home, engine):
    """Issue 11 row 9: a username with a newline (or 10,000 characters) split and swamped the output."""
    import sqlalchemy as sa

    evil = "evil\nFAKE LINE\x1b[31m" + "x" * 10_000
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO instagram.accounts (ig_user_id, username, status, status_reason)"
                             " VALUES ('17841400000000077', :u, 'needs_reauth', :r)"), {"u": evil, "r": "bad\r\ntoken"})
        conn.execute(sa.text("INSERT INTO instagram.sync_runs (dagster_run_id, ig_user_id, sync_type, started_at,"
                             " finished_at, status, error) VALUES ('r1', '17841400000000077', 'account', now(), now(),"
                             " 'failed', :e)"), {"e": "boom\nFAKE ERROR LINE"})
    listed = _cli("accounts", "list")
    status = _cli("status")
    assert listed.returncode == 0 and status.returncode == 0, listed.stderr + status.stderr
    assert len(listed.stdout.splitlines()) == 2  # header + the account
    assert len(status.stdout.splitlines()) == 5  # name/status, 3 detail lines, 1 error
    for out in (listed.stdout, status.stdout):
        assert "\x1b" not in out and "\r" not in out and "evil\\x0aFAKE LINE\\x1b[31m" in out
        assert max(len(line) for line in out.splitlines()) < 1000
        assert not any(line.startswith("FAKE") for line in out.splitlines())


def test_sync_lines_escape_every_field():
    from ig_analytics.cli.sync_command import AccountLine

    line = AccountLine("17841400000000001", "evil\nOK   fake\x1b[0m" + "y" * 5000,
                       {"account": ("failed", "failed, 0 rows, 1 calls (boom\r\nFAIL injected)")})
    text = line.render()
    assert "\n" not in text and "\r" not in text and "\x1b" not in text
    assert text.startswith("FAIL 17841400000000001 (@evil\\x0aOK   fake\\x1b[0m") and len(text) < 700


@pytest.mark.parametrize("content", ["{not json", '{"daily_start": "yesterday"}'])
def test_a_damaged_install_marker_is_one_line_that_says_how_to_repair_it(ig_home, content):
    (ig_home / "install.json").write_text(content)
    result = _cli("status")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and lines[0].startswith("ig-analytics: "), result.stderr
    assert "install.json" in lines[0] and "restore it from a backup" in lines[0]
    assert "Error:" not in lines[0]  # our own error: no exception class name


def test_an_analyst_module_that_does_not_import_is_a_one_line_setting_error(ig_home):
    result = _cli("sync", "--type", "account", env_extra={"IG_ANALYTICS_USER_MODULES": "no_such_module_xyz"})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "IG_ANALYTICS_USER_MODULES" in lines[0] and "PYTHONPATH" in lines[0]
    assert "UserModuleError" not in lines[0]


def _stderr_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_ui_on_a_busy_port_is_one_line(ig_home, log_format):
    """Issue 28 row 12: it was 48 lines of gRPC _InactiveRpcError, and 2 lines that were not JSON."""
    import json
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _cli("ui", "--port", str(port), env_extra={"IG_ANALYTICS_LOG_FORMAT": log_format})
    lines = _stderr_lines(result)
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert f"Port {port} on 127.0.0.1 is already in use" in lines[0] and "--port" in lines[0]
    if log_format == "json":
        assert json.loads(lines[0])["exit_code"] == 1


def test_database_url_of_the_read_only_role_is_a_setting_error(ig_home, engine, pg_server):
    """Issue 28 row 13: it was a raw `InternalError: (psycopg2.errors.ReadOnlySqlTransaction)`, exit 1."""
    from ig_analytics.local.embedded_db import ANALYTICS_DB

    reader = pg_server.url(ANALYTICS_DB, read_only=True)
    result = _cli("accounts", "list", env_extra={"DATABASE_URL": reader})
    lines = _stderr_lines(result)
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "DATABASE_URL connects as role 'ig_analytics_reader', which cannot write" in lines[0]
    assert "psycopg2" not in lines[0] and "InternalError" not in lines[0]
    assert reader.split(":")[2].split("@")[0] not in result.stderr  # never the password


@pytest.mark.slow
def test_the_code_server_moves_to_another_port_when_its_port_was_taken_meanwhile(ig_home, monkeypatch):
    """The port the kernel gave out is bound by someone else before the code server binds it (a race no probe
    can close): `ui` starts the code server on the next port instead of failing."""
    import socket

    from ig_analytics.cli import runtime

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1], runtime._free_port("127.0.0.1")])  # noqa: SLF001
        monkeypatch.setattr(runtime, "_free_port", lambda host: next(ports))
        children = runtime.ChildProcesses()
        try:
            port = runtime._start_code_server(children, dict(os.environ), ["--log-format", "colored"])  # noqa: SLF001
            assert port != taken.getsockname()[1]
            assert len(children.procs) == 1 and children.first_exited() is None  # the failed one is not watched
        finally:
            children.stop()
