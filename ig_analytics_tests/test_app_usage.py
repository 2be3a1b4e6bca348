"""The app-wide Graph API budget (X-App-Usage) shared through PostgreSQL, against the sandbox over HTTP.

The sandbox counts the calls of ALL accounts of the app against one limit (set small here: 20 calls), so one
client can drive the app to 90 % in 18 calls. A second client, in another thread with its own ``AppBudget`` (as a
second run would have in its own process), must slow down before its very first call, by the delay the pacing
curve gives for 90 % (computed here by hand), while a client without the shared budget does not."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from ig_analytics.graph_api import GraphApiClient
from ig_analytics.graph_api.app_budget import AppBudget, app_usage_pct
from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics_tests.ingestion_harness import SANDBOX_NOW

APP_LIMIT = 20  # calls per window, all accounts together
CALLS_A = 18  # -> 18 * 100 // 20 = 90 %


class Clock:
    """A client's clock: sleeping advances it and is recorded with the sandbox's call count at that moment."""

    def __init__(self, server: SandboxServer, ig_user_id: str):
        self.t = 1000.0
        self.sleeps: list[tuple[float, int]] = []
        self._server, self._id = server, ig_user_id

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append((seconds, self._server.calls(ig_user_id=self._id)))
        self.t += seconds


def _client(server, clock: Clock, budget: AppBudget | None) -> GraphApiClient:
    return GraphApiClient(base_url=server.base_url, sleep=clock.sleep, monotonic=clock.monotonic,
                          app_budget=budget)


def _in_thread(fn):
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the client thread did not finish"
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.fixture()
def sandbox():
    world = SandboxWorld.demo(now=SANDBOX_NOW)
    server = SandboxServer(world, port=0)
    server.start()
    server.usage.set_app_limit(APP_LIMIT)
    try:
        yield server, world
    finally:
        server.stop()


def test_second_client_slows_down_from_the_app_usage_the_first_drove_high(engine, sandbox):
    server, world = sandbox
    a, b, c = world.accounts
    clock_a, clock_b, clock_c = Clock(server, a.ig_user_id), Clock(server, b.ig_user_id), Clock(server, c.ig_user_id)
    budget_a = AppBudget(engine, monotonic=clock_a.monotonic)
    budget_b = AppBudget(engine, monotonic=clock_b.monotonic)

    def first_client():
        with _client(server, clock_a, budget_a) as client:
            api = client.account(a.ig_user_id, a.token)
            for _ in range(CALLS_A):
                api.profile()
            budget_a.flush()  # the end of its batch
    _in_thread(first_client)

    truth = server.usage.app_usage(world.clock.now())  # the sandbox's own count, not the client's view
    assert truth["call_count"] == CALLS_A * 100 // APP_LIMIT == 90
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT usage_pct FROM instagram.api_budget WHERE scope = 'app'")).scalar()
    assert stored == app_usage_pct(truth) == 90
    # cheap: far fewer database round trips than calls (one per second of the client's clock, plus the flush)
    assert budget_a.round_trips <= 2 + (clock_a.t - 1000.0) / budget_a.sync_interval_s
    assert budget_a.round_trips < CALLS_A

    def second_client():
        with _client(server, clock_b, budget_b) as client:
            return client.account(b.ig_user_id, b.token).profile()
    assert _in_thread(second_client).ig_user_id == b.ig_user_id
    # 80 % -> 1 s, 100 % -> 30 s, linear: 90 % -> 1 + 29 * 10 / 20 = 15.5 s, slept BEFORE its first request
    before_first = [seconds for seconds, calls_so_far in clock_b.sleeps if calls_so_far == 0]
    assert before_first == [pytest.approx(15.5, abs=1e-6)]

    def unshared_client():
        with _client(server, clock_c, None) as client:
            return client.account(c.ig_user_id, c.token).profile()
    _in_thread(unshared_client)
    assert [s for s, calls_so_far in clock_c.sleeps if calls_so_far == 0] == []


def test_newer_observation_wins_and_stale_ones_expire(engine):
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    now = {"at": t0}
    early = AppBudget(engine, now=lambda: now["at"], sync_interval_s=0)
    late = AppBudget(engine, now=lambda: now["at"], sync_interval_s=0)
    early.observe({"call_count": 95, "total_time": 10})
    now["at"] = t0 + timedelta(seconds=5)
    late.observe({"call_count": 40, "total_cputime": 41})
    late.flush()
    early.flush()  # older: must not overwrite the newer 41 %
    assert early.usage_pct() == late.usage_pct() == 41
    assert early.delay_s() == 0
    now["at"] = t0 + timedelta(seconds=5 + 601)
    assert late.usage_pct() == 0  # ten minutes without any call: the rolling window has moved on


def test_unreachable_budget_table_falls_back_to_own_observations(engine, caplog):
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE instagram.api_budget"))
    budget = AppBudget(engine, sync_interval_s=0)
    budget.observe({"call_count": 85})
    assert budget.usage_pct() == 85
    assert budget.round_trips == 0
    assert "instagram.api_budget" in caplog.text and "ig-analytics db status" in caplog.text
