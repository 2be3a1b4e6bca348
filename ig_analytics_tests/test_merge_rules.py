"""Issue 11, row 5: a missing value never erases a measured one, in every measured table (the declared merge rule
of storage/merge_rules.py, applied by bulk_upsert)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from ig_analytics.graph_api import GraphApiClient
from ig_analytics.graph_api.models import Profile
from ig_analytics.ingestion.account_insights import write_profile_snapshot
from ig_analytics.ingestion.media_snapshots import CapturePolicy, sync_media
from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics.storage import db
from ig_analytics.storage.merge_rules import MERGE_RULES
from ig_analytics_tests.ingestion_harness import SANDBOX_NOW, register

T0 = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)


def _rows(engine, sql: str, **params):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def _account(engine, ig_user_id="1"):
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO instagram.accounts (ig_user_id) VALUES (:i)"), {"i": ig_user_id})


def test_every_ingested_table_declares_a_rule_keyed_by_its_primary_key(engine):
    for table, rule in MERGE_RULES.items():
        pk = _rows(engine, """
            SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = CAST(:t AS regclass) AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)""",
                   t=f"instagram.{table}")
        assert tuple(r[0] for r in pk) == rule.key, table
    assert {"media", "media_insights_snapshots", "account_insights_daily", "account_profile_snapshots"} <= set(MERGE_RULES)


def test_media_fields_missing_later_keep_their_values_and_first_seen_stays(engine):
    _account(engine)
    cols = ["media_id", "ig_user_id", "media_type", "media_product_type", "caption", "permalink", "published_at",
            "like_count", "comments_count", "first_seen_at", "updated_at"]
    later = T0 + timedelta(hours=1)
    with engine.begin() as conn:
        db.bulk_upsert(conn, "media", cols, [("m1", "1", "IMAGE", "FEED", "hello", "https://x/p/1", T0, 10, 2, T0, T0)])
    with engine.begin() as conn:  # a listing without caption/counts (hidden like counts, fields not asked)
        db.bulk_upsert(conn, "media", cols, [("m1", "1", "IMAGE", None, None, None, T0, None, 3, later, later)])
    assert _rows(engine, "SELECT media_product_type, caption, permalink, like_count, comments_count, first_seen_at,"
                         " updated_at FROM instagram.media") == [("FEED", "hello", "https://x/p/1", 10, 3, T0, later)]


def test_unchanged_media_rows_are_not_rewritten(engine):
    _account(engine)
    cols = ["media_id", "ig_user_id", "media_type", "caption", "published_at", "like_count", "first_seen_at", "updated_at"]
    with engine.begin() as conn:
        db.bulk_upsert(conn, "media", cols, [("m1", "1", "IMAGE", "c", T0, 5, T0, T0), ("m2", "1", "IMAGE", "c", T0, 5, T0, T0)])
    later = T0 + timedelta(hours=1)
    with engine.begin() as conn:  # m1: same values (NULL like_count merges to the same 5); m2: a new like
        db.bulk_upsert(conn, "media", cols, [("m1", "1", "IMAGE", "c", T0, None, later, later),
                                              ("m2", "1", "IMAGE", "c", T0, 6, later, later)])
    assert _rows(engine, "SELECT media_id, like_count, updated_at FROM instagram.media ORDER BY 1") == [
        ("m1", 5, T0), ("m2", 6, later)]


def test_snapshot_metrics_missing_later_keep_their_values_and_other_metrics_merge(engine):
    _account(engine)
    with engine.begin() as conn:
        db.bulk_upsert(conn, "media", ["media_id", "ig_user_id", "media_type", "published_at", "first_seen_at", "updated_at"],
                       [("m1", "1", "VIDEO", T0, T0, T0)])
    cols = ["media_id", "captured_at", "fetched_at", "ig_user_id", "reach", "views", "impressions", "other_metrics",
            "api_version"]
    with engine.begin() as conn:
        db.bulk_upsert(conn, "media_insights_snapshots", cols,
                       [("m1", T0, T0, "1", 100, 250, None, {"a": 1, "b": 2}, "v25.0")])
    fetched = T0 + timedelta(minutes=20)
    with engine.begin() as conn:
        db.bulk_upsert(conn, "media_insights_snapshots", cols,
                       [("m1", T0, fetched, "1", 120, None, 300, {"b": 3}, "v18.0")])
    assert _rows(engine, "SELECT reach, views, impressions, other_metrics, fetched_at, api_version"
                         " FROM instagram.media_insights_snapshots") == [
        (120, 250, 300, {"a": 1, "b": 3}, fetched, "v18.0")]


def test_account_days_and_profile_snapshots_keep_measured_values(engine):
    _account(engine)
    cols = ["ig_user_id", "date", "reach", "profile_views", "api_version", "synced_at"]
    day = date(2026, 11, 1)
    with engine.begin() as conn:  # no keep_existing_when_null passed: the table's rule is enough
        db.bulk_upsert(conn, "account_insights_daily", cols, [("1", day, 40, 7, "v20.0", T0)])
        db.bulk_upsert(conn, "account_insights_daily", cols, [("1", day, None, None, "v25.0", T0)])
    assert _rows(engine, "SELECT reach, profile_views, api_version FROM instagram.account_insights_daily") == [
        (40, 7, "v25.0")]
    with engine.begin() as conn:
        write_profile_snapshot(conn, "1", Profile("1", "shop", 900, 12, 40), T0)
        write_profile_snapshot(conn, "1", Profile("1", "shop", None, 13, None), T0)
    assert _rows(engine, "SELECT followers_total, follows_total, media_count FROM instagram.account_profile_snapshots") == [
        (900, 13, 40)]
    assert _rows(engine, "SELECT followers_total, media_count FROM instagram.accounts") == [(900, 40)]


def test_a_rule_table_refuses_a_different_key_or_ad_hoc_updates(engine):
    with engine.begin() as conn, pytest.raises(ValueError, match="merge rule"):
        db.bulk_upsert(conn, "media", ["media_id"], [("m",)], ["media_id"], update_columns=["caption"])


def test_a_v18_capture_after_a_v25_capture_in_the_same_hour_keeps_views(engine, ig_home):
    """The issue's reproduction: the hour's snapshots lost `views` (97/97 -> 0/97)."""
    world = SandboxWorld.demo(now=SANDBOX_NOW)
    register(engine, world)
    account = world.accounts[0]
    slot_start = SANDBOX_NOW.replace(minute=0)
    policy = CapturePolicy()
    with SandboxServer(world, port=0) as server:
        for version in ("v25.0", "v18.0"):
            client = GraphApiClient(base_url=server.base_url, version=version, backoff_base_s=0.01)
            sync_media(engine, client.account(account.ig_user_id, account.token), account.ig_user_id, slot_start,
                       SANDBOX_NOW, version, SANDBOX_NOW, policy, refresh_all=True)
            if version == "v25.0":
                first = _rows(engine, "SELECT media_id, views FROM instagram.media_insights_snapshots ORDER BY 1")
                media_before = _rows(engine, "SELECT media_id, caption, like_count, comments_count FROM instagram.media ORDER BY 1")
            client.close()
    with_views = [(m, v) for m, v in first if v is not None]
    assert len(with_views) >= 5  # v25 measured views
    for media_id, views in with_views:  # the sandbox's own truth (frozen clock)
        assert views == world.media_metric(media_id, "views")
    after = _rows(engine, "SELECT media_id, views, api_version FROM instagram.media_insights_snapshots ORDER BY 1")
    assert [(m, v) for m, v, _ in after] == first
    assert {version for _, _, version in after} == {"v18.0"}  # the second capture did happen
    assert _rows(engine, "SELECT media_id, caption, like_count, comments_count FROM instagram.media ORDER BY 1") == media_before
