"""The data-quality checks: each passes on good data and fails (with the intended severity) on data made to
violate it. Most tests call the rules (plain Python, ``ig_analytics.quality``) through the registry of checks; the
last ones run checks through Dagster (partitioned, blocking, the hourly data-quality job)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from ig_analytics.defs import checks as C
from ig_analytics.defs.check_ranges import Scope
from ig_analytics.defs.partitions import daily_partitions, hourly_partitions
from ig_analytics.quality.account_insights import account_insights_freshness
from ig_analytics.quality.analytics import REPORT_KEYS
from ig_analytics.quality.result import CheckResult, Severity
from ig_analytics_tests.ops_data import (
    UTC, add_account, add_day, add_media, add_snapshot, add_sync_run, hour_floor, insert, now_utc,
)

ERROR, WARN = Severity.ERROR, Severity.WARN


def _read_clock() -> None:
    """NOW and the scopes derived from it, set when each test starts: the middle of the last hour that has ended.
    The rules take now from the scope and the tests' SQL from NOW, so an hour (or midnight) that rolls over
    while a test runs changes nothing, and no test waits for one; the hour is a partition that exists."""
    global NOW, HOUR, TODAY, YESTERDAY, HOURLY, DAILY, UNPARTITIONED, PARTITION_OF
    now = hour_floor(now_utc()) - timedelta(minutes=30)
    NOW, HOUR, TODAY = now, hour_floor(now), now.date()
    YESTERDAY = TODAY - timedelta(days=1)
    HOURLY = Scope(HOUR, HOUR + timedelta(hours=1), NOW)
    DAILY = Scope(datetime.combine(YESTERDAY - timedelta(days=2), time(), UTC), datetime.combine(TODAY, time(), UTC), NOW)
    UNPARTITIONED = Scope(None, None, NOW)
    PARTITION_OF = {
        "account_insights_valid": DAILY, "account_insights_reach_within_views": DAILY, "account_insights_complete": DAILY,
        "performance_reports_valid": DAILY, "weekly_performance_reports_valid": DAILY,
        "media_valid": HOURLY, "snapshots_valid": HOURLY, "snapshots_reach_within_views": HOURLY,
        "snapshots_counters_monotonic": HOURLY, "media_engagement_valid": HOURLY,
        "media_engagement_rates_plausible": HOURLY, "trending_posts_valid": HOURLY,
    }


_read_clock()


@pytest.fixture(autouse=True)
def _clock():
    _read_clock()


@pytest.fixture()
def good(engine):
    """Two active accounts with complete, sane data; one disabled account with nothing."""
    with engine.begin() as conn:
        add_account(conn, "1001")
        add_account(conn, "1002")
        add_account(conn, "1003", status="disabled", expires_in=timedelta(days=-10))
        for acc in ("1001", "1002"):
            for back in (1, 2, 3):
                add_day(conn, acc, TODAY - timedelta(days=back))
        add_media(conn, "P1", "1001", NOW - timedelta(hours=10))
        add_media(conn, "P2", "1001", NOW - timedelta(days=20))
        for i, back in enumerate((2, 1, 0)):
            add_snapshot(conn, "P1", "1001", HOUR - timedelta(hours=back), reach=40 + i * 5, views=70 + i * 5,
                         likes=8 + i)
        add_snapshot(conn, "P2", "1001", HOUR - timedelta(hours=3), reach=500, views=900, likes=60)
        insert(conn, "media_engagement", media_id="P1", ig_user_id="1001", captured_at=HOUR, engagement=14, reach=50,
               engagement_rate_reach=28.0, like_rate=20.0, comment_rate=4.0, save_rate=2.0, share_rate=2.0,
               computed_at=NOW)
        insert(conn, "trending_posts", ig_user_id="1001", as_of=HOUR, rank=1, media_id="P1", score=2.5)
        insert(conn, "account_engagement_daily", ig_user_id="1001", date=TODAY, posts=1, engagement=14, reach=50,
               engagement_rate_reach=28.0, computed_at=NOW)
        insert(conn, "best_posting_times", ig_user_id="1001", weekday=3, hour=14, posts=4,
               avg_engagement_rate_reach=5.5, shrunk_engagement_rate_reach=5.1, computed_at=NOW)
        insert(conn, "performance_reports", ig_user_id="1001", period_start=YESTERDAY - timedelta(days=6),
               period_end=YESTERDAY, generated_at=NOW, report={k: {} for k in REPORT_KEYS})
    return engine


def run_check(engine, name: str, scope: Scope | None = None) -> CheckResult:
    check = next(c for c in C.CHECKS.values() if c.name == name and (name != "column_schema_unchanged"))
    with engine.connect() as conn:
        return check.evaluate(conn, scope or PARTITION_OF.get(name, UNPARTITIONED))


def execute(engine, sql: str, **params) -> None:
    """Run ``sql`` with ``:now``, ``:hour`` and ``:today`` bound to the test's clock (the database's now() and
    CAST(:today AS date) are not it: between 00:00 and 00:30 UTC the test's hour is still yesterday's)."""
    with engine.begin() as conn:
        conn.execute(sa.text(sql), {"now": NOW, "hour": HOUR, "today": TODAY, **params})


def test_every_check_passes_on_good_data(good):
    with good.connect() as conn:
        for label, check in C.CHECKS.items():
            result = check.evaluate(conn, PARTITION_OF.get(check.name, UNPARTITIONED))
            assert result.passed, (label, result.metadata)


VIOLATIONS = [
    # (check, SQL that breaks the good data, expected severity)
    ("account_insights_valid", "UPDATE instagram.account_insights_daily SET reach = -5 WHERE ig_user_id = '1002'"
     " AND date = CAST(:today AS date) - 1", ERROR),
    ("account_insights_reach_within_views", "UPDATE instagram.account_insights_daily SET reach = 500, views = 300"
     " WHERE ig_user_id = '1001' AND date = CAST(:today AS date) - 2", WARN),
    ("account_insights_complete", "DELETE FROM instagram.account_insights_daily WHERE ig_user_id = '1002'"
     " AND date = CAST(:today AS date) - 2", ERROR),
    ("media_valid", "UPDATE instagram.media SET published_at = :now + interval '3 days' WHERE media_id = 'P2'",
     ERROR),
    ("media_valid", "UPDATE instagram.media SET like_count = -1 WHERE media_id = 'P1'", ERROR),
    ("snapshots_valid", "UPDATE instagram.media_insights_snapshots SET likes = -1 WHERE media_id = 'P1'"
     " AND captured_at = :hour", ERROR),
    ("snapshots_valid", "UPDATE instagram.media_insights_snapshots SET fetched_at = :now + interval '2 hours'"
     " WHERE media_id = 'P1' AND captured_at = :hour", ERROR),
    ("snapshots_reach_within_views", "UPDATE instagram.media_insights_snapshots SET reach = 999 WHERE media_id = 'P1'"
     " AND captured_at = :hour", WARN),
    ("snapshots_counters_monotonic", "UPDATE instagram.media_insights_snapshots SET likes = 5 WHERE media_id = 'P1'"
     " AND captured_at = :hour", WARN),
    ("snapshots_recent_complete", "DELETE FROM instagram.media_insights_snapshots", ERROR),
    ("snapshots_fresh", "DELETE FROM instagram.media_insights_snapshots WHERE media_id = 'P1'"
     " AND captured_at > :now - interval '150 minutes'", ERROR),
    ("media_engagement_valid", "UPDATE instagram.media_engagement SET share_rate = -1", ERROR),
    ("media_engagement_valid", "UPDATE instagram.media_engagement SET engagement_rate_reach = 30.0", ERROR),
    ("media_engagement_valid", "UPDATE instagram.media_engagement SET reach = 0", ERROR),
    ("media_engagement_rates_plausible", "UPDATE instagram.media_engagement SET like_rate = 130", WARN),
    ("trending_posts_valid", "INSERT INTO instagram.trending_posts (ig_user_id, as_of, rank, media_id, score)"
     " VALUES ('1001', :hour, 2, 'P1', 1.0)", ERROR),
    ("trending_posts_valid", "UPDATE instagram.trending_posts SET score = 'NaN'", ERROR),
    ("account_engagement_daily_valid", "UPDATE instagram.account_engagement_daily SET posts = -1", ERROR),
    ("account_engagement_daily_valid", "UPDATE instagram.account_engagement_daily SET date = CAST(:today AS date) + 5", ERROR),
    ("best_posting_times_valid", "UPDATE instagram.best_posting_times SET avg_engagement_rate_reach = -2", ERROR),
    ("performance_reports_valid", "UPDATE instagram.performance_reports SET report = report - 'trends'", ERROR),
    ("accounts_tokens_valid", "UPDATE instagram.accounts SET token_expires_at = :now - interval '1 day'"
     " WHERE ig_user_id = '1002'", ERROR),
    ("accounts_tokens_valid", "UPDATE instagram.accounts SET token_ciphertext = NULL WHERE ig_user_id = '1002'", ERROR),
    ("accounts_tokens_valid", "UPDATE instagram.accounts SET token_expires_at = :now + interval '3 days'"
     " WHERE ig_user_id = '1002'", WARN),
    ("accounts_tokens_valid", "UPDATE instagram.accounts SET status = 'needs_reauth' WHERE ig_user_id = '1002'", ERROR),
]


@pytest.mark.parametrize("name, sql, severity", VIOLATIONS, ids=[f"{v[0]}-{i}" for i, v in enumerate(VIOLATIONS)])
def test_check_fails_on_violating_data(good, name, sql, severity):
    execute(good, sql)
    result = run_check(good, name)
    assert not result.passed, result.metadata
    assert result.severity == severity


def test_the_future_is_judged_by_the_products_clock_not_the_databases(good):
    """A check evaluated with the product's clock set three days back (a replay, a test at 00:05 UTC) sees this
    hour's rows as three days in the future; with PostgreSQL's now() it would not."""
    back = NOW - timedelta(days=3)
    for name, scope in [("snapshots_valid", Scope(HOUR, HOUR + timedelta(hours=1), back)),
                        ("media_valid", Scope(HOUR, HOUR + timedelta(hours=1), back)),
                        ("account_engagement_daily_valid", Scope(None, None, back)),
                        ("performance_reports_valid", Scope(DAILY.start, DAILY.end, back))]:
        result = run_check(good, name, scope)
        assert not result.passed, (name, result.metadata)
        assert any(n for rule, n in result.metadata["violations"].items()
                   if rule.startswith("future") or rule == "bad_period"), (name, result.metadata)


def test_engagement_rate_by_reach_above_100_is_legitimate_but_a_like_rate_is_not(good):
    # one account can comment many times (engagement and comments above reach), but like or save only once
    execute(good, "UPDATE instagram.media_engagement SET engagement = 75, engagement_rate_reach = 150.0,"
                  " comment_rate = 120.0")
    assert run_check(good, "media_engagement_valid").passed
    assert run_check(good, "media_engagement_rates_plausible").passed
    execute(good, "UPDATE instagram.media_engagement SET like_rate = 101.0")
    result = run_check(good, "media_engagement_rates_plausible")
    assert not result.passed and result.severity == WARN, result.metadata


def test_small_counter_drops_are_tolerated_as_revisions(good):
    # 10 -> 9 likes (an unlike) and reach 50 -> 49.5 % ... within 2 units / 2 %
    execute(good, "UPDATE instagram.media_insights_snapshots SET likes = 8, reach = 44 WHERE media_id = 'P1'"
                  " AND captured_at = :hour")
    assert run_check(good, "snapshots_counters_monotonic").passed


def test_missing_day_with_a_recorded_failure_passes_and_lists_the_reason(good):
    execute(good, "DELETE FROM instagram.account_insights_daily WHERE ig_user_id = '1002' AND date = CAST(:today AS date) - 2")
    day = (TODAY - timedelta(days=2)).isoformat()
    with good.begin() as conn:
        add_sync_run(conn, "run-a", "1002", "account", f"{TODAY - timedelta(days=3)}...{YESTERDAY}", "failed",
                     error="(#4) Application request limit reached", started_at=NOW - timedelta(hours=1))
    result = run_check(good, "account_insights_complete")
    assert result.passed
    assert result.metadata["missing_with_failure_reason"] == {"1002": {day: "(#4) Application request limit reached"}}
    # a later successful sync of that day without the row is not an explanation
    with good.begin() as conn:
        add_sync_run(conn, "run-b", "1002", "account", day, "success", started_at=NOW)
    assert not run_check(good, "account_insights_complete").passed


def test_completeness_only_covers_the_accounts_a_run_was_asked_for(good):
    execute(good, "DELETE FROM instagram.account_insights_daily WHERE ig_user_id = '1002'")
    scope = Scope(DAILY.start, DAILY.end, NOW, ("1001",))
    assert run_check(good, "account_insights_complete", scope).passed
    assert not run_check(good, "account_insights_complete").passed


def test_account_insights_freshness_deadline_is_0600_utc(good):
    execute(good, "DELETE FROM instagram.account_insights_daily WHERE ig_user_id = '1002' AND date = CAST(:today AS date) - 1")
    with good.connect() as conn:
        before = account_insights_freshness(conn, datetime.combine(TODAY, time(5, 59), UTC))
        after = account_insights_freshness(conn, datetime.combine(TODAY, time(6, 0), UTC))
    assert before.passed  # before the deadline the day before yesterday is what must be there
    assert not after.passed and after.metadata["missing_without_reason"] == {"1002": [YESTERDAY.isoformat()]}


def test_missing_snapshots_with_a_failed_media_sync_are_explained(good):
    execute(good, "DELETE FROM instagram.media_insights_snapshots")
    with good.begin() as conn:
        add_sync_run(conn, "run-m", "1001", "media", HOUR.strftime("%Y-%m-%d-%H:00"), "failed",
                     error="token expired")
    assert run_check(good, "snapshots_recent_complete").passed
    assert run_check(good, "snapshots_fresh").passed


def test_column_schema_check_fails_on_a_missing_or_retyped_column_and_allows_extra_ones(good):
    def schema_result():
        with good.connect() as conn:
            return C.CHECKS["account_insights_daily:column_schema_unchanged"].evaluate(conn, UNPARTITIONED)

    execute(good, "ALTER TABLE instagram.account_insights_daily ADD COLUMN note text")
    result = schema_result()
    assert result.passed and result.metadata["unexpected_columns"] == ["note"]
    execute(good, "ALTER TABLE instagram.account_insights_daily ALTER COLUMN website_clicks TYPE integer")
    execute(good, "ALTER TABLE instagram.account_insights_daily DROP COLUMN profile_links_taps")
    result = schema_result()
    assert not result.passed and result.severity == ERROR
    assert result.metadata["missing_columns"] == ["profile_links_taps"]
    assert result.metadata["retyped_columns"] == {"website_clicks": {"expected": "bigint", "actual": "integer"}}


# ---- through Dagster -------------------------------------------------------------------------------------


def _defs_with(job: dg.UnresolvedAssetJobDefinition):
    from ig_analytics.definitions import defs

    return dg.Definitions(assets=list(defs.assets), asset_checks=C.asset_checks, jobs=[job],
                          resources=dict(defs.resources))


def _evaluations(result) -> dict[str, tuple[bool, str | None]]:
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": (e.passed, e.partition)
        for e in result.get_asset_check_evaluations()
    }


def test_partitioned_blocking_check_fails_a_partition_range_run(good, ig_home):
    job = dg.define_asset_job("check_account_days", selection=dg.AssetSelection.checks(C.account_insights_checks),
                              partitions_def=daily_partitions)
    first, last = (TODAY - timedelta(days=3)).isoformat(), YESTERDAY.isoformat()
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    with dg.instance_for_test() as instance:
        resolved = _defs_with(job).resolve_job_def("check_account_days")
        ok = resolved.execute_in_process(instance=instance, tags=tags)
        assert ok.success
        assert {k: v[0] for k, v in _evaluations(ok).items()} == {
            "account_insights_daily:account_insights_valid": True,
            "account_insights_daily:account_insights_reach_within_views": True,
            "account_insights_daily:account_insights_complete": True,
        }
        execute(good, "UPDATE instagram.account_insights_daily SET views = -1 WHERE date = :d",
                d=TODAY - timedelta(days=3))
        # A range run records one evaluation per partition (the UI shows each partition's own status).
        valid = [(e.partition, e.passed) for e in ok.get_asset_check_evaluations()
                 if e.check_name == "account_insights_valid"]
        days = [(TODAY - timedelta(days=n)).isoformat() for n in (3, 2, 1)]
        assert sorted(valid) == [(d, True) for d in days]
        bad = resolved.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
        assert not bad.success  # blocking + ERROR: the step fails, so does the run
        valid = {e.partition: e.passed for e in bad.get_asset_check_evaluations()
                 if e.check_name == "account_insights_valid"}
        assert valid == {days[0]: False, days[1]: True, days[2]: True}  # only the broken day is red
        statuses = {info.partition_key: info.latest_execution_status.value
                    for info in instance.event_log_storage.get_asset_check_partition_info(
                        [dg.AssetCheckKey(dg.AssetKey("account_insights_daily"), "account_insights_valid")])}
        assert statuses == {days[0]: "FAILED", days[1]: "SUCCEEDED", days[2]: "SUCCEEDED"}


def test_hourly_partitioned_checks_run_for_one_partition(good, ig_home):
    job = dg.define_asset_job("check_media_hour", selection=dg.AssetSelection.checks(C.ingestion_checks),
                              partitions_def=hourly_partitions)
    execute(good, "UPDATE instagram.media_insights_snapshots SET reach = 999 WHERE media_id = 'P1'"
                  " AND captured_at = :hour")
    with dg.instance_for_test() as instance:
        result = _defs_with(job).resolve_job_def("check_media_hour").execute_in_process(
            # a check-only job takes a one-partition range (execute_in_process(partition_key=) wants an asset)
            instance=instance, tags={"dagster/asset_partition_range_start": HOUR.strftime("%Y-%m-%d-%H:00"),
                                     "dagster/asset_partition_range_end": HOUR.strftime("%Y-%m-%d-%H:00")})
    assert result.success  # the failed check is a WARN and not blocking
    evaluations = _evaluations(result)
    assert evaluations["media_insights_snapshots:snapshots_reach_within_views"][0] is False
    assert evaluations["media_insights_snapshots:snapshots_valid"][0] is True


def test_data_quality_job_runs_the_unpartitioned_checks(good, ig_home):
    from ig_analytics.definitions import defs

    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("data_quality_job").execute_in_process(instance=instance)
    assert result.success
    evaluations = _evaluations(result)
    assert len(evaluations) == 9 and all(passed for passed, _ in evaluations.values()), evaluations
    assert any(s.name == "hourly_data_quality" and s.default_status == dg.DefaultScheduleStatus.RUNNING
               for s in defs.schedules)


def test_status_shows_lag_token_expiry_and_recent_errors(good):
    from ig_analytics.cli.status import render_status

    execute(good, "DELETE FROM instagram.account_insights_daily WHERE ig_user_id = '1002' AND date >= CAST(:today AS date) - 2")
    execute(good, "UPDATE instagram.accounts SET token_expires_at = :now + interval '3 days' WHERE ig_user_id = '1002'")
    with good.begin() as conn:
        add_sync_run(conn, "r1", "1002", "account", YESTERDAY.isoformat(), "failed", error="(#4) rate limited")
    text = render_status(good, NOW)  # the test's clock: at 00:10 UTC the wall clock's yesterday is NOW's today
    assert "2 days behind" in text and "(in 3 days)" in text and "(#4) rate limited" in text


def test_the_rules_are_plain_python_without_dagster():
    import subprocess
    import sys

    modules = ("result", "account_insights", "media", "analytics", "accounts", "schema")
    code = ("import sys\n" + "".join(f"import ig_analytics.quality.{m}\n" for m in modules)
            + "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_checks_read_the_accounts_a_run_asked_for_from_its_typed_run_config():
    from ig_analytics.defs.ingestion_assets import (
        AccountSyncConfig, MediaSyncConfig, account_insights_daily, media_and_snapshots, requested_accounts,
    )

    media = dg.RunConfig(ops={media_and_snapshots.op.name: MediaSyncConfig(ig_user_ids=["7", "8"], refresh_all=True)})
    assert requested_accounts(media.to_config_dict()) == ("7", "8")
    account = dg.RunConfig(ops={account_insights_daily.op.name: AccountSyncConfig(ig_user_ids=["9"])})
    assert requested_accounts(account.to_config_dict()) == ("9",)
    every = dg.RunConfig(ops={account_insights_daily.op.name: AccountSyncConfig()})
    assert requested_accounts(every.to_config_dict()) == ()
    # a check-only run (the hourly data-quality job, a UI run) has no ingestion config: every active account
    assert requested_accounts({}) == ()
    assert requested_accounts({"loggers": {"console": {"config": {"log_level": "WARNING"}}}}) == ()
    with pytest.raises(Exception, match="ig_user_ids"):  # a malformed config is an error, not silently "everyone"
        requested_accounts({"ops": {"media_and_snapshots": {"config": {"ig_user_ids": "7"}}}})


def test_status_reads_last_successes_per_account_and_sync_type(good):
    from ig_analytics.cli.status import render_status

    with good.begin() as conn:
        add_sync_run(conn, "s1", "1001", "account", YESTERDAY.isoformat(), "success", started_at=NOW - timedelta(hours=5))
        add_sync_run(conn, "s2", "1001", "account", YESTERDAY.isoformat(), "partial", started_at=NOW - timedelta(hours=3))
        add_sync_run(conn, "s3", "1001", "account", YESTERDAY.isoformat(), "failed", started_at=NOW - timedelta(hours=1))
        add_sync_run(conn, "s4", "1002", "media", HOUR.strftime("%Y-%m-%d-%H:00"), "success",
                     started_at=NOW - timedelta(days=3))
    lines = render_status(good, now=NOW).splitlines()
    starts = {line.split()[0].rstrip(":"): i for i, line in enumerate(lines) if not line.startswith(" ")}
    first, second = lines[starts["1001"]:starts["1002"]], lines[starts["1002"]:starts["1003"]]
    assert "account insights: last success 3.0 h ago" in "\n".join(first)  # the newest success or partial
    assert "media snapshots:  last success never" in "\n".join(first)
    assert "account insights: last success never" in "\n".join(second)
    assert "media snapshots:  last success 3.0 days ago" in "\n".join(second)
