"""The PostgreSQL IO manager against the session's real PostgreSQL: merge rule, partition slices, replace and
upsert, one transaction per slice, column and type checks, and loading a partition's columns with dtypes."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from ig_analytics.defs import postgres_io
from ig_analytics.defs.catalog import table_asset
from ig_analytics.defs.postgres_io import PostgresTableIOManager, Rows, user_table, write_metadata
from ig_analytics.defs.resources import AnalyticsDatabase
from ig_analytics.storage import db
from ig_analytics.storage.tables import Column
from ig_analytics_tests.analytics_data import add_account, add_account_days, add_media, ts

DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")
HOURS = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00", timezone="UTC")
SCORES = user_table("test_hourly_scores", [
    Column("ig_user_id", "text", "account", key=True),
    Column("hour_start", "timestamptz", "hour", key=True),
    Column("score", "bigint", "a number"),
    Column("share", "double precision", "a rate"),
], mode="replace", slice_column="hour_start")


def _io() -> dict:
    return {"postgres_io": PostgresTableIOManager(database=AnalyticsDatabase())}


def _run(assets, partition_key=None, **kw):
    return dg.materialize(assets, resources=_io(), partition_key=partition_key, **kw)


def _cause(exc: BaseException) -> str:
    text, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return " | ".join(text)


def _scores_asset(frame_for):
    @dg.asset(name="test_hourly_scores", partitions_def=HOURS, io_manager_key="postgres_io", metadata=SCORES)
    def scores(context):
        return frame_for(context.partition_time_window.start)

    return scores


def _stored(engine, table="test_hourly_scores") -> dict:
    with engine.connect() as conn:
        return {(r[0], r[1]): tuple(r[2:]) for r in conn.execute(sa.text(f"SELECT * FROM instagram.{table} ORDER BY 1, 2"))}


def test_merge_rule_keeps_a_measured_value_and_upsert_keeps_other_rows(engine, ig_home):
    with engine.begin() as conn:
        add_account(conn, "A")
        add_account_days(conn, "A", [{"date": date(2026, 1, 5), "reach": 100, "views": 5},
                                     {"date": date(2026, 1, 4), "reach": 40, "views": 4}])

    @dg.asset(name="account_insights_daily", partitions_def=DAYS, io_manager_key="postgres_io",
              **table_asset("account_insights_daily", write_metadata("upsert", "date")))
    def daily():
        return pd.DataFrame({"ig_user_id": ["A"], "date": [date(2026, 1, 5)], "reach": [None], "views": [7],
                             "api_version": ["v25.0"], "synced_at": [ts(2026, 1, 6)]})

    result = _run([daily], "2026-01-05")
    meta = result.asset_materializations_for_node("account_insights_daily")[0].metadata
    assert meta["rows_written"].value == 1 and meta["write_mode"].value == "upsert"
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT date, reach, views FROM instagram.account_insights_daily ORDER BY 1")).all()
    # the NULL reach did not erase the measured 100; the other day (same slice column, other partition) is kept
    assert [tuple(r) for r in rows] == [(date(2026, 1, 4), 40, 4), (date(2026, 1, 5), 100, 7)]


def test_a_row_outside_the_partition_is_a_clear_error_and_nothing_is_written(engine, ig_home):
    @dg.asset(name="account_insights_daily", partitions_def=DAYS, io_manager_key="postgres_io",
              **table_asset("account_insights_daily", write_metadata("upsert", "date")))
    def daily():
        return pd.DataFrame({"ig_user_id": ["A", "A"], "date": [date(2026, 1, 5), date(2026, 1, 6)], "views": [1, 2]})

    with engine.begin() as conn:
        add_account(conn, "A")
    with pytest.raises(Exception) as caught:
        _run([daily], "2026-01-05")
    assert "1 row(s) lie outside the written slice date in [2026-01-05, 2026-01-06)" in _cause(caught.value)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM instagram.account_insights_daily")).scalar() == 0


def test_replace_deletes_the_slices_missing_rows_only_and_creates_the_users_table(engine, ig_home):
    first = {"2026-01-02-10:00": pd.DataFrame({"ig_user_id": ["a", "b"], "hour_start": [ts(2026, 1, 2, 10)] * 2,
                                                "score": [1, 2], "share": [0.5, 0.25]}),
             "2026-01-02-11:00": pd.DataFrame({"ig_user_id": ["a"], "hour_start": [ts(2026, 1, 2, 11)],
                                                "score": [9], "share": [None]})}
    outputs = dict(first)
    asset = _scores_asset(lambda start: outputs[start.strftime("%Y-%m-%d-%H:%M")])
    for key in first:
        _run([asset], key)
    assert _stored(engine) == {("a", ts(2026, 1, 2, 10)): (1, 0.5), ("b", ts(2026, 1, 2, 10)): (2, 0.25),
                               ("a", ts(2026, 1, 2, 11)): (9, None)}
    outputs["2026-01-02-10:00"] = pd.DataFrame({"ig_user_id": ["a"], "hour_start": [ts(2026, 1, 2, 10)],
                                                "score": [3.0], "share": [0.75]})  # a float of whole numbers is fine
    result = _run([asset], "2026-01-02-10:00")
    meta = result.asset_materializations_for_node("test_hourly_scores")[0].metadata
    assert meta["rows_deleted"].value == 1 and meta["rows_written"].value == 1
    # b left the 10:00 slice; the 11:00 slice is untouched
    assert _stored(engine) == {("a", ts(2026, 1, 2, 10)): (3, 0.75), ("a", ts(2026, 1, 2, 11)): (9, None)}


def test_a_subset_replaces_only_its_values_rows_and_refuses_a_row_outside_it(engine, ig_home):
    """Rows(subset=...): one shard run's accounts. replace deletes only their rows of the slice; another
    account's row in the output is an error and nothing is written."""
    hour = ts(2026, 1, 2, 10)
    frames = {"all": Rows(pd.DataFrame({"ig_user_id": ["a", "b", "c"], "hour_start": [hour] * 3,
                                        "score": [1, 2, 3], "share": [0.1, 0.2, 0.3]})),
              "shard": Rows(pd.DataFrame({"ig_user_id": ["a"], "hour_start": [hour], "score": [7], "share": [0.7]}),
                            subset={"ig_user_id": ["a", "b"]}),
              "stray": Rows(pd.DataFrame({"ig_user_id": ["c"], "hour_start": [hour], "score": [0], "share": [0.0]}),
                            subset={"ig_user_id": ["a", "b"]})}
    which = {}
    asset = _scores_asset(lambda start: frames[which["frame"]])
    for name in ("all", "shard"):
        which["frame"] = name
        result = _run([asset], "2026-01-02-10:00")
    meta = result.asset_materializations_for_node("test_hourly_scores")[0].metadata
    assert meta["rows_deleted"].value == 1 and meta["subset"].value == "ig_user_id: 2 value(s)"
    # b (in the subset, gone from the output) left; c (outside the subset) kept
    assert _stored(engine) == {("a", hour): (7, 0.7), ("c", hour): (3, 0.3)}
    which["frame"] = "stray"
    with pytest.raises(Exception) as caught:
        _run([asset], "2026-01-02-10:00")
    assert "1 row(s) lie outside the written subset of ig_user_id (2 values), e.g. c" in _cause(caught.value)
    assert _stored(engine) == {("a", hour): (7, 0.7), ("c", hour): (3, 0.3)}


def test_a_failure_mid_write_leaves_the_slice_as_it_was(engine, ig_home, monkeypatch):
    rows = pd.DataFrame({"ig_user_id": ["a", "b"], "hour_start": [ts(2026, 1, 2, 10)] * 2, "score": [1, 2],
                         "share": [0.5, 0.25]})
    outputs = [rows, rows.iloc[:1].assign(score=5)]
    asset = _scores_asset(lambda start: outputs.pop(0))
    _run([asset], "2026-01-02-10:00")
    before = _stored(engine)
    real = db.replace_rows

    def crash_after_writing(*args, **kwargs):
        real(*args, **kwargs)  # the delete and the new rows are in the transaction ...
        raise RuntimeError("connection lost mid-write")  # ... when it fails

    monkeypatch.setattr(db, "replace_rows", crash_after_writing)
    with pytest.raises(Exception) as caught:
        _run([asset], "2026-01-02-10:00")
    assert "connection lost mid-write" in _cause(caught.value)
    assert _stored(engine) == before == {("a", ts(2026, 1, 2, 10)): (1, 0.5), ("b", ts(2026, 1, 2, 10)): (2, 0.25)}


# ---- replace writes only the difference (issue 27): compared by each row version's xmin --------------------

H10, H11 = ts(2026, 1, 2, 10), ts(2026, 1, 2, 11)


def _scores(rows: dict) -> pd.DataFrame:
    """{account: (score, share)} of the 10:00 hour as a frame."""
    return pd.DataFrame({"ig_user_id": list(rows), "hour_start": [H10] * len(rows),
                         "score": pd.array([v[0] for v in rows.values()], dtype="Int64"),
                         "share": [float("nan") if v[1] is None else v[1] for v in rows.values()]})


def _xmins(engine, table="test_hourly_scores", key="ig_user_id, hour_start") -> dict:
    """Each row's key -> the transaction that wrote its current version (a rewrite, even of equal values, changes it)."""
    with engine.connect() as conn:
        return {tuple(r[:-1]): r[-1] for r in conn.execute(sa.text(f"SELECT {key}, xmin::text FROM instagram.{table}"))}


def _replaced_twice(engine, second):
    """10:00 with a, b, c, d and 11:00 with a; then 10:00 again as ``second`` (a frame or Rows). Returns the xmins
    before the second write and its metadata."""
    first = _scores({"a": (1, 0.1), "b": (2, 0.2), "c": (3, 0.3), "d": (4, 0.4)})
    outputs = {H10: [first, second], H11: [pd.DataFrame({"ig_user_id": ["a"], "hour_start": [H11], "score": [9],
                                                         "share": [0.9]})]}
    asset = _scores_asset(lambda start: outputs[start].pop(0))
    _run([asset], "2026-01-02-10:00")
    _run([asset], "2026-01-02-11:00")
    before = _xmins(engine)
    result = _run([asset], "2026-01-02-10:00")
    return before, result.asset_materializations_for_node("test_hourly_scores")[0].metadata


def test_an_identical_replace_rewrites_no_row(engine, ig_home):
    before, meta = _replaced_twice(engine, _scores({"a": (1, 0.1), "b": (2, 0.2), "c": (3, 0.3), "d": (4, 0.4)}))
    assert _xmins(engine) == before
    assert (meta["rows_written"].value, meta["rows_deleted"].value, meta["rows_in_output"].value) == (0, 0, 4)


def test_a_replace_updates_a_changed_row_and_writes_a_null_over_a_value(engine, ig_home):
    """The new rows are the truth: b's share becomes NULL (no merge rule keeps the old value); a, c, d unchanged."""
    before, meta = _replaced_twice(engine, _scores({"a": (1, 0.1), "b": (5, None), "c": (3, 0.3), "d": (4, 0.4)}))
    after = _xmins(engine)
    assert after[("b", H10)] != before[("b", H10)]
    assert {k: v for k, v in after.items() if k != ("b", H10)} == {k: v for k, v in before.items() if k != ("b", H10)}
    assert _stored(engine)[("b", H10)] == (5, None)
    assert (meta["rows_written"].value, meta["rows_deleted"].value) == (1, 0)


def test_a_replace_deletes_a_vanished_key_and_leaves_rows_outside_its_slice_and_subset(engine, ig_home):
    """Subset a, b, c of 10:00: c is gone from the output (deleted); d (outside the subset) and 11:00 (outside the
    slice) are not touched, nor are the unchanged a and b."""
    before, meta = _replaced_twice(engine, Rows(_scores({"a": (1, 0.1), "b": (2, 0.2)}),
                                                subset={"ig_user_id": ["a", "b", "c"]}))
    del before[("c", H10)]
    assert _xmins(engine) == before
    assert _stored(engine) == {("a", H10): (1, 0.1), ("b", H10): (2, 0.2), ("d", H10): (4, 0.4), ("a", H11): (9, 0.9)}
    assert (meta["rows_written"].value, meta["rows_deleted"].value) == (0, 1)


def test_computed_at_alone_does_not_rewrite_a_derived_row(engine, ig_home):
    """Every replace asset of a table with computed_at declares it keep_when_unchanged: computed_at then says
    when the row's values last changed (a new time with the same values rewrites nothing)."""
    from ig_analytics.definitions import defs

    graph = defs.resolve_asset_graph()
    replaced = {key.to_user_string(): graph.get(key).metadata for key in graph.get_all_asset_keys()
                if graph.get(key).metadata.get(postgres_io.MODE) == "replace"}
    with_computed_at = {name for name, meta in replaced.items()
                        if "computed_at" in postgres_io._table(meta, name).types}
    assert len(with_computed_at) == 6
    assert {n for n in with_computed_at if "computed_at" in replaced[n][postgres_io.KEEP_WHEN_UNCHANGED]} == \
        with_computed_at
    with engine.begin() as conn:
        add_account(conn, "A")
    times = [ts(2026, 1, 2, 10), ts(2026, 1, 2, 11), ts(2026, 1, 2, 12)]
    posts = [3, 3, 4]

    @dg.asset(name="best_posting_times", io_manager_key="postgres_io", metadata=replaced["best_posting_times"])
    def best():
        return pd.DataFrame({"ig_user_id": ["A", "A"], "weekday": [1, 2], "hour": [9, 9], "posts": [posts.pop(0), 5],
                             "computed_at": [times.pop(0)] * 2})

    def stored():
        with engine.connect() as conn:
            return {r[0]: tuple(r[1:]) for r in conn.execute(sa.text(
                "SELECT weekday, posts, computed_at, xmin::text FROM instagram.best_posting_times"))}

    _run([best])
    first = stored()
    _run([best])  # the same values computed at 11:00: nothing rewritten, computed_at stays 10:00
    assert stored() == first and first[1][:2] == (3, ts(2026, 1, 2, 10))
    _run([best])  # weekday 1's posts changed: it alone is rewritten, with its computed_at
    after = stored()
    assert after[1][:2] == (4, ts(2026, 1, 2, 12)) and after[1][2] != first[1][2] and after[2] == first[2]


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"ig_user_id": ["a"], "hour_start": [ts(2026, 1, 2, 10)], "scor": [1]}),
     "column(s) ['scor'] are not columns of instagram.test_hourly_scores"),
    (pd.DataFrame({"ig_user_id": ["a"], "hour_start": [ts(2026, 1, 2, 10)], "score": ["many"]}),
     "column score of instagram.test_hourly_scores is bigint, the rows give"),
    (pd.DataFrame({"ig_user_id": ["a"], "hour_start": [ts(2026, 1, 2, 10)], "score": [1.5]}),
     "column score of instagram.test_hourly_scores is bigint, the rows give float64"),
    (pd.DataFrame({"ig_user_id": ["a", "a"], "hour_start": [ts(2026, 1, 2, 10)] * 2}),
     "the rows repeat a key of instagram.test_hourly_scores"),
    (pd.DataFrame({"ig_user_id": ["a"], "hour_start": [pd.Timestamp("2026-01-02 10:00")]}),  # naive: ambiguous
     "column hour_start of instagram.test_hourly_scores is timestamptz"),
    ("not rows", "postgres_io stores a pandas DataFrame or Rows, not str"),
])
def test_columns_and_types_are_checked(engine, ig_home, frame, message):
    with pytest.raises(Exception) as caught:
        _run([_scores_asset(lambda start: frame)], "2026-01-02-10:00")
    assert message in _cause(caught.value)


def test_unknown_column_of_a_product_table(engine, ig_home):
    @dg.asset(name="best_posting_times", io_manager_key="postgres_io",
              **table_asset("best_posting_times", write_metadata("replace")))
    def best():
        return pd.DataFrame({"ig_user_id": ["A"], "weekday": [1], "hour": [2], "best_hour": [3]})

    with pytest.raises(Exception) as caught:
        _run([best])
    assert "column(s) ['best_hour'] are not columns of instagram.best_posting_times" in _cause(caught.value)


def test_none_writes_nothing_and_skip_unchanged_keeps_computed_at(engine, ig_home):
    with engine.begin() as conn:
        add_account(conn, "A")
        add_media(conn, [{"media_id": "m1", "ig_user_id": "A", "published_at": ts(2026, 1, 1)}])
    answers = [None,
               pd.DataFrame({"media_id": ["m1"], "ig_user_id": ["A"], "captured_at": [ts(2026, 1, 2, 10)],
                             "engagement": [5], "computed_at": [ts(2026, 1, 2, 10, 5)]}),
               pd.DataFrame({"media_id": ["m1"], "ig_user_id": ["A"], "captured_at": [ts(2026, 1, 2, 10)],
                             "engagement": [5], "computed_at": [ts(2026, 1, 2, 10, 50)]}),
               pd.DataFrame({"media_id": ["m1"], "ig_user_id": ["A"], "captured_at": [ts(2026, 1, 2, 10)],
                             "engagement": [6], "computed_at": [ts(2026, 1, 2, 10, 55)]})]

    @dg.asset(name="media_engagement", partitions_def=HOURS, io_manager_key="postgres_io",
              **table_asset("media_engagement", write_metadata("upsert", "captured_at", ("computed_at",))))
    def media_engagement():
        return answers.pop(0)

    def computed():
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT engagement, computed_at FROM instagram.media_engagement")).all()

    result = _run([media_engagement], "2026-01-02-10:00")
    assert result.asset_materializations_for_node("media_engagement")[0].metadata["rows_written"].value == 0
    assert computed() == []
    _run([media_engagement], "2026-01-02-10:00")
    _run([media_engagement], "2026-01-02-10:00")  # same values: the row is not rewritten
    assert [tuple(r) for r in computed()] == [(5, ts(2026, 1, 2, 10, 5))]
    _run([media_engagement], "2026-01-02-10:00")
    assert [tuple(r) for r in computed()] == [(6, ts(2026, 1, 2, 10, 55))]


def test_rows_may_name_a_narrower_window_than_the_partition(engine, ig_home):
    """An unpartitioned asset replacing a range of days (account_engagement_daily): only that range is deleted."""
    with engine.begin() as conn:
        add_account(conn, "A")
        conn.execute(sa.text("INSERT INTO instagram.account_engagement_daily (ig_user_id, date, posts, computed_at)"
                             " VALUES ('A', '2026-01-01', 1, now()), ('A', '2026-01-03', 3, now()),"
                             " ('A', '2026-01-09', 9, now())"))

    @dg.asset(name="account_engagement_daily", io_manager_key="postgres_io",
              **table_asset("account_engagement_daily", write_metadata("replace", "date")))
    def daily():
        frame = pd.DataFrame({"ig_user_id": ["A"], "date": [date(2026, 1, 2)], "posts": [2], "computed_at": [ts(2026, 1, 9)]})
        return Rows(frame, dg.TimeWindow(ts(2026, 1, 2), ts(2026, 1, 5)))

    _run([daily])
    with engine.connect() as conn:
        got = conn.execute(sa.text("SELECT date, posts FROM instagram.account_engagement_daily ORDER BY 1")).all()
    assert [tuple(r) for r in got] == [(date(2026, 1, 1), 1), (date(2026, 1, 2), 2), (date(2026, 1, 9), 9)]


def test_load_input_returns_the_partition_slice_and_only_the_named_columns(engine, ig_home):
    frames = {
        "2026-01-02-10:00": pd.DataFrame({"ig_user_id": ["b", "a"], "hour_start": [ts(2026, 1, 2, 10)] * 2,
                                          "score": [None, 4], "share": [0.1, None]}),
        "2026-01-02-11:00": pd.DataFrame({"ig_user_id": ["a"], "hour_start": [ts(2026, 1, 2, 11)], "score": [7],
                                          "share": [0.2]}),
    }
    upstream = _scores_asset(lambda start: frames[start.strftime("%Y-%m-%d-%H:%M")])
    seen = {}

    @dg.asset(partitions_def=HOURS, ins={"test_hourly_scores": dg.AssetIn(metadata={"columns": ["ig_user_id", "score"]})})
    def reader(test_hourly_scores: pd.DataFrame) -> None:
        seen["frame"] = test_hourly_scores

    for key in frames:
        _run([upstream], key)
    _run([upstream, reader], "2026-01-02-10:00", selection=[reader])
    frame = seen["frame"]
    assert list(frame.columns) == ["ig_user_id", "score"]
    assert frame["ig_user_id"].tolist() == ["a", "b"]  # ordered by the key
    assert str(frame["score"].dtype) == "Int64" and frame["score"].tolist()[0] == 4 and frame["score"].isna().tolist() == [False, True]

    @dg.asset(partitions_def=HOURS, ins={"test_hourly_scores": dg.AssetIn()})
    def everything(test_hourly_scores: pd.DataFrame) -> None:
        seen["all"] = test_hourly_scores

    _run([upstream, everything], "2026-01-02-11:00", selection=[everything])
    frame = seen["all"]
    assert list(frame.columns) == ["ig_user_id", "hour_start", "score", "share"]
    assert isinstance(frame["hour_start"].dtype, pd.DatetimeTZDtype) and str(frame["hour_start"].dtype.tz) == "UTC"
    assert frame["hour_start"].tolist() == [ts(2026, 1, 2, 11)]
    assert frame["share"].dtype == "float64" and frame["share"].tolist() == [0.2]

    @dg.asset(partitions_def=HOURS, ins={"test_hourly_scores": dg.AssetIn(metadata={"columns": ["nope"]})})
    def wrong(test_hourly_scores: pd.DataFrame) -> None:
        pass

    with pytest.raises(Exception) as caught:
        _run([upstream, wrong], "2026-01-02-11:00", selection=[wrong])
    assert "column(s) ['nope'] are not columns of instagram.test_hourly_scores" in _cause(caught.value)


# ---- the COPY encoding: every kind of value round-trips exactly, in both write paths ---------------------------

EDGES = user_table("test_edges", [
    Column("id", "text", "key", key=True),
    Column("label", "text", "text with COPY's special characters"),
    Column("count", "bigint", "nullable integer"),
    Column("share", "double precision", "float"),
    Column("flag", "boolean", "nullable boolean"),
    Column("at", "timestamptz", "instant"),
    Column("day", "date", "date"),
    Column("extra", "jsonb", "json"),
], mode="replace")


LABELS = ["tab\there", "new\nline", "back\\slash", "cr\rhere", "\\N", "", None]
COUNTS = [1, None, -5, 2**62, 0, None, 7]
SHARES = [0.1, None, None, -0.0, 1e300, 1 / 3, 0.0]
FLAGS = [True, False, None, True, None, False, True]
# Paris wall-clock times; stored as these UTC instants (2026-07-01 01:30 CEST is June 30 in UTC)
TIMES = ["2026-01-02 10:00:00.123456", None, "2026-06-30 23:59:59", "2026-07-01 01:30", "2026-10-25 12:00",
         "2026-01-01", "2026-01-01"]
UTC_TIMES = [datetime(2026, 1, 2, 9, 0, 0, 123456, timezone.utc), None,
             datetime(2026, 6, 30, 21, 59, 59, tzinfo=timezone.utc),
             datetime(2026, 6, 30, 23, 30, tzinfo=timezone.utc), datetime(2026, 10, 25, 11, tzinfo=timezone.utc),
             datetime(2025, 12, 31, 23, tzinfo=timezone.utc), datetime(2025, 12, 31, 23, tzinfo=timezone.utc)]
DATES = [date(2026, 1, 2), None, date(1999, 12, 31), date(2026, 2, 28), None, date(2026, 3, 1), date(2026, 1, 2)]
EXTRAS = [{"k": "v\tw", "n": [1, 2]}, None, [], {"quote": "\"\\"}, None, {"x": None}, ["é"]]


def _edges_frame(day_kind: str) -> pd.DataFrame:
    days = {"date": DATES, "datetime64": pd.to_datetime(DATES),
            "datetime64 Paris": pd.to_datetime(DATES).tz_localize("Europe/Paris")}[day_kind]  # Paris's dates
    return pd.DataFrame({
        "id": list("abcdefg"),
        "label": LABELS,
        "count": pd.array(COUNTS, dtype="Int64"),
        "share": [float("nan") if v is None else v for v in SHARES],
        "flag": pd.array(FLAGS, dtype="boolean"),
        "at": pd.to_datetime(TIMES, format="ISO8601").tz_localize("Europe/Paris"),
        "day": days,
        "extra": EXTRAS,
    })


def _write_edges(engine, frame: pd.DataFrame, mode: str) -> list[tuple]:
    """Materialize ``frame`` as instagram.test_edges in ``mode`` and read the rows back in id order."""
    @dg.asset(name="test_edges", io_manager_key="postgres_io", metadata={**EDGES, **write_metadata(mode)})
    def edges():
        return frame

    _run([edges])
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            'SELECT label, count, share, flag, "at", day, extra FROM instagram.test_edges ORDER BY id'))]


@pytest.mark.parametrize("mode", ["replace", "upsert"])
@pytest.mark.parametrize("day_kind", ["date", "datetime64", "datetime64 Paris"])
def test_every_kind_of_value_round_trips_exactly(engine, ig_home, mode, day_kind):
    """NaN and None are NULL, NA in Int64 and boolean too; "" and the text \\N are not; tabs, newlines, CRs and
    backslashes survive; a Paris timestamp is stored as its instant; -0.0 keeps its sign; jsonb as given."""
    frame = _edges_frame(day_kind)  # jsonb: dicts and lists (a str is written as given by upsert)

    got = _write_edges(engine, frame, mode)
    assert got == list(zip(LABELS, COUNTS, SHARES, FLAGS, UTC_TIMES, DATES, EXTRAS))
    assert [math.copysign(1, got[i][2]) for i in (3, 6)] == [-1, 1]  # -0.0 == 0.0: signs checked apart


def test_an_upsert_of_several_chunks_writes_every_row(engine, ig_home):
    n = db.CHUNK_ROWS * 2 + 17
    frame = pd.DataFrame({"ig_user_id": [f"u{i:06d}" for i in range(n)], "hour_start": [ts(2026, 1, 2, 10)] * n,
                          "score": pd.array([i if i % 3 else None for i in range(n)], dtype="Int64"),
                          "share": [i / 7 for i in range(n)]})
    table = user_table("test_chunks", [Column("ig_user_id", "text", "k", key=True),
                                       Column("hour_start", "timestamptz", "k", key=True),
                                       Column("score", "bigint", "n"), Column("share", "double precision", "x")],
                       mode="upsert")

    @dg.asset(name="test_chunks", io_manager_key="postgres_io", metadata=table)
    def chunks():
        return frame

    _run([chunks])
    _run([chunks])  # the second write merges onto the first: still one row per key
    with engine.connect() as conn:
        count, nulls, total, shares = conn.execute(sa.text(
            "SELECT count(*), count(*) - count(score), sum(score), sum(share) FROM instagram.test_chunks")).one()
    assert count == n and nulls == sum(1 for i in range(n) if i % 3 == 0)
    assert total == sum(i for i in range(n) if i % 3) and shares == pytest.approx(sum(i / 7 for i in range(n)))


def test_copy_chunks_encode_one_chunk_at_a_time_and_a_replace_of_several_chunks_writes_every_row(
        engine, ig_home, monkeypatch):
    """Only one chunk's cells are text at a time (issue 27: a frame's cells all at once held ~170 MB at 250,000
    rows in conversation_posts), and a replace of several chunks is one COPY per chunk, every row written."""
    from ig_analytics.storage import frames

    encoded = []
    real = frames._column_text
    monkeypatch.setattr(frames, "_column_text", lambda values, *a: encoded.append(len(values)) or real(values, *a))
    frame = _edges_frame("date")
    chunks = frames.copy_chunks(frame, chunk_rows=3)
    next(chunks)
    assert encoded and max(encoded) <= 3
    monkeypatch.setattr(db, "CHUNK_ROWS", 2)

    assert _write_edges(engine, frame, "replace") == list(zip(LABELS, COUNTS, SHARES, FLAGS, UTC_TIMES, DATES, EXTRAS))


def test_a_partition_the_definition_does_not_have_yet_is_a_sentence_not_a_check_error(engine, ig_home):
    """A GraphQL launch can tag a run with next hour's key; Dagster then finds no key range for it. The IO manager
    says so in words, for an output and for an input, and writes nothing."""
    future = "2099-01-01-00:00"
    io = PostgresTableIOManager(database=AnalyticsDatabase())
    frame = pd.DataFrame({"ig_user_id": ["A"], "hour_start": [ts(2099, 1, 1)], "score": [1], "share": [0.5]})
    out = dg.build_output_context(asset_key=dg.AssetKey("test_hourly_scores"), partition_key=future,
                                  asset_partitions_def=HOURS, definition_metadata=SCORES)
    with pytest.raises(ValueError, match="not a partition of this asset \\(yet\\)"):
        io.handle_output(out, frame)
    upstream = dg.build_output_context(asset_key=dg.AssetKey("test_hourly_scores"), definition_metadata=SCORES)
    load = dg.build_input_context(name="scores", asset_key=dg.AssetKey("test_hourly_scores"), partition_key=future,
                                  asset_partitions_def=HOURS, upstream_output=upstream)
    with pytest.raises(ValueError, match="not a partition of this asset \\(yet\\)"):
        io.load_input(load)
    with engine.connect() as conn:
        exists = conn.execute(sa.text("SELECT to_regclass('instagram.test_hourly_scores') IS NOT NULL")).scalar_one()
    assert not exists or not _stored(engine)
