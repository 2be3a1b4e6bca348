"""Errors of the Graph API client, and the classification of Graph API error payloads.

Every error's ``str()`` is one or two sentences: what happened (account, code/subcode, fbtrace_id), then what
to do. No error text, attribute or repr ever carries an access token: the API's own message is redacted before
it is stored (``api_message``).
"""

from __future__ import annotations

import re
from typing import Any

from ig_analytics.redaction import redact

__all__ = [
    "GraphApiError",
    "TokenInvalidError",
    "PermissionDeniedError",
    "ThrottledError",
    "TransientApiError",
    "InvalidRequestError",
    "MalformedResponseError",
    "THROTTLE_CODES",
    "TRANSIENT_CODES",
    "TOKEN_CODES",
    "SKIP_SUBCODES",
    "is_not_enough_viewers",
    "classify_error",
    "ITEM",
    "ACCOUNT",
    "error_scope",
]

THROTTLE_CODES = frozenset({4, 17, 32, 341, 613, 80001, 80002})
TRANSIENT_CODES = frozenset({1, 2})
TOKEN_CODES = frozenset({190, 102})
# code 100 subcodes that mean "skip this item": media from before the business conversion; object missing.
OBJECT_NOT_VISIBLE_SUBCODE = 33  # "does not exist, cannot be loaded due to missing permissions"
SKIP_SUBCODES = frozenset({2108006, OBJECT_NOT_VISIBLE_SUBCODE})

_TOKEN_SUBCODES = {
    458: "the app is not installed for this user",
    459: "the user is checkpointed (must log in to Facebook/Instagram)",
    460: "the password was changed",
    463: "session expired",
    464: "the user is not confirmed",
    467: "the access token is invalid",
    492: "the user lost access to the page/account",
}
_KNOWN_PERMISSIONS = (
    "instagram_business_manage_insights",
    "instagram_manage_insights",
    "instagram_business_basic",
    "instagram_basic",
    "pages_read_engagement",
    "pages_show_list",
    "business_management",
    "read_insights",
)


def _reconnect_hint(ig_user_id: str | None) -> str:
    account = ig_user_id or "ACCOUNT_ID"
    return f"ig-analytics accounts add --ig-user-id {account} --token NEW_TOKEN"


class GraphApiError(Exception):
    """Base class. Attributes: code, subcode, fbtrace_id, http_status, ig_user_id, api_message, hint."""

    default_hint = "Check the message above; the next scheduled run will try again."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: int | None = None,
        subcode: int | None = None,
        fbtrace_id: str | None = None,
        http_status: int | None = None,
        ig_user_id: str | None = None,
        api_message: str | None = None,
        hint: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.code = code
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id
        self.http_status = http_status
        self.ig_user_id = ig_user_id
        self.api_message = redact(api_message) if api_message else api_message
        self.endpoint = redact(endpoint) if endpoint else endpoint
        self.hint = hint if hint is not None else self._default_hint()
        text = message if message is not None else self._default_message()
        super().__init__(redact(text))

    # -- message building ------------------------------------------------------------------------------
    def _default_hint(self) -> str:
        return self.default_hint

    def _default_message(self) -> str:
        return f"The Graph API failed for {self._where()} ({self._ids()}). {self.hint}"

    def _where(self) -> str:
        where = f"account {self.ig_user_id}" if self.ig_user_id else "an account"
        if self.endpoint:
            where += f" at {self.endpoint}"
        return where

    def _code_text(self) -> str:
        if self.code is None:
            return f"HTTP {self.http_status}" if self.http_status else "no error code"
        text = f"code {self.code}"
        if self.subcode:
            text += f"/{self.subcode}"
        return text

    def _ids(self, detail: str | None = None) -> str:
        parts = [self._code_text() + (f": {detail}" if detail else "")]
        if self.http_status and self.code is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.fbtrace_id:
            parts.append(f"fbtrace_id {self.fbtrace_id}")
        return ", ".join(parts)

    def _short_api_message(self, limit: int = 160) -> str | None:
        if not self.api_message:
            return None
        text = " ".join(self.api_message.split())
        return text if len(text) <= limit else text[: limit - 3] + "..."

    # -- misc --------------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self):  # picklable across processes (Dagster may pickle failures)
        state = dict(self.__dict__)
        return (_rebuild_error, (type(self), str(self), state))


def _rebuild_error(cls, message, state):
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class TokenInvalidError(GraphApiError):
    """Codes 190 / 102: the token is expired or invalid. Never retried; the account needs re-authentication."""

    def _default_hint(self) -> str:
        return f"Reconnect the account: {_reconnect_hint(self.ig_user_id)}"

    def _default_message(self) -> str:
        if self.subcode in _TOKEN_SUBCODES:
            detail = _TOKEN_SUBCODES[self.subcode]
        elif self.code == 102:
            detail = "API session invalid"
        else:
            detail = "token invalid or expired"
        account = self.ig_user_id or "(unknown)"
        return f"Instagram rejected the access token of account {account} ({self._ids(detail)}). {self.hint}"


class PermissionDeniedError(GraphApiError):
    """Codes 10 / 200-299: the token lacks a permission. Never retried; the account needs a new token."""

    def __init__(self, *args: Any, permission: str | None = None, **kwargs: Any) -> None:
        self.permission = permission
        super().__init__(*args, **kwargs)

    def _default_hint(self) -> str:
        perm = getattr(self, "permission", None)
        grant = f"a token that grants {perm}" if perm else "a token with instagram_basic and instagram_manage_insights"
        return f"Reconnect the account with {grant}: {_reconnect_hint(self.ig_user_id)}"

    def _default_message(self) -> str:
        perm = f"the {self.permission} permission" if self.permission else "a required permission"
        account = self.ig_user_id or "(unknown)"
        where = f" for {self.endpoint}" if self.endpoint else ""
        return f"The access token of account {account} lacks {perm}{where} ({self._ids()}). {self.hint}"


class ThrottledError(GraphApiError):
    """Rate limited (codes 4, 17, 32, 341, 613, 80002, or usage headers) for longer than the client may wait.

    ``retry_after_s``: seconds until the account may be called again (estimate).
    """

    def __init__(self, *args: Any, retry_after_s: float = 0.0, max_wait_s: float | None = None, **kwargs: Any):
        self.retry_after_s = float(retry_after_s)
        self.max_wait_s = max_wait_s
        super().__init__(*args, **kwargs)

    def _default_hint(self) -> str:
        return (f"Other accounts go on; sync this one again in about {_human_seconds(self.retry_after_s)} "
                "(the next scheduled run will).")

    def _default_message(self) -> str:
        limit = f" (more than the {self.max_wait_s:.0f} s the client may wait)" if self.max_wait_s is not None else ""
        account = self.ig_user_id or "(unknown)"
        return (f"Instagram rate-limits account {account} for about {_human_seconds(self.retry_after_s)}{limit} "
                f"({self._ids()}). {self.hint}")


class TransientApiError(GraphApiError):
    """Codes 1, 2, is_transient, HTTP 5xx/429, timeouts, connection errors: still failing after all attempts."""

    def __init__(self, *args: Any, attempts: int | None = None, **kwargs: Any) -> None:
        self.attempts = attempts
        super().__init__(*args, **kwargs)

    def _default_hint(self) -> str:
        return ("This is usually a temporary problem at Meta or on the network: the next run retries; "
                "if it persists, check https://metastatus.com.")

    def _default_message(self) -> str:
        tries = _after(self.attempts)
        detail = self._short_api_message()
        return f"The Graph API kept failing for {self._where()}{tries} ({self._ids(detail)}). {self.hint}"


class InvalidRequestError(GraphApiError):
    """Code 100 (and other unclassified client errors) that cannot be fixed by dropping a metric. Not retried."""

    def _default_hint(self) -> str:
        if self.code == 100 and self.subcode == OBJECT_NOT_VISIBLE_SUBCODE:
            # The object does not exist for this token: a mistyped id, or a token of another account.
            account = self.ig_user_id or "this id"
            return (f"This token cannot see account {account}: the id is wrong, or the token belongs to another "
                    "account. Check the Instagram business account id and use that account's own token.")
        return ("The request is not accepted by this API version; report it with the fbtrace_id "
                "(or set IG_GRAPH_API_VERSION to a supported version).")

    def _default_message(self) -> str:
        detail = self._short_api_message()
        return f"The Graph API rejected a request for {self._where()} ({self._ids(detail)}). {self.hint}"


class MalformedResponseError(TransientApiError):
    """The response body was not the JSON expected (truncated, not JSON, wrong shape), after all attempts."""

    def _default_hint(self) -> str:
        return "Usually a temporary problem (truncated response): the next run retries."

    def _default_message(self) -> str:
        tries = _after(self.attempts)
        detail = self._short_api_message() or "unreadable body"
        return (f"The Graph API returned an unreadable response for {self._where()}{tries} "
                f"({self._ids(detail)}). {self.hint}")


def _after(attempts: int | None) -> str:
    if not attempts:
        return ""
    return f" after {attempts} attempt{'s' if attempts != 1 else ''}"


def _human_seconds(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


_NOT_ENOUGH_VIEWERS_RE = re.compile(r"not\s+enough\s+viewers", re.IGNORECASE)


def is_not_enough_viewers(code: int | None, message: str | None) -> bool:
    """Code 10 "Not enough viewers" (a story seen by fewer than 5 accounts): skip the item, not a permission."""
    return code == 10 and bool(message) and bool(_NOT_ENOUGH_VIEWERS_RE.search(message))


def permission_from(message: str | None, endpoint: str | None) -> str | None:
    """The permission a code 10/200-299 error is about: named in the message, else inferred from the endpoint."""
    text = (message or "").lower()
    for perm in _KNOWN_PERMISSIONS:
        if perm in text:
            return perm
    if endpoint:
        if "insights" in endpoint:
            return "instagram_manage_insights"
        return "instagram_basic"
    return None


def error_fields(payload: Any) -> dict[str, Any]:
    """The ``error`` object of a Graph API error body (or {} when there is none)."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return payload["error"]
    return {}


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def classify_error(
    http_status: int | None,
    error: dict[str, Any] | None,
    *,
    ig_user_id: str | None,
    endpoint: str | None,
    attempts: int | None = None,
) -> GraphApiError:
    """Map a Graph API error (HTTP status + ``error`` object) to the client's error class.

    The decision is made on ``error.code`` first (throttles arrive as HTTP 400), then on ``is_transient`` and
    the HTTP status. Code 10 "Not enough viewers" is reported as InvalidRequestError here; the media code
    checks ``is_not_enough_viewers`` first and skips the item.
    """
    error = error or {}
    code = _int_or_none(error.get("code"))
    subcode = _int_or_none(error.get("error_subcode"))
    message = str(error.get("message") or error.get("error_user_msg") or "")
    common = dict(
        code=code,
        subcode=subcode,
        fbtrace_id=(str(error["fbtrace_id"]) if error.get("fbtrace_id") else None),
        http_status=http_status,
        ig_user_id=ig_user_id,
        api_message=message or None,
        endpoint=endpoint,
    )
    if code in TOKEN_CODES:
        return TokenInvalidError(**common)
    if code in THROTTLE_CODES:
        return ThrottledError(**common)
    if code is not None and (code == 10 or 200 <= code <= 299):
        if is_not_enough_viewers(code, message):
            return InvalidRequestError(**common)
        return PermissionDeniedError(permission=permission_from(message, endpoint), **common)
    if code in TRANSIENT_CODES or error.get("is_transient") is True:
        return TransientApiError(attempts=attempts, **common)
    if http_status is not None and (http_status >= 500 or http_status == 429):
        return TransientApiError(attempts=attempts, **common)
    return InvalidRequestError(**common)


# What an error costs, by where it answered (docs/graph-api-client.md, "What an error costs").
ITEM = "item"  # one post, story or carousel child: that item is refused, the account goes on
ACCOUNT = "account"  # the account's own calls, or a token error anywhere: the account fails (needs_reauth)


def error_scope(err: GraphApiError, *, on_item: bool) -> str:
    """Whether ``err`` costs one item or the whole account.

    A token is the account's wherever it is refused; a permission refused on one post's call is that post's (Meta
    answers code 10 for single posts it will not open to this app), while on the account's own calls (profile,
    account insights, media list) it is the account's. Permission refusals on *every* item alike are decided by
    the caller, which sees all items (``BatchRounds``): they mark the account too.
    """
    if isinstance(err, (TokenInvalidError, ThrottledError)):  # a throttle pauses the account's every call
        return ACCOUNT
    return ITEM if on_item else ACCOUNT
