"""Issue 27: the conversation and hashtag tables computed a slice of accounts at a time (bounded memory) are the
rows computed from every account at once. Sandbox data of 12 accounts, slices of 5 (three slices)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from ig_analytics.analytics import conversation, hashtags
from ig_analytics.defs.conversation_assets import EPOCH
from ig_analytics.storage.frames import copy_frame
from ig_analytics_tests.ingestion_harness import SANDBOX_NOW
from ig_analytics_tests.test_shard_analytics import _capture, world  # noqa: F401 (the fixture)

SLICE = 5


def _same(sliced: pd.DataFrame, whole: pd.DataFrame, key: list[str]) -> None:
    assert whole["ig_user_id"].nunique() > SLICE, "the data must span several slices"
    ordered = [f.sort_values(key).reset_index(drop=True) for f in (sliced, whole)]
    pd.testing.assert_frame_equal(ordered[0], ordered[1], check_exact=False, rtol=1e-12)


def test_the_sliced_computation_equals_the_unsliced_one(engine, world):  # noqa: F811
    _capture(engine)
    now = SANDBOX_NOW
    first = now.date() - timedelta(days=conversation.WINDOW_DAYS)
    ids = [a.ig_user_id for a in world.accounts]
    with engine.connect() as conn:
        # both tables from one read of each slice (tables_in_slices), against each table's own whole read
        days, posts = conversation.tables_in_slices(conn, ids, first, now, size=SLICE)
        whole = conversation.read_comments(conn, conversation._midnight(first - timedelta(days=7)))
        _same(days, conversation.daily_rows(whole, first, now), ["ig_user_id", "date"])
        whole = conversation.read_comments(conn, conversation._midnight(first), by_post=True)
        _same(posts, conversation.post_rows(whole, now), ["media_id"])
        # a table asked alone is the same table
        assert conversation.tables_in_slices(conn, ids, first, now, posts=False, size=SLICE)[1] is None
        _same(conversation.tables_in_slices(conn, ids, first, now, daily=False, size=SLICE)[1],
              conversation.post_rows(whole, now), ["media_id"])
        _same(hashtags.tags_in_slices(conn, ids, EPOCH, size=SLICE),
              hashtags.hashtag_rows(hashtags.read_posts(conn, EPOCH)), ["media_id", "hashtag"])
        # hashtag_performance reads media_hashtags: the stored rows of every account
        hashtags_rows = hashtags.hashtag_rows(hashtags.read_posts(conn, EPOCH))
    with engine.begin() as conn:
        copy_frame(conn, "media_hashtags", hashtags_rows, [], [])
    since, last_day = now - timedelta(days=max(hashtags.PERIOD_DAYS) + 2), now.date() - timedelta(days=1)
    with engine.connect() as conn:
        whole = hashtags.performance_rows(hashtags.read_posts(conn, since), hashtags.read_tags(conn, since), last_day,
                                          now)
        assert len(whole), "some tag must be used on enough posts"
        _same(hashtags.performance_in_slices(conn, ids, since, last_day, now, size=SLICE), whole,
              ["ig_user_id", "period_end", "hashtag"])
