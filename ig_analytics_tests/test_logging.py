"""configure_logging: text or JSON lines with the Graph API context fields, and no token in any of them."""

from __future__ import annotations

import io
import json
import logging

import pytest

from ig_analytics.logging_setup import LOGGER_NAME, configure_logging
from ig_analytics.redaction import RedactingFilter, forget_secret, register_secret

TOKEN = "IGQVJsecretTOKENvalue0123456789"


@pytest.fixture()
def secret():
    register_secret(TOKEN)
    yield TOKEN
    forget_secret(TOKEN)


@pytest.fixture(autouse=True)
def restore_logger():
    logger = logging.getLogger(LOGGER_NAME)
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def _log_everything(log: logging.Logger) -> None:
    url = f"https://graph.facebook.com/v25.0/1789/insights?metric=reach&access_token={TOKEN}"
    log.info("GET %s", url, extra={"ig_user_id": "1789", "endpoint": "/1789/insights", "code": 190,
                                   "subcode": 463, "fbtrace_id": "AbCdEf"})
    log.warning(f"token {TOKEN} rejected", extra={"endpoint": f"/me?access_token={TOKEN}"})
    log.info("Authorization: Bearer %s", TOKEN)
    try:
        raise RuntimeError(f"request failed: {url}")
    except RuntimeError:
        log.exception("sync failed for %s", "1789")


def test_json_lines_carry_the_context_fields_and_never_the_token(secret):
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    _log_everything(logging.getLogger("ig_analytics.graph_api.client"))
    output = stream.getvalue()
    assert TOKEN not in output
    records = [json.loads(line) for line in output.splitlines()]
    assert len(records) == 4
    first = records[0]
    assert {k: first[k] for k in ("level", "logger", "ig_user_id", "endpoint", "code", "subcode", "fbtrace_id")} == {
        "level": "INFO", "logger": "ig_analytics.graph_api.client", "ig_user_id": "1789",
        "endpoint": "/1789/insights", "code": 190, "subcode": 463, "fbtrace_id": "AbCdEf",
    }
    assert first["time"].endswith("+00:00") and "[REDACTED]" in first["message"]
    assert "ig_user_id" not in records[2]  # absent extras are left out
    assert "RuntimeError" in records[3]["exception"] and "[REDACTED]" in records[3]["exception"]


def test_format_follows_the_environment_and_text_is_redacted_too(secret, monkeypatch):
    monkeypatch.setenv("IG_ANALYTICS_LOG_FORMAT", "json")
    stream = io.StringIO()
    configure_logging(stream=stream)
    logging.getLogger("ig_analytics").info("hello")
    assert json.loads(stream.getvalue())["message"] == "hello"

    monkeypatch.setenv("IG_ANALYTICS_LOG_FORMAT", "text")
    stream = io.StringIO()
    configure_logging(stream=stream)  # replaces the handler: one line per record, not two
    _log_everything(logging.getLogger("ig_analytics.ingestion"))
    text = stream.getvalue()
    assert TOKEN not in text
    assert "ig_user_id=1789" in text and "fbtrace_id=AbCdEf" in text
    assert len([h for h in logging.getLogger(LOGGER_NAME).handlers if isinstance(h, logging.StreamHandler)]) == 1


def test_root_handlers_get_the_filter_so_library_loggers_do_not_leak(secret):
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    try:
        configure_logging(json=True, stream=io.StringIO())
        assert any(isinstance(f, RedactingFilter) for f in handler.filters)
        logging.getLogger("urllib3.connectionpool").warning('"GET /v25.0/me?access_token=%s HTTP/1.1" 400', TOKEN)
    finally:
        root.removeHandler(handler)
    assert TOKEN not in stream.getvalue() and "access_token=[REDACTED]" in stream.getvalue()


def test_the_sync_runner_logs_failures_without_the_token(secret, caplog):
    """The ingestion runner logs every failed account: the logged reason is the redacted one."""
    from datetime import datetime, timezone

    from ig_analytics.ingestion.outcome import AccountOutcome

    outcome = AccountOutcome("1789", "account", "2026-11-01", datetime.now(timezone.utc))
    outcome.fail(RuntimeError(f"GET /me?access_token={TOKEN}: 500"))
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    logging.getLogger("ig_analytics.ingestion").warning("account sync of %s failed: %s", "1789", outcome.error,
                                                        extra={"ig_user_id": "1789"})
    assert TOKEN not in stream.getvalue() and TOKEN not in (outcome.error or "")
