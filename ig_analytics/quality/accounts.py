"""Rules on ``instagram.accounts``: every active account has a usable token (stored, not expired, with its
permissions, refreshing), and no account waits for re-authentication unnoticed."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from ig_analytics.quality.result import WARN, CheckResult, Rule, evaluate_rules

TOKEN_EXPIRY_WARN = timedelta(days=7)


def accounts_tokens(conn: Connection, now: datetime) -> CheckResult:
    scope = "instagram.accounts WHERE status = 'active'"
    rules = [
        Rule("token_missing", f"{scope} AND token_ciphertext IS NULL", "ig_user_id, username"),
        Rule("token_expired", f"{scope} AND token_expires_at <= :now", "ig_user_id, username, token_expires_at"),
        Rule("token_expires_soon", f"{scope} AND token_expires_at > :now AND token_expires_at <= :soon",
             "ig_user_id, username, token_expires_at", severity=WARN),
        # Skipped by every sync until its owner reconnects it: keep it red in the UI, not only in one alert.
        Rule("needs_reauth", "instagram.accounts WHERE status = 'needs_reauth'", "ig_user_id, username, status_reason"),
        # From debug_token (token_lifecycle): a missing permission makes its syncs fail; so does lost data access.
        Rule("token_missing_permissions", f"{scope} AND cardinality(token_missing_scopes) > 0",
             "ig_user_id, username, token_missing_scopes"),
        Rule("data_access_expired", f"{scope} AND token_data_access_expires_at <= :now",
             "ig_user_id, username, token_data_access_expires_at"),
        # An Instagram-Login refresh failed: the old token still works until it expires.
        Rule("token_refresh_failed", f"{scope} AND token_refresh_error IS NOT NULL",
             "ig_user_id, username, token_refresh_error, token_expires_at", severity=WARN),
    ]
    return evaluate_rules(conn, rules, {"now": now, "soon": now + TOKEN_EXPIRY_WARN},
                          description=f"Active accounts have a stored token that is not expired, has the permissions "
                                      f"it needs and refreshes (WARN within {TOKEN_EXPIRY_WARN.days} days of expiry "
                                      f"or after a failed refresh).")
