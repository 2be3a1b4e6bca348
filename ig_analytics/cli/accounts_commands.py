"""`ig-analytics accounts discover | refresh-tokens | check-tokens`, and what `accounts add` does after storing a
token (login kind, debug_token, missing permissions). Registered on the `accounts` group of cli/main.py. No command
prints a token."""

from __future__ import annotations

import sys

import click

from ig_analytics import clock
from ig_analytics.cli.common import CliError, ig_user_ids_param, load_settings, open_engine, require_registered
from ig_analytics.cli.errors import say
from ig_analytics.graph_api.tokens import detect_login_kind


def _ctx():
    from ig_analytics.accounts.token_vault import TokenVault

    settings = load_settings()
    return settings, open_engine(settings), TokenVault.from_settings(settings)


def read_token(value: str, what: str) -> str:
    """The token of option ``what`` ('-': the first line of standard input), checked at the door: a usage error
    naming the rule it breaks (graph_api/token_format), never the token."""
    from ig_analytics.graph_api.token_format import from_stdin_line, token_problem

    token = from_stdin_line(sys.stdin.readline()) if value == "-" else value
    if not token:
        raise click.UsageError(f"{what} is empty: pass the token, or '-' with the token on standard input "
                               f"(e.g. `... {what} - < file`)")
    problem = token_problem(token)
    if problem is not None:
        raise click.UsageError(f"{what}: {problem}")
    return token


def choose_login_kind(token: str, given: str | None) -> tuple[str, str]:
    """(kind, how it was chosen) for `accounts add`."""
    if given:
        return given, "given with --login"
    kind = detect_login_kind(token)
    why = "the token starts with IG" if kind == "instagram" else "the token does not start with IG"
    return kind, f"detected: {why}; override with --login"


def after_add(settings, engine, vault, ig_user_id: str, token: str, login_kind: str) -> None:
    """Read the token's expiry and scopes (with IG_APP_ID and IG_APP_SECRET) and name missing permissions."""
    from ig_analytics.graph_api.errors import GraphApiError
    from ig_analytics.accounts.token_lifecycle import describe_error, inspect_token, token_api

    api = token_api(settings)
    if not api.can_inspect:
        say("Token expiry and permissions not checked: set IG_APP_ID and IG_APP_SECRET to read them "
            "(debug_token).")
        return
    try:
        info = inspect_token(engine, api, ig_user_id, token, login_kind, clock.now())
    except GraphApiError as exc:
        say(f"WARNING: could not inspect the token ({describe_error(exc)}); the daily check retries.",
            err=True)
        return
    from ig_analytics.graph_api.tokens import missing_scopes

    expires = f"{info.expires_at:%Y-%m-%d %H:%M} UTC" if info.expires_at else "never"
    data_access = f"{info.data_access_expires_at:%Y-%m-%d}" if info.data_access_expires_at else "unknown"
    say(f"Token expires: {expires}; data access until {data_access}; scopes: {', '.join(info.scopes) or '-'}")
    if not info.is_valid:
        say(f"WARNING: Meta says this token is not valid ({info.error or 'expired or revoked'}): get a new "
            "one and run accounts add again.", err=True)
    missing = missing_scopes(login_kind, info.scopes)
    if missing:
        say(f"WARNING: the token lacks {', '.join(missing)}: syncs that need it will fail. Reconnect with a "
            f"token that grants {', '.join(missing)} and run accounts add again.", err=True)


def register_account_commands(accounts: click.Group) -> None:
    accounts.add_command(discover)
    accounts.add_command(refresh_tokens)
    accounts.add_command(check_tokens)


@click.command("discover")
@click.option("--facebook-token", required=True,
              help="A Facebook user or system-user token; '-' reads it from standard input (recommended).")
@click.option("--dry-run", is_flag=True, help="Only list what would be added.")
def discover(facebook_token: str, dry_run: bool) -> None:
    """Add every IG business/creator account linked to the user's Facebook Pages (each with its Page token)."""
    from ig_analytics.accounts.discovery import discover_accounts
    from ig_analytics.graph_api.errors import GraphApiError
    from ig_analytics.redaction import register_secret
    from ig_analytics.accounts.token_lifecycle import describe_error, token_api

    token = read_token(facebook_token, "--facebook-token")
    register_secret(token)
    settings, engine, vault = _ctx()
    try:
        result = discover_accounts(engine, vault, token_api(settings), token, dry_run=dry_run)
    except GraphApiError as exc:
        raise CliError(f"Could not list the Facebook user's Pages: {describe_error(exc)}. Check the token "
                           "(a user or system-user token with pages_show_list) and IG_GRAPH_API_URL.")
    for line in result.lines(dry_run):
        say(line)


@click.command("refresh-tokens")
@click.option("--account", "ig_user_ids", multiple=True, callback=ig_user_ids_param,
              help="Only this account (repeatable).")
def refresh_tokens(ig_user_ids: tuple[str, ...]) -> None:
    """Refresh the Instagram-Login tokens at least 24 h old (also done by the daily token_maintenance_job).
    Exit 1 when a refresh failed (the old token is kept)."""
    from ig_analytics.accounts.token_lifecycle import refresh_tokens as refresh, token_api

    settings, engine, vault = _ctx()
    require_registered(engine, ig_user_ids)
    results = refresh(engine, vault, token_api(settings), clock.now(), list(ig_user_ids) or None)
    if not results:
        say("No Instagram-Login token is due (they are refreshed once at least 24 h old).")
    for result in results:
        say(result.render())
    sys.exit(1 if any(not r.ok for r in results) else 0)


@click.command("check-tokens")
def check_tokens() -> None:
    """The daily token check now: refresh due Instagram-Login tokens, re-read every token's expiry and
    permissions (with IG_APP_ID and IG_APP_SECRET), send the expiry alerts. Exit 1 when something needs you."""
    from ig_analytics.alerts.notify import Notifier
    from ig_analytics.accounts.token_lifecycle import load_states, maintain_tokens, token_api

    settings, engine, vault = _ctx()
    api = token_api(settings)
    report = maintain_tokens(engine, vault, api, Notifier(engine, settings.notify_webhook_url))
    for result in report.refreshed:
        say(result.render())
    for ig_user_id, error in report.inspect_errors.items():
        say(f"CHECK FAILED {ig_user_id}: {error}")
    now = clock.now()
    attention = 0
    for state in load_states(engine).values():
        if state.status == "disabled":
            continue
        notes = state.notes(now)
        attention += bool(notes)
        say(f"{state.ig_user_id} ({state.login_kind} login): expires {state.expiry_text()}"
            + ("".join(f"\n  WARNING: {n}" for n in notes)))
    if not api.can_inspect:
        say("Expiry and permissions were not re-read: set IG_APP_ID and IG_APP_SECRET.")
    sys.exit(1 if attention or report.failed_refreshes or report.inspect_errors else 0)
