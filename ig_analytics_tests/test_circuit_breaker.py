"""Issue 11, row 7: a Graph API answering 5xx for everything stops the run early (a circuit breaker shared by the
accounts of one run), records every account as failed with the reason, and asks for no step retry."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from ig_analytics.graph_api.errors import ThrottledError, TransientApiError
from ig_analytics.ingestion.circuit_breaker import DEFAULT_THRESHOLD, CircuitBreaker
from ig_analytics.sandbox import AccountSpec, Faults, SandboxServer, SandboxWorld
from ig_analytics_tests.ingestion_harness import (
    SANDBOX_NOW, hour_key, materialize_account_insights, materialize_media, register, served,
)

N_ACCOUNTS = 8
WORKERS = 2


@pytest.fixture()
def dead_api(engine, ig_home, monkeypatch):
    world = SandboxWorld([AccountSpec(f"178414000000001{i:02d}", f"shop{i}", posts=5) for i in range(N_ACCOUNTS)],
                         seed=5, now=SANDBOX_NOW)
    world.faults = Faults(transient_error_rate=1.0)  # every request: HTTP 500 code 2 or HTTP 503
    for _server in served(engine, monkeypatch, world):
        yield world


def _outcomes(engine):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT ig_user_id, status, api_calls, error FROM instagram.sync_runs")).all()


def _assert_stopped_early(engine, result):
    rows = _outcomes(engine)
    assert len(rows) == N_ACCOUNTS and {r.status for r in rows} == {"failed"}
    attempted = [r for r in rows if r.api_calls > 0]
    skipped = [r for r in rows if r.api_calls == 0]
    # the breaker opens after DEFAULT_THRESHOLD accounts; the accounts already in flight then finish
    assert DEFAULT_THRESHOLD <= len(attempted) <= DEFAULT_THRESHOLD + WORKERS - 1
    assert len(skipped) == N_ACCOUNTS - len(attempted)
    assert all("server errors" in r.error and "next run tries again" in r.error for r in skipped)
    assert all("kept failing" in r.error for r in attempted)
    # no step retry: a retry would call the dead API again (RetryPolicy: 3 more attempts)
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert not result.success or result.get_asset_check_evaluations()[0].passed is False


def test_dead_api_stops_the_account_run_early(engine, dead_api):
    day = SANDBOX_NOW.date() - timedelta(days=3)
    result = materialize_account_insights(day, day, max_concurrent_accounts=WORKERS)
    _assert_stopped_early(engine, result)


def test_dead_api_stops_the_media_run_early(engine, dead_api):
    result = materialize_media(hour_key(SANDBOX_NOW), max_concurrent_accounts=WORKERS)
    _assert_stopped_early(engine, result)


def test_throttling_and_successes_never_open_the_breaker():
    breaker = CircuitBreaker(threshold=2)
    throttled = ThrottledError(code=80002, ig_user_id="1", retry_after_s=600)
    down = TransientApiError(code=2, http_status=500, ig_user_id="1", attempts=5)
    for _ in range(5):
        breaker.record(False, throttled)
    assert not breaker.open  # throttling keeps its own behaviour (docs/graph-api-client.md)
    breaker.record(False, down)
    breaker.record(True, None)  # one account got through: the API is not dead
    breaker.record(False, down)
    assert not breaker.open
    breaker.record(False, down)
    assert breaker.open and "2 accounts in a row" in breaker.reason()


def test_only_a_lost_database_connection_is_retried_by_the_step():
    """Retries belong to one layer: the client has retried a transient API error already, and a failure that
    fails the same way again (bad data, a 4xx, a ValueError) is never retried; a lost connection is."""
    import psycopg2

    from ig_analytics.graph_api.errors import InvalidRequestError
    from ig_analytics.ingestion.outcome import AccountOutcome

    def retryable(exc: BaseException) -> bool:
        outcome = AccountOutcome("1", "media", "2026-11-20-12:00", started_at=SANDBOX_NOW)
        return outcome.fail(exc).retryable

    lost = sa.exc.OperationalError("INSERT ...", {}, psycopg2.OperationalError("server closed the connection"))
    bad_text = sa.exc.DataError("INSERT ...", {}, psycopg2.DataError('invalid byte sequence for encoding "UTF8": 0x00'))
    assert retryable(lost)
    assert not retryable(TransientApiError(code=2, http_status=500, ig_user_id="1", attempts=5))
    assert not retryable(InvalidRequestError(code=100, http_status=400, ig_user_id="1"))
    assert not retryable(ValueError("IG_GRAPH_API_VERSION v17.0 is older than v18.0"))
    assert not retryable(bad_text)


def test_a_run_of_one_account_opens_on_its_failure_and_the_next_run_of_the_sync_starts_open():
    down = TransientApiError(code=2, http_status=500, ig_user_id="1", attempts=5)
    api = "http://127.0.0.1:1/dead-api-for-this-test"
    first = CircuitBreaker.for_run(1, api)
    assert not first.open
    first.record(False, down)
    assert first.open and "the only account of this run" in first.reason()
    later = CircuitBreaker.for_run(5, api)  # e.g. the account insights job of the same `sync`
    assert later.open and "earlier run of this sync" in later.reason()
    assert not CircuitBreaker.for_run(5, "http://127.0.0.1:2/another").open
    later_alive = CircuitBreaker(threshold=1, api=api)
    later_alive.record(True, None)  # an answer: the API is alive again, forget it
    assert not CircuitBreaker.for_run(5, api).open


def test_an_account_that_keeps_failing_never_holds_back_the_others(engine, ig_home, monkeypatch):
    """One account's API answers 500 to everything: the step does not fail (no step retry multiplying the
    client's attempts), the analytics of the hour run for the others, and the failure shows on the account."""
    world = SandboxWorld([AccountSpec(f"178414000000002{i:02d}", f"shop{i}", posts=6) for i in range(3)],
                         seed=5, now=SANDBOX_NOW)
    failing = world.accounts[1]
    failing.faults = Faults(transient_error_rate=1.0)
    with SandboxServer(world, port=0) as server:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        register(engine, world)
        result = materialize_media(hour_key(SANDBOX_NOW), with_analytics=True, refresh_all=True)
    assert result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "accounts_synced")
    assert not check.passed and failing.ig_user_id in check.description
    with engine.connect() as conn:
        engaged = set(conn.execute(sa.text("SELECT DISTINCT ig_user_id FROM instagram.media_engagement")).scalars())
        outcomes = dict(conn.execute(sa.text("SELECT ig_user_id, status FROM instagram.sync_runs")).all())
    assert engaged == {a.ig_user_id for a in world.accounts} - {failing.ig_user_id}
    assert outcomes[failing.ig_user_id] == "failed" and list(outcomes.values()).count("success") == 2
