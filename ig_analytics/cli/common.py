"""What every command of the CLI shares: the failure it reports as one line, the settings and the database it
opens, and the checks of dates and account ids (usage mistakes: exit 2, before anything runs)."""

from __future__ import annotations

from datetime import date

import click

from ig_analytics.settings import Settings
from ig_analytics.terminal_text import printable


class CliError(click.ClickException):
    """A failure the user can act on: printed as one line, exit 1."""


def load_settings() -> Settings:
    return Settings.from_env()


def open_engine(settings: Settings | None = None, *, start: bool = True):
    from ig_analytics.cli import runtime
    from ig_analytics.storage import db

    settings = settings or load_settings()
    if start:
        url = runtime.ensure_database(settings)
    else:
        url = db.analytics_url(settings)
    return db.get_engine(url)


def parse_day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.UsageError(f"{name} must be a date like 2026-01-31, not '{printable(value, 40)}'")


def ig_user_id_param(ctx, param, value: str | None) -> str | None:
    """Click callback: an Instagram user id (digits) or a usage error, before anything runs."""
    from ig_analytics.accounts.repository import AccountError, validate_ig_user_id

    if value is None:
        return None
    try:
        return validate_ig_user_id(value)
    except AccountError as exc:
        raise click.BadParameter(str(exc))


def ig_user_ids_param(ctx, param, values: tuple[str, ...]) -> tuple[str, ...]:
    """Click callback for a repeatable --account: every value an Instagram user id."""
    return tuple(ig_user_id_param(ctx, param, value) for value in values)


def require_registered(engine, ig_user_ids) -> None:
    """An --account that is not registered is a usage mistake (exit 2, README), said before anything runs."""
    from ig_analytics.cli.sync_command import UsageError, check_accounts_exist

    try:
        check_accounts_exist(engine, list(ig_user_ids))
    except UsageError as exc:
        raise click.UsageError(str(exc))
