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


def test_the_sync_runner_logs_failures_without_the_token(secret, engine):
    """The ingestion runner logs every failed account (one JSON line each): the logged and the stored reason
    are the redacted ones."""
    import sqlalchemy as sa

    from ig_analytics.accounts.repository import AccountCredentials
    from ig_analytics.graph_api import GraphApiClient
    from ig_analytics.ingestion.runner import sync_accounts

    def work(api, creds, outcome):
        raise RuntimeError(f"GET /me?access_token={TOKEN}: 500")

    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    creds = [AccountCredentials("1789", "shop", "UTC", TOKEN), AccountCredentials("1790", "gym", "UTC", TOKEN)]
    results = sync_accounts(engine, GraphApiClient(base_url="http://127.0.0.1:9"), creds, sync_type="account",
                            partition_key="2026-11-01", run_id="run-1", work=work)
    assert [r.status for r in results] == ["failed", "failed"]
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    failures = [r for r in records if r["level"] == "WARNING" and r["logger"] == "ig_analytics.ingestion"]
    assert sorted(r["ig_user_id"] for r in failures) == ["1789", "1790"]
    assert all("access_token=[REDACTED]" in r["message"] for r in failures)
    assert TOKEN not in stream.getvalue()
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT error FROM instagram.sync_runs ORDER BY ig_user_id")).scalars().all()
    assert len(stored) == 2 and all(TOKEN not in e and "[REDACTED]" in e for e in stored)


def test_a_bad_level_or_format_names_the_setting(monkeypatch):
    from ig_analytics.settings import SettingsError

    monkeypatch.setenv("IG_ANALYTICS_LOG_LEVEL", "LOUD")
    with pytest.raises(SettingsError, match="IG_ANALYTICS_LOG_LEVEL"):
        configure_logging(stream=io.StringIO())
    monkeypatch.setenv("IG_ANALYTICS_LOG_LEVEL", "INFO")
    monkeypatch.setenv("IG_ANALYTICS_LOG_FORMAT", "yaml")
    with pytest.raises(SettingsError, match="IG_ANALYTICS_LOG_FORMAT"):
        configure_logging(stream=io.StringIO())


def test_other_loggers_show_errors_only_and_the_file_gets_the_details(tmp_path):
    stream = io.StringIO()
    log_file = tmp_path / "logs" / "ig.log"
    configure_logging(json=False, stream=stream, log_file=log_file)
    try:
        logging.getLogger("dagster_postgres").warning("Retrying failed database connection:\n  details")
        logging.getLogger("ig_analytics.cli.main").error("lost it", extra={"log_only": True})
        try:
            raise RuntimeError("boom\nline two")
        except RuntimeError:
            logging.getLogger("ig_analytics.x").exception("sync failed")
    finally:
        configure_logging(json=False, stream=io.StringIO(), log_file=False)  # closes the file handler
    terminal = stream.getvalue().splitlines()
    assert len(terminal) == 1 and "sync failed (more in the log file)" in terminal[0]
    details = log_file.read_text()
    assert "Retrying failed database connection" in details and "lost it" in details and "line two" in details


def test_python_logs_of_runs_honour_the_level_setting(monkeypatch):
    """dagster.yaml must not cap the ig_analytics loggers at INFO: a run logs DEBUG records when asked to."""
    from pathlib import Path

    import dagster as dg
    import yaml

    settings = yaml.safe_load((Path(__file__).resolve().parents[1] / "dagster.yaml").read_text())
    monkeypatch.setenv("IG_ANALYTICS_LOG_LEVEL", "DEBUG")
    configure_logging(stream=io.StringIO())

    @dg.asset
    def chatty() -> None:
        logging.getLogger("ig_analytics.ingestion").debug("a debug detail")

    with dg.instance_for_test(overrides={"python_logs": settings["python_logs"]}) as instance:
        result = dg.materialize([chatty], instance=instance)
        messages = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("a debug detail" in m for m in messages)


def test_in_process_runs_print_json_lines_only(capfd):
    """The CLI's in-process runs (ig_analytics.defs.run_output): Dagster's console logger and its raw stderr writes
    become records of Python loggers, so with JSON every line is an object, and a captured record prints once."""
    import sys

    import dagster as dg

    from ig_analytics.defs.run_output import python_logging_console, stderr_to_log

    @dg.asset
    def broken() -> None:
        logging.getLogger("ig_analytics.ingestion").warning("about to fail")
        sys.stderr.write("Exception while writing logger call to event log: boom\n")
        raise RuntimeError("step exploded")

    configure_logging(json=True)  # the real stderr, as in the CLI
    # the console logger as ig_analytics.definitions declares it for every job
    job = dg.Definitions(assets=[broken], jobs=[dg.define_asset_job("j", selection=[broken])],
                         loggers={"console": python_logging_console}).resolve_job_def("j")
    run_config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with dg.instance_for_test() as instance, stderr_to_log():
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config)
    assert not result.success
    err = capfd.readouterr().err
    records = [json.loads(line) for line in err.splitlines() if line.strip()]  # every line is JSON
    by_logger = {}
    for r in records:
        by_logger.setdefault(r["logger"], []).append(r["message"])
    assert by_logger["ig_analytics.ingestion"] == ["about to fail"]
    assert any("step exploded" in m for m in by_logger["ig_analytics.dagster_run"])  # Dagster's step failure
    assert not any(m.endswith("about to fail") for m in by_logger["ig_analytics.dagster_run"])  # printed once
    assert "Exception while writing" not in err  # a raw write became a log record: the log file's, not the terminal's


HOSTILE = "Page \u202eevil\x1b[2J name\u2028x"  # a right-to-left override, a clear-screen sequence, a separator


@pytest.mark.parametrize("as_json", [False, True])
def test_stderr_and_the_log_file_escape_control_and_bidi_characters(tmp_path, as_json):
    """Issue 28 row 11, issue 22: what stdout escapes, stderr and the log file escape too (text: \\x1b,
    \\u202e; JSON: the same value, written with JSON escapes)."""
    stream = io.StringIO()
    log_file = tmp_path / "ig.log"
    configure_logging(json=as_json, stream=stream, log_file=log_file)
    try:
        log = logging.getLogger("ig_analytics.ingestion")
        log.warning("API said: %s", HOSTILE, extra={"ig_user_id": "1\x1b[31m"})
        try:
            raise RuntimeError(HOSTILE)
        except RuntimeError:
            log.exception("failed on %s", HOSTILE)
    finally:
        configure_logging(json=False, stream=io.StringIO(), log_file=False)
    for output in (stream.getvalue(), log_file.read_text()):
        assert not any(ch in output for ch in "\u202e\x1b\u2028"), output
        if as_json:
            records = [json.loads(line) for line in output.splitlines()]
            assert HOSTILE in records[0]["message"] and records[0]["ig_user_id"] == "1\x1b[31m"
        else:
            assert "\\u202eevil\\x1b[2J" in output and "ig_user_id=1\\x1b[31m" in output
    assert len(stream.getvalue().splitlines()) == 2  # one line per record on the terminal


def test_a_token_with_a_line_break_is_masked_in_every_form_it_reaches_text():
    """Issue 28 row 1: a token stored before tokens were checked, as requests quotes it in InvalidHeader
    (repr, so '\\n' is two characters), raw, on the terminal (\\x0a) and as its fragments after the split."""
    from ig_analytics.redaction import redact
    from ig_analytics.terminal_text import printable

    tokens = ["EAAGlongtokenvalue123456\nEAAGsecondhalf7890", "abc\ndef"]
    for token in tokens:
        register_secret(token)
    try:
        for token in tokens:
            header = repr(f"Bearer {token}")
            texts = [f"Invalid return character or leading space in header: Authorization: {header}",
                     f"raw {token} end", printable(f"line {token}"), json.dumps({"error": header})]
            for text in texts:
                cleaned = redact(text)
                for fragment in ("EAAGlongtokenvalue123456", "EAAGsecondhalf7890", "abc\\ndef", "abc\ndef",
                                 "abc\\x0adef", "abc\\\\ndef"):
                    assert fragment not in cleaned, (text, cleaned)
        assert redact("the secondhalf of it, and abc") == "the secondhalf of it, and abc"  # no over-masking
    finally:
        for token in tokens:
            forget_secret(token)
