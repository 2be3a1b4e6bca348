"""Keep access tokens out of every text the project produces (logs, errors, run metadata).

``redact(text)`` removes:

- ``access_token=...`` and ``appsecret_proof=...`` (query strings, form bodies, JSON ``"access_token": "..."``),
- ``Bearer ...`` / ``OAuth ...`` authorization values,
- every secret registered with ``register_secret(token)`` (a process-wide set; the Graph API client registers
  every token it is given), in raw and URL-encoded form; a secret with whitespace or control characters also in
  its escaped forms and as each fragment of 6+ characters (see ``register_secret``).

``RedactingFilter`` is a ``logging.Filter`` that applies ``redact`` to a record's message, args, string
attributes (``extra`` fields) and formatted traceback. Install it on handlers (it never drops a record)::

    handler.addFilter(RedactingFilter())
"""

from __future__ import annotations

import json
import logging
import re
import threading
import traceback
from urllib.parse import quote, quote_plus

__all__ = ["REDACTED", "SECRET_PARAMS", "redact", "register_secret", "forget_secret", "RedactingFilter"]

REDACTED = "[REDACTED]"
# Query, form and JSON names whose values are secrets (removed whole from recordings: graph_api/recording.py).
SECRET_PARAMS = ("access_token", "appsecret_proof", "client_secret", "fb_exchange_token", "input_token")

# Shorter strings are not registered: redacting every "abc" in logs would garble them and protect nothing.
_MIN_SECRET_LEN = 6

_lock = threading.Lock()
# Tokens are looked up, not matched one by one: a run of token characters in the text is redacted when it is (or
# contains) a registered secret. Registering is O(1), so 1,000 accounts cost nothing (a regex of all secrets,
# rebuilt per registration, made that quadratic). Secrets with other characters (rare, e.g. "app_id|secret")
# go through a small regex.
_TOKEN_RUN_RE = re.compile(r"[A-Za-z0-9_\-]+")
_PLAIN_SECRET_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
_UNSAFE_RE = re.compile(r"[^\x21-\x7e]+")  # what a token cannot hold: whitespace, controls, non-ASCII
_plain_secrets: set[str] = set()
_shortest_plain = 0
_other_secrets: frozenset[str] = frozenset()
_other_pattern: re.Pattern[str] | None = None

_PARAM_RE = re.compile(
    r"(?P<key>\b(?:access_token|appsecret_proof|client_secret|fb_exchange_token|input_token)"
    r"(?:=|%3D|\"?\s*:\s*\"?))"
    r"(?P<value>[^&\s\"',;}\]]+)",
    re.IGNORECASE,
)
_AUTH_RE = re.compile(r"(?P<key>\b(?:Bearer|OAuth)\s+)(?P<value>[A-Za-z0-9._~+/=|:-]{4,})", re.IGNORECASE)


def register_secret(secret: str | None) -> None:
    """Remember ``secret`` so that ``redact`` removes it from any text, wherever it appears.

    A secret with whitespace or control characters (a token stored by an older version, before tokens were
    checked at the door) can reach text escaped (``\\n`` in a repr or JSON, ``\\x0a`` on a terminal) or cut at
    those characters (requests quotes the header up to and after a line break): each escaped form and each
    fragment of at least ``_MIN_SECRET_LEN`` characters is registered too. Shorter fragments are not: three
    characters are no secret by themselves, and masking them would garble every log line."""
    if not secret or len(secret) < _MIN_SECRET_LEN:
        return
    for form in _forms(secret):
        _register_one(form)


def _forms(secret: str) -> set[str]:
    forms = {secret}
    if _UNSAFE_RE.search(secret):
        from ig_analytics.terminal_text import printable

        escaped = {secret.encode("unicode_escape").decode("ascii"), json.dumps(secret)[1:-1], printable(secret)}
        # ... and escaped once more: a repr inside a JSON text (an error in run metadata) doubles the backslash
        forms |= escaped | {json.dumps(form)[1:-1] for form in escaped}
        forms |= {part for part in _UNSAFE_RE.split(secret) if len(part) >= _MIN_SECRET_LEN}
    return forms


def _register_one(secret: str) -> None:
    global _shortest_plain, _other_secrets, _other_pattern
    with _lock:
        if _PLAIN_SECRET_RE.match(secret):
            if secret not in _plain_secrets:
                _plain_secrets.add(secret)
                _shortest_plain = min(_shortest_plain or len(secret), len(secret))
            return
        variants = {secret, quote(secret, safe=""), quote_plus(secret)}
        if not variants <= _other_secrets:
            _other_secrets = _other_secrets | variants
            _other_pattern = _compile(_other_secrets)


def forget_secret(secret: str) -> None:
    """Remove a registered secret (tests; a revoked token can stay registered harmlessly)."""
    for form in _forms(secret):
        _forget_one(form)


def _forget_one(secret: str) -> None:
    global _shortest_plain, _other_secrets, _other_pattern
    with _lock:
        _plain_secrets.discard(secret)
        _shortest_plain = min((len(s) for s in _plain_secrets), default=0)
        _other_secrets = _other_secrets - {secret, quote(secret, safe=""), quote_plus(secret)}
        _other_pattern = _compile(_other_secrets) if _other_secrets else None


def _compile(secrets: frozenset[str]) -> re.Pattern[str]:
    # Longest first, so a secret that contains another is removed whole.
    return re.compile("|".join(re.escape(s) for s in sorted(secrets, key=len, reverse=True)))


def _redact_run(match: re.Match[str]) -> str:
    run = match.group(0)
    if len(run) < _shortest_plain:
        return run
    if run in _plain_secrets:
        return REDACTED
    if len(run) > _shortest_plain:  # a secret glued to other token characters
        for secret in list(_plain_secrets):
            if secret in run:
                run = run.replace(secret, REDACTED)
    return run


def redact(text: str) -> str:
    """Return ``text`` with tokens, app secret proofs and authorization values replaced by ``[REDACTED]``."""
    if not text:
        return text
    if not isinstance(text, str):
        text = str(text)
    if _plain_secrets:
        text = _TOKEN_RUN_RE.sub(_redact_run, text)
    pattern = _other_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _PARAM_RE.sub(lambda m: m.group("key") + REDACTED, text)
    text = _AUTH_RE.sub(lambda m: m.group("key") + REDACTED, text)
    return text


def _redact_value(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    # Anything else (dicts, URLs objects, exceptions) is rendered once, redacted, and logged as text.
    return redact(str(value))


# LogRecord attributes that are not free text and must keep their type.
_SKIP_ATTRS = frozenset(
    {"args", "msg", "exc_info", "exc_text", "stack_info", "levelname", "levelno", "pathname", "filename",
     "module", "funcName", "lineno", "created", "msecs", "relativeCreated", "thread", "threadName",
     "processName", "process", "name", "taskName"}
)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts tokens from a record (message, args, extra fields, traceback).

    It always returns True: records are cleaned, never dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003 (logging API name)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the raw parts, redacted
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = redact(text)
            # The formatter only formats exc_info when exc_text is empty; keep exc_info for other filters but
            # make sure the cached text is the redacted one.
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key in _SKIP_ATTRS or key.startswith("_"):
                continue
            if isinstance(value, str):
                cleaned = redact(value)
                if cleaned is not value:
                    setattr(record, key, cleaned)
        return True
