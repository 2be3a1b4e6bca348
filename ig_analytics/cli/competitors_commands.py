"""`ig-analytics competitors add --account ID USERNAME... | remove --account ID USERNAME | list [--account ID]`:
the public professional accounts an account is compared with (read daily by the ``competitor_snapshots`` asset
through business discovery, Facebook-Login accounts only). Registered on the root group of cli/main.py."""

from __future__ import annotations

import click

from ig_analytics.cli.common import CliError, ig_user_id_param, open_engine


def _ctx():
    return open_engine()


def _usernames(_ctx, _param, values):
    from ig_analytics.graph_api.business_discovery import InvalidUsername, normalize_username

    try:
        return [normalize_username(v) for v in values]
    except InvalidUsername as exc:
        raise click.BadParameter(str(exc))


def _watching_account(engine, ig_user_id: str) -> None:
    """Refuse (one line) an unknown account and an Instagram-Login one."""
    import sqlalchemy as sa

    from ig_analytics.ingestion.competitors import refusal

    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT login_kind FROM instagram.accounts WHERE ig_user_id = :i"),
                           {"i": ig_user_id}).first()
    if row is None:
        raise click.UsageError(f"no account {ig_user_id}; list them with: ig-analytics accounts list")
    why = refusal(row.login_kind)
    if why:
        raise CliError(f"account {ig_user_id} uses Instagram Login: {why}")


@click.group("competitors")
def competitors() -> None:
    """The public professional accounts each account is compared with (Facebook Login accounts only)."""


@competitors.command("add")
@click.option("--account", "ig_user_id", required=True, callback=ig_user_id_param, help="The account that watches.")
@click.argument("usernames", nargs=-1, required=True, callback=_usernames)
def competitors_add(ig_user_id: str, usernames: list[str]) -> None:
    """Watch USERNAME... (business or creator accounts, e.g. @brand); captured from the next daily run or
    `ig-analytics sync`."""
    from ig_analytics.storage import competitors as repo

    engine = _ctx()
    _watching_account(engine, ig_user_id)
    added = repo.add(engine, ig_user_id, usernames)
    for name in usernames:
        click.echo(f"{ig_user_id} watches @{name}" + ("" if name in added else " (already)"))


@competitors.command("remove")
@click.option("--account", "ig_user_id", required=True, callback=ig_user_id_param, help="The account that watches.")
@click.argument("username", nargs=1, callback=lambda c, p, v: _usernames(c, p, [v])[0])
def competitors_remove(ig_user_id: str, username: str) -> None:
    """Stop watching USERNAME (what was captured stays)."""
    from ig_analytics.storage import competitors as repo

    if not repo.remove(_ctx(), ig_user_id, username):
        raise click.UsageError(f"account {ig_user_id} does not watch @{username}; see: ig-analytics competitors "
                               f"list --account {ig_user_id}")
    click.echo(f"{ig_user_id} no longer watches @{username}; its captured history stays")


@competitors.command("list")
@click.option("--account", "ig_user_id", callback=ig_user_id_param, help="Only this account's competitors.")
def competitors_list(ig_user_id: str | None) -> None:
    """Every watched competitor: status (active, not_found, not_professional, unavailable), last capture, why."""
    from ig_analytics.storage import competitors as repo
    from ig_analytics.terminal_text import printable

    rows = repo.list_competitors(_ctx(), ig_user_id)
    if not rows:
        click.echo("No competitors. Add some with: ig-analytics competitors add --account ID USERNAME...")
        return
    click.echo(f"{'ACCOUNT':<20} {'COMPETITOR':<31} {'STATUS':<16} {'LAST CAPTURE':<17} REASON")
    for r in rows:
        last = f"{r.last_captured_at:%Y-%m-%d %H:%M}" if r.last_captured_at else "-"
        click.echo(f"{r.ig_user_id:<20} @{r.username:<30} {r.status:<16} {last:<17} "
                   f"{printable(r.status_reason, 300) if r.status_reason else ''}".rstrip())
