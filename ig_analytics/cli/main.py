"""The `ig-analytics` command line (README.md). Usage errors exit 2 with one line; a command that ran but
found failures exits 1; success exits 0. No command ever prints an access token."""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from ig_analytics import clock
from ig_analytics.cli.accounts_commands import register_account_commands
from ig_analytics.cli.common import CliError, ig_user_id_param, load_settings, open_engine, parse_day, require_registered
from ig_analytics.cli.errors import say
from ig_analytics.settings import Settings
from ig_analytics.terminal_text import printable


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Instagram business insights in PostgreSQL, orchestrated by Dagster."""


# ---- db -------------------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """The embedded PostgreSQL (used when DATABASE_URL is unset)."""


def _embedded():
    from ig_analytics.local.embedded_db import EmbeddedPostgres

    settings = load_settings()
    if not settings.uses_embedded_db:
        raise CliError("DATABASE_URL is set, so the embedded PostgreSQL is not used; manage your server yourself.")
    return EmbeddedPostgres(settings.home)


def _sweep_orphan_clusters() -> None:
    """Clusters kept in the temp folder for homes that no longer exist (issue 16): one line when any is removed."""
    from ig_analytics.local.housekeeping import sweep_orphans

    removed = sweep_orphans()
    if removed:
        say(f"Removed {len(removed)} embedded PostgreSQL cluster(s) whose IG_ANALYTICS_HOME no longer exists: "
            + ", ".join(str(p) for p in removed))


@db.command("start")
def db_start() -> None:
    """Start the embedded server (idempotent) and create its databases and schema."""
    from ig_analytics.cli import runtime

    server = _embedded()
    load_settings().ensure_home()  # one line naming IG_ANALYTICS_HOME, not an OSError from deep in the start
    _sweep_orphan_clusters()
    status = server.start()
    runtime.ensure_database(load_settings())
    say(f"PostgreSQL {status.describe()}")


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded server."""
    _embedded().stop()
    say("PostgreSQL stopped")


@db.command("status")
def db_status() -> None:
    """Whether the embedded server runs, and where. Exit 1 when it is stopped."""
    server = _embedded()
    _sweep_orphan_clusters()
    status = server.status()
    say(f"PostgreSQL {status.describe()}")
    sys.exit(0 if status.running else 1)


@db.command("url")
@click.option("--dagster", is_flag=True, help="The URL of Dagster's storage database instead.")
@click.option("--sqlalchemy", is_flag=True, help="With the driver (postgresql+psycopg2://), as dagster.yaml wants it.")
@click.option("--read-only", is_flag=True, help="The analysts' role: SELECT on schema instagram only.")
def db_url(dagster: bool, sqlalchemy: bool, read_only: bool) -> None:
    """Print a working database URL, password included (for psql, BI tools, dagster.yaml)."""
    from ig_analytics.local.embedded_db import ANALYTICS_DB, EmbeddedPostgres
    from ig_analytics.storage import db as storage

    settings = load_settings()
    if read_only and dagster:
        raise click.UsageError("--read-only and --dagster cannot be combined: the read-only role reads the analytics tables only")
    if read_only:
        if not settings.uses_embedded_db:
            raise CliError("DATABASE_URL is set: the read-only role exists only on the embedded PostgreSQL; "
                           "create one on your own server (GRANT SELECT ON ALL TABLES IN SCHEMA instagram).")
        url = EmbeddedPostgres(settings.home).url(ANALYTICS_DB, read_only=True)
    else:
        url = storage.dagster_storage_url(settings) if dagster else storage.analytics_url(settings)
    say(url if sqlalchemy else url.replace("+psycopg2", ""))


@db.command("destroy")
@click.option("--yes", is_flag=True, help="Confirm: the analytics data and Dagster's run history are deleted.")
def db_destroy(yes: bool) -> None:
    """Stop the embedded server and delete its cluster wherever it lives (all data is lost)."""
    if not yes:
        raise click.UsageError("db destroy deletes the embedded database and all its data; add --yes to confirm")
    server = _embedded()
    server.destroy()
    say(f"Embedded PostgreSQL stopped and removed ({server.root})")


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
@click.option("--login", "login_kind", type=click.Choice(["facebook", "instagram"]), default=None,
              help="How the token was obtained: Facebook Login (graph.facebook.com) or Instagram Login "
                   "(graph.instagram.com, refreshed automatically). Default: detected (IG... tokens: instagram).")
def accounts_add(ig_user_id: str, token: str, username: str | None, timezone_name: str | None,
                 token_expires_at: str | None, verify: bool, login_kind: str | None) -> None:
    """Register or update an account (re-activates one that needed re-authentication)."""
    from ig_analytics.accounts import repository as repo
    from ig_analytics.cli.accounts_commands import after_add, choose_login_kind, read_token
    from ig_analytics.accounts.token_vault import TokenVault

    token = read_token(token, "--token")
    expires = parse_day(token_expires_at, "--token-expires-at")
    expires_at = datetime.combine(expires, datetime.min.time(), timezone.utc) if expires else None
    try:  # every usage mistake is reported before anything is printed, called or stored
        repo.validate_ig_user_id(ig_user_id)
        if timezone_name is not None:
            repo.validate_timezone(timezone_name)
        if username is not None:
            username = repo.validate_username(username)
    except repo.AccountError as exc:
        raise click.UsageError(str(exc))
    settings = load_settings()
    login_kind, login_why = choose_login_kind(token, login_kind)
    say(f"Login kind: {login_kind} ({login_why})")
    if verify:
        profile = _verify_token(settings, ig_user_id, token, login_kind)
        if not username and profile.username and repo.is_valid_username(profile.username):
            username = profile.username
        say(f"Token works: @{printable(profile.username, 40) or '?'}, {profile.followers_count if profile.followers_count is not None else '?'} followers")
    engine = open_engine(settings)
    vault = TokenVault.from_settings(settings)
    new = repo.add_account(
        engine, vault, ig_user_id=ig_user_id, token=token, username=username,
        timezone_name=timezone_name, token_expires_at=expires_at, login_kind=login_kind,
    )
    say(f"{'Added' if new else 'Updated'} account {ig_user_id}" + (f" (@{username})" if username else "") + ": active")
    after_add(settings, engine, vault, ig_user_id, token, login_kind)


def _verify_token(settings: Settings, ig_user_id: str, token: str, login_kind: str = "facebook"):
    """One profile read: a rejected token or missing permission is caught now, not at the next sync."""
    from ig_analytics.cli.errors import LogOnly
    from ig_analytics.graph_api import GraphApiClient, GraphApiError, MalformedResponseError, TransientApiError
    from ig_analytics.redaction import redact

    client = GraphApiClient.from_settings(settings, max_attempts=2, backoff_base_s=0.5,  # the failure is the
                                          logger=LogOnly("ig_analytics.graph_api"))  # command's one line
    try:
        return client.account(ig_user_id, token, login_kind).profile()
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
    from ig_analytics.accounts import repository as repo

    from ig_analytics.accounts.token_lifecycle import load_states

    engine = open_engine()
    rows = repo.list_accounts(engine)
    if not rows:
        say("No accounts. Add one with: ig-analytics accounts add --ig-user-id ID --token TOKEN")
        return
    tokens = load_states(engine)
    now = clock.now()
    say(f"{'ig_user_id':<20} {'username':<20} {'status':<13} {'login':<9} {'timezone':<20} {'followers':>10}"
        "  token expires")
    for row in rows:
        token = tokens.get(row.ig_user_id)
        expires = token.expiry_text() if token else "unknown"
        warnings = token.notes(now) if token and row.status != "disabled" else []
        say(
            f"{printable(row.ig_user_id, 32):<20} {printable(row.username or '-', 30):<20} {row.status:<13} "
            f"{(token.login_kind if token else '-'):<9} {printable(row.timezone, 40):<20} "
            f"{row.followers_total if row.followers_total is not None else '-':>10}  {expires}"
            + "".join(f"  WARNING: {w}" for w in warnings)
            + (f"  ({printable(row.status_reason, 300)})" if row.status != "active" and row.status_reason else "")
        )


register_account_commands(accounts)  # discover, refresh-tokens, check-tokens

from ig_analytics.cli.competitors_commands import competitors  # noqa: E402 - competitors add | remove | list

cli.add_command(competitors)


@accounts.command("disable")
@click.argument("ig_user_id", callback=ig_user_id_param)
def accounts_disable(ig_user_id: str) -> None:
    """Stop syncing an account; its history stays."""
    from ig_analytics.accounts import repository as repo

    engine = open_engine()
    require_registered(engine, [ig_user_id])
    try:
        repo.disable_account(engine, ig_user_id)
    except repo.AccountError as exc:
        raise CliError(str(exc))
    say(f"Account {ig_user_id} disabled; its history is kept")


# ---- sync -----------------------------------------------------------------------------------------------


@cli.command()
@click.option("--account", "account_ids", multiple=True, help="Only this account (repeatable). Default: all active.")
@click.option("--type", "sync_type", type=click.Choice(["full", "account", "media"]), default="full", show_default=True)
@click.option("--since", default=None, help="First day of account insights (YYYY-MM-DD). Default: 90 days ago.")
@click.option("--until", default=None, help="Last day of account insights (YYYY-MM-DD). Default: yesterday.")
@click.option("--record", "record_dir", default=None, metavar="DIR",
              help="Also write every Graph API request and reply to DIR, tokens removed (for bug reports).")
def sync(account_ids: tuple[str, ...], sync_type: str, since: str | None, until: str | None,
         record_dir: str | None) -> None:
    """Sync now through Dagster (the runs show in the UI), then update the analytics."""
    from ig_analytics.cli.sync_command import UsageError, run_sync

    try:
        report = run_sync(list(account_ids), sync_type, parse_day(since, "--since"), parse_day(until, "--until"),
                          record_dir=record_dir)
    except UsageError as exc:
        raise click.UsageError(str(exc))
    for line in report.lines:
        say(line.render())
    log = logging.getLogger("ig_analytics.cli.main")  # stderr: one line each, JSON with IG_ANALYTICS_LOG_FORMAT=json
    if record_dir is not None:
        from ig_analytics.graph_api.recording import summary

        log.info(printable(summary(record_dir), 800))
    for error in report.run_errors:
        log.error(printable(error, 600))
    if not report.lines:
        log.warning("No accounts to sync. Add one with: ig-analytics accounts add --ig-user-id ID --token TOKEN")
    sys.exit(report.exit_code)


# ---- report / status ------------------------------------------------------------------------------------


@cli.command()
@click.option("--account", "ig_user_id", required=True, callback=ig_user_id_param)
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 366))
def report(ig_user_id: str, days: int) -> None:
    """Build the performance report of the last N days (up to yesterday): print a summary and the HTML path."""
    from ig_analytics.analytics import reports

    settings = load_settings()
    engine = open_engine(settings)
    require_registered(engine, [ig_user_id])
    period_end = clock.now().date() - timedelta(days=1)
    with engine.begin() as conn:
        results = reports.write_reports(
            conn, period_end=period_end, days=days, kind="on_demand", reports_dir=settings.reports_dir,
            ig_user_ids=[ig_user_id], synthetic_permalinks=reports.permalinks_synthetic(settings.graph_api_url),
        )
    if not results:
        raise CliError(f"No report for account {ig_user_id}: unknown account or no data. See: ig-analytics accounts list")
    result = results[0]
    say(result.markdown)
    say(f"\nHTML report: {result.html_path}")


@cli.command()
def status() -> None:
    """Per account: last successful sync, lag, token expiry, recent errors."""
    from ig_analytics.cli.status import render_status

    say(render_status(open_engine()))


@cli.command()
@click.argument("relation", metavar="TABLE_OR_VIEW")
@click.option("--account", "ig_user_id", default=None, callback=ig_user_id_param, help="Only this account's rows.")
@click.option("--since", default=None, help="First day (YYYY-MM-DD, UTC) on the relation's time column.")
@click.option("--until", default=None, help="Last day (YYYY-MM-DD, UTC), included.")
@click.option("--format", "fmt", type=click.Choice(["csv"]), required=True, help="Output format.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (replaced only when complete). Default: standard output.")
def export(relation: str, ig_user_id: str | None, since: str | None, until: str | None, fmt: str,
           output: Path | None) -> None:
    """Stream a table or view of schema instagram as CSV (COPY: flat memory at any size)."""
    from ig_analytics.cli import export_command as ex

    try:
        query = ex.build_query(relation, ig_user_id, parse_day(since, "--since"), parse_day(until, "--until"))
        engine = open_engine()
        if ig_user_id is not None:
            ex.check_account(engine, ig_user_id)
        ex.export(engine, query, output)
    except ex.ExportUsageError as exc:
        raise click.UsageError(str(exc))


# ---- servers --------------------------------------------------------------------------------------------


@cli.command()
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--replay", "replay_dir", default=None, metavar="DIR", help="Serve the replies of `sync --record DIR`.")
def sandbox(port: int, seed: int, replay_dir: str | None) -> None:
    """Serve the local Graph API sandbox (synthetic accounts); prints one JSON line per account."""
    from ig_analytics.sandbox.cli import serve_forever_cli
    from ig_analytics.sandbox.replay import ReplayError

    try:
        serve_forever_cli(port=port, seed=seed, replay_dir=replay_dir)
    except ReplayError as exc:
        raise click.UsageError(str(exc))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Keep 127.0.0.1 unless a proxy guards the UI.")
@click.option("--port", default=3000, show_default=True, type=click.IntRange(1, 65535))
def ui(host: str, port: int) -> None:
    """Dagster's webserver and daemon (schedules, sensors, backfills) on this machine."""
    from ig_analytics.cli import runtime

    _require_free_port(host, port)
    settings = runtime.prepare()
    sys.exit(runtime.run_ui(settings, host=host, port=port))


def _require_free_port(host: str, port: int) -> None:
    """Said before anything starts: the webserver would fail late, in 48 lines of gRPC errors."""
    from ig_analytics.cli import runtime

    if runtime.port_taken(host, port):
        raise CliError(f"Port {port} on {host} is already in use: stop what listens there, or choose another "
                       "port with --port")


@cli.command()
@click.option("--port", default=3000, show_default=True, type=click.IntRange(1, 65535), help="Dagster UI port.")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 90), help="Days to backfill.")
@click.option("--no-ui", is_flag=True, help="Stop after the backfill instead of starting the UI.")
def demo(port: int, days: int, no_ui: bool) -> None:
    """Embedded database + sandbox + demo accounts + a backfill, then the Dagster UI."""
    from ig_analytics.cli.demo import run_demo

    if not no_ui:
        _require_free_port("127.0.0.1", port)
    sys.exit(run_demo(port=port, days=days, start_ui=not no_ui))


def main(argv: list[str] | None = None) -> None:
    import warnings

    warnings.filterwarnings("ignore", message=".*is currently in beta.*")  # Dagster's notices, not the user's
    from ig_analytics.cli.errors import run

    run(cli, argv)  # one line and exit 2/1 on any mistake or failure; details in the log file


if __name__ == "__main__":
    main()
