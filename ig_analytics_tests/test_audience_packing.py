"""The packed audience history (issue 27): retention moves the pictures older than ``audience_pack_after_days``
into one row per account and day (``audience_pictures_packed``); every reader gives the same answer before and
after: the report's audience section of every past period (one day, a rolling week, a calendar week), the
demographics check of every day, the terminal lines of the CLI, and the analysts' view ``audience_pictures`` row
for row. Unpacking gives back the row tables exactly, and a re-sync of a packed day leaves one form of it.
Real pictures: 28 days of the sandbox over HTTP into a real PostgreSQL."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from ig_analytics.analytics import audience
from ig_analytics.analytics.audience import audience_lines, audience_sections
from ig_analytics.defs.audience_assets import demographics_validity
from ig_analytics.defs.retention import RetentionConfig, compact_audience, day_cutoff, pack_old_audience
from ig_analytics.graph_api import GraphApiClient
from ig_analytics.ingestion.demographics import sync_audience_demographics
from ig_analytics.sandbox import AccountSpec, SandboxServer, SandboxWorld
from ig_analytics.storage.audience_packing import unpack_audience_day

pytestmark = pytest.mark.slow

ACCOUNTS = [AccountSpec("17841400000000002", "gym", followers=24_300, timezone="America/New_York", posts=5),
            AccountSpec("17841400000000003", "streetwear", followers=312_000, timezone="Asia/Tokyo", posts=5),
            AccountSpec("17841400000000004", "tiny_studio", followers=40, posts=3)]
FIRST = date(2026, 8, 1)
DAYS = [FIRST + timedelta(days=i) for i in range(28)]
NOW = datetime.combine(DAYS[-1] + timedelta(days=1), datetime.min.time(), timezone.utc) + timedelta(hours=4, minutes=30)
_ALL = "SELECT * FROM instagram.{} ORDER BY 1, 2, 3, 4, 5"


def _taken_at(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), timezone.utc) + timedelta(hours=2, minutes=20)


@pytest.fixture()
def pictures(engine):
    """28 daily pictures of three sandbox accounts (one under 100 followers), synced as the daily asset does; one
    old picture's city rows re-read later with another version (a picture's rows need not share a fetch), and a
    key with the separators the packing must keep (``|``, a comma, quotes)."""
    from ig_analytics_tests.ingestion_harness import register

    world = SandboxWorld(ACCOUNTS, seed=5, now=_taken_at(FIRST))
    with SandboxServer(world) as server:
        register(engine, world)
        client = GraphApiClient(base_url=server.base_url, version="v24.0", now=world.clock.now, backoff_base_s=0.01)
        for day in DAYS:
            world.clock.set(_taken_at(day))
            for acct in world.accounts:
                sync_audience_demographics(engine, client.account(acct.ig_user_id, acct.token), acct.ig_user_id,
                                           day, client.version, world.clock.now())
    with engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE instagram.audience_demographics SET api_version = 'v25.0', fetched_at = fetched_at + interval '3 h'"
            " WHERE date = :d AND breakdown = 'city' AND metric = 'follower_demographics'"), {"d": DAYS[3]})
        conn.execute(sa.text(
            "UPDATE instagram.audience_demographics SET key = 'Zürich | \"ZH\", CH'"
            " WHERE (ig_user_id, date, metric, breakdown, key) IN (SELECT ig_user_id, date, metric, breakdown, key"
            "  FROM instagram.audience_demographics WHERE date = :d AND breakdown = 'city' ORDER BY key LIMIT 1)"),
            {"d": DAYS[3]})
    return engine


def _readers(engine) -> dict:
    """What every audience reader answers, for every day and period of the history."""
    ids = [a.ig_user_id for a in ACCOUNTS]
    with engine.connect() as conn:
        periods = [(d, d) for d in DAYS] + [(d - timedelta(days=6), d) for d in DAYS] + [
            (d, d + timedelta(days=6)) for d in DAYS if d.weekday() == 0] + [(DAYS[0], DAYS[-1])]
        out = {("report", s, e): audience_sections(conn, ids, s, e) for s, e in periods}
        for day in DAYS:
            check = demographics_validity(conn, day)
            out[("check", day)] = (check.passed, {k: v.value for k, v in check.metadata.items()})
        out["cli"] = audience_lines(conn)
        out["analysts"] = conn.execute(sa.text(_ALL.format("audience_pictures"))).all()
    return out


def _rows(engine) -> dict:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(_ALL.format(t))).all() for t in ("audience_demographics", "audience_age_gender")}


def test_every_audience_reader_answers_the_same_after_packing(pictures):
    engine = pictures
    config = RetentionConfig()
    compact_audience(engine, day_cutoff(NOW, config.audience_compact_after_days).date())  # what retention keeps
    cutoff = day_cutoff(NOW, config.audience_pack_after_days).date()
    before, rows = _readers(engine), _rows(engine)
    kept_old = sorted({(r.ig_user_id, r.date) for r in rows["audience_demographics"] if r.date < cutoff})
    assert before[("report", DAYS[0], DAYS[0])]  # sanity: the history has pictures and the readers see them
    assert sum(r.breakdown == "age,gender" for r in before["analysts"]) > 0

    assert pack_old_audience(engine, cutoff) == len(kept_old) > 0
    with engine.connect() as conn:
        packed = conn.execute(sa.text("SELECT ig_user_id, date FROM instagram.audience_pictures_packed"
                                      " ORDER BY 1, 2")).all()
        row_days = conn.execute(sa.text("SELECT min(date) FROM (SELECT date FROM instagram.audience_demographics"
                                        " UNION ALL SELECT date FROM instagram.audience_age_gender) d")).scalar()
    assert [tuple(p) for p in packed] == kept_old and row_days >= cutoff
    after = _readers(engine)
    assert after.keys() == before.keys()
    for reader, answer in before.items():
        assert after[reader] == answer, reader

    with engine.begin() as conn:  # the report reads an account's packed picture by its key, not the whole table
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))  # a few rows: the planner would scan them all
        plan = "\n".join(conn.execute(sa.text("EXPLAIN " + audience._VALUES), {
            "users": [ACCOUNTS[0].ig_user_id], "start": DAYS[0], "end": DAYS[6]}).scalars())
    assert re.search(r"audience_pictures_packed_pkey.*\n\s*Index Cond: \(\(ig_user_id = ", plan), plan

    with engine.begin() as conn:  # unpacked again: the very rows of both tables
        for ig_user_id, day in kept_old:
            unpack_audience_day(conn, ig_user_id, day)
    assert _rows(engine) == rows


def test_a_resync_of_a_packed_day_leaves_it_in_one_form(pictures):
    """A partition re-synced after its picture was packed (max_snapshot_lag_days off): the day is unpacked first,
    then replaced as a recent day is, so the view shows each of its keys once."""
    engine = pictures
    assert pack_old_audience(engine, DAYS[-1]) > 0
    day = DAYS[5]
    world = SandboxWorld(ACCOUNTS, seed=5, now=_taken_at(DAYS[-1]))
    acct = world.accounts[0]
    with SandboxServer(world) as server:
        client = GraphApiClient(base_url=server.base_url, version="v24.0", now=world.clock.now, backoff_base_s=0.01)
        sync_audience_demographics(engine, client.account(acct.ig_user_id, acct.token), acct.ig_user_id, day,
                                   client.version, world.clock.now())
    with engine.connect() as conn:
        packed = conn.execute(sa.text("SELECT count(*) FROM instagram.audience_pictures_packed"
                                      " WHERE ig_user_id = :a AND date = :d"), {"a": acct.ig_user_id, "d": day}).scalar()
        keys = conn.execute(sa.text(
            "SELECT count(*), count(DISTINCT (metric, breakdown, key)), count(DISTINCT fetched_at)"
            " FROM instagram.audience_pictures WHERE ig_user_id = :a AND date = :d"),
            {"a": acct.ig_user_id, "d": day}).one()
    assert packed == 0 and keys[0] == keys[1] > 0 and keys[2] == 1, keys



_PACKED = "SELECT * FROM instagram.audience_pictures_packed ORDER BY 1, 2"
# A fault in one account's batch, raised by PostgreSQL itself: that account's packed rows are refused.
_REFUSE = """
CREATE FUNCTION instagram.refuse_pack() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'refused: %', NEW.ig_user_id; END $$;
CREATE TRIGGER refuse_pack BEFORE INSERT ON instagram.audience_pictures_packed FOR EACH ROW
    WHEN (NEW.ig_user_id = :id) EXECUTE FUNCTION instagram.refuse_pack();
"""


def _unpack_all(engine, ids: list[str]) -> None:
    with engine.begin() as conn:
        for ig_user_id in ids:
            for day in DAYS:
                unpack_audience_day(conn, ig_user_id, day)


def test_packing_commits_each_batch_of_accounts_and_a_rerun_finishes(pictures):
    """The first packing after an upgrade moves months of every account: retention packs ``batch_accounts`` accounts
    per transaction. In batches of one account the packed rows are those of one batch of all; a failure in the
    second batch of two (the third account's) leaves the first batch's accounts packed and the third's rows as
    they were, and the next run packs them: the same rows as in one batch."""
    from ig_analytics_tests.analytics_data import add_account

    engine = pictures
    cutoff, days, third = DAYS[-1], len(DAYS) - 1, "17841400000000009"
    with engine.begin() as conn:  # a third account with pictures (tiny_studio has none): the first one's, copied
        add_account(conn, third)
        for table, key in (("audience_demographics", "breakdown, key"), ("audience_age_gender", "age, gender")):
            columns = f"date, metric, {key}, value, timeframe, api_version, fetched_at"
            conn.execute(sa.text(f"INSERT INTO instagram.{table} (ig_user_id, {columns}) SELECT :t, {columns}"
                                 f" FROM instagram.{table} WHERE ig_user_id = :a"),
                         {"t": third, "a": ACCOUNTS[0].ig_user_id})
    rows = _rows(engine)
    ids = sorted({r.ig_user_id for r in rows["audience_demographics"]})
    assert len(ids) == 3 and ids[2] == third
    assert pack_old_audience(engine, cutoff, batch_accounts=len(ids)) == 3 * days
    with engine.connect() as conn:
        whole = conn.execute(sa.text(_PACKED)).all()
    _unpack_all(engine, ids)  # back to rows (exactly: the first test), to pack again in batches
    assert _rows(engine) == rows

    assert pack_old_audience(engine, cutoff, batch_accounts=1) == 3 * days
    with engine.connect() as conn:
        assert conn.execute(sa.text(_PACKED)).all() == whole
    _unpack_all(engine, ids)
    with engine.begin() as conn:
        conn.execute(sa.text(_REFUSE.replace(":id", f"'{ids[2]}'")))
    with pytest.raises(sa.exc.DBAPIError, match="refused"):
        pack_old_audience(engine, cutoff, batch_accounts=2)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER refuse_pack ON instagram.audience_pictures_packed"))
        packed = conn.execute(sa.text("SELECT ig_user_id, count(*) FROM instagram.audience_pictures_packed"
                                      " GROUP BY 1 ORDER BY 1")).all()
    after_failure = _rows(engine)
    assert packed == [(ids[0], days), (ids[1], days)]
    for table, table_rows in rows.items():  # the third account's rows untouched, the first two's newest day left
        assert [r for r in after_failure[table] if r.ig_user_id == ids[2]] == [
            r for r in table_rows if r.ig_user_id == ids[2]]
        assert {r.date for r in after_failure[table] if r.ig_user_id != ids[2]} == {cutoff}

    assert pack_old_audience(engine, cutoff, batch_accounts=2) == days
    with engine.connect() as conn:
        assert conn.execute(sa.text(_PACKED)).all() == whole


_COMPACTED = ("audience_demographics", "audience_age_gender", "audience_demographics_status", "audience_pictures_packed")
# A fault in one account's batch, raised by PostgreSQL itself: the last delete of the account's days is refused.
_REFUSE_DELETE = """
CREATE FUNCTION instagram.refuse_delete() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'refused: %', OLD.ig_user_id; END $$;
CREATE TRIGGER refuse_delete BEFORE DELETE ON instagram.audience_pictures_packed FOR EACH ROW
    WHEN (OLD.ig_user_id = :id) EXECUTE FUNCTION instagram.refuse_delete();
"""


def _compacted_tables(engine) -> dict:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT * FROM instagram.{t} ORDER BY 1, 2, 3, 4, 5")).all()
                for t in _COMPACTED}


def _accounts_rows(tables: dict, ids) -> dict:
    return {t: [r for r in rows if r.ig_user_id in ids] for t, rows in tables.items()}


def test_the_compaction_commits_each_batch_of_accounts_and_a_rerun_finishes(pictures):
    """The first compaction after an upgrade (7 days, was 35) deletes months of every account's pictures: it
    compacts ``batch_accounts`` accounts per transaction, an account's days of every table in one. In batches of
    one account the tables end as after one batch of all; a failure in the second batch (its packed rows, the last
    table) leaves the first account compacted and the other two's rows as they were, and the next run compacts
    them: the same tables as in one batch. Half the history is packed first: both forms are compacted."""
    from ig_analytics_tests.analytics_data import restore_tables, save_tables

    engine = pictures
    pack_old_audience(engine, DAYS[14])
    with engine.begin() as conn:
        save_tables(conn, _COMPACTED)
    original, cutoff = _compacted_tables(engine), day_cutoff(NOW, RetentionConfig().audience_compact_after_days).date()
    ids = sorted({r.ig_user_id for r in original["audience_demographics_status"]})
    assert len(ids) == 3 and all(_accounts_rows(original, ids[1:2]).values())

    whole = compact_audience(engine, cutoff, batch_accounts=3)
    compacted = _compacted_tables(engine)
    assert whole > 0 and all(len(compacted[t]) < len(original[t]) for t in _COMPACTED)
    with engine.begin() as conn:
        restore_tables(conn, _COMPACTED)
    assert compact_audience(engine, cutoff, batch_accounts=1) == whole
    assert _compacted_tables(engine) == compacted

    with engine.begin() as conn:
        restore_tables(conn, _COMPACTED)
        conn.execute(sa.text(_REFUSE_DELETE.replace(":id", f"'{ids[1]}'")))
    with pytest.raises(sa.exc.DBAPIError, match="refused"):
        compact_audience(engine, cutoff, batch_accounts=1)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER refuse_delete ON instagram.audience_pictures_packed"))
    after_failure = _compacted_tables(engine)
    assert _accounts_rows(after_failure, ids[:1]) == _accounts_rows(compacted, ids[:1])
    assert _accounts_rows(after_failure, ids[1:]) == _accounts_rows(original, ids[1:])
    rest = compact_audience(engine, cutoff, batch_accounts=1)
    assert _compacted_tables(engine) == compacted and 0 < rest < whole
