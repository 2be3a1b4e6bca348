"""One account's HTTP requests: the token, one request with its retries, error classes and logging.

The token travels in the Authorization header of a GET, or in the form of a batch POST; it is never in a URL,
a log line or an error text (every message is redacted). Pacing is the :class:`~pacing.Pacer`'s.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import requests

from ig_analytics import stopping
from ig_analytics.graph_api.errors import (
    GraphApiError,
    InvalidRequestError,
    MalformedResponseError,
    PermissionDeniedError,
    ThrottledError,
    TokenInvalidError,
    TransientApiError,
    classify_error,
    error_fields,
)
from ig_analytics.graph_api.models import CallStats
from ig_analytics.graph_api.pacing import Pacer
from ig_analytics.graph_api.parsing import int_or_none
from ig_analytics.graph_api.rate_limit import Usage, parse_usage
from ig_analytics.graph_api.token_format import unsendable_token
from ig_analytics.redaction import redact, register_secret

if TYPE_CHECKING:
    from ig_analytics.graph_api.client import GraphApiClient

_REDUCE_DATA_RE = re.compile(r"reduce\s+the\s+amount\s+of\s+data", re.IGNORECASE)


class ReduceData(Exception):
    """The API asked to reduce the amount of data (code 1) on a paged list call: the caller shrinks its page."""

    def __init__(self, error: GraphApiError):
        super().__init__(str(error))
        self.error = error


def asks_to_reduce_data(err: GraphApiError) -> bool:
    return err.code == 1 and bool(_REDUCE_DATA_RE.search(err.api_message or ""))


@dataclass
class _Attempts:
    """The attempts of one request: ``failures`` count toward ``limit``; throttle pauses do not."""

    limit: int
    failures: int = 0
    sent: int = 0


@dataclass
class _Reply:
    status: int
    payload: Any
    shape_ok: bool  # the body was JSON
    error: dict[str, Any]  # the Graph error object ({} when none)
    usage: Usage  # the usage headers


class AccountTransport:
    """The account's side of the shared session. Use each from one thread (the account's)."""

    def __init__(self, client: "GraphApiClient", ig_user_id: str, token: str, login_kind: str,
                 stats: CallStats) -> None:
        if not token:
            raise ValueError(f"account {ig_user_id}: empty access token")
        register_secret(token)
        self.client = client
        self.ig_user_id = ig_user_id
        self.login_kind = login_kind
        self.api_root = client.api_root(login_kind)
        self.__token = token
        self._proof = client.appsecret_proof(token)
        self.stats = stats
        self.pacer = Pacer(client, ig_user_id, stats, self.log)

    # ==================================================================================================
    # one request, with retries, pacing and throttle pauses
    # ==================================================================================================
    def send(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        params: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        validate: Callable[[Any], bool] | None = None,
        reduce_data: bool = False,
        first_is_retry: bool = False,
        max_attempts: int | None = None,
    ) -> Any:
        """The parsed JSON of a successful answer. Transient failures and bodies that fail ``validate`` are
        retried with backoff up to ``max_attempts``; throttles pause the account and retry; the rest raise."""
        attempts = _Attempts(limit=max_attempts or self.client.max_attempts)
        url = f"{self.api_root}/{path}"
        while True:
            stopping.check()  # SIGTERM/SIGINT: no further request, whatever loop asked for it
            self.pacer.await_turn(endpoint)
            self._count(attempts, first_is_retry)
            try:
                reply = self._request(method, url, endpoint, params, form)
            except requests.exceptions.InvalidHeader:  # a stored token with a line break: retrying cannot help
                raise unsendable_token(self.ig_user_id, endpoint) from None
            except requests.RequestException as exc:
                self._network_failure(method, endpoint, exc, attempts)
                continue
            if reply.error or reply.status >= 400:
                self._api_error(method, endpoint, reply, attempts, reduce_data)
                continue
            self.pacer.observe(reply.usage)
            if not reply.shape_ok or (validate is not None and not validate(reply.payload)):
                self._malformed(endpoint, reply, attempts)
                continue
            self.pacer.succeeded()
            return reply.payload

    def _count(self, attempts: _Attempts, first_is_retry: bool) -> None:
        self.stats.calls += 1
        if attempts.sent or first_is_retry:
            self.stats.retries += 1
        attempts.sent += 1

    def _request(self, method: str, url: str, endpoint: str, params: dict[str, str] | None,
                 form: dict[str, str] | None) -> _Reply:
        """Send once and read the answer (not yet judged)."""
        client = self.client
        params_out = dict(params or {})
        headers: dict[str, str] = {}
        form_out: dict[str, str] | None = None
        if method == "GET":
            headers["Authorization"] = f"Bearer {self.__token}"
            if self._proof:
                params_out["appsecret_proof"] = self._proof
        else:
            form_out = dict(form or {})
            form_out["access_token"] = self.__token
            if self._proof:
                form_out["appsecret_proof"] = self._proof
        started = client.monotonic()
        response = client.session.request(method, url, params=params_out or None, data=form_out,
                                          headers=headers, timeout=client.timeout)
        elapsed = client.monotonic() - started
        if client.recorder is not None:  # sync --record: secrets removed there (graph_api/recording.py)
            client.recorder.record(method, url, params_out, form_out, response.status_code, response.headers,
                                   response.content)
        try:
            payload, shape_ok = json.loads(response.content.decode("utf-8")), True
        except (ValueError, UnicodeDecodeError):
            payload, shape_ok = None, False
        reply = _Reply(response.status_code, payload, shape_ok, error_fields(payload), parse_usage(response.headers))
        self.log(logging.DEBUG, f"{method} {endpoint} -> HTTP {reply.status} in {elapsed:.3f} s", endpoint=endpoint,
                 code=int_or_none(reply.error.get("code")), subcode=int_or_none(reply.error.get("error_subcode")),
                 fbtrace_id=reply.error.get("fbtrace_id") or response.headers.get("x-fb-trace-id"))
        return reply

    def _network_failure(self, method: str, endpoint: str, exc: requests.RequestException,
                         attempts: _Attempts) -> None:
        if isinstance(exc, _UNSENDABLE):  # fails the same way every time: never retried (retries: transient only)
            raise InvalidRequestError(
                ig_user_id=self.ig_user_id, endpoint=endpoint,
                # no text of the exception: an invalid header's message quotes the header, i.e. the token
                api_message=f"the request could not be sent ({type(exc).__name__}: the token or a header holds "
                            "characters HTTP does not allow, or the URL is invalid)",
                hint="Check the account's token (printable characters, no spaces or newlines) and IG_GRAPH_API_URL.",
            ) from None
        attempts.failures += 1
        err = TransientApiError(ig_user_id=self.ig_user_id, endpoint=endpoint, attempts=attempts.failures,
                                api_message=f"{type(exc).__name__}: {_exc_summary(exc)}")
        self.log(logging.WARNING, f"{method} {endpoint}: {type(exc).__name__} (attempt {attempts.failures})",
                 endpoint=endpoint, err=err)
        if attempts.failures >= attempts.limit:
            raise err from None
        self.pacer.backoff(attempts.failures)

    def _api_error(self, method: str, endpoint: str, reply: _Reply, attempts: _Attempts, reduce_data: bool) -> None:
        """Raise the error, or return after pausing (throttle) or backing off (transient) for the next attempt."""
        status = reply.status
        if not reply.error and not reply.shape_ok and 400 <= status < 500 and status != 429:
            raise InvalidRequestError(ig_user_id=self.ig_user_id, endpoint=endpoint, http_status=status,
                                      api_message=f"HTTP {status} without a Graph API error body")
        err = classify_error(status, reply.error, ig_user_id=self.ig_user_id, endpoint=endpoint,
                             attempts=attempts.failures + 1)
        if reduce_data and asks_to_reduce_data(err):
            raise ReduceData(err)
        if isinstance(err, ThrottledError):  # its usage headers set the pause, not a slowdown
            self.log(logging.WARNING, f"{method} {endpoint}: throttled (code {err.code}); pausing the account",
                     endpoint=endpoint, err=err)
            self.pacer.throttled(err, reply.usage)
            return
        self.pacer.observe(reply.usage)
        if isinstance(err, TransientApiError):
            attempts.failures += 1
            if attempts.failures >= attempts.limit:
                self.log(logging.WARNING, str(err), endpoint=endpoint, err=err)
                raise err
            self.log(logging.WARNING, f"{method} {endpoint}: temporary error, HTTP {status} {err._code_text()} "
                     f"(attempt {attempts.failures} of {attempts.limit}): {err.api_message or ''}; retrying",
                     endpoint=endpoint, err=err)
            self.pacer.backoff(attempts.failures)
            return
        self.log(logging.ERROR if isinstance(err, (TokenInvalidError, PermissionDeniedError)) else logging.WARNING,
                 str(err), endpoint=endpoint, err=err)
        raise err

    def _malformed(self, endpoint: str, reply: _Reply, attempts: _Attempts) -> None:
        attempts.failures += 1
        detail = "truncated or invalid JSON" if not reply.shape_ok else "JSON of an unexpected shape"
        err = MalformedResponseError(ig_user_id=self.ig_user_id, endpoint=endpoint, http_status=reply.status,
                                     attempts=attempts.failures, api_message=detail)
        self.log(logging.WARNING, f"{endpoint}: {detail} (attempt {attempts.failures})", endpoint=endpoint, err=err)
        if attempts.failures >= attempts.limit:
            raise err
        self.pacer.backoff(attempts.failures)

    # ==================================================================================================
    # logging
    # ==================================================================================================
    def log(self, level: int, message: str, *, endpoint: str | None, err: GraphApiError | None = None,
            code: int | None = None, subcode: int | None = None, fbtrace_id: str | None = None) -> None:
        logger = self.client.logger
        if not logger.isEnabledFor(level):
            return
        extra = {
            "ig_user_id": self.ig_user_id,
            "endpoint": redact(endpoint) if endpoint else endpoint,
            "code": err.code if err is not None else code,
            "subcode": err.subcode if err is not None else subcode,
            "fbtrace_id": err.fbtrace_id if err is not None else fbtrace_id,
        }
        logger.log(level, redact(f"[{self.ig_user_id}] {message}"), extra=extra)


# Requests that cannot be sent as built: a retry sends the very same thing.
# (InvalidHeader, a stored token with a line break, is caught before: it is the account's token to replace.)
_UNSENDABLE = (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
               requests.exceptions.URLRequired)


def _exc_summary(exc: BaseException) -> str:
    # requests' messages can quote the URL; ours never carry a token, but redact anyway and keep it short.
    text = redact(str(exc))
    return text if len(text) <= 200 else text[:197] + "..."
