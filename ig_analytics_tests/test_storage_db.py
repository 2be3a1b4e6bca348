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
