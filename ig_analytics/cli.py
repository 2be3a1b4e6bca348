"""The `ig-analytics` command line (docs/product.md). Usage errors exit 2 with one line; a command that ran but
found failures exits 1; success exits 0. No command ever prints an access token."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, timedelta, timezone

import click

from ig_analytics.settings import Settings


class CliError(click.ClickException):
    """A failure the user can act on: printed as one line, exit 1."""


def _settings() -> Settings:
    return Settings.from_env()


def _engine(settings: Settings | None = None, *, start: bool = True):
    from ig_analytics import runtime
    from ig_analytics.storage import db

    settings = settings or _settings()
    if start:
        url = runtime.ensure_database(settings)
    else:
        url = db.analytics_url(settings)
    return db.get_engine(url)


def _parse_day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.UsageError(f"{name} must be a date like 2026-01-31, not '{value}'")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Instagram business insights in PostgreSQL, orchestrated by Dagster."""


# ---- db -------------------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """The embedded PostgreSQL (used when DATABASE_URL is unset)."""


def _embedded():
    from ig_analytics.embedded_db import EmbeddedPostgres

    settings = _settings()
    if not settings.uses_embedded_db:
        raise CliError("DATABASE_URL is set, so the embedded PostgreSQL is not used; manage your server yourself.")
    return EmbeddedPostgres(settings.home)


@db.command("start")
def db_start() -> None:
    """Start the embedded server (idempotent) and create its databases and schema."""
    from ig_analytics import runtime

    server = _embedded()
    status = server.start()
    runtime.ensure_database(_settings())
    click.echo(f"PostgreSQL {status.describe()}")


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded server."""
    _embedded().stop()
    click.echo("PostgreSQL stopped")


@db.command("status")
def db_status() -> None:
    """Whether the embedded server runs, and where. Exit 1 when it is stopped."""
    status = _embedded().status()
    click.echo(f"PostgreSQL {status.describe()}")
    sys.exit(0 if status.running else 1)


@db.command("url")
@click.option("--dagster", is_flag=True, help="The URL of Dagster's storage database instead.")
@click.option("--sqlalchemy", is_flag=True, help="With the driver (postgresql+psycopg2://), as dagster.yaml wants it.")
def db_url(dagster: bool, sqlalchemy: bool) -> None:
    """Print the analytics database URL (for psql, BI tools); the password is hidden."""
    from ig_analytics.storage import db as storage

    settings = _settings()
    url = storage.redact_url(storage.dagster_storage_url(settings) if dagster else storage.analytics_url(settings))
    click.echo(url if sqlalchemy else url.replace("+psycopg2", ""))


# ---- accounts -------------------------------------------------------------------------------------------


@cli.group()
def accounts() -> None:
    """Connected Instagram business accounts."""


@accounts.command("add")
@click.option("--ig-user-id", required=True, help="The Instagram business account id (digits).")
@click.option("--token", required=True,
              help="A long-lived access token; stored encrypted, never printed. '-' reads it from standard input "
                   "(keeps it out of the process list and shell history).")
@click.option("--username", default=None)
@click.option("--timezone", "timezone_name", default=None, help="IANA timezone for best posting times (default UTC).")
@click.option("--token-expires-at", default=None, help="Token expiry date (YYYY-MM-DD), if known.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Read the account's profile with the token before storing it (one API call).")
def accounts_add(ig_user_id: str, token: str, username: str | None, timezone_name: str | None,
                 token_expires_at: str | None, verify: bool) -> None:
    """Register or update an account (re-activates one that needed re-authentication)."""
    from ig_analytics import accounts as repo
    from ig_analytics.token_vault import TokenVault

    if token == "-":
        token = sys.stdin.readline().strip()
    expires = _parse_day(token_expires_at, "--token-expires-at")
    expires_at = datetime.combine(expires, datetime.min.time(), timezone.utc) if expires else None
    settings = _settings()
    try:
        repo.validate_ig_user_id(ig_user_id)
        if timezone_name:
            repo.validate_timezone(timezone_name)
    except repo.AccountError as exc:
        raise click.UsageError(str(exc))
    if verify:
        profile = _verify_token(settings, ig_user_id, token)
        username = username or profile.username
        click.echo(f"Token works: @{profile.username or '?'}, {profile.followers_count if profile.followers_count is not None else '?'} followers")
    engine = _engine(settings)
    new = repo.add_account(
        engine, TokenVault.from_settings(settings), ig_user_id=ig_user_id, token=token, username=username,
        timezone_name=timezone_name, token_expires_at=expires_at,
    )
    click.echo(f"{'Added' if new else 'Updated'} account {ig_user_id}" + (f" (@{username})" if username else "") + ": active")


def _verify_token(settings: Settings, ig_user_id: str, token: str):
    """One profile read: a rejected token or missing permission is caught now, not at the next sync."""
    from ig_analytics.graph_api import GraphApiClient, GraphApiError, MalformedResponseError, TransientApiError
    from ig_analytics.redaction import redact

    client = GraphApiClient(base_url=settings.graph_api_url, version=settings.graph_api_version,
                            app_secret=settings.app_secret, max_attempts=2, backoff_base_s=0.5)
    try:
        return client.account(ig_user_id, token).profile()
    except (TransientApiError, MalformedResponseError, OSError) as exc:  # unreachable or broken: say where we tried
        raise CliError(
            f"Could not reach the Graph API at {settings.graph_api_url} to verify the token ({redact(str(exc))}). "
            "Check IG_GRAPH_API_URL and the network, or store it unchecked with --no-verify."
        )
    except GraphApiError as exc:  # rejected token, missing permission, unknown account
        raise CliError(f"{exc} The token was not stored.")


@accounts.command("list")
def accounts_list() -> None:
    """Accounts, their status and token expiry (tokens are never shown)."""
    from ig_analytics import accounts as repo

    rows = repo.list_accounts(_engine())
    if not rows:
        click.echo("No accounts. Add one with: ig-analytics accounts add --ig-user-id ID --token TOKEN")
        return
    click.echo(f"{'ig_user_id':<20} {'username':<20} {'status':<13} {'timezone':<20} {'followers':>10}  token expires")
    for row in rows:
        expires = row.token_expires_at.strftime("%Y-%m-%d") if row.token_expires_at else "unknown"
        warning = row.expiry_warning()
        click.echo(
            f"{row.ig_user_id:<20} {(row.username or '-'):<20} {row.status:<13} {row.timezone:<20} "
            f"{row.followers_total if row.followers_total is not None else '-':>10}  {expires}"
            + (f"  WARNING: {warning}" if warning else "")
            + (f"  ({row.status_reason})" if row.status != "active" and row.status_reason else "")
        )


@accounts.command("disable")
@click.argument("ig_user_id")
def accounts_disable(ig_user_id: str) -> None:
    """Stop syncing an account; its history stays."""
    from ig_analytics import accounts as repo

    try:
        repo.disable_account(_engine(), ig_user_id)
    except repo.AccountError as exc:
        raise CliError(str(exc))
    click.echo(f"Account {ig_user_id} disabled; its history is kept")


# ---- sync -----------------------------------------------------------------------------------------------


@cli.command()
@click.option("--account", "account_ids", multiple=True, help="Only this account (repeatable). Default: all active.")
@click.option("--type", "sync_type", type=click.Choice(["full", "account", "media"]), default="full", show_default=True)
@click.option("--since", default=None, help="First day of account insights (YYYY-MM-DD). Default: 90 days ago.")
@click.option("--until", default=None, help="Last day of account insights (YYYY-MM-DD). Default: yesterday.")
def sync(account_ids: tuple[str, ...], sync_type: str, since: str | None, until: str | None) -> None:
    """Sync now through Dagster (the runs show in the UI), then update the analytics."""
    from ig_analytics.sync_command import UsageError, run_sync

    try:
        report = run_sync(list(account_ids), sync_type, _parse_day(since, "--since"), _parse_day(until, "--until"))
    except UsageError as exc:
        raise click.UsageError(str(exc))
    for line in report.lines:
        click.echo(line.render())
    for error in report.run_errors:
        click.echo(f"ERROR {error}", err=True)
    if not report.lines:
        click.echo("No accounts to sync. Add one with: ig-analytics accounts add --ig-user-id ID --token TOKEN", err=True)
    sys.exit(report.exit_code)


# ---- report / status ------------------------------------------------------------------------------------


@cli.command()
@click.option("--account", "ig_user_id", required=True)
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 366))
def report(ig_user_id: str, days: int) -> None:
    """Build the performance report of the last N days (up to yesterday): print a summary and the HTML path."""
    from ig_analytics.analytics import reports

    settings = _settings()
    engine = _engine(settings)
    period_end = datetime.now(timezone.utc).date() - timedelta(days=1)
    with engine.begin() as conn:
        results = reports.write_reports(
            conn, period_end=period_end, days=days, kind="on_demand", reports_dir=settings.reports_dir,
            ig_user_ids=[ig_user_id],
        )
    if not results:
        raise CliError(f"No report for account {ig_user_id}: unknown account or no data. See: ig-analytics accounts list")
    result = results[0]
    click.echo(result.markdown)
    click.echo(f"\nHTML report: {result.html_path}")


@cli.command()
def status() -> None:
    """Per account: last successful sync, lag, token expiry, recent errors."""
    from ig_analytics.status import render_status

    click.echo(render_status(_engine()))


# ---- servers --------------------------------------------------------------------------------------------


@cli.command()
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--seed", default=7, show_default=True, type=int)
def sandbox(port: int, seed: int) -> None:
    """Serve the local Graph API sandbox (synthetic accounts); prints one JSON line per account."""
    from ig_analytics.sandbox.cli import serve_forever_cli

    serve_forever_cli(port=port, seed=seed)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Keep 127.0.0.1 unless a proxy guards the UI.")
@click.option("--port", default=3000, show_default=True, type=click.IntRange(1, 65535))
def ui(host: str, port: int) -> None:
    """Dagster's webserver and daemon (schedules, sensors, backfills) on this machine."""
    from ig_analytics import runtime

    settings = runtime.prepare()
    sys.exit(runtime.run_ui(settings, host=host, port=port))


@cli.command()
@click.option("--port", default=3000, show_default=True, type=click.IntRange(1, 65535), help="Dagster UI port.")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 90), help="Days to backfill.")
@click.option("--no-ui", is_flag=True, help="Stop after the backfill instead of starting the UI.")
def demo(port: int, days: int, no_ui: bool) -> None:
    """Embedded database + sandbox + demo accounts + a backfill, then the Dagster UI."""
    from ig_analytics.demo import run_demo

    sys.exit(run_demo(port=port, days=days, start_ui=not no_ui))


def _user_facing_errors() -> tuple[type[Exception], ...]:
    """Our own errors already say what happened and what to do: print them without a class name."""
    from ig_analytics.accounts import AccountError
    from ig_analytics.embedded_db import EmbeddedDbError
    from ig_analytics.storage.db import DatabaseUnavailableError
    from ig_analytics.token_vault import TokenVaultError

    return (AccountError, EmbeddedDbError, DatabaseUnavailableError, TokenVaultError)


def main(argv: list[str] | None = None) -> None:
    import warnings

    warnings.filterwarnings("ignore", message=".*is currently in beta.*")  # Dagster's notices, not the user's
    from ig_analytics.logging_setup import configure_logging

    configure_logging()
    try:
        cli.main(args=argv, prog_name="ig-analytics", standalone_mode=False)
    except click.UsageError as exc:
        click.echo(f"ig-analytics: {exc.format_message()} (see --help)", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"ig-analytics: {exc.format_message()}", err=True)
        sys.exit(1)
    except click.Abort:
        sys.exit(130)
    except _user_facing_errors() as exc:
        click.echo(f"ig-analytics: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one clear line, no traceback, no token
        from ig_analytics.redaction import redact

        click.echo(f"ig-analytics: {type(exc).__name__}: {redact(str(exc))}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
