"""Sandbox tokens with a lifecycle: issue time and expiry on the sandbox clock, scopes, Facebook users and Pages.

The accounts' built-in tokens (``SandboxAccount.token``) stay what they always were: Facebook-Login tokens that
work at any sandbox time (unless the spec says ``expired_token``) and grant every permission; ``debug_token``
describes them as long-lived user tokens issued a day before the world's reference time. Tokens issued here add:

* Instagram-Login tokens (``IGAA...``, 60 days, refreshable once 24 h old: ``refresh_access_token``),
* Facebook user tokens (``EAA...``, 60 days) whose Pages are listed by ``/me/accounts``, and the Pages' tokens
  (``EAA...``, never expire), each working for the IG account linked to its Page,
* any of them with fewer scopes (a token without ``instagram_manage_insights`` cannot read ``/insights``).

``registry(world)`` is the world's registry (created on first use). Endpoints: ``tokens_api.py``.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Sequence

from ig_analytics.sandbox import errors
from ig_analytics.sandbox.errors import GraphError

if TYPE_CHECKING:  # pragma: no cover
    from ig_analytics.sandbox.account import SandboxAccount
    from ig_analytics.sandbox.world import SandboxWorld

LONG_LIVED = timedelta(days=60)
REFRESH_MIN_AGE = timedelta(hours=24)
DATA_ACCESS = timedelta(days=90)
APP_ID = "1000000000000001"
FACEBOOK_SCOPES = ("instagram_basic", "instagram_manage_insights", "pages_read_engagement", "pages_show_list",
                   "business_management")
INSTAGRAM_SCOPES = ("instagram_business_basic", "instagram_business_manage_insights")
INSIGHTS_SCOPES = frozenset({"instagram_manage_insights", "instagram_business_manage_insights"})

_registry_lock = threading.Lock()


@dataclass
class SandboxToken:
    token: str
    kind: str  # "ig_login" | "fb_user" | "page"
    issued_at: datetime
    expires_at: datetime | None  # None: never
    scopes: tuple[str, ...]
    ig_user_id: str | None = None  # the IG account the token works for
    user_id: str | None = None  # the Facebook user (fb_user / page tokens)
    page_id: str | None = None
    uses: int = 0  # authenticated API calls made with it

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @property
    def graph_type(self) -> str:
        return "PAGE" if self.kind == "page" else "USER"


@dataclass
class SandboxPage:
    page_id: str
    name: str | None  # None: listed without name and access_token (fields not granted)
    ig_user_id: str | None  # the linked IG business/creator account, or None
    token: str = field(repr=False, default="")


class TokenRegistry:
    def __init__(self, world: "SandboxWorld") -> None:
        self.world = world
        self._lock = threading.Lock()
        self._tokens: dict[str, SandboxToken] = {}
        self._pages: dict[str, list[SandboxPage]] = {}  # Facebook user id -> Pages
        self._counter = itertools.count(1)
        self._default_user_token: str | None = None

    # ------------------------------------------------------------------ issuing
    def _new_token(self, prefix: str) -> str:
        n = next(self._counter)
        digest = hashlib.sha256(f"{self.world.seed}:{prefix}:{n}".encode()).hexdigest()
        return prefix + digest[:56]

    def issue(self, kind: str, *, ig_user_id: str | None = None, issued_at: datetime | None = None,
              lifetime: timedelta | None = LONG_LIVED, scopes: Sequence[str] | None = None,
              user_id: str | None = None, page_id: str | None = None) -> str:
        issued_at = issued_at or self.world.clock.now()
        if scopes is None:
            scopes = INSTAGRAM_SCOPES if kind == "ig_login" else FACEBOOK_SCOPES
        token = self._new_token("IGAA" if kind == "ig_login" else "EAA")
        rec = SandboxToken(token, kind, issued_at, issued_at + lifetime if lifetime else None, tuple(scopes),
                           ig_user_id, user_id, page_id)
        with self._lock:
            self._tokens[token] = rec
        return token

    def issue_instagram_login(self, ig_user_id: str, *, age: timedelta = timedelta(0),
                              scopes: Sequence[str] | None = None) -> str:
        """An Instagram-Login long-lived token for ``ig_user_id``, issued ``age`` ago on the sandbox clock."""
        self.world.account(ig_user_id)  # must exist
        return self.issue("ig_login", ig_user_id=ig_user_id, issued_at=self.world.clock.now() - age, scopes=scopes)

    def add_facebook_user(self, pages: Sequence[tuple[str | None, str | None]], *, scopes: Sequence[str] | None = None,
                          user_id: str | None = None) -> str:
        """A Facebook user managing ``pages`` (name, linked ig_user_id or None); returns the user's token. Each
        Page gets a never-expiring Page token with the user's scopes; a Page named None is listed without
        ``name`` and ``access_token``, as when those fields are not granted."""
        with self._lock:
            user_id = user_id or f"1000{len(self._pages) + 1:011d}"
        user_token = self.issue("fb_user", user_id=user_id, scopes=scopes)
        rec = self._tokens[user_token]
        listed = []
        for i, (name, ig_user_id) in enumerate(pages):
            if ig_user_id is not None:
                self.world.account(ig_user_id)
            page_id = f"{user_id}{i + 1:04d}"
            token = self.issue("page", ig_user_id=ig_user_id, lifetime=None, scopes=rec.scopes, user_id=user_id,
                               page_id=page_id)
            listed.append(SandboxPage(page_id, name, ig_user_id, token))
        with self._lock:
            self._pages[user_id] = listed
        return user_token

    def default_facebook_user_token(self) -> str:
        """The user printed by ``ig-analytics sandbox``: a Page per account plus one Page without IG account."""
        if self._default_user_token is None:
            with _registry_lock:
                if self._default_user_token is None:
                    pages = [(a.name or a.username, a.ig_user_id) for a in self.world.accounts]
                    pages.append(("Sandbox Page without Instagram", None))
                    self._default_user_token = self.add_facebook_user(pages)
        return self._default_user_token

    # ------------------------------------------------------------------ lookups
    def lookup(self, token: str) -> SandboxToken | None:
        return self._tokens.get(token)

    def pages_of(self, user_id: str) -> list[SandboxPage]:
        return list(self._pages.get(user_id, []))

    def uses(self, token: str) -> int:
        rec = self._tokens.get(token)
        return rec.uses if rec else 0

    def builtin(self, token: str) -> "SandboxAccount | None":
        return self.world.account_by_token(token)

    def authenticate(self, token: str, edge: str | None, now: datetime) -> "SandboxAccount":
        """The IG account an issued token works for (raises Meta's errors: invalid, expired, no permission)."""
        rec = self._tokens.get(token)
        if rec is None:
            raise errors.invalid_token()
        if rec.expired(now):
            raise errors.expired_token(rec.expires_at, now)
        if rec.ig_user_id is None:
            raise GraphError(400, 100, "(#100) This token is not linked to an Instagram professional account; "
                             "use the Page's access token from /me/accounts", type="OAuthException")
        if edge == "insights" and not INSIGHTS_SCOPES & set(rec.scopes):
            raise GraphError(403, 10, "(#10) Application does not have permission for this action: "
                             "instagram_manage_insights is required", type="OAuthException")
        with self._lock:
            rec.uses += 1
        return self.world.account(rec.ig_user_id)

    # ------------------------------------------------------------------ lifecycle
    def refresh(self, token: str, now: datetime) -> SandboxToken:
        rec = self._tokens.get(token)
        if rec is None or rec.kind != "ig_login":
            if rec is None and self.builtin(token) is None:
                raise errors.invalid_token()
            raise errors.param("(#100) Only Instagram-Login long-lived tokens can be refreshed "
                               "(grant_type=ig_refresh_token)")
        if rec.expired(now):
            raise errors.expired_token(rec.expires_at, now)
        if now - rec.issued_at < REFRESH_MIN_AGE:
            raise errors.param("(#100) The access token is too recent to be refreshed: it must be at least 24 "
                               "hours old")
        new = self.issue("ig_login", ig_user_id=rec.ig_user_id, issued_at=now, scopes=rec.scopes)
        return self._tokens[new]

    def debug(self, token: str, now: datetime) -> dict:
        """``debug_token``'s ``data``."""
        rec = self._tokens.get(token)
        acct = self.builtin(token) if rec is None else None
        if rec is None and acct is None:
            return {"is_valid": False, "scopes": [], "granular_scopes": [],
                    "error": {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"}}
        if rec is None:  # a built-in account token: a long-lived Facebook user token issued the day before ref_time
            ref = self.world.ref_time  # (authentication ignores its expiry: existing tests move the clock freely)
            issued = ref - timedelta(days=1)
            expires = ref - timedelta(days=3, hours=5) if acct.expired_token else issued + LONG_LIVED
            rec = SandboxToken(token, "fb_user", issued, expires, FACEBOOK_SCOPES, acct.ig_user_id)
        valid = not rec.expired(now)
        ids = [rec.ig_user_id] if rec.ig_user_id else [p.ig_user_id for p in self._pages.get(rec.user_id or "", [])
                                                       if p.ig_user_id]
        data = {
            "app_id": int(APP_ID), "type": rec.graph_type,  # ids as JSON numbers, as some real replies have them "application": "ig-analytics sandbox",
            "is_valid": valid,
            "issued_at": int(rec.issued_at.timestamp()),
            "expires_at": int(rec.expires_at.timestamp()) if rec.expires_at else 0,
            "data_access_expires_at": int((max(rec.issued_at, now) + DATA_ACCESS).timestamp()) if valid else 0,
            "scopes": list(rec.scopes),
            "granular_scopes": [{"scope": s, "target_ids": ids} if s.startswith("instagram") else {"scope": s}
                                for s in rec.scopes],
        }
        if rec.user_id:
            data["user_id"] = int(rec.user_id) if rec.user_id.isdigit() else rec.user_id
        if rec.page_id:
            data["profile_id"] = rec.page_id
        if not valid:
            data["error"] = {"code": 190, "subcode": 463, "message": "Session has expired"}
        return data


def registry(world: "SandboxWorld") -> TokenRegistry:
    reg = getattr(world, "_token_registry", None)
    if reg is None:
        with _registry_lock:
            reg = getattr(world, "_token_registry", None)
            if reg is None:
                reg = TokenRegistry(world)
                world._token_registry = reg  # type: ignore[attr-defined]
    return reg
