"""`sync --record DIR` then `sandbox --replay DIR`: a user's recording turns into the same tables on another
machine, and holds no secret. Subprocesses, the sandbox over HTTP, a real PostgreSQL, runs through Dagster."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from ig_analytics.accounts import repository as repo
from ig_analytics.accounts.token_vault import TokenVault
from ig_analytics.sandbox import AccountSpec, SandboxServer, SandboxWorld
from ig_analytics.settings import Settings
from ig_analytics.storage import db
from ig_analytics_tests.new_user import CLI
from ig_analytics_tests.procs import child, wait_until

pytestmark = pytest.mark.slow

APP_SECRET = "record-replay-app-secret"
# Bookkeeping: when a row was written or a run happened (the replay runs minutes later, maybe in the next hour:
# the hour a capture is labelled with, `as_of`, `partition_key`), the ids of runs, where a report was written.
BOOKKEEPING = re.compile(r"(^|_)(synced|captured|started|finished|fetched|computed|generated|updated|created|"
                         r"checked|recorded|sent|observed|first_seen|first_used|last_seen|status_changed|changed|read|"
                         r"full_read|rows_compacted)_at$|"
                         r"run_id$|^html_path$|"
                         r"^token_|^as_of$|^partition_key$")
# A trending score is measured at the post's age when captured, i.e. on the replay's wall clock: the same values
# captured minutes later score a little differently (4th digit). Left out wherever they show (table, reports).
CAPTURE_AGE = {("trending_posts", "score")}
CAPTURE_AGE_KEYS = {"score", "z", "gain", "expected_engagement", "eval_age_hours"}


def _world() -> SandboxWorld:
    return SandboxWorld(  # real time, like production: the CLI reads the wall clock
        [AccountSpec("17841400000000001", "bakery", followers=850, timezone="UTC", posts=14, posts_per_day=0.6),
         AccountSpec("17841400000000002", "gym", followers=24_000, timezone="America/New_York", posts=20,
                     posts_per_day=1.0, unfollow_rate=0.2)],
        seed=11,
    )


def _sync(env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "ig_analytics.cli.main", "sync", *args], env=env,
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _register(engine, world: SandboxWorld, token: str | None = None) -> None:
    vault = TokenVault.from_settings(Settings.from_env())
    for account in world.accounts:
        repo.add_account(engine, vault, ig_user_id=account.ig_user_id, token=token or account.token,
                         username=account.username, timezone_name=account.timezone)


def _tables(engine) -> dict[str, dict[str, list]]:
    """Every table of schema instagram, without its bookkeeping columns: column -> its values, each column sorted
    on its own, so that a difference names its column."""
    out = {}
    with engine.connect() as conn:
        columns = conn.execute(sa.text(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c JOIN information_schema.tables t"
            " USING (table_schema, table_name) WHERE c.table_schema = 'instagram' AND t.table_type = 'BASE TABLE'"
            " ORDER BY c.table_name, c.ordinal_position")).all()
        by_table: dict[str, list[str]] = {}
        for table, column in columns:
            by_table.setdefault(table, [])
            if not BOOKKEEPING.search(column) and (table, column) not in CAPTURE_AGE:
                by_table[table].append(column)
        for table, kept in by_table.items():
            if table in ("schema_migrations", "app_usage"):  # the migrations applied; the app's shared budget
                continue
            listed = ", ".join(f'"{c}"::text' for c in kept)
            rows = conn.execute(sa.text(f'SELECT {listed} FROM instagram."{table}"')).all()
            out[table] = {c: sorted(map(_comparable, values)) for c, values in zip(kept, zip(*rows))} if rows else {}
    return out


def _masked(text):
    """A trending notice's text without the gain and z it quotes (measured at the capture time, like the score:
    a 4th-digit difference can round the quoted z the other way)."""
    if not isinstance(text, str):
        return text
    return re.sub(r"-?[\d,]+(\.\d+)? (engagements|robust SDs)", r"N \2", text)


def _comparable(value: str | None) -> str:
    """A column's text; JSON without the values measured at the capture time."""
    if value is None or value[:1] not in "{[":
        return str(value)

    def strip(v):
        if isinstance(v, dict):
            return {k: _masked(x) if k == "text" else strip(x) for k, x in v.items() if k not in CAPTURE_AGE_KEYS}
        return [strip(x) for x in v] if isinstance(v, list) else v

    try:
        return json.dumps(strip(json.loads(value)), sort_keys=True)
    except ValueError:  # an array column ({a,b})
        return value


def _fresh_schema(engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA instagram CASCADE"))
    db.migrate(engine)


def test_a_recorded_sync_replays_to_the_same_tables_and_holds_no_secret(engine, ig_home, pg_url, tmp_path,
                                                                       monkeypatch):
    """The sandbox runs in real time because `sync` reads the wall clock for the days and posts it asks for; the
    replay serves what was recorded, whatever its clock. Replayed a minute later, the sync asks the same days (the
    hour it labels captures with may differ: bookkeeping), unless UTC midnight passed in between."""
    world = _world()
    recording = tmp_path / "bug-report"
    started_on = datetime.now(timezone.utc).date()
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    env = dict(os.environ, IG_ANALYTICS_HOME=str(ig_home), DATABASE_URL=pg_url)
    with SandboxServer(world, port=0) as server:
        _register(engine, world)
        recorded = _sync({**env, "IG_GRAPH_API_URL": server.base_url, "IG_APP_SECRET": APP_SECRET},
                         "--record", str(recording))
    assert "Recorded " in recorded.stderr and "sandbox --replay" in recorded.stderr, recorded.stderr
    before = _tables(engine)
    assert len(before["media_insights_snapshots"]["media_id"]) > 10
    assert len(before["account_insights_daily"]["date"]) == 180

    text = (recording / "exchanges.jsonl").read_text(encoding="utf-8")
    for secret in [a.token for a in world.accounts] + [APP_SECRET, "appsecret_proof", "access_token=",
                                                       "Authorization", "Bearer"]:
        assert secret not in text, secret
    assert 'paging' in text and '"batch"' in text  # the lists and batches were recorded, only their secrets went

    # Another machine: an empty schema, the accounts registered with a token the recording never saw, another app
    # secret (so other appsecret_proofs).
    _fresh_schema(engine)
    _register(engine, world, token="a-token-of-the-developer")
    with child([CLI, "sandbox", "--port", "0", "--replay", str(recording)]) as replay:
        wait_until(lambda: "serving on" in replay.stderr, 60, "the replay to start")
        base_url = re.search(r"serving on (http://\S+)", replay.stderr).group(1)
        printed = replay.read_lines(3, 30)
        _sync({**env, "IG_GRAPH_API_URL": base_url, "IG_APP_SECRET": "the-developers-own-app-secret"})
        unrecorded = [line for line in replay.stderr.splitlines() if "has no reply for" in line]
    if datetime.now(timezone.utc).date() != started_on:
        pytest.skip("UTC midnight passed between the recording and the replay: the replay asked for other days")
    assert unrecorded == []
    assert [line.split('"ig_user_id": "')[1][:17] for line in printed[:2]] == [a.ig_user_id for a in world.accounts]
    after = _tables(engine)
    assert after.keys() == before.keys()
    differing = {f"{t}.{c}" for t in before for c in before[t] if after[t].get(c) != before[t][c]}
    assert differing == set(), {d: [v for v in before[d.split(".")[0]][d.split(".")[1]]  # what differs, to see why
                                    if v not in after[d.split(".")[0]][d.split(".")[1]]][:3] for d in sorted(differing)}
