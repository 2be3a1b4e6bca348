"""The life of an account's access token: what it may do and when it dies (``debug_token``), keeping
Instagram-Login tokens alive (refreshed once 24 h old, before they expire), and the alerts 7 days before expiry and
once at expiry. Plain Python (no Dagster): the CLI and the daily ``token_maintenance_job`` call
:func:`maintain_tokens`.

A token never leaves this module in plain text except to the Graph API; new ones are stored encrypted
(token_vault), and every stored or printed reason is redacted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ig_analytics import clock
from ig_analytics.graph_api.errors import GraphApiError
from ig_analytics.graph_api.models import TokenInfo
from ig_analytics.graph_api.tokens import TokenApi, missing_scopes
from ig_analytics.redaction import redact
from ig_analytics.settings import Settings
from ig_analytics.accounts.token_vault import TokenVault, TokenVaultError

log = logging.getLogger("ig_analytics.tokens")

EXPIRY_WARNING = timedelta(days=7)
REFRESH_MIN_AGE = timedelta(hours=24)  # Meta refuses to refresh a younger Instagram-Login token

_STATE_QUERY = """
SELECT ig_user_id, username, status, login_kind, token_ciphertext IS NOT NULL AS has_token, token_expires_at,
       token_issued_at, token_refreshed_at, token_checked_at, token_scopes, token_missing_scopes,
       token_data_access_expires_at, token_refresh_error,
       (SELECT c.reason FROM instagram.comment_access c
        WHERE c.ig_user_id = accounts.ig_user_id AND c.status = 'denied') AS comments_denied
FROM instagram.accounts
"""


def token_api(settings: Settings, **kwargs) -> TokenApi:
    """The token calls; debug_token is enabled by ``IG_APP_ID`` with ``IG_APP_SECRET`` (both in Settings)."""
    return TokenApi.from_settings(settings, app_id=settings.app_id, **kwargs)


def describe_error(exc: Exception) -> str:
    """A short, redacted reason for a failed token call (the API's own words when it gave some)."""
    if isinstance(exc, GraphApiError):
        code = f"code {exc.code}" + (f"/{exc.subcode}" if exc.subcode else "") if exc.code is not None else ""
        detail = exc.api_message or str(exc)
        return redact(f"{detail} ({code})" if code else detail)
    return redact(f"{type(exc).__name__}: {exc}")


# ---- the stored state -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenState:
    ig_user_id: str
    username: str | None
    status: str
    login_kind: str
    has_token: bool
    token_expires_at: datetime | None
    token_issued_at: datetime | None
    token_refreshed_at: datetime | None
    token_checked_at: datetime | None
    token_scopes: list[str] | None
    token_missing_scopes: list[str] | None
    token_data_access_expires_at: datetime | None
    token_refresh_error: str | None
    comments_denied: str | None = None  # why comments are not stored (instagram.comment_access), else None

    def expiry_text(self) -> str:
        if self.token_expires_at is not None:
            return self.token_expires_at.strftime("%Y-%m-%d %H:%M UTC")
        return "never" if self.token_checked_at is not None else "unknown"

    def notes(self, now: datetime) -> list[str]:
        """What an administrator must know about this token, in words (empty when all is well)."""
        out = []
        if self.token_expires_at is not None:
            left = self.token_expires_at - now
            if left <= timedelta(0):
                out.append("token EXPIRED: reconnect the account (ig-analytics accounts add ... --token -)")
            elif left <= EXPIRY_WARNING:
                out.append(f"token expires in {left.total_seconds() / 86400:.1f} days"
                           + (": it is refreshed daily" if self.login_kind == "instagram" and not
                              self.token_refresh_error else ": renew it and run ig-analytics accounts add"))
        if self.token_data_access_expires_at is not None and self.token_data_access_expires_at <= now + EXPIRY_WARNING:
            out.append(f"data access expires {self.token_data_access_expires_at:%Y-%m-%d}: the user must log in "
                       "again and you must add the new token")
        if self.token_missing_scopes:
            out.append(f"token lacks {', '.join(self.token_missing_scopes)}: reconnect with a token that grants it")
        if self.token_refresh_error:
            out.append(f"last token refresh failed (old token kept): {self.token_refresh_error}")
        if self.comments_denied:
            out.append(f"comments not stored: {self.comments_denied}")
        return out


def load_states(engine: Engine, ig_user_ids: Sequence[str] | None = None) -> dict[str, TokenState]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(_STATE_QUERY + " ORDER BY ig_user_id")).all()
    states = {r.ig_user_id: TokenState(*r) for r in rows}
    return {k: v for k, v in states.items() if not ig_user_ids or k in ig_user_ids}


# ---- inspection (debug_token) -----------------------------------------------------------------------------


def inspect_token(engine: Engine, api: TokenApi, ig_user_id: str, token: str, login_kind: str,
                  now: datetime) -> TokenInfo | None:
    """Read the token's expiry, data-access expiry and scopes and store them (None without IG_APP_ID and
    IG_APP_SECRET). Raises GraphApiError when the call itself fails."""
    if not api.can_inspect:
        return None
    info = api.debug_token(token, login_kind)
    missing = missing_scopes(login_kind, info.scopes) if info.is_valid or info.scopes else None
    with engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE instagram.accounts SET token_expires_at = :exp, token_data_access_expires_at = :dax,"
            " token_scopes = :scopes, token_missing_scopes = :missing,"
            " token_issued_at = COALESCE(:issued, token_issued_at), token_checked_at = :now, updated_at = now()"
            " WHERE ig_user_id = :id"),
            {"exp": info.expires_at,
             "dax": info.data_access_expires_at, "scopes": list(info.scopes), "missing": missing,
             "issued": info.issued_at, "now": now, "id": ig_user_id})
    return info


# ---- refresh (Instagram Login) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshResult:
    ig_user_id: str
    ok: bool
    expires_at: datetime | None = None
    error: str | None = None

    def render(self) -> str:
        if self.ok:
            until = f"{self.expires_at:%Y-%m-%d}" if self.expires_at else "unknown"
            return f"REFRESHED {self.ig_user_id}: new token valid until {until}"
        return f"FAILED {self.ig_user_id}: {self.error} (the old token is kept)"


def due_for_refresh(engine: Engine, now: datetime,
                    ig_user_ids: Sequence[str] | None = None) -> list[tuple[str, bytes]]:
    """(ig_user_id, token ciphertext) of the active Instagram-Login accounts whose token is at least 24 h old and
    not expired: one query for all of them."""
    sql = (
        "SELECT ig_user_id, token_ciphertext FROM instagram.accounts WHERE login_kind = 'instagram'"
        " AND status = 'active' AND token_ciphertext IS NOT NULL"
        " AND (token_expires_at IS NULL OR token_expires_at > :now)"
        " AND COALESCE(token_refreshed_at, token_issued_at, created_at) <= :cutoff"
        " AND (CAST(:ids AS text[]) IS NULL OR ig_user_id = ANY(CAST(:ids AS text[]))) ORDER BY ig_user_id"
    )
    with engine.connect() as conn:
        return [(r[0], bytes(r[1])) for r in conn.execute(sa.text(sql), {
            "now": now, "cutoff": now - REFRESH_MIN_AGE, "ids": list(ig_user_ids) if ig_user_ids else None})]


def refresh_tokens(engine: Engine, vault: TokenVault, api: TokenApi, now: datetime,
                   ig_user_ids: Sequence[str] | None = None) -> list[RefreshResult]:
    """Refresh every due Instagram-Login token. A failure keeps the old token and stores why."""
    results = []
    for ig_user_id, ciphertext in due_for_refresh(engine, now, ig_user_ids):
        try:
            new = api.refresh_instagram_token(vault.decrypt(ciphertext), now)
        except (GraphApiError, TokenVaultError) as exc:
            reason = describe_error(exc)
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE instagram.accounts SET token_refresh_error = :e, updated_at = now()"
                                     " WHERE ig_user_id = :i"), {"e": reason, "i": ig_user_id})
            log.warning("token refresh of account %s failed (old token kept): %s", ig_user_id, reason,
                        extra={"ig_user_id": ig_user_id})
            results.append(RefreshResult(ig_user_id, False, error=reason))
            continue
        with engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE instagram.accounts SET token_ciphertext = :c, token_expires_at = :exp, token_issued_at = :now,"
                " token_refreshed_at = :now, token_refresh_error = NULL, updated_at = now() WHERE ig_user_id = :i"),
                {"c": vault.encrypt(new.token), "exp": new.expires_at, "now": now, "i": ig_user_id})
        log.info("token of account %s refreshed; valid until %s", ig_user_id, new.expires_at,
                 extra={"ig_user_id": ig_user_id})
        results.append(RefreshResult(ig_user_id, True, new.expires_at))
    return results


# ---- alerts -----------------------------------------------------------------------------------------------


def expiry_alerts(engine: Engine, notifier, now: datetime) -> list[tuple[str, str]]:
    """One alert when a token enters its last 7 days and one when it has expired, per token (the dedupe key
    carries the expiry, so a renewed token can warn again). Returns (dedupe_key, delivery status)."""
    out = []
    for state in load_states(engine).values():
        if state.status == "disabled" or state.token_expires_at is None or not state.has_token:
            continue
        expires = state.token_expires_at
        who = f"@{state.username} ({state.ig_user_id})" if state.username else state.ig_user_id
        reconnect = f"`ig-analytics accounts add --ig-user-id {state.ig_user_id} --token -`"
        if expires <= now:
            kind, text = "token_expired", (f":x: The access token of Instagram account {who} expired on "
                                           f"{expires:%Y-%m-%d %H:%M} UTC; its syncs fail until you reconnect it "
                                           f"with {reconnect}.")
        elif expires - now <= EXPIRY_WARNING:
            days = (expires - now).total_seconds() / 86400
            fix = ("the daily refresh has not succeeded" + (f" ({state.token_refresh_error})"
                                                             if state.token_refresh_error else "")
                   if state.login_kind == "instagram" else "renew it")
            kind, text = "token_expiring", (f":warning: The access token of Instagram account {who} expires in "
                                            f"{days:.1f} days ({expires:%Y-%m-%d %H:%M} UTC): {fix}, then run "
                                            f"{reconnect}.")
        else:
            continue
        key = f"{kind}:{state.ig_user_id}:{expires.isoformat()}"
        out.append((key, notifier.notify(kind, key, text, ig_user_id=state.ig_user_id,
                                         payload={"expires_at": expires.isoformat(), "login_kind": state.login_kind})))
    return out


# ---- the daily maintenance --------------------------------------------------------------------------------


@dataclass
class MaintenanceReport:
    inspected: dict[str, TokenInfo] = field(default_factory=dict)
    inspect_errors: dict[str, str] = field(default_factory=dict)
    refreshed: list[RefreshResult] = field(default_factory=list)
    alerts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def failed_refreshes(self) -> list[RefreshResult]:
        return [r for r in self.refreshed if not r.ok]


def maintain_tokens(engine: Engine, vault: TokenVault, api: TokenApi, notifier, now: datetime | None = None,
                    ig_user_ids: Sequence[str] | None = None) -> MaintenanceReport:
    """The daily token job: refresh due Instagram-Login tokens, re-read every active token (debug_token, when
    the app id and secret are set), then alert on expiry."""
    now = now or clock.now()
    report = MaintenanceReport(refreshed=refresh_tokens(engine, vault, api, now, ig_user_ids))
    if api.can_inspect:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT ig_user_id, login_kind, token_ciphertext FROM instagram.accounts"
                " WHERE status = 'active' AND token_ciphertext IS NOT NULL ORDER BY ig_user_id")).all()
        for row in rows:
            if ig_user_ids and row.ig_user_id not in ig_user_ids:
                continue
            try:
                info = inspect_token(engine, api, row.ig_user_id, vault.decrypt(row.token_ciphertext),
                                     row.login_kind, now)
            except (GraphApiError, TokenVaultError) as exc:
                report.inspect_errors[row.ig_user_id] = describe_error(exc)
                log.warning("token check of account %s failed: %s", row.ig_user_id,
                            report.inspect_errors[row.ig_user_id], extra={"ig_user_id": row.ig_user_id})
                continue
            if info is not None:
                report.inspected[row.ig_user_id] = info
    report.alerts = expiry_alerts(engine, notifier, now)
    return report
