import psycopg2.errors
import pytest
import sqlalchemy as sa, datetime as dt
from ig_analytics.storage import db
def test_migrate_and_upsert(engine):
    assert db.migrate(engine) == []
    with engine.begin() as c:
        c.execute(sa.text("insert into instagram.accounts (ig_user_id, username) values ('1','a')"))
        n = db.bulk_upsert(c, "account_insights_daily", ["ig_user_id","date","reach","api_version","synced_at"],
            [("1", dt.date(2026,1,1), 5, "v25.0", dt.datetime.now(dt.timezone.utc)), ("1", dt.date(2026,1,2), None, "v25.0", dt.datetime.now(dt.timezone.utc))], ["ig_user_id","date"])
    with engine.begin() as c:
        db.bulk_upsert(c, "account_insights_daily", ["ig_user_id","date","reach","api_version","synced_at"],
            [("1", dt.date(2026,1,1), 7, "v25.0", dt.datetime.now(dt.timezone.utc))], ["ig_user_id","date"])
        rows = c.execute(sa.text("select date, reach from instagram.account_insights_daily order by 1")).all()
    assert rows == [(dt.date(2026,1,1), 7), (dt.date(2026,1,2), None)]


def test_only_if_changed_leaves_unchanged_rows_alone(engine):
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    later = now + dt.timedelta(hours=1)
    cols = ["ig_user_id", "username", "timezone", "updated_at"]
    with engine.begin() as c:
        db.bulk_upsert(c, "accounts", cols, [("1", "a", "UTC", now), ("2", "b", "UTC", now)], ["ig_user_id"])
    with engine.begin() as c:
        db.bulk_upsert(c, "accounts", cols, [("1", "a", "UTC", later), ("2", "B", "UTC", later)], ["ig_user_id"],
                       only_if_changed=["username", "timezone"])
        rows = c.execute(sa.text("select ig_user_id, username, updated_at from instagram.accounts order by 1")).all()
    assert rows == [("1", "a", now), ("2", "B", later)]


def test_keep_existing_when_null_protects_only_the_named_columns(engine):
    """On a table without a declared merge rule, an incoming NULL keeps the stored value only in the columns
    named in keep_existing_when_null; elsewhere the new NULL is written."""
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    expires = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    cols = ["ig_user_id", "username", "token_expires_at", "updated_at"]
    with engine.begin() as c:
        db.bulk_upsert(c, "accounts", cols, [("1", "a", expires, t0), ("2", "b", expires, t0)], key_columns=["ig_user_id"])
    with engine.begin() as c:
        db.bulk_upsert(c, "accounts", cols, [("1", None, None, t0), ("2", "b2", None, t0)], key_columns=["ig_user_id"],
                       keep_existing_when_null=["username"])
        rows = c.execute(sa.text("select ig_user_id, username, token_expires_at from instagram.accounts order by 1")).all()
    assert rows == [("1", "a", None), ("2", "b2", None)]


def test_media_insights_latest_is_the_newest_snapshot_of_each_post(engine):
    """The view against the rows it is defined by, picked here in Python."""
    cols = ["media_id", "captured_at", "fetched_at", "ig_user_id", "reach", "likes", "api_version"]
    t = [dt.datetime(2026, 1, 1, h, tzinfo=dt.timezone.utc) for h in range(4)]
    snapshots = [("m1", t[0], t[0], "1", 10, 1, "v25.0"), ("m1", t[2], t[2], "1", 30, None, "v25.0"),
                 ("m1", t[1], t[1], "1", 20, 2, "v25.0"), ("m2", t[3], t[3], "1", 5, 5, "v25.0")]
    with engine.begin() as c:
        c.execute(sa.text("insert into instagram.accounts (ig_user_id, username) values ('1', 'a')"))
        for media_id in ("m1", "m2"):
            c.execute(sa.text("insert into instagram.media (media_id, ig_user_id, media_type, published_at,"
                              " first_seen_at, updated_at) values (:m, '1', 'IMAGE', :t, :t, :t)"), {"m": media_id, "t": t[0]})
        db.bulk_upsert(c, "media_insights_snapshots", cols, snapshots, key_columns=["media_id", "captured_at"])
        latest = c.execute(sa.text("select media_id, captured_at, reach, likes from instagram.media_insights_latest"
                                   " order by 1")).all()
        snapshot_columns = {r[0] for r in c.execute(sa.text(
            "select column_name from information_schema.columns where table_schema = 'instagram'"
            " and table_name = 'media_insights_snapshots'"))}
        view_columns = {r[0] for r in c.execute(sa.text(
            "select column_name from information_schema.columns where table_schema = 'instagram'"
            " and table_name = 'media_insights_latest'"))}
    newest = {}
    for media_id, captured_at, _, _, reach, likes, _ in snapshots:
        if media_id not in newest or captured_at > newest[media_id][0]:
            newest[media_id] = (captured_at, reach, likes)
    assert latest == [(m, *v) for m, v in sorted(newest.items())]
    assert latest[0][3] is None  # the newest snapshot as it is, not a mix of snapshots
    assert view_columns == snapshot_columns


_PROBE_COLUMNS = ["k", "txt", "n", "x", "flag", "doc", "at", "day"]
_PROBE_VALUES = [
    (1, "plain", 5, 1.5, True, {"a": 1}, dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc), dt.date(2026, 1, 1)),
    (2, "", None, None, None, None, None, None),  # '' is a value, None is NULL
    (3, "tab\there\nnew\\line\r\\N", 0, float("nan"), False, {"q": "say \"hi\"\t\\"}, None, None),
    (4, "\\N", -7, float("inf"), None, [1, "two"], dt.datetime(2026, 1, 1, 14, tzinfo=dt.timezone(dt.timedelta(hours=2))),
     None),
    (5, "ünïcödé ✓", 2**62, -0.25, True, {}, dt.datetime(2026, 6, 1, 0, 0, 0, 123456, tzinfo=dt.timezone.utc), None),
]


def _probe_table(c):
    c.execute(sa.text("CREATE TABLE instagram.copy_probe (k bigint PRIMARY KEY, txt text, n bigint, x double precision,"
                      " flag boolean, doc jsonb, at timestamptz, day date)"))


def _expected(value):
    return None if isinstance(value, float) and value != value else value


def test_every_cell_type_round_trips_exactly_through_copy(engine, monkeypatch):
    """Each value comes back as Python sent it (NaN as NULL), whichever encoding path its chunk takes: the
    memoised one (str/int/None/datetime/date only, no character to escape) or the per-cell one."""
    texts = ["r0", "r1", "needs\tescaping\\", "r3", "r4", "\\N", "r6"]  # chunks 3 and 4 fit the memoised path
    memo_rows = [(10 + i, texts[i], i % 3 or None, None, None, None, dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
                  dt.date(2026, 1, 1 + i % 5)) for i in range(7)]
    monkeypatch.setattr(db, "CHUNK_ROWS", 3)  # several chunks, so the pipelined path runs too
    with engine.begin() as c:
        _probe_table(c)
        n = db.bulk_upsert(c, "copy_probe", _PROBE_COLUMNS, iter(_PROBE_VALUES + memo_rows), ["k"])
        back = c.execute(sa.text("select k, txt, n, x, flag, doc, at, day from instagram.copy_probe order by k")).all()
        doc_text = c.execute(sa.text("select doc ->> 'q' from instagram.copy_probe where k = 3")).scalar()
    assert n == len(_PROBE_VALUES) + len(memo_rows)
    assert [tuple(r) for r in back] == [tuple(_expected(v) for v in row) for row in _PROBE_VALUES + memo_rows]
    assert doc_text == "say \"hi\"\t\\"


def test_replace_rows_round_trips_the_same_cells(engine, monkeypatch):
    monkeypatch.setattr(db, "CHUNK_ROWS", 2)
    with engine.begin() as c:
        _probe_table(c)
        replace = (c, "copy_probe", _PROBE_COLUMNS, _PROBE_VALUES, _PROBE_COLUMNS, ["k"], ("true", {}))
        assert db.replace_rows(*replace) == (len(_PROBE_VALUES), 0)
        assert db.replace_rows(*replace) == (0, 0)  # every cell compares equal to itself as stored: nothing rewritten
        back = c.execute(sa.text("select txt, x from instagram.copy_probe order by k")).all()
    assert [tuple(r) for r in back] == [(row[1], _expected(row[3])) for row in _PROBE_VALUES]


def test_a_failing_chunk_rolls_back_every_chunk_of_the_write(engine, monkeypatch):
    """A write of several chunks is still one transaction: a row that breaks a constraint in a later chunk
    (a snapshot of a post that does not exist) leaves nothing of the earlier chunks, and the error surfaces."""
    monkeypatch.setattr(db, "CHUNK_ROWS", 2)
    t = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    cols = ["media_id", "captured_at", "fetched_at", "ig_user_id", "reach", "api_version"]
    with engine.begin() as c:
        c.execute(sa.text("insert into instagram.accounts (ig_user_id, username) values ('1', 'a')"))
        c.execute(sa.text("insert into instagram.media (media_id, ig_user_id, media_type, published_at, first_seen_at,"
                          " updated_at) values ('m1', '1', 'IMAGE', :t, :t, :t)"), {"t": t})
    rows = [("m1", t + dt.timedelta(hours=h), t, "1", h, "v25.0") for h in range(5)] + [("nope", t, t, "1", 1, "v25.0")]
    with pytest.raises(psycopg2.errors.ForeignKeyViolation):
        with engine.begin() as c:
            db.bulk_upsert(c, "media_insights_snapshots", cols, rows)
    with engine.connect() as c:
        assert c.execute(sa.text("select count(*) from instagram.media_insights_snapshots")).scalar() == 0


def test_chunks_merge_like_one_write(engine, monkeypatch):
    """Across chunks the merge rule still holds: a later NULL keeps the earlier value, and a row sent again
    unchanged is not rewritten (fetched_at of the first reading stays)."""
    t = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    cols = ["media_id", "captured_at", "fetched_at", "ig_user_id", "reach", "likes", "api_version"]
    with engine.begin() as c:
        c.execute(sa.text("insert into instagram.accounts (ig_user_id, username) values ('1', 'a')"))
        c.execute(sa.text("insert into instagram.media (media_id, ig_user_id, media_type, published_at, first_seen_at,"
                          " updated_at) values ('m1', '1', 'IMAGE', :t, :t, :t)"), {"t": t})
    later = t + dt.timedelta(minutes=5)
    rows = [("m1", t, t, "1", 10, 1, "v25.0"), ("m1", t + dt.timedelta(hours=1), t, "1", 20, 2, "v25.0"),
            ("m1", t, later, "1", None, 1, "v25.0"),  # second chunk: reach missing, likes the same
            ("m1", t + dt.timedelta(hours=1), later, "1", 21, None, "v25.0")]  # third: reach changed
    monkeypatch.setattr(db, "CHUNK_ROWS", 2)
    with engine.begin() as c:
        assert db.bulk_upsert(c, "media_insights_snapshots", cols, rows[:2]) == 2
    monkeypatch.setattr(db, "CHUNK_ROWS", 1)
    with engine.begin() as c:
        assert db.bulk_upsert(c, "media_insights_snapshots", cols, rows[2:]) == 2
        back = c.execute(sa.text("select captured_at, fetched_at, reach, likes from instagram.media_insights_snapshots"
                                 " order by 1")).all()
    assert [tuple(r) for r in back] == [(t, t, 10, 1), (t + dt.timedelta(hours=1), later, 21, 2)]
    # A large write whose first chunk is new (straight into the table) and whose second meets an existing key
    # (rolled back to its savepoint, then merged): both land, the merge rule still applies to the second.
    newest = t + dt.timedelta(hours=2)
    with engine.begin() as c:
        assert db.bulk_upsert(c, "media_insights_snapshots", cols, [
            ("m1", newest, later, "1", 30, None, "v25.0"), ("m1", t, later, "1", None, 4, "v25.0")]) == 2
        back = c.execute(sa.text("select captured_at, fetched_at, reach, likes from instagram.media_insights_snapshots"
                                 " order by 1")).all()
    assert [tuple(r) for r in back] == [(t, later, 10, 4), (t + dt.timedelta(hours=1), later, 21, 2),
                                        (newest, later, 30, None)]


def test_the_staging_table_is_reused_without_a_catalogue_write(engine):
    """Writes on one session reuse its staging table as it is: no TRUNCATE (a new file for the table, a pg_class
    update) per write. Two writes to one table in one transaction each merge only their own rows (issue 27)."""
    cols = ["ig_user_id", "username", "timezone"]
    stage = "select relfilenode from pg_class where oid = to_regclass('pg_temp._stage_accounts')"
    with engine.connect() as c:
        with c.begin():
            db.bulk_upsert(c, "accounts", cols, [("1", "a", "UTC")], ["ig_user_id"])
            first = c.execute(sa.text(stage)).scalar()
            db.bulk_upsert(c, "accounts", cols, [("2", "b", "UTC")], ["ig_user_id"], update_columns=["username"])
        with c.begin():
            db.bulk_upsert(c, "accounts", cols, [("1", "a2", "UTC")], ["ig_user_id"])
            assert c.execute(sa.text(stage)).scalar() == first
        rows = c.execute(sa.text("select ig_user_id, username from instagram.accounts order by 1")).all()
    assert first is not None and [tuple(r) for r in rows] == [("1", "a2"), ("2", "b")]


def test_a_chunk_with_bools_takes_the_memoised_path_and_keeps_ints_apart(engine, monkeypatch):
    """Bools (media_comments' flags) no longer send a chunk cell by cell (issue 27: 3x the encoding CPU), and a
    count of 1 next to a True is still written as 1 (True == 1 would share one memo entry)."""
    def per_cell(value):
        raise AssertionError("the per-cell path was taken")

    monkeypatch.setattr(db, "_text_cell", per_cell)
    rows = [(1, "a", 1, None, True), (2, "b", 0, None, False), (3, "c", 1, None, None), (4, "d", None, None, True)]
    with engine.begin() as c:
        _probe_table(c)
        assert db.bulk_upsert(c, "copy_probe", ["k", "txt", "n", "x", "flag"], rows, ["k"]) == len(rows)
        back = c.execute(sa.text("select k, txt, n, x, flag from instagram.copy_probe order by k")).all()
    assert [tuple(r) for r in back] == rows


def test_a_column_mixing_bools_and_ints_is_encoded_cell_by_cell():
    assert db._encode_chunk([(1, True), (True, 1)]) == "1\tTrue\nTrue\t1\n"
