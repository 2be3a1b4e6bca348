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
