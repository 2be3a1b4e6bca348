import pytest
import sqlalchemy as sa

from ig_analytics.analytics.best_times import BestTimesParams, shrunk_rate
from benchmarks.direct_writes import refresh_best_posting_times, refresh_media_engagement
from ig_analytics_tests.analytics_data import add_account, add_media, add_snapshots, ts

NOW = ts(2026, 1, 20)


def test_shrinkage_formula():
    # 1 post at 10% in an account averaging 4%, k = 3: (10 + 12) / 4
    assert shrunk_rate(1, 10.0, 4.0, 3) == pytest.approx(5.5)
    assert shrunk_rate(0, 0.0, 4.0, 3) == pytest.approx(4.0)
    assert shrunk_rate(97, 10.0, 4.0, 3) == pytest.approx(9.82)


def _post(media_id, user, published, likes, reach):
    return ({"media_id": media_id, "ig_user_id": user, "published_at": published},
            {"media_id": media_id, "ig_user_id": user, "captured_at": NOW, "likes": likes, "reach": reach})


def test_tokyo_weekday_differs_from_utc(engine):
    posts = [
        # Sunday 2026-01-04 20:00 UTC = Monday 05:00 in Tokyo
        _post("t1", "J", ts(2026, 1, 4, 20), 10, 100),     # 10%
        _post("t2", "J", ts(2026, 1, 11, 20, 30), 6, 100),  # next Sunday 20:30 UTC = Monday 05:30: 6%
        _post("t3", "J", ts(2026, 1, 7, 3), 2, 100),       # Wednesday 12:00 Tokyo: 2%
        _post("t4", "J", ts(2025, 9, 1, 3), 50, 100),      # older than 90 days: left out
        _post("t5", "J", ts(2026, 1, 19, 12), 50, 100),    # younger than 24 h: left out
        # the same instants for a UTC account land on Sunday 20:00
        _post("u1", "U", ts(2026, 1, 4, 20), 10, 100),
    ]
    with engine.begin() as conn:
        add_account(conn, "J", tz="Asia/Tokyo")
        add_account(conn, "U")
        add_media(conn, [m for m, _ in posts])
        add_snapshots(conn, [s for _, s in posts])
        refresh_media_engagement(conn, now=NOW)
        n = refresh_best_posting_times(conn, now=NOW)
        rows = conn.execute(sa.text(
            "SELECT ig_user_id, weekday, hour, posts, avg_engagement_rate_reach, shrunk_engagement_rate_reach, "
            "reliable, account_avg_engagement_rate_reach FROM instagram.best_posting_times ORDER BY 1, 2, 3")).all()
        assert n == 3
        j_mon, j_wed, u_sun = rows
        assert (j_mon.ig_user_id, j_mon.weekday, j_mon.hour, j_mon.posts) == ("J", 1, 5, 2)
        assert j_mon.avg_engagement_rate_reach == pytest.approx(8.0)
        mean = (10 + 6 + 2) / 3
        assert j_mon.account_avg_engagement_rate_reach == pytest.approx(mean)
        assert j_mon.shrunk_engagement_rate_reach == pytest.approx((2 * 8 + 3 * mean) / 5)
        assert j_mon.reliable is True
        assert (j_wed.weekday, j_wed.hour, j_wed.posts, j_wed.reliable) == (3, 12, 1, False)
        assert j_wed.shrunk_engagement_rate_reach == pytest.approx((2 + 3 * mean) / 4)
        assert (u_sun.ig_user_id, u_sun.weekday, u_sun.hour) == ("U", 7, 20)

        # one account again, other params: only its rows change; re-running is idempotent
        before = conn.execute(sa.text("SELECT * FROM instagram.best_posting_times ORDER BY 1, 2, 3")).all()
        refresh_best_posting_times(conn, ig_user_ids=["J"], now=NOW)
        assert conn.execute(sa.text("SELECT * FROM instagram.best_posting_times ORDER BY 1, 2, 3")).all() == before
        refresh_best_posting_times(conn, ig_user_ids=["J"], now=NOW, params=BestTimesParams(min_posts=1, prior_posts=0))
        rows = conn.execute(sa.text(
            "SELECT ig_user_id, reliable, shrunk_engagement_rate_reach, avg_engagement_rate_reach "
            "FROM instagram.best_posting_times ORDER BY 1, 2")).all()
        assert all(r.reliable for r in rows if r.ig_user_id == "J")
        assert all(r.shrunk_engagement_rate_reach == pytest.approx(r.avg_engagement_rate_reach) for r in rows)
        assert sum(r.ig_user_id == "U" for r in rows) == 1
