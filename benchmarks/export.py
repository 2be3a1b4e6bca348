"""Benchmark: `ig-analytics export` streams (issue 26): the peak memory of the export process for 10x more posts.

Posts (`instagram.media`, captions of 300 characters) are written with COPY into a throwaway PostgreSQL, then
`ig-analytics export media --format csv --output FILE` runs as its own process for N and for 10 x N posts. COPY
streams the rows from the server to the file, so the process's peak memory should not grow with N; the time and
the file size are printed too.

    .venv/bin/python -m benchmarks.export [--quick]      (full: 10,000 and 100,000 posts; quick: 2,000 and 20,000)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as c  # noqa: E402

NAME = "export"
CLI = Path(sys.executable).with_name("ig-analytics")


def add_posts(engine, n: int) -> None:
    from ig_analytics.storage import db

    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    caption = ("a caption of about three hundred characters, with #hashtags and émojis 🎉 " * 5)[:300]
    rows = [(f"m{i:07d}", "17841400000000001", "IMAGE", "FEED", caption, f"https://example.test/p/{i}",
             t0 + timedelta(minutes=i), t0, t0) for i in range(n)]
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE instagram.media CASCADE")
        db.bulk_upsert(conn, "accounts", ["ig_user_id", "username", "timezone", "status"],
                       [("17841400000000001", "bench", "UTC", "active")], ["ig_user_id"])
        db.bulk_upsert(conn, "media", ["media_id", "ig_user_id", "media_type", "media_product_type", "caption",
                                       "permalink", "published_at", "first_seen_at", "updated_at"], rows, ["media_id"])


def export_once(url: str, home: Path, target: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one `export` process: its VmHWM read every 10 ms while it runs (wait4's
    ru_maxrss is not that process's alone here: it reported the benchmark's own earlier children)."""
    env = {**os.environ, "DATABASE_URL": url, "IG_ANALYTICS_HOME": str(home)}
    started = time.perf_counter()
    proc = subprocess.Popen([str(CLI), "export", "media", "--format", "csv", "--output", str(target)], env=env)
    peak = 0.0
    while proc.poll() is None:
        _, hwm = c.process_rss_mb(proc.pid)
        peak = max(peak, hwm) if hwm == hwm else peak  # NaN once the process is gone
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"export failed with {proc.returncode}")
    return seconds, peak


def main(argv: list[str] | None = None) -> int:
    quick, _ = c.quick_flag(argv)
    c.header(NAME, quick)
    small, large = (2_000, 20_000) if quick else (10_000, 100_000)
    with c.temp_postgres() as (_server, url), tempfile.TemporaryDirectory() as scratch:
        engine = c.fresh_schema(url)
        home = Path(scratch) / "home"
        home.mkdir()
        peaks = {}
        for n in (small, large):
            add_posts(engine, n)
            target = Path(scratch) / f"media-{n}.csv"
            export_once(url, home, target)  # warm: imports and the server's cache
            seconds, peak = export_once(url, home, target)
            lines = sum(1 for _ in target.open("rb"))
            peaks[n] = peak
            c.result(f"export.N{n}.seconds", seconds, "s")
            c.result(f"export.N{n}.peak_rss", peak, "MB", note=f"{lines - 1:,} rows, {target.stat().st_size / 1e6:.1f} MB")
        c.result("export.peak_rss_growth", peaks[large] - peaks[small], "MB", note=f"{large // small}x the rows")
        engine.dispose()
    c.done(NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
