"""Token and discovery calls of the Graph API: ``debug_token``, the Instagram-Login refresh, ``/me/accounts``; and
which host serves an account (Facebook Login: graph.facebook.com, Instagram Login: graph.instagram.com).

Tokens travel in the Authorization header (or, where Meta requires it, the query string of a request that is
never printed); every error text is redacted. Plain Python (requests), no Dagster.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable

import requests

from ig_analytics import clock
from ig_analytics.graph_api.catalogue import normalize_version
from ig_analytics.graph_api.errors import GraphApiError, MalformedResponseError, TransientApiError, classify_error
from ig_analytics.graph_api.parsing import graph_id
from ig_analytics.graph_api.models import DiscoveredPage, RefreshedToken, TokenInfo
from ig_analytics.graph_api.token_format import token_problem
from ig_analytics.redaction import redact, register_secret

if TYPE_CHECKING:
    from ig_analytics.settings import Settings

FACEBOOK_HOST = "https://graph.facebook.com"
INSTAGRAM_HOST = "https://graph.instagram.com"
LOGIN_KINDS = ("facebook", "instagram")

# What each login kind needs to sync (Meta's names); discovery also needs pages_show_list.
REQUIRED_SCOPES = {
    "facebook": ("instagram_basic", "instagram_manage_insights", "pages_read_engagement"),
    "instagram": ("instagram_business_basic", "instagram_business_manage_insights"),
}
DISCOVERY_SCOPES = ("pages_show_list", "instagram_basic", "instagram_manage_insights", "pages_read_engagement")
PAGES_PAGE_LIMIT = 100
MAX_PAGES = 100  # /me/accounts pages followed at most (100 Pages each: 10,000 Pages)


def detect_login_kind(token: str) -> str:
    """Instagram-Login tokens start with ``IG`` (``IGAA...``, formerly ``IGQ...``); Facebook-Login ones with
    ``EAA``. Anything else is taken as Facebook Login, the older and more common way."""
    return "instagram" if token.strip().startswith("IG") else "facebook"


def base_url_for(login_kind: str, configured: str) -> str:
    """The host for an account: ``IG_GRAPH_API_URL`` when it is set to something else than the default
    (sandbox, tests, a proxy) serves both kinds; otherwise each kind has Meta's host."""
    configured = configured.rstrip("/")
    if configured != FACEBOOK_HOST:
        return configured
    return INSTAGRAM_HOST if login_kind == "instagram" else FACEBOOK_HOST


def missing_scopes(login_kind: str, scopes: Iterable[str], *, discovery: bool = False) -> list[str]:
    """Required permissions that ``scopes`` lacks. An Instagram-Login token may also carry the older names."""
    granted = set(scopes)
    if login_kind == "instagram":  # instagram_business_X and instagram_X grant the same
        granted |= {s.replace("instagram_", "instagram_business_", 1) for s in granted}
    need = DISCOVERY_SCOPES if discovery else REQUIRED_SCOPES.get(login_kind, REQUIRED_SCOPES["facebook"])
    return [s for s in need if s not in granted]


def _ts(value: Any) -> datetime | None:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(seconds, timezone.utc) if seconds > 0 else None


class TokenApi:
    """Calls that are about tokens rather than one account's data. ``app_id`` + ``app_secret`` enable
    ``debug_token`` (an app token ``APP_ID|APP_SECRET``)."""

    def __init__(self, base_url: str, version: str | None = None, *, app_id: str | None = None,
                 app_secret: str | None = None, timeout: tuple[float, float] = (5.0, 30.0), max_attempts: int = 3,
                 backoff_s: float = 0.5, sleep: Callable[[float], None] = time.sleep,
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.version = normalize_version(version)
        self.app_id = app_id or None
        self.app_secret = app_secret or None
        if self.app_secret:
            register_secret(self.app_secret)
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.session = session or requests.Session()

    @classmethod
    def from_settings(cls, settings: "Settings", *, app_id: str | None = None, **options: Any) -> "TokenApi":
        """The token calls the product's settings describe (IG_GRAPH_API_URL, IG_GRAPH_API_VERSION, IG_APP_SECRET;
        ``app_id`` is IG_APP_ID), as ``GraphApiClient.from_settings`` builds the data client."""
        return cls(settings.graph_api_url, settings.graph_api_version, app_id=app_id,
                   app_secret=settings.app_secret, **options)

    def __repr__(self) -> str:
        return f"TokenApi(base_url={self.base_url!r}, app={'set' if self.can_inspect else 'unset'})"

    @property
    def can_inspect(self) -> bool:
        return bool(self.app_id and self.app_secret)

    # ---- calls ---------------------------------------------------------------------------------------------
    def debug_token(self, token: str, login_kind: str = "facebook") -> TokenInfo:
        """Expiry, data-access expiry and scopes of ``token`` (needs the app id and secret)."""
        if not self.can_inspect:
            raise ValueError("debug_token needs IG_APP_ID and IG_APP_SECRET")
        register_secret(token)
        url = f"{base_url_for('facebook', self.base_url)}/{self.version}/debug_token"
        payload = self._get(url, {"input_token": token, "access_token": f"{self.app_id}|{self.app_secret}"},
                            endpoint="/debug_token")
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict):
            raise MalformedResponseError(endpoint="/debug_token", api_message="debug_token reply without data")
        error = data.get("error") if isinstance(data.get("error"), dict) else None
        return TokenInfo(
            is_valid=bool(data.get("is_valid")),
            expires_at=_ts(data.get("expires_at")),
            data_access_expires_at=_ts(data.get("data_access_expires_at")),
            issued_at=_ts(data.get("issued_at")),
            scopes=tuple(str(s) for s in data.get("scopes") or ()),
            type=data.get("type"),
            error=redact(str(error.get("message"))) if error else None,
        )

    def refresh_instagram_token(self, token: str, now: datetime | None = None) -> RefreshedToken:
        """A new 60-day Instagram-Login token (the old one keeps working until it expires)."""
        register_secret(token)
        url = f"{base_url_for('instagram', self.base_url)}/refresh_access_token"
        payload = self._get(url, {"grant_type": "ig_refresh_token", "access_token": token},
                            endpoint="/refresh_access_token")
        new = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(new, str) or not new:
            raise MalformedResponseError(endpoint="/refresh_access_token", api_message="reply without access_token")
        if token_problem(new):  # checked at the door like a pasted token: the old one is kept
            raise MalformedResponseError(endpoint="/refresh_access_token", api_message=token_problem(new))
        register_secret(new)
        expires_in = payload.get("expires_in")
        now = now or clock.now()
        expires_at = now + timedelta(seconds=int(expires_in)) if isinstance(expires_in, (int, float)) else None
        return RefreshedToken(new, expires_at)

    def list_pages(self, user_token: str, notes: list[str] | None = None) -> list[DiscoveredPage]:
        """Every Page the Facebook user manages (all result pages), with its linked IG account and Page token.
        The paging ends on a repeated cursor, a page of Pages listed already, or after ``MAX_PAGES`` pages: the
        reason is appended to ``notes``. A Page or account whose id is not a Graph id is left out (a note too)."""
        register_secret(user_token)
        notes = notes if notes is not None else []
        url = f"{base_url_for('facebook', self.base_url)}/{self.version}/me/accounts"
        params = {"fields": "id,name,access_token,instagram_business_account{id,username}",
                  "limit": str(PAGES_PAGE_LIMIT)}
        if self.app_secret:
            params["appsecret_proof"] = hmac.new(self.app_secret.encode(), user_token.encode(),
                                                 hashlib.sha256).hexdigest()
        pages: dict[str, DiscoveredPage] = {}
        cursors: set[str] = set()
        for _ in range(MAX_PAGES):
            payload = self._get(url, params, endpoint="/me/accounts", bearer=user_token)
            items = payload.get("data") if isinstance(payload, dict) else None
            if not isinstance(items, list):
                raise MalformedResponseError(endpoint="/me/accounts", api_message="reply without a data list")
            listed_before = len(pages)
            for item in items:
                page = _page_of(item, notes)
                if page is not None:
                    pages.setdefault(page.page_id, page)
            paging = payload.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after or not items:
                return list(pages.values())
            if str(after) in cursors or len(pages) == listed_before:
                notes.append("/me/accounts repeated a page; stopped listing there (Pages after it may be missing)")
                return list(pages.values())
            cursors.add(str(after))
            params = {**params, "after": str(after)}  # the cursor, not paging.next: that URL holds the token
        notes.append(f"/me/accounts still had more after {MAX_PAGES} pages; stopped listing there")
        return list(pages.values())

    # ---- HTTP ----------------------------------------------------------------------------------------------
    def _get(self, url: str, params: dict[str, str], *, endpoint: str, bearer: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        failures = 0
        while True:
            try:
                response = self.session.get(url, params=params, headers=headers, timeout=self.timeout)
                error = self._error_of(response, endpoint, failures + 1)
                if error is None:
                    return response.json()
            except requests.RequestException as exc:  # the text names the URL, which may hold a token
                error = TransientApiError(endpoint=endpoint, attempts=failures + 1,
                                          api_message=f"{type(exc).__name__} (cannot reach {redact(url)})")
            failures += 1
            if not isinstance(error, TransientApiError) or failures >= self.max_attempts:
                raise error
            self.sleep(self.backoff_s * 2 ** (failures - 1))

    @staticmethod
    def _error_of(response: requests.Response, endpoint: str, attempts: int) -> GraphApiError | None:
        try:
            body = response.json()
        except ValueError:
            return MalformedResponseError(endpoint=endpoint, http_status=response.status_code, attempts=attempts,
                                          api_message="the reply is not JSON")
        if response.status_code == 200 and not (isinstance(body, dict) and "error" in body):
            return None
        err = body.get("error") if isinstance(body, dict) else None
        return classify_error(response.status_code, err if isinstance(err, dict) else None, ig_user_id=None,
                              endpoint=endpoint, attempts=attempts)


def _page_of(item: Any, notes: list[str]) -> DiscoveredPage | None:
    """One ``/me/accounts`` item; ids may be JSON numbers (kept as text); an id that is not a Graph id is refused,
    since it becomes a URL path. ``name`` and ``access_token`` may be absent (fields not granted)."""
    if not isinstance(item, dict) or item.get("id") is None:
        return None
    ig = item.get("instagram_business_account")
    ig = ig if isinstance(ig, dict) else {}
    page_id, ig_user_id = graph_id(item["id"]), graph_id(ig.get("id")) if ig.get("id") is not None else None
    if page_id is None or (ig.get("id") is not None and ig_user_id is None):
        notes.append(f"a Page with an id that is not a Graph id was skipped ({ascii(str(item['id']))[1:-1][:40]})")
        return None
    token = item.get("access_token") if isinstance(item.get("access_token"), str) else None
    register_secret(token)
    name = item.get("name") if isinstance(item.get("name"), str) else None
    username = ig.get("username") if isinstance(ig.get("username"), str) else None
    return DiscoveredPage(page_id=page_id, name=name, ig_user_id=ig_user_id, username=username, token=token)
