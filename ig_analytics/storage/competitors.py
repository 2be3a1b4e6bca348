"""Who each account watches (``instagram.competitors``): add, remove, list, and the outcome of each capture.

Usernames arrive here already checked against Instagram's rules (graph_api.business_discovery.normalize_username
at the command line); the table's CHECK constraint holds the same rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

STATUSES = ("active", "not_found", "not_professional", "unavailable")


@dataclass(frozen=True)
class CompetitorRow:
    ig_user_id: str
    username: str
    added_at: datetime
    status: str
    status_reason: str | None
    last_captured_at: datetime | None


def add(engine: Engine, ig_user_id: str, usernames: Sequence[str]) -> list[str]:
    """Adds the usernames the account does not watch yet; returns those added (others are left as they are)."""
    with engine.begin() as conn:
        rows = conn.execute(sa.text(
            "INSERT INTO instagram.competitors (ig_user_id, username) SELECT :i, u FROM unnest(CAST(:u AS text[])) u "
            "ON CONFLICT DO NOTHING RETURNING username"), {"i": ig_user_id, "u": list(dict.fromkeys(usernames))})
        return sorted(r[0] for r in rows)


def remove(engine: Engine, ig_user_id: str, username: str) -> bool:
    """Stops watching (the captured history stays); False when the account did not watch it."""
    with engine.begin() as conn:
        return conn.execute(sa.text("DELETE FROM instagram.competitors WHERE ig_user_id = :i AND username = :u"),
                            {"i": ig_user_id, "u": username}).rowcount > 0


def list_competitors(engine: Engine, ig_user_id: str | None = None) -> list[CompetitorRow]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT ig_user_id, username, added_at, status, status_reason, last_captured_at "
            "FROM instagram.competitors WHERE CAST(:i AS text) IS NULL OR ig_user_id = :i "
            "ORDER BY ig_user_id, username"), {"i": ig_user_id})
        return [CompetitorRow(*r) for r in rows]


def watched(conn: Connection, ig_user_id: str) -> list[str]:
    """Every competitor of the account, whatever its status: a username that failed yesterday is asked again."""
    return [r[0] for r in conn.execute(sa.text(
        "SELECT username FROM instagram.competitors WHERE ig_user_id = :i ORDER BY username"), {"i": ig_user_id})]


def attempts_since(conn: Connection, ig_user_id: str, since: datetime) -> int:
    """Competitors of the account asked since ``since`` (the Platform limit's hour)."""
    return conn.execute(sa.text(
        "SELECT count(*) FROM instagram.competitors WHERE ig_user_id = :i AND last_attempt_at >= :s"),
        {"i": ig_user_id, "s": since}).scalar_one()


def record_outcomes(conn: Connection, ig_user_id: str, at: datetime,
                    outcomes: Iterable[tuple[str, str | None, str | None, str | None]]) -> None:
    """(username, status or None when not asked, reason, competitor id) per competitor. A status change stamps
    ``status_changed_at``; a success stamps ``last_captured_at``; a deferral keeps the status, says why."""
    for username, status, reason, competitor_id in outcomes:
        conn.execute(sa.text(
            """UPDATE instagram.competitors SET
                   status = COALESCE(CAST(:st AS text), status),
                   status_reason = :r,
                   status_changed_at = CASE WHEN CAST(:st AS text) IS DISTINCT FROM status
                                             AND CAST(:st AS text) IS NOT NULL THEN :at ELSE status_changed_at END,
                   competitor_ig_user_id = COALESCE(CAST(:c AS text), competitor_ig_user_id),
                   last_attempt_at = CASE WHEN CAST(:st AS text) IS NULL THEN last_attempt_at ELSE :at END,
                   last_captured_at = CASE WHEN :st = 'active' THEN :at ELSE last_captured_at END
               WHERE ig_user_id = :i AND username = :u"""),
            {"st": status, "r": reason, "at": at, "c": competitor_id, "i": ig_user_id, "u": username})
