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
