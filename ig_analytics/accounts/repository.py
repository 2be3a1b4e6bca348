"""The connected Instagram accounts (``instagram.accounts``): register, list, disable, and the credentials the
sync uses. Tokens are stored only encrypted (see token_vault) and never leave this module in plain text except
inside :class:`AccountCredentials`, whose repr hides them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ig_analytics.graph_api.token_format import token_problem
from ig_analytics.terminal_text import printable
from ig_analytics.accounts.token_vault import TokenVault, TokenVaultError

_IG_USER_ID = re.compile(r"^[0-9]{1,32}$")
_USERNAME = re.compile(r"^[A-Za-z0-9._]{1,30}$")


class AccountError(ValueError):
    """A usage mistake about an account (unknown id, bad timezone, ...)."""


@dataclass(frozen=True)
class AccountCredentials:
    ig_user_id: str
    username: str | None
    timezone: str
    token: str = field(repr=False)
    login_kind: str = "facebook"  # which host serves it: graph.facebook.com or graph.instagram.com


@dataclass(frozen=True)
class AccountRow:
    ig_user_id: str
    username: str | None
    timezone: str
    status: str
    status_reason: str | None
    token_expires_at: datetime | None
    followers_total: int | None
    profile_synced_at: datetime | None


def validate_ig_user_id(ig_user_id: str) -> str:
    if not _IG_USER_ID.fullmatch(ig_user_id or ""):
        raise AccountError(f"'{printable(ig_user_id, 40)}' is not an Instagram user id (digits only, e.g. 17841400000000001)")
    return ig_user_id


def validate_username(username: str) -> str:
    """Instagram's rules: 1 to 30 letters, digits, '.' and '_' (an optional leading '@' is dropped)."""
    name = username[1:] if username.startswith("@") else username
    if not _USERNAME.fullmatch(name):
        raise AccountError(f"'{printable(name, 40)}' is not an Instagram username (1 to 30 letters, digits, '.' and '_')")
    return name


def is_valid_username(username: str) -> bool:
    return bool(_USERNAME.fullmatch(username))


def validate_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a name too long for a file name
        raise AccountError(f"'{printable(name, 40)}' is not an IANA timezone (use Area/City, e.g. Europe/Paris)") from exc
    return name


def add_account(
    engine: Engine,
    vault: TokenVault,
    *,
    ig_user_id: str,
    token: str,
    username: str | None = None,
    timezone_name: str | None = None,
    token_expires_at: datetime | None = None,
    login_kind: str = "facebook",
) -> bool:
    """Register or update an account; (re)activates it. Returns True when it was new. A new token resets what
    was known about the old one (scopes, refresh state); token_lifecycle fills it in again."""
    validate_ig_user_id(ig_user_id)
    if timezone_name is not None:
        validate_timezone(timezone_name)
    if username is not None:
        username = validate_username(username)
    problem = token_problem(token)
    if problem is not None:
        raise AccountError(f"account {ig_user_id}: {problem}")
    if login_kind not in ("facebook", "instagram"):
        raise AccountError(f"login kind must be facebook or instagram, not '{login_kind}'")
    ciphertext = vault.encrypt(token)
    with engine.begin() as conn:
        existed = conn.execute(
            sa.text("SELECT 1 FROM instagram.accounts WHERE ig_user_id = :id"), {"id": ig_user_id}
        ).first()
        conn.execute(
            sa.text(
                """
                INSERT INTO instagram.accounts AS a (ig_user_id, username, timezone, status, status_reason,
                    status_changed_at, token_ciphertext, token_expires_at, login_kind, token_issued_at, updated_at)
                VALUES (:id, :username, COALESCE(:tz, 'UTC'), 'active', NULL, now(), :token, :expires, :kind, now(),
                        now())
                ON CONFLICT (ig_user_id) DO UPDATE SET
                    username = COALESCE(EXCLUDED.username, a.username),
                    timezone = COALESCE(:tz, a.timezone),
                    status = 'active', status_reason = NULL,
                    status_changed_at = CASE WHEN a.status <> 'active' THEN now() ELSE a.status_changed_at END,
                    token_ciphertext = EXCLUDED.token_ciphertext,
                    token_expires_at = EXCLUDED.token_expires_at,
                    login_kind = EXCLUDED.login_kind, token_issued_at = now(), token_scopes = NULL,
                    token_missing_scopes = NULL, token_data_access_expires_at = NULL, token_checked_at = NULL,
                    token_refreshed_at = NULL, token_refresh_error = NULL,
                    updated_at = now()
                """
            ),
            {"id": ig_user_id, "username": username, "tz": timezone_name, "token": ciphertext, "expires": token_expires_at,
             "kind": login_kind},
        )
    return existed is None


def account_ids(engine: Engine) -> list[str]:
    """Every registered account, whatever its status (the derived tables hold rows of each)."""
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT ig_user_id FROM instagram.accounts ORDER BY 1"))]


def statuses_before(engine: Engine, created_before: datetime) -> dict[str, str]:
    """ig_user_id -> status of the accounts registered before ``created_before``."""
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(
            "SELECT ig_user_id, status FROM instagram.accounts WHERE created_at < :before ORDER BY 1"),
            {"before": created_before}).all())


def list_accounts(engine: Engine) -> list[AccountRow]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT ig_user_id, username, timezone, status, status_reason, token_expires_at, followers_total,"
                " profile_synced_at FROM instagram.accounts ORDER BY ig_user_id"
            )
        ).all()
    return [AccountRow(*row) for row in rows]


def set_status(engine: Engine, ig_user_id: str, status: str, reason: str | None = None) -> bool:
    """Returns True when the status changed (so callers alert once per change)."""
    with engine.begin() as conn:
        result = conn.execute(
            sa.text(
                "UPDATE instagram.accounts SET status = :status, status_reason = :reason, status_changed_at = now(),"
                " updated_at = now() WHERE ig_user_id = :id AND status IS DISTINCT FROM :status"
            ),
            {"id": ig_user_id, "status": status, "reason": reason},
        )
        if result.rowcount == 0:
            exists = conn.execute(sa.text("SELECT 1 FROM instagram.accounts WHERE ig_user_id = :id"), {"id": ig_user_id}).first()
            if exists is None:
                raise AccountError(f"no account {ig_user_id}; see: ig-analytics accounts list")
            conn.execute(
                sa.text("UPDATE instagram.accounts SET status_reason = :reason WHERE ig_user_id = :id"),
                {"id": ig_user_id, "reason": reason},
            )
    return result.rowcount > 0


def disable_account(engine: Engine, ig_user_id: str) -> bool:
    return set_status(engine, ig_user_id, "disabled", "disabled by an administrator")


def active_credentials(
    engine: Engine, vault: TokenVault, ig_user_ids: Sequence[str] | None = None
) -> tuple[list[AccountCredentials], dict[str, str]]:
    """Credentials of the active accounts (optionally only ``ig_user_ids``), and the accounts that cannot be
    synced with the reason (not found, not active, token unreadable)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT ig_user_id, username, timezone, status, status_reason, token_ciphertext, login_kind"
                    " FROM instagram.accounts ORDER BY ig_user_id")
        ).all()
    by_id = {row.ig_user_id: row for row in rows}
    wanted = list(ig_user_ids) if ig_user_ids else [row.ig_user_id for row in rows if row.status == "active"]
    creds: list[AccountCredentials] = []
    problems: dict[str, str] = {}
    for ig_user_id in wanted:
        row = by_id.get(ig_user_id)
        if row is None:
            problems[ig_user_id] = "no such account; add it with: ig-analytics accounts add"
            continue
        if row.status != "active":
            problems[ig_user_id] = f"account is {row.status}" + (f" ({row.status_reason})" if row.status_reason else "")
            continue
        if row.token_ciphertext is None:
            problems[ig_user_id] = "no access token stored; add one with: ig-analytics accounts add"
            continue
        try:
            token = vault.decrypt(row.token_ciphertext)
        except TokenVaultError as exc:
            problems[ig_user_id] = str(exc)
            continue
        creds.append(AccountCredentials(row.ig_user_id, row.username, row.timezone, token, row.login_kind))
    return creds, problems
