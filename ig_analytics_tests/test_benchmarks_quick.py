"""The benchmarks must keep running: each one, in quick mode, as a subprocess, prints its numbers.

No timing is asserted (benchmarks print numbers; machines differ): only that every benchmark ran to the end
and printed the results BENCHMARKS.md quotes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULT_RE = re.compile(r"^RESULT (\S+) = (-?[\d,]+(?:\.\d+)?|inf)\b", re.MULTILINE)

EXPECTED = {
    "api_calls": ["media.baseline.requests", "media.baseline.seconds", "media.ours.requests", "media.ours.seconds",
                  "media.speedup", "account90.fetch.requests", "account90.sync.seconds",
                  "comments.first_sync.requests_per_100_posts", "comments.steady_hour.requests_per_100_posts"],
    "db_writes": ["writes.ours.insert.rows_per_s", "writes.ours.update.rows_per_s", "writes.per_row.rows_per_s",
                  "writes.speedup.insert", "writes.split.encode_seconds", "writes.split.server_seconds",
                  "writes.checkout.pre_ping.cpu_us", "writes.checkout.no_ping.cpu_us"],
    "scale": ["scale.N3.cold.seconds", "scale.N3.cold.calls", "scale.N10.cold.seconds", "scale.N10.steady.calls",
              "scale.N10.peak_rss", "scale.N10.rss_growth"],
    "hourly_job": ["hourly_job.N5.first_hour.seconds", "hourly_job.N5.first_hour.peak_rss",
                   "hourly_job.N5.first_hour.step.media_and_snapshots", "hourly_job.N5.next_hour.seconds",
                   "hourly_job.N5.next_hour.peak_rss", "hourly_job.N5.next_hour.events"],
    "tick": ["tick.N6.S2.first_hour.seconds", "tick.N6.S2.first_hour.accounts", "tick.N6.S2.steady.seconds",
             "tick.N6.S2.steady.peak_rss_per_run", "tick.N6.S2.steady.analytics_cpu", "tick.N6.S1.steady.analytics_cpu",
             "tick.N6.S2.steady.step.media_and_snapshots", "tick.N6.analytics_cpu_ratio", "daily.N6.S2.seconds",
             "daily.N6.S2.insights_0200.accounts", "daily.N6.S2.audience_0220.accounts",
             "daily.N6.S2.reports_0300.peak_rss_per_run"],
    "analytics": ["analytics.snapshots", "analytics.media_engagement.seconds", "analytics.trending_posts.seconds",
                  "analytics.best_posting_times.seconds", "analytics.total.seconds"],
    "orchestration": ["cli.sync.seconds", "cli.sync.runs", "cli.sync.events", "direct.seconds", "direct.api_only.seconds",
                      "orchestration.overhead.seconds", "orchestration.overhead.share", "orchestration.ratio"],
    "responsiveness": ["sandbox.generate_1000x100.seconds", "sandbox.parallel_8x300ms.seconds"],
    "export": ["export.N2000.seconds", "export.N2000.peak_rss", "export.N20000.seconds", "export.N20000.peak_rss",
               "export.peak_rss_growth"],
    "growth": ["growth.simulation.seconds", "growth.media_insights_snapshots.bytes_per_account_year",
               "growth.postgres.bytes_per_account", "growth.postgres.bytes_per_account_year",
               "growth.postgres.projected_10k_1y",
               "growth.dagster.next_hour.bytes_per_run", "growth.dagster.bytes_per_30d"],
    "first_retention": ["first_retention.pack.all.seconds", "first_retention.pack.batch5.seconds",
                        "first_retention.pack.batch5.peak_transaction.seconds", "first_retention.merge.all.seconds",
                        "first_retention.merge.batch5.peak_transaction.seconds",
                        "first_retention.snapshots.batch5.peak_transaction.seconds",
                        "first_retention.audience.batch5.peak_transaction.seconds",
                        "first_retention.comments.batch5.peak_transaction.seconds"],
}


def _results(stdout: str) -> dict[str, float]:
    return {key: float(value.replace(",", "")) for key, value in RESULT_RE.findall(stdout)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_benchmark_runs_in_quick_mode_and_prints_its_numbers(name):
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--quick"], cwd=str(REPO_ROOT),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"BENCHMARK {name} done" in proc.stdout, proc.stdout[-3000:]
    results = _results(proc.stdout)
    missing = [key for key in EXPECTED[name] if key not in results]
    assert not missing, f"{name} did not print {missing}:\n{proc.stdout}"
    # a figure of 0 means the part measured did not run (rss growth and Dagster's overhead may be 0 or less)
    zero_ok = ("rss_growth", "overhead.seconds", "overhead.share")
    empty = [key for key in EXPECTED[name] if results[key] <= 0 and not key.endswith(zero_ok)]
    assert not empty, f"{name} measured nothing for {empty}:\n{proc.stdout}"
    if name == "api_calls":  # request counts are deterministic: batching must beat one call per post
        assert results["media.ours.requests"] < results["media.baseline.requests"], results


def test_shard_mode_captures_every_account_in_each_run():
    """benchmarks.scale --accounts/--shards (issue 15): the shard processes together capture every account, in the
    two runs with 2 shards and the one with a single shard (counted in instagram.sync_runs, not by the shards)."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.scale", "--accounts", "12", "--shards", "2", "--posts", "20"],
                          cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = _results(proc.stdout)
    for run in ("S2.cold", "S2.steady", "S1.steady"):
        assert results[f"shards.N12.{run}.accounts_captured"] == 12, proc.stdout
        assert 0 < results[f"shards.N12.{run}.peak_rss_per_run"] < 2000, proc.stdout


def test_hourly_job_mode_runs_every_step_for_every_account():
    """benchmarks.hourly_job: the whole media_sync_job in a run worker process, both hours, every account captured
    (counted in instagram.sync_runs), and media_engagement written for exactly the posts captured in the slot."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.hourly_job", "--accounts", "4", "--posts", "20"],
                          cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = _results(proc.stdout)
    steps = ("media_and_snapshots", "media_engagement", "trending_posts", "account_engagement_daily",
             "best_posting_times")
    for hour in ("first_hour", "next_hour"):
        r = {key.split(f"hourly_job.N4.{hour}.", 1)[1]: v for key, v in results.items()
             if key.startswith(f"hourly_job.N4.{hour}.")}
        assert r["accounts_captured"] == 4, proc.stdout
        assert all(f"step.{step}" in r for step in steps), proc.stdout
        assert r["rows.media_engagement"] == r["posts_captured"] > 0, proc.stdout
        assert r["events"] > 0 and 0 < r["peak_rss"] < 2000, proc.stdout
    first = "hourly_job.N4.first_hour."
    assert results[first + "posts_captured"] >= 0.9 * results[first + "posts_in_window"], proc.stdout
    assert results["hourly_job.N4.next_hour.posts_captured"] < results[first + "posts_captured"], proc.stdout


def test_run_all_script_exists_and_knows_every_benchmark():
    from benchmarks.run_all import BENCHMARKS

    assert sorted(BENCHMARKS) == sorted(EXPECTED)
    for name in BENCHMARKS:
        assert (REPO_ROOT / "benchmarks" / f"{name}.py").exists()
