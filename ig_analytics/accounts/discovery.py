"""``accounts discover``: every IG business or creator account linked to the Pages of a Facebook user (or system
user), added with its Page's token. Re-running adds the new ones and changes nothing else (existing accounts
keep their token, timezone and status)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ig_analytics import clock
from ig_analytics.accounts import repository as repo
from ig_analytics.graph_api.errors import GraphApiError
from ig_analytics.graph_api.models import DiscoveredPage, TokenInfo
from ig_analytics.graph_api.tokens import TokenApi, missing_scopes
from ig_analytics.accounts.token_lifecycle import describe_error, inspect_token
from ig_analytics.accounts.token_vault import TokenVault


@dataclass
class DiscoveryResult:
    pages: list[DiscoveredPage]
    added: list[DiscoveredPage] = field(default_factory=list)
    existing: list[DiscoveredPage] = field(default_factory=list)
    missing_user_scopes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def unlinked(self) -> list[DiscoveredPage]:
        return [p for p in self.pages if p.ig_user_id is None]

    def lines(self, dry_run: bool) -> list[str]:
        out = []
        for page in self.added:
            verb = "WOULD ADD" if dry_run else "ADDED"
            out.append(f"{verb} {page.ig_user_id} (@{page.username or '?'}) via {_page_label(page)}")
        for page in self.existing:
            out.append(f"EXISTS {page.ig_user_id} (@{page.username or '?'}) via {_page_label(page)}: unchanged")
        for page in self.unlinked:
            out.append(f"SKIPPED {_page_label(page)}: no linked Instagram business or creator account")
        out.extend(f"WARNING {w}" for w in self.warnings)
        linked = len(self.pages) - len(self.unlinked)
        out.append(f"{len(self.pages)} Pages, {linked} with an Instagram account: "
                   f"{len(self.added)} {'to add' if dry_run else 'added'}, {len(self.existing)} already known")
        return out


def discover_accounts(engine: Engine, vault: TokenVault, api: TokenApi, user_token: str, *,
                      dry_run: bool = False, now: datetime | None = None) -> DiscoveryResult:
    """List the user's Pages (all result pages) and add the linked accounts not known yet."""
    now = now or clock.now()
    missing: list[str] = []
    info: TokenInfo | None = None
    if api.can_inspect:  # name what the user token lacks before /me/accounts fails or returns Pages without tokens
        info = api.debug_token(user_token)
        if not info.is_valid:
            raise repo.AccountError(f"The Facebook token is not valid ({info.error or 'expired or revoked'}): log in "
                                    "again and pass the new user token on stdin.")
        missing = missing_scopes("facebook", info.scopes, discovery=True)
    notes: list[str] = []
    pages = api.list_pages(user_token, notes)
    result = DiscoveryResult(pages, missing_user_scopes=missing, warnings=notes)
    if missing:
        result.warnings.append(f"the Facebook token lacks {', '.join(missing)}: accounts may be missing or fail "
                               "to sync; log in again granting them")
    with engine.connect() as conn:
        known = {r[0] for r in conn.execute(sa.text("SELECT ig_user_id FROM instagram.accounts"))}
    seen: set[str] = set()
    for page in pages:
        if page.ig_user_id is None or page.ig_user_id in seen:
            continue
        seen.add(page.ig_user_id)
        if page.ig_user_id in known:
            result.existing.append(page)
            continue
        result.added.append(page)
        if dry_run:
            continue
        # The Page token works for the linked account and, derived from a long-lived user token, never expires.
        token = page.token or user_token
        if page.token is None:  # access_token not granted: the user's token stands in, and it expires
            result.warnings.append(f"{_page_label(page)} gave no Page token (access_token not granted): "
                                   f"{page.ig_user_id} uses your user token, {_expiry(info)}")
        repo.add_account(engine, vault, ig_user_id=page.ig_user_id, token=token, username=page.username,
                         login_kind="facebook")
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE instagram.accounts SET facebook_page_id = :p, facebook_page_name = :n"
                                 " WHERE ig_user_id = :i"), {"p": page.page_id, "n": page.name, "i": page.ig_user_id})
        if api.can_inspect:
            try:
                inspect_token(engine, api, page.ig_user_id, token, "facebook", now)
            except GraphApiError as exc:
                result.warnings.append(f"could not inspect the token of {page.ig_user_id}: {describe_error(exc)}")
    return result


def _page_label(page: DiscoveredPage) -> str:
    """A Page as the user knows it; ``name`` may be absent when not granted (graph-api-facts.md, section 9)."""
    if page.name is None:
        return f"Page {page.page_id} (its name was not granted)"
    return f"Page '{page.name}' ({page.page_id})"


def _expiry(info: TokenInfo | None) -> str:
    if info is None:
        return ("whose expiry is unknown (IG_APP_ID and IG_APP_SECRET are unset); run discover again with a Page "
                "token granted (pages_show_list, pages_read_engagement)")
    if info.expires_at is None:
        return "which does not expire"
    return (f"which expires on {info.expires_at:%Y-%m-%d %H:%M} UTC; run discover again with a Page token granted "
            "before then")
