"""`ig-analytics status`: what an administrator checks first, per account."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ig_analytics import clock
from ig_analytics.accounts.token_lifecycle import load_states
from ig_analytics.storage import sync_runs
from ig_analytics.terminal_text import printable

_QUERY = """
SELECT a.ig_user_id, a.username, a.status, a.status_reason, a.token_expires_at,
       (SELECT max(date) FROM instagram.account_insights_daily d WHERE d.ig_user_id = a.ig_user_id) AS newest_day,
       (SELECT max(captured_at) FROM instagram.media_insights_snapshots s WHERE s.ig_user_id = a.ig_user_id) AS newest_snapshot
FROM instagram.accounts a ORDER BY a.ig_user_id
"""
ERRORS_WINDOW = timedelta(days=7)
# Posts whose insights the API refused while the account's other calls worked (errors by scope): the account stays
# active, and these are listed so nobody wonders why a post has no numbers.
_REFUSED_QUERY = """
SELECT ig_user_id, media_id, insights_refused_code, insights_refused_reason, insights_refused_at
FROM instagram.media WHERE insights_refused_at IS NOT NULL ORDER BY ig_user_id, insights_refused_at DESC, media_id
"""
REFUSED_SHOWN = 5


def _age(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    hours = (now - value).total_seconds() / 3600
    return f"{hours:.1f} h ago" if hours < 48 else f"{hours / 24:.1f} days ago"


def render_status(engine: Engine, now: datetime | None = None) -> str:
    now = now or clock.now()
    with engine.connect() as conn:
        accounts = conn.execute(sa.text(_QUERY)).all()
        successes = sync_runs.last_successes(conn)
        errors = sync_runs.recent_failures(conn, now - ERRORS_WINDOW)
        refused = conn.execute(sa.text(_REFUSED_QUERY)).all()
    tokens = load_states(engine)
    if not accounts:
        return "No accounts. Add one with: ig-analytics accounts add --ig-user-id ID --token TOKEN"
    lines = []
    for a in accounts:
        # every field from the database is escaped: a newline or 10,000 characters cannot split the output
        name = printable(a.ig_user_id, 32) + (f" (@{printable(a.username, 30)})" if a.username else "")
        expiry = a.token_expires_at.strftime("%Y-%m-%d") if a.token_expires_at else "unknown"
        if a.token_expires_at:
            days_left = (a.token_expires_at - now).total_seconds() / 86400
            expiry += " (EXPIRED)" if days_left <= 0 else f" (in {days_left:.0f} days)" if days_left < 14 else ""
        yesterday = now.date() - timedelta(days=1)
        lag = f" ({(yesterday - a.newest_day).days} days behind)" if a.newest_day and a.newest_day < yesterday else ""
        lines.append(f"{name}: {a.status}" + (f" — {printable(a.status_reason, 300)}" if a.status_reason and a.status != "active" else ""))
        lines.append(f"  account insights: last success {_age(successes.get((a.ig_user_id, 'account')), now)}, newest day {a.newest_day or 'none'}{lag}")
        lines.append(f"  media snapshots:  last success {_age(successes.get((a.ig_user_id, 'media')), now)}, newest capture {_age(a.newest_snapshot, now)}")
        token = tokens.get(a.ig_user_id)
        if token is not None:
            expiry += f", {token.login_kind} login"
            if token.token_refreshed_at:
                expiry += f", refreshed {_age(token.token_refreshed_at, now)}"
        lines.append(f"  token expires:    {expiry}")
        if a.status != "disabled" and token is not None:
            lines.extend(f"  token WARNING:    {note}" for note in token.notes(now))
        recent = [e for e in errors if e.ig_user_id == a.ig_user_id][:3]
        for e in recent:
            lines.append(f"  error ({e.sync_type}, {_age(e.finished_at, now)}): {printable(e.error, 500)}")
        lines.extend(_refused_lines([r for r in refused if r.ig_user_id == a.ig_user_id], now))
    return "\n".join(lines)


def _refused_lines(posts: list, now: datetime) -> list[str]:
    lines = [f"  post refused:     {printable(p.media_id, 40)} (code {p.insights_refused_code}, "
             f"{_age(p.insights_refused_at, now)}): {printable(p.insights_refused_reason, 300)}; asked again daily"
             for p in posts[:REFUSED_SHOWN]]
    if len(posts) > REFUSED_SHOWN:
        lines.append(f"  ... and {len(posts) - REFUSED_SHOWN} more refused posts (instagram.media.insights_refused_at)")
    return lines
