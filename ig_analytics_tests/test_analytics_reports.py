import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from benchmarks.direct_writes import refresh_best_posting_times, refresh_media_engagement
from ig_analytics.analytics.reports import NOTICE_FIELDS, build_report, write_reports
from ig_analytics.analytics.trending import refresh_trending_posts
from ig_analytics_tests.analytics_data import (
    add_account,
    add_account_days,
    add_media,
    add_profile_snapshots,
    add_snapshots,
    ts,
)

START, END = date(2026, 2, 2), date(2026, 2, 8)
NOW = ts(2026, 2, 9, 6)


def _seed(conn):
    add_account(conn, "R", tz="Europe/Berlin", followers_total=5000, username="shop")
    # the follower history from the day before the period: +5 a day (7 follows, 2 unfollows)
    add_account_days(conn, "R", [{"date": START - timedelta(days=1), "follower_count": 7, "followers_total": 995}] + [
        {"date": START + timedelta(days=i), "reach": 100 + 10 * i, "views": 300 + i, "follower_count": 7,
         "followers_total": 1000 + 5 * i, "profile_views": None if i < 5 else 20 + i}
        for i in range(7)
    ])
    conn.execute(sa.text("UPDATE instagram.account_insights_daily SET unfollows = 2, followers_total_source = 'derived'"))
    add_profile_snapshots(conn, "R", [(ts(2026, 1, 1), 900)])  # not what followers_at_publish reads
    media, snaps = [], []
    # posts on each day, at 08:00 UTC (09:00 Berlin); one at 23:30 UTC on Feb 8 = Feb 9 in Berlin: outside
    for i in range(7):
        pub = ts(2026, 2, 2 + i, 8)
        mtype = ("IMAGE", "FEED") if i % 2 else ("VIDEO", "REELS")
        media.append({"media_id": f"r{i}", "ig_user_id": "R", "published_at": pub, "media_type": mtype[0],
                      "media_product_type": mtype[1]})
        snaps.append({"media_id": f"r{i}", "ig_user_id": "R", "captured_at": pub + timedelta(hours=20),
                      "reach": 200 * (i + 1), "views": 400 * (i + 1), "likes": 10 * (i + 1), "comments": i,
                      "saved": 1, "shares": None})
    media.append({"media_id": "late", "ig_user_id": "R", "published_at": ts(2026, 2, 8, 23, 30)})
    # a story: counted apart, in no post average
    media.append({"media_id": "story", "ig_user_id": "R", "published_at": ts(2026, 2, 5, 12),
                  "media_type": "IMAGE", "media_product_type": "STORY"})
    snaps.append({"media_id": "story", "ig_user_id": "R", "captured_at": ts(2026, 2, 5, 20), "reach": 50,
                  "views": 60, "total_interactions": 40})
    snaps.append({"media_id": "late", "ig_user_id": "R", "captured_at": ts(2026, 2, 9, 5), "reach": 5, "likes": 99})
    add_media(conn, media)
    add_snapshots(conn, snaps)
    conn.execute(sa.text("UPDATE instagram.media_insights_snapshots SET replies = 3 WHERE media_id = 'story'"))


def test_build_report_values(engine):
    with engine.begin() as conn:
        _seed(conn)
        refresh_media_engagement(conn, now=NOW)
        refresh_best_posting_times(conn, now=NOW)
        report = build_report(conn, "R", START, END)
    json.dumps(report)  # serialisable as is
    assert report["period"] == {"start": "2026-02-02", "end": "2026-02-08", "days": 7}
    am = report["account_metrics"]
    assert am["total_reach"] is None  # no unique multi-day reach in daily data
    assert am["reach_daily_avg"] == pytest.approx(130.0)
    assert am["reach_daily_max"] == 160 and am["reach_daily_sum_not_unique"] == 910
    assert am["total_views"] == sum(300 + i for i in range(7))
    assert am["total_impressions"] is None
    assert am["avg_profile_views"] == pytest.approx((25 + 26) / 2)
    # end of Feb 8 minus end of Feb 1 (the day before the period): the first day's gain counts
    assert am["follower_growth"] == 35 and am["followers_total"] == 1030
    assert (am["follower_growth_from"], am["follower_growth_to"]) == ("2026-02-01", "2026-02-08")
    assert am["new_followers"] == 49 and am["unfollows"] == 14 and am["followers_total_source"] == "derived"
    assert am["new_followers_reported"] == 49
    cm = report["content_metrics"]
    assert cm["total_posts"] == 7  # "late" is Feb 9 in Berlin; the story is not a post
    assert cm["total_stories"] == 1 and "stories excluded" in cm["averages_cover"]
    assert cm["stories"]["story_reach"] == 50 and cm["stories"]["story_replies"] == 3
    # post i: engagement 10(i+1) + i + 1 = 11(i+1); reach 200(i+1) -> 5.5% each
    assert cm["avg_engagement_rate"] == pytest.approx(5.5)
    assert cm["avg_reach"] == pytest.approx(800.0) and cm["avg_views"] == pytest.approx(1600.0)
    assert cm["best_performing_post"]["media_id"] == "r6"
    en = report["engagement"]
    assert en["engagement_rate_reach"] == pytest.approx(5.5)
    assert en["engagement_rate_views"] == pytest.approx(2.75)
    # followers at publish: the total at the end of the day before each post's day, 995 + 5 i (not a profile
    # snapshot, not today's total)
    assert en["engagement_rate_followers"] == pytest.approx(308 / sum(995 + 5 * i for i in range(7)) * 100)
    assert en["like_rate"] == pytest.approx(5.0)
    assert en["share_rate"] is None  # never reported
    assert en["average_engagement"] == pytest.approx(11 * 4)
    assert {t["post_type"] for t in report["by_post_type"]} == {"REELS", "IMAGE", "STORY"}
    # the chart series: one point per day of the period, integers
    assert [d["followers_total"] for d in report["daily"]] == [1000 + 5 * i for i in range(7)]
    slot = report["best_posting_times"]
    assert slot == []  # one post per (weekday, hour): no slot reaches min_posts
    assert len(report["best_posting_times_grid"]) == 6  # Feb 8's post is younger than 24 h at NOW
    assert report["best_posting_times_grid"][0]["hour"] == 9  # Berlin, not UTC


def test_report_with_no_data_is_null_not_zero(engine):
    with engine.begin() as conn:
        add_account(conn, "E")
        report = build_report(conn, "E", START, END)
    am, cm, en = report["account_metrics"], report["content_metrics"], report["engagement"]
    assert am["total_views"] is None and am["follower_growth"] is None and am["followers_total"] is None
    assert am["avg_profile_views"] is None and am["reach_daily_avg"] is None
    assert cm["total_posts"] == 0 and cm["avg_engagement_rate"] is None and cm["best_performing_post"] is None
    assert en["engagement_rate_reach"] is None and en["average_engagement"] is None
    assert report["trends"] == [] and report["best_posting_times"] == []


def _png_colors(path) -> int:
    """Distinct colours in an 8-bit RGB/RGBA PNG (no PIL)."""
    return len(_png_color_counts(path))


def _png_color_counts(path, min_y: int = 0) -> dict:
    """Colour -> sampled pixel count of an 8-bit RGB/RGBA PNG (every 4th pixel of every 4th row from row
    ``min_y`` down)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if ctype == b"IHDR":
            width, height, depth, color_type = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color_type in (2, 6)
            bpp = 3 if color_type == 2 else 4
        elif ctype == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    colors: dict = {}
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 4 == 0 and y >= min_y:
            for i in range(0, stride, bpp * 4):
                key = bytes(line[i:i + 3])
                colors[key] = colors.get(key, 0) + 1
        prev = line
    return colors


def test_write_reports_html_and_rows(engine, tmp_path):
    with engine.begin() as conn:
        _seed(conn)
        refresh_media_engagement(conn, now=NOW)
        refresh_best_posting_times(conn, now=NOW)
        refresh_trending_posts(conn, as_of=ts(2026, 2, 8, 12), now=NOW)
        results = write_reports(conn, period_end=END, days=7, kind="weekly", reports_dir=tmp_path, now=NOW)
        again = write_reports(conn, period_end=END, days=7, kind="weekly", reports_dir=tmp_path, now=NOW)
        rows = conn.execute(sa.text("SELECT ig_user_id, period_start, period_end, kind, report, html_path "
                                    "FROM instagram.performance_reports")).all()
    assert len(results) == 1 and results[0].ig_user_id == "R"
    assert results[0].report == again[0].report
    assert len(rows) == 1 and rows[0].period_start == START and rows[0].kind == "weekly"
    assert rows[0].report["account_metrics"]["follower_growth"] == 35
    path = results[0].html_path
    assert path.exists() and rows[0].html_path == str(path)
    html = path.read_text()
    assert "<script" not in html and "<svg" in html and "http://" not in html.replace("http://www.w3.org", "")
    assert "Followers" in html and "Best posting times" in html
    assert "**@shop**" in results[0].markdown
    # the followers chart: one point per day, whole-number axis labels
    chart = _svg(html, "Followers (running total)")
    assert chart.count("<circle") == 7
    ticks = re.findall(r'text-anchor="end" fill="#475569">([^<]+)</text>', chart)
    assert len(ticks) >= 2 and all(re.fullmatch(r"[\d,]+", t) for t in ticks), ticks
    assert re.search(r"\(1 post\)|\(1 story\)", html)  # singular where the count is 1
    assert "n/a%" not in html and not re.search(r"\d\.\d\d%", html)  # rates with one decimal
    assert "shrunk engagement rate by reach</text>" in html  # the heatmap's colour legend

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium is not installed: the HTML is not rendered (CI installs it)")
    png = tmp_path / "shot.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1200,1600",
         path.as_uri()],
        check=True, timeout=60, capture_output=True, env={**os.environ, "HOME": str(tmp_path)},
    )
    assert png.exists()
    assert _png_colors(png) >= 20  # charts, heatmap, cards: far from a blank page
    # the followers chart alone, rendered: its line and day markers are drawn (the series colour #2563eb)
    page = tmp_path / "followers.html"
    page.write_text(f"<!DOCTYPE html><html><body style='margin:0'>{chart}</body></html>", encoding="utf-8")
    shot = tmp_path / "followers.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile2'}", f"--screenshot={shot}", "--window-size=600,300",
         "--force-device-scale-factor=2", page.as_uri()],
        check=True, timeout=60, capture_output=True, env={**os.environ, "HOME": str(tmp_path)},
    )
    counts = _png_color_counts(shot, min_y=2 * 40)  # below the title and legend (scale factor 2)
    assert counts.get(bytes((0x25, 0x63, 0xEB)), 0) >= 10, "the followers line and its day markers are not drawn"


def test_a_run_of_many_accounts_keeps_only_each_reports_notice_fields(engine, tmp_path):
    """Issue 27: the 03:00 run of 10,000 accounts held every report until the end (2.2 GB). The scheduled run now
    keeps what the notices read (and the markdown); the stored report and the HTML are the whole report."""
    with engine.begin() as conn:
        _seed(conn)
        refresh_media_engagement(conn, now=NOW)
        full = write_reports(conn, period_end=END, days=7, kind="weekly", reports_dir=tmp_path, now=NOW)
        slim = write_reports(conn, period_end=END, days=7, kind="weekly", reports_dir=tmp_path, now=NOW,
                             keep_reports=False)
        stored = conn.execute(sa.text("SELECT report FROM instagram.performance_reports")).scalar_one()
    assert slim[0].report == {k: full[0].report[k] for k in NOTICE_FIELDS}
    assert slim[0].markdown == full[0].markdown and slim[0].html_path == full[0].html_path
    assert stored == json.loads(json.dumps(full[0].report)) and "top_posts" in stored


def test_the_ui_summary_of_a_large_run_is_the_first_reports_not_a_join_of_all():
    from ig_analytics.analytics.reports import ReportResult
    from ig_analytics.defs.analytics_assets import _summary

    results = [ReportResult(str(i), {}, None, f"**@a{i}** " + "x" * 990) for i in range(10_000)]
    summary = _summary(results, 60_000)
    assert summary.startswith("**@a0** ") and "**@a59** " in summary and "**@a61** " not in summary
    assert _summary([], 60_000) == ""


def _svg(html: str, title: str) -> str:
    start = html.index(f'aria-label="{title}"')
    return html[html.rindex("<svg", 0, start):html.index("</svg>", start) + 6]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0)])
def test_averages_of_rates_do_not_depend_on_the_order_postgresql_reads_rows_in(engine, order):
    """A second identical sync once changed a report in the last digits: float8 sums depend on the order rows are
    read in, which an upsert can change. The averages of stored rates are exact (numeric) sums: 0.1, 0.2 and 0.3
    average to 0.2 in any order (float8 sums give 0.20000000000000004 in this order or that)."""
    rates = (0.1, 0.2, 0.3)
    with engine.begin() as conn:
        add_account(conn, "O", tz="UTC", username="order")
        add_media(conn, [{"media_id": f"O{i}", "ig_user_id": "O", "published_at": ts(2026, 2, 3 + i, 12)}
                         for i in range(3)])
        for i in order:
            conn.execute(sa.text(
                "INSERT INTO instagram.media_engagement (media_id, ig_user_id, captured_at, published_at,"
                " engagement, engagement_rate_reach, performance_score, reach, computed_at)"
                " VALUES (:m, 'O', :at, :at, 1, :r, :r, 10, :at)"),
                {"m": f"O{i}", "at": ts(2026, 2, 3 + i, 12), "r": rates[i]})
        report = build_report(conn, "O", START, END)
    assert report["content_metrics"]["avg_engagement_rate"] == 0.2
    assert report["engagement"]["avg_performance_score"] == 0.2
